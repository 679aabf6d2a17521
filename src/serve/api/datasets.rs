//! `GET /v1/datasets` and `GET /v1/datasets/{dataset}`: each dataset with stored profiles —
//! rows per stage and when each was last written, its features, its reference run and a
//! summary of its latest verdict.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{ApiError, AppState, Path};
use crate::clock::now_ms;
use crate::names::DatasetName;
use crate::store::DatasetSummary;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/datasets", get(get_datasets))
        .route("/v1/datasets/{dataset}", get(get_dataset))
}

async fn get_datasets(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let now = now_ms();
    let mut datasets = Vec::new();
    for summary in state.store.dataset_summaries(None).await? {
        datasets.push(describe(&state, summary, now).await?);
    }
    Ok(Json(json!({ "datasets": datasets })))
}

async fn get_dataset(
    State(state): State<AppState>,
    Path(dataset): Path<DatasetName>,
) -> Result<Json<Value>, ApiError> {
    let summary = state
        .store
        .dataset_summaries(Some(&dataset))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            let name = dataset.as_str();
            ApiError::NotFound(format!("no dataset {name:?}: nothing was profiled for it"))
        })?;
    Ok(Json(describe(&state, summary, now_ms()).await?))
}

async fn describe(state: &AppState, s: DatasetSummary, now: i64) -> Result<Value, ApiError> {
    let reference = state.store.reference_run(&s.dataset).await?;
    let features = state
        .store
        .feature_names(&s.dataset, reference.as_ref().map(|(run, _)| run.as_str()))
        .await?;
    let verdict = state
        .store
        .verdict(&s.dataset)
        .await?
        .map(|(report, evaluated_ms)| verdict_summary(&report, evaluated_ms, now));
    Ok(json!({
        "name": s.dataset,
        "records": {"offline": s.offline_rows, "online": s.online_rows},
        "offline_runs": s.offline_runs,
        "last_seen_ms": {"offline": s.offline_seen_ms, "online": s.online_seen_ms},
        "features": features,
        "reference": reference.map(|(run_id, pinned)| json!({"run_id": run_id, "pinned": pinned})),
        "verdict": verdict,
    }))
}

/// The stored verdict in brief: how many features drifted (and which), stale or not, when.
fn verdict_summary(report: &str, evaluated_ms: i64, now: i64) -> Value {
    let verdict: Value = serde_json::from_str(report).unwrap_or(Value::Null);
    let drifted = verdict["drifted"].as_array().cloned().unwrap_or_default();
    json!({
        "drifted": drifted.len(),
        "drifted_features": drifted,
        "stale": verdict["stale"].as_bool().unwrap_or(false),
        "evaluated_at_ms": evaluated_ms,
        "age_seconds": (now - evaluated_ms).max(0) as f64 / 1000.0,
    })
}
