//! The words of alerting that the store keeps and `alert` acts on: an alert's severity and
//! state, a notifier, and a notification's event. A leaf below `store`, so the store's rows
//! are typed without the store depending on `alert` (which depends on the store). Each word is
//! stored as its lowercase name and parsed once, when read; an unknown name is an error.

use std::fmt;
use std::str::FromStr;

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};
use serde::{Deserialize, Serialize};

/// A stored word that is not one of its kind's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {found:?}; expected one of {expected}")]
pub struct UnknownName {
    pub kind: &'static str,
    pub found: String,
    pub expected: &'static str,
}

/// Lowercase names: `as_str`, `Display`, `FromStr` (with [`UnknownName`]) and, for metrics,
/// `EncodeLabelValue`.
macro_rules! named {
    ($type:ident, $kind:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $type {
            pub const ALL: &'static [$type] = &[$($type::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($type::$variant => $name),+
                }
            }
        }

        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $type {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($type::$variant),)+
                    other => Err(UnknownName {
                        kind: $kind,
                        found: other.to_owned(),
                        expected: concat!($($name, " "),+).trim_ascii_end(),
                    }),
                }
            }
        }

        impl EncodeLabelValue for $type {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
                use std::fmt::Write;
                encoder.write_str(self.as_str())
            }
        }
    };
}

/// How loud an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertSeverity {
    Info,
    Warning,
    Critical,
}

named!(AlertSeverity, "severity", {
    Info => "info",
    Warning => "warning",
    Critical => "critical",
});

/// Where an alert stands: pending until its condition has held for `for:`, then firing, then
/// resolved when the condition clears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Pending,
    Firing,
    Resolved,
}

named!(AlertState, "alert state", {
    Pending => "pending",
    Firing => "firing",
    Resolved => "resolved",
});

/// Whether a notification announces an alert or its end: the outbox entry's event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

named!(Status, "event", {
    Firing => "firing",
    Resolved => "resolved",
});

/// A receiver of notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Notifier {
    Slack,
    Webhook,
    Alertmanager,
}

named!(Notifier, "notifier", {
    Slack => "slack",
    Webhook => "webhook",
    Alertmanager => "alertmanager",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_errors() {
        for state in AlertState::ALL {
            assert_eq!(state.as_str().parse::<AlertState>(), Ok(*state));
        }
        for notifier in Notifier::ALL {
            assert_eq!(notifier.to_string().parse::<Notifier>(), Ok(*notifier));
        }
        assert_eq!("critical".parse(), Ok(AlertSeverity::Critical));
        assert_eq!("resolved".parse(), Ok(Status::Resolved));
        let e = "paging".parse::<Notifier>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown notifier \"paging\"; expected one of slack webhook alertmanager"
        );
        assert_eq!(
            "Firing".parse::<AlertState>().unwrap_err().to_string(),
            "unknown alert state \"Firing\"; expected one of pending firing resolved"
        );
    }
}
