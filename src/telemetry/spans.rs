//! What driftd's spans carry, for tools like Honeycomb that slice by any attribute. Spans:
//!
//! - `ingest`, one per `POST …/records`, `…/profiles`, `…/counters` or `/v1/inference-logs`
//!   request: `dataset`, `stage`,
//!   `run_id`, `ingest.kind`, one `label.<key>` per label the caller sent, `records.accepted`,
//!   `records.rejected`, `http.response.status_code`. A W3C `traceparent` header makes it a
//!   child of the caller's span. With `trace_record_sample_rate`, sampled records become
//!   `record` events with their values as `feature.<name>` attributes.
//! - `evaluate`, one per dataset evaluation: the reference run, row counts, drifted feature
//!   count, and a `feature` event per feature (`feature`, `method`, `score`, `threshold`,
//!   `drift`), a `finding` event per data-invariant finding, and with the skew join
//!   `skew.joined` and a `feature_skew` event per skewed feature.
//! - `notify`, one per notification attempt: `notifier`, `attempt`, `outcome`, HTTP status or
//!   error kind. Never the receiver's URL.
//!
//! Everything a caller controls is bounded: label and attribute counts, key and value lengths,
//! events per span.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Path, Query, Request};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::KeyValue;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use serde_json::{Map, Value};
use tracing::field::Empty;
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::detect::DriftReport;
use crate::detect::skew::SkewReport;

/// Most feature values on one `record` event (`trace_record_max_attributes` is at most this).
pub const MAX_RECORD_ATTRIBUTES: usize = 1000;
/// Events kept per span: `feature` and `record` events, plus the span's log events.
pub const MAX_EVENTS_PER_SPAN: usize = 2048;
/// `feature` events per evaluation (drifted features first) and `record` events per batch.
pub const MAX_FEATURE_EVENTS: usize = 1000;
pub const MAX_RECORD_EVENTS: usize = 1000;
/// `finding` events per evaluation.
pub const MAX_FINDING_EVENTS: usize = 100;
/// Caller labels that become `label.<key>` attributes.
pub const MAX_LABELS: usize = 64;
/// Longest attribute key part and value, in bytes; longer ones are cut at a character boundary.
pub const MAX_KEY_BYTES: usize = 128;
pub const MAX_VALUE_BYTES: usize = 256;

