//! Distribution drift per feature, from profiles alone.
//!
//! Numeric features are compared through their quantile sketches' CDFs: PSI, JS distance and
//! Hellinger over bins cut at the reference deciles, KS and Wasserstein-1 over the whole CDFs.
//! String and boolean features are compared as categorical distributions built from exact
//! counts (booleans) or frequent-item counts (strings), with rare categories pooled so that the
//! sampling noise of finite samples is not mistaken for drift.

use std::collections::BTreeMap;

use serde::Serialize;

use super::invariants::{self, Finding, Severity};
use super::rules::{DatasetRules, Method};
use super::stats::{self, StepCdf};
use crate::profile::{DatasetProfile, FeatureProfile, Kind, Stage};

/// Ranks at which sketch CDFs are read: fine enough that an exact sketch (up to 400 values)
/// contributes every value.
const CDF_RESOLUTION: usize = 2048;
/// Numeric bins for PSI, JS distance and Hellinger: cut at the reference's deciles.
const PSI_BINS: usize = 10;
/// A category gets its own bin only if, pooled over both sides, it is expected at least this
/// many times in the smaller side; rarer categories share one "rare" bin (the usual validity
/// rule of the χ² test, which also keeps sampling noise out of JS and PSI).
pub const MIN_EXPECTED_PER_CATEGORY: f64 = 5.0;

/// Every statistic of one feature; `None` where it does not exist (see `FeatureDrift::missing`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Statistics {
    pub psi: Option<f64>,
    pub js_distance: Option<f64>,
    pub hellinger: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks_p_value: Option<f64>,
    /// How far the KS statistic may be from the exact one because of sketch error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks_error_bound: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wasserstein: Option<f64>,
    /// Wasserstein-1 divided by the reference's standard deviation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wasserstein_normalized: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chi2: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chi2_dof: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chi2_p_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linf: Option<f64>,
}

impl Statistics {
    pub fn get(&self, method: Method) -> Option<f64> {
        match method {
            Method::Psi => self.psi,
            Method::JsDistance => self.js_distance,
            Method::Hellinger => self.hellinger,
            Method::Ks => self.ks,
            Method::KsPValue => self.ks_p_value,
            Method::WassersteinNormalized => self.wasserstein_normalized,
            Method::Chi2PValue => self.chi2_p_value,
            Method::Linf => self.linf,
        }
    }

    /// Replaces non-finite figures by `None`: JSON has no NaN or infinity.
    fn finite(mut self) -> Self {
        for x in [
            &mut self.psi,
            &mut self.js_distance,
            &mut self.hellinger,
            &mut self.ks,
            &mut self.ks_p_value,
            &mut self.ks_error_bound,
            &mut self.wasserstein,
            &mut self.wasserstein_normalized,
            &mut self.chi2,
            &mut self.chi2_p_value,
            &mut self.linf,
        ] {
            *x = x.filter(|v| v.is_finite());
        }
        self
    }
}

/// The verdict for one feature.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FeatureDrift {
    pub kind: Kind,
    pub drift: bool,
    pub method: Method,
    /// The method's statistic, `None` when it cannot be computed (`reason` says why).
    pub score: Option<f64>,
    pub threshold: f64,
    pub statistics: Statistics,
    /// The verdict in words: "PSI 0.93 ≥ 0.20", or why there is none.
    pub reason: String,
    /// Why statistics are null, by name; absent when all are present.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub missing: BTreeMap<&'static str, String>,
}

/// One side of a comparison, for the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Side {
    pub dataset: String,
    pub stage: Stage,
    pub rows: u64,
}

/// The result of comparing a current profile with its reference.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DriftReport {
    /// Drifted features, highest score first.
    pub drifted: Vec<String>,
    pub features: BTreeMap<String, FeatureDrift>,
    /// Data-invariant findings, most severe first.
    pub schema: Vec<Finding>,
    pub reference: Side,
    pub current: Side,
}

impl DriftReport {
    /// Drift found or an invariant broken at `error` severity: what makes `compare` exit 1.
    pub fn failed(&self) -> bool {
        !self.drifted.is_empty() || self.schema.iter().any(|f| f.severity == Severity::Error)
    }
}

