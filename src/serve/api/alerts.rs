//! `/v1/alerts`: alerts with their state, and silencing or acknowledging one.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::clock::{now_ms, rfc3339_ms};
use crate::store::AlertRow;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/alerts", get(get_alerts))
        .route("/v1/alerts/{fingerprint}/silence", post(silence_alert))
        .route(
            "/v1/alerts/{fingerprint}/acknowledge",
            post(acknowledge_alert),
        )
}

async fn get_alerts(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let now = now_ms();
    let rows = state.store.alerts().await?;
    let alerting = &state.offline.runs.alerting;
    // An alert that follows the online verdict is as stale as its dataset's verdict.
    let mut stale = std::collections::HashMap::new();
    for a in &rows {
        if alerting.follows_verdict(&a.rule) && !stale.contains_key(&a.dataset) {
            let verdict = state.store.verdict(&a.dataset).await?;
            stale.insert(
                a.dataset.clone(),
                verdict.is_some_and(|(v, _)| is_stale(&v)),
            );
        }
    }
    let alerts: Vec<Value> = rows
        .into_iter()
        .map(|a| {
            let stale = stale.get(&a.dataset).copied().unwrap_or(false)
                && alerting.follows_verdict(&a.rule);
            alert_json(a, now, stale)
        })
        .collect();
    Ok(Json(json!({ "alerts": alerts })))
}

/// Whether a stored verdict says it is stale.
fn is_stale(verdict: &str) -> bool {
    serde_json::from_str::<Value>(verdict).is_ok_and(|v| v["stale"] == Value::Bool(true))
}

fn alert_json(a: AlertRow, now: i64, stale: bool) -> Value {
    let summary: Value = serde_json::from_str(&a.summary).unwrap_or_default();
    let features: Vec<Value> = summary["features"]
        .as_array()
        .map(|f| f.iter().map(|f| f["name"].clone()).collect())
        .unwrap_or_default();
    let silenced = a.silenced_until_ms > now;
    json!({
        "fingerprint": a.fingerprint,
        "rule": a.rule,
        "dataset": a.dataset,
        "severity": a.severity,
        "state": a.state,
        "since": rfc3339_ms(a.active_since_ms),
        "firing_since": rfc3339_ms(a.firing_since_ms),
        "resolved_at": rfc3339_ms(a.resolved_ms),
        "silenced_until": silenced.then(|| rfc3339_ms(a.silenced_until_ms)).flatten(),
        "acknowledged": a.acknowledged && silenced,
        "last_delivery": (!a.last_delivery.is_empty()).then_some(a.last_delivery),
        "features": features,
        "findings": summary["findings"],
        "stale": stale,
    })
}

/// The longest silence or acknowledgement: a year. Longer is a mistake, or an attempt to hide
/// an alert for good (delete the rule instead).
const MAX_QUIET: std::time::Duration = std::time::Duration::from_secs(366 * 86_400);

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
) -> Result<Json<Value>, ApiError> {
    let quiet: Quiet = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("expected {{\"for\": \"1h\"}}: {e}")))?;
    let duration = humantime::parse_duration(quiet.duration.trim()).map_err(|e| {
        ApiError::BadRequest(format!("\"for\" is not a duration ({e}); e.g. 30m, 4h"))
    })?;
    if duration.is_zero() || duration > MAX_QUIET {
        return Err(ApiError::BadRequest(format!(
            "\"for\" must be longer than 0 and at most {}, got {:?}",
            humantime::format_duration(MAX_QUIET),
            crate::format::truncate_chars(quiet.duration.trim(), 32)
        )));
    }
    let until = now_ms().saturating_add(duration.as_millis() as i64);
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
        json!({"fingerprint": fingerprint, "silenced_until": rfc3339_ms(until), "acknowledged": acknowledged}),
    ))
}

/// No notifications for an alert for a while (its state still changes).
async fn silence_alert(
    State(state): State<AppState>,
    Path(fingerprint): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    quiet(&state, &fingerprint, &body, false).await
}

/// Someone is on it: like a silence, and shown as acknowledged.
async fn acknowledge_alert(
    State(state): State<AppState>,
    Path(fingerprint): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    quiet(&state, &fingerprint, &body, true).await
}
