//! Training/serving feature skew: the same examples, sampled by id on both sides, compared
//! value by value.
//!
//! Distribution drift cannot see a feature computed in seconds by one side and milliseconds by
//! the other for some rows, or a lookup that is stale 3 % of the time; joining the two sides'
//! samples on the id can. Numbers are equal within a relative (or, near zero, absolute)
//! tolerance, strings and booleans exactly, nulls only to nulls (counted apart). A feature a
//! row lacks on one side is reported as missing, not as a mismatch. A feature is skewed when,
//! over at least `min_joined` compared examples, its mismatch ratio is above the threshold with
//! 95 % confidence (the Wilson interval's lower bound is above it), so a handful of mismatches
//! in a small sample does not cry wolf.
//!
//! Pure and synchronous: two samples and rules in, a `SkewReport` out.

mod words;

use std::collections::BTreeMap;

use serde::Serialize;

use super::invariants::{Check, Finding, Severity};
use crate::profile::{Sample, SampleValue, SampledRow};
pub use crate::rules::{SkewOverrides, SkewRules, SkewSettings};

/// Mismatches shown per feature.
pub const MAX_EXAMPLES: usize = 5;
/// Longest string shown in an example, in characters.
const MAX_EXAMPLE_CHARS: usize = 200;
/// z for a two-sided 95 % interval.
pub const Z_95: f64 = 1.959_963_984_540_054;
/// Quantiles of the numeric differences reported ("min" and "max" are 0 and 1).
const DIFFERENCE_QUANTILES: [(&str, f64); 7] = [
    ("min", 0.0),
    ("0.05", 0.05),
    ("0.25", 0.25),
    ("0.5", 0.5),
    ("0.75", 0.75),
    ("0.95", 0.95),
    ("max", 1.0),
];

/// What the two sides are called in verdicts: "reference"/"current" for two files,
/// "offline"/"online" in the daemon.
#[derive(Debug, Clone, Copy)]
pub struct SideNames<'a> {
    pub reference: &'a str,
    pub current: &'a str,
}

impl Default for SideNames<'_> {
    fn default() -> Self {
        SideNames {
            reference: "reference",
            current: "current",
        }
    }
}

/// A count per side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PerSide {
    pub reference: u64,
    pub current: u64,
}

/// The skew of the id-joined samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkewReport {
    /// The id column joined on.
    pub id: String,
    /// Ids kept once on each side, within both sides' sampling range.
    pub joined: u64,
    /// Ids only the reference kept, within both sides' sampling range.
    pub reference_only: u64,
    pub current_only: u64,
    /// Ids seen more than once on a side: left out of the join, since which copy the other
    /// side's value belongs to is unknown.
    pub duplicate_ids: PerSide,
    /// Rows without a usable id (absent, null, not a string or number).
    pub without_id: PerSide,
    /// Rows each side had with an id, sampled or not.
    pub rows_with_id: PerSide,
    /// The share of ids eligible on both sides (the lower of the two rates).
    pub rate: f64,
    /// Whether a side's row or byte cap narrowed the range of ids joined.
    pub capped: bool,
    pub features: BTreeMap<String, FeatureSkew>,
    /// Skewed features, highest mismatch ratio first.
    pub skewed: Vec<String>,
}

impl SkewReport {
    pub fn failed(&self) -> bool {
        !self.skewed.is_empty()
    }

    /// One `feature_skew` finding of severity `error` per skewed feature, in the report's
    /// order, worded as the feature's verdict; its share is the mismatch ratio.
    pub fn findings(&self) -> Vec<Finding> {
        self.skewed
            .iter()
            .filter_map(|name| self.features.get_key_value(name))
            .map(|(name, f)| Finding {
                feature: Some(name.clone()),
                check: Check::FeatureSkew,
                severity: Severity::Error,
                message: f.verdict.clone(),
                share: f.mismatch_ratio,
                values: Vec::new(),
            })
            .collect()
    }
}

