//! Store: profiles, reference pins, verdicts and their score history, alerts, counters and runs in SQLite (default) or
//! PostgreSQL, through sqlx. Every statement binds its parameters; migrations for each database
//! are embedded and applied at start.
//!
//! Leases (`leases`) choose the one process sharing a database that evaluates. Any process
//! delivers the notification outbox: entries are claimed (`outbox.claim_token`), and each
//! notifier's send slot (`notifier_pacing`) is held by one process at a time.
//!
//! Profiles are stored as partials, one per writer (`writer_id`): each `driftd serve` process
//! sharing a database writes only its own partial of an open window, and reads merge them all.
//! With the ingest buffer, a partial is written together with the messages folded into it
//! (`buffer_applied`), so a redelivered message is counted once.
//!
//! Every operation is bounded: refused at once while the database is known to be unreachable
//! ([`Health`]), abandoned when the health check finds it gone or after `database_timeout`, so
//! that an outage is answered in time instead of after the pool's own wait.

mod alerts;
mod applied;
mod counters;
mod datasets;
pub mod health;
mod leases;
mod scores;

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Connection, Executor, Row};

use crate::profile::{DatasetProfile, Stage, file};
use crate::secret::Secret;

pub use alerts::{AlertRow, Claim, DueNotifications, OutboxEntry, OutboxRow};
pub use applied::{Applied, StreamId};
pub use counters::{CounterName, Run, RunAnomaly, RunValue, Source};
pub use datasets::DatasetSummary;
pub use health::{Health, Outage};
pub use leases::{FENCE_HOLD, Fence, Held, Lease};
pub use scores::{Score, Scores};

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Database errors keep their text for logs; the HTTP layer never shows it to clients.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database cannot be used now; the operation was not attempted or was abandoned.
    #[error("database unavailable: {0}")]
    Unavailable(Outage),
    #[error("stored profile is unreadable: {0}")]
    Corrupt(String),
    #[error("cannot merge stored profiles: {0}")]
    Merge(String),
    /// A fenced write, refused: this process does not hold the leader lease in the term it
    /// believed.
    #[error("not the leader: the lease is another's, or in another term")]
    NotLeader,
}

impl StoreError {
    /// The outage this error means, if it means one: worth retrying once the database is back.
    pub fn outage(&self) -> Option<Outage> {
        match self {
            StoreError::Unavailable(outage) => Some(outage.clone()),
            StoreError::Database(e) => health::outage_of(e),
            StoreError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => health::outage_of(e),
            _ => None,
        }
    }

    /// A fenced transaction that PostgreSQL ended because this process left it idle longer
    /// than [`FENCE_HOLD`] (it was stopped or starved mid-write, its lease possibly taken
    /// over meanwhile): nothing of it was written.
    pub fn fence_held_too_long(&self) -> bool {
        // 25P03: idle_in_transaction_session_timeout, set only in fenced transactions.
        matches!(self, StoreError::Database(sqlx::Error::Database(db))
            if db.code().as_deref() == Some("25P03"))
    }
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

/// Where one stored profile lives: one writer's partial of a window, rollup or run part.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub dataset: String,
    pub stage: Stage,
    pub kind: Kind,
    pub run_id: String,
    pub part: String,
    pub start_ms: i64,
    /// The `driftd serve` process that writes this partial (`writer_id`); `''` for uploaded
    /// profiles and for rows stored before partials were kept per writer.
    pub writer: String,
}

/// How the store reaches its database.
#[derive(Debug, Clone)]
pub struct Options {
    pub url: Secret,
    /// Longest wait to open a connection, or for a pooled one to come free.
    pub connect_timeout: Duration,
    /// Longest wait for one operation (a statement or a transaction).
    pub timeout: Duration,
}

