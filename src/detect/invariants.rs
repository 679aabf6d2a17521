//! Data invariants: what must hold between training and serving data whatever the
//! distributions do — the same features, the same kinds, no jump in nulls, values within the
//! reference's range, no unseen categories, no NaN or infinity appearing.

use serde::Serialize;

use crate::format::plural;
use crate::profile::{DatasetProfile, FeatureProfile, FrequentValue, Kind};
use crate::rules::DatasetRules;
pub use crate::rules::Severity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    EmptyReference,
    EmptyCurrent,
    MissingFeature,
    NewFeature,
    KindChanged,
    NullRatioIncreased,
    NullRatioAboveMax,
    OutOfReferenceRange,
    OutOfExpectedRange,
    NewCategories,
    DisallowedValues,
    NonFiniteAppeared,
    /// A feature's null ratio differs offline and online (training/serving parity).
    NullRatioParity,
    /// A counter ratio differs offline and online (training/serving parity).
    CounterRatioParity,
    /// The same examples, joined by id, have different feature values offline and online
    /// (training/serving feature skew).
    FeatureSkew,
}

/// One broken (or bent) invariant.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finding {
    /// `None` for findings about the whole dataset.
    pub feature: Option<String>,
    pub check: Check,
    pub severity: Severity,
    pub message: String,
    /// Share of the current values concerned, where it applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
    /// Example values concerned (new categories, disallowed values), at most `MAX_EXAMPLES`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

const MAX_EXAMPLES: usize = 10;

impl Finding {
    /// The share of current values concerned, with the first few of them as examples.
    fn about(mut self, share: f64, values: &[&FrequentValue]) -> Finding {
        self.share = Some(share);
        self.values = values
            .iter()
            .take(MAX_EXAMPLES)
            .map(|v| v.value.clone())
            .collect();
        self
    }

    fn new(feature: Option<&str>, check: Check, severity: Severity, message: String) -> Finding {
        Finding {
            feature: feature.map(str::to_owned),
            check,
            severity,
            message,
            share: None,
            values: Vec::new(),
        }
    }
}

fn num(x: f64) -> String {
    crate::format::format_number(x)
}

fn pct(x: f64) -> String {
    let p = x * 100.0;
    if p > 0.0 && p < 0.1 {
        "<0.1%".to_owned()
    } else {
        format!("{p:.1}%")
    }
}

/// Every invariant check, most severe first.
pub fn check(
    reference: &DatasetProfile,
    current: &DatasetProfile,
    rules: &DatasetRules,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    if reference.rows == 0 {
        findings.push(Finding::new(
            None,
            Check::EmptyReference,
            Severity::Error,
            "the reference has no rows: nothing to compare with".to_owned(),
        ));
    }
    if current.rows == 0 {
        findings.push(Finding::new(
            None,
            Check::EmptyCurrent,
            Severity::Error,
            "the current data has no rows".to_owned(),
        ));
    }
    for (name, r) in &reference.features {
        let rule = rules.feature(name);
        if rule.ignore {
            continue;
        }
        match current.features.get(name) {
            None if current.rows > 0 => findings.push(Finding::new(
                Some(name),
                Check::MissingFeature,
                Severity::Error,
                format!("{name} is in the reference but missing from the current data"),
            )),
            None => {}
            Some(c) => feature_checks(
                name,
                r,
                c,
                reference.rows,
                current.rows,
                rules,
                &mut findings,
            ),
        }
    }
    for name in current.features.keys() {
        if !reference.features.contains_key(name)
            && !rules.feature(name).ignore
            && reference.rows > 0
        {
            findings.push(Finding::new(
                Some(name),
                Check::NewFeature,
                Severity::Warning,
                format!("{name} is new: not in the reference"),
            ));
        }
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.feature.cmp(&b.feature))
    });
    findings
}

fn feature_checks(
    name: &str,
    r: &FeatureProfile,
    c: &FeatureProfile,
    ref_rows: u64,
    cur_rows: u64,
    rules: &DatasetRules,
    out: &mut Vec<Finding>,
) {
    let rule = rules.feature(name);
    let feature = Some(name);
    if r.count() > 0 && c.count() > 0 && r.kind() != c.kind() && rule.kind.is_none() {
        out.push(Finding::new(
            feature,
            Check::KindChanged,
            Severity::Error,
            format!(
                "{name} changed kind: {} in the reference, {} now",
                r.kind(),
                c.kind()
            ),
        ));
    }

    if cur_rows > 0 {
        let cur_ratio = c.nulls() as f64 / cur_rows as f64;
        let ref_ratio = if ref_rows > 0 {
            r.nulls() as f64 / ref_rows as f64
        } else {
            0.0
        };
        if let Some(max) = rule.max_null_ratio {
            if cur_ratio > max {
                // As `pct` prints them unless that hides the excess ("10.0%, above 10.0%").
                let shown = crate::format::telling_as(
                    &[cur_ratio * 100.0, max * 100.0],
                    |p| pct(p / 100.0).trim_end_matches('%').to_owned(),
                    |p| p[0] > p[1],
                );
                let (shown, allowed) = (&shown[0], &shown[1]);
                let mut f = Finding::new(
                    feature,
                    Check::NullRatioAboveMax,
                    Severity::Error,
                    format!("{name} is null in {shown}% of rows, above the allowed {allowed}%"),
                );
                f.share = Some(cur_ratio);
                out.push(f);
            }
        } else if ref_rows > 0 && cur_ratio - ref_ratio >= rules.null_ratio_increase {
            let mut f = Finding::new(
                feature,
                Check::NullRatioIncreased,
                Severity::Warning,
                format!(
                    "{name} is null in {} of rows, up from {}",
                    pct(cur_ratio),
                    pct(ref_ratio)
                ),
            );
            f.share = Some(cur_ratio);
            out.push(f);
        }
    }

    let rnf = r.non_finite().total();
    let cnf = c.non_finite().total();
    if rnf == 0 && cnf > 0 {
        let nf = c.non_finite();
        let mut f = Finding::new(
            feature,
            Check::NonFiniteAppeared,
            Severity::Error,
            format!(
                "{name} has non-finite values the reference never had: {} NaN, {} +inf, {} -inf",
                nf.nan, nf.pos_inf, nf.neg_inf
            ),
        );
        f.share = Some(cnf as f64 / c.count().max(1) as f64);
        out.push(f);
    }

    let kind = rule.kind.unwrap_or_else(|| r.kind());
    if kind == Kind::Numeric {
        range_checks(name, r, c, rules, out);
    } else {
        category_checks(name, r, c, rules, out);
    }
}

