//! `features:` — per-feature method, threshold, kind, expected range and values.

use std::collections::BTreeMap;

use serde_saphyr::Spanned;

use super::Problems;
use super::drift::threshold_problem;
use crate::profile::Kind;
use crate::rules::model::{DEFAULT_CATEGORICAL, DEFAULT_NUMERIC, FeatureRule};
use crate::rules::schema::RawFeature;

/// Each feature's rule with the line it is configured on (for conflicts between files).
pub(super) fn validate(
    raw: BTreeMap<String, Spanned<RawFeature>>,
    p: &mut Problems,
) -> BTreeMap<String, (FeatureRule, u64)> {
    let mut features = BTreeMap::new();
    for (name, spanned) in raw {
        let at = spanned.referenced;
        let f = spanned.value;
        if name.is_empty() {
            p.at(&at, "feature name is empty".to_owned());
        }
        check(&name, &f, &at, p);
        let rule = FeatureRule {
            method: f.method,
            threshold: f.threshold.map(|t| t.value),
            ignore: f.ignore,
            kind: f.kind,
            range: f.range.map(|r| r.value),
            allowed_values: f.allowed_values,
            max_null_ratio: f.max_null_ratio.map(|m| m.value),
        };
        features.insert(name, (rule, at.line()));
    }
    features
}

fn check(name: &str, f: &RawFeature, at: &serde_saphyr::Location, p: &mut Problems) {
    if let (Some(m), Some(k)) = (f.method, f.kind)
        && !m.applies_to(k)
    {
        p.at(
            at,
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
            p.at(&t.referenced, format!("{name}: {why}"));
        }
    }
    if let Some(r) = &f.range {
        let (lo, hi) = r.value;
        if !lo.is_finite() || !hi.is_finite() || lo > hi {
            p.at(
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
        p.at(
            &m.referenced,
            format!(
                "{name}: max_null_ratio must be between 0 and 1, got {}",
                m.value
            ),
        );
    }
    if f.range.is_some() && f.kind.is_some_and(|k| k != Kind::Numeric) {
        p.at(
            at,
            format!("{name}: range applies to numeric features only"),
        );
    }
    if f.allowed_values.is_some() && f.kind == Some(Kind::Numeric) {
        p.at(
            at,
            format!("{name}: allowed_values applies to string features only"),
        );
    }
}
