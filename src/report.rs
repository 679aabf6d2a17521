//! Renders profiles for programs (the `profile --json` document) and for people (tables whose
//! lines are cut to a terminal's width, or kept whole for pipes and files).

mod skew;
pub use skew::skew_table;

use std::collections::BTreeMap;

use crate::format::{against, fit, format_number, group_digits, percent, plural, printable, width};
use serde::Serialize;

use crate::profile::{DatasetProfile, FeatureProfile, Kind, Problems, Stage};

/// The most columns of a finding's message: a bound on hostile text, not a terminal's width.
const MESSAGE_MAX: usize = 400;

/// Quantiles listed for numeric features.
pub const QUANTILES: [f64; 7] = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99];
/// Most frequent values listed per feature.
pub const TOP_VALUES: usize = 20;

#[derive(Debug, Serialize)]
pub struct ProfileDocument<'a> {
    pub dataset: &'a str,
    pub stage: Stage,
    pub rows: u64,
    pub rejected_rows: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: &'a BTreeMap<String, String>,
    pub features: BTreeMap<&'a str, FeatureDocument>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct FeatureDocument {
    pub kind: Kind,
    /// Non-null values of any type.
    pub count: u64,
    pub nulls: u64,
    pub null_ratio: Option<f64>,
    pub distinct: u64,
    /// Non-null values by type; values not of `kind` are still profiled by their own type.
    pub types: TypeDocument,
    pub non_finite: NonFiniteDocument,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numeric: Option<NumericDocument>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub string: Option<StringDocument>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub top: Vec<TopValue>,
}

#[derive(Debug, Serialize)]
pub struct TypeDocument {
    pub numeric: u64,
    pub boolean: u64,
    pub string: u64,
    pub other: u64,
}

#[derive(Debug, Serialize)]
pub struct NonFiniteDocument {
    pub nan: u64,
    pub pos_inf: u64,
    pub neg_inf: u64,
}

#[derive(Debug, Serialize)]
pub struct NumericDocument {
    /// Finite numeric values: the ones min, max, moments and quantiles describe.
    pub count: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    /// Sample standard deviation (divisor n - 1).
    pub stddev: Option<f64>,
    pub quantiles: BTreeMap<String, f64>,
    /// The quantile sketch's normalised rank error bound (99 % confidence).
    pub rank_error: f64,
}

#[derive(Debug, Serialize)]
pub struct StringDocument {
    pub count: u64,
    /// Lengths in Unicode scalar values.
    pub length: LengthDocument,
    /// The most any listed count may be underestimated by; 0 when counts are exact.
    pub top_max_error: u64,
}

#[derive(Debug, Serialize)]
pub struct LengthDocument {
    pub min: Option<u64>,
    pub max: Option<u64>,
    pub mean: Option<f64>,
    pub stddev: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct TopValue {
    pub value: serde_json::Value,
    pub count: u64,
}

pub fn document<'a>(
    profile: &'a DatasetProfile,
    problems: Option<&Problems>,
) -> ProfileDocument<'a> {
    ProfileDocument {
        dataset: &profile.dataset,
        stage: profile.stage,
        rows: profile.rows,
        rejected_rows: profile.rejected_rows,
        labels: &profile.labels,
        features: profile
            .features
            .iter()
            .map(|(name, f)| (name.as_str(), feature_document(f, profile.rows)))
            .collect(),
        problems: problems.map(problem_lines).unwrap_or_default(),
    }
}

fn finite(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite())
}

fn feature_document(f: &FeatureProfile, rows: u64) -> FeatureDocument {
    let kind = f.kind();
    let t = f.types();
    let nf = f.non_finite();
    let num = f.numeric();
    let numeric = (kind == Kind::Numeric || t.numeric > 0).then(|| NumericDocument {
        count: num.count(),
        min: finite(num.min()),
        max: finite(num.max()),
        mean: finite(num.mean()),
        stddev: finite(num.stddev()),
        quantiles: QUANTILES
            .iter()
            .filter_map(|&q| num.quantile(q).map(|v| (q.to_string(), v)))
            .collect(),
        rank_error: num.rank_error(),
    });
    let s = f.strings();
    let string = (t.string > 0).then(|| StringDocument {
        count: s.count(),
        length: LengthDocument {
            min: s.min_len(),
            max: s.max_len(),
            mean: finite(s.lengths().mean()),
            stddev: finite(s.lengths().sample_stddev()),
        },
        top_max_error: s.max_error(),
    });
    FeatureDocument {
        kind,
        count: f.count(),
        nulls: f.nulls(),
        null_ratio: (rows > 0).then(|| f.nulls() as f64 / rows as f64),
        distinct: f.distinct(),
        types: TypeDocument {
            numeric: t.numeric,
            boolean: t.boolean,
            string: t.string,
            other: t.other,
        },
        non_finite: NonFiniteDocument {
            nan: nf.nan,
            pos_inf: nf.pos_inf,
            neg_inf: nf.neg_inf,
        },
        numeric,
        string,
        top: top_values(f),
    }
}

