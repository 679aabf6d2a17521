//! The wall clock, read in one place: milliseconds since the Unix epoch, as stored and
//! compared everywhere in driftd. A leaf, so every subsystem can read the time without
//! depending on another.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, in milliseconds since the epoch (0 for a clock set before 1970).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A time in milliseconds since the epoch as RFC 3339 with milliseconds; `None` for 0 and
/// earlier ("not yet").
pub fn rfc3339_ms(ms: i64) -> Option<String> {
    (ms > 0).then(|| {
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms as u64)).to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_rfc3339_and_zero_is_not_yet() {
        assert_eq!(rfc3339_ms(0), None);
        assert_eq!(
            rfc3339_ms(1_795_766_400_123).as_deref(),
            Some("2026-11-27T08:00:00.123Z")
        );
        assert!(now_ms() > 1_700_000_000_000);
    }
}
