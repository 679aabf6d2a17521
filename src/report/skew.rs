//! The skew section of `driftd compare --join-on`'s table: skewed features first, then the
//! rest, one line each with its verdict.

use super::{fit, group_digits, printable, width};
use crate::detect::skew::{FeatureSkew, SkewReport};

/// The most columns of one verdict: a bound on hostile values, not a terminal's width.
const VERDICT_MAX: usize = 294;

/// The skew table, its lines cut to `columns` (`None`: whole lines).
pub fn skew_table(report: &SkewReport, columns: Option<usize>) -> String {
    let mut out = format!(
        "skew on id \"{}\": {} joined · {} reference only · {} current only · duplicate ids {} / {}\n",
        printable(&report.id, 40),
        group_digits(report.joined),
        group_digits(report.reference_only),
        group_digits(report.current_only),
        group_digits(report.duplicate_ids.reference),
        group_digits(report.duplicate_ids.current),
    );
    out += &format!(
        "sampled by SHA-256 of the id at rate {}{} · {} of {} {} skewed\n\n",
        report.rate,
        if report.capped {
            ", capped (joined below both sides' bounds)"
        } else {
            ", every eligible id"
        },
        report.skewed.len(),
        report.features.len(),
        crate::format::plural(report.features.len(), "feature", "features"),
    );
    let mut order: Vec<(&String, &FeatureSkew)> = report.features.iter().collect();
    order.sort_by(|a, b| {
        b.1.skewed
            .cmp(&a.1.skewed)
            .then_with(|| {
                b.1.mismatch_ratio
                    .unwrap_or(-1.0)
                    .total_cmp(&a.1.mismatch_ratio.unwrap_or(-1.0))
            })
            .then_with(|| a.0.cmp(b.0))
    });
    let names: Vec<String> = order.iter().map(|(n, _)| printable(n, 30)).collect();
    let name_width = names.iter().map(|n| width(n)).max().unwrap_or(0).max(7);
    out += &format!(
        "{:<name_width$}  {:>9}  {:>10}  {:>8}  verdict\n",
        "feature", "compared", "mismatched", "ratio"
    );
    for (name, (_, f)) in names.iter().zip(&order) {
        let ratio = f
            .mismatch_ratio
            .map_or_else(|| "-".to_owned(), |r| format!("{:.2}%", r * 100.0));
        let status = if f.skewed {
            "SKEW"
        } else if f.compared < f.min_joined {
            "too few"
        } else {
            "ok"
        };
        out += &format!(
            "{name}{}  {:>9}  {:>10}  {:>8}  {status}\n",
            " ".repeat(name_width - width(name)),
            group_digits(f.compared),
            group_digits(f.mismatched),
            ratio
        );
    }
    // Verdicts in full, one per line, for every feature that is not simply in agreement.
    let notes: Vec<&FeatureSkew> = order
        .iter()
        .map(|(_, f)| *f)
        .filter(|f| {
            f.mismatched > 0
                || f.compared < f.min_joined
                || f.missing_current + f.missing_reference > 0
        })
        .collect();
    if !notes.is_empty() {
        out.push('\n');
    }
    for f in notes {
        out += &format!("  {}\n", printable(&f.verdict, VERDICT_MAX));
        if let Some(e) = f
            .examples
            .first()
            .filter(|_| !f.verdict.contains("; e.g. id "))
        {
            out += &format!(
                "    e.g. id {}: reference {} · current {}\n",
                printable(&e.id, 40),
                printable(&e.reference.to_string(), 40),
                printable(&e.current.to_string(), 40)
            );
        }
    }
    fit(&out, columns)
}