/// `text` cut to at most `max` bytes, at a character boundary.
fn bounded(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Wraps a `POST …/records` request in its `ingest` span.
pub async fn ingest_records(
    Path(dataset): Path<String>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    request: Request,
    next: Next,
) -> Response {
    let query = query.map(|q| q.0).unwrap_or_default();
    ingest("records", "online", &dataset, &query, request, next).await
}

/// Wraps a `POST …/profiles` request in its `ingest` span.
pub async fn ingest_profile(
    Path(dataset): Path<String>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    request: Request,
    next: Next,
) -> Response {
    let query = query.map(|q| q.0).unwrap_or_default();
    ingest("profile", "offline", &dataset, &query, request, next).await
}

/// Wraps a `POST /v1/inference-logs` event in its `ingest` span: the dataset is `?dataset=` or
/// the event's inference service (binary mode; a structured event's is in its body).
pub async fn ingest_inference_log(
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    request: Request,
    next: Next,
) -> Response {
    let query = query.map(|q| q.0).unwrap_or_default();
    let headers = request.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let dataset = query
        .get("dataset")
        .map(String::as_str)
        .or_else(|| header("ce-inferenceservicename"))
        .or_else(|| header("ce-x-inferenceservicename"))
        .or_else(|| header("ce-modelid"))
        .unwrap_or_default()
        .to_owned();
    ingest("inference-log", "online", &dataset, &query, request, next).await
}

/// Wraps a `POST …/counters` request in its `ingest` span (the stage and run id come from the
/// body; the handler records them).
pub async fn ingest_counters(
    Path(dataset): Path<String>,
    request: Request,
    next: Next,
) -> Response {
    ingest(
        "counters",
        "offline",
        &dataset,
        &HashMap::new(),
        request,
        next,
    )
    .await
}

async fn ingest(
    kind: &'static str,
    default_stage: &str,
    dataset: &str,
    query: &HashMap<String, String>,
    request: Request,
    next: Next,
) -> Response {
    let text = |key: &str| query.get(key).map(|v| bounded(v, MAX_KEY_BYTES));
    let span = tracing::info_span!(
        target: super::SPAN_TARGET,
        "ingest",
        otel.kind = "server",
        ingest.kind = kind,
        dataset = bounded(dataset, MAX_KEY_BYTES),
        stage = text("stage").unwrap_or(default_stage),
        run_id = Empty,
        auth.token = Empty,
        records.accepted = Empty,
        records.rejected = Empty,
        records.ignored_values = Empty,
        http.response.status_code = Empty,
        otel.status_code = Empty,
    );
    if let Some(run_id) = text("run_id") {
        span.record("run_id", run_id);
    }
    if let Some(crate::auth::Caller(name)) = request.extensions().get() {
        span.record("auth.token", name.as_str());
    }
    // The caller's W3C trace context, so that this span joins the caller's trace. Without
    // one (or with a malformed one) the span starts a trace of its own.
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
    let _ = span.set_parent(parent);
    let response = next.run(request).instrument(span.clone()).await;
    span.record(
        "http.response.status_code",
        i64::from(response.status().as_u16()),
    );
    if response.status().is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    response
}

/// What an ingested batch came to, on the current `ingest` span: the caller's labels (the
/// first `MAX_LABELS`, as `label.<key>`) and the record counts.
pub fn record_ingest(
    labels: &BTreeMap<String, String>,
    accepted: usize,
    rejected: usize,
    ignored_values: u64,
    sampled: &RecordSampler,
) {
    let span = record_batch(labels, accepted as u64, rejected, ignored_values);
    if sampled.enabled {
        span.set_attribute("records.sampled", sampled.events as i64);
    }
    tracing::debug!(accepted, rejected, "Records ingested");
}

/// What an uploaded profile came to, on the current `ingest` span: its labels and rows.
pub fn record_profile(labels: &BTreeMap<String, String>, rows: u64, ignored_values: u64) {
    record_batch(labels, rows, 0, ignored_values);
}

fn record_batch(
    labels: &BTreeMap<String, String>,
    accepted: u64,
    rejected: usize,
    ignored_values: u64,
) -> Span {
    let span = Span::current();
    span.record("records.accepted", accepted as i64);
    span.record("records.rejected", rejected as i64);
    if ignored_values > 0 {
        span.record("records.ignored_values", ignored_values as i64);
    }
    for (key, value) in labels.iter().take(MAX_LABELS) {
        span.set_attribute(
            format!("label.{}", bounded(key, MAX_KEY_BYTES)),
            bounded(value, MAX_VALUE_BYTES).to_owned(),
        );
    }
    if labels.len() > MAX_LABELS {
        span.set_attribute("labels.omitted", (labels.len() - MAX_LABELS) as i64);
    }
    span
}

/// Picks records for `record` events on the current span, by hashing: a record's `_id` when
/// it has one (so the same ids are picked offline and online, whatever the batch), its
/// position in the batch otherwise. With a rate of 0, a record costs one branch.
pub struct RecordSampler {
    enabled: bool,
    /// A record is kept when its hash is at most this.
    threshold: u64,
    max_attributes: usize,
    /// Distinguishes batches, for records without an id.
    seed: u64,
    position: u64,
    events: usize,
    span: Span,
}

/// Batches seen by samplers, for their seeds.
static BATCHES: AtomicU64 = AtomicU64::new(0);

/// The record field that identifies a record.
pub const RECORD_ID: &str = "_id";

impl RecordSampler {
    /// Keeps a share `rate` (0 to 1) of records, with at most `max_attributes` values each.
    pub fn new(rate: f64, max_attributes: usize) -> Self {
        let enabled = rate > 0.0;
        RecordSampler {
            enabled,
            threshold: if rate >= 1.0 {
                u64::MAX
            } else {
                (rate.max(0.0) * u64::MAX as f64) as u64
            },
            max_attributes: max_attributes.min(MAX_RECORD_ATTRIBUTES),
            seed: if enabled {
                mix(BATCHES.fetch_add(1, Ordering::Relaxed))
            } else {
                0
            },
            position: 0,
            events: 0,
            span: if enabled {
                Span::current()
            } else {
                Span::none()
            },
        }
    }

    /// Records sampled so far.
    pub fn sampled(&self) -> usize {
        self.events
    }

    #[inline]
    pub fn observe(&mut self, record: &Map<String, Value>) {
        if self.enabled {
            self.sample(record);
        }
    }

    fn sample(&mut self, record: &Map<String, Value>) {
        let position = self.position;
        self.position += 1;
        let id = record.get(RECORD_ID).and_then(|id| match id {
            Value::String(s) => Some(bounded(s, MAX_VALUE_BYTES).to_owned()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        let hash = match &id {
            Some(id) => fnv1a(id.as_bytes()),
            None => mix(self.seed ^ position),
        };
        if hash > self.threshold || self.events >= MAX_RECORD_EVENTS {
            return;
        }
        self.events += 1;
        let mut attributes = Vec::with_capacity(record.len().min(self.max_attributes) + 3);
        attributes.push(KeyValue::new("record.position", position as i64));
        if let Some(id) = id {
            attributes.push(KeyValue::new("record.id", id));
        }
        let mut omitted = 0i64;
        let mut kept = 0;
        for (name, value) in record {
            if name == RECORD_ID || value.is_null() {
                continue;
            }
            if kept == self.max_attributes {
                omitted += 1;
                continue;
            }
            kept += 1;
            let key = format!("feature.{}", bounded(name, MAX_KEY_BYTES));
            attributes.push(match value {
                Value::Bool(b) => KeyValue::new(key, *b),
                Value::Number(n) => match n.as_f64() {
                    Some(x) => KeyValue::new(key, x),
                    None => KeyValue::new(key, n.to_string()),
                },
                Value::String(s) => KeyValue::new(key, bounded(s, MAX_VALUE_BYTES).to_owned()),
                other => {
                    KeyValue::new(key, bounded(&other.to_string(), MAX_VALUE_BYTES).to_owned())
                }
            });
        }
        if omitted > 0 {
            attributes.push(KeyValue::new("record.features_omitted", omitted));
        }
        self.span.add_event("record", attributes);
    }
}

/// FNV-1a, finished with `mix`: stable across processes and versions, unlike `std`'s hasher,
/// so offline and online runs pick the same ids.
fn fnv1a(bytes: &[u8]) -> u64 {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    mix(hash)
}

/// SplitMix64's finaliser: spreads nearby inputs over the whole range.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A finished evaluation, on the current `evaluate` span: the reference, the sizes, and one
/// `feature` event per feature (drifted features first, at most `MAX_FEATURE_EVENTS`) and one
/// `finding` event per invariant finding (at most `MAX_FINDING_EVENTS`).
pub fn record_evaluation(run_id: &str, pinned: bool, report: &DriftReport) {
    let span = Span::current();
    span.set_attribute(
        "reference.run_id",
        bounded(run_id, MAX_KEY_BYTES).to_owned(),
    );
    span.set_attribute("reference.pinned", pinned);
    span.set_attribute("reference.rows", report.reference.rows as i64);
    span.set_attribute("current.rows", report.current.rows as i64);
    span.set_attribute("features.compared", report.features.len() as i64);
    span.set_attribute("features.drifted", report.drifted.len() as i64);
    span.set_attribute("findings", report.schema.len() as i64);
    if let Some(first) = report.drifted.first() {
        span.set_attribute(
            "features.top_drifted",
            bounded(first, MAX_KEY_BYTES).to_owned(),
        );
    }
    let drifted = report
        .drifted
        .iter()
        .filter_map(|name| report.features.get_key_value(name));
    let others = report.features.iter().filter(|(_, f)| !f.drift);
    for (name, feature) in drifted.chain(others).take(MAX_FEATURE_EVENTS) {
        let mut attributes = vec![
            KeyValue::new("feature", bounded(name, MAX_KEY_BYTES).to_owned()),
            KeyValue::new("kind", feature.kind.as_str()),
            KeyValue::new("method", feature.method.name()),
            KeyValue::new("threshold", feature.threshold),
            KeyValue::new("drift", feature.drift),
            KeyValue::new(
                "reason",
                bounded(&feature.reason, MAX_VALUE_BYTES).to_owned(),
            ),
        ];
        if let Some(score) = feature.score {
            attributes.push(KeyValue::new("score", score));
        }
        if let Some(floor) = feature.noise_floor {
            attributes.push(KeyValue::new("noise_floor", floor));
        }
        span.add_event("feature", attributes);
    }
    if report.features.len() > MAX_FEATURE_EVENTS {
        span.set_attribute(
            "features.events_omitted",
            (report.features.len() - MAX_FEATURE_EVENTS) as i64,
        );
    }
    for finding in report.schema.iter().take(MAX_FINDING_EVENTS) {
        let mut attributes = vec![
            KeyValue::new("check", serde_name(&finding.check)),
            KeyValue::new("severity", serde_name(&finding.severity)),
            KeyValue::new(
                "message",
                bounded(&finding.message, MAX_VALUE_BYTES).to_owned(),
            ),
        ];
        if let Some(feature) = &finding.feature {
            attributes.push(KeyValue::new(
                "feature",
                bounded(feature, MAX_KEY_BYTES).to_owned(),
            ));
        }
        if let Some(share) = finding.share {
            attributes.push(KeyValue::new("share", share));
        }
        span.add_event("finding", attributes);
    }
}

/// The skew of the id-joined samples, on the current `evaluate` span: `skew.joined` and
/// `skew.skewed`, and one `feature_skew` event per skewed feature (at most
/// `MAX_FINDING_EVENTS`) with its figures and verdict.
pub fn record_skew(report: &SkewReport) {
    let span = Span::current();
    span.set_attribute("skew.joined", report.joined.min(i64::MAX as u64) as i64);
    span.set_attribute("skew.skewed", report.skewed.len() as i64);
    let skewed = report
        .skewed
        .iter()
        .filter_map(|name| report.features.get_key_value(name));
    for (name, f) in skewed.take(MAX_FINDING_EVENTS) {
        let attributes = vec![
            KeyValue::new("feature", bounded(name, MAX_KEY_BYTES).to_owned()),
            KeyValue::new("mismatch_ratio", f.mismatch_ratio.unwrap_or(0.0)),
            KeyValue::new("compared", f.compared.min(i64::MAX as u64) as i64),
            KeyValue::new("mismatched", f.mismatched.min(i64::MAX as u64) as i64),
            KeyValue::new("threshold", f.threshold),
            KeyValue::new("verdict", bounded(&f.verdict, MAX_VALUE_BYTES).to_owned()),
        ];
        span.add_event("feature_skew", attributes);
    }
}

/// The serialised name of a unit enum value (`non_finite_appeared`, `error`).
fn serde_name(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

/// How a notification attempt ended, on the current `notify` span: `outcome` as in
/// `driftd_notifications_total`, and the receiver's HTTP status or the kind of failure.
pub fn record_delivery(outcome: &str, status: Option<u16>, error_type: Option<&str>) {
    let span = Span::current();
    span.record("outcome", outcome);
    if let Some(status) = status {
        span.record("http.response.status_code", i64::from(status));
    }
    if let Some(error_type) = error_type {
        span.set_attribute(
            "error.type",
            bounded(error_type, MAX_VALUE_BYTES).to_owned(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_cuts_at_character_boundaries() {
        assert_eq!(bounded("abc", 5), "abc");
        assert_eq!(bounded("abcdef", 3), "abc");
        // "é" is two bytes: a cut in its middle moves before it.
        assert_eq!(bounded("aé", 2), "a");
    }

    #[test]
    fn sampling_keeps_about_the_rate_and_follows_ids() {
        let records: Vec<Map<String, Value>> = (0..20_000)
            .map(|i| {
                let mut m = Map::new();
                m.insert("_id".into(), Value::String(format!("req-{i}")));
                m.insert("x".into(), Value::from(i));
                m
            })
            .collect();
        let kept = |rate: f64| {
            let mut sampler = RecordSampler::new(rate, 8);
            let mut kept = Vec::new();
            for r in &records {
                let before = sampler.sampled();
                sampler.observe(r);
                if sampler.sampled() > before {
                    kept.push(r["_id"].clone());
                }
                if sampler.sampled() == MAX_RECORD_EVENTS {
                    break;
                }
            }
            kept
        };
        assert!(kept(0.0).is_empty());
        let a = kept(0.01);
        // 1 % of 20,000: 200 ± a few standard deviations (√198 ≈ 14).
        assert!((150..=250).contains(&a.len()), "{}", a.len());
        // The same ids are picked again: sampling follows ids, not batches.
        assert_eq!(a, kept(0.01));
        assert_eq!(kept(1.0).len(), MAX_RECORD_EVENTS);
    }
}
