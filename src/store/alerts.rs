//! Alerts and the notification outbox: an alert's standing and the messages its transitions
//! owe, written together; deliveries claimed (by any replica, one at a time per entry),
//! paced per notifier across replicas, recorded under their claim and given up.

use sqlx::Row;

use super::{Backend, Store, StoreError};
use crate::alert_model::{AlertSeverity, AlertState, Notifier, Status};

impl Store {
    pub async fn alert(&self, fingerprint: &str) -> Result<Option<AlertRow>, StoreError> {
        self.bounded(async {
            let row = sqlx::query(&format!(
                "SELECT {ALERT_COLUMNS} FROM alerts WHERE fingerprint = $1"
            ))
            .bind(fingerprint)
            .fetch_optional(&self.pool)
            .await?;
            row.map(|r| alert_row(&r)).transpose()
        })
        .await
    }

    /// Every alert, firing first, then pending, then resolved; newest first within a state.
    pub async fn alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        self.bounded(async {
            let rows = sqlx::query(&format!(
                "SELECT {ALERT_COLUMNS} FROM alerts ORDER BY
                 CASE state WHEN 'firing' THEN 0 WHEN 'pending' THEN 1 ELSE 2 END, updated_ms DESC"
            ))
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(alert_row).collect()
        })
        .await
    }

    /// Writes an alert's new standing and the notifications its transition owes, in one
    /// transaction: a state change and its messages are stored together or not at all, and
    /// on a fenced store only under the lease it holds.
    pub async fn save_alert(
        &self,
        alert: &AlertRow,
        notifications: &[OutboxEntry],
    ) -> Result<(), StoreError> {
        self.bounded(async {
            let mut tx = self.begin_write().await?;
            self.check_fence(&mut tx).await?;
            sqlx::query(
                "INSERT INTO alerts (fingerprint, rule, dataset, severity, state, active_since_ms,
                     firing_since_ms, resolved_ms, updated_ms, summary)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (fingerprint) DO UPDATE SET rule = excluded.rule, dataset = excluded.dataset,
                     severity = excluded.severity, state = excluded.state,
                     active_since_ms = excluded.active_since_ms, firing_since_ms = excluded.firing_since_ms,
                     resolved_ms = excluded.resolved_ms, updated_ms = excluded.updated_ms,
                     summary = excluded.summary",
            )
            .bind(&alert.fingerprint)
            .bind(&alert.rule)
            .bind(&alert.dataset)
            .bind(alert.severity.as_str())
            .bind(alert.state.as_str())
            .bind(alert.active_since_ms)
            .bind(alert.firing_since_ms)
            .bind(alert.resolved_ms)
            .bind(alert.updated_ms)
            .bind(&alert.summary)
            .execute(&mut *tx)
            .await?;
            for n in notifications {
                sqlx::query(
                    "INSERT INTO outbox (fingerprint, notifier, event, payload, created_ms, next_attempt_ms)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&n.fingerprint)
                .bind(n.notifier.as_str())
                .bind(n.event.as_str())
                .bind(&n.payload)
                .bind(n.created_ms)
                .bind(n.created_ms)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Forgets an alert (a pending one whose condition cleared before it fired).
    pub async fn delete_alert(&self, fingerprint: &str) -> Result<(), StoreError> {
        self.bounded(async {
            sqlx::query("DELETE FROM alerts WHERE fingerprint = $1")
                .bind(fingerprint)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    /// Silences (or acknowledges) an alert until `until_ms`; `false` if there is no such alert.
    pub async fn silence_alert(
        &self,
        fingerprint: &str,
        until_ms: i64,
        acknowledged: bool,
    ) -> Result<bool, StoreError> {
        self.bounded(async {
            let done = sqlx::query(
                "UPDATE alerts SET silenced_until_ms = $1, acknowledged = $2 WHERE fingerprint = $3",
            )
            .bind(until_ms)
            .bind(i64::from(acknowledged))
            .bind(fingerprint)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }

    /// The notifiers (as stored: a name this driftd may not know) that have outbox entries due
    /// at `now_ms` and claimed by nobody, in name order.
    pub async fn due_notifiers(&self, now_ms: i64) -> Result<Vec<String>, StoreError> {
        self.bounded(async {
            let rows = sqlx::query(
                "SELECT DISTINCT notifier FROM outbox
                 WHERE state = 'pending' AND next_attempt_ms <= $1 AND claimed_until_ms <= $1
                 ORDER BY notifier",
            )
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| Ok(r.try_get::<String, _>(0)?))
                .collect()
        })
        .await
    }

    /// Claims up to `limit` outbox entries due at `now_ms` that nobody holds (never claimed, or
    /// their claim lapsed), oldest first, for `claim.holder` until `claim.until_ms`; only those
    /// of the notifier named `notifier` when given. One statement: on PostgreSQL the candidate
    /// rows are locked `FOR UPDATE SKIP LOCKED`, so concurrent claimers take disjoint sets; on
    /// SQLite write statements exclude one another. Entries naming an unknown notifier or event
    /// come back apart, with why, claimed too.
    pub async fn claim_notifications(
        &self,
        claim: &Claim,
        now_ms: i64,
        limit: i64,
        notifier: Option<&str>,
    ) -> Result<DueNotifications, StoreError> {
        self.bounded(async {
            let lock = match self.backend {
                Backend::Postgres => " FOR UPDATE SKIP LOCKED",
                Backend::Sqlite => "",
            };
            let only = if notifier.is_some() { " AND notifier = $6" } else { "" };
            let sql = format!(
                "UPDATE outbox SET claim_token = $1, claimed_by = $2, claimed_until_ms = $3
                 WHERE id IN (SELECT id FROM outbox
                     WHERE state = 'pending' AND next_attempt_ms <= $4 AND claimed_until_ms <= $4{only}
                     ORDER BY id LIMIT $5{lock})
                 RETURNING id, fingerprint, notifier, event, payload, attempts"
            );
            let mut query = sqlx::query(&sql)
                .bind(&claim.token)
                .bind(&claim.holder)
                .bind(claim.until_ms)
                .bind(now_ms)
                .bind(limit);
            if let Some(name) = notifier {
                query = query.bind(name);
            }
            let rows = query.fetch_all(&self.pool).await?;
            let mut due = DueNotifications::default();
            for r in &rows {
                let id: i64 = r.try_get(0)?;
                let words = (|| {
                    let notifier = r.try_get::<String, _>(2)?.parse::<Notifier>();
                    let event = r.try_get::<String, _>(3)?.parse::<Status>();
                    Ok::<_, sqlx::Error>(notifier.and_then(|n| event.map(|e| (n, e))))
                })()?;
                match words {
                    Ok((notifier, event)) => due.rows.push(OutboxRow {
                        id,
                        fingerprint: r.try_get(1)?,
                        notifier,
                        event,
                        payload: r.try_get(4)?,
                        attempts: r.try_get(5)?,
                        claim_token: claim.token.clone(),
                    }),
                    Err(unknown) => due.unreadable.push((id, unknown)),
                }
            }
            // RETURNING promises no order.
            due.rows.sort_by_key(|r| r.id);
            due.unreadable.sort_by_key(|(id, _)| *id);
            Ok(due)
        })
        .await
    }

    /// Lets go of the pending entries claimed with `token`, so anyone may claim them at once;
    /// answers how many.
    pub async fn release_claim(&self, token: &str) -> Result<u64, StoreError> {
        self.bounded(async {
            let done = sqlx::query(
                "UPDATE outbox SET claim_token = '', claimed_by = '', claimed_until_ms = 0
                 WHERE claim_token = $1 AND state = 'pending'",
            )
            .bind(token)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected())
        })
        .await
    }

    /// Lets go of the claims of a process that is gone: those held by `holder` (a replica
    /// restarted under its writer id), or every claim when `None` (SQLite's one process, whose
    /// predecessor the lock file says is gone). Answers how many.
    pub async fn release_claims_of(&self, holder: Option<&str>) -> Result<u64, StoreError> {
        self.bounded(async {
            let sql = "UPDATE outbox SET claim_token = '', claimed_by = '', claimed_until_ms = 0
                 WHERE state = 'pending' AND claimed_until_ms > 0";
            let done = match holder {
                Some(holder) => {
                    sqlx::query(&format!("{sql} AND claimed_by = $1"))
                        .bind(holder)
                        .execute(&self.pool)
                        .await?
                }
                None => sqlx::query(sql).execute(&self.pool).await?,
            };
            Ok(done.rows_affected())
        })
        .await
    }

    /// Gives up an outbox entry that can never be delivered, saying why, if the claim `token`
    /// still holds it; answers whether it did.
    pub async fn discard_notification(
        &self,
        id: i64,
        token: &str,
        why: &str,
    ) -> Result<bool, StoreError> {
        self.bounded(async {
            let done = sqlx::query(
                "UPDATE outbox SET state = 'failed', last_outcome = $1, claim_token = '',
                     claimed_by = '', claimed_until_ms = 0
                 WHERE id = $2 AND claim_token = $3",
            )
            .bind(why)
            .bind(id)
            .bind(token)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    /// Records a delivery attempt: `state` is 'sent', 'failed' or 'pending' (retry at `next_ms`),
    /// and the claim is cleared — only while `row`'s claim still holds the entry. `false`: the
    /// claim lapsed and another claimer took the entry over; nothing was changed, and the
    /// entry's fate is the new holder's.
    pub async fn record_attempt(
        &self,
        row: &OutboxRow,
        state: &str,
        next_ms: i64,
        outcome: &str,
    ) -> Result<bool, StoreError> {
        self.bounded(async {
            let mut tx = self.begin_write().await?;
            let done = sqlx::query(
                "UPDATE outbox SET state = $1, next_attempt_ms = $2, attempts = attempts + 1,
                     last_outcome = $3, claim_token = '', claimed_by = '', claimed_until_ms = 0
                 WHERE id = $4 AND claim_token = $5",
            )
            .bind(state)
            .bind(next_ms)
            .bind(outcome)
            .bind(row.id)
            .bind(&row.claim_token)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query("UPDATE alerts SET last_delivery = $1 WHERE fingerprint = $2")
                .bind(format!("{}: {outcome}", row.notifier))
                .bind(&row.fingerprint)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Takes `notifier`'s send slot for `holder` when its `next_allowed_ms` has passed at
    /// `now_ms` (or it was never taken), holding it until `until_ms`. One statement, so of
    /// replicas racing for it one wins. Answers `Ok(None)` when taken, else when the slot frees.
    pub async fn take_send_slot(
        &self,
        notifier: Notifier,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.bounded(async {
            let taken = sqlx::query(
                "INSERT INTO notifier_pacing (notifier, next_allowed_ms, holder) VALUES ($1, $2, $3)
                 ON CONFLICT (notifier) DO UPDATE SET
                     next_allowed_ms = excluded.next_allowed_ms, holder = excluded.holder
                 WHERE notifier_pacing.next_allowed_ms <= $4
                 RETURNING holder",
            )
            .bind(notifier.as_str())
            .bind(until_ms)
            .bind(holder)
            .bind(now_ms)
            .fetch_optional(&self.pool)
            .await?;
            if taken.is_some() {
                return Ok(None);
            }
            let row =
                sqlx::query("SELECT next_allowed_ms FROM notifier_pacing WHERE notifier = $1")
                    .bind(notifier.as_str())
                    .fetch_one(&self.pool)
                    .await?;
            Ok(Some(row.try_get(0)?))
        })
        .await
    }

    /// Hands `notifier`'s send slot back, if `holder` still holds it: nobody sends to it before
    /// `next_allowed_ms`. Answers whether it was `holder`'s.
    pub async fn hand_back_send_slot(
        &self,
        notifier: Notifier,
        holder: &str,
        next_allowed_ms: i64,
    ) -> Result<bool, StoreError> {
        self.bounded(async {
            let done = sqlx::query(
                "UPDATE notifier_pacing SET next_allowed_ms = $1, holder = ''
                 WHERE notifier = $2 AND holder = $3",
            )
            .bind(next_allowed_ms)
            .bind(notifier.as_str())
            .bind(holder)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    /// Whether `notifier`'s latest finished delivery, by any replica, failed for good (`Some(true)`)
    /// or was sent (`Some(false)`); `None` before its first. A finished entry's
    /// `next_attempt_ms` is the time of its last attempt.
    pub async fn notifier_failing(&self, notifier: Notifier) -> Result<Option<bool>, StoreError> {
        self.bounded(async {
            let state: Option<String> = sqlx::query_scalar(
                "SELECT state FROM outbox WHERE notifier = $1 AND state IN ('sent', 'failed')
                 ORDER BY next_attempt_ms DESC, id DESC LIMIT 1",
            )
            .bind(notifier.as_str())
            .fetch_optional(&self.pool)
            .await?;
            Ok(state.map(|s| s == "failed"))
        })
        .await
    }

    /// When a notification for `fingerprint` was last queued for `notifier`.
    pub async fn last_queued(
        &self,
        fingerprint: &str,
        notifier: Notifier,
    ) -> Result<Option<i64>, StoreError> {
        self.bounded(async {
            let row = sqlx::query(
                "SELECT MAX(created_ms) FROM outbox WHERE fingerprint = $1 AND notifier = $2",
            )
            .bind(fingerprint)
            .bind(notifier.as_str())
            .fetch_one(&self.pool)
            .await?;
            Ok(row.try_get::<Option<i64>, _>(0)?)
        })
        .await
    }

    /// Outbox entries by state, for tests and diagnostics.
    pub async fn outbox_count(&self, state: &str) -> Result<i64, StoreError> {
        self.bounded(async {
            Ok(sqlx::query("SELECT COUNT(*) FROM outbox WHERE state = $1")
                .bind(state)
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?)
        })
        .await
    }
}

const ALERT_COLUMNS: &str = "fingerprint, rule, dataset, severity, state, active_since_ms, \
    firing_since_ms, resolved_ms, updated_ms, silenced_until_ms, acknowledged, last_delivery, summary";

/// An alert as stored. Times are ms since the epoch; 0 means "not yet".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    pub fingerprint: String,
    pub rule: String,
    pub dataset: String,
    pub severity: AlertSeverity,
    pub state: AlertState,
    pub active_since_ms: i64,
    pub firing_since_ms: i64,
    pub resolved_ms: i64,
    pub updated_ms: i64,
    pub silenced_until_ms: i64,
    pub acknowledged: bool,
    pub last_delivery: String,
    /// The latest notification, as JSON.
    pub summary: String,
}

fn alert_row(r: &sqlx::any::AnyRow) -> Result<AlertRow, StoreError> {
    let fingerprint: String = r.try_get(0)?;
    let unreadable = |e: crate::alert_model::UnknownName| {
        StoreError::Corrupt(format!("alert {fingerprint}: {e}"))
    };
    let severity = r.try_get::<String, _>(3)?.parse().map_err(unreadable)?;
    let state = r.try_get::<String, _>(4)?.parse().map_err(unreadable)?;
    Ok(AlertRow {
        fingerprint,
        rule: r.try_get(1)?,
        dataset: r.try_get(2)?,
        severity,
        state,
        active_since_ms: r.try_get(5)?,
        firing_since_ms: r.try_get(6)?,
        resolved_ms: r.try_get(7)?,
        updated_ms: r.try_get(8)?,
        silenced_until_ms: r.try_get(9)?,
        acknowledged: r.try_get::<i64, _>(10)? != 0,
        last_delivery: r.try_get(11)?,
        summary: r.try_get(12)?,
    })
}

/// A notification to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub fingerprint: String,
    pub notifier: Notifier,
    pub event: Status,
    pub payload: String,
    pub created_ms: i64,
}

/// A notification waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub fingerprint: String,
    pub notifier: Notifier,
    pub event: Status,
    pub payload: String,
    pub attempts: i64,
    /// The claim this process holds the entry by (see [`Store::claim_notifications`]).
    pub claim_token: String,
}

/// A claim on outbox entries: its token (unique per claim), who holds it (the writer id) and
/// until when (ms since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub token: String,
    pub holder: String,
    pub until_ms: i64,
}

/// Outbox entries claimed for delivery, and those that cannot be read (by id, with why).
#[derive(Debug, Default)]
pub struct DueNotifications {
    pub rows: Vec<OutboxRow>,
    pub unreadable: Vec<(i64, crate::alert_model::UnknownName)>,
}
