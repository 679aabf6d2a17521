//! Delivery: drains the outbox. At least once — an entry is marked sent only after the
//! receiver answered 2xx, so a crash mid-send resends it once after the restart; `429` waits
//! exactly its `Retry-After`; 400/403/404/410 are permanent (counted, logged, the notifier
//! marked failing, no retries); other failures back off exponentially with jitter. Each
//! notifier sends at most one message per second (Slack's rate for incoming webhooks).
//!
//! Every replica sharing a database delivers, and each entry is sent by one of them at a time:
//! a replica first takes the notifier's send slot (one holder across replicas, so the interval
//! holds across them and entries go out oldest first), then claims the notifier's oldest due
//! entry for [`CLAIM_MS`], sends it, records the outcome under its claim and hands the slot back
//! with the interval counted from the end of the send. A claim whose holder died lapses and the
//! entry is claimed again, so a crash mid-send resends it once; a holder whose claim lapsed and
//! was taken over records nothing (counted in `driftd_notification_claims_lost_total`).

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
use crate::store::{Backend, Claim, OutboxRow, Store};
use crate::telemetry::spans;

/// Most attempts before an entry is given up.
pub const MAX_ATTEMPTS: i64 = 12;
/// Backoff after the first failure, doubled each time up to `MAX_BACKOFF_MS`.
const BASE_BACKOFF_MS: i64 = 1_000;
const MAX_BACKOFF_MS: i64 = 10 * 60_000;
/// At most one message per notifier per this long, across every replica.
pub const MIN_INTERVAL_MS: i64 = 1_000;
/// The longest one request may take.
pub const SEND_TIMEOUT_MS: i64 = 5_000;
const SEND_TIMEOUT: Duration = Duration::from_millis(SEND_TIMEOUT_MS as u64);
/// How long a claim holds an outbox entry: far longer than a send (`SEND_TIMEOUT_MS`) and the
/// recording of its outcome, so that only a holder that died or stalled that long loses it.
pub const CLAIM_MS: i64 = 30_000;
/// How long a send slot is held unless handed back: the longest send, then the interval. A
/// holder that dies mid-send keeps its notifier waiting this long at most.
const SLOT_MS: i64 = SEND_TIMEOUT_MS + MIN_INTERVAL_MS;
const _: () = assert!(
    CLAIM_MS >= 3 * SEND_TIMEOUT_MS,
    "a claim outlasts a send with margin"
);
/// Most entries naming an unknown notifier given up at once.
const DISCARD_BATCH: i64 = 50;
/// How often `driftd_notifier_failing` is read again from the outbox (see `tell_failing`).
const STANDING_INTERVAL: Duration = Duration::from_secs(5);

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

    /// The notifiers with a URL.
    fn configured(&self) -> impl Iterator<Item = Notifier> + '_ {
        Notifier::ALL.iter().copied().filter(|n| match n {
            Notifier::Slack => self.slack.is_some(),
            Notifier::Webhook => self.webhook.is_some(),
            Notifier::Alertmanager => self.alertmanager.is_some(),
        })
    }

    /// Sends one notification; the status and `Retry-After`, or `None` without an answer.
    /// `idempotency_key` goes with webhook requests (the same on every attempt of one entry).
    async fn send(
        &self,
        notifier: Notifier,
        n: &Notification,
        idempotency_key: &str,
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
                    .header("content-type", "application/json")
                    .header(webhook::IDEMPOTENCY_HEADER, idempotency_key);
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

/// Claim tokens: this process's writer id, a random number drawn at start, and a counter —
/// unique across replicas (writer ids are) and across restarts under one writer id.
struct Claims {
    holder: String,
    run: u64,
    next: u64,
}

impl Claims {
    fn new(holder: String) -> Claims {
        use std::hash::{BuildHasher, Hasher};
        // std's hasher keys come from the system's randomness.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        Claims {
            holder,
            run: hasher.finish(),
            next: 0,
        }
    }

    /// A new claim, holding until `CLAIM_MS` from now.
    fn claim(&mut self) -> Claim {
        self.next += 1;
        Claim {
            token: format!("{}:{:016x}:{}", self.holder, self.run, self.next),
            holder: self.holder.clone(),
            until_ms: now_ms() + CLAIM_MS,
        }
    }
}

