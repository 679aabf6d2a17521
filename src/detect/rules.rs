//! Rule files: YAML that tunes drift detection and data invariants per dataset and feature.
//!
//! ```yaml
//! dataset: search_ranking_inputs      # or "*" for every dataset
//! drift:
//!   numeric: {method: psi, threshold: 0.2}
//!   categorical: {method: js_distance, threshold: 0.1}
//!   min_count: 100
//! invariants:
//!   null_ratio_increase: 0.1
//!   out_of_range_share: 0.01
//!   new_category_share: 0.01
//! features:
//!   latency_ms: {method: psi, threshold: 0.25, range: [0, 30000], max_null_ratio: 0.05}
//!   country: {allowed_values: [US, DE, FR]}
//!   request_id: {ignore: true}
//!   zip_code: {kind: string}
//! anomaly:                      # offline runs judged against the runs before them
//!   min_runs: 7                 # earlier runs needed before judging
//!   history: 200                # earlier runs looked at
//!   threshold: 4                # robust standard deviations (scaled MADs)
//!   seasonality: auto           # auto | hour | weekday | none
//!   counters:                   # per counter or run metric (profile.rows, profile.nulls_ratio.F)
//!     rows_read: {min_change: 1000}
//!     debug_rows: {ignore: true}
//! parity:                       # training vs serving: counter ratios, offline vs online
//!   ratios:
//!     - {ratio: rows_dropped / rows_read, tolerance: 0.01, severity: error}
//!   null_ratio_tolerance: 0.05  # per feature, |offline − online|
//! skew:                         # id-joined samples compared value by value (detect::skew::rules)
//!   threshold: 0.005
//!   features:
//!     price: {tolerance: 1e-6}
//! ```
//!
//! Unknown keys are errors. Every problem is reported with its file, line and column.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::detect::anomaly::{self, Policy, Seasonality};
use crate::names::DatasetName;
use crate::profile::Kind;

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
    pub skew: crate::detect::skew::SkewRules,
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
    pub severity: crate::detect::Severity,
}

impl RatioRule {
    pub fn name(&self) -> String {
        format!("{} / {}", self.numerator, self.denominator)
    }
}

pub use crate::names::valid_counter_name;

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
            skew: crate::detect::skew::SkewRules::default(),
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

