//! `POST /v1/inference-logs`: KServe's and Seldon's payload loggers, pointed at driftd. Each
//! CloudEvent (a request or a response) becomes records of its inference service's dataset
//! (`?dataset=` overrides), profiled and queued like `POST …/records`, and `202` at once: the
//! logger's queue never waits on driftd.

use std::ops::Range;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::from_fn;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::records::{Publishing, Queued, id_field, observe, profiler, queue_records};
use super::{ApiError, AppState, read_body_holding};
use crate::ingest::inference::{self, Direction, Envelope, EventError, Options};
use crate::ingest::records::RecordError;
use crate::names::DatasetName;
use crate::profile::Stage;
use crate::telemetry::spans::{self, RecordSampler};

pub(super) fn router() -> Router<AppState> {
    Router::new().route(
        "/v1/inference-logs",
        post(post_inference_log).layer(from_fn(spans::ingest_inference_log)),
    )
}

#[derive(Deserialize)]
struct LogQuery {
    dataset: Option<String>,
}

#[derive(Serialize)]
struct Accepted {
    dataset: DatasetName,
    event: &'static str,
    accepted: usize,
    rejected: usize,
    /// The first refused rows (at most 100), each with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<RecordError>,
    #[serde(skip_serializing_if = "is_zero")]
    ignored_values: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ignored_features: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Structured mode carries the event in the body; binary mode in `ce-*` headers, which are
/// checked before the body is read.
fn structured(headers: &HeaderMap) -> Result<bool, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/cloudevents+json" => Ok(true),
        "application/cloudevents-batch+json" => Err(ApiError::UnsupportedMediaType(
            "CloudEvents batch mode is not supported; send one event per request, in binary \
             mode (ce-* headers) or as application/cloudevents+json"
                .into(),
        )),
        _ => Ok(false),
    }
}

fn event_error(e: EventError) -> ApiError {
    ApiError::BadRequest(e.to_string())
}

async fn post_inference_log(
    State(state): State<AppState>,
    query: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let metrics = &state.metrics.ingest;
    // Refusals of a full queue or a slow body are counted where they happen.
    let fail = |e: ApiError| {
        if let Some(reason) = e.drop_reason() {
            metrics.dropped(reason, 1);
        }
        e
    };
    let Query(query) = query.map_err(|e| fail(ApiError::BadRequest(e.body_text())))?;
    let structured = structured(&headers).map_err(fail)?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let binary = if structured {
        None
    } else {
        Some(inference::binary(header).map_err(|e| fail(event_error(e)))?)
    };
    let limit = state.config.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(fail(ApiError::TooLarge(limit)));
    }
    if let Some(declared) = declared {
        state.admission.check_room(declared)?;
    }
    let (bytes, budget) = read_body_holding(&headers, body, limit, &state.admission)
        .await
        .map_err(fail)?;
    let (envelope, data) = match binary {
        Some(envelope) => (envelope, std::borrow::Cow::Borrowed(bytes.as_ref())),
        None => inference::structured(&bytes).map_err(|e| fail(event_error(e)))?,
    };
    let dataset = dataset_of(query.dataset, &envelope).map_err(fail)?;
    let mut sampled = RecordSampler::new(
        state.config.trace_record_sample_rate,
        state.config.trace_record_max_attributes,
    );
    let id = id_field(&state, &dataset);
    let mut profiler = profiler((dataset.as_str(), Stage::Online, &id), &state.config);
    let names = state.offline.runs.rules.inference_names(&dataset);
    let options = Options {
        direction: envelope.direction,
        id: envelope.id.clone(),
        max_columns: state.config.max_features,
        positional_names: match envelope.direction {
            Direction::Request => names.inputs,
            Direction::Response => names.outputs,
        },
    };
    let rows = inference::for_each_row(&data, &options, |record| {
        sampled.observe(&record);
        observe(&mut profiler, &record);
    })
    .map_err(|e| fail(ApiError::BadRequest(e.to_string())))?;
    let (mut profile, mut problems) = profiler.finish();
    profile.labels = envelope.labels.clone();
    // Over what the ingest buffer carries in one message: the event's rows again, in halves.
    let split = |range: Range<usize>| {
        let mut part =
            super::records::profiler((dataset.as_str(), Stage::Online, &id), &state.config);
        let mut index = 0;
        inference::for_each_row(&data, &options, |record| {
            if range.contains(&index) {
                observe(&mut part, &record);
            }
            index += 1;
        })
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let mut part = part.finish().0;
        part.labels.clone_from(&envelope.labels);
        state.admission.admit(&dataset, &mut part)?;
        Ok(part)
    };
    // Values the payload walk dropped first, then the profiler's.
    problems.ignored_values += rows.ignored_values;
    let mut ignored = rows.ignored_features;
    ignored.append(&mut problems.ignored_features);
    problems.ignored_features = ignored;
    let rejected = rows.rejected_count;
    let Queued {
        accepted,
        ignored_values,
        ignored_features,
    } = queue_records(
        &state,
        &dataset,
        (Stage::Online, None),
        profile,
        budget,
        (problems, rejected),
        &sampled,
        &Publishing {
            key: None,
            split: Some(&split),
        },
    )
    .await?;
    let answer = Accepted {
        dataset,
        event: envelope.direction.as_str(),
        accepted,
        rejected,
        errors: rows.rejected,
        ignored_values,
        ignored_features,
    };
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

/// `?dataset=`, else the event's inference service.
fn dataset_of(query: Option<String>, envelope: &Envelope) -> Result<DatasetName, ApiError> {
    let name = query.or_else(|| envelope.dataset.clone()).ok_or_else(|| {
        ApiError::BadRequest(
            "no dataset: the event has no ce-inferenceservicename (nor ce-modelid for Seldon); \
             add ?dataset=NAME to the logger's URL"
                .into(),
        )
    })?;
    name.parse::<DatasetName>()
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}
