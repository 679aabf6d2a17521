//! The counters API: offline runs report their totals (idempotent per run id), servers report
//! increments, under the same names; runs are listed with their judgement and can be
//! acknowledged as the new normal.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::metrics::{CounterRejection, Metrics};
use super::offline::check_identifier;
use crate::format::truncate_chars;
use crate::names::valid_counter_name;
use crate::profile::Stage;
use crate::store::{Store, StoreError};

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

type Rejected = (CounterRejection, String);

fn malformed(message: String) -> Rejected {
    (CounterRejection::malformed, message)
}

/// Checks a report body; the error names the field and why.
pub fn parse_report(body: &[u8], max_counters: usize) -> Result<Report, Rejected> {
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
    let stage = stage_of(object.remove("stage"))?;
    let run_id = run_id_of(stage, object.remove("run_id"))?;
    let run_ms = match object.remove("run_time") {
        None | Some(Value::Null) => None,
        Some(v) => Some(run_time(&v).map_err(malformed)?),
    };
    let counters = counters_of(object.remove("counters"), max_counters)?;
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
        counters,
        labels,
    })
}

fn stage_of(value: Option<Value>) -> Result<Stage, Rejected> {
    match value {
        None => Ok(Stage::Offline),
        Some(Value::String(s)) if s == "offline" => Ok(Stage::Offline),
        Some(Value::String(s)) if s == "online" => Ok(Stage::Online),
        Some(other) => Err((
            CounterRejection::unknown_stage,
            format!(
                "stage: expected \"offline\" or \"online\", got {}",
                short(&other)
            ),
        )),
    }
}

/// Offline reports need a run id (one run's totals are replaced when it reports again);
/// online ones must not have one (they are increments).
fn run_id_of(stage: Stage, value: Option<Value>) -> Result<Option<String>, Rejected> {
    let run_id = match value {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            check_identifier("run_id", &s).map_err(malformed)?;
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
        (Stage::Offline, None) => Err((
            CounterRejection::missing_run_id,
            "offline counters need a run_id: one run's totals are replaced, not added, when the run reports again (servers send \"stage\": \"online\")".into(),
        )),
        (Stage::Online, Some(_)) => Err(malformed(
            "run_id applies to offline counters; online counters are increments".into(),
        )),
        _ => Ok(run_id),
    }
}

fn counters_of(value: Option<Value>, max_counters: usize) -> Result<Vec<(String, f64)>, Rejected> {
    let counters = match value {
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
    counters
        .into_iter()
        .map(|(name, value)| counter(name, &value))
        .collect()
}

/// The largest counter value or increment: 2^53, beyond which f64 no longer counts by one.
/// Running totals of such increments stay finite for longer than any deployment lives.
pub const MAX_COUNTER_VALUE: f64 = 9_007_199_254_740_992.0;

fn counter(name: String, value: &Value) -> Result<(String, f64), Rejected> {
    if !valid_counter_name(&name) {
        return Err((
            CounterRejection::invalid_name,
            format!(
                "counter {:?}: names must match [a-zA-Z_][a-zA-Z0-9_]* (at most 128 characters)",
                truncate_chars(&name, 64)
            ),
        ));
    }
    let number = match value {
        Value::Number(n) => n.as_f64().filter(|x| x.is_finite()),
        _ => None,
    };
    match number {
        Some(x) if x > MAX_COUNTER_VALUE => Err((
            CounterRejection::invalid_value,
            format!(
                "counter {name:?}: {x:e} is beyond 2^53 ({MAX_COUNTER_VALUE}), the largest \
                 number counted exactly"
            ),
        )),
        Some(x) if x >= 0.0 => Ok((name, x)),
        _ => Err((
            CounterRejection::invalid_value,
            format!(
                "counter {name:?}: expected a non-negative number, got {}",
                short(value)
            ),
        )),
    }
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
                    truncate_chars(&k, 64),
                    short(&other)
                ));
            }
        };
        if k.is_empty() || k.len() > MAX_LABEL_BYTES || text.len() > MAX_LABEL_BYTES {
            return Err(format!(
                "label {:?}: names and values must be 1 to {MAX_LABEL_BYTES} bytes",
                truncate_chars(&k, 64)
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
                        truncate_chars(s, 64)
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

/// New counter names over `max_counters`, in words for the client.
pub async fn over_name_cap(
    store: &Store,
    dataset: &str,
    report: &Report,
    max_counters: usize,
) -> Result<Option<String>, StoreError> {
    // Names this dataset has never reported count against `max_counters`.
    let known: BTreeSet<String> = store
        .counter_names(dataset)
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
    if known.len() + new.len() <= max_counters {
        return Ok(None);
    }
    Ok(Some(format!(
        "dataset {dataset} has {} counter names; {} new ones ({}) would pass max_counters ({max_counters})",
        known.len(),
        new.len(),
        new.iter().take(5).copied().collect::<Vec<_>>().join(", "),
    )))
}

/// Adds a server's increments to the window starting at `window_start_ms`.
pub async fn store_online(
    store: &Store,
    metrics: &Metrics,
    dataset: &str,
    window_start_ms: i64,
    counters: &[(String, f64)],
    now_ms: i64,
) -> Result<(), StoreError> {
    let names: Vec<&str> = counters.iter().map(|(n, _)| n.as_str()).collect();
    store
        .add_online_counters(dataset, window_start_ms, counters, now_ms)
        .await?;
    store
        .saw_counter_names(dataset, Stage::Online, &names, now_ms)
        .await?;
    for (name, value) in counters {
        metrics
            .counters
            .counter_added(dataset, Stage::Online, name, *value);
    }
    Ok(())
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
        // Finite but beyond 2^53: refused, so running totals never reach infinity.
        let (r, m) = refused(r#"{"run_id":"r","counters":{"a":1.7e308}}"#);
        assert_eq!(r, CounterRejection::invalid_value);
        assert_eq!(
            m,
            "counter \"a\": 1.7e308 is beyond 2^53 (9007199254740992), the largest number counted exactly"
        );
        // Numbers beyond f64 are refused by the JSON parser itself.
        let (r, m) = refused(r#"{"run_id":"r","counters":{"a":1e999}}"#);
        assert_eq!(r, CounterRejection::malformed, "{m}");
    }
}
