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
use super::stats::{self, StepCdf};
use crate::profile::{DatasetProfile, FeatureProfile, Kind, Stage};
use crate::rules::{DatasetRules, Method};

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
    /// The method's statistic net of sampling noise (see `noise_floor`), `None` when it cannot
    /// be computed (`reason` says why).
    pub score: Option<f64>,
    pub threshold: f64,
    /// What the method's statistic is expected to be between two samples of one distribution,
    /// subtracted from it to give `score` (PSI and JS distance only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noise_floor: Option<f64>,
    pub statistics: Statistics,
    /// The verdict in words: "PSI 0.93 ≥ 0.2", or why there is none.
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
    let jobs: Vec<(&String, &FeatureProfile, &FeatureProfile)> = current
        .features
        .iter()
        .filter(|(name, _)| !rules.feature(name).ignore)
        .filter_map(|(name, cur)| reference.features.get(name).map(|r| (name, r, cur)))
        .collect();
    let verdicts = parallel_map(&jobs, |&(name, reference_feature, cur)| {
        let kind = rules
            .feature(name)
            .kind
            .unwrap_or_else(|| comparison_kind(reference_feature, cur));
        let (method, threshold) = rules.method_for(name, kind);
        judge(
            reference_feature,
            cur,
            kind,
            method,
            threshold,
            rules.min_count,
        )
    });
    let features: BTreeMap<String, FeatureDrift> = jobs
        .iter()
        .map(|(name, _, _)| (*name).clone())
        .zip(verdicts)
        .collect();
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

/// `items.iter().map(f)` on every core: features are judged independently, and a profile of
/// a thousand features is worth splitting. Order is kept.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    const MIN_PER_THREAD: usize = 16;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len() / MIN_PER_THREAD)
        .max(1);
    if threads == 1 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("judging a feature does not panic"))
            .collect()
    })
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
    let comparison = match kind {
        Kind::Numeric => numeric_statistics(reference, current, &mut missing),
        Kind::String | Kind::Boolean => {
            categorical_statistics(reference, current, kind, &mut missing)
        }
    };
    let statistics = comparison.statistics.finite();
    let (n, m) = (comparison.n_reference, comparison.n_current);
    let raw = statistics.get(method);
    let floor = raw.and_then(|_| noise_floor(method, comparison.bins, n, m));
    let score = raw.map(|raw| match (method, floor) {
        (Method::Psi, Some(f)) => (raw - f).max(0.0),
        (Method::JsDistance, Some(f)) => (raw * raw - f * f).max(0.0).sqrt(),
        _ => raw,
    });
    let (drift, reason) = match score {
        None => (
            false,
            missing
                .get(method.name())
                .cloned()
                .unwrap_or_else(|| format!("{} does not apply to {kind} features", method.label())),
        ),
        Some(_) if n < min_count as f64 || m < min_count as f64 => (
            false,
            format!(
                "too few values to judge ({n} reference, {m} current; at least {min_count} each)"
            ),
        ),
        Some(score) => {
            let drift = if method.is_p_value() {
                score < threshold
            } else {
                score >= threshold
            };
            let op = match (method.is_p_value(), drift) {
                (false, true) | (true, false) => "≥",
                (false, false) | (true, true) => "<",
            };
            let (score, threshold) = crate::format::against(score, threshold);
            (
                drift,
                format!("{} {score} {op} {threshold}", method.label()),
            )
        }
    };
    FeatureDrift {
        kind,
        drift,
        method,
        score,
        threshold,
        noise_floor: floor.filter(|f| f.is_finite()),
        statistics,
        reason,
        missing,
    }
}

/// What PSI or JS distance stays below, 99 times in 100, between two samples (n and m values)
/// of one distribution over `bins` bins. To second order both statistics are the χ² divergence
/// Σ (p − q)² / π, and (1/n + 1/m)⁻¹ times that divergence follows a χ² distribution with
/// bins − 1 degrees of freedom when nothing changed: PSI is the divergence, the base-2 JS
/// divergence an eighth of it over ln 2, and the JS distance that one's square root.
pub fn noise_floor(method: Method, bins: usize, n: f64, m: f64) -> Option<f64> {
    use statrs::distribution::{ChiSquared, ContinuousCDF};
    if bins < 2 || n <= 0.0 || m <= 0.0 {
        return None;
    }
    let q99 = ChiSquared::new((bins - 1) as f64)
        .ok()?
        .inverse_cdf(NOISE_QUANTILE);
    let divergence = q99 * (1.0 / n + 1.0 / m);
    match method {
        Method::Psi => Some(divergence),
        Method::JsDistance => Some((divergence / (8.0 * std::f64::consts::LN_2)).sqrt()),
        _ => None,
    }
}

