//! The HTTP surface of `driftd serve`: ingest, profile uploads, references, verdicts, metrics
//! and health. Errors are one enum that maps to status codes and never shows database or
//! internal text to clients.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::from_fn;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;
use tracing::{error, warn};

use super::aggregate::Batch;
use super::counters;
use super::metrics::{DropReason, Metrics};
use crate::clock::now_ms;
use crate::config::ServeConfig;
use crate::ingest::records::{self, BodyFormat, RecordError};
use crate::profile::{DatasetProfile, Limits, Profiler, Stage, Value, file};
use crate::store::{Key, Kind, Store};
use crate::telemetry::spans::{self, RecordSampler};

/// Feature names a dataset has, to enforce `max_features` before records are queued.
#[derive(Debug, Default)]
pub struct Datasets {
    features: HashMap<String, HashSet<String>>,
}

impl Datasets {
    /// A dataset known from the store; its features are learnt again from new records.
    pub fn register(&mut self, dataset: String) {
        self.features.entry(dataset).or_default();
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub metrics: Metrics,
    pub registry: Arc<Registry>,
    pub queue: mpsc::Sender<Batch>,
    /// Bytes of queued requests (see `ServeConfig::queue_bytes`).
    pub queue_budget: Arc<tokio::sync::Semaphore>,
    pub datasets: Arc<Mutex<Datasets>>,
    pub config: Arc<ServeConfig>,
    /// Offline runs: judging, run gauges, run alerts.
    pub runs: Arc<super::runs::Runs>,
}

/// The router, for the server and for in-process tests.
pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route(
            "/v1/datasets/{dataset}/records",
            post(post_records).layer(from_fn(spans::ingest_records)),
        )
        .route(
            "/v1/datasets/{dataset}/profiles",
            post(post_profile).layer(from_fn(spans::ingest_profile)),
        )
        .route(
            "/v1/datasets/{dataset}/reference",
            get(get_reference)
                .put(put_reference)
                .delete(delete_reference),
        )
        .route("/v1/datasets/{dataset}/drift", get(get_drift))
        .route(
            "/v1/datasets/{dataset}/counters",
            post(counters::post_counters).layer(from_fn(spans::ingest_counters)),
        )
        .route(
            "/v1/datasets/{dataset}/counters",
            get(counters::get_counters),
        )
        .route("/v1/datasets/{dataset}/runs", get(counters::get_runs))
        .route(
            "/v1/datasets/{dataset}/runs/{run_id}/acknowledge",
            post(counters::acknowledge_run),
        )
        .route("/v1/alerts", get(get_alerts))
        .route("/v1/alerts/{fingerprint}/silence", post(silence_alert))
        .route(
            "/v1/alerts/{fingerprint}/acknowledge",
            post(acknowledge_alert),
        )
        .route("/metrics", get(get_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(get_ready))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("driftd is busy; retry after {0} s")]
    Busy(u64),
    #[error("driftd is shutting down")]
    ShuttingDown,
    /// Logged in full; the client sees only "internal error".
    #[error("internal error")]
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(detail) => {
                error!(%detail, "Request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let mut response = (status, Json(json!({ "error": self.to_string() }))).into_response();
        let retry_after = match self {
            ApiError::Busy(seconds) => Some(seconds),
            ApiError::ShuttingDown => Some(5),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

pub(super) fn dataset_name(name: &str) -> Result<(), ApiError> {
    name.parse::<crate::names::DatasetName>()
        .map(drop)
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

fn stage_of(stage: Option<&str>, default: Stage) -> Result<Stage, ApiError> {
    match stage {
        None => Ok(default),
        Some(s) => s.parse().map_err(ApiError::BadRequest),
    }
}

/// Run ids and part names: printable, short.
pub(super) fn identifier(what: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > 128 || value.chars().any(|c| c.is_control()) {
        return Err(ApiError::BadRequest(format!(
            "{what} must be 1 to 128 printable characters"
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
struct RecordsQuery {
    stage: Option<String>,
    run_id: Option<String>,
}

#[derive(Serialize)]
struct Accepted {
    accepted: usize,
    rejected: usize,
    /// The first refused records (at most 100), each with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<RecordError>,
    /// Values dropped because their feature is over the dataset's limit.
    #[serde(skip_serializing_if = "is_zero")]
    ignored_values: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ignored_features: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

const MAX_FEATURE_NAME_BYTES: usize = 256;

async fn post_records(
    State(state): State<AppState>,
    Path(dataset): Path<String>,
    Query(query): Query<RecordsQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let metrics = &state.metrics.ingest;
    let fail = |reason: DropReason, e: ApiError| {
        metrics.dropped(reason, 1);
        e
    };
    dataset_name(&dataset).map_err(|e| fail(DropReason::invalid_request, e))?;
    let stage = stage_of(query.stage.as_deref(), Stage::Online)
        .map_err(|e| fail(DropReason::invalid_request, e))?;
    let run_id = match (stage, query.run_id) {
        (Stage::Offline, None) => {
            return Err(fail(
                DropReason::invalid_request,
                ApiError::BadRequest("stage=offline needs a run_id".into()),
            ));
        }
        (Stage::Offline, Some(id)) => {
            identifier("run_id", &id).map_err(|e| fail(DropReason::invalid_request, e))?;
            Some(id)
        }
        (Stage::Online, _) => None,
    };
    let format = body_format(&headers).map_err(|e| fail(DropReason::unsupported_media_type, e))?;
    // The queue is bounded in bytes as well as batches, and the budget is taken before the body
    // is read: a request that would not fit is refused without reading it, and bodies being
    // read and profiled count too. Without a length, a body may be as large as allowed.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > state.config.max_body_bytes) {
        return Err(fail(
            DropReason::too_large,
            ApiError::TooLarge(state.config.max_body_bytes),
        ));
    }
    let reserve = declared.unwrap_or(state.config.max_body_bytes).max(1);
    let budget = state
        .queue_budget
        .clone()
        .try_acquire_many_owned(reserve.min(u32::MAX as usize) as u32)
        .map_err(|_| fail(DropReason::queue_full, ApiError::Busy(1)))?;
    let bytes = read_body(body, state.config.max_body_bytes)
        .await
        .map_err(|e| fail(DropReason::too_large, e))?;
    // Profiled on the request's task: moving large batches to other threads (spawn_blocking,
    // block_in_place) was measured to add 13 to 37 MiB of allocator arenas under load.
    let mut sampled = RecordSampler::new(
        state.config.trace_record_sample_rate,
        state.config.trace_record_max_attributes,
    );
    let profiled = profile_batch(
        format,
        &bytes,
        &dataset,
        stage,
        state.config.max_features,
        &mut sampled,
    );
    let (mut profile, problems, streamed) = profiled.map_err(|e| {
        fail(
            DropReason::invalid_request,
            ApiError::BadRequest(e.to_string()),
        )
    })?;
    profile.labels = streamed.labels;
    let (more_ignored, mut ignored_features) = state.admit(&dataset, &mut profile)?;
    let ignored_values = problems.ignored_values + more_ignored;
    ignored_features.splice(0..0, problems.ignored_features);
    ignored_features.truncate(10);
    let accepted = profile.rows as usize;
    let rejected = streamed.rejected_count;
    spans::record_ingest(
        &profile.labels,
        accepted,
        rejected,
        ignored_values,
        &sampled,
    );
    if accepted > 0 {
        // Reserve a place before counting anything: a full queue refuses the whole batch.
        let permit = state.reserve()?;
        permit.send(Batch::Records {
            dataset: dataset.as_str().into(),
            stage,
            run_id,
            profile: Box::new(profile),
            budget: Some(budget),
        });
        metrics.queue_depth(state.queue.max_capacity() - state.queue.capacity());
    }
    metrics.records_accepted(&dataset, stage, accepted as u64);
    if rejected > 0 {
        metrics.records_rejected(&dataset, stage, rejected as u64);
    }
    if ignored_values > 0 {
        metrics.dropped(DropReason::feature_limit, ignored_values);
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            accepted,
            rejected,
            errors: streamed.rejected,
            ignored_values,
            ignored_features,
        }),
    ))
}

/// Profiles a batch as it is parsed, one record in memory at a time: what waits in the queue
/// is a compact, mergeable profile of the batch, not the records.
fn profile_batch(
    format: BodyFormat,
    bytes: &[u8],
    dataset: &str,
    stage: Stage,
    max_features: usize,
    sampled: &mut RecordSampler,
) -> Result<(DatasetProfile, crate::profile::Problems, records::Streamed), records::BodyError> {
    let limits = Limits {
        max_features,
        ..Limits::default()
    };
    let mut profiler = Profiler::new(dataset, stage, limits);
    let streamed = records::for_each_record(format, bytes, |record| {
        sampled.observe(&record);
        profiler.observe_record(
            String::new,
            record
                .iter()
                .map(|(k, v)| (k.as_str(), Value::from_json(v))),
        );
    })?;
    let (profile, problems) = profiler.finish();
    Ok((profile, problems, streamed))
}

impl AppState {
    /// A place in the profiling queue, or 429 (full) / 503 (shutting down), counted.
    fn reserve(&self) -> Result<mpsc::Permit<'_, Batch>, ApiError> {
        self.queue.try_reserve().map_err(|e| match e {
            mpsc::error::TrySendError::Full(()) => {
                self.metrics.ingest.dropped(DropReason::queue_full, 1);
                ApiError::Busy(1)
            }
            mpsc::error::TrySendError::Closed(()) => {
                self.metrics.ingest.dropped(DropReason::shutting_down, 1);
                ApiError::ShuttingDown
            }
        })
    }

    /// Enforces the dataset limit: a new dataset over `max_datasets` is refused.
    pub(super) fn admit_dataset(&self, dataset: &str) -> Result<(), ApiError> {
        let mut datasets = self.datasets.lock().expect("dataset registry lock");
        if !datasets.features.contains_key(dataset) {
            if datasets.features.len() >= self.config.max_datasets {
                self.metrics.ingest.dropped(DropReason::dataset_limit, 1);
                return Err(ApiError::Unprocessable(format!(
                    "dataset limit reached: driftd accepts {} datasets (max_datasets)",
                    self.config.max_datasets
                )));
            }
            datasets.features.insert(dataset.to_owned(), HashSet::new());
        }
        Ok(())
    }

    /// Enforces the dataset and feature limits: a new dataset over `max_datasets` is refused;
    /// features of `profile` over the dataset's `max_features` (or with overlong names) are
    /// removed, their values counted, their names returned (the first ten).
    fn admit(
        &self,
        dataset: &str,
        profile: &mut DatasetProfile,
    ) -> Result<(u64, Vec<String>), ApiError> {
        self.admit_dataset(dataset)?;
        let mut datasets = self.datasets.lock().expect("dataset registry lock");
        let known = datasets.features.get_mut(dataset).expect("inserted above");
        let mut ignored = 0u64;
        let mut names = Vec::new();
        profile.features.retain(|name, feature| {
            if known.contains(name) {
                return true;
            }
            if name.len() <= MAX_FEATURE_NAME_BYTES
                && !name.is_empty()
                && known.len() < self.config.max_features
            {
                known.insert(name.clone());
                return true;
            }
            ignored += feature.count();
            if names.len() < 10 {
                names.push(name.clone());
            }
            false
        });
        Ok((ignored, names))
    }
}

fn body_format(headers: &HeaderMap) -> Result<BodyFormat, ApiError> {
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING)
        && encoding.as_bytes() != b"identity"
    {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Content-Encoding {:?} is not supported; send an uncompressed body",
            String::from_utf8_lossy(encoding.as_bytes())
        )));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    BodyFormat::from_content_type(content_type).ok_or_else(|| {
        ApiError::UnsupportedMediaType(format!(
            "Content-Type {content_type:?} is not supported; use application/json or application/x-ndjson"
        ))
    })
}

pub(super) async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::TooLarge(limit))
}

#[derive(Deserialize)]
struct ProfileQuery {
    stage: Option<String>,
    run_id: Option<String>,
    part: Option<String>,
    /// The run's logical time: RFC 3339 (UTC) or seconds since the epoch.
    run_time: Option<String>,
}

async fn post_profile(
    State(state): State<AppState>,
    Path(dataset): Path<String>,
    Query(query): Query<ProfileQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    dataset_name(&dataset)?;
    let stage = stage_of(query.stage.as_deref(), Stage::Offline)?;
    let bytes = read_body(body, state.config.max_body_bytes).await?;
    let mut profile = file::decode(bytes.as_ref())
        .map_err(|e| ApiError::BadRequest(format!("not a readable profile file: {e}")))?;
    // The URL names the dataset and the query the stage, whatever the file says.
    profile.dataset = dataset.clone();
    profile.stage = stage;
    let (ignored, _) = state.admit(&dataset, &mut profile)?;
    spans::record_profile(&profile.labels, profile.rows, ignored);
    if ignored > 0 {
        state
            .metrics
            .ingest
            .dropped(DropReason::feature_limit, ignored);
    }
    match stage {
        Stage::Offline => {
            let run_id = query
                .run_id
                .ok_or_else(|| ApiError::BadRequest("an offline profile needs a run_id".into()))?;
            identifier("run_id", &run_id)?;
            let part = query.part.unwrap_or_default();
            if !part.is_empty() {
                identifier("part", &part)?;
            }
            let run_ms = query
                .run_time
                .as_deref()
                .map(counters::parse_run_time)
                .transpose()
                .map_err(ApiError::BadRequest)?;
            let now = now_ms();
            let key = Key {
                dataset: dataset.clone(),
                stage,
                kind: Kind::Run,
                run_id: run_id.clone(),
                part: part.clone(),
                start_ms: 0,
            };
            let _one_at_a_time = state.runs.offline.lock().await;
            let earlier_rows = state.store.get(&key).await?.map_or(0, |p| p.rows);
            // Committed before the answer: 201 means it is in the database.
            state.store.put(&key, now, &profile, now).await?;
            state
                .store
                .upsert_run(&dataset, &run_id, run_ms, None, now)
                .await?;
            // A re-uploaded part adds only the rows it grew by: a retry never doubles.
            state.metrics.ingest.records_accepted(
                &dataset,
                stage,
                profile.rows.saturating_sub(earlier_rows),
            );
            let run = state
                .store
                .run_profile(&dataset, &run_id)
                .await?
                .unwrap_or_else(|| profile.clone());
            let figures = super::runs::run_metrics(&run, state.config.metrics_max_features);
            state
                .store
                .put_run_metrics(&dataset, &run_id, &figures)
                .await?;
            let judged = state
                .runs
                .judge(
                    &state.store,
                    &state.metrics.counters,
                    &dataset,
                    &run_id,
                    now,
                )
                .await?;
            Ok((
                StatusCode::CREATED,
                Json(json!({"dataset": dataset, "stage": "offline", "run_id": run_id, "part": part, "rows": profile.rows, "features": profile.features.len(), "run_rows": run.rows, "judged": judged})),
            )
                .into_response())
        }
        Stage::Online => {
            let rows = profile.rows;
            let features = profile.features.len();
            let permit = state.reserve()?;

            permit.send(Batch::Profile {
                dataset: dataset.as_str().into(),
                profile: Box::new(profile),
            });
            state.metrics.ingest.records_accepted(&dataset, stage, rows);
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({"dataset": dataset, "stage": "online", "rows": rows, "features": features})),
            )
                .into_response())
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pin {
    run_id: String,
}

async fn put_reference(
    State(state): State<AppState>,
    Path(dataset): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    dataset_name(&dataset)?;
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
    Path(dataset): Path<String>,
) -> Result<StatusCode, ApiError> {
    dataset_name(&dataset)?;
    state.store.unpin_reference(&dataset).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_reference(
    State(state): State<AppState>,
    Path(dataset): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    dataset_name(&dataset)?;
    match state.store.reference_run(&dataset).await? {
        Some((run_id, pinned)) => Ok(Json(
            json!({"dataset": dataset, "run_id": run_id, "pinned": pinned}),
        )),
        None => Err(ApiError::NotFound(format!(
            "dataset {dataset:?} has no offline run to compare with"
        ))),
    }
}

async fn get_drift(
    State(state): State<AppState>,
    Path(dataset): Path<String>,
) -> Result<Response, ApiError> {
    dataset_name(&dataset)?;
    match state.store.verdict(&dataset).await? {
        Some((report, _)) => {
            Ok(([(header::CONTENT_TYPE, "application/json")], report).into_response())
        }
        None => Err(ApiError::NotFound(format!(
            "no verdict for dataset {dataset:?} yet: it needs an offline run and recent online data"
        ))),
    }
}

fn rfc3339(ms: i64) -> Option<String> {
    (ms > 0).then(|| {
        humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64),
        )
        .to_string()
    })
}

