//! `/v1/datasets/{dataset}/counters`: a run's totals or a server's increments reported under
//! one name (`POST`), and each name's offline and online figures with the parity ratios
//! (`GET`).

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::State;
use axum::middleware::from_fn;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use super::auth::Access;
use super::{ApiError, AppState, Path, read_body};
use crate::clock::now_ms;
use crate::detect::parity;
use crate::names::DatasetName;
use crate::profile::Stage;
use crate::serve::counters::{Report, over_name_cap, parse_report, store_online};
use crate::serve::metrics::CounterRejection;
use crate::serve::offline::RunCounters;
use crate::store::{CounterName, Run};
use crate::telemetry::spans;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/datasets/{dataset}/counters",
            post(post_counters).layer(from_fn(spans::ingest_counters)),
        )
        .route("/v1/datasets/{dataset}/counters", get(get_counters))
}

async fn post_counters(
    State(state): State<AppState>,
    Path(dataset): Path<DatasetName>,
    Extension(access): Extension<Access>,
    body: Body,
) -> Result<Response, ApiError> {
    let metrics = &state.metrics.counters;
    let bytes = read_body(body, state.config.max_body_bytes).await?;
    let report = parse_report(&bytes, state.config.max_counters).map_err(|(reason, message)| {
        metrics.counter_rejected(reason);
        ApiError::BadRequest(message)
    })?;
    let span = tracing::Span::current();
    access.require_stage(report.stage)?;
    span.record("stage", report.stage.as_str());
    if let Some(run_id) = &report.run_id {
        span.record("run_id", run_id.as_str());
    }
    state.admission.admit_dataset(&dataset).inspect_err(|_| {
        metrics.counter_rejected(CounterRejection::dataset_limit);
    })?;
    let cap = state.config.max_counters;
    if let Some(over) = over_name_cap(&state.store, &dataset, &report, cap).await? {
        metrics.counter_rejected(CounterRejection::counter_limit);
        return Err(ApiError::Unprocessable(over));
    }
    let answer = match (report.stage, &report.run_id) {
        (Stage::Offline, Some(run_id)) => {
            post_run_counters(&state, &dataset, run_id, &report).await?
        }
        _ => {
            let now = now_ms();
            let window = state.config.window.as_millis() as i64;
            let start = now - now.rem_euclid(window);
            store_online(
                &state.store,
                &state.metrics,
                &dataset,
                start,
                &report.counters,
                now,
            )
            .await?;
            json!({"dataset": dataset, "stage": "online", "counters": report.counters.len()})
        }
    };
    Ok(Json(answer).into_response())
}

async fn post_run_counters(
    state: &AppState,
    dataset: &str,
    run_id: &str,
    report: &Report,
) -> Result<Value, ApiError> {
    let run = RunCounters {
        run_id,
        run_ms: report.run_ms,
        labels: report.labels.as_deref(),
        counters: &report.counters,
    };
    let judged = state
        .offline
        .store_counters(&state.store, &state.metrics, dataset, &run)
        .await?;
    Ok(json!({
        "dataset": dataset,
        "stage": "offline",
        "run_id": run_id,
        "counters": report.counters.len(),
        "judged": judged,
    }))
}

/// Each counter's offline figure (the latest run's value) and online figure (the total over
/// `parity_window`), whether it is unmapped, and the parity ratios of the rule files.
async fn get_counters(
    State(state): State<AppState>,
    Path(dataset): Path<DatasetName>,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let names = state.store.counter_names(&dataset).await?;
    if names.is_empty() {
        return Err(ApiError::NotFound(format!(
            "dataset {dataset} has reported no counters"
        )));
    }
    let since = now - state.config.parity_window.as_millis() as i64;
    let offline: BTreeMap<String, (Run, f64)> = state
        .store
        .latest_run_counters(&dataset)
        .await?
        .into_iter()
        .map(|(name, run, value)| (name, (run, value)))
        .collect();
    let online: BTreeMap<String, f64> = state
        .store
        .online_counter_totals(&dataset, since)
        .await?
        .into_iter()
        .collect();
    let sides = Sides {
        offline: &offline,
        online: &online,
        since,
        unmapped_after: state.config.counter_unmapped_after.as_millis() as i64,
        now,
    };
    let mut by_name: BTreeMap<&str, Vec<&CounterName>> = BTreeMap::new();
    for n in &names {
        by_name.entry(n.name.as_str()).or_default().push(n);
    }
    let counters: Vec<Value> = by_name
        .iter()
        .map(|(name, seen)| sides.counter_json(name, seen))
        .collect();
    let rules = state.offline.runs.rules.for_dataset(&dataset);
    let latest: BTreeMap<String, f64> = offline
        .iter()
        .map(|(name, (_, v))| (name.clone(), *v))
        .collect();
    let (ratios, findings) = parity::counter_ratios(&rules.parity, &latest, &online);
    Ok(Json(json!({
        "dataset": dataset,
        "parity_window_s": state.config.parity_window.as_secs(),
        "unmapped_after_s": state.config.counter_unmapped_after.as_secs(),
        "counters": counters,
        "parity": ratios,
        "findings": findings,
    }))
    .into_response())
}

/// A dataset's counters on both sides, to describe each name.
struct Sides<'a> {
    /// The latest run reporting each name, and its value there.
    offline: &'a BTreeMap<String, (Run, f64)>,
    /// Online totals since `since`.
    online: &'a BTreeMap<String, f64>,
    since: i64,
    unmapped_after: i64,
    now: i64,
}

impl Sides<'_> {
    fn counter_json(&self, name: &str, seen: &[&CounterName]) -> Value {
        let side = |stage: Stage| seen.iter().find(|s| s.stage == stage);
        let (off, on) = (side(Stage::Offline), side(Stage::Online));
        let old = |s: &CounterName| self.now - s.first_seen_ms >= self.unmapped_after;
        let unmapped = match (off, on) {
            (Some(s), None) if old(s) => Some("offline_only"),
            (None, Some(s)) if old(s) => Some("online_only"),
            _ => None,
        };
        let latest = self.offline.get(name);
        json!({
            "name": name,
            "offline": off.map(|s| json!({
                "run_id": latest.map(|(r, _)| r.run_id.clone()),
                "run_time_ms": latest.map(|(r, _)| r.run_ms),
                "value": latest.map(|(_, v)| *v),
                "first_seen_ms": s.first_seen_ms,
                "last_seen_ms": s.last_seen_ms,
            })),
            "online": on.map(|s| json!({
                "total": self.online.get(name).copied().unwrap_or(0.0),
                "since_ms": self.since,
                "first_seen_ms": s.first_seen_ms,
                "last_seen_ms": s.last_seen_ms,
            })),
            "unmapped": unmapped,
        })
    }
}
