//! The database from `driftd serve`'s side: reached at start, each failed attempt logged with
//! its cause and retried with backoff (1 s, doubling, up to `database_retry_max`); then
//! watched by a health check of its own, once a second on a connection outside the pool,
//! whose findings every store operation, `/readyz`, ingest and `driftd_database_up` follow.
//! The URL is only ever shown with its password redacted. A SQLite database is one
//! process's: `single_process` locks its file for as long as `driftd serve` runs.

use std::time::Duration;

use sqlx::AnyConnection;
use sqlx::Connection as _;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::metrics::DatabaseMetrics;
use super::shutdown::Shutdown;
use crate::clock::now_ms;
use crate::config::ServeConfig;
use crate::store::health::{shown_error, shown_url};
use crate::store::{Options, Outage, Store, StoreError};

/// How often the health check runs while the database answers it.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Longest the health check's query may take on an open connection.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Waits between connection attempts: 1 s, doubling, up to a cap.
struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    fn new(cap: Duration) -> Backoff {
        Backoff {
            next: Duration::from_secs(1).min(cap),
            cap,
        }
    }

    fn wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.cap);
        wait
    }
}

/// The lock on a SQLite database file, held while `driftd serve` runs (released on drop).
#[derive(Debug)]
pub struct ProcessLock {
    _file: Option<std::fs::File>,
}

/// The file of a SQLite URL (`sqlite://path?…`, `sqlite:path`); `None` for an in-memory one.
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite:")?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = path.strip_prefix("//").unwrap_or(path);
    let memory = path.is_empty() || path == ":memory:" || query.contains("mode=memory");
    (!memory).then_some(path)
}

/// Takes an exclusive lock (`flock`) on the SQLite database file, so that a second
/// `driftd serve` on the same file stops at start instead of overwriting the first one's open
/// windows and sending its alerts twice. SQLite's own locks are POSIX record locks, which
/// `flock` does not touch. PostgreSQL needs no lock. Call after `connect` created the file.
pub fn single_process(config: &ServeConfig) -> anyhow::Result<ProcessLock> {
    let Some(path) = sqlite_file(config.database_url.expose()) else {
        return Ok(ProcessLock { _file: None });
    };
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot open the SQLite database {path} to lock it: {e}"))?;
    match file.try_lock() {
        Ok(()) => Ok(ProcessLock { _file: Some(file) }),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another driftd serve is using the SQLite database {path}: SQLite is for one \
             process; stop the other one, give this one its own file (--database), or run \
             replicas on PostgreSQL (docs/topology.md)"
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            anyhow::bail!("cannot lock the SQLite database {path}: {e}")
        }
    }
}

fn options(config: &ServeConfig) -> Options {
    Options {
        url: config.database_url.clone(),
        connect_timeout: config.database_connect_timeout,
        timeout: config.database_timeout,
    }
}

/// Connects and migrates, retrying a PostgreSQL server that cannot be reached (refused, no
/// answer, starting up) until it can or shutdown is requested (`None` then). Errors no wait
/// mends — a refused password, a missing database, a SQLite file that cannot be opened — end
/// at once, with their cause.
pub async fn connect(config: &ServeConfig, shutdown: &Shutdown) -> anyhow::Result<Option<Store>> {
    let options = options(config);
    let shown = shown_url(&config.database_url);
    let retried = !config.database_url.expose().starts_with("sqlite:");
    let mut backoff = Backoff::new(config.database_retry_max);
    for attempt in 1u32.. {
        let opened = tokio::select! {
            opened = Store::open(&options) => opened,
            () = shutdown.requested() => return Ok(None),
        };
        let error = match opened {
            Ok(store) => {
                if attempt > 1 {
                    info!(attempt, database = %shown, "Database reached");
                }
                return Ok(Some(store));
            }
            Err(e) => e,
        };
        let cause = shown_error(&error, &config.database_url);
        if !retried || error.outage().is_none() {
            anyhow::bail!("cannot open the database {shown}: {cause}");
        }
        let wait = backoff.wait();
        warn!(
            attempt, database = %shown, error = %cause,
            retry_in = %humantime::format_duration(wait),
            "Cannot reach the database; retrying"
        );
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.requested() => return Ok(None),
        }
    }
    unreachable!("attempts go on until one succeeds")
}

/// The health check, until `stop`: once a second while the database answers, with backoff
/// while it does not. Logs when it goes (with the cause) and when it is back.
pub async fn watch(
    store: Store,
    config: std::sync::Arc<ServeConfig>,
    metrics: DatabaseMetrics,
    stop: CancellationToken,
) {
    let shown = shown_url(&config.database_url);
    let health = store.health().clone();
    let mut connection: Option<AnyConnection> = None;
    let mut backoff = Backoff::new(config.database_retry_max);
    let mut attempts = 0u32;
    loop {
        let wait = match health.unreachable() {
            None => CHECK_INTERVAL,
            Some(_) => backoff.wait(),
        };
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
        let checked = tokio::select! {
            () = stop.cancelled() => break,
            checked = check(&store, &mut connection) => checked,
        };
        let now = now_ms();
        match checked {
            Ok(()) => {
                if let Some(down) = health.unreachable_since() {
                    health.set_reachable(Ok(()), now);
                    metrics.up(true);
                    let seconds = (now - down.since_ms).max(0) as f64 / 1000.0;
                    info!(database = %shown, down_for_s = seconds, "Database reachable again");
                }
                backoff = Backoff::new(config.database_retry_max);
                attempts = 0;
            }
            Err(e) => {
                connection = None;
                attempts += 1;
                let outage = e.outage().unwrap_or(Outage::Unavailable);
                let cause = shown_error(&e, &config.database_url);
                if health.set_reachable(Err(outage.clone()), now) {
                    metrics.up(false);
                    error!(
                        database = %shown, reason = %outage, error = %cause,
                        "Database unreachable: reads answer 503, ingest goes on into memory up to \
                         queue_bytes"
                    );
                } else {
                    warn!(attempt = attempts, database = %shown, error = %cause, "Database still unreachable");
                }
            }
        }
    }
    if let Some(connection) = connection {
        let _ = tokio::time::timeout(CHECK_TIMEOUT, connection.close()).await;
    }
}

/// One health check: a connection of its own (opened if need be), migrations applied.
async fn check(store: &Store, connection: &mut Option<AnyConnection>) -> Result<(), StoreError> {
    if connection.is_none() {
        *connection = Some(store.open_connection().await?);
    }
    let conn = connection.as_mut().expect("opened above");
    store.check(conn, CHECK_TIMEOUT).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn sqlite_urls_name_their_file() {
        use super::sqlite_file;
        assert_eq!(
            sqlite_file("sqlite:///var/lib/driftd.db"),
            Some("/var/lib/driftd.db")
        );
        assert_eq!(
            sqlite_file("sqlite://driftd.db?mode=rwc"),
            Some("driftd.db")
        );
        assert_eq!(sqlite_file("sqlite:data/d.db"), Some("data/d.db"));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://d.db?mode=memory&cache=shared"), None);
        assert_eq!(sqlite_file("postgres://u@h/db"), None);
    }

    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut b = Backoff::new(Duration::from_secs(5));
        let waits: Vec<u64> = (0..5).map(|_| b.wait().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        let mut short = Backoff::new(Duration::from_millis(300));
        assert_eq!(short.wait(), Duration::from_millis(300));
    }
}
