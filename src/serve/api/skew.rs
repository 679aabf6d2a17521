//! `GET /v1/datasets/{dataset}/skew`: the reference run's rows sampled by id joined with the
//! recent online windows' and compared value by value, answered as the `skew` object of
//! `compare --join-on --json`, with the reference run it was joined with.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{ApiError, AppState, Path};
use crate::clock::now_ms;
use crate::names::DatasetName;
use crate::serve::{evaluate, skew};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/v1/datasets/{dataset}/skew", get(get_skew))
}

async fn get_skew(
    State(state): State<AppState>,
    Path(dataset): Path<DatasetName>,
) -> Result<Json<Value>, ApiError> {
    let not_yet =
        |why: &str| ApiError::NotFound(format!("no skew for dataset {dataset:?} yet: {why}"));
    let Some((run_id, pinned)) = state.store.reference_run(&dataset).await? else {
        if !state
            .store
            .datasets()
            .await?
            .iter()
            .any(|d| d == dataset.as_str())
        {
            let name = dataset.as_str();
            return Err(ApiError::NotFound(format!(
                "no dataset {name:?}: nothing was profiled for it"
            )));
        }
        return Err(not_yet("it has no offline run to join with"));
    };
    let reference = state
        .store
        .run_profile(&dataset, &run_id)
        .await?
        .ok_or_else(|| not_yet("its reference run has no profile"))?;
    let since = evaluate::recent_since(&state.config, now_ms());
    let current = state.store.recent_windows(&dataset, since).await?;
    let rules = state.offline.runs.rules.for_dataset(&dataset);
    let report = skew::join(&reference, current.as_ref(), &rules.skew)
        .map_err(|e| not_yet(&e.to_string()))?;
    let mut body = serde_json::to_value(&report)
        .map_err(|e| ApiError::Internal(format!("skew report: {e}")))?;
    body["reference"] = json!({"run_id": run_id, "pinned": pinned});
    if report.joined == 0 {
        body["reason"] =
            "no id is in both the reference run's sample and the online one yet".into();
    }
    Ok(Json(body))
}
