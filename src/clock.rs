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

/// The last millisecond RFC 3339 can write (9999-12-31T23:59:59.999Z).
pub const LAST_MS: i64 = 253_402_300_799_999;

/// A time in milliseconds since the epoch as RFC 3339 with milliseconds; `None` for 0 and
/// earlier ("not yet"). Times past year 9999 (which no input may set, but a database may hold)
/// print as the last one RFC 3339 can write, so reading them never fails.
pub fn rfc3339_ms(ms: i64) -> Option<String> {
    (ms > 0).then(|| {
        let ms = ms.min(LAST_MS) as u64;
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_rfc3339_and_zero_is_not_yet() {
        assert_eq!(rfc3339_ms(0), None);
        assert_eq!(
            rfc3339_ms(i64::MAX).as_deref(),
            Some("9999-12-31T23:59:59.999Z")
        );
        assert_eq!(
            rfc3339_ms(LAST_MS).as_deref(),
            Some("9999-12-31T23:59:59.999Z")
        );
        assert_eq!(
            rfc3339_ms(1_795_766_400_123).as_deref(),
            Some("2026-11-27T08:00:00.123Z")
        );
        assert!(now_ms() > 1_700_000_000_000);
    }
}
