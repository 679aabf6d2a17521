//! `POST /v1/datasets/{dataset}/records`: JSON or NDJSON records, profiled on the request's
//! task and queued (bounded) for their window or run; `202` with accepted and rejected counts.

use std::ops::Range;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::from_fn;
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};

use super::auth::Access;
use super::{ApiError, AppState, Path, identifier, read_body_holding, stage_of};
use crate::config::ServeConfig;
use crate::ingest::records::{self, BodyFormat, RecordError};
use crate::names::DatasetName;
use crate::profile::{
    DatasetProfile, Limits, Problems, Profiler, Sample, SamplePolicy, Stage, Value,
};
use crate::serve::aggregate::Batch;
use crate::serve::buffer::{Buffer, BufferError, Carried, Head};
use crate::serve::metrics::DropReason;
use crate::telemetry::spans::{self, RecordSampler};

pub(super) fn router() -> Router<AppState> {
    Router::new().route(
        "/v1/datasets/{dataset}/records",
        post(post_records).layer(from_fn(spans::ingest_records)),
    )
}

/// Bytes of ids and values sampled per window (or run) for the skew join: a window is held in
/// memory per dataset, so this is well below the offline default.
pub const WINDOW_SAMPLE_BYTES: usize = 16 << 20;

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

/// The stage and, offline, the run id of a request.
fn checked_query(query: RecordsQuery) -> Result<(Stage, Option<String>), ApiError> {
    let stage = stage_of(query.stage.as_deref(), Stage::Online)?;
    match (stage, query.run_id) {
        (Stage::Offline, None) => Err(ApiError::BadRequest("stage=offline needs a run_id".into())),
        (Stage::Offline, Some(id)) => {
            identifier("run_id", &id)?;
            Ok((stage, Some(id)))
        }
        (Stage::Online, _) => Ok((stage, None)),
    }
}

async fn post_records(
    State(state): State<AppState>,
    path: Result<Path<DatasetName>, ApiError>,
    Query(query): Query<RecordsQuery>,
    Extension(access): Extension<Access>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let metrics = &state.metrics.ingest;
    let fail = |reason: DropReason| {
        move |e: ApiError| {
            metrics.dropped(reason, 1);
            e
        }
    };
    let Path(dataset) = path.map_err(fail(DropReason::invalid_request))?;
    let (stage, run_id) = checked_query(query).map_err(fail(DropReason::invalid_request))?;
    access.require_stage(stage)?;
    let format = body_format(&headers).map_err(fail(DropReason::unsupported_media_type))?;
    // The queue is bounded in bytes as well as batches. A declared length that cannot fit is
    // refused without reading the body; otherwise the budget is taken as the bytes arrive, so
    // bodies being read and profiled count too, and one that stalls holds only what it sent.
    let limit = state.config.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(fail(DropReason::too_large)(ApiError::TooLarge(limit)));
    }
    if let Some(declared) = declared {
        state.admission.check_room(declared)?;
    }
    let (bytes, budget) = read_body_holding(&headers, body, limit, &state.admission)
        .await
        .map_err(|e| match e.drop_reason() {
            Some(reason) => fail(reason)(e),
            // Counted where they happened: queue_full, body_timeout.
            None => e,
        })?;
    // Profiled on the request's task: moving large batches to other threads (spawn_blocking,
    // block_in_place) was measured to add 13 to 37 MiB of allocator arenas under load.
    let mut sampled = RecordSampler::new(
        state.config.trace_record_sample_rate,
        state.config.trace_record_max_attributes,
    );
    let id = id_field(&state, &dataset);
    let key = idempotency_key(&headers).map_err(fail(DropReason::invalid_request))?;
    let (mut profile, problems, streamed) = profile_batch(
        format,
        &bytes,
        (&dataset, stage, &id),
        &state.config,
        &mut sampled,
    )
    .map_err(|e| fail(DropReason::invalid_request)(ApiError::BadRequest(e.to_string())))?;
    profile.labels = streamed.labels;
    let rejected = streamed.rejected_count;
    // Over what the ingest buffer carries in one message: the records again, in halves.
    let labels = profile.labels.clone();
    let split = |range: Range<usize>| {
        let ids = (dataset.as_str(), stage, id.as_str());
        let mut part = profile_range(format, &bytes, ids, &state.config, range)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        part.labels.clone_from(&labels);
        state.admission.admit(&dataset, &mut part)?;
        Ok(part)
    };
    let publishing = Publishing {
        key,
        split: Some(&split),
    };
    let queued = queue_records(
        &state,
        &dataset,
        (stage, run_id),
        profile,
        budget,
        (problems, rejected),
        &sampled,
        &publishing,
    )
    .await?;
    let Queued {
        accepted,
        ignored_values,
        ignored_features,
    } = queued;
    let answer = Accepted {
        accepted,
        rejected,
        errors: streamed.rejected,
        ignored_values,
        ignored_features,
    };
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

