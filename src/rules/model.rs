//! The resolved rules: what detection and alerting read, whatever files they came from.

mod alerts;
mod anomaly;
mod skew;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::profile::Kind;

pub use alerts::{AlertSeverity, AlertSpec, AlertWhen, NOTIFIERS};
pub use anomaly::{
    AnomalyRules, CounterRule, DEFAULT_ANOMALY_HISTORY, DEFAULT_MIN_RUNS, DEFAULT_THRESHOLD,
    Policy, Seasonality,
};
pub use skew::{
    DEFAULT_ABSOLUTE_TOLERANCE, DEFAULT_MIN_JOINED, DEFAULT_SKEW_THRESHOLD, DEFAULT_TOLERANCE,
    SkewOverrides, SkewRules, SkewSettings,
};

/// How grave a finding is; rule files name it (`severity:`, `min_severity:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    /// Counts for `compare`'s exit status, like drift.
    Error,
}

/// How a feature's drift is scored. Effect sizes by default; p-values only on request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Psi,
    JsDistance,
    Hellinger,
    Ks,
    WassersteinNormalized,
    Linf,
    /// Drift when the KS p-value is *below* the threshold.
    KsPValue,
    /// Drift when the χ² p-value is *below* the threshold.
    Chi2PValue,
}

impl Method {
    pub const ALL: [Method; 8] = [
        Method::Psi,
        Method::JsDistance,
        Method::Hellinger,
        Method::Ks,
        Method::WassersteinNormalized,
        Method::Linf,
        Method::KsPValue,
        Method::Chi2PValue,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Psi => "psi",
            Method::JsDistance => "js_distance",
            Method::Hellinger => "hellinger",
            Method::Ks => "ks",
            Method::WassersteinNormalized => "wasserstein_normalized",
            Method::Linf => "linf",
            Method::KsPValue => "ks_p_value",
            Method::Chi2PValue => "chi2_p_value",
        }
    }

    /// The name in a sentence: "PSI 0.93 ≥ 0.2".
    pub fn label(self) -> &'static str {
        match self {
            Method::Psi => "PSI",
            Method::JsDistance => "JS distance",
            Method::Hellinger => "Hellinger",
            Method::Ks => "KS",
            Method::WassersteinNormalized => "Wasserstein/σ",
            Method::Linf => "L∞",
            Method::KsPValue => "KS p-value",
            Method::Chi2PValue => "χ² p-value",
        }
    }

    pub fn is_p_value(self) -> bool {
        matches!(self, Method::KsPValue | Method::Chi2PValue)
    }

    pub fn applies_to(self, kind: Kind) -> bool {
        match self {
            Method::Psi | Method::JsDistance | Method::Hellinger => true,
            Method::Ks | Method::WassersteinNormalized | Method::KsPValue => kind == Kind::Numeric,
            Method::Linf | Method::Chi2PValue => kind != Kind::Numeric,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Default verdict thresholds: effect sizes, which do not shrink with sample size.
pub const DEFAULT_NUMERIC: (Method, f64) = (Method::Psi, 0.2);
pub const DEFAULT_CATEGORICAL: (Method, f64) = (Method::JsDistance, 0.1);
pub const DEFAULT_MIN_COUNT: u64 = 100;
pub const DEFAULT_NULL_RATIO_INCREASE: f64 = 0.1;
pub const DEFAULT_OUT_OF_RANGE_SHARE: f64 = 0.01;
pub const DEFAULT_NEW_CATEGORY_SHARE: f64 = 0.01;

/// The rules of one feature, resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeatureRule {
    pub method: Option<Method>,
    pub threshold: Option<f64>,
    pub ignore: bool,
    pub kind: Option<Kind>,
    pub range: Option<(f64, f64)>,
    pub allowed_values: Option<Vec<String>>,
    pub max_null_ratio: Option<f64>,
}

/// The rules that apply to one dataset, resolved from every matching file.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetRules {
    pub numeric: (Method, f64),
    pub categorical: (Method, f64),
    /// Fewer values than this on either side: no verdict.
    pub min_count: u64,
    pub null_ratio_increase: f64,
    pub out_of_range_share: f64,
    pub new_category_share: f64,
    pub features: BTreeMap<String, FeatureRule>,
    pub anomaly: AnomalyRules,
    pub parity: ParityRules,
    /// Training/serving feature skew of the id-joined samples (`skew:`).
    pub skew: SkewRules,
    /// Names of positional payload values (`inference:`).
    pub inference: InferenceNames,
}

/// What the values of an inference payload's rows are called when the payload gives them no
/// names (KServe V1 rows of numbers, Seldon `ndarray` without `names`): the i-th input value is
/// `inputs[i]`, the i-th output value `prediction.<outputs[i]>`; past the lists (or without
/// them), `input_<i>` and `prediction_<i>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InferenceNames {
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

/// Training/serving parity checks of one dataset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParityRules {
    pub ratios: Vec<RatioRule>,
    /// Largest accepted |offline − online| null ratio of a feature; `None`: not checked.
    pub null_ratio_tolerance: Option<f64>,
}

/// `numerator / denominator` must agree offline and online within `tolerance`.
#[derive(Debug, Clone, PartialEq)]
pub struct RatioRule {
    pub numerator: String,
    pub denominator: String,
    pub tolerance: f64,
    pub severity: Severity,
}

impl RatioRule {
    pub fn name(&self) -> String {
        format!("{} / {}", self.numerator, self.denominator)
    }
}

impl Default for DatasetRules {
    fn default() -> Self {
        DatasetRules {
            numeric: DEFAULT_NUMERIC,
            categorical: DEFAULT_CATEGORICAL,
            min_count: DEFAULT_MIN_COUNT,
            null_ratio_increase: DEFAULT_NULL_RATIO_INCREASE,
            out_of_range_share: DEFAULT_OUT_OF_RANGE_SHARE,
            new_category_share: DEFAULT_NEW_CATEGORY_SHARE,
            features: BTreeMap::new(),
            anomaly: AnomalyRules::default(),
            parity: ParityRules::default(),
            skew: SkewRules::default(),
            inference: InferenceNames::default(),
        }
    }
}

static NO_RULE: FeatureRule = FeatureRule {
    method: None,
    threshold: None,
    ignore: false,
    kind: None,
    range: None,
    allowed_values: None,
    max_null_ratio: None,
};

impl DatasetRules {
    pub fn feature(&self, name: &str) -> &FeatureRule {
        self.features.get(name).unwrap_or(&NO_RULE)
    }

    /// Method and threshold for a feature compared as `kind`.
    pub fn method_for(&self, name: &str, kind: Kind) -> (Method, f64) {
        let default = if kind == Kind::Numeric {
            self.numeric
        } else {
            self.categorical
        };
        let rule = self.feature(name);
        match (rule.method, rule.threshold) {
            (Some(m), Some(t)) => (m, t),
            (Some(m), None) => (m, default_threshold(m)),
            (None, Some(t)) => (default.0, t),
            (None, None) => default,
        }
    }
}

/// The threshold a method gets when a rule names the method but no threshold.
pub fn default_threshold(method: Method) -> f64 {
    match method {
        Method::Psi => 0.2,
        Method::JsDistance | Method::Hellinger | Method::Ks | Method::Linf => 0.1,
        Method::WassersteinNormalized => 0.1,
        Method::KsPValue | Method::Chi2PValue => 0.01,
    }
}
