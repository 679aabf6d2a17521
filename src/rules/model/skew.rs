//! How feature skew is judged: tolerances, the mismatch threshold and the minimum of compared
//! examples, by default and per feature (the `skew:` section of rule files, resolved).
//!
//! ```yaml
//! skew:
//!   id: request_id             # the record field sampled by in driftd serve (default _id)
//!   tolerance: 1e-9            # relative: |a − b| ≤ tolerance × max(|a|, |b|)
//!   absolute_tolerance: 1e-12  # or |a − b| ≤ this, for values near zero
//!   threshold: 0.005           # skewed when the mismatch ratio is above this (with 95 % confidence)
//!   min_joined: 100            # fewer compared examples: no verdict
//!   features:
//!     price_eur: {tolerance: 1e-6}
//!     country: {threshold: 0.02}
//!     last_seen: {ignore: true}
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

/// Relative tolerance of numbers: rounding in another language or library stays within it,
/// a unit change (×1000) or a stale value does not.
pub const DEFAULT_TOLERANCE: f64 = 1e-9;
/// Absolute tolerance, for values that should be zero and differ by summation order.
pub const DEFAULT_ABSOLUTE_TOLERANCE: f64 = 1e-12;
/// Mismatch ratio above which a feature is skewed.
pub const DEFAULT_SKEW_THRESHOLD: f64 = 0.005;
/// Compared examples below which no verdict is given (see docs/skew.md).
pub const DEFAULT_MIN_JOINED: u64 = 100;

/// The settings one feature is judged with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SkewSettings {
    pub tolerance: f64,
    pub absolute_tolerance: f64,
    pub threshold: f64,
    pub min_joined: u64,
    pub ignore: bool,
}

impl Default for SkewSettings {
    fn default() -> Self {
        SkewSettings {
            tolerance: DEFAULT_TOLERANCE,
            absolute_tolerance: DEFAULT_ABSOLUTE_TOLERANCE,
            threshold: DEFAULT_SKEW_THRESHOLD,
            min_joined: DEFAULT_MIN_JOINED,
            ignore: false,
        }
    }
}

/// Settings as written, each optional: a file's section, or one feature of it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkewOverrides {
    pub tolerance: Option<f64>,
    pub absolute_tolerance: Option<f64>,
    pub threshold: Option<f64>,
    pub min_joined: Option<u64>,
    #[serde(default)]
    pub ignore: Option<bool>,
}

impl SkewOverrides {
    pub(crate) fn apply(&self, s: &mut SkewSettings) {
        s.tolerance = self.tolerance.unwrap_or(s.tolerance);
        s.absolute_tolerance = self.absolute_tolerance.unwrap_or(s.absolute_tolerance);
        s.threshold = self.threshold.unwrap_or(s.threshold);
        s.min_joined = self.min_joined.unwrap_or(s.min_joined);
        s.ignore = self.ignore.unwrap_or(s.ignore);
    }

    pub(crate) fn overlay(&mut self, o: &SkewOverrides) {
        self.tolerance = o.tolerance.or(self.tolerance);
        self.absolute_tolerance = o.absolute_tolerance.or(self.absolute_tolerance);
        self.threshold = o.threshold.or(self.threshold);
        self.min_joined = o.min_joined.or(self.min_joined);
        self.ignore = o.ignore.or(self.ignore);
    }
}

/// The skew rules of one dataset: the section's settings, then each feature's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SkewRules {
    /// The record field `driftd serve` samples the dataset's rows by (`skew_id_field` when
    /// unset).
    pub id: Option<String>,
    pub defaults: SkewOverrides,
    pub features: BTreeMap<String, SkewOverrides>,
}

impl SkewRules {
    /// The settings of `feature`: built-in defaults, the section's, then the feature's.
    pub fn for_feature(&self, feature: &str) -> SkewSettings {
        let mut s = SkewSettings::default();
        self.defaults.apply(&mut s);
        if let Some(f) = self.features.get(feature) {
            f.apply(&mut s);
        }
        s
    }

    /// Applies a later rule file's section on top of this one.
    pub fn overlay(&mut self, later: &SkewRules) {
        if later.id.is_some() {
            self.id.clone_from(&later.id);
        }
        self.defaults.overlay(&later.defaults);
        for (name, o) in &later.features {
            self.features.entry(name.clone()).or_default().overlay(o);
        }
    }
}
