//! One feature on the page: its verdict, its row in the features table and its card (chart,
//! figures, null ratios and invariant findings in words).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::markup::{Text, percent};
use super::svg::{self, Bars, Histogram};
use crate::detect::{DriftReport, FeatureDrift, Finding, Severity};
use crate::format::{against, format_number, group_digits, significant};
use crate::profile::{DatasetProfile, FeatureProfile, Kind};

/// What the page says about a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Drift,
    /// In the reference, not in the current data.
    Missing,
    /// In the current data, not in the reference.
    New,
    Ok,
    /// Judged, but no score could be computed (the reason says why).
    NoScore,
    /// On both sides, left out by the rules.
    Ignored,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Drift => "drift",
            Verdict::Missing => "missing",
            Verdict::New => "new",
            Verdict::Ok => "ok",
            Verdict::NoScore => "no score",
            Verdict::Ignored => "ignored",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Verdict::Drift | Verdict::Missing => "bad",
            Verdict::New | Verdict::NoScore => "warn",
            Verdict::Ok => "good",
            Verdict::Ignored => "quiet",
        }
    }
}

/// A feature with everything the page draws of it.
#[derive(Debug, Clone)]
pub struct FeatureView<'a> {
    pub name: &'a str,
    pub kind: Kind,
    pub reference: Option<&'a FeatureProfile>,
    pub current: Option<&'a FeatureProfile>,
    pub drift: Option<&'a FeatureDrift>,
    pub verdict: Verdict,
    pub findings: Vec<&'a Finding>,
    /// Null ratios of the reference and the current side (`None`: side without the feature).
    pub nulls: (Option<f64>, Option<f64>),
}

impl FeatureView<'_> {
    fn worst_finding(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// Every feature of either side, drifted first (highest score first, as `compare` lists
/// them), then features missing on one side, then the rest by broken invariants and score;
/// ties by name.
pub fn views<'a>(
    reference: &'a DatasetProfile,
    current: &'a DatasetProfile,
    report: &'a DriftReport,
) -> Vec<FeatureView<'a>> {
    let mut findings: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for f in &report.schema {
        if let Some(name) = &f.feature {
            findings.entry(name).or_default().push(f);
        }
    }
    let names: BTreeSet<&String> = reference
        .features
        .keys()
        .chain(current.features.keys())
        .collect();
    let ratio = |p: &DatasetProfile, f: Option<&FeatureProfile>| {
        f.map(|f| {
            if p.rows == 0 {
                0.0
            } else {
                f.nulls() as f64 / p.rows as f64
            }
        })
    };
    let mut views: Vec<FeatureView<'a>> = names
        .into_iter()
        .map(|name| {
            let (r, c) = (reference.features.get(name), current.features.get(name));
            let drift = report.features.get(name);
            let verdict = match (r, c, drift) {
                (_, _, Some(d)) if d.drift => Verdict::Drift,
                (_, _, Some(d)) if d.score.is_none() => Verdict::NoScore,
                (_, _, Some(_)) => Verdict::Ok,
                (Some(_), None, None) => Verdict::Missing,
                (None, Some(_), None) => Verdict::New,
                _ => Verdict::Ignored,
            };
            let kind = drift
                .map(|d| d.kind)
                .or_else(|| r.map(FeatureProfile::kind))
                .or_else(|| c.map(FeatureProfile::kind))
                .unwrap_or(Kind::String);
            FeatureView {
                name,
                kind,
                reference: r,
                current: c,
                drift,
                verdict,
                findings: findings.remove(name.as_str()).unwrap_or_default(),
                nulls: (ratio(reference, r), ratio(current, c)),
            }
        })
        .collect();
    views.sort_by(|a, b| {
        let score = |v: &FeatureView| v.drift.and_then(|d| d.score).unwrap_or(-1.0);
        let rank = |v: &FeatureView| match v.verdict {
            Verdict::Drift => 0,
            Verdict::Missing | Verdict::New => 1,
            _ => 2,
        };
        // Drifted features in `compare`'s order (score first); the others by what they break.
        let findings = |v: &FeatureView| match v.verdict {
            Verdict::Drift => None,
            _ => v.worst_finding(),
        };
        rank(a)
            .cmp(&rank(b))
            .then_with(|| findings(b).cmp(&findings(a)))
            .then_with(|| score(b).total_cmp(&score(a)))
            .then_with(|| a.name.cmp(b.name))
    });
    views
}