/// Delivers due outbox entries until `stop`, alongside every other replica sharing the
/// database; `writer` is this process's writer id.
pub async fn run(
    store: Store,
    notifiers: Notifiers,
    metrics: DeliveryMetrics,
    writer: String,
    stop: CancellationToken,
) {
    // Claims left by a process that is gone are taken back at once rather than left to lapse:
    // on SQLite every claim (the lock file says its holder is gone), on PostgreSQL those of this
    // writer id (this replica's previous run: two live processes never share a writer id).
    let gone = match store.backend() {
        Backend::Sqlite => None,
        Backend::Postgres => Some(writer.as_str()),
    };
    match store.release_claims_of(gone).await {
        Ok(0) => {}
        Ok(released) => info!(released, "Released the outbox claims of a previous run"),
        Err(e) => {
            warn!(error = %e, "Cannot release the outbox claims of a previous run; they lapse by themselves")
        }
    }
    let mut claims = Claims::new(writer);
    // Each notifier's send slot as last seen, so that a slot known to be taken costs no
    // round trip; the database's `notifier_pacing` decides.
    let mut next_allowed: HashMap<Notifier, i64> = HashMap::new();
    let mut standing = tokio::time::interval(STANDING_INTERVAL);
    standing.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = standing.tick() => {
                tell_failing(&store, &notifiers, &metrics).await;
                continue;
            }
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        let due = match store.due_notifiers(now_ms()).await {
            Ok(due) => due,
            // The database health check logs the outage, once: nothing to deliver meanwhile.
            Err(e) if e.outage().is_some() => continue,
            Err(e) => {
                warn!(error = %e, "Cannot read the notification outbox");
                continue;
            }
        };
        for name in due {
            if stop.is_cancelled() {
                return;
            }
            match name.parse::<Notifier>() {
                Ok(notifier) => {
                    if next_allowed.get(&notifier).is_some_and(|t| *t > now_ms()) {
                        continue;
                    }
                    let free_at =
                        deliver_next(&store, &notifiers, &metrics, claims.claim(), notifier).await;
                    next_allowed.insert(notifier, free_at);
                }
                Err(_) => discard_unknown(&store, claims.claim(), &name).await,
            }
        }
    }
}

/// `driftd_notifier_failing` of every configured notifier from its latest finished delivery in
/// the database, whichever replica made it: every replica tells the same, and a notifier that
/// works again is no longer failing on the replicas that saw it fail.
async fn tell_failing(store: &Store, notifiers: &Notifiers, metrics: &DeliveryMetrics) {
    for notifier in notifiers.configured() {
        match store.notifier_failing(notifier).await {
            Ok(failing) => metrics.failing(notifier, failing == Some(true)),
            Err(e) if e.outage().is_some() => return,
            Err(e) => {
                warn!(error = %e, %notifier, "Cannot read whether a notifier is failing");
                return;
            }
        }
    }
}

