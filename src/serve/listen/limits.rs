//! The connection caps against the process's open-file limit: every connection holds a file
//! descriptor, and a process out of descriptors can accept nothing, its probes included. The
//! soft limit is raised toward the hard one when the caps need it; if that is not enough, the
//! API listener's cap is lowered to what the limit leaves, and the startup log says so.

use tracing::{info, warn};

/// Connections the probe listener (`metrics_listen`) keeps open at most.
pub const PROBE_CONNECTIONS: usize = 64;

/// Descriptors kept for everything but connections: the listeners, the database pool and
/// SQLite's files, log and span exporters, notifiers, rule and certificate files.
const RESERVED_FILES: u64 = 64;

/// What to do about the open-file limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Raise the soft limit to this first.
    pub raise_to: Option<u64>,
    /// The API listener's cap.
    pub api: usize,
}

/// The API listener's cap for `configured` under the limits `soft` and `hard`.
pub fn plan(configured: usize, probes: bool, soft: u64, hard: u64) -> Plan {
    let others = RESERVED_FILES + if probes { PROBE_CONNECTIONS as u64 } else { 0 };
    let needed = (configured as u64).saturating_add(others);
    if needed <= soft {
        return Plan {
            raise_to: None,
            api: configured,
        };
    }
    let reachable = needed.min(hard.max(soft));
    Plan {
        raise_to: (reachable > soft).then_some(reachable),
        api: (reachable.saturating_sub(others) as usize).clamp(1, configured),
    }
}

/// The soft and hard open-file limits, if the system tells.
#[allow(
    clippy::unnecessary_cast,
    reason = "rlim_t is u64 on Linux, not everywhere"
)]
fn open_file_limit() -> Option<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a pointer to a live, initialised one.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (read == 0).then_some((limit.rlim_cur as u64, limit.rlim_max as u64))
}

#[allow(
    clippy::unnecessary_cast,
    reason = "rlim_t is u64 on Linux, not everywhere"
)]
fn raise_open_file_limit(soft: u64, hard: u64) -> bool {
    let limit = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: setrlimit reads one `rlimit` through a pointer to a live one.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 }
}

/// The API listener's cap: `configured` if the open-file limit allows it (raising the soft
/// limit if need be), else what the limit leaves, with a warning.
pub fn api_connection_cap(configured: usize, probes: bool) -> usize {
    let Some((soft, hard)) = open_file_limit() else {
        return configured;
    };
    let mut plan = plan(configured, probes, soft, hard);
    let mut limit = soft;
    if let Some(to) = plan.raise_to {
        if raise_open_file_limit(to, hard) {
            info!(
                from = soft,
                to, "Raised the open-file limit for max_connections"
            );
            limit = to;
        } else {
            plan = self::plan(configured, probes, soft, soft);
        }
    }
    if plan.api < configured {
        warn!(
            max_connections = configured,
            open_file_limit = limit,
            serving = plan.api,
            "max_connections exceeds what the open-file limit leaves; accepting fewer connections (raise ulimit -n)"
        );
    } else {
        info!(
            max_connections = plan.api,
            open_file_limit = limit,
            "Connection cap"
        );
    }
    plan.api
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_the_open_file_limit() {
        // Room enough: nothing changes.
        assert_eq!(
            plan(1024, true, 65_536, 65_536),
            Plan {
                raise_to: None,
                api: 1024
            }
        );
        // systemd's default soft limit of 1024 under a high hard limit: raised just enough.
        assert_eq!(
            plan(1024, true, 1024, 524_288),
            Plan {
                raise_to: Some(1024 + 64 + 64),
                api: 1024
            }
        );
        // `ulimit -n 1024` (soft and hard): the cap is what the limit leaves.
        assert_eq!(
            plan(1024, false, 1024, 1024),
            Plan {
                raise_to: None,
                api: 960
            }
        );
        assert_eq!(
            plan(1024, true, 1024, 1024),
            Plan {
                raise_to: None,
                api: 896
            }
        );
        // Raised as far as the hard limit goes, and the cap fits under it.
        assert_eq!(
            plan(4096, false, 1024, 2048),
            Plan {
                raise_to: Some(2048),
                api: 2048 - 64
            }
        );
        // Never below one connection, never above what was asked.
        assert_eq!(plan(10, true, 16, 16).api, 1);
        assert_eq!(plan(10, false, 100_000, 100_000).api, 10);
    }
}