impl Options {
    /// The defaults of `database_connect_timeout` (5 s) and `database_timeout` (10 s).
    pub fn new(url: &Secret) -> Options {
        Options {
            url: url.clone(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The URL connections are opened with (a SQLite file's with `mode=rwc`).
    url: Secret,
    connect_timeout: Duration,
    timeout: Duration,
    health: Health,
    /// When set, verdicts and alerts are written only under this lease (see [`Store::fenced`]).
    fence: Option<Fence>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects with the default timeouts and applies migrations (see [`Store::open`]).
    pub async fn connect(url: &Secret) -> Result<Store, StoreError> {
        Store::open(&Options::new(url)).await
    }

    /// Connects and applies migrations, in one attempt: an unreachable database is an error
    /// naming its cause (connection refused, no answer within `connect_timeout`, a refused
    /// password), never a silent wait. A SQLite file is created if missing and runs in WAL mode.
    pub async fn open(options: &Options) -> Result<Store, StoreError> {
        install_default_drivers();
        let raw = options.url.expose();
        let backend = if raw.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = if backend == Backend::Sqlite && !raw.contains('?') {
            Secret::new(format!("{raw}?mode=rwc"))
        } else {
            options.url.clone()
        };
        // One connection outside the pool first: its error is the cause, where the pool, which
        // retries a refused connection until its timeout, would say only that it timed out.
        let first = connect_one(&url, options.connect_timeout).await?;
        let _ = first.close().await;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .acquire_timeout(options.connect_timeout)
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
            .connect_lazy(url.expose())?;
        let store = Store {
            pool,
            backend,
            url,
            connect_timeout: options.connect_timeout,
            timeout: options.timeout,
            health: Health::default(),
            fence: None,
        };
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

    /// A transaction that writes. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so a concurrent writer makes it wait out `busy_timeout`; a deferred `BEGIN`
    /// that reads first fails with "database is locked" when another connection wrote since its
    /// read began, and no timeout helps.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// The database's standing, shared by every clone of this store.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Runs one operation: refused at once while the database is known to be unreachable,
    /// abandoned when the health check finds it gone or after `database_timeout`.
    async fn bounded<T>(
        &self,
        operation: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        if let Some(outage) = self.health.unreachable() {
            return Err(StoreError::Unavailable(outage));
        }
        let mut reachable = self.health.watch();
        tokio::select! {
            done = operation => done.map_err(|e| match e {
                StoreError::Database(sqlx::Error::PoolTimedOut) => {
                    StoreError::Unavailable(Outage::Busy(self.connect_timeout))
                }
                e => e,
            }),
            () = tokio::time::sleep(self.timeout) => {
                Err(StoreError::Unavailable(Outage::NoAnswer(self.timeout)))
            }
            () = health::until_unreachable(&mut reachable) => Err(StoreError::Unavailable(
                self.health.unreachable().unwrap_or(Outage::Unreachable),
            )),
        }
    }

    /// Opens a connection outside the pool, for the health check.
    pub async fn open_connection(&self) -> Result<AnyConnection, StoreError> {
        let mut conn = connect_one(&self.url, self.connect_timeout).await?;
        if self.backend == Backend::Sqlite {
            // A checkpoint may hold a lock for a moment: wait for it rather than report an
            // outage.
            conn.execute("PRAGMA busy_timeout = 1000").await?;
        }
        Ok(conn)
    }

    /// The health check: `conn` answers within `timeout`, and every embedded migration is
    /// applied.
    pub async fn check(
        &self,
        conn: &mut AnyConnection,
        timeout: Duration,
    ) -> Result<(), StoreError> {
        let applied = tokio::time::timeout(timeout, migrations_applied(conn))
            .await
            .map_err(|_| StoreError::Unavailable(Outage::NoAnswer(timeout)))??;
        self.all_applied(applied)
    }

    /// Reachable, and every embedded migration applied.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.bounded(async {
            let mut conn = self.pool.acquire().await?;
            let applied = migrations_applied(&mut conn).await?;
            self.all_applied(applied)
        })
        .await
    }

    fn all_applied(&self, applied: i64) -> Result<(), StoreError> {
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
        self.bounded(async {
            upsert(key, end_ms, profile, now_ms)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    /// The profile at `key`: every writer's partial of it, merged (`key.writer` is ignored);
    /// `None` when no writer has one.
    pub async fn get(&self, key: &Key) -> Result<Option<DatasetProfile>, StoreError> {
        self.bounded(async {
            let rows = bind_place(sqlx::query(SELECT_PARTIALS), key)
                .fetch_all(&self.pool)
                .await?;
            merge_rows(&rows)
        })
        .await
    }

    /// One writer's partial at `key` (what that writer continues from after a restart).
    pub async fn partial(&self, key: &Key) -> Result<Option<DatasetProfile>, StoreError> {
        self.bounded(async {
            let row = bind_key(sqlx::query(SELECT_ONE), key)
                .fetch_optional(&self.pool)
                .await?;
            row.map(|r| decode(&r.try_get::<Vec<u8>, _>(0)?))
                .transpose()
        })
        .await
    }

    /// Merges `profile` into the rollup partial at `key`, this writer's own (read, merge, write
    /// in one transaction). Rollups keep no sampled rows: the skew join reads the recent
    /// windows, and a rollup outlives them by far.
    pub async fn merge_into(
        &self,
        key: &Key,
        end_ms: i64,
        profile: &DatasetProfile,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.bounded(async {
            let mut tx = self.begin_write().await?;
            let existing = bind_key(sqlx::query(SELECT_ONE), key)
                .fetch_optional(&mut *tx)
                .await?;
            let mut merged = profile.clone();
            if let Some(row) = existing {
                merge_row(&mut merged, &row)?;
            }
            merged.sample = None;
            upsert(key, end_ms, &merged, now_ms)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Datasets that have any stored profile.
    pub async fn datasets(&self) -> Result<Vec<String>, StoreError> {
        self.bounded(async {
            let rows = sqlx::query("SELECT DISTINCT dataset FROM profiles ORDER BY dataset")
                .fetch_all(&self.pool)
                .await?;
            rows.iter()
                .map(|r| Ok(r.try_get::<String, _>(0)?))
                .collect()
        })
        .await
    }

    /// The reference run: the pinned one, else the offline run updated last.
    pub async fn reference_run(&self, dataset: &str) -> Result<Option<(String, bool)>, StoreError> {
        self.bounded(async {
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
        })
        .await
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
        self.bounded(async {
            let rows = sqlx::query(sql)
                .bind(dataset)
                .bind(stage.as_str())
                .bind(kind.as_str())
                .bind(value)
                .fetch_all(&self.pool)
                .await?;
            merge_rows(&rows)
        })
        .await
    }

    pub async fn pin_reference(
        &self,
        dataset: &str,
        run_id: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.bounded(async {
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
        })
        .await
    }

    pub async fn unpin_reference(&self, dataset: &str) -> Result<bool, StoreError> {
        self.bounded(async {
            let done = sqlx::query("DELETE FROM reference_pins WHERE dataset = $1")
                .bind(dataset)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }

    pub async fn put_verdict(
        &self,
        dataset: &str,
        report_json: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.bounded(async {
            let mut tx = self.begin_write().await?;
            self.check_fence(&mut tx).await?;
            sqlx::query(
                "INSERT INTO verdicts (dataset, evaluated_ms, report) VALUES ($1, $2, $3)
                 ON CONFLICT (dataset) DO UPDATE SET evaluated_ms = excluded.evaluated_ms, report = excluded.report",
            )
            .bind(dataset)
            .bind(now_ms)
            .bind(report_json)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// The latest verdict as stored JSON, with when it was made.
    pub async fn verdict(&self, dataset: &str) -> Result<Option<(String, i64)>, StoreError> {
        self.bounded(async {
            let row = sqlx::query("SELECT report, evaluated_ms FROM verdicts WHERE dataset = $1")
                .bind(dataset)
                .fetch_optional(&self.pool)
                .await?;
            Ok(row
                .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
                .transpose()?)
        })
        .await
    }

    /// Deletes windows that ended before `window_cutoff_ms` (and scores recorded and
    /// notifications finished before it) and rollups before `rollup_cutoff_ms`.
    pub async fn expire(
        &self,
        window_cutoff_ms: i64,
        rollup_cutoff_ms: i64,
    ) -> Result<u64, StoreError> {
        self.bounded(async {
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
            // The score history is drawn over the windows' span, and kept as long.
            removed += sqlx::query("DELETE FROM score_history WHERE evaluated_ms < $1")
                .bind(window_cutoff_ms)
                .execute(&self.pool)
                .await?
                .rows_affected();
            // Notifications delivered or given up are kept as long as windows (each alert keeps
            // its last delivery); pending ones stay until they are. Alertmanager's refreshes
            // alone queue one a minute per firing alert.
            removed += sqlx::query(
                "DELETE FROM outbox WHERE state IN ('sent', 'failed') AND next_attempt_ms < $1",
            )
            .bind(window_cutoff_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
            // Online counters are summed per window; they are kept as long as rollups. Offline
            // counters are the run history and stay.
            removed += sqlx::query("DELETE FROM counters WHERE stage = 'online' AND start_ms < $1")
                .bind(rollup_cutoff_ms)
                .execute(&self.pool)
                .await?
                .rows_affected();
            Ok(removed)
        })
        .await
    }

    /// Number of stored profiles (every writer's partial counts) of a kind for a dataset (for
    /// tests and diagnostics).
    pub async fn count(&self, dataset: &str, kind: Kind) -> Result<i64, StoreError> {
        self.bounded(async {
            Ok(
                sqlx::query("SELECT COUNT(*) FROM profiles WHERE dataset = $1 AND kind = $2")
                    .bind(dataset)
                    .bind(kind.as_str())
                    .fetch_one(&self.pool)
                    .await?
                    .try_get(0)?,
            )
        })
        .await
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// One connection, within `timeout`.
async fn connect_one(url: &Secret, timeout: Duration) -> Result<AnyConnection, StoreError> {
    tokio::time::timeout(timeout, AnyConnection::connect(url.expose()))
        .await
        .map_err(|_| StoreError::Unavailable(Outage::NoAnswer(timeout)))?
        .map_err(StoreError::from)
}

async fn migrations_applied(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    Ok(
        sqlx::query("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = $1")
            .bind(true)
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?,
    )
}

/// Writes (or replaces) the profile at a key: the key binds $1..$7, then end, rows, body and
/// update time.
const UPSERT: &str = "INSERT INTO profiles (dataset, stage, kind, run_id, part, start_ms, writer, end_ms, rows, body, updated_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT (dataset, stage, kind, run_id, part, start_ms, writer)
     DO UPDATE SET end_ms = excluded.end_ms, rows = excluded.rows, body = excluded.body,
                   updated_ms = excluded.updated_ms";

/// The parts of an offline run (dataset, stage, kind, run id).
const RUN_PARTS: &str = "SELECT body FROM profiles WHERE dataset = $1 AND stage = $2 AND kind = $3
     AND run_id = $4 ORDER BY part";

/// Windows that end after a time (dataset, stage, kind, time).
const WINDOWS_SINCE: &str =
    "SELECT body FROM profiles WHERE dataset = $1 AND stage = $2 AND kind = $3
     AND end_ms > $4 ORDER BY start_ms";

/// One writer's partial at a key, bound as $1..$7.
const SELECT_ONE: &str = "SELECT body FROM profiles WHERE dataset = $1 AND stage = $2 AND kind = $3
     AND run_id = $4 AND part = $5 AND start_ms = $6 AND writer = $7";

/// Every writer's partial at a key (its place, $1..$6), in writer order.
const SELECT_PARTIALS: &str =
    "SELECT body FROM profiles WHERE dataset = $1 AND stage = $2 AND kind = $3
     AND run_id = $4 AND part = $5 AND start_ms = $6 ORDER BY writer";

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds a key's place, every writer's: $1..$6.
fn bind_place<'q>(query: AnyQuery<'q>, key: &'q Key) -> AnyQuery<'q> {
    query
        .bind(&key.dataset)
        .bind(key.stage.as_str())
        .bind(key.kind.as_str())
        .bind(&key.run_id)
        .bind(&key.part)
        .bind(key.start_ms)
}

/// Binds a key, its writer's partial: $1..$7.
fn bind_key<'q>(query: AnyQuery<'q>, key: &'q Key) -> AnyQuery<'q> {
    bind_place(query, key).bind(&key.writer)
}

/// The statement that writes `profile` as the partial at `key`, bound.
fn upsert<'q>(key: &'q Key, end_ms: i64, profile: &DatasetProfile, now_ms: i64) -> AnyQuery<'q> {
    bind_key(sqlx::query(UPSERT), key)
        .bind(end_ms)
        .bind(profile.rows as i64)
        .bind(file::encode(profile))
        .bind(now_ms)
}

fn decode(bytes: &[u8]) -> Result<DatasetProfile, StoreError> {
    file::decode(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The stored profiles of `rows` (their first column), merged in order; `None` when there are
/// none.
fn merge_rows(rows: &[sqlx::any::AnyRow]) -> Result<Option<DatasetProfile>, StoreError> {
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
