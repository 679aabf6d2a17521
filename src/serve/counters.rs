//! The counters API: offline runs report their totals (idempotent per run id), servers report
//! increments, under the same names; runs are listed with their judgement and can be
//! acknowledged as the new normal.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::http::{ApiError, AppState, dataset_name, identifier, read_body};
use super::metrics::{CounterRejection, CounterStage, StageLabel};
use super::now_ms;
use crate::detect::parity;
use crate::names::valid_counter_name;
use crate::profile::Stage;
use crate::store::Source;

/// A counter report, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub stage: Stage,
    pub run_id: Option<String>,
    pub run_ms: Option<i64>,
    pub counters: Vec<(String, f64)>,
    /// A JSON object of string values.
    pub labels: Option<String>,
}

const MAX_LABELS: usize = 64;
const MAX_LABEL_BYTES: usize = 256;

/// Checks a report body; the error names the field and why.
pub fn parse_report(
    body: &[u8],
    max_counters: usize,
) -> Result<Report, (CounterRejection, String)> {
    let malformed = |m: String| (CounterRejection::malformed, m);
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| malformed(format!("body is not valid JSON: {e}")))?;
    let Value::Object(mut object) = value else {
        return Err(malformed("body must be a JSON object".into()));
    };
    for key in object.keys() {
        if !["stage", "run_id", "run_time", "counters", "labels"].contains(&key.as_str()) {
            return Err(malformed(format!(
                "unknown field {key:?}; expected stage, run_id, run_time, counters, labels"
            )));
        }
    }
    let stage = match object.remove("stage") {
        None => Stage::Offline,
        Some(Value::String(s)) if s == "offline" => Stage::Offline,
        Some(Value::String(s)) if s == "online" => Stage::Online,
        Some(other) => {
            return Err((
                CounterRejection::unknown_stage,
                format!(
                    "stage: expected \"offline\" or \"online\", got {}",
                    short(&other)
                ),
            ));
        }
    };
    let run_id = match object.remove("run_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            identifier("run_id", &s).map_err(|e| malformed(e.to_string()))?;
            Some(s)
        }
        Some(other) => {
            return Err(malformed(format!(
                "run_id: expected a string, got {}",
                short(&other)
            )));
        }
    };
    match (stage, &run_id) {
        (Stage::Offline, None) => {
            return Err((
                CounterRejection::missing_run_id,
                "offline counters need a run_id: one run's totals are replaced, not added, when the run reports again (servers send \"stage\": \"online\")".into(),
            ));
        }
        (Stage::Online, Some(_)) => {
            return Err(malformed(
                "run_id applies to offline counters; online counters are increments".into(),
            ));
        }
        _ => {}
    }
    let run_ms = match object.remove("run_time") {
        None | Some(Value::Null) => None,
        Some(v) => Some(run_time(&v).map_err(malformed)?),
    };
    let counters = match object.remove("counters") {
        Some(Value::Object(map)) => map,
        None => {
            return Err(malformed(
                "counters: missing; expected an object of name: number".into(),
            ));
        }
        Some(other) => {
            return Err(malformed(format!(
                "counters: expected an object of name: number, got {}",
                short(&other)
            )));
        }
    };
    if counters.len() > max_counters {
        return Err((
            CounterRejection::counter_limit,
            format!(
                "{} counters in one report; at most {max_counters} (max_counters)",
                counters.len()
            ),
        ));
    }
    let mut checked = Vec::with_capacity(counters.len());
    for (name, value) in counters {
        if !valid_counter_name(&name) {
            return Err((
                CounterRejection::invalid_name,
                format!(
                    "counter {:?}: names must match [a-zA-Z_][a-zA-Z0-9_]* (at most 128 characters)",
                    truncate(&name)
                ),
            ));
        }
        let number = match &value {
            Value::Number(n) => n.as_f64().filter(|x| x.is_finite()),
            _ => None,
        };
        match number {
            Some(x) if x >= 0.0 => checked.push((name, x)),
            _ => {
                return Err((
                    CounterRejection::invalid_value,
                    format!(
                        "counter {name:?}: expected a non-negative number, got {}",
                        short(&value)
                    ),
                ));
            }
        }
    }
    let labels = match object.remove("labels") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(labels(map).map_err(malformed)?),
        Some(other) => {
            return Err(malformed(format!(
                "labels: expected an object of name: string, got {}",
                short(&other)
            )));
        }
    };
    Ok(Report {
        stage,
        run_id,
        run_ms,
        counters: checked,
        labels,
    })
}