/// What a profiled batch came to once admitted and queued.
pub(super) struct Queued {
    pub accepted: usize,
    pub ignored_values: u64,
    /// The first ten features whose values were dropped, over limits of the batch or the dataset.
    pub ignored_features: Vec<String>,
}

/// The profile of a range of a batch's records, when the whole is too large for one message.
pub(super) type Split<'a> =
    dyn Fn(Range<usize>) -> Result<DatasetProfile, ApiError> + Send + Sync + 'a;

/// How a batch goes to the ingest buffer, when there is one.
#[derive(Default)]
pub(super) struct Publishing<'a> {
    /// The request's `Idempotency-Key`: a retry is stored once.
    pub key: Option<String>,
    /// Profiles parts of the batch; without it, a batch too large for one message is refused.
    pub split: Option<&'a Split<'a>>,
}

/// Admits a profiled batch of records (the dataset's feature limit), queues it for its window
/// or run (or publishes it to the ingest buffer), records the ingest span and counts it: the
/// one way records of any route reach the aggregator. `problems` are the batch's own ignored
/// values; `rejected` the number of its refused records.
#[allow(clippy::too_many_arguments)]
pub(super) async fn queue_records(
    state: &AppState,
    dataset: &DatasetName,
    (stage, run_id): (Stage, Option<String>),
    mut profile: DatasetProfile,
    budget: Option<tokio::sync::OwnedSemaphorePermit>,
    (problems, rejected): (Problems, usize),
    sampled: &RecordSampler,
    publishing: &Publishing<'_>,
) -> Result<Queued, ApiError> {
    let metrics = &state.metrics.ingest;
    let dropped = state.admission.admit(dataset, &mut profile)?;
    let ignored_values = problems.ignored_values + dropped.values;
    let mut ignored_features = problems.ignored_features;
    ignored_features.extend(dropped.names);
    ignored_features.truncate(10);
    let accepted = profile.rows as usize;
    spans::record_ingest(&profile.labels, accepted, rejected, ignored_values, sampled);
    if accepted > 0 {
        match state.admission.buffer() {
            Some(buffer) => {
                let head = Head {
                    dataset,
                    stage,
                    run_id: run_id.as_deref(),
                    carried: Carried::Records,
                };
                publish_records(state, buffer, &head, profile, publishing).await?;
                drop(budget);
            }
            None => {
                // A place in the queue before counting anything: a full queue refuses the
                // whole batch.
                state.admission.enqueue(Batch::Records {
                    dataset: dataset.as_str().into(),
                    stage,
                    run_id,
                    profile: Box::new(profile),
                    budget,
                    delivered: None,
                })?;
                state.admission.count_depth();
            }
        }
    }
    metrics.records_accepted(dataset, stage, accepted as u64);
    if rejected > 0 {
        metrics.records_rejected(dataset, stage, rejected as u64);
    }
    if ignored_values > 0 {
        metrics.dropped(DropReason::feature_limit, ignored_values);
    }
    Ok(Queued {
        accepted,
        ignored_values,
        ignored_features,
    })
}