/// The comparison of one feature over the joined examples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureSkew {
    /// What the reference's values mostly are: numeric, boolean or string (null when none).
    pub kind: Option<&'static str>,
    /// Joined examples where both sides carry the feature (null or not).
    pub compared: u64,
    pub mismatched: u64,
    /// `mismatched / compared`; null when nothing was compared.
    pub mismatch_ratio: Option<f64>,
    /// The ratio's 95 % Wilson interval.
    pub interval: Option<[f64; 2]>,
    /// Null on both sides: equal, counted apart.
    pub both_null: u64,
    /// Null on the reference only, or on the current side only: mismatches.
    pub reference_null: u64,
    pub current_null: u64,
    /// Values of different types (a number against a string): mismatches.
    pub type_mismatched: u64,
    /// Joined examples whose reference (or current) record lacks the feature: not compared.
    pub missing_reference: u64,
    pub missing_current: u64,
    /// Nested or binary values: present, not compared.
    pub not_comparable: u64,
    pub skewed: bool,
    pub threshold: f64,
    pub tolerance: f64,
    pub absolute_tolerance: f64,
    pub min_joined: u64,
    /// Of mismatched pairs of finite numbers: |current − reference|, (current − reference) /
    /// |reference| and current / reference (the last two where the reference is not 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub differences: Option<Differences>,
    /// The first mismatches in id-hash order.
    pub examples: Vec<Example>,
    /// The verdict in words.
    pub verdict: String,
}

/// Distribution of the numeric differences of mismatched pairs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Differences {
    pub pairs: u64,
    pub absolute: BTreeMap<&'static str, f64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub relative: BTreeMap<&'static str, f64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ratio: BTreeMap<&'static str, f64>,
}

/// One mismatch: the id and both values (non-finite numbers as "NaN", "inf", "-inf").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Example {
    pub id: String,
    pub reference: serde_json::Value,
    pub current: serde_json::Value,
}

/// The 95 % Wilson score interval of `k` successes in `n` trials (`None` for `n = 0`).
pub fn wilson_interval(k: u64, n: u64) -> Option<[f64; 2]> {
    if n == 0 {
        return None;
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = Z_95 * Z_95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z_95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // At k = 0 and k = n the bound is exactly 0 or 1; rounding would put it a hair inside.
    let lo = if k == 0.0 {
        0.0
    } else {
        (centre - half).max(0.0)
    };
    let hi = if k == n {
        1.0
    } else {
        (centre + half).min(1.0)
    };
    Some([lo, hi])
}

/// Whether two values agree under `s`.
fn equal(a: &SampleValue, b: &SampleValue, s: &SkewSettings) -> bool {
    match (a, b) {
        (SampleValue::Number(x), SampleValue::Number(y)) => numbers_equal(*x, *y, s),
        (SampleValue::Null, SampleValue::Null) => true,
        (SampleValue::Bool(x), SampleValue::Bool(y)) => x == y,
        (SampleValue::Str(x), SampleValue::Str(y)) => x == y,
        _ => false,
    }
}

/// Equal within the tolerances; NaN equals NaN, an infinity only itself.
pub fn numbers_equal(x: f64, y: f64, s: &SkewSettings) -> bool {
    if x == y || (x.is_nan() && y.is_nan()) {
        return true;
    }
    if !x.is_finite() || !y.is_finite() {
        return false;
    }
    let diff = (x - y).abs();
    diff <= s.absolute_tolerance || diff <= s.tolerance * x.abs().max(y.abs())
}

/// Counts of one feature as the join goes.
#[derive(Default)]
struct Tally {
    f: FeatureTally,
    kinds: [u64; 3],
    absolute: Vec<f64>,
    relative: Vec<f64>,
    ratio: Vec<f64>,
    examples: Vec<Example>,
}

#[derive(Default)]
struct FeatureTally {
    compared: u64,
    mismatched: u64,
    both_null: u64,
    reference_null: u64,
    current_null: u64,
    type_mismatched: u64,
    missing_reference: u64,
    missing_current: u64,
    not_comparable: u64,
}

impl Tally {
    fn observe(
        &mut self,
        id: &str,
        r: Option<&SampleValue>,
        c: Option<&SampleValue>,
        s: &SkewSettings,
    ) {
        let t = &mut self.f;
        let (r, c) = match (r, c) {
            (Some(r), Some(c)) => (r, c),
            (r, c) => {
                t.missing_reference += u64::from(r.is_none());
                t.missing_current += u64::from(c.is_none());
                return;
            }
        };
        if matches!(r, SampleValue::Other) || matches!(c, SampleValue::Other) {
            t.not_comparable += 1;
            return;
        }
        t.compared += 1;
        match r {
            SampleValue::Number(_) => self.kinds[0] += 1,
            SampleValue::Bool(_) => self.kinds[1] += 1,
            SampleValue::Str(_) => self.kinds[2] += 1,
            _ => {}
        }
        if equal(r, c, s) {
            t.both_null += u64::from(matches!(r, SampleValue::Null));
            return;
        }
        t.mismatched += 1;
        match (r, c) {
            (SampleValue::Null, _) => t.reference_null += 1,
            (_, SampleValue::Null) => t.current_null += 1,
            (SampleValue::Number(x), SampleValue::Number(y)) if x.is_finite() && y.is_finite() => {
                self.absolute.push((y - x).abs());
                if *x != 0.0 {
                    self.relative.push((y - x) / x.abs());
                    self.ratio.push(y / x);
                }
            }
            (SampleValue::Number(_), SampleValue::Number(_)) => {}
            (a, b) if std::mem::discriminant(a) != std::mem::discriminant(b) => {
                t.type_mismatched += 1
            }
            _ => {}
        }
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(Example {
                id: id.to_owned(),
                reference: shown(r),
                current: shown(c),
            });
        }
    }

    fn kind(&self) -> Option<&'static str> {
        let [n, b, s] = self.kinds;
        if n + b + s == 0 {
            None
        } else if n >= b && n >= s {
            Some("numeric")
        } else if b >= s {
            Some("boolean")
        } else {
            Some("string")
        }
    }

    fn differences(&mut self) -> Option<Differences> {
        if self.absolute.is_empty() {
            return None;
        }
        Some(Differences {
            pairs: self.absolute.len() as u64,
            absolute: quantiles(&mut self.absolute),
            relative: quantiles(&mut self.relative),
            ratio: quantiles(&mut self.ratio),
        })
    }
}

