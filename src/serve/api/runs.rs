//! `/v1/datasets/{dataset}/runs`: the latest offline runs with their counters, run metrics
//! and anomalies, and acknowledging a run's anomalies as the new normal.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{ApiError, AppState, Path, identifier};
use crate::names::DatasetName;
use crate::serve::runs::describe;
use crate::store::{Run, RunAnomaly, Source, Store, StoreError};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/datasets/{dataset}/runs", get(get_runs))
        .route(
            "/v1/datasets/{dataset}/runs/{run_id}/acknowledge",
            post(acknowledge_run),
        )
}

/// The latest runs (at most 100), newest first, with their counters, run metrics and
/// anomalies.
async fn get_runs(
    State(state): State<AppState>,
    Path(dataset): Path<DatasetName>,
) -> Result<Response, ApiError> {
    let runs = state.store.runs(&dataset, 100).await?;
    if runs.is_empty() {
        return Err(ApiError::NotFound(format!(
            "dataset {dataset} has no offline runs"
        )));
    }
    let mut out = Vec::with_capacity(runs.len());
    for run in runs {
        out.push(run_json(&state.store, &dataset, run).await?);
    }
    Ok(Json(json!({ "dataset": dataset, "runs": out })).into_response())
}

async fn run_json(store: &Store, dataset: &str, run: Run) -> Result<Value, StoreError> {
    let counters = store
        .run_values(dataset, &run.run_id, Source::Counter)
        .await?;
    let metrics = store
        .run_values(dataset, &run.run_id, Source::Metric)
        .await?;
    let anomalies = store.run_anomalies(dataset, &run.run_id).await?;
    Ok(json!({
        "run_id": run.run_id,
        "run_time_ms": run.run_ms,
        "reported_ms": run.reported_ms,
        "labels": serde_json::from_str::<Value>(&run.labels).unwrap_or(Value::Null),
        "counters": counters.into_iter().collect::<BTreeMap<_, _>>(),
        "metrics": metrics.into_iter().collect::<BTreeMap<_, _>>(),
        "anomalies": anomalies.iter().map(anomaly_json).collect::<Vec<_>>(),
    }))
}

fn anomaly_json(a: &RunAnomaly) -> Value {
    json!({
        "name": a.name,
        "value": a.value,
        "expected": a.expected,
        "low": a.low,
        "high": a.high,
        "baseline": a.baseline,
        "runs": a.runs,
        "acknowledged": a.acknowledged,
        "message": describe(a),
    })
}

/// Accepts a run's anomalies as the new normal: they join later baselines, and the run's
/// alert resolves.
async fn acknowledge_run(
    State(state): State<AppState>,
    Path((dataset, run_id)): Path<(DatasetName, String)>,
) -> Result<Response, ApiError> {
    identifier("run_id", &run_id)?;
    let Some(acknowledged) = state
        .offline
        .acknowledge(&state.store, &state.metrics, &dataset, &run_id)
        .await?
    else {
        return Err(ApiError::NotFound(format!(
            "dataset {dataset} has no run {run_id:?}"
        )));
    };
    Ok(
        Json(json!({"dataset": dataset, "run_id": run_id, "acknowledged": acknowledged}))
            .into_response(),
    )
}