/// The share of no-change comparisons whose noise stays under the noise floor.
pub const NOISE_QUANTILE: f64 = 0.99;

/// Statistics with what the noise floor needs: the number of bins and of values per side.
struct Comparison {
    statistics: Statistics,
    bins: usize,
    n_reference: f64,
    n_current: f64,
}

/// The CDF of a feature's numbers: from its quantile sketch, or, for a string feature read as
/// numbers, from its exactly counted strings that parse as numbers.
fn numeric_cdf(f: &FeatureProfile) -> Option<StepCdf> {
    if f.numeric().count() > 0 {
        let (points, cumulative) = f.numeric().cdf_points().into_iter().unzip();
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
) -> Comparison {
    let (r, c) = (numeric_cdf(reference), numeric_cdf(current));
    let counts = (numeric_count(reference), numeric_count(current));
    let (Some(r), Some(c)) = (r, c) else {
        let why = match (counts.0 == 0.0, counts.1 == 0.0) {
            (true, true) => "neither side has numeric values",
            (true, false) => "the reference has no numeric values",
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
        return Comparison {
            statistics: Statistics::default(),
            bins: 0,
            n_reference: counts.0,
            n_current: counts.1,
        };
    };
    let edges = decile_edges(&r);
    let (p, q) = (r.bin_fractions(&edges), c.bin_fractions(&edges));
    let ks = stats::ks_statistic(&r, &c);
    let (nr, nc) = (counts.0 as u64, counts.1 as u64);
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
    // Each CDF is within its sketch's rank error (none while exact) plus its reading grid.
    let cdf_error = |f: &FeatureProfile| {
        let n = f.numeric();
        if n.is_exact() {
            0.0
        } else {
            n.rank_error() + n.cdf_grid_error()
        }
    };
    let error_bound = Some(cdf_error(reference) + cdf_error(current));
    let statistics = Statistics {
        psi: Some(stats::psi(&p, &q)),
        js_distance: Some(stats::js_distance(&p, &q)),
        hellinger: Some(stats::hellinger(&p, &q)),
        ks: Some(ks),
        ks_p_value: stats::ks_p_value(ks, nr.max(1), nc.max(1)),
        ks_error_bound: error_bound,
        wasserstein: Some(wasserstein),
        wasserstein_normalized,
        ..Statistics::default()
    };
    Comparison {
        statistics,
        bins: p.len(),
        n_reference: counts.0,
        n_current: counts.1,
    }
}

/// Values behind a feature's numeric CDF: its finite numbers, or its numeric strings.
fn numeric_count(f: &FeatureProfile) -> f64 {
    if f.numeric().count() > 0 {
        return f.numeric().count() as f64;
    }
    let strings = f.strings();
    if strings.max_error() > 0 {
        return 0.0;
    }
    strings
        .frequent(usize::MAX)
        .iter()
        .filter(|v| v.value.trim().parse::<f64>().is_ok_and(f64::is_finite))
        .map(|v| v.count as f64)
        .sum()
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
fn categories(f: &FeatureProfile, kind: Kind) -> Categories {
    let mut counts = BTreeMap::new();
    if kind == Kind::Boolean && f.types().boolean > 0 {
        let b = f.booleans();
        counts.insert("true".to_owned(), b.true_count as f64);
        counts.insert("false".to_owned(), b.false_count as f64);
        return Categories {
            counts,
            total: f.types().boolean as f64,
            max_error: 0.0,
        };
    }
    if f.types().string == 0 && f.numeric().count() > 0 {
        let n = f.numeric().count() as f64;
        let mut previous = 0.0;
        for (x, cumulative) in f.numeric().cdf_points() {
            let jump = (cumulative - previous) * n;
            previous = cumulative;
            if jump > 0.0 {
                counts.insert(category_key(x), jump);
            }
        }
        let max_error = if f.numeric().is_exact() {
            0.0
        } else {
            (f.numeric().rank_error() + f.numeric().cdf_grid_error()) * n
        };
        return Categories {
            counts,
            total: n,
            max_error,
        };
    }
    for v in f.strings().frequent(usize::MAX) {
        counts.insert(v.value, v.count as f64);
    }
    Categories {
        counts,
        total: f.types().string as f64,
        max_error: f.strings().max_error() as f64,
    }
}

fn categorical_statistics(
    reference: &FeatureProfile,
    current: &FeatureProfile,
    kind: Kind,
    missing: &mut BTreeMap<&'static str, String>,
) -> Comparison {
    let (ref_cats, cur_cats) = (categories(reference, kind), categories(current, kind));
    let (nr, nc) = (ref_cats.total, cur_cats.total);
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
        return Comparison {
            statistics: Statistics::default(),
            bins: 0,
            n_reference: nr,
            n_current: nc,
        };
    }
    let (p, q) = pooled_bins(&ref_cats, &cur_cats);
    let chi2 = stats::chi2_homogeneity(&p, &q);
    if chi2.is_none() {
        for name in ["chi2", "chi2_p_value"] {
            missing.insert(name, "fewer than two categories to compare".to_owned());
        }
    }
    let (pf, qf): (Vec<f64>, Vec<f64>) = p.iter().zip(&q).map(|(a, b)| (a / nr, b / nc)).unzip();
    let statistics = Statistics {
        psi: Some(stats::psi(&pf, &qf)),
        js_distance: Some(stats::js_distance(&p, &q)),
        hellinger: Some(stats::hellinger(&p, &q)),
        chi2: chi2.map(|c| c.0),
        chi2_dof: chi2.map(|c| c.1),
        chi2_p_value: chi2.map(|c| c.2),
        linf: Some(stats::linf(&p, &q)),
        ..Statistics::default()
    };
    Comparison {
        statistics,
        bins: p.len(),
        n_reference: nr,
        n_current: nc,
    }
}

/// Category counts of one side: `total` values, each count known to within `max_error`
/// (0 when exact; a category missing from `counts` has at most `max_error` values).
pub struct Categories {
    pub counts: BTreeMap<String, f64>,
    pub total: f64,
    pub max_error: f64,
}

/// A category's count must be known to within this share of what it is expected to be on
/// each side before it gets a bin of its own.
const MAX_RELATIVE_COUNT_ERROR: f64 = 0.1;

/// Counts per bin on both sides: one bin per category that can be measured — expected at
/// least `MIN_EXPECTED_PER_CATEGORY` times in the smaller side, and counted by each side's
/// sketch to within 10 % — and one bin for all the rest, including what the sketches did not
/// track. Which categories get a bin depends on both sides alike, never on one side's luck.
pub fn pooled_bins(reference: &Categories, current: &Categories) -> (Vec<f64>, Vec<f64>) {
    let (nr, nc) = (reference.total, current.total);
    let smaller = nr.min(nc);
    let mut p = Vec::new();
    let mut q = Vec::new();
    let (mut rare_r, mut rare_c) = (nr, nc);
    let names: std::collections::BTreeSet<&String> = reference
        .counts
        .keys()
        .chain(current.counts.keys())
        .collect();
    for name in names {
        let r = reference.counts.get(name).copied().unwrap_or(0.0);
        let c = current.counts.get(name).copied().unwrap_or(0.0);
        let share = (r + c) / (nr + nc);
        let measurable = share * smaller >= MIN_EXPECTED_PER_CATEGORY
            && reference.max_error <= MAX_RELATIVE_COUNT_ERROR * share * nr
            && current.max_error <= MAX_RELATIVE_COUNT_ERROR * share * nc;
        if measurable {
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

/// The category a number falls in when a numeric feature is judged as categories: integers
/// below 1e15 are their own category; other numbers are grouped at four significant digits
/// (scientific form outside 1e-3..1e6). Deliberately not the display format: how numbers
/// print must never change a score.
fn category_key(x: f64) -> String {
    let integral = x.fract() == 0.0 && x.abs() < 1e15;
    if !x.is_finite() || integral {
        return format!("{x:.0}");
    }
    let exponent = x.abs().log10().floor();
    if !(-3.0..6.0).contains(&exponent) {
        return format!("{x:.3e}");
    }
    let places = (3.0 - exponent).max(0.0) as usize;
    let mut key = format!("{x:.places$}");
    if places > 0 {
        key.truncate(key.trim_end_matches('0').trim_end_matches('.').len());
    }
    key
}

#[cfg(test)]
mod tests {
    use super::category_key;

    #[test]
    fn category_keys_group_at_four_significant_digits() {
        assert_eq!(category_key(18.0), "18");
        assert_eq!(category_key(0.99996), "1");
        assert_eq!(category_key(1.0), "1");
        assert_eq!(category_key(33.1234), "33.12");
        assert_eq!(category_key(1234.5678), "1235");
        assert_eq!(category_key(1.23456e7 + 0.5), "1.235e7");
        assert_eq!(category_key(0.000012), "1.200e-5");
        assert_eq!(category_key(f64::NAN), "NaN");
        assert_eq!(category_key(f64::NEG_INFINITY), "-inf");
    }
}