fn shown(v: &SampleValue) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        SampleValue::Null => J::Null,
        SampleValue::Bool(b) => J::Bool(*b),
        SampleValue::Number(x) => serde_json::Number::from_f64(*x).map_or_else(
            || {
                J::String(
                    if x.is_nan() {
                        "NaN"
                    } else if *x > 0.0 {
                        "inf"
                    } else {
                        "-inf"
                    }
                    .into(),
                )
            },
            J::Number,
        ),
        SampleValue::Str(s) => J::String(s.chars().take(MAX_EXAMPLE_CHARS).collect()),
        SampleValue::Other => J::String("(nested value)".into()),
    }
}

/// Exact quantiles, interpolated linearly between order statistics (numpy's default).
fn quantiles(values: &mut [f64]) -> BTreeMap<&'static str, f64> {
    if values.is_empty() {
        return BTreeMap::new();
    }
    values.sort_by(f64::total_cmp);
    let last = (values.len() - 1) as f64;
    DIFFERENCE_QUANTILES
        .iter()
        .map(|&(name, q)| {
            let pos = q * last;
            let lo = pos.floor() as usize;
            let hi = pos.ceil() as usize;
            let x = values[lo] + (values[hi] - values[lo]) * (pos - lo as f64);
            (name, x)
        })
        .collect()
}

/// Keys below which both samples hold every eligible id: the lower rate, the lower bound.
struct CommonRange<'a> {
    rate_bound: u128,
    bound: Option<(u64, &'a str)>,
}

impl CommonRange<'_> {
    fn contains(&self, hash: u64, id: &str) -> bool {
        (hash as u128) < self.rate_bound && self.bound.is_none_or(|b| (hash, id) < b)
    }
}