/// A problem in a rule file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    dataset: Spanned<String>,
    #[serde(default)]
    drift: Option<RawDrift>,
    #[serde(default)]
    invariants: Option<RawInvariants>,
    #[serde(default)]
    features: BTreeMap<String, Spanned<RawFeature>>,
    #[serde(default)]
    alerts: Vec<Spanned<RawAlert>>,
    #[serde(default)]
    anomaly: Option<Spanned<RawAnomaly>>,
    #[serde(default)]
    parity: Option<Spanned<RawParity>>,
    #[serde(default)]
    skew: Option<Spanned<crate::detect::skew::RawSkew>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnomaly {
    min_runs: Option<usize>,
    history: Option<usize>,
    threshold: Option<f64>,
    seasonality: Option<Seasonality>,
    min_change: Option<f64>,
    min_relative_change: Option<f64>,
    #[serde(default)]
    counters: BTreeMap<String, CounterRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParity {
    #[serde(default)]
    ratios: Vec<Spanned<RawRatio>>,
    null_ratio_tolerance: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRatio {
    ratio: String,
    tolerance: f64,
    #[serde(default)]
    severity: Option<crate::detect::Severity>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlert {
    name: String,
    when: AlertWhen,
    #[serde(default)]
    features: Option<Vec<String>>,
    #[serde(default)]
    min_features: Option<usize>,
    #[serde(default)]
    min_severity: Option<crate::detect::Severity>,
    #[serde(rename = "for", default)]
    for_duration: Option<String>,
    #[serde(default)]
    severity: Option<crate::alert::AlertSeverity>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    notify: Vec<String>,
}

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
    pub min_severity: crate::detect::Severity,
    /// `None`: the configured default (`DRIFTD_ALERT_FOR`).
    pub for_duration: Option<std::time::Duration>,
    pub severity: crate::alert::AlertSeverity,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub notify: Vec<String>,
}

/// Notifiers an alert rule may route to.
pub const NOTIFIERS: [&str; 3] = ["slack", "webhook", "alertmanager"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDrift {
    numeric: Option<Spanned<RawPolicy>>,
    categorical: Option<Spanned<RawPolicy>>,
    min_count: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    method: Method,
    threshold: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInvariants {
    null_ratio_increase: Option<Spanned<f64>>,
    out_of_range_share: Option<Spanned<f64>>,
    new_category_share: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeature {
    method: Option<Method>,
    threshold: Option<Spanned<f64>>,
    #[serde(default)]
    ignore: bool,
    kind: Option<Kind>,
    range: Option<Spanned<(f64, f64)>>,
    allowed_values: Option<Vec<String>>,
    max_null_ratio: Option<Spanned<f64>>,
}

/// One parsed, validated rule file.
#[derive(Debug, Clone)]
struct RuleFile {
    path: PathBuf,
    dataset: String,
    numeric: Option<(Method, f64)>,
    categorical: Option<(Method, f64)>,
    min_count: Option<u64>,
    null_ratio_increase: Option<f64>,
    out_of_range_share: Option<f64>,
    new_category_share: Option<f64>,
    features: BTreeMap<String, (FeatureRule, u64)>,
    alerts: Vec<AlertSpec>,
    anomaly: Option<RawAnomaly>,
    parity: Option<ParityRules>,
    skew: Option<crate::detect::skew::SkewRules>,
}

/// All rule files of a directory (or one file).
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    files: Vec<RuleFile>,
}

/// Largest rule file read: rules are configuration, not data.
const MAX_RULE_FILE_BYTES: u64 = 4 << 20;

impl RuleSet {
    /// Loads `path` (a `.yaml`/`.yml` file, or a directory of them, in name order). Returns
    /// every problem found, not just the first.
    pub fn load(path: &Path) -> Result<RuleSet, Vec<RuleError>> {
        let at_file = |file: &Path, message: String| RuleError {
            file: file.to_owned(),
            line: 0,
            column: 0,
            message,
        };
        let files: Vec<PathBuf> = if path.is_dir() {
            let entries = std::fs::read_dir(path)
                .map_err(|e| vec![at_file(path, format!("cannot read directory: {e}"))])?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
                .collect();
            files.sort();
            files
        } else {
            vec![path.to_owned()]
        };
        let mut errors = Vec::new();
        let mut set = RuleSet::default();
        for file in files {
            let text = match std::fs::metadata(&file) {
                Ok(m) if m.len() > MAX_RULE_FILE_BYTES => {
                    errors.push(at_file(
                        &file,
                        format!("larger than {MAX_RULE_FILE_BYTES} bytes"),
                    ));
                    continue;
                }
                Ok(_) => match std::fs::read_to_string(&file) {
                    Ok(t) => t,
                    Err(e) => {
                        errors.push(at_file(&file, format!("cannot read: {e}")));
                        continue;
                    }
                },
                Err(e) => {
                    errors.push(at_file(&file, format!("cannot read: {e}")));
                    continue;
                }
            };
            match parse(&file, &text) {
                Ok(parsed) => set.files.push(parsed),
                Err(mut problems) => errors.append(&mut problems),
            }
        }
        errors.extend(set.conflicts());
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(errors)
        }
    }

    /// Parses rules from text (for tests and embedded defaults).
    pub fn from_str(file: &Path, text: &str) -> Result<RuleSet, Vec<RuleError>> {
        let set = RuleSet {
            files: vec![parse(file, text)?],
        };
        Ok(set)
    }

    pub fn files(&self) -> usize {
        self.files.len()
    }

    /// Names of datasets with rules of their own ("*" included when present).
    pub fn datasets(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.files.iter().map(|f| f.dataset.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The rules for `dataset`: defaults, then files for "*", then files naming it.
    /// Every alert rule of every file.
    pub fn alerts(&self) -> Vec<AlertSpec> {
        self.files
            .iter()
            .flat_map(|f| f.alerts.iter().cloned())
            .collect()
    }

    pub fn for_dataset(&self, dataset: &str) -> DatasetRules {
        let mut rules = DatasetRules::default();
        let wildcard = self.files.iter().filter(|f| f.dataset == "*");
        let named = self.files.iter().filter(|f| f.dataset == dataset);
        for file in wildcard.chain(named) {
            if let Some(p) = file.numeric {
                rules.numeric = p;
            }
            if let Some(p) = file.categorical {
                rules.categorical = p;
            }
            if let Some(n) = file.min_count {
                rules.min_count = n;
            }
            if let Some(x) = file.null_ratio_increase {
                rules.null_ratio_increase = x;
            }
            if let Some(x) = file.out_of_range_share {
                rules.out_of_range_share = x;
            }
            if let Some(x) = file.new_category_share {
                rules.new_category_share = x;
            }
            for (name, (rule, _)) in &file.features {
                rules.features.insert(name.clone(), rule.clone());
            }
            if let Some(a) = &file.anomaly {
                let r = &mut rules.anomaly;
                r.policy.min_runs = a.min_runs.unwrap_or(r.policy.min_runs);
                r.history = a.history.unwrap_or(r.history);
                r.policy.threshold = a.threshold.unwrap_or(r.policy.threshold);
                r.policy.seasonality = a.seasonality.unwrap_or(r.policy.seasonality);
                r.policy.min_change = a.min_change.unwrap_or(r.policy.min_change);
                r.policy.min_relative_change = a
                    .min_relative_change
                    .unwrap_or(r.policy.min_relative_change);
                for (name, rule) in &a.counters {
                    r.counters.insert(name.clone(), rule.clone());
                }
            }
            if let Some(s) = &file.skew {
                rules.skew.overlay(s);
            }
            if let Some(p) = &file.parity {
                rules.parity.ratios.extend(p.ratios.iter().cloned());
                if p.null_ratio_tolerance.is_some() {
                    rules.parity.null_ratio_tolerance = p.null_ratio_tolerance;
                }
            }
        }
        rules
    }

    /// A feature configured twice for the same dataset is an error: which would win is not
    /// something a reader of the files should have to work out.
    fn conflicts(&self) -> Vec<RuleError> {
        let mut seen: BTreeMap<(&str, &str), (&Path, u64)> = BTreeMap::new();
        let mut errors = Vec::new();
        for file in &self.files {
            for (name, (_, line)) in &file.features {
                let key = (file.dataset.as_str(), name.as_str());
                if let Some((other, other_line)) = seen.get(&key) {
                    errors.push(RuleError {
                        file: file.path.clone(),
                        line: *line,
                        column: 1,
                        message: format!(
                            "feature {name:?} of dataset {:?} is already configured at {}:{other_line}",
                            file.dataset,
                            other.display()
                        ),
                    });
                } else {
                    seen.insert(key, (&file.path, *line));
                }
            }
        }
        errors
    }
}

fn parse(path: &Path, text: &str) -> Result<RuleFile, Vec<RuleError>> {
    let raw: RawFile = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        vec![RuleError {
            file: path.to_owned(),
            line,
            column,
            message: first_line(&e.to_string()),
        }]
    })?;
    let mut errors = Vec::new();
    let mut err = |at: &serde_saphyr::Location, message: String| {
        errors.push(RuleError {
            file: path.to_owned(),
            line: at.line(),
            column: at.column(),
            message,
        })
    };

    let dataset = raw.dataset.value.clone();
    if dataset != "*" && dataset.parse::<DatasetName>().is_err() {
        err(
            &raw.dataset.referenced,
            format!(
                "dataset {dataset:?} is not a valid name (letters, digits, '_', '-', '.', ':'), nor \"*\""
            ),
        );
    }

    let mut policy = |p: &Option<Spanned<RawPolicy>>, numeric: bool| {
        let p = p.as_ref()?;
        let kind = if numeric { Kind::Numeric } else { Kind::String };
        let method = p.value.method;
        if !method.applies_to(kind) {
            err(
                &p.referenced,
                format!(
                    "method {method} does not apply to {} features",
                    if numeric { "numeric" } else { "categorical" }
                ),
            );
        }
        let threshold = p
            .value
            .threshold
            .unwrap_or_else(|| default_threshold(method));
        if let Some(why) = threshold_problem(method, threshold) {
            err(&p.referenced, why);
        }
        Some((method, threshold))
    };
    let (numeric, categorical, min_count) = match &raw.drift {
        Some(d) => (
            policy(&d.numeric, true),
            policy(&d.categorical, false),
            d.min_count,
        ),
        None => (None, None, None),
    };

    let mut share = |x: &Option<Spanned<f64>>, what: &str| {
        let x = x.as_ref()?;
        if !(0.0..=1.0).contains(&x.value) {
            err(
                &x.referenced,
                format!("{what} must be between 0 and 1, got {}", x.value),
            );
        }
        Some(x.value)
    };
    let (null_ratio_increase, out_of_range_share, new_category_share) = match &raw.invariants {
        Some(i) => (
            share(&i.null_ratio_increase, "null_ratio_increase"),
            share(&i.out_of_range_share, "out_of_range_share"),
            share(&i.new_category_share, "new_category_share"),
        ),
        None => (None, None, None),
    };

    let mut features = BTreeMap::new();
    for (name, spanned) in raw.features {
        let f = spanned.value;
        let at = spanned.referenced;
        if name.is_empty() {
            err(&at, "feature name is empty".to_owned());
        }
        if let (Some(m), Some(k)) = (f.method, f.kind)
            && !m.applies_to(k)
        {
            err(
                &at,
                format!("{name}: method {m} does not apply to {k} features"),
            );
        }
        if let Some(t) = &f.threshold {
            let method = f
                .method
                .unwrap_or(if f.kind.is_none_or(|k| k == Kind::Numeric) {
                    DEFAULT_NUMERIC.0
                } else {
                    DEFAULT_CATEGORICAL.0
                });
            if let Some(why) = threshold_problem(method, t.value) {
                err(&t.referenced, format!("{name}: {why}"));
            }
        }
        if let Some(r) = &f.range {
            let (lo, hi) = r.value;
            if !lo.is_finite() || !hi.is_finite() || lo > hi {
                err(
                    &r.referenced,
                    format!(
                        "{name}: range must be [low, high] with finite low <= high, got [{lo}, {hi}]"
                    ),
                );
            }
        }
        if let Some(m) = &f.max_null_ratio
            && !(0.0..=1.0).contains(&m.value)
        {
            err(
                &m.referenced,
                format!(
                    "{name}: max_null_ratio must be between 0 and 1, got {}",
                    m.value
                ),
            );
        }
        if f.range.is_some() && f.kind.is_some_and(|k| k != Kind::Numeric) {
            err(
                &at,
                format!("{name}: range applies to numeric features only"),
            );
        }
        if f.allowed_values.is_some() && f.kind == Some(Kind::Numeric) {
            err(
                &at,
                format!("{name}: allowed_values applies to string features only"),
            );
        }
        features.insert(
            name,
            (
                FeatureRule {
                    method: f.method,
                    threshold: f.threshold.map(|t| t.value),
                    ignore: f.ignore,
                    kind: f.kind,
                    range: f.range.map(|r| r.value),
                    allowed_values: f.allowed_values,
                    max_null_ratio: f.max_null_ratio.map(|m| m.value),
                },
                at.line(),
            ),
        );
    }
    let mut alerts: Vec<AlertSpec> = Vec::new();
    for spanned in raw.alerts {
        let a = spanned.value;
        let at = spanned.referenced;
        if a.name.is_empty() || a.name.len() > 128 || a.name.chars().any(char::is_control) {
            err(
                &at,
                "alert name must be 1 to 128 printable characters".to_owned(),
            );
        }
        if alerts.iter().any(|other| other.name == a.name) {
            err(&at, format!("alert {:?} is defined twice", a.name));
        }
        let for_duration = match &a.for_duration {
            None => None,
            Some(text) => match humantime::parse_duration(text.trim()) {
                Ok(d) => Some(d),
                Err(e) => {
                    err(
                        &at,
                        format!("{}: for: {text:?} is not a duration ({e})", a.name),
                    );
                    None
                }
            },
        };
        for n in &a.notify {
            if !NOTIFIERS.contains(&n.as_str()) {
                err(
                    &at,
                    format!(
                        "{}: unknown notifier {n:?}; use {}",
                        a.name,
                        NOTIFIERS.join(", ")
                    ),
                );
            }
        }
        if a.when == AlertWhen::Invariant && (a.features.is_some() || a.min_features.is_some()) {
            err(
                &at,
                format!(
                    "{}: features and min_features apply to drift alerts",
                    a.name
                ),
            );
        }
        if a.when == AlertWhen::Drift && a.min_severity.is_some() {
            err(
                &at,
                format!("{}: min_severity applies to invariant alerts", a.name),
            );
        }
        alerts.push(AlertSpec {
            dataset: dataset.clone(),
            name: a.name,
            when: a.when,
            features: a.features,
            min_features: a.min_features.unwrap_or(1).max(1),
            min_severity: a.min_severity.unwrap_or(crate::detect::Severity::Error),
            for_duration,
            severity: a.severity.unwrap_or(crate::alert::AlertSeverity::Warning),
            labels: a.labels,
            annotations: a.annotations,
            notify: a.notify,
        });
    }
    if let Some(a) = &raw.anomaly {
        let (v, at) = (&a.value, &a.referenced);
        if v.min_runs == Some(0) {
            err(at, "anomaly: min_runs must be at least 1".to_owned());
        }
        if v.history
            .is_some_and(|h| h < v.min_runs.unwrap_or(anomaly::DEFAULT_MIN_RUNS))
        {
            err(at, "anomaly: history must be at least min_runs".to_owned());
        }
        let mut check = |what: String, x: Option<f64>, positive: bool| {
            if let Some(x) = x
                && (!x.is_finite() || x < 0.0 || (positive && x == 0.0))
            {
                let bound = if positive { "> 0" } else { ">= 0" };
                err(
                    at,
                    format!("anomaly: {what} must be a finite number {bound}, got {x}"),
                );
            }
        };
        check("threshold".into(), v.threshold, true);
        check("min_change".into(), v.min_change, false);
        check("min_relative_change".into(), v.min_relative_change, false);
        for (name, c) in &v.counters {
            check(format!("{name}: threshold"), c.threshold, true);
            check(format!("{name}: min_change"), c.min_change, false);
            check(
                format!("{name}: min_relative_change"),
                c.min_relative_change,
                false,
            );
        }
    }
    let parity = raw.parity.map(|p| {
        let mut rules = ParityRules {
            ratios: Vec::new(),
            null_ratio_tolerance: p.value.null_ratio_tolerance,
        };
        if let Some(t) = rules.null_ratio_tolerance
            && !(0.0..=1.0).contains(&t)
        {
            err(
                &p.referenced,
                format!("parity: null_ratio_tolerance must be between 0 and 1, got {t}"),
            );
        }
        for r in p.value.ratios {
            let (v, at) = (r.value, r.referenced);
            let parts: Vec<&str> = v.ratio.split('/').map(str::trim).collect();
            match parts.as_slice() {
                [n, d] if valid_counter_name(n) && valid_counter_name(d) => {
                    if !v.tolerance.is_finite() || v.tolerance < 0.0 {
                        err(
                            &at,
                            format!(
                                "parity: tolerance must be a finite number >= 0, got {}",
                                v.tolerance
                            ),
                        );
                    }
                    rules.ratios.push(RatioRule {
                        numerator: (*n).to_owned(),
                        denominator: (*d).to_owned(),
                        tolerance: v.tolerance,
                        severity: v.severity.unwrap_or(crate::detect::Severity::Warning),
                    });
                }
                _ => err(
                    &at,
                    format!(
                        "parity: ratio {:?} must read \"counter / counter\" with names matching [a-zA-Z_][a-zA-Z0-9_]*",
                        v.ratio
                    ),
                ),
            }
        }
        rules
    });
    let skew = raw.skew.as_ref().map(|s| {
        crate::detect::skew::parse_rules(&s.value).unwrap_or_else(|problems| {
            for p in problems {
                err(&s.referenced, p);
            }
            crate::detect::skew::SkewRules::default()
        })
    });
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(RuleFile {
        path: path.to_owned(),
        dataset,
        numeric,
        categorical,
        min_count,
        null_ratio_increase,
        out_of_range_share,
        new_category_share,
        features,
        alerts,
        anomaly: raw.anomaly.map(|a| a.value),
        parity,
        skew,
    })
}

fn threshold_problem(method: Method, t: f64) -> Option<String> {
    if !t.is_finite() || t < 0.0 {
        return Some(format!("threshold must be a finite number >= 0, got {t}"));
    }
    if method.is_p_value() && !(t > 0.0 && t < 1.0) {
        return Some(format!(
            "threshold of {method} is a p-value: between 0 and 1 (exclusive), got {t}"
        ));
    }
    if matches!(
        method,
        Method::JsDistance | Method::Hellinger | Method::Ks | Method::Linf
    ) && t > 1.0
    {
        return Some(format!("threshold of {method} must be at most 1, got {t}"));
    }
    None
}

/// serde-saphyr's message without the snippet it renders under it, its "error: " prefix and
/// its own copy of the location (reported separately as file:line:column).
fn first_line(message: &str) -> String {
    let mut line = message.lines().next().unwrap_or(message).trim();
    line = line.strip_prefix("error: ").unwrap_or(line);
    if line.starts_with("line ")
        && let Some((_, rest)) = line.split_once(": ")
    {
        line = rest;
    }
    if let Some(i) = line.rfind(" at line ") {
        line = &line[..i];
    }
    line.to_owned()
}
