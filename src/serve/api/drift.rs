//! `GET /v1/datasets/{dataset}/drift`: the latest stored verdict, as `compare --json` shapes it,
//! with its age and whether it is stale (no online data in the last two windows).

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use serde_json::Value;

use super::{ApiError, AppState, Path};
use crate::clock::now_ms;
use crate::names::DatasetName;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/v1/datasets/{dataset}/drift", get(get_drift))
}

async fn get_drift(
    State(state): State<AppState>,
    Path(dataset): Path<DatasetName>,
) -> Result<Response, ApiError> {
    match state.store.verdict(&dataset).await? {
        Some((report, evaluated_ms)) => {
            // How old the verdict is, at the moment it is read: it stops being renewed when
            // online data stops (and says so: `stale`).
            let age_seconds = (now_ms() - evaluated_ms).max(0) as f64 / 1000.0;
            let body = match serde_json::from_str::<Value>(&report) {
                Ok(Value::Object(mut verdict)) => {
                    verdict.insert("age_seconds".into(), age_seconds.into());
                    Value::Object(verdict).to_string()
                }
                _ => report,
            };
            Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
        }
        None => Err(ApiError::NotFound(format!(
            "no verdict for dataset {dataset:?} yet: it needs an offline run and recent online data"
        ))),
    }
}
