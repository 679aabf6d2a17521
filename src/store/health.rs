//! Whether the database can be used now, and why not: the words an outage is told in (to
//! clients, in logs, in `/readyz`), which errors mean one, and the state every store operation
//! consults before it waits on a database that is known to be gone.
//!
//! Two things can be wrong. The database is *unreachable* (the health check in
//! `serve::database` says so, and says again when it is back), or it is reachable but *cannot
//! be written* (a full disk, a read-only file or server: the aggregator says so while windows
//! wait in memory, and clears it once they are written).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::secret::Secret;

/// Why the database cannot be used, in words fit for a client: no database text, no address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outage {
    /// Nothing listens at the database's address.
    Refused,
    /// No answer within this long.
    NoAnswer(Duration),
    /// The connection failed or broke (reset, closed, no route, a name that does not resolve).
    Unreachable,
    /// Every pooled connection stayed busy for this long.
    Busy(Duration),
    /// The server is starting, stopping or refusing new sessions.
    Unavailable,
    DiskFull,
    ReadOnly,
    /// The database file or disk failed to read or write.
    Io,
    /// driftd's shutdown deadline came first.
    Deadline,
}

impl std::fmt::Display for Outage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outage::Refused => f.write_str("connection refused"),
            Outage::NoAnswer(d) => write!(f, "no answer within {}", humantime::format_duration(*d)),
            Outage::Unreachable => f.write_str("connection failed"),
            Outage::Busy(d) => write!(
                f,
                "no free connection within {}",
                humantime::format_duration(*d)
            ),
            Outage::Unavailable => f.write_str("server not accepting sessions"),
            Outage::DiskFull => f.write_str("disk full"),
            Outage::ReadOnly => f.write_str("read-only"),
            Outage::Io => f.write_str("I/O error"),
            Outage::Deadline => f.write_str("shutdown deadline reached"),
        }
    }
}

/// The outage an error means, if it means one; `None` for errors an outage does not explain
/// (a bad statement, a constraint, corrupt data).
pub fn outage_of(error: &sqlx::Error) -> Option<Outage> {
    use sqlx::Error as E;
    match error {
        E::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Some(Outage::Refused),
        E::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            Some(Outage::NoAnswer(Duration::ZERO))
        }
        E::Io(_) | E::Tls(_) | E::Protocol(_) | E::WorkerCrashed | E::PoolClosed => {
            Some(Outage::Unreachable)
        }
        E::PoolTimedOut => Some(Outage::Busy(Duration::ZERO)),
        E::Database(db) => db.code().and_then(|code| database_code(&code)),
        _ => None,
    }
}

/// PostgreSQL SQLSTATEs and SQLite result codes that mean an outage.
fn database_code(code: &str) -> Option<Outage> {
    // A SQLSTATE is five characters (often all digits); SQLite's codes have at most four.
    if let Ok(sqlite) = code.parse::<i32>()
        && code.len() < 5
    {
        // The primary result code is the low byte of the extended one.
        return match sqlite & 0xff {
            13 => Some(Outage::DiskFull),
            8 => Some(Outage::ReadOnly),
            10 | 14 => Some(Outage::Io),
            _ => None,
        };
    }
    match code {
        // 08: connection exception; 57P01..57P03: shutting down, cannot connect now.
        c if c.starts_with("08") => Some(Outage::Unreachable),
        "57P01" | "57P02" | "57P03" => Some(Outage::Unavailable),
        // 53100 disk full, 53300 too many connections; 25006 a read-only transaction (a standby).
        "53100" => Some(Outage::DiskFull),
        "53300" => Some(Outage::Unavailable),
        "25006" => Some(Outage::ReadOnly),
        _ => None,
    }
}

/// The database's state as driftd last saw it. Cheap to clone; every clone shares it.
#[derive(Clone, Debug)]
pub struct Health {
    state: Arc<Mutex<State>>,
    /// `true` while the database is reachable: in-flight operations stop waiting when it
    /// turns `false`, the aggregator writes again when it turns `true`.
    reachable: watch::Sender<bool>,
}

#[derive(Debug, Default)]
struct State {
    unreachable: Option<Down>,
    unwritable: Option<Down>,
}

/// An outage and when it began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Down {
    pub outage: Outage,
    pub since_ms: i64,
}

/// What `/readyz` and ingest are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    Ready,
    Unreachable(Down),
    /// Reachable, but windows cannot be written; they wait in memory.
    Unwritable(Down),
}

impl Default for Health {
    fn default() -> Self {
        Health {
            state: Arc::default(),
            reachable: watch::Sender::new(true),
        }
    }
}