/// The most frequent values: booleans for a boolean feature, else strings.
fn top_values(f: &FeatureProfile) -> Vec<TopValue> {
    if f.kind() == Kind::Boolean {
        let b = f.booleans();
        let mut top = vec![(true, b.true_count), (false, b.false_count)];
        top.sort_by_key(|t| std::cmp::Reverse(t.1));
        return top
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(v, count)| TopValue {
                value: v.into(),
                count,
            })
            .collect();
    }
    f.strings()
        .frequent(TOP_VALUES)
        .into_iter()
        .map(|v| TopValue {
            value: v.value.into(),
            count: v.count,
        })
        .collect()
}

/// Problem descriptions with a closing "and N more" when some were not kept.
pub fn problem_lines(problems: &Problems) -> Vec<String> {
    let mut lines = problems.samples.clone();
    if problems.unlisted > 0 {
        lines.push(format!("… and {} more", problems.unlisted));
    }
    lines
}

/// The human table, its lines cut to `columns` (`None`: whole lines).
pub fn table(profile: &DatasetProfile, columns: Option<usize>) -> String {
    const NAME_WIDTH: usize = 20;
    let mut out = format!(
        "dataset {} ({}) · {} {} · {} {}{}\n\n",
        printable(&profile.dataset, 40),
        profile.stage,
        group_digits(profile.rows),
        plural(profile.rows, "row", "rows"),
        profile.features.len(),
        plural(profile.features.len(), "feature", "features"),
        if profile.rejected_rows > 0 {
            format!(
                " · {} rejected {}",
                group_digits(profile.rejected_rows),
                plural(profile.rejected_rows, "row", "rows")
            )
        } else {
            String::new()
        }
    );
    let header: Vec<String> = [
        "feature", "kind", "count", "nulls", "distinct", "min", "p50", "max", "mean", "stddev",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    for (name, f) in &profile.features {
        let kind = f.kind();
        let mut row = vec![
            printable(name, NAME_WIDTH),
            kind.to_string(),
            group_digits(f.count()),
            percent(f.nulls(), profile.rows),
            group_digits(f.distinct()),
        ];
        if kind == Kind::Numeric {
            let n = f.numeric();
            row.extend(
                [n.min(), n.quantile(0.5), n.max(), n.mean(), n.stddev()]
                    .into_iter()
                    .map(|x| x.map_or("-".to_owned(), format_number)),
            );
        } else {
            let top = top_values(f);
            let total: u64 = f.count().max(1);
            let text = top
                .iter()
                .take(4)
                .map(|t| {
                    let v = match &t.value {
                        serde_json::Value::String(s) => printable(s, 14),
                        other => other.to_string(),
                    };
                    format!("{v} {}", percent(t.count, total))
                })
                .collect::<Vec<_>>()
                .join(" · ");
            row.push(text);
        }
        rows.push(row);
        notes.extend(feature_notes(name, f));
    }
    let numeric_cols = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows.iter().filter(|r| r.len() == numeric_cols) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    for row in rows.iter().filter(|r| r.len() < numeric_cols) {
        for (w, cell) in widths.iter_mut().zip(&row[..5]) {
            *w = (*w).max(width(cell));
        }
    }
    const GAP: &str = "  ";
    let render = |row: &[String], out: &mut String| {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str(GAP);
            }
            if row.len() < numeric_cols && i == row.len() - 1 {
                line.push_str(cell);
                continue;
            }
            let pad = widths[i].saturating_sub(width(cell));
            if i < 2 {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    };
    render(&header, &mut out);
    for row in &rows {
        render(row, &mut out);
    }
    if !notes.is_empty() {
        out.push('\n');
        for note in notes {
            out.push_str(&note);
            out.push('\n');
        }
    }
    fit(&out, columns)
}

/// Lines about values that are not what the feature's kind says.
fn feature_notes(name: &str, f: &FeatureProfile) -> Option<String> {
    let t = f.types();
    let nf = f.non_finite();
    let mut parts = Vec::new();
    let kind = f.kind();
    if kind != Kind::Numeric && t.numeric > 0 {
        parts.push(format!("{} numeric", group_digits(t.numeric)));
    }
    if kind != Kind::String && t.string > 0 {
        let examples = f
            .strings()
            .frequent(3)
            .iter()
            .map(|v| format!("{:?}", printable(&v.value, 16)))
            .collect::<Vec<_>>()
            .join(", ");
        parts.push(format!(
            "{} string (e.g. {examples})",
            group_digits(t.string)
        ));
    }
    if kind != Kind::Boolean && t.boolean > 0 {
        parts.push(format!("{} boolean", group_digits(t.boolean)));
    }
    if t.other > 0 {
        parts.push(format!("{} nested or binary", group_digits(t.other)));
    }
    for (n, what) in [(nf.nan, "NaN"), (nf.pos_inf, "+inf"), (nf.neg_inf, "-inf")] {
        if n > 0 {
            parts.push(format!("{} {what}", group_digits(n)));
        }
    }
    let counted = t.numeric * u64::from(kind != Kind::Numeric)
        + t.string * u64::from(kind != Kind::String)
        + t.boolean * u64::from(kind != Kind::Boolean)
        + t.other
        + nf.nan
        + nf.pos_inf
        + nf.neg_inf;
    (!parts.is_empty()).then(|| {
        format!(
            "note: {}: {} {}",
            printable(name, 40),
            parts.join(", "),
            plural(counted, "value", "values")
        )
    })
}

/// The human table of a comparison: drifted features first, by score; then invariant findings.
/// Lines are cut to `columns` (`None`: whole lines).
pub fn compare_table(report: &crate::detect::DriftReport, columns: Option<usize>) -> String {
    use crate::detect::Severity;
    let r = &report.reference;
    let c = &report.current;
    let errors = report
        .schema
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = report
        .schema
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    let features = report.features.len();
    let mut out = format!(
        "reference  {} ({}, {} {})\ncurrent    {} ({}, {} {})\n{} of {features} {} drifted · {errors} invariant {}, {warnings} {}\n\n",
        printable(&r.dataset, 30),
        r.stage,
        group_digits(r.rows),
        plural(r.rows, "row", "rows"),
        printable(&c.dataset, 30),
        c.stage,
        group_digits(c.rows),
        plural(c.rows, "row", "rows"),
        report.drifted.len(),
        plural(features, "feature", "features"),
        plural(errors, "error", "errors"),
        plural(warnings, "warning", "warnings"),
    );
    let mut order: Vec<(&String, &crate::detect::FeatureDrift)> = report.features.iter().collect();
    order.sort_by(|a, b| {
        b.1.drift
            .cmp(&a.1.drift)
            .then_with(|| {
                b.1.score
                    .unwrap_or(-1.0)
                    .total_cmp(&a.1.score.unwrap_or(-1.0))
            })
            .then_with(|| a.0.cmp(b.0))
    });
    let name_width = order
        .iter()
        .map(|(n, _)| width(&printable(n, 24)))
        .max()
        .unwrap_or(7)
        .max(7);
    let method_width = order
        .iter()
        .map(|(_, d)| d.method.name().len())
        .max()
        .unwrap_or(6)
        .max(6);
    out.push_str(&format!(
        "{:<name_width$}  {:<7}  {:<method_width$}  {:>8}  verdict\n",
        "feature", "kind", "method", "score"
    ));
    for (name, d) in order {
        let shown = printable(name, 24);
        let pad = name_width.saturating_sub(width(&shown));
        let line = format!(
            "{shown}{}  {:<7}  {:<method_width$}  {:>8}  {}  {}",
            " ".repeat(pad),
            d.kind.as_str(),
            d.method.name(),
            // As the verdict prints it, so the two never disagree.
            d.score
                .map_or("-".to_owned(), |s| against(s, d.threshold).0),
            if d.drift { "DRIFT" } else { "ok   " },
            d.reason,
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if !report.schema.is_empty() {
        out.push_str("\ninvariants\n");
        for f in &report.schema {
            let severity = match f.severity {
                Severity::Error => "error  ",
                Severity::Warning => "warning",
                Severity::Info => "info   ",
            };
            let mut line = format!("{severity}  {}", printable(&f.message, MESSAGE_MAX));
            if !f.values.is_empty() {
                let examples: Vec<String> = f
                    .values
                    .iter()
                    .take(3)
                    .map(|v| format!("{:?}", printable(v, 16)))
                    .collect();
                line.push_str(&format!(" (e.g. {})", examples.join(", ")));
            }
            out.push_str(&line);
            out.push('\n');
        }
    }
    fit(&out, columns)
}
