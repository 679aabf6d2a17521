//! Leases: one row per role (`leader`), held by one writer id until it lapses. Taking over and
//! renewing are one statement, so two processes racing for a lapsed lease cannot both win, and
//! every change of holder increments the term.

use std::time::Duration;

use sqlx::Row;
use tokio::sync::watch;

use super::{Backend, Store, StoreError};

/// The longest a fenced transaction may sit idle on PostgreSQL (between its statements, or
/// before its commit) before the server ends it: far above the milliseconds a running process
/// takes, far below a lease's time to live.
pub const FENCE_HOLD: Duration = Duration::from_millis(500);

/// A lease held: by whom, in which term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub name: &'static str,
    pub holder: String,
    pub term: i64,
}

/// The lease this process holds now, if any, kept current by whoever renews it.
pub type Fence = watch::Receiver<Option<Held>>;

/// A lease as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub holder: String,
    pub term: i64,
    pub expires_at_ms: i64,
}

impl Store {
    /// This store, writing verdicts and alerts (with their notifications) only while `fence`
    /// holds a lease, and in the same transaction as a check that the database agrees: a
    /// process that lost its lease without knowing it yet cannot overwrite its successor's.
    pub fn fenced(&self, fence: Fence) -> Store {
        Store {
            fence: Some(fence),
            ..self.clone()
        }
    }

    /// Refuses the transaction `tx` unless the lease this store is fenced by is, in the
    /// database, still held by it in its term. On PostgreSQL the lease row is locked (`FOR
    /// SHARE`) until `tx` ends, so no takeover commits in between, and `tx` may not sit idle
    /// longer than [`FENCE_HOLD`] (see [`StoreError::fence_held_too_long`]); SQLite's write
    /// transactions already exclude one another.
    pub(super) async fn check_fence(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    ) -> Result<(), StoreError> {
        let Some(fence) = &self.fence else {
            return Ok(());
        };
        let Some(held) = fence.borrow().clone() else {
            return Err(StoreError::NotLeader);
        };
        let lock = match self.backend {
            Backend::Postgres => {
                // A process stopped while it holds the row would hold it, and keep every
                // successor out, for as long as it stays stopped: PostgreSQL ends a fenced
                // transaction left idle longer than FENCE_HOLD, and its lock with it.
                sqlx::query("SELECT set_config('idle_in_transaction_session_timeout', $1, true)")
                    .bind(format!("{}ms", FENCE_HOLD.as_millis()))
                    .execute(&mut **tx)
                    .await?;
                " FOR SHARE"
            }
            Backend::Sqlite => "",
        };
        let found = sqlx::query(&format!(
            "SELECT term FROM leases WHERE name = $1 AND holder = $2 AND term = $3{lock}"
        ))
        .bind(held.name)
        .bind(&held.holder)
        .bind(held.term)
        .fetch_optional(&mut **tx)
        .await?;
        found.map(|_| ()).ok_or(StoreError::NotLeader)
    }

    /// Takes the lease `name` for `holder` until `expires_at_ms` when it is free, lapsed by
    /// `lapsed_by_ms`, or already `holder`'s (a renewal keeps the term; a new holder increments it).
    /// Answers the lease as it stands afterwards: held by `holder` or by another.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        lapsed_by_ms: i64,
        expires_at_ms: i64,
    ) -> Result<Lease, StoreError> {
        self.bounded(async {
            // SET and WHERE read the row as it was: `leases.holder` is the old holder.
            let taken = sqlx::query(
                "INSERT INTO leases (name, holder, term, expires_at_ms) VALUES ($1, $2, 1, $3)
                 ON CONFLICT (name) DO UPDATE SET
                     term = CASE WHEN leases.holder = excluded.holder THEN leases.term
                                 ELSE leases.term + 1 END,
                     holder = excluded.holder,
                     expires_at_ms = excluded.expires_at_ms
                 WHERE leases.holder = excluded.holder OR leases.expires_at_ms <= $4
                 RETURNING holder, term, expires_at_ms",
            )
            .bind(name)
            .bind(holder)
            .bind(expires_at_ms)
            .bind(lapsed_by_ms)
            .fetch_optional(&self.pool)
            .await?;
            let row = match taken {
                Some(row) => row,
                None => {
                    sqlx::query("SELECT holder, term, expires_at_ms FROM leases WHERE name = $1")
                        .bind(name)
                        .fetch_one(&self.pool)
                        .await?
                }
            };
            Ok(Lease {
                holder: row.try_get(0)?,
                term: row.try_get(1)?,
                expires_at_ms: row.try_get(2)?,
            })
        })
        .await
    }

    /// Lets the lease `name` lapse at once if `holder` holds it, so another process can take
    /// it over without waiting for it to expire. Answers whether it was `holder`'s.
    pub async fn release_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.bounded(async {
            let done =
                sqlx::query("UPDATE leases SET expires_at_ms = $3 WHERE name = $1 AND holder = $2")
                    .bind(name)
                    .bind(holder)
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }
}
