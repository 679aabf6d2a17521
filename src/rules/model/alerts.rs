//! Alert rules as written in rule files, validated: what they watch, how loud they are, where
//! they are sent.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Severity;

/// How loud an alert is: one of the words alerting and the store share.
pub use crate::alert_model::AlertSeverity;

/// What an alert rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertWhen {
    /// Drifted features.
    Drift,
    /// Data-invariant findings (parity findings included).
    Invariant,
    /// An offline run's counters or run metrics broke from their history.
    #[serde(rename = "run_anomaly")]
    RunAnomaly,
}

/// An alert rule as written in a rule file, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSpec {
    /// The dataset of its file, or "*".
    pub dataset: String,
    pub name: String,
    pub when: AlertWhen,
    pub features: Option<Vec<String>>,
    pub min_features: usize,
    pub min_severity: Severity,
    /// `None`: the configured default (`DRIFTD_ALERT_FOR`).
    pub for_duration: Option<std::time::Duration>,
    pub severity: AlertSeverity,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub notify: Vec<String>,
}

/// Notifiers an alert rule may route to.
pub const NOTIFIERS: [&str; 3] = ["slack", "webhook", "alertmanager"];
