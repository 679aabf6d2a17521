//! The alert state machine: pure. An alert is active while its condition holds; it is pending
//! until the condition has held for the rule's `for:` duration, then firing; when the condition
//! clears, a firing alert resolves (and says so) while a pending one is dropped silently.

pub use crate::alert_model::AlertState;

/// Where an alert stands, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub state: AlertState,
    /// When the condition started holding (this episode).
    pub active_since_ms: i64,
    pub firing_since_ms: Option<i64>,
    pub resolved_ms: Option<i64>,
}

/// What a step changed that people must hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    Fired,
    Resolved,
}

/// One evaluation: `active` says whether the condition holds now.
pub fn step(
    previous: Option<&Standing>,
    active: bool,
    now_ms: i64,
    for_ms: i64,
) -> (Option<Standing>, Transition) {
    let fire = |since: i64| Standing {
        state: AlertState::Firing,
        active_since_ms: since,
        firing_since_ms: Some(now_ms),
        resolved_ms: None,
    };
    match (previous.map(|p| p.state), active) {
        (None | Some(AlertState::Resolved), true) => {
            if for_ms <= 0 {
                (Some(fire(now_ms)), Transition::Fired)
            } else {
                let pending = Standing {
                    state: AlertState::Pending,
                    active_since_ms: now_ms,
                    firing_since_ms: None,
                    resolved_ms: None,
                };
                (Some(pending), Transition::None)
            }
        }
        (None, false) => (None, Transition::None),
        (Some(AlertState::Resolved), false) => (previous.cloned(), Transition::None),
        (Some(AlertState::Pending), true) => {
            let p = previous.expect("matched Some");
            if now_ms - p.active_since_ms >= for_ms {
                (Some(fire(p.active_since_ms)), Transition::Fired)
            } else {
                (previous.cloned(), Transition::None)
            }
        }
        // Never fired: nobody was told, nobody needs telling.
        (Some(AlertState::Pending), false) => (None, Transition::None),
        (Some(AlertState::Firing), true) => (previous.cloned(), Transition::None),
        (Some(AlertState::Firing), false) => {
            let p = previous.expect("matched Some");
            let resolved = Standing {
                state: AlertState::Resolved,
                resolved_ms: Some(now_ms),
                ..p.clone()
            };
            (Some(resolved), Transition::Resolved)
        }
    }
}

/// A stable fingerprint for (rule, dataset): FNV-1a 64, hex. Stable across versions and
/// platforms, unlike `std`'s hasher.
pub fn fingerprint(rule: &str, dataset: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in rule.bytes().chain([0u8]).chain(dataset.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_then_firing_then_resolved() {
        let (s, t) = step(None, true, 1000, 500);
        assert_eq!(
            (s.as_ref().unwrap().state, t),
            (AlertState::Pending, Transition::None)
        );
        let (s, t) = step(s.as_ref(), true, 1400, 500);
        assert_eq!(
            (s.as_ref().unwrap().state, t),
            (AlertState::Pending, Transition::None)
        );
        let (s, t) = step(s.as_ref(), true, 1500, 500);
        let firing = s.clone().unwrap();
        assert_eq!((firing.state, t), (AlertState::Firing, Transition::Fired));
        assert_eq!(
            (firing.active_since_ms, firing.firing_since_ms),
            (1000, Some(1500))
        );
        let (s, t) = step(s.as_ref(), true, 9000, 500);
        assert_eq!(
            (s.as_ref().unwrap().state, t),
            (AlertState::Firing, Transition::None),
            "fires once"
        );
        let (s, t) = step(s.as_ref(), false, 9500, 500);
        let resolved = s.clone().unwrap();
        assert_eq!(
            (resolved.state, t),
            (AlertState::Resolved, Transition::Resolved)
        );
        assert_eq!(resolved.resolved_ms, Some(9500));
        let (_, t) = step(s.as_ref(), false, 9900, 500);
        assert_eq!(t, Transition::None, "resolves once");
    }

    #[test]
    fn a_pending_alert_that_clears_says_nothing() {
        let (s, _) = step(None, true, 0, 1000);
        let (s, t) = step(s.as_ref(), false, 10, 1000);
        assert_eq!((s, t), (None, Transition::None));
        let (s, t) = step(None, true, 0, 0);
        assert_eq!(
            (s.unwrap().state, t),
            (AlertState::Firing, Transition::Fired),
            "for: 0 fires at once"
        );
    }

    #[test]
    fn fingerprints_are_stable_and_distinct() {
        assert_eq!(
            fingerprint("drift", "search"),
            fingerprint("drift", "search")
        );
        assert_ne!(
            fingerprint("drift", "search"),
            fingerprint("drift", "searc")
        );
        assert_ne!(fingerprint("a", "bc"), fingerprint("ab", "c"));
        assert_eq!(fingerprint("drift", "search").len(), 16);
        // Pinned (computed independently with Python): fingerprints are stored and shown to
        // people; they must never change.
        assert_eq!(fingerprint("", ""), "af63bd4c8601b7df");
        assert_eq!(fingerprint("drift", "search"), "0ca87fb481665a70");
    }
}