/// Publishes a batch's profile to the ingest buffer, in halves (and halves of halves) while it
/// is over what one message carries, and returns once JetStream has every part. Part
/// `[a, b)` of a batch has the message id `BASE:a-b`: a retry with the same
/// `Idempotency-Key` is stored once, however it was split.
async fn publish_records(
    state: &AppState,
    buffer: &Buffer,
    head: &Head<'_>,
    profile: DatasetProfile,
    publishing: &Publishing<'_>,
) -> Result<(), ApiError> {
    let base = buffer.message_id(head.dataset, publishing.key.as_deref());
    let mut parts = vec![(0..profile.rows as usize, profile)];
    while let Some((range, part)) = parts.pop() {
        let id = format!("{base}:{}-{}", range.start, range.end);
        match buffer.publish(head, &part, &id).await {
            Ok(()) => {}
            Err(BufferError::TooLarge { .. }) if range.len() > 1 && publishing.split.is_some() => {
                let split = publishing.split.expect("checked above");
                let middle = range.start + range.len() / 2;
                // The second half waits under the first: parts go out in order.
                parts.push((middle..range.end, split(middle..range.end)?));
                parts.push((range.start..middle, split(range.start..middle)?));
            }
            Err(BufferError::TooLarge { bytes, max }) if publishing.split.is_some() => {
                state
                    .admission
                    .count_buffer_refusal(&BufferError::TooLarge { bytes, max });
                return Err(ApiError::TooLargeForBuffer(format!(
                    "record {} alone profiles to {bytes} bytes, over the NATS server's \
                     max_payload of {max} bytes: the ingest buffer cannot carry it",
                    range.start
                )));
            }
            Err(e) => {
                state.admission.count_buffer_refusal(&e);
                return Err(e.into());
            }
        }
    }
    Ok(())
}

/// A request's `Idempotency-Key`: 1 to 128 visible ASCII characters.
pub(super) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default();
    if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::BadRequest(
            "Idempotency-Key must be 1 to 128 visible ASCII characters".into(),
        ));
    }
    Ok(Some(key.to_owned()))
}

/// Profiles the records of `bytes` whose places among the batch's readable records are in
/// `range`, as `profile_batch` profiles them all.
fn profile_range(
    format: BodyFormat,
    bytes: &[u8],
    (dataset, stage, id_field): (&str, Stage, &str),
    config: &ServeConfig,
    range: Range<usize>,
) -> Result<DatasetProfile, records::BodyError> {
    let mut profiler = profiler((dataset, stage, id_field), config);
    let mut index = 0;
    records::for_each_record(format, bytes, |record| {
        if range.contains(&index) {
            observe(&mut profiler, &record);
        }
        index += 1;
    })?;
    Ok(profiler.finish().0)
}

/// Profiles a batch as it is parsed, one record in memory at a time: what waits in the queue
/// is a compact, mergeable profile of the batch (and its rows sampled by id), not the records.
pub(crate) fn profile_batch(
    format: BodyFormat,
    bytes: &[u8],
    (dataset, stage, id_field): (&str, Stage, &str),
    config: &ServeConfig,
    sampled: &mut RecordSampler,
) -> Result<(DatasetProfile, Problems, records::Streamed), records::BodyError> {
    let mut profiler = profiler((dataset, stage, id_field), config);
    let streamed = records::for_each_record(format, bytes, |record| {
        sampled.observe(&record);
        observe(&mut profiler, &record);
    })?;
    let (profile, problems) = profiler.finish();
    Ok((profile, problems, streamed))
}

/// The record field `dataset`'s rows are sampled by: its rule files' `skew: id:`, else
/// `skew_id_field`.
pub(crate) fn id_field(state: &AppState, dataset: &str) -> String {
    let rules = &state.offline.runs.rules;
    rules
        .skew_id(dataset)
        .unwrap_or_else(|| state.config.skew_id_field.clone())
}

/// A profiler for a batch of records under the server's limits, sampling rows by `id_field`
/// for the skew join unless sampling is off.
/// One JSON record, into `profiler`.
pub(super) fn observe(
    profiler: &mut Profiler,
    record: &serde_json::Map<String, serde_json::Value>,
) {
    profiler.observe_record(
        String::new,
        record
            .iter()
            .map(|(k, v)| (k.as_str(), Value::from_json(v))),
    );
}

pub(super) fn profiler(
    (dataset, stage, id_field): (&str, Stage, &str),
    config: &ServeConfig,
) -> Profiler {
    let limits = Limits {
        max_features: config.max_features,
        ..Limits::default()
    };
    let profiler = Profiler::new(dataset, stage, limits);
    if config.skew_sample_rate == 0.0 {
        return profiler;
    }
    let policy = SamplePolicy {
        rate: config.skew_sample_rate,
        max_rows: config.skew_sample_rows,
        max_bytes: WINDOW_SAMPLE_BYTES,
    };
    profiler.with_sample(Sample::new(id_field, policy))
}

fn body_format(headers: &HeaderMap) -> Result<BodyFormat, ApiError> {
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
