//! The rule file as written: serde structs that mirror the YAML, every key optional where the
//! file may leave it out. Unknown keys are refused (`deny_unknown_fields`); values are checked
//! by `validate`, one validator per section.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::model::{
    AlertSeverity, AlertWhen, CounterRule, Method, Seasonality, Severity, SkewOverrides,
};
use crate::profile::Kind;

/// Collections nested in one another at most. A rule file nests four deep (`features:` → a
/// feature → `range:` → its list); the YAML reader's own limit (64) lets a small file nest
/// deeply enough to exhaust a 2 MiB thread stack — a test's, a runtime worker's — in the
/// recursive reading of debug builds.
pub(super) const MAX_DEPTH: usize = 16;

/// How rule files are read: the YAML reader's budgets, with nesting bounded by `MAX_DEPTH`.
pub(super) fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// A whole rule file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) dataset: Spanned<String>,
    #[serde(default)]
    pub(super) drift: Option<RawDrift>,
    #[serde(default)]
    pub(super) invariants: Option<RawInvariants>,
    #[serde(default)]
    pub(super) features: BTreeMap<String, Spanned<RawFeature>>,
    #[serde(default)]
    pub(super) alerts: Vec<Spanned<RawAlert>>,
    #[serde(default)]
    pub(super) anomaly: Option<Spanned<RawAnomaly>>,
    #[serde(default)]
    pub(super) parity: Option<Spanned<RawParity>>,
    #[serde(default)]
    pub(super) skew: Option<Spanned<RawSkew>>,
    #[serde(default)]
    pub(super) inference: Option<Spanned<RawInference>>,
}

/// `inference:` — names for the positional values of inference-logger payloads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInference {
    #[serde(default)]
    pub(super) inputs: Vec<String>,
    #[serde(default)]
    pub(super) outputs: Vec<String>,
}

impl RawFile {
    /// The file with the named sections left out.
    pub(super) fn without(mut self, sections: &[String]) -> RawFile {
        for section in sections {
            match section.as_str() {
                "drift" => self.drift = None,
                "invariants" => self.invariants = None,
                "features" => self.features.clear(),
                "alerts" => self.alerts.clear(),
                "anomaly" => self.anomaly = None,
                "parity" => self.parity = None,
                "skew" => self.skew = None,
                "inference" => self.inference = None,
                _ => {}
            }
        }
        self
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAnomaly {
    pub(super) min_runs: Option<usize>,
    pub(super) history: Option<usize>,
    pub(super) threshold: Option<f64>,
    pub(super) seasonality: Option<Seasonality>,
    pub(super) min_change: Option<f64>,
    pub(super) min_relative_change: Option<f64>,
    #[serde(default)]
    pub(super) counters: BTreeMap<String, CounterRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawParity {
    #[serde(default)]
    pub(super) ratios: Vec<Spanned<RawRatio>>,
    pub(super) null_ratio_tolerance: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRatio {
    pub(super) ratio: String,
    pub(super) tolerance: f64,
    #[serde(default)]
    pub(super) severity: Option<Severity>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlert {
    pub(super) name: String,
    pub(super) when: AlertWhen,
    #[serde(default)]
    pub(super) features: Option<Vec<String>>,
    #[serde(default)]
    pub(super) min_features: Option<usize>,
    #[serde(default)]
    pub(super) min_severity: Option<Severity>,
    #[serde(rename = "for", default)]
    pub(super) for_duration: Option<String>,
    #[serde(default)]
    pub(super) severity: Option<AlertSeverity>,
    #[serde(default)]
    pub(super) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) notify: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDrift {
    pub(super) numeric: Option<Spanned<RawPolicy>>,
    pub(super) categorical: Option<Spanned<RawPolicy>>,
    pub(super) min_count: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    pub(super) method: Method,
    pub(super) threshold: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInvariants {
    pub(super) null_ratio_increase: Option<Spanned<f64>>,
    pub(super) out_of_range_share: Option<Spanned<f64>>,
    pub(super) new_category_share: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeature {
    pub(super) method: Option<Method>,
    pub(super) threshold: Option<Spanned<f64>>,
    #[serde(default)]
    pub(super) ignore: bool,
    pub(super) kind: Option<Kind>,
    pub(super) range: Option<Spanned<(f64, f64)>>,
    pub(super) allowed_values: Option<Vec<String>>,
    pub(super) max_null_ratio: Option<Spanned<f64>>,
}

/// The `skew:` section of a rule file, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSkew {
    pub(super) id: Option<String>,
    pub(super) tolerance: Option<f64>,
    pub(super) absolute_tolerance: Option<f64>,
    pub(super) threshold: Option<f64>,
    pub(super) min_joined: Option<u64>,
    #[serde(default)]
    pub(super) features: BTreeMap<String, SkewOverrides>,
}