/// Compares `current` with `reference` under `rules`.
pub fn compare(
    reference: &DatasetProfile,
    current: &DatasetProfile,
    rules: &DatasetRules,
) -> DriftReport {
    let mut features = BTreeMap::new();
    for (name, cur) in &current.features {
        let rule = rules.feature(name);
        if rule.ignore {
            continue;
        }
        let Some(reference_feature) = reference.features.get(name) else {
            continue;
        };
        let kind = rule
            .kind
            .unwrap_or_else(|| comparison_kind(reference_feature, cur));
        let (method, threshold) = rules.method_for(name, kind);
        features.insert(
            name.clone(),
            judge(
                reference_feature,
                cur,
                kind,
                method,
                threshold,
                rules.min_count,
            ),
        );
    }
    let mut drifted: Vec<(&String, f64)> = features
        .iter()
        .filter(|(_, d)| d.drift)
        .map(|(n, d)| (n, d.score.unwrap_or(0.0)))
        .collect();
    drifted.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    DriftReport {
        drifted: drifted.into_iter().map(|(n, _)| n.clone()).collect(),
        schema: invariants::check(reference, current, rules),
        features,
        reference: side(reference),
        current: side(current),
    }
}

fn side(p: &DatasetProfile) -> Side {
    Side {
        dataset: p.dataset.clone(),
        stage: p.stage,
        rows: p.rows,
    }
}

/// The reference's kind, unless the reference has no values and the current one does.
fn comparison_kind(reference: &FeatureProfile, current: &FeatureProfile) -> Kind {
    if reference.count() == 0 && current.count() > 0 {
        current.kind()
    } else {
        reference.kind()
    }
}

fn judge(
    reference: &FeatureProfile,
    current: &FeatureProfile,
    kind: Kind,
    method: Method,
    threshold: f64,
    min_count: u64,
) -> FeatureDrift {
    let mut missing = BTreeMap::new();
    let statistics = match kind {
        Kind::Numeric => numeric_statistics(reference, current, &mut missing),
        Kind::String | Kind::Boolean => {
            categorical_statistics(reference, current, kind, &mut missing)
        }
    }
    .finite();
    let score = statistics.get(method);
    let (ref_n, cur_n) = (values_of(reference, kind), values_of(current, kind));
    let (drift, reason) = match score {
        None => (
            false,
            missing
                .get(method.name())
                .cloned()
                .unwrap_or_else(|| format!("{} does not apply to {kind} features", method.label())),
        ),
        Some(_) if ref_n < min_count || cur_n < min_count => (
            false,
            format!(
                "too few values to judge ({ref_n} reference, {cur_n} current; at least {min_count} each)"
            ),
        ),
        Some(score) => {
            let drift = if method.is_p_value() {
                score < threshold
            } else {
                score >= threshold
            };
            let op = match (method.is_p_value(), drift) {
                (false, true) => "≥",
                (false, false) => "<",
                (true, true) => "<",
                (true, false) => "≥",
            };
            (
                drift,
                format!(
                    "{} {} {op} {}",
                    method.label(),
                    fmt_stat(score),
                    fmt_stat(threshold)
                ),
            )
        }
    };
    FeatureDrift {
        kind,
        drift,
        method,
        score,
        threshold,
        statistics,
        reason,
        missing,
    }
}

/// Values of the kind being compared: finite numbers, strings or booleans.
fn values_of(f: &FeatureProfile, kind: Kind) -> u64 {
    match kind {
        Kind::Numeric => f.numeric().count(),
        Kind::String => f.types().string.max(if f.kind() == Kind::Numeric {
            f.numeric().count()
        } else {
            0
        }),
        Kind::Boolean => f.types().boolean.max(if f.kind() == Kind::Numeric {
            f.numeric().count()
        } else {
            0
        }),
    }
}

pub fn fmt_stat(x: f64) -> String {
    if x == 0.0 {
        "0".to_owned()
    } else if x.abs() >= 0.01 && x.abs() < 1e5 {
        format!("{x:.2}")
    } else {
        format!("{x:.2e}")
    }
}