/// Takes `notifier`'s send slot and delivers its oldest due entry under `claim`; answers when
/// the slot is next free, as far as this process knows.
async fn deliver_next(
    store: &Store,
    notifiers: &Notifiers,
    metrics: &DeliveryMetrics,
    claim: Claim,
    notifier: Notifier,
) -> i64 {
    let now = now_ms();
    match store
        .take_send_slot(notifier, &claim.token, now, now + SLOT_MS)
        .await
    {
        Ok(None) => {}
        // Another replica sends to it now, or did less than the interval ago.
        Ok(Some(free_at)) => return free_at,
        Err(e) => {
            if e.outage().is_none() {
                warn!(error = %e, %notifier, "Cannot take a notifier's send slot");
            }
            return now;
        }
    }
    // The slot is this process's: nobody else sends to this notifier until it is handed back,
    // so its oldest due entry goes first.
    let sent = match store
        .claim_notifications(&claim, now, 1, Some(notifier.as_str()))
        .await
    {
        Ok(due) => {
            for (id, problem) in &due.unreadable {
                discard(store, &claim, *id, &problem.to_string()).await;
            }
            match due.rows.first() {
                Some(row) => {
                    deliver(store, notifiers, metrics, row).await;
                    true
                }
                None => false,
            }
        }
        Err(e) => {
            if e.outage().is_none() {
                warn!(error = %e, %notifier, "Cannot claim a notification");
            }
            false
        }
    };
    // Counted from the end of the send: the receiver got this message before the answer came
    // back, so the next one reaches it at least the interval later.
    let free_at = if sent {
        now_ms() + MIN_INTERVAL_MS
    } else {
        now_ms()
    };
    if let Err(e) = store
        .hand_back_send_slot(notifier, &claim.token, free_at)
        .await
    {
        warn!(error = %e, %notifier, "Cannot hand a notifier's send slot back; it lapses by itself");
        return now + SLOT_MS;
    }
    free_at
}

/// Gives up the due entries naming a notifier this driftd does not know (written by another
/// version, or damaged): never deliverable, so never retried.
async fn discard_unknown(store: &Store, claim: Claim, name: &str) {
    match store
        .claim_notifications(&claim, now_ms(), DISCARD_BATCH, Some(name))
        .await
    {
        Ok(due) => {
            for (id, problem) in &due.unreadable {
                discard(store, &claim, *id, &problem.to_string()).await;
            }
        }
        Err(e) => {
            if e.outage().is_none() {
                warn!(error = %e, "Cannot claim unreadable outbox entries");
            }
        }
    }
}

async fn discard(store: &Store, claim: &Claim, id: i64, problem: &str) {
    error!(outbox.id = id, error = %problem, "Unreadable outbox entry; marked failed");
    match store.discard_notification(id, &claim.token, problem).await {
        Ok(true) => {}
        Ok(false) => {
            warn!(
                outbox.id = id,
                "An unreadable outbox entry's claim passed to another replica"
            )
        }
        Err(e) => {
            warn!(error = %e, outbox.id = id, "Cannot mark an unreadable outbox entry failed")
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
        Ok(n) => match notifiers
            .send(
                row.notifier,
                &n,
                &webhook::idempotency_key(row.id, &row.fingerprint),
            )
            .await
        {
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
    match store.record_attempt(row, state, next, &described).await {
        Ok(true) => {}
        Ok(false) => {
            // The claim lapsed and another replica took the entry over: its outcome is the
            // other's to record (and it may send once more), not this one's to retry.
            metrics.claim_lost(row.notifier);
            warn!(notifier = %row.notifier, outbox.id = row.id, outcome = %described, "Delivery outcome not recorded: the notification's claim passed to another replica");
            return;
        }
        // The entry stays pending: it is sent again once its claim lapses, at most once more
        // per failure here.
        Err(e) => warn!(error = %e, notifier = %row.notifier, "Cannot record a delivery"),
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
    fn claim_tokens_are_unique_per_claim_and_per_run() {
        let (mut first, mut restarted) = (Claims::new("pod-0".into()), Claims::new("pod-0".into()));
        let a = first.claim();
        let b = first.claim();
        let c = restarted.claim();
        assert_ne!(a.token, b.token);
        assert_ne!(
            a.token, c.token,
            "a restart under the same writer id draws a new run"
        );
        assert!(a.token.starts_with("pod-0:"), "{}", a.token);
        assert_eq!(a.holder, "pod-0");
        let ahead = a.until_ms - now_ms();
        assert!(ahead > CLAIM_MS - 1_000 && ahead <= CLAIM_MS, "{ahead}");
    }

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
