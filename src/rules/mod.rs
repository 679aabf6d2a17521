//! Rules: the rule-file model that detection and alerting both read — YAML that tunes drift
//! detection, data invariants, alerts, run anomalies, training/serving parity and feature skew
//! per dataset and feature.
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
//! skew:                         # id-joined samples compared value by value (rules::SkewRules)
//!   threshold: 0.005
//!   features:
//!     price: {tolerance: 1e-6}
//! inference:                    # names of positional values in inference-logger payloads
//!   inputs: [sepal_length, sepal_width, petal_length, petal_width]
//!   outputs: [species]
//! ```
//!
//! Unknown keys are errors. Every problem of a file is reported at once, each with its file,
//! line and column, in the order they stand (see [`report`] for how many are shown).
//!
//! - `model`: the resolved types (`DatasetRules`, `AlertSpec`, …) with their defaults;
//! - `schema`: the file as written (serde structs, unknown keys refused);
//! - `validate`: one validator per section;
//! - `recover`: finding every mistake of a file the schema refuses, not just the first;
//! - `load`: reading files and directories, and which file wins.

mod load;
mod model;
mod recover;
mod schema;
mod validate;

use std::fmt;
use std::path::PathBuf;

pub use load::{MAX_RULE_FILE_BYTES, RuleSet};
pub use model::{
    AlertSeverity, AlertSpec, AlertWhen, AnomalyRules, CounterRule, DEFAULT_ABSOLUTE_TOLERANCE,
    DEFAULT_ANOMALY_HISTORY, DEFAULT_CATEGORICAL, DEFAULT_MIN_COUNT, DEFAULT_MIN_JOINED,
    DEFAULT_MIN_RUNS, DEFAULT_NEW_CATEGORY_SHARE, DEFAULT_NULL_RATIO_INCREASE, DEFAULT_NUMERIC,
    DEFAULT_OUT_OF_RANGE_SHARE, DEFAULT_SKEW_THRESHOLD, DEFAULT_THRESHOLD, DEFAULT_TOLERANCE,
    DatasetRules, FeatureRule, InferenceNames, Method, NOTIFIERS, ParityRules, Policy, RatioRule,
    Seasonality, Severity, SkewOverrides, SkewRules, SkewSettings, default_threshold,
};

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

/// Problems shown at most; the others are counted in a last line.
pub const MAX_SHOWN: usize = 100;

/// The lines that report `errors`: the first [`MAX_SHOWN`], then "… and N more problems".
pub fn report(errors: &[RuleError]) -> Vec<String> {
    let mut lines: Vec<String> = errors
        .iter()
        .take(MAX_SHOWN)
        .map(ToString::to_string)
        .collect();
    if errors.len() > MAX_SHOWN {
        let more = errors.len() - MAX_SHOWN;
        lines.push(format!(
            "… and {more} more {}",
            crate::format::plural(more, "problem", "problems")
        ));
    }
    lines
}
