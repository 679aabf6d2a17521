//! Leadership: of the `driftd serve` processes sharing one database, one evaluates and expires
//! old windows at a time — the holder of the `leader` lease (every one delivers notifications:
//! `alert::deliver`). Every process tries to take or renew it every third of
//! `leader_lease_ttl`; the holder that cannot renew (the database failed, or another holds it)
//! stops leading at once, before its lease can lapse, and one that stops releases it so another
//! takes over at its next try.
//!
//! Verdicts and alerts are written through a store fenced by the lease (`Store::fenced`): each
//! write checks, in its own transaction, that this process still holds the lease in its term.
//!
//! SQLite is one process (its lock file refuses a second): it takes the lease at start, also
//! from a process that died holding it, and keeps it.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::clock::now_ms;
use crate::store::{Backend, Fence, Held, Lease, Store};

/// The lease's name in the `leases` table.
pub const LEADER: &str = "leader";

/// What this process knows of the leader lease.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Standing {
    /// The holder at the last try; `None` before the first answer, or after a failed one.
    pub holder: Option<String>,
    pub term: i64,
    /// Whether this process held the lease at the last try.
    pub leading: bool,
    /// Until when the lease held at the last try lasts.
    pub expires_at_ms: i64,
}

/// A view of the leader lease, shared by the tasks that act only while leading.
#[derive(Debug, Clone)]
pub struct Leadership {
    writer: Arc<str>,
    standing: watch::Receiver<Standing>,
    held: Fence,
}

impl Leadership {
    /// Whether this process leads now.
    pub fn leading(&self) -> bool {
        let standing = self.standing.borrow();
        // A renewal stuck on a slow database must not outlast the lease it renews.
        standing.leading && now_ms() < standing.expires_at_ms
    }

    pub fn standing(&self) -> Standing {
        self.standing.borrow().clone()
    }

    /// The lease while held, for a store that writes only under it (`Store::fenced`).
    pub fn fence(&self) -> Fence {
        self.held.clone()
    }

    /// This process's writer id, the holder it is known by.
    pub fn writer(&self) -> &str {
        &self.writer
    }
}

/// `driftd_leader` and `driftd_leader_term`.
#[derive(Clone, Debug)]
pub struct LeaderMetrics {
    leader: Gauge,
    term: Gauge,
}

impl LeaderMetrics {
    pub fn register(registry: &mut Registry) -> LeaderMetrics {
        let m = LeaderMetrics {
            leader: Gauge::default(),
            term: Gauge::default(),
        };
        registry.register(
            "leader",
            "1 while this process holds the leader lease (evaluates, expires), else 0",
            m.leader.clone(),
        );
        registry.register(
            "leader_term",
            "The leader lease's term as this process last read it",
            m.term.clone(),
        );
        m
    }

    fn set(&self, standing: &Standing) {
        self.leader.set(i64::from(standing.leading));
        self.term.set(standing.term);
    }
}

/// Tries the lease once now; the returned task keeps trying every `ttl / 3` until `stop`,
/// then releases it if held.
pub async fn start(
    store: Store,
    writer: String,
    ttl: Duration,
    metrics: LeaderMetrics,
) -> (Leadership, impl FnOnce(CancellationToken) -> LeaderTask) {
    let (sender, standing) = watch::channel(Standing::default());
    let (held_sender, held) = watch::channel(None);
    let ttl_ms = ttl.as_millis() as i64;
    let leadership = Leadership {
        writer: writer.clone().into(),
        standing,
        held,
    };
    let task = LeaderTask {
        store,
        writer,
        ttl,
        metrics,
        sender,
        held: held_sender,
        stop: CancellationToken::new(),
    };
    let first = attempt(&task.store, &task.writer, ttl_ms, &Standing::default()).await;
    task.publish(first);
    (leadership, move |stop| LeaderTask { stop, ..task })
}

/// The renewing task (see [`start`]).
pub struct LeaderTask {
    store: Store,
    writer: String,
    ttl: Duration,
    metrics: LeaderMetrics,
    sender: watch::Sender<Standing>,
    held: watch::Sender<Option<Held>>,
    stop: CancellationToken,
}

impl LeaderTask {
    fn publish(&self, standing: Standing) {
        self.metrics.set(&standing);
        self.held.send_replace(standing.leading.then(|| Held {
            name: LEADER,
            holder: self.writer.clone(),
            term: standing.term,
        }));
        self.sender.send_replace(standing);
    }

    pub async fn run(self) {
        let ttl_ms = self.ttl.as_millis() as i64;
        let mut tick = tokio::time::interval(self.ttl / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                () = self.stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let before = self.sender.borrow().clone();
            let now = attempt(&self.store, &self.writer, ttl_ms, &before).await;
            self.publish(now);
        }
        // Stop leading first: nothing acts on a lease about to be released.
        let mut last = self.sender.borrow().clone();
        let was = last.leading;
        last.leading = false;
        self.publish(last);
        if was {
            match self
                .store
                .release_lease(LEADER, &self.writer, now_ms())
                .await
            {
                Ok(_) => info!(writer = %self.writer, "Released the leader lease"),
                Err(e) => warn!(error = %e, "Cannot release the leader lease; it lapses by itself"),
            }
        }
    }
}

/// One try at the lease; logs changes of leadership.
async fn attempt(store: &Store, writer: &str, ttl_ms: i64, before: &Standing) -> Standing {
    let now = now_ms();
    // SQLite's lock file already keeps a second process out: the lease of one that died
    // without releasing it is taken over at once.
    let lapsed_by = match store.backend() {
        Backend::Sqlite => i64::MAX,
        Backend::Postgres => now,
    };
    let standing = match store
        .acquire_lease(LEADER, writer, lapsed_by, now + ttl_ms)
        .await
    {
        Ok(Lease {
            holder,
            term,
            expires_at_ms,
        }) => Standing {
            leading: holder == writer,
            holder: Some(holder),
            term,
            expires_at_ms,
        },
        Err(e) => {
            if before.leading {
                warn!(error = %e, "Cannot renew the leader lease; no longer leading");
            }
            Standing {
                holder: None,
                term: before.term,
                leading: false,
                expires_at_ms: 0,
            }
        }
    };
    match (before.leading, standing.leading) {
        (false, true) => info!(%writer, term = standing.term, "Leading: this process evaluates"),
        (true, false) => {
            warn!(%writer, holder = ?standing.holder, term = standing.term, "No longer leading")
        }
        _ => {}
    }
    standing
}
