//! Store: profiles, reference pins, verdicts, alerts, counters and runs in SQLite (default) or
//! PostgreSQL, through sqlx. Every statement binds its parameters; migrations for each database
//! are embedded and applied at start.

mod counters;
mod datasets;

use std::str::FromStr;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor, Row};

use crate::alert_model::{AlertSeverity, AlertState, Notifier, Status};
use crate::profile::{DatasetProfile, Stage, file};
use crate::secret::Secret;

pub use counters::{CounterName, Run, RunAnomaly, RunValue, Source};
pub use datasets::DatasetSummary;

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Database errors keep their text for logs; the HTTP layer never shows it to clients.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored profile is unreadable: {0}")]
    Corrupt(String),
    #[error("cannot merge stored profiles: {0}")]
    Merge(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// What a stored profile is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Window,
    Rollup,
    Run,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Window => "window",
            Kind::Rollup => "rollup",
            Kind::Run => "run",
        }
    }
}

/// Where one stored profile lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub dataset: String,
    pub stage: Stage,
    pub kind: Kind,
    pub run_id: String,
    pub part: String,
    pub start_ms: i64,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects and applies migrations. A SQLite file is created if missing and runs in WAL mode.
    pub async fn connect(url: &Secret) -> Result<Store, StoreError> {
        install_default_drivers();
        let raw = url.expose();
        let backend = if raw.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = if backend == Backend::Sqlite && !raw.contains('?') {
            format!("{raw}?mode=rwc")
        } else {
            raw.to_owned()
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers never block the writer. FULL: a committed upload survives
                        // power loss. busy_timeout: concurrent writers wait instead of failing.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let store = Store { pool, backend };
        store.migrator().run(&store.pool).await?;
        Ok(store)
    }

    fn migrator(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE,
            Backend::Postgres => &POSTGRES,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Reachable, and every embedded migration applied.
    pub async fn ready(&self) -> Result<(), StoreError> {
        let applied: i64 = sqlx::query("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = $1")
            .bind(true)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        let expected = self.migrator().iter().count() as i64;
        if applied < expected {
            return Err(StoreError::Corrupt(format!(
                "{applied} of {expected} migrations applied"
            )));
        }
        Ok(())
    }

    /// Writes (or replaces) one profile.
    pub async fn put(
        &self,
        key: &Key,
        end_ms: i64,
        profile: &DatasetProfile,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        bind_key(sqlx::query(UPSERT), key)
            .bind(end_ms)
            .bind(profile.rows as i64)
            .bind(file::encode(profile))
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn get(&self, key: &Key) -> Result<Option<DatasetProfile>, StoreError> {
        let row = bind_key(sqlx::query(SELECT_ONE), key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| decode(&r.try_get::<Vec<u8>, _>(0)?))
            .transpose()
    }

    /// Merges `profile` into the rollup at `key` (read, merge, write in one transaction).
    pub async fn merge_into(
        &self,
        key: &Key,
        end_ms: i64,
        profile: &DatasetProfile,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let existing = bind_key(sqlx::query(SELECT_ONE), key)
            .fetch_optional(&mut *tx)
            .await?;
        let mut merged = profile.clone();
        if let Some(row) = existing {
            merge_row(&mut merged, &row)?;
        }
        bind_key(sqlx::query(UPSERT), key)
            .bind(end_ms)
            .bind(merged.rows as i64)
            .bind(file::encode(&merged))
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Datasets that have any stored profile.
    pub async fn datasets(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT dataset FROM profiles ORDER BY dataset")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>(0)?))
            .collect()
    }

    /// The reference run: the pinned one, else the offline run updated last.
    pub async fn reference_run(&self, dataset: &str) -> Result<Option<(String, bool)>, StoreError> {
        if let Some(row) = sqlx::query("SELECT run_id FROM reference_pins WHERE dataset = $1")
            .bind(dataset)
            .fetch_optional(&self.pool)
            .await?
        {
            return Ok(Some((row.try_get(0)?, true)));
        }
        let row = sqlx::query(
            "SELECT run_id FROM profiles WHERE dataset = $1 AND stage = $2 AND kind = $3
             ORDER BY updated_ms DESC, run_id DESC LIMIT 1",
        )
        .bind(dataset)
        .bind(Stage::Offline.as_str())
        .bind(Kind::Run.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?.map(|id| (id, false)))
    }

    /// All parts of an offline run, merged; `None` if the run has none.
    pub async fn run_profile(
        &self,
        dataset: &str,
        run_id: &str,
    ) -> Result<Option<DatasetProfile>, StoreError> {
        let (stage, kind) = (Stage::Offline, Kind::Run);
        self.merged(RUN_PARTS, dataset, stage, kind, run_id).await
    }

    /// Online windows of `dataset` that end after `since_ms`, merged.
    pub async fn recent_windows(
        &self,
        dataset: &str,
        since_ms: i64,
    ) -> Result<Option<DatasetProfile>, StoreError> {
        let (stage, kind) = (Stage::Online, Kind::Window);
        self.merged(WINDOWS_SINCE, dataset, stage, kind, since_ms)
            .await
    }

    /// The profiles `sql` selects (`dataset`, `stage` and `kind` bound as $1..$3, `value` as
    /// $4), merged in its order; `None` when there are none.
    async fn merged<'q, T>(
        &self,
        sql: &'q str,
        dataset: &'q str,
        stage: Stage,
        kind: Kind,
        value: T,
    ) -> Result<Option<DatasetProfile>, StoreError>
    where
        T: 'q + sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send,
    {
        let rows = sqlx::query(sql)
            .bind(dataset)
            .bind(stage.as_str())
            .bind(kind.as_str())
            .bind(value)
            .fetch_all(&self.pool)
            .await?;
        let mut rows = rows.iter();
        let Some(first) = rows.next() else {
            return Ok(None);
        };
        let mut merged = decode(&first.try_get::<Vec<u8>, _>(0)?)?;
        for row in rows {
            merge_row(&mut merged, row)?;
        }
        Ok(Some(merged))
    }

    pub async fn pin_reference(
        &self,
        dataset: &str,
        run_id: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO reference_pins (dataset, run_id, pinned_ms) VALUES ($1, $2, $3)
             ON CONFLICT (dataset) DO UPDATE SET run_id = excluded.run_id, pinned_ms = excluded.pinned_ms",
        )
        .bind(dataset)
        .bind(run_id)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn unpin_reference(&self, dataset: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM reference_pins WHERE dataset = $1")
            .bind(dataset)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn put_verdict(
        &self,
        dataset: &str,
        report_json: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO verdicts (dataset, evaluated_ms, report) VALUES ($1, $2, $3)
             ON CONFLICT (dataset) DO UPDATE SET evaluated_ms = excluded.evaluated_ms, report = excluded.report",
        )
        .bind(dataset)
        .bind(now_ms)
        .bind(report_json)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The latest verdict as stored JSON, with when it was made.
    pub async fn verdict(&self, dataset: &str) -> Result<Option<(String, i64)>, StoreError> {
        let row = sqlx::query("SELECT report, evaluated_ms FROM verdicts WHERE dataset = $1")
            .bind(dataset)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
            .transpose()?)
    }

    /// Deletes windows that ended before `window_cutoff_ms` and rollups before `rollup_cutoff_ms`.
    pub async fn expire(
        &self,
        window_cutoff_ms: i64,
        rollup_cutoff_ms: i64,
    ) -> Result<u64, StoreError> {
        let mut removed = 0;
        for (kind, cutoff) in [
            (Kind::Window, window_cutoff_ms),
            (Kind::Rollup, rollup_cutoff_ms),
        ] {
            removed += sqlx::query("DELETE FROM profiles WHERE kind = $1 AND end_ms < $2")
                .bind(kind.as_str())
                .bind(cutoff)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        // Online counters are summed per window; they are kept as long as rollups. Offline
        // counters are the run history and stay.
        removed += sqlx::query("DELETE FROM counters WHERE stage = 'online' AND start_ms < $1")
            .bind(rollup_cutoff_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(removed)
    }

    /// Number of stored profiles of a kind for a dataset (for tests and diagnostics).
    pub async fn count(&self, dataset: &str, kind: Kind) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT COUNT(*) FROM profiles WHERE dataset = $1 AND kind = $2")
                .bind(dataset)
                .bind(kind.as_str())
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?,
        )
    }

    pub async fn alert(&self, fingerprint: &str) -> Result<Option<AlertRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE fingerprint = $1"
        ))
        .bind(fingerprint)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| alert_row(&r)).transpose()
    }

    /// Every alert, firing first, then pending, then resolved; newest first within a state.
    pub async fn alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts ORDER BY
             CASE state WHEN 'firing' THEN 0 WHEN 'pending' THEN 1 ELSE 2 END, updated_ms DESC"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(alert_row).collect()
    }

    /// Writes an alert's new standing and the notifications its transition owes, in one
    /// transaction: a state change and its messages are stored together or not at all.
    pub async fn save_alert(
        &self,
        alert: &AlertRow,
        notifications: &[OutboxEntry],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
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
    }

    /// Forgets an alert (a pending one whose condition cleared before it fired).
    pub async fn delete_alert(&self, fingerprint: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM alerts WHERE fingerprint = $1")
            .bind(fingerprint)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Silences (or acknowledges) an alert until `until_ms`; `false` if there is no such alert.
    pub async fn silence_alert(
        &self,
        fingerprint: &str,
        until_ms: i64,
        acknowledged: bool,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE alerts SET silenced_until_ms = $1, acknowledged = $2 WHERE fingerprint = $3",
        )
        .bind(until_ms)
        .bind(i64::from(acknowledged))
        .bind(fingerprint)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Outbox entries due at `now_ms`, oldest first; those naming an unknown notifier or
    /// event apart, with why.
    pub async fn due_notifications(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<DueNotifications, StoreError> {
        let rows = sqlx::query(
            "SELECT id, fingerprint, notifier, event, payload, attempts FROM outbox
             WHERE state = 'pending' AND next_attempt_ms <= $1 ORDER BY id LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
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
                }),
                Err(unknown) => due.unreadable.push((id, unknown)),
            }
        }
        Ok(due)
    }

    /// Gives up an outbox entry that can never be delivered, saying why.
    pub async fn discard_notification(&self, id: i64, why: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET state = 'failed', last_outcome = $1 WHERE id = $2")
            .bind(why)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a delivery attempt: `state` is 'sent', 'failed' or 'pending' (retry at `next_ms`).
    pub async fn record_attempt(
        &self,
        row: &OutboxRow,
        state: &str,
        next_ms: i64,
        outcome: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE outbox SET state = $1, next_attempt_ms = $2, attempts = attempts + 1, last_outcome = $3
             WHERE id = $4",
        )
        .bind(state)
        .bind(next_ms)
        .bind(outcome)
        .bind(row.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE alerts SET last_delivery = $1 WHERE fingerprint = $2")
            .bind(format!("{}: {outcome}", row.notifier))
            .bind(&row.fingerprint)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// When a notification for `fingerprint` was last queued for `notifier`.
    pub async fn last_queued(
        &self,
        fingerprint: &str,
        notifier: Notifier,
    ) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MAX(created_ms) FROM outbox WHERE fingerprint = $1 AND notifier = $2",
        )
        .bind(fingerprint)
        .bind(notifier.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<Option<i64>, _>(0)?)
    }

    /// Outbox entries by state, for tests and diagnostics.
    pub async fn outbox_count(&self, state: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM outbox WHERE state = $1")
            .bind(state)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    pub async fn close(&self) {
        self.pool.close().await;
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
}

/// Outbox entries due for delivery, and those that cannot be read (by id, with why).
#[derive(Debug, Default)]
pub struct DueNotifications {
    pub rows: Vec<OutboxRow>,
    pub unreadable: Vec<(i64, crate::alert_model::UnknownName)>,
}

/// Writes (or replaces) the profile at a key: the key binds $1..$6, then end, rows, body and
/// update time.
const UPSERT: &str = "INSERT INTO profiles (dataset, stage, kind, run_id, part, start_ms, end_ms, rows, body, updated_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (dataset, stage, kind, run_id, part, start_ms)
     DO UPDATE SET end_ms = excluded.end_ms, rows = excluded.rows, body = excluded.body,
                   updated_ms = excluded.updated_ms";

/// The parts of an offline run (dataset, stage, kind, run id).
const RUN_PARTS: &str = "SELECT body FROM profiles WHERE dataset = $1 AND stage = $2 AND kind = $3
     AND run_id = $4 ORDER BY part";

/// Windows that end after a time (dataset, stage, kind, time).
const WINDOWS_SINCE: &str =
    "SELECT body FROM profiles WHERE dataset = $1 AND stage = $2 AND kind = $3
     AND end_ms > $4 ORDER BY start_ms";

/// The profile at a key, bound as $1..$6.
const SELECT_ONE: &str = "SELECT body FROM profiles WHERE dataset = $1 AND stage = $2 AND kind = $3
     AND run_id = $4 AND part = $5 AND start_ms = $6";

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

fn bind_key<'q>(query: AnyQuery<'q>, key: &'q Key) -> AnyQuery<'q> {
    query
        .bind(&key.dataset)
        .bind(key.stage.as_str())
        .bind(key.kind.as_str())
        .bind(&key.run_id)
        .bind(&key.part)
        .bind(key.start_ms)
}

fn decode(bytes: &[u8]) -> Result<DatasetProfile, StoreError> {
    file::decode(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Merges the stored profile of `row` (its first column) into `into`.
fn merge_row(into: &mut DatasetProfile, row: &sqlx::any::AnyRow) -> Result<(), StoreError> {
    let stored = decode(&row.try_get::<Vec<u8>, _>(0)?)?;
    into.merge(&stored)
        .map_err(|e| StoreError::Merge(e.to_string()))
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "window" => Ok(Kind::Window),
            "rollup" => Ok(Kind::Rollup),
            "run" => Ok(Kind::Run),
            other => Err(format!("unknown profile kind {other:?}")),
        }
    }
}