/// Joins two samples on their ids and judges every feature under `rules`.
pub fn join(
    reference: &Sample,
    current: &Sample,
    rules: &SkewRules,
    names: SideNames<'_>,
) -> SkewReport {
    let rate = reference.policy().rate.min(current.policy().rate);
    let bound = match (reference.bound(), current.bound()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let range = CommonRange {
        rate_bound: crate::profile::SamplePolicy {
            rate,
            ..reference.policy()
        }
        .rate_bound(),
        bound,
    };

    // Every feature either side carries (the id column aside), with its index on each side.
    let mut columns: BTreeMap<&str, (Option<u32>, Option<u32>)> = BTreeMap::new();
    for name in reference.features() {
        columns.entry(name).or_default().0 = reference.feature_index(name);
    }
    for name in current.features() {
        columns.entry(name).or_default().1 = current.feature_index(name);
    }
    columns.retain(|name, _| *name != reference.id_column() && *name != current.id_column());
    let settings: Vec<SkewSettings> = columns.keys().map(|n| rules.for_feature(n)).collect();
    let mut tallies: Vec<Tally> = columns.keys().map(|_| Tally::default()).collect();
    let slots: Vec<(Option<u32>, Option<u32>)> = columns.values().copied().collect();

    let mut report = SkewReport {
        id: current.id_column().to_owned(),
        joined: 0,
        reference_only: 0,
        current_only: 0,
        duplicate_ids: PerSide::default(),
        without_id: PerSide {
            reference: reference.without_id(),
            current: current.without_id(),
        },
        rows_with_id: PerSide {
            reference: reference.offered(),
            current: current.offered(),
        },
        rate,
        capped: bound.is_some(),
        features: BTreeMap::new(),
        skewed: Vec::new(),
    };
    let mut on_pair = |id: &str, r: &SampledRow, c: &SampledRow| {
        for (i, tally) in tallies.iter_mut().enumerate() {
            if settings[i].ignore {
                continue;
            }
            let (ri, ci) = slots[i];
            let rv = ri.and_then(|j| r.get(j));
            let cv = ci.and_then(|j| c.get(j));
            tally.observe(id, rv, cv, &settings[i]);
        }
    };
    merge_join(reference, current, &range, &mut report, &mut on_pair);

    for ((name, tally), s) in columns.keys().zip(tallies).zip(settings) {
        if s.ignore {
            continue;
        }
        let feature = judge(name, tally, &s, report.joined, names);
        report.features.insert((*name).to_owned(), feature);
    }
    let mut skewed: Vec<(&String, f64)> = report
        .features
        .iter()
        .filter(|(_, f)| f.skewed)
        .map(|(n, f)| (n, f.mismatch_ratio.unwrap_or(0.0)))
        .collect();
    skewed.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    report.skewed = skewed.into_iter().map(|(n, _)| n.clone()).collect();
    report
}

/// Walks both samples in key order, counting one-sided and duplicated ids and handing each
/// id kept once on both sides to `on_pair`.
fn merge_join(
    reference: &Sample,
    current: &Sample,
    range: &CommonRange<'_>,
    report: &mut SkewReport,
    on_pair: &mut impl FnMut(&str, &SampledRow, &SampledRow),
) {
    let mut r = reference
        .rows()
        .filter(|(h, id, _)| range.contains(*h, id))
        .peekable();
    let mut c = current
        .rows()
        .filter(|(h, id, _)| range.contains(*h, id))
        .peekable();
    loop {
        let order = match (r.peek(), c.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((rh, rid, _)), Some((ch, cid, _))) => (rh, rid).cmp(&(ch, cid)),
        };
        let (rr, cr) = match order {
            std::cmp::Ordering::Less => (r.next(), None),
            std::cmp::Ordering::Greater => (None, c.next()),
            std::cmp::Ordering::Equal => (r.next(), c.next()),
        };
        let r_dup = rr.is_some_and(|(_, _, row)| row.copies > 1);
        let c_dup = cr.is_some_and(|(_, _, row)| row.copies > 1);
        report.duplicate_ids.reference += u64::from(r_dup);
        report.duplicate_ids.current += u64::from(c_dup);
        match (rr, cr) {
            _ if r_dup || c_dup => {}
            (Some((_, id, rrow)), Some((_, _, crow))) => {
                report.joined += 1;
                on_pair(id, rrow, crow);
            }
            (Some(_), None) => report.reference_only += 1,
            (None, Some(_)) => report.current_only += 1,
            (None, None) => unreachable!("one side advanced"),
        }
    }
}

fn judge(
    name: &str,
    mut tally: Tally,
    s: &SkewSettings,
    joined: u64,
    names: SideNames<'_>,
) -> FeatureSkew {
    let t = &tally.f;
    let ratio = (t.compared > 0).then(|| t.mismatched as f64 / t.compared as f64);
    let interval = wilson_interval(t.mismatched, t.compared);
    let skewed = t.compared >= s.min_joined && interval.is_some_and(|[lo, _]| lo > s.threshold);
    let differences = tally.differences();
    let kind = tally.kind();
    let t = &tally.f;
    let verdict = words::verdict(
        name,
        &words::Facts {
            joined,
            compared: t.compared,
            mismatched: t.mismatched,
            missing_reference: t.missing_reference,
            missing_current: t.missing_current,
            interval,
            skewed,
            settings: s,
            median_ratio: differences
                .as_ref()
                .and_then(|d| d.ratio.get("0.5").copied()),
            median_absolute: differences
                .as_ref()
                .and_then(|d| d.absolute.get("0.5").copied()),
            example: tally.examples.first(),
            numeric: kind == Some("numeric"),
        },
        names,
    );
    FeatureSkew {
        kind,
        compared: t.compared,
        mismatched: t.mismatched,
        mismatch_ratio: ratio,
        interval,
        both_null: t.both_null,
        reference_null: t.reference_null,
        current_null: t.current_null,
        type_mismatched: t.type_mismatched,
        missing_reference: t.missing_reference,
        missing_current: t.missing_current,
        not_comparable: t.not_comparable,
        skewed,
        threshold: s.threshold,
        tolerance: s.tolerance,
        absolute_tolerance: s.absolute_tolerance,
        min_joined: s.min_joined,
        differences,
        examples: tally.examples,
        verdict,
    }
}

#[cfg(test)]
mod tests;
