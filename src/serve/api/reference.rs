//! `/v1/datasets/{dataset}/reference`: which offline run current data is compared with —
//! read it, pin a run, or unpin (back to the latest run).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, AppState, Path, identifier};
use crate::clock::now_ms;
use crate::names::DatasetName;

pub(super) fn router() -> Router<AppState> {
    Router::new().route(
        "/v1/datasets/{dataset}/reference",
        get(get_reference)
            .put(put_reference)
            .delete(delete_reference),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pin {
    run_id: String,
}

async fn put_reference(
    State(state): State<AppState>,
    Path(dataset): Path<DatasetName>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pin: Pin = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("expected {{\"run_id\": \"…\"}}: {e}")))?;
    identifier("run_id", &pin.run_id)?;
    if state
        .store
        .run_profile(&dataset, &pin.run_id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound(format!(
            "dataset {dataset:?} has no offline run {:?}",
            pin.run_id
        )));
    }
    state
        .store
        .pin_reference(&dataset, &pin.run_id, now_ms())
        .await?;
    Ok(Json(
        json!({"dataset": dataset, "run_id": pin.run_id, "pinned": true}),
    ))
}

async fn delete_reference(
    State(state): State<AppState>,
    Path(dataset): Path<DatasetName>,
) -> Result<StatusCode, ApiError> {
    state.store.unpin_reference(&dataset).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_reference(
    State(state): State<AppState>,
    Path(dataset): Path<DatasetName>,
) -> Result<Json<serde_json::Value>, ApiError> {
    match state.store.reference_run(&dataset).await? {
        Some((run_id, pinned)) => Ok(Json(
            json!({"dataset": dataset, "run_id": run_id, "pinned": pinned}),
        )),
        None => Err(ApiError::NotFound(format!(
            "dataset {dataset:?} has no offline run to compare with"
        ))),
    }
}