/// The CDF of a feature's numbers: from its quantile sketch, or, for a string feature read as
/// numbers, from its exactly counted strings that parse as numbers.
fn numeric_cdf(f: &FeatureProfile) -> Option<StepCdf> {
    if f.numeric().count() > 0 {
        let (points, cumulative) = f.numeric().cdf_points(CDF_RESOLUTION).into_iter().unzip();
        return StepCdf::new(points, cumulative);
    }
    let strings = f.strings();
    if strings.count() == 0 || strings.max_error() > 0 {
        return None;
    }
    let mut weighted: Vec<(f64, u64)> = strings
        .frequent(usize::MAX)
        .into_iter()
        .filter_map(|v| {
            v.value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .map(|x| (x, v.count))
        })
        .collect();
    weighted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: u64 = weighted.iter().map(|w| w.1).sum();
    let mut running = 0;
    let (mut points, mut cumulative) = (Vec::new(), Vec::new());
    for (x, n) in weighted {
        running += n;
        if points.last() == Some(&x) {
            *cumulative.last_mut().expect("same length") = running as f64 / total as f64;
        } else {
            points.push(x);
            cumulative.push(running as f64 / total as f64);
        }
    }
    StepCdf::new(points, cumulative)
}

fn numeric_statistics(
    reference: &FeatureProfile,
    current: &FeatureProfile,
    missing: &mut BTreeMap<&'static str, String>,
) -> Statistics {
    let (Some(r), Some(c)) = (numeric_cdf(reference), numeric_cdf(current)) else {
        let why = match (reference.numeric().count(), current.numeric().count()) {
            (0, 0) => "neither side has numeric values",
            (0, _) => "the reference has no numeric values",
            _ => "the current data has no numeric values",
        };
        for name in [
            "psi",
            "js_distance",
            "hellinger",
            "ks",
            "ks_p_value",
            "wasserstein",
            "wasserstein_normalized",
        ] {
            missing.insert(name, why.to_owned());
        }
        return Statistics::default();
    };
    let edges = decile_edges(&r);
    let (p, q) = (r.bin_fractions(&edges), c.bin_fractions(&edges));
    let ks = stats::ks_statistic(&r, &c);
    let (nr, nc) = (reference.numeric().count(), current.numeric().count());
    let wasserstein = stats::wasserstein(&r, &c);
    let wasserstein_normalized = match reference.numeric().stddev() {
        Some(sd) if sd > 0.0 => Some(wasserstein / sd),
        _ => {
            missing.insert(
                "wasserstein_normalized",
                "the reference's standard deviation is 0 or undefined".to_owned(),
            );
            None
        }
    };
    let error_bound = if reference.numeric().count() > 0 && current.numeric().count() > 0 {
        Some(
            reference.numeric().rank_error() * exactness(reference)
                + current.numeric().rank_error() * exactness(current),
        )
    } else {
        None
    };
    Statistics {
        psi: Some(stats::psi(&p, &q)),
        js_distance: Some(stats::js_distance(&p, &q)),
        hellinger: Some(stats::hellinger(&p, &q)),
        ks: Some(ks),
        ks_p_value: stats::ks_p_value(ks, nr.max(1), nc.max(1)),
        ks_error_bound: error_bound,
        wasserstein: Some(wasserstein),
        wasserstein_normalized,
        ..Statistics::default()
    }
}

/// 0 while a sketch holds every value (its CDF is exact), else 1.
fn exactness(f: &FeatureProfile) -> f64 {
    if f.numeric().count() <= u64::from(crate::profile::KLL_K) {
        0.0
    } else {
        1.0
    }
}

/// Bin edges at the reference's deciles, without repeats (a discrete feature has fewer bins).
fn decile_edges(reference: &StepCdf) -> Vec<f64> {
    let points = reference.points();
    let mut edges: Vec<f64> = (1..PSI_BINS)
        .filter_map(|i| {
            let rank = i as f64 / PSI_BINS as f64;
            points
                .iter()
                .copied()
                .find(|&x| reference.at(x) >= rank - 1e-12)
        })
        .collect();
    edges.dedup();
    edges
}

