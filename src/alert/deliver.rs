//! Delivery: drains the outbox. At least once — an entry is marked sent only after the
//! receiver answered 2xx, so a crash mid-send resends it once after the restart; `429` waits
//! exactly its `Retry-After`; 400/403/404/410 are permanent (counted, logged, the notifier
//! marked failing, no retries); other failures back off exponentially with jitter. Each
//! notifier sends at most one message per second (Slack's rate for incoming webhooks).

use std::collections::HashMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::field::Empty;
use tracing::{error, info, warn};

use super::metrics::{DeliveryMetrics, DeliveryOutcome};
use super::{Notification, Notifier, alertmanager, slack, webhook};
use crate::clock::now_ms;
use crate::config::ServeConfig;
use crate::secret::Secret;
use crate::serve::leader::Leadership;
use crate::store::{OutboxRow, Store};
use crate::telemetry::spans;

/// Most attempts before an entry is given up.
pub const MAX_ATTEMPTS: i64 = 12;
/// Backoff after the first failure, doubled each time up to `MAX_BACKOFF_MS`.
const BASE_BACKOFF_MS: i64 = 1_000;
const MAX_BACKOFF_MS: i64 = 10 * 60_000;
/// At most one message per notifier per this long.
pub const MIN_INTERVAL_MS: i64 = 1_000;
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// What to do with an outbox entry after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Sent,
    RetryAt(i64),
    Failed,
}

/// Decides from the receiver's status (`None`: no answer) and `Retry-After` header. `jitter`
/// in 0..1 spreads retries by ±20 %.
pub fn decide(
    status: Option<u16>,
    retry_after: Option<&str>,
    attempts: i64,
    now_ms: i64,
    jitter: f64,
) -> (Decision, DeliveryOutcome) {
    let backoff = || {
        let exp = BASE_BACKOFF_MS
            .saturating_mul(1i64 << attempts.clamp(0, 20))
            .min(MAX_BACKOFF_MS);
        now_ms + (exp as f64 * (0.8 + 0.4 * jitter.clamp(0.0, 1.0))) as i64
    };
    match status {
        Some(200..=299) => (Decision::Sent, DeliveryOutcome::sent),
        Some(400 | 403 | 404 | 410) => (Decision::Failed, DeliveryOutcome::permanent_failure),
        _ if attempts + 1 >= MAX_ATTEMPTS => (Decision::Failed, DeliveryOutcome::gave_up),
        Some(429) => {
            // Exactly what the receiver asked for, never sooner.
            let wait = retry_after
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| now_ms + (s as i64).saturating_mul(1000));
            (
                Decision::RetryAt(wait.unwrap_or_else(backoff)),
                DeliveryOutcome::rate_limited,
            )
        }
        _ => (Decision::RetryAt(backoff()), DeliveryOutcome::retry),
    }
}

/// The configured receivers. URLs are secrets: they go into requests and nowhere else.
pub struct Notifiers {
    client: reqwest::Client,
    slack: Option<Secret>,
    webhook: Option<Secret>,
    webhook_secret: Option<Secret>,
    alertmanager: Option<Secret>,
}

impl Notifiers {
    pub fn from_config(config: &ServeConfig) -> Notifiers {
        Notifiers {
            client: reqwest::Client::builder()
                .timeout(SEND_TIMEOUT)
                .build()
                .expect("HTTP client builds"),
            slack: config.slack_webhook_url.clone(),
            webhook: config.webhook_url.clone(),
            webhook_secret: config.webhook_secret.clone(),
            alertmanager: config.alertmanager_url.clone(),
        }
    }

    /// Sends one notification; the status and `Retry-After`, or `None` without an answer.
    async fn send(
        &self,
        notifier: Notifier,
        n: &Notification,
    ) -> Result<(u16, Option<String>), String> {
        let request = match notifier {
            Notifier::Slack => {
                let url = self.slack.as_ref().ok_or("slack is not configured")?;
                self.client.post(url.expose()).json(&slack::message(n))
            }
            Notifier::Webhook => {
                let url = self.webhook.as_ref().ok_or("webhook is not configured")?;
                let body = webhook::body(n);
                let mut request = self
                    .client
                    .post(url.expose())
                    .header("content-type", "application/json");
                if let Some(secret) = &self.webhook_secret {
                    let timestamp = now_ms() / 1000;
                    request = request
                        .header(webhook::TIMESTAMP_HEADER, timestamp.to_string())
                        .header(
                            webhook::SIGNATURE_HEADER,
                            webhook::signature(secret.expose().as_bytes(), timestamp, &body),
                        );
                }
                request.body(body)
            }
            Notifier::Alertmanager => {
                let base = self
                    .alertmanager
                    .as_ref()
                    .ok_or("alertmanager is not configured")?;
                let url = format!("{}/api/v2/alerts", base.expose().trim_end_matches('/'));
                self.client.post(url).json(&alertmanager::alerts(n, None))
            }
        };
        // Errors name the kind of failure, never the URL (a secret).
        let response = request.send().await.map_err(|e| {
            let e = e.without_url();
            if e.is_timeout() {
                "timeout".to_owned()
            } else if e.is_connect() {
                "connection failed".to_owned()
            } else {
                e.to_string()
            }
        })?;
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok((response.status().as_u16(), retry_after))
    }
}