/// Share of `f`'s finite numbers below `lo` or above `hi`, from its sketch.
fn share_outside(f: &FeatureProfile, lo: f64, hi: f64) -> f64 {
    let n = f.numeric();
    let (Some(min), Some(max)) = (n.min(), n.max()) else {
        return 0.0;
    };
    if min >= lo && max <= hi {
        return 0.0;
    }
    let below = if min < lo {
        // Fraction strictly below lo: rank just under it.
        n.rank(lo - lo.abs().max(1.0) * f64::EPSILON).unwrap_or(0.0)
    } else {
        0.0
    };
    let above = if max > hi {
        1.0 - n.rank(hi).unwrap_or(1.0)
    } else {
        0.0
    };
    // Out-of-range values exist (min or max says so), even if the sketch rounds them away.
    let at_least = 1.0 / n.count().max(1) as f64;
    (below + above).clamp(at_least, 1.0)
}

fn range_checks(
    name: &str,
    r: &FeatureProfile,
    c: &FeatureProfile,
    rules: &DatasetRules,
    out: &mut Vec<Finding>,
) {
    let rule = rules.feature(name);
    let (Some(cmin), Some(cmax)) = (c.numeric().min(), c.numeric().max()) else {
        return;
    };
    if let Some((lo, hi)) = rule.range {
        if cmin < lo || cmax > hi {
            let share = share_outside(c, lo, hi);
            let mut f = Finding::new(
                Some(name),
                Check::OutOfExpectedRange,
                Severity::Error,
                format!(
                    "{name}: {} of values outside the expected range [{}, {}] (current min {}, max {})",
                    pct(share),
                    num(lo),
                    num(hi),
                    num(cmin),
                    num(cmax)
                ),
            );
            f.share = Some(share);
            out.push(f);
        }
        return;
    }
    let (Some(rmin), Some(rmax)) = (r.numeric().min(), r.numeric().max()) else {
        return;
    };
    if cmin < rmin || cmax > rmax {
        let share = share_outside(c, rmin, rmax);
        let severity = if share >= rules.out_of_range_share {
            Severity::Warning
        } else {
            Severity::Info
        };
        let mut f = Finding::new(
            Some(name),
            Check::OutOfReferenceRange,
            severity,
            format!(
                "{name}: {} of values outside the reference range [{}, {}] (current min {}, max {})",
                pct(share),
                num(rmin),
                num(rmax),
                num(cmin),
                num(cmax)
            ),
        );
        f.share = Some(share);
        out.push(f);
    }
}

fn category_checks(
    name: &str,
    r: &FeatureProfile,
    c: &FeatureProfile,
    rules: &DatasetRules,
    out: &mut Vec<Finding>,
) {
    let rule = rules.feature(name);
    let total = c.types().string as f64;
    if total == 0.0 {
        return;
    }
    let current = c.strings().frequent(usize::MAX);
    if let Some(allowed) = &rule.allowed_values {
        let bad: Vec<_> = current
            .iter()
            .filter(|v| !allowed.contains(&v.value))
            .collect();
        // Strings the sketch no longer tracks cannot be checked one by one; their total can.
        if !bad.is_empty() {
            let share = bad.iter().map(|v| v.count).sum::<u64>() as f64 / total;
            let f = Finding::new(
                Some(name),
                Check::DisallowedValues,
                Severity::Error,
                format!(
                    "{name}: {} of values are not among the allowed values",
                    pct(share)
                ),
            );
            out.push(f.about(share, &bad));
        }
        return;
    }
    // Unseen categories can only be named while the reference's counts are exact.
    if r.types().string == 0 || r.strings().max_error() > 0 {
        return;
    }
    let new: Vec<_> = current
        .iter()
        .filter(|v| r.strings().estimate(&v.value) == 0)
        .collect();
    if new.is_empty() {
        return;
    }
    let share = new.iter().map(|v| v.count).sum::<u64>() as f64 / total;
    let severity = if share >= rules.new_category_share {
        Severity::Warning
    } else {
        Severity::Info
    };
    let f = Finding::new(
        Some(name),
        Check::NewCategories,
        severity,
        format!(
            "{name}: {} {} not in the reference {} {} of values",
            new.len(),
            plural(new.len(), "category", "categories"),
            plural(new.len(), "makes up", "make up"),
            pct(share)
        ),
    );
    out.push(f.about(share, &new));
}
