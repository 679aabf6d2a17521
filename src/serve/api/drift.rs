//! `GET /v1/datasets/{dataset}/drift`: the latest stored verdict, as `compare --json` shapes it,
//! with its age and whether it is stale (no online data in the last two windows); and
//! `GET /v1/datasets/{dataset}/drift/history`, each evaluation's scores (the score history).

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use axum::Json;
use serde_json::{Value, json};

use super::{ApiError, AppState, Path};
use crate::clock::now_ms;
use crate::names::DatasetName;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/datasets/{dataset}/drift", get(get_drift))
        .route("/v1/datasets/{dataset}/drift/history", get(get_history))
}

/// Evaluations returned by the history: at the default 30 s interval, the last day.
pub(super) const HISTORY_ROWS: i64 = 2880;

/// Each evaluation's scores within `retention`, oldest first (the newest 2,880 at most).
async fn get_history(
    State(state): State<AppState>,
    Path(dataset): Path<DatasetName>,
) -> Result<Response, ApiError> {
    let since = now_ms() - state.config.retention.as_millis() as i64;
    let history = state
        .store
        .score_history(&dataset, since, HISTORY_ROWS)
        .await?;
    let evaluations: Vec<Value> = history
        .iter()
        .map(|s| {
            let features: serde_json::Map<String, Value> = s
                .features
                .iter()
                .map(|(name, f)| {
                    let f = json!({"score": f.score, "threshold": f.threshold, "drift": f.drifted});
                    (name.clone(), f)
                })
                .collect();
            json!({"evaluated_at_ms": s.evaluated_ms, "features": features})
        })
        .collect();
    Ok(Json(json!({"dataset": dataset, "evaluations": evaluations})).into_response())
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