/// The feature's row of the table. `index` names its card (`#f{index}`); `data-v` attributes
/// are the sort keys the page's script uses.
pub fn table_row(v: &FeatureView, index: usize) -> String {
    let d = v.drift;
    let score = d.and_then(|d| d.score);
    // Score and threshold side by side: printed so they compare as the verdict did.
    let (score_text, threshold_text) = match (score, d) {
        (Some(s), Some(d)) => against(s, d.threshold),
        (None, Some(d)) => ("—".to_owned(), significant(d.threshold, 2)),
        _ => ("—".to_owned(), "—".to_owned()),
    };
    let mut row = format!(
        r##"<tr data-i="{index}" data-drift="{}"><td class="name"><a href="#f{index}">{}</a></td><td>{}</td><td>{}</td>"##,
        u8::from(v.verdict == Verdict::Drift),
        Text(v.name),
        v.kind,
        d.map_or("—", |d| d.method.name()),
    );
    let _ = write!(
        row,
        r#"<td data-v="{}">{}</td><td>{}</td><td data-v="{}"><span class="badge {}">{}</span></td>"#,
        score.unwrap_or(-1.0),
        score_text,
        threshold_text,
        v.verdict as u8,
        v.verdict.class(),
        v.verdict.as_str(),
    );
    let nulls = |r: Option<f64>| r.map_or("—".to_owned(), percent);
    let _ = write!(
        row,
        r#"<td data-v="{}">{} → {}</td><td data-v="{}">{}</td></tr>"#,
        v.nulls.1.unwrap_or(-1.0),
        nulls(v.nulls.0),
        nulls(v.nulls.1),
        v.findings.len() * 4 + v.worst_finding().map_or(0, |s| s as usize),
        findings_cell(&v.findings),
    );
    row
}

fn findings_cell(findings: &[&Finding]) -> String {
    if findings.is_empty() {
        return String::new();
    }
    let worst = findings
        .iter()
        .map(|f| f.severity)
        .max()
        .expect("not empty");
    format!(
        r#"<span class="sev {}">{}</span>"#,
        severity_name(worst),
        findings.len()
    )
}

pub fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

/// What a feature's chart shows.
enum Drawing {
    Numbers(Histogram),
    Categories(Bars),
}

impl Drawing {
    /// A histogram for numbers, bars for strings and booleans; `None` when neither side has
    /// a value to draw.
    fn of(
        kind: Kind,
        reference: Option<&FeatureProfile>,
        current: Option<&FeatureProfile>,
    ) -> Option<Self> {
        if kind == Kind::Numeric
            && let Some(h) = Histogram::of(
                reference.map(FeatureProfile::numeric),
                current.map(FeatureProfile::numeric),
            )
        {
            return Some(Drawing::Numbers(h));
        }
        let bar_kind = if kind == Kind::Boolean {
            Kind::Boolean
        } else {
            Kind::String
        };
        let bars = Bars::of(bar_kind, reference, current);
        (!bars.0.is_empty()).then_some(Drawing::Categories(bars))
    }

    fn svg(&self, name: &str) -> String {
        match self {
            Drawing::Numbers(h) => svg::histogram_svg(h, &format!("{name}: histogram")),
            Drawing::Categories(bars) => {
                svg::bars_svg(bars, &format!("{name}: most frequent values"))
            }
        }
    }
}

/// The feature's chart as one `<svg>`, `None` when neither side has a value to draw. Usable
/// on its own: the daemon's page draws the same.
pub fn chart(
    name: &str,
    kind: Kind,
    reference: Option<&FeatureProfile>,
    current: Option<&FeatureProfile>,
) -> Option<String> {
    Drawing::of(kind, reference, current).map(|d| d.svg(name))
}

