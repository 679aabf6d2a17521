//! Alert: findings that persist become alerts with a stable fingerprint and a state (pending,
//! firing, resolved); each change of state becomes notifications, delivered through a
//! persistent outbox to Slack, webhooks and Alertmanager.
//!
//! - [`state`]: the pure state machine and fingerprints;
//! - [`engine`]: alert rules checked against verdicts and run judgements, each transition and
//!   the notifications it owes written to the outbox in one transaction;
//! - [`deliver`]: drains the outbox from every replica, each entry claimed by one at a time,
//!   at least once, rate-limited across replicas and retried with backoff, counted in
//!   [`DeliveryMetrics`] ([`metrics`]);
//! - [`slack`], [`webhook`], [`alertmanager`]: the pure message builders.
//!
//! This module holds the notification model; the words it shares with the store (severity,
//! state, notifier, event) live in [`crate::alert_model`] and are re-exported here.

use std::collections::BTreeMap;

pub mod alertmanager;
pub mod deliver;
pub mod engine;
pub mod metrics;
pub mod slack;
pub mod state;
pub mod webhook;

use serde::{Deserialize, Serialize};

pub use crate::alert_model::{AlertSeverity, AlertState, Notifier, Status};
pub use metrics::{DeliveryMetrics, DeliveryOutcome};

/// One drifted feature, as a notification shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureLine {
    pub name: String,
    pub kind: String,
    pub method: String,
    pub score: Option<f64>,
    pub threshold: f64,
    /// The verdict in words: "PSI 0.93 ≥ 0.2".
    pub reason: String,
    /// The largest quantile or category changes, in words ("p50 19.6 → 210.0",
    /// "country=XX 0% → 33%"), largest first.
    pub changes: Vec<String>,
}

/// What an alert is about, for its headline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    #[default]
    Drift,
    BrokenInputs,
    AnomalousRun,
}

impl Topic {
    /// "Drift", "Broken inputs", "Anomalous run".
    pub fn title(self) -> &'static str {
        match self {
            Topic::Drift => "Drift",
            Topic::BrokenInputs => "Broken inputs",
            Topic::AnomalousRun => "Anomalous run",
        }
    }

    /// The title inside a sentence: "drift", "broken inputs", "anomalous run".
    pub fn words(self) -> &'static str {
        match self {
            Topic::Drift => "drift",
            Topic::BrokenInputs => "broken inputs",
            Topic::AnomalousRun => "anomalous run",
        }
    }
}

/// Everything a notifier needs to tell people about one alert at one moment. One alert groups
/// the findings of one dataset at one evaluation: one message, not one per feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Stable across evaluations and restarts: the same rule and dataset, the same alert.
    pub fingerprint: String,
    /// What the alert is about.
    #[serde(default)]
    pub topic: Topic,
    pub rule: String,
    pub dataset: String,
    pub severity: AlertSeverity,
    pub status: Status,
    /// When the alert started firing (ms since the epoch).
    pub since_ms: i64,
    /// When it resolved, for `Status::Resolved`.
    pub resolved_ms: Option<i64>,
    pub features: Vec<FeatureLine>,
    /// Data-invariant findings, in words.
    pub findings: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Links built from the configured URL templates (Grafana, Honeycomb), as (label, URL).
    pub links: Vec<(String, String)>,
}