/// Delivers due outbox entries until `stop`.
pub async fn run(
    store: Store,
    notifiers: Notifiers,
    metrics: DeliveryMetrics,
    leadership: Leadership,
    stop: CancellationToken,
) {
    let mut next_allowed: HashMap<Notifier, i64> = HashMap::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        // The leader alone delivers: each notification is sent by one process.
        if !leadership.leading() {
            continue;
        }
        let due = match store.due_notifications(now_ms(), 50).await {
            Ok(due) => due,
            // The database health check logs the outage, once: nothing to deliver meanwhile.
            Err(e) if e.outage().is_some() => continue,
            Err(e) => {
                warn!(error = %e, "Cannot read the notification outbox");
                continue;
            }
        };
        for (id, problem) in &due.unreadable {
            // Written by another driftd version, or damaged: never deliverable, so not retried.
            error!(outbox.id = id, error = %problem, "Unreadable outbox entry; marked failed");
            if let Err(e) = store.discard_notification(*id, &problem.to_string()).await {
                warn!(error = %e, outbox.id = id, "Cannot mark an unreadable outbox entry failed");
            }
        }
        for row in due.rows {
            if stop.is_cancelled() {
                return;
            }
            let now = now_ms();
            if next_allowed.get(&row.notifier).is_some_and(|t| *t > now) {
                continue;
            }
            deliver(&store, &notifiers, &metrics, &row).await;
            // Counted from the end of the send: the receiver got this message before the
            // answer came back, so the next one reaches it at least the interval later.
            next_allowed.insert(row.notifier, now_ms() + MIN_INTERVAL_MS);
        }
    }
}

#[tracing::instrument(target = "driftd::span", name = "notify", skip_all, fields(
    notifier = %row.notifier, attempt = row.attempts + 1, alert.fingerprint = %row.fingerprint,
    alert.event = %row.event, outcome = Empty, http.response.status_code = Empty,
))]
async fn deliver(store: &Store, notifiers: &Notifiers, metrics: &DeliveryMetrics, row: &OutboxRow) {
    let now = now_ms();
    let jitter = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        % 1000) as f64
        / 1000.0;
    let (status, retry_after, error_type) = match serde_json::from_str::<Notification>(&row.payload)
    {
        Ok(n) => match notifiers.send(row.notifier, &n).await {
            Ok((status, retry_after)) => (Some(status), retry_after, None),
            Err(error_type) => (None, None, Some(error_type)),
        },
        Err(e) => (
            Some(400),
            None,
            Some(format!("unreadable outbox entry: {e}")),
        ),
    };
    let (decision, outcome) = decide(status, retry_after.as_deref(), row.attempts, now, jitter);
    spans::record_delivery(&format!("{outcome:?}"), status, error_type.as_deref());
    let described = match (status, &error_type) {
        (Some(s), _) => format!("{outcome:?} (HTTP {s})"),
        (None, Some(e)) => format!("{outcome:?} ({e})"),
        (None, None) => format!("{outcome:?}"),
    };
    let (state, next) = match decision {
        Decision::Sent => ("sent", now),
        Decision::RetryAt(t) => ("pending", t),
        Decision::Failed => ("failed", now),
    };
    metrics.attempted(row.notifier, outcome);
    match decision {
        Decision::Sent => metrics.failing(row.notifier, false),
        Decision::Failed => metrics.failing(row.notifier, true),
        Decision::RetryAt(_) => {}
    }
    // Metrics before the stored outcome: whoever sees the outcome also sees it counted.
    if let Err(e) = store.record_attempt(row, state, next, &described).await {
        // The entry stays pending: it is sent again, at most once more per failure here.
        warn!(error = %e, notifier = %row.notifier, "Cannot record a delivery");
    }
    match decision {
        Decision::Sent => {
            info!(notifier = %row.notifier, event = %row.event, fingerprint = %row.fingerprint, "Notification sent");
        }
        Decision::Failed => {
            error!(notifier = %row.notifier, outcome = %described, fingerprint = %row.fingerprint, "Notification failed for good; check the notifier's configuration");
        }
        Decision::RetryAt(t) => {
            warn!(notifier = %row.notifier, outcome = %described, retry_in_ms = t - now, "Notification will be retried");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions() {
        let now = 1_000_000;
        assert_eq!(decide(Some(200), None, 0, now, 0.5).0, Decision::Sent);
        assert_eq!(decide(Some(204), None, 3, now, 0.5).0, Decision::Sent);
        for permanent in [400, 403, 404, 410] {
            assert_eq!(
                decide(Some(permanent), None, 0, now, 0.5),
                (Decision::Failed, DeliveryOutcome::permanent_failure)
            );
        }
        // 429 waits exactly Retry-After.
        assert_eq!(
            decide(Some(429), Some("7"), 0, now, 0.9),
            (
                Decision::RetryAt(now + 7_000),
                DeliveryOutcome::rate_limited
            )
        );
        // 5xx and no answer back off: 1 s, 2 s, 4 s … (±20 %), capped at 10 min.
        assert_eq!(
            decide(Some(500), None, 0, now, 0.5).0,
            Decision::RetryAt(now + 1_000)
        );
        assert_eq!(
            decide(None, None, 2, now, 0.5).0,
            Decision::RetryAt(now + 4_000)
        );
        assert_eq!(
            decide(None, None, 2, now, 0.0).0,
            Decision::RetryAt(now + 3_200)
        );
        assert_eq!(
            decide(None, None, 2, now, 1.0).0,
            Decision::RetryAt(now + 4_800)
        );
        assert_eq!(
            decide(Some(503), None, 10, now, 0.5).0,
            Decision::RetryAt(now + MAX_BACKOFF_MS)
        );
        assert_eq!(
            decide(Some(503), None, MAX_ATTEMPTS - 1, now, 0.5),
            (Decision::Failed, DeliveryOutcome::gave_up)
        );
    }
}