fn labels(map: Map<String, Value>) -> Result<String, String> {
    if map.len() > MAX_LABELS {
        return Err(format!("labels: at most {MAX_LABELS}, got {}", map.len()));
    }
    let mut out = Map::new();
    for (k, v) in map {
        let text = match v {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(format!(
                    "label {:?}: expected a string, got {}",
                    truncate(&k),
                    short(&other)
                ));
            }
        };
        if k.is_empty() || k.len() > MAX_LABEL_BYTES || text.len() > MAX_LABEL_BYTES {
            return Err(format!(
                "label {:?}: names and values must be 1 to {MAX_LABEL_BYTES} bytes",
                truncate(&k)
            ));
        }
        out.insert(k, Value::String(text));
    }
    Ok(Value::Object(out).to_string())
}

/// A run time from a query string: RFC 3339 in UTC, or seconds since the epoch.
pub fn parse_run_time(text: &str) -> Result<i64, String> {
    match text.parse::<f64>() {
        Ok(seconds) => run_time(&json!(seconds)),
        Err(_) => run_time(&Value::String(text.to_owned())),
    }
}

/// RFC 3339 in UTC ("2026-11-27T08:00:00Z", or "+00:00"), or seconds since the epoch.
fn run_time(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e11)
            .map(|s| (s * 1000.0) as i64)
            .ok_or_else(|| format!("run_time: {n} is not a time in seconds since the epoch")),
        Value::String(s) => {
            let utc = s
                .strip_suffix("+00:00")
                .map_or_else(|| s.clone(), |b| format!("{b}Z"));
            humantime::parse_rfc3339_weak(&utc)
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as i64)
                .ok_or_else(|| {
                    format!(
                        "run_time: {:?} is not an RFC 3339 time in UTC such as 2026-11-27T08:00:00Z",
                        truncate(s)
                    )
                })
        }
        other => Err(format!(
            "run_time: expected an RFC 3339 string or seconds since the epoch, got {}",
            short(other)
        )),
    }
}

/// A JSON value in an error message: its type, and the value itself when short.
fn short(v: &Value) -> String {
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let text = v.to_string();
    match (kind, text.chars().count() <= 40) {
        ("", _) => text,
        (k, true) if !matches!(v, Value::Array(_) | Value::Object(_)) => format!("{k} {text}"),
        (k, _) => k.to_owned(),
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() <= 64 {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(64).collect::<String>())
    }
}

pub async fn post_counters(
    State(state): State<AppState>,
    Path(dataset): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let metrics = &state.metrics;
    dataset_name(&dataset)?;
    let bytes = read_body(body, state.config.max_body_bytes).await?;
    let report = parse_report(&bytes, state.config.max_counters).map_err(|(reason, message)| {
        metrics.counter_rejected(reason);
        ApiError::BadRequest(message)
    })?;
    let span = tracing::Span::current();
    span.record("stage", report.stage.as_str());
    if let Some(run_id) = &report.run_id {
        span.record("run_id", run_id.as_str());
    }
    state.admit_dataset(&dataset).inspect_err(|_| {
        metrics.counter_rejected(CounterRejection::dataset_limit);
    })?;
    let now = now_ms();
    // The name cap: names this dataset has never reported count against `max_counters`.
    let known: BTreeSet<String> = state
        .store
        .counter_names(&dataset)
        .await?
        .into_iter()
        .map(|n| n.name)
        .collect();
    let new: Vec<&str> = report
        .counters
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !known.contains(*n))
        .collect();
    if known.len() + new.len() > state.config.max_counters {
        metrics.counter_rejected(CounterRejection::counter_limit);
        return Err(ApiError::Unprocessable(format!(
            "dataset {dataset} has {} counter names; {} new ones ({}) would pass max_counters ({})",
            known.len(),
            new.len(),
            new.iter().take(5).copied().collect::<Vec<_>>().join(", "),
            state.config.max_counters
        )));
    }
    let names: Vec<&str> = report.counters.iter().map(|(n, _)| n.as_str()).collect();
    let stage_label = StageLabel::from(report.stage);
    let series = |name: &str| CounterStage {
        dataset: dataset.clone(),
        name: name.to_owned(),
        stage: stage_label.clone(),
    };
    match (report.stage, &report.run_id) {
        (Stage::Offline, Some(run_id)) => {
            let _one_at_a_time = state.runs.offline.lock().await;
            state
                .store
                .upsert_run(
                    &dataset,
                    run_id,
                    report.run_ms,
                    report.labels.as_deref(),
                    now,
                )
                .await?;
            let earlier = state
                .store
                .put_run_counters(&dataset, run_id, &report.counters, now)
                .await?;
            state
                .store
                .saw_counter_names(&dataset, Stage::Offline, &names, now)
                .await?;
            // A counter never goes down: a re-reported run adds only what it grew by.
            for ((name, value), old) in report.counters.iter().zip(&earlier) {
                let grew = value - old.unwrap_or(0.0);
                let counter = metrics.counter_total.get_or_create(&series(name));
                if grew > 0.0 {
                    counter.inc_by(grew);
                }
            }
            let judged = state
                .runs
                .judge(&state.store, metrics, &dataset, run_id, now)
                .await?;
            Ok(Json(json!({
                "dataset": dataset,
                "stage": "offline",
                "run_id": run_id,
                "counters": report.counters.len(),
                "judged": judged,
            }))
            .into_response())
        }
        _ => {
            let window = state.config.window.as_millis() as i64;
            let start = now - now.rem_euclid(window);
            state
                .store
                .add_online_counters(&dataset, start, &report.counters, now)
                .await?;
            state
                .store
                .saw_counter_names(&dataset, Stage::Online, &names, now)
                .await?;
            for (name, value) in &report.counters {
                metrics
                    .counter_total
                    .get_or_create(&series(name))
                    .inc_by(*value);
            }
            Ok(Json(json!({
                "dataset": dataset,
                "stage": "online",
                "counters": report.counters.len(),
            }))
            .into_response())
        }
    }
}

