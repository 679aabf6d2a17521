//! `GET /v1/datasets/{dataset}/drift`: the latest stored verdict, as `compare --json` shapes it.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{ApiError, AppState, Path};
use crate::names::DatasetName;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/v1/datasets/{dataset}/drift", get(get_drift))
}

async fn get_drift(
    State(state): State<AppState>,
    Path(dataset): Path<DatasetName>,
) -> Result<Response, ApiError> {
    match state.store.verdict(&dataset).await? {
        Some((report, _)) => {
            Ok(([(header::CONTENT_TYPE, "application/json")], report).into_response())
        }
        None => Err(ApiError::NotFound(format!(
            "no verdict for dataset {dataset:?} yet: it needs an offline run and recent online data"
        ))),
    }
}