/// Category counts of a feature: booleans exactly; strings from the frequent-items sketch
/// (exact below ~1,500 distinct values); numbers (a numeric feature read as categories) from
/// the jumps of the quantile sketch's CDF.
fn categories(f: &FeatureProfile, kind: Kind) -> (BTreeMap<String, f64>, f64) {
    let mut counts = BTreeMap::new();
    if kind == Kind::Boolean && f.types().boolean > 0 {
        let b = f.booleans();
        counts.insert("true".to_owned(), b.true_count as f64);
        counts.insert("false".to_owned(), b.false_count as f64);
        return (counts, f.types().boolean as f64);
    }
    if f.types().string == 0 && f.numeric().count() > 0 {
        let n = f.numeric().count() as f64;
        let mut previous = 0.0;
        for (x, cumulative) in f.numeric().cdf_points(CDF_RESOLUTION) {
            let jump = (cumulative - previous) * n;
            previous = cumulative;
            if jump > 0.0 {
                counts.insert(crate::report::format_number(x), jump);
            }
        }
        return (counts, n);
    }
    for v in f.strings().frequent(usize::MAX) {
        counts.insert(v.value, v.count as f64);
    }
    (counts, f.types().string as f64)
}

fn categorical_statistics(
    reference: &FeatureProfile,
    current: &FeatureProfile,
    kind: Kind,
    missing: &mut BTreeMap<&'static str, String>,
) -> Statistics {
    let (ref_counts, nr) = categories(reference, kind);
    let (cur_counts, nc) = categories(current, kind);
    if nr == 0.0 || nc == 0.0 {
        let why = match (nr == 0.0, nc == 0.0) {
            (true, true) => "neither side has values",
            (true, false) => "the reference has no values",
            _ => "the current data has no values",
        };
        for name in [
            "psi",
            "js_distance",
            "hellinger",
            "chi2",
            "chi2_p_value",
            "linf",
        ] {
            missing.insert(name, why.to_owned());
        }
        return Statistics::default();
    }
    let (p, q) = pooled_bins(&ref_counts, nr, &cur_counts, nc);
    let chi2 = stats::chi2_homogeneity(&p, &q);
    if chi2.is_none() {
        for name in ["chi2", "chi2_p_value"] {
            missing.insert(name, "fewer than two categories to compare".to_owned());
        }
    }
    let (pf, qf): (Vec<f64>, Vec<f64>) = p.iter().zip(&q).map(|(a, b)| (a / nr, b / nc)).unzip();
    Statistics {
        psi: Some(stats::psi(&pf, &qf)),
        js_distance: Some(stats::js_distance(&p, &q)),
        hellinger: Some(stats::hellinger(&p, &q)),
        chi2: chi2.map(|c| c.0),
        chi2_dof: chi2.map(|c| c.1),
        chi2_p_value: chi2.map(|c| c.2),
        linf: Some(stats::linf(&p, &q)),
        ..Statistics::default()
    }
}

/// Counts per bin on both sides: one bin per category common enough to be measured, one bin
/// for the rare categories together with what the sketches did not track.
pub fn pooled_bins(
    reference: &BTreeMap<String, f64>,
    nr: f64,
    current: &BTreeMap<String, f64>,
    nc: f64,
) -> (Vec<f64>, Vec<f64>) {
    let smaller = nr.min(nc);
    let mut p = Vec::new();
    let mut q = Vec::new();
    let (mut rare_r, mut rare_c) = (nr, nc);
    let names: std::collections::BTreeSet<&String> =
        reference.keys().chain(current.keys()).collect();
    for name in names {
        let r = reference.get(name).copied().unwrap_or(0.0);
        let c = current.get(name).copied().unwrap_or(0.0);
        let expected = (r + c) / (nr + nc) * smaller;
        if expected >= MIN_EXPECTED_PER_CATEGORY {
            p.push(r);
            q.push(c);
            rare_r -= r;
            rare_c -= c;
        }
    }
    let (rare_r, rare_c) = (rare_r.max(0.0), rare_c.max(0.0));
    if rare_r + rare_c > 0.0 {
        p.push(rare_r);
        q.push(rare_c);
    }
    (p, q)
}