/// The feature's card.
pub fn card(v: &FeatureView, index: usize) -> String {
    let mut s = format!(
        r#"<section class="feature" id="f{index}" data-drift="{}"><h3><span class="name">{}</span> <span class="kind">{}</span> <span class="badge {}">{}</span></h3>"#,
        u8::from(v.verdict == Verdict::Drift),
        Text(v.name),
        v.kind,
        v.verdict.class(),
        v.verdict.as_str(),
    );
    let reason = match (v.drift, v.verdict) {
        (Some(d), _) => d.reason.clone(),
        (None, Verdict::Missing) => "missing from the current data".to_owned(),
        (None, Verdict::New) => "not in the reference".to_owned(),
        (None, _) => "left out of judging by the rules".to_owned(),
    };
    let _ = write!(s, r#"<p class="reason">{}</p>"#, Text(&reason));
    let drawing = Drawing::of(v.kind, v.reference, v.current);
    match &drawing {
        Some(d) => s.push_str(&d.svg(v.name)),
        None => s.push_str(r#"<p class="empty">No values to draw on either side.</p>"#),
    }
    s.push_str(&figures(v));
    // Bars only when there are nulls to draw; the figures say 0 % either way.
    if v.nulls.0.unwrap_or(0.0) > 0.0 || v.nulls.1.unwrap_or(0.0) > 0.0 {
        s.push_str(&svg::nulls_svg(v.nulls.0, v.nulls.1));
    }
    if let Some(Drawing::Numbers(h)) = &drawing
        && let Some(note) = outside_note(h)
    {
        let _ = write!(s, r#"<p class="note">{note}</p>"#);
    }
    if !v.findings.is_empty() {
        s.push_str(r#"<ul class="findings">"#);
        for f in &v.findings {
            s.push_str(&finding_item(f));
        }
        s.push_str("</ul>");
    }
    s.push_str("</section>");
    s
}

/// One finding in words, with its example values.
pub fn finding_item(f: &Finding) -> String {
    let mut s = format!(
        r#"<li><span class="sev {0}">{0}</span> {1}"#,
        severity_name(f.severity),
        Text(&f.message)
    );
    if !f.values.is_empty() {
        s.push_str(" <span class=\"eg\">e.g. ");
        for (i, value) in f.values.iter().take(5).enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            let _ = write!(s, "<code>{}</code>", Text(value));
        }
        s.push_str("</span>");
    }
    s.push_str("</li>");
    s
}

/// Each side's figures under the chart: marked quantiles and mean for numbers, counts and
/// distinct values otherwise.
fn figures(v: &FeatureView) -> String {
    let mut s = String::from(r#"<dl class="figures">"#);
    let numeric = v.kind == Kind::Numeric;
    for (f, nulls, class, side) in [
        (v.reference, v.nulls.0, "ref", "reference"),
        (v.current, v.nulls.1, "cur", "current"),
    ] {
        let _ = write!(s, r#"<div><dt><i class="sw {class}"></i>{side}</dt><dd>"#);
        match f {
            None => s.push_str("no such feature"),
            Some(f) if numeric && f.numeric().count() > 0 => {
                let n = f.numeric();
                for (rank, name) in svg::MARKED {
                    if let Some(q) = n.quantile(rank) {
                        let _ = write!(s, "{name} {} · ", Text(&format_number(q)));
                    }
                }
                if let Some(mean) = n.mean() {
                    let _ = write!(s, "mean {} · ", Text(&format_number(mean)));
                }
                let _ = write!(s, "{} values", group_digits(n.count()));
            }
            Some(f) => {
                let _ = write!(
                    s,
                    "{} values · {} distinct",
                    group_digits(f.count()),
                    group_digits(f.distinct())
                );
            }
        }
        if let Some(nulls) = nulls {
            let _ = write!(s, " · nulls {}", percent(nulls));
        }
        s.push_str("</dd></div>");
    }
    s.push_str("</dl>");
    s
}

/// How much of each side the histogram leaves out, when it leaves something out.
fn outside_note(h: &Histogram) -> Option<String> {
    let parts: Vec<String> = [(&h.reference, "reference"), (&h.current, "current")]
        .into_iter()
        .filter_map(|(s, side)| {
            let s = s.as_ref()?;
            let out = s.below + s.above;
            (out > 0.0).then(|| format!("{} of {side}", percent(out)))
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "Outside the range drawn ({} to {}): {} values.",
            format_number(h.edges[0]),
            format_number(h.edges[svg::BINS]),
            parts.join(" and ")
        )
    })
}