async fn get_alerts(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let now = now_ms();
    let alerts: Vec<serde_json::Value> = state
        .store
        .alerts()
        .await?
        .into_iter()
        .map(|a| {
            let summary: serde_json::Value = serde_json::from_str(&a.summary).unwrap_or_default();
            let features: Vec<serde_json::Value> = summary["features"]
                .as_array()
                .map(|f| f.iter().map(|f| f["name"].clone()).collect())
                .unwrap_or_default();
            json!({
                "fingerprint": a.fingerprint,
                "rule": a.rule,
                "dataset": a.dataset,
                "severity": a.severity,
                "state": a.state,
                "since": rfc3339(a.active_since_ms),
                "firing_since": rfc3339(a.firing_since_ms),
                "resolved_at": rfc3339(a.resolved_ms),
                "silenced_until": (a.silenced_until_ms > now).then(|| rfc3339(a.silenced_until_ms)).flatten(),
                "acknowledged": a.acknowledged && a.silenced_until_ms > now,
                "last_delivery": (!a.last_delivery.is_empty()).then_some(a.last_delivery),
                "features": features,
                "findings": summary["findings"],
            })
        })
        .collect();
    Ok(Json(json!({ "alerts": alerts })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Quiet {
    #[serde(rename = "for")]
    duration: String,
}

async fn quiet(
    state: &AppState,
    fingerprint: &str,
    body: &[u8],
    acknowledged: bool,
) -> Result<Json<serde_json::Value>, ApiError> {
    let quiet: Quiet = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("expected {{\"for\": \"1h\"}}: {e}")))?;
    let duration = humantime::parse_duration(quiet.duration.trim()).map_err(|e| {
        ApiError::BadRequest(format!("\"for\" is not a duration ({e}); e.g. 30m, 4h"))
    })?;
    let until = now_ms().saturating_add(duration.as_millis().min(i64::MAX as u128) as i64);
    if !state
        .store
        .silence_alert(fingerprint, until, acknowledged)
        .await?
    {
        return Err(ApiError::NotFound(format!(
            "no alert with fingerprint {fingerprint:?}"
        )));
    }
    Ok(Json(
        json!({"fingerprint": fingerprint, "silenced_until": rfc3339(until), "acknowledged": acknowledged}),
    ))
}

/// No notifications for an alert for a while (its state still changes).
async fn silence_alert(
    State(state): State<AppState>,
    Path(fingerprint): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    quiet(&state, &fingerprint, &body, false).await
}

/// Someone is on it: like a silence, and shown as acknowledged.
async fn acknowledge_alert(
    State(state): State<AppState>,
    Path(fingerprint): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    quiet(&state, &fingerprint, &body, true).await
}

async fn get_metrics(State(state): State<AppState>) -> Response {
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        warn!(error = %e, "Cannot encode metrics");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn get_ready(State(state): State<AppState>) -> Response {
    match state.store.ready().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            warn!(error = %e, "Not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable or migrations not applied\n",
            )
                .into_response()
        }
    }
}
