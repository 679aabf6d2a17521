//! Run-level anomaly rules: how an offline run's counters are judged against earlier runs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Which rhythm to look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Seasonality {
    /// Hour of day for runs more often than daily, weekday for daily runs; used only when the
    /// history supports it.
    Auto,
    Hour,
    Weekday,
    None,
}

impl std::str::FromStr for Seasonality {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Seasonality::Auto),
            "hour" => Ok(Seasonality::Hour),
            "weekday" => Ok(Seasonality::Weekday),
            "none" => Ok(Seasonality::None),
            other => Err(format!(
                "unknown seasonality {other:?}; expected auto, hour, weekday or none"
            )),
        }
    }
}

/// How runs are judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Earlier runs needed before any run is judged.
    pub min_runs: usize,
    /// Half-width of the expected range, in robust standard deviations.
    pub threshold: f64,
    pub seasonality: Seasonality,
    /// Changes smaller than this (in the counter's unit) are never anomalous.
    pub min_change: f64,
    /// Changes smaller than this share of the expected value are never anomalous.
    pub min_relative_change: f64,
}

pub const DEFAULT_MIN_RUNS: usize = 7;
pub const DEFAULT_THRESHOLD: f64 = 4.0;

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_runs: DEFAULT_MIN_RUNS,
            threshold: DEFAULT_THRESHOLD,
            seasonality: Seasonality::Auto,
            min_change: 0.0,
            min_relative_change: 0.0,
        }
    }
}

/// Run-level anomaly detection of one dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyRules {
    pub policy: Policy,
    /// Earlier runs looked at.
    pub history: usize,
    pub counters: BTreeMap<String, CounterRule>,
}

pub const DEFAULT_ANOMALY_HISTORY: usize = 200;

impl Default for AnomalyRules {
    fn default() -> Self {
        AnomalyRules {
            policy: Policy::default(),
            history: DEFAULT_ANOMALY_HISTORY,
            counters: BTreeMap::new(),
        }
    }
}

/// Overrides for one counter or run metric.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterRule {
    pub threshold: Option<f64>,
    pub min_change: Option<f64>,
    pub min_relative_change: Option<f64>,
    pub seasonality: Option<Seasonality>,
    #[serde(default)]
    pub ignore: bool,
}

impl AnomalyRules {
    /// The policy for `name`; `None` when it is ignored.
    pub fn policy_for(&self, name: &str) -> Option<Policy> {
        let mut policy = self.policy;
        if let Some(rule) = self.counters.get(name) {
            if rule.ignore {
                return None;
            }
            policy.threshold = rule.threshold.unwrap_or(policy.threshold);
            policy.min_change = rule.min_change.unwrap_or(policy.min_change);
            policy.min_relative_change = rule
                .min_relative_change
                .unwrap_or(policy.min_relative_change);
            policy.seasonality = rule.seasonality.unwrap_or(policy.seasonality);
        }
        Some(policy)
    }
}
