//! [`Secret`]: a value (a database URL that may hold a password, a webhook URL, a token) that
//! never reaches logs, errors, metrics or `Debug` output. A leaf: the configuration, the store,
//! alert delivery and `driftd push` all hold one.

use std::fmt;

/// A value that must never reach logs, errors, metrics or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}