impl Health {
    fn state(&self) -> MutexGuard<'_, State> {
        // Two plain values: a panic elsewhere cannot leave them half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn standing(&self) -> Standing {
        let state = self.state();
        match (&state.unreachable, &state.unwritable) {
            (Some(down), _) => Standing::Unreachable(down.clone()),
            (None, Some(down)) => Standing::Unwritable(down.clone()),
            (None, None) => Standing::Ready,
        }
    }

    /// The outage, if there is one of either kind.
    pub fn outage(&self) -> Option<Outage> {
        match self.standing() {
            Standing::Ready => None,
            Standing::Unreachable(down) | Standing::Unwritable(down) => Some(down.outage),
        }
    }

    /// Why the database is unreachable, if it is.
    pub fn unreachable(&self) -> Option<Outage> {
        self.state().unreachable.as_ref().map(|d| d.outage.clone())
    }

    /// Why and since when the database is unreachable, if it is.
    pub fn unreachable_since(&self) -> Option<Down> {
        self.state().unreachable.clone()
    }

    /// The health check's finding. `true` when this changes the standing.
    pub fn set_reachable(&self, reachable: Result<(), Outage>, now_ms: i64) -> bool {
        let changed = {
            let mut state = self.state();
            match (&mut state.unreachable, reachable) {
                (None, Ok(())) => false,
                (slot @ Some(_), Ok(())) => {
                    *slot = None;
                    true
                }
                (None, Err(outage)) => {
                    state.unreachable = Some(Down {
                        outage,
                        since_ms: now_ms,
                    });
                    true
                }
                (Some(down), Err(outage)) => {
                    // Still down; the latest reason, the first time.
                    down.outage = outage;
                    false
                }
            }
        };
        if changed {
            self.reachable.send_replace(self.unreachable().is_none());
        }
        changed
    }

    /// The aggregator's finding: windows could not be written (`Some`), or all are (`None`).
    pub fn set_unwritable(&self, outage: Option<Outage>, now_ms: i64) {
        let mut state = self.state();
        state.unwritable = match (state.unwritable.take(), outage) {
            (_, None) => None,
            (Some(down), Some(outage)) => Some(Down { outage, ..down }),
            (None, Some(outage)) => Some(Down {
                outage,
                since_ms: now_ms,
            }),
        };
    }

    /// Follows reachability: `true` while reachable.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.reachable.subscribe()
    }
}

/// Waits until `watch` says the database is unreachable; never, if its sender is gone.
pub async fn until_unreachable(watch: &mut watch::Receiver<bool>) {
    if watch.wait_for(|reachable| !reachable).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The database URL as logs may show it: the password, and a `password=` parameter, replaced
/// by `[redacted]`.
pub fn shown_url(url: &Secret) -> String {
    let raw = url.expose();
    let (head, query) = match raw.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (raw, None),
    };
    let mut shown = match head.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => {
                    let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
                    let hidden = if userinfo.contains(':') {
                        ":[redacted]"
                    } else {
                        ""
                    };
                    format!("{scheme}://{user}{hidden}@{host}{path}")
                }
                None => head.to_owned(),
            }
        }
        None => head.to_owned(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                    format!("{key}=[redacted]")
                }
                _ => p.to_owned(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&params.join("&"));
    }
    shown
}

/// An error's text as logs may show it: the URL's password, wherever the text repeats it,
/// replaced by `[redacted]`.
pub fn shown_error(error: &dyn std::fmt::Display, url: &Secret) -> String {
    let text = error.to_string();
    match password_of(url.expose()) {
        Some(password) if !password.is_empty() => text.replace(password, "[redacted]"),
        _ => text,
    }
}

fn password_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let userinfo = authority.rsplit_once('@')?.0;
    Some(userinfo.split_once(':')?.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_password() {
        let shown = |u: &str| shown_url(&Secret::new(u));
        assert_eq!(
            shown("postgres://driftd:hunter2@db.internal:5432/driftd?sslmode=require"),
            "postgres://driftd:[redacted]@db.internal:5432/driftd?sslmode=require"
        );
        assert_eq!(
            shown("postgres://driftd@db/x?password=hunter2&application_name=d"),
            "postgres://driftd@db/x?password=[redacted]&application_name=d"
        );
        assert_eq!(shown("postgres://db/x"), "postgres://db/x");
        assert_eq!(shown("sqlite://driftd.db"), "sqlite://driftd.db");
        // A password holding '@' is still hidden whole.
        assert_eq!(
            shown("postgres://u:p@ss@db/x"),
            "postgres://u:[redacted]@db/x"
        );
        let url = Secret::new("postgres://u:hunter2@db/x");
        assert_eq!(
            shown_error(&"cannot reach postgres://u:hunter2@db/x", &url),
            "cannot reach postgres://u:[redacted]@db/x"
        );
    }

    #[test]
    fn errors_that_mean_an_outage() {
        let io = |kind| sqlx::Error::Io(std::io::Error::from(kind));
        assert_eq!(
            outage_of(&io(std::io::ErrorKind::ConnectionRefused)),
            Some(Outage::Refused)
        );
        assert_eq!(
            outage_of(&io(std::io::ErrorKind::ConnectionReset)),
            Some(Outage::Unreachable)
        );
        assert_eq!(outage_of(&sqlx::Error::RowNotFound), None);
        assert_eq!(database_code("13"), Some(Outage::DiskFull));
        assert_eq!(database_code("778"), Some(Outage::Io), "SQLITE_IOERR_WRITE");
        assert_eq!(database_code("2067"), None, "a unique constraint");
        assert_eq!(database_code("57P01"), Some(Outage::Unavailable));
        assert_eq!(database_code("08006"), Some(Outage::Unreachable));
        assert_eq!(database_code("23505"), None);
    }

    #[test]
    fn standing_follows_both_findings() {
        let health = Health::default();
        let mut watch = health.watch();
        assert_eq!(health.standing(), Standing::Ready);
        assert!(health.set_reachable(Err(Outage::Refused), 10));
        assert!(!health.set_reachable(Err(Outage::Unreachable), 20));
        assert!(!*watch.borrow_and_update());
        health.set_unwritable(Some(Outage::DiskFull), 30);
        assert_eq!(
            health.standing(),
            Standing::Unreachable(Down {
                outage: Outage::Unreachable,
                since_ms: 10
            })
        );
        assert!(health.set_reachable(Ok(()), 40));
        assert!(*watch.borrow_and_update());
        assert_eq!(health.outage(), Some(Outage::DiskFull));
        health.set_unwritable(None, 50);
        assert_eq!(health.standing(), Standing::Ready);
    }
}