/// Each counter's offline figure (the latest run's value) and online figure (the total over
/// `parity_window`), whether it is unmapped, and the parity ratios of the rule files.
pub async fn get_counters(
    State(state): State<AppState>,
    Path(dataset): Path<String>,
) -> Result<Response, ApiError> {
    dataset_name(&dataset)?;
    let now = now_ms();
    let names = state.store.counter_names(&dataset).await?;
    if names.is_empty() {
        return Err(ApiError::NotFound(format!(
            "dataset {dataset} has reported no counters"
        )));
    }
    let since = now - state.config.parity_window.as_millis() as i64;
    let offline: BTreeMap<String, (crate::store::Run, f64)> = state
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
    let unmapped_after = state.config.counter_unmapped_after.as_millis() as i64;
    let mut by_name: BTreeMap<&str, Vec<&crate::store::CounterName>> = BTreeMap::new();
    for n in &names {
        by_name.entry(n.name.as_str()).or_default().push(n);
    }
    let counters: Vec<Value> = by_name
        .iter()
        .map(|(name, sides)| {
            let seen = |stage: Stage| sides.iter().find(|s| s.stage == stage);
            let (off, on) = (seen(Stage::Offline), seen(Stage::Online));
            let unmapped = match (off, on) {
                (Some(s), None) if now - s.first_seen_ms >= unmapped_after => Some("offline_only"),
                (None, Some(s)) if now - s.first_seen_ms >= unmapped_after => Some("online_only"),
                _ => None,
            };
            json!({
                "name": name,
                "offline": off.map(|s| json!({
                    "run_id": offline.get(*name).map(|(r, _)| r.run_id.clone()),
                    "run_time_ms": offline.get(*name).map(|(r, _)| r.run_ms),
                    "value": offline.get(*name).map(|(_, v)| *v),
                    "first_seen_ms": s.first_seen_ms,
                    "last_seen_ms": s.last_seen_ms,
                })),
                "online": on.map(|s| json!({
                    "total": online.get(*name).copied().unwrap_or(0.0),
                    "since_ms": since,
                    "first_seen_ms": s.first_seen_ms,
                    "last_seen_ms": s.last_seen_ms,
                })),
                "unmapped": unmapped,
            })
        })
        .collect();
    let rules = state.runs.rules.for_dataset(&dataset);
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

/// The latest runs (at most 100), newest first, with their counters, run metrics and
/// anomalies.
pub async fn get_runs(
    State(state): State<AppState>,
    Path(dataset): Path<String>,
) -> Result<Response, ApiError> {
    dataset_name(&dataset)?;
    let runs = state.store.runs(&dataset, 100).await?;
    if runs.is_empty() {
        return Err(ApiError::NotFound(format!(
            "dataset {dataset} has no offline runs"
        )));
    }
    let mut out = Vec::with_capacity(runs.len());
    for run in runs {
        let counters = state
            .store
            .run_values(&dataset, &run.run_id, Source::Counter)
            .await?;
        let metrics = state
            .store
            .run_values(&dataset, &run.run_id, Source::Metric)
            .await?;
        let anomalies = state.store.run_anomalies(&dataset, &run.run_id).await?;
        out.push(json!({
            "run_id": run.run_id,
            "run_time_ms": run.run_ms,
            "reported_ms": run.reported_ms,
            "labels": serde_json::from_str::<Value>(&run.labels).unwrap_or(Value::Null),
            "counters": counters.into_iter().collect::<BTreeMap<_, _>>(),
            "metrics": metrics.into_iter().collect::<BTreeMap<_, _>>(),
            "anomalies": anomalies.iter().map(|a| json!({
                "name": a.name,
                "value": a.value,
                "expected": a.expected,
                "low": a.low,
                "high": a.high,
                "baseline": a.baseline,
                "runs": a.runs,
                "acknowledged": a.acknowledged,
                "message": super::runs::describe(a),
            })).collect::<Vec<_>>(),
        }));
    }
    Ok(Json(json!({ "dataset": dataset, "runs": out })).into_response())
}

/// Accepts a run's anomalies as the new normal: they join later baselines, and the run's
/// alert resolves.
pub async fn acknowledge_run(
    State(state): State<AppState>,
    Path((dataset, run_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    dataset_name(&dataset)?;
    identifier("run_id", &run_id)?;
    let _one_at_a_time = state.runs.offline.lock().await;
    if state.store.run(&dataset, &run_id).await?.is_none() {
        return Err(ApiError::NotFound(format!(
            "dataset {dataset} has no run {run_id:?}"
        )));
    }
    let acknowledged = state.store.acknowledge_run(&dataset, &run_id).await?;
    state
        .runs
        .judge(&state.store, &state.metrics, &dataset, &run_id, now_ms())
        .await?;
    Ok(
        Json(json!({"dataset": dataset, "run_id": run_id, "acknowledged": acknowledged}))
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &str) -> (CounterRejection, String) {
        parse_report(body.as_bytes(), 3).expect_err(body)
    }

    #[test]
    fn reports_are_checked_with_precise_reasons() {
        let ok = parse_report(
            br#"{"stage":"offline","run_id":"r1","run_time":"2026-11-27T08:00:00+00:00","counters":{"rows_read":1200,"rows_dropped":12.5},"labels":{"dag":"train","try":2}}"#,
            3,
        )
        .unwrap();
        assert_eq!(ok.stage, Stage::Offline);
        assert_eq!(ok.run_ms, Some(1_795_766_400_000));
        assert_eq!(
            ok.counters,
            vec![("rows_dropped".into(), 12.5), ("rows_read".into(), 1200.0)]
        );
        assert_eq!(ok.labels.as_deref(), Some(r#"{"dag":"train","try":"2"}"#));
        for (body, reason, message) in [
            (
                "{",
                CounterRejection::malformed,
                "body is not valid JSON: EOF while parsing an object at line 1 column 1",
            ),
            (
                "[]",
                CounterRejection::malformed,
                "body must be a JSON object",
            ),
            (
                r#"{"stage":"batch","counters":{}}"#,
                CounterRejection::unknown_stage,
                r#"stage: expected "offline" or "online", got a string "batch""#,
            ),
            (
                r#"{"counters":{"a":1}}"#,
                CounterRejection::missing_run_id,
                "offline counters need a run_id",
            ),
            (
                r#"{"run_id":"r","counters":{"rows read":1}}"#,
                CounterRejection::invalid_name,
                r#"counter "rows read": names must match"#,
            ),
            (
                r#"{"run_id":"r","counters":{"9lives":1}}"#,
                CounterRejection::invalid_name,
                r#"counter "9lives""#,
            ),
            (
                r#"{"run_id":"r","counters":{"a":-1}}"#,
                CounterRejection::invalid_value,
                r#"counter "a": expected a non-negative number, got -1"#,
            ),
            (
                r#"{"run_id":"r","counters":{"a":"12"}}"#,
                CounterRejection::invalid_value,
                r#"counter "a": expected a non-negative number, got a string "12""#,
            ),
            (
                r#"{"run_id":"r","counters":{"a":null}}"#,
                CounterRejection::invalid_value,
                "got null",
            ),
            (
                r#"{"run_id":"r","counters":{"a":1,"b":1,"c":1,"d":1}}"#,
                CounterRejection::counter_limit,
                "4 counters in one report; at most 3",
            ),
            (
                r#"{"run_id":"r","counters":{"a":1},"run_time":"yesterday"}"#,
                CounterRejection::malformed,
                "run_time: \"yesterday\" is not an RFC 3339 time",
            ),
            (
                r#"{"run_id":"r","counters":[1]}"#,
                CounterRejection::malformed,
                "counters: expected an object of name: number, got an array",
            ),
            (
                r#"{"stage":"online","run_id":"r","counters":{"a":1}}"#,
                CounterRejection::malformed,
                "run_id applies to offline counters",
            ),
            (
                r#"{"run_id":"r","counters":{"a":1},"extra":1}"#,
                CounterRejection::malformed,
                "unknown field \"extra\"",
            ),
        ] {
            let (r, m) = refused(body);
            assert_eq!(r, reason, "{body}: {m}");
            assert!(m.starts_with(message) || m.contains(message), "{body}: {m}");
        }
        // Numbers beyond f64 are refused by the JSON parser itself.
        let (r, m) = refused(r#"{"run_id":"r","counters":{"a":1e999}}"#);
        assert_eq!(r, CounterRejection::malformed, "{m}");
    }
}
