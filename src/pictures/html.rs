//! The report page: head (inline style and script allowed by hash, nothing else), summary,
//! invariant findings, the features table and a card per feature. The document and the
//! comparison's sections are also the daemon's pages' (`daemon`).

use std::collections::HashMap;
use std::fmt::Write as _;

use super::Page;
use super::feature::{self, FeatureView, Verdict};
use super::markup::Text;
use crate::detect::Severity;
use crate::format::{group_digits, plural};

/// The page's style sheet, inlined.
pub const STYLE: &str = include_str!("page.css");
/// The page's script (table sorting and filtering), inlined. The page reads fully without it.
pub const SCRIPT: &str = include_str!("page.js");
/// Most findings listed at the top of the page; every one is also on its feature's card.
const LISTED_FINDINGS: usize = 100;
/// Findings shown before the rest are folded away.
const OPEN_FINDINGS: usize = 10;

/// The Content-Security-Policy of the page: nothing may load, only the inline style and script
/// whose hashes it names may apply. The daemon can send it as a header too.
pub fn content_security_policy() -> String {
    format!(
        "default-src 'none'; style-src '{}'; script-src '{}'; base-uri 'none'; form-action 'none'",
        csp_hash(STYLE),
        csp_hash(SCRIPT)
    )
}

fn csp_hash(text: &str) -> String {
    use base64::Engine as _;
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

pub fn render(page: &Page) -> String {
    let title = format!("Drift report: {}", page.current.dataset);
    let mut body = header(page, &title);
    body.push_str("<main>");
    body.push_str(&comparison(page));
    body.push_str("</main>");
    document(&title, &body)
}

/// A whole document around `body` (its header and main): the head with the policy, the
/// inline style, the footer and the inline script.
pub fn document(title: &str, body: &str) -> String {
    let mut s = String::with_capacity(STYLE.len() + SCRIPT.len() + 1024 + body.len());
    let _ = write!(
        s,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta http-equiv="Content-Security-Policy" content="{}"><meta name="color-scheme" content="light dark"><meta name="generator" content="driftd {}"><title>{}</title><style>{STYLE}</style></head><body>"#,
        content_security_policy(),
        env!("CARGO_PKG_VERSION"),
        Text(title),
    );
    s.push_str(body);
    let _ = write!(
        s,
        "<footer>Made by driftd {} from profiles: exact counts, KLL quantile sketches and frequent-item sketches, not raw rows; a histogram's bins are read off the sketches' CDFs.</footer><script>{SCRIPT}</script></body></html>",
        env!("CARGO_PKG_VERSION")
    );
    s
}

/// The comparison's sections: summary, invariant findings, the features table and a card per
/// feature. The report's body, and the daemon's dataset page's.
pub fn comparison(page: &Page) -> String {
    let views = feature::views(page.reference, page.current, page.report);
    // About 2 KB per feature, most of it the card.
    let mut s = String::with_capacity(4096 + views.len() * 2200);
    s.push_str(&summary(page, &views));
    s.push_str(&findings(page, &views));
    s.push_str(&table(&views));
    s.push_str(
        r#"<h2>Distributions</h2><p class="legend"><i class="sw ref"></i>reference <i class="sw cur"></i>current · numbers: share of values per bin, p5, p50 and p95 marked; strings and booleans: share of the most frequent values</p><div class="grid" id="cards">"#,
    );
    for (i, v) in views.iter().enumerate() {
        s.push_str(&feature::card(v, i));
    }
    s.push_str("</div>");
    s
}

fn header(page: &Page, title: &str) -> String {
    let side = |source: &str, p: &crate::profile::DatasetProfile| {
        format!(
            "{} · dataset {} ({}) · {} rows",
            Text(source),
            Text(&p.dataset),
            p.stage,
            group_digits(p.rows)
        )
    };
    let mut s = format!(
        r#"<header><h1>{}</h1><dl class="sources"><dt>reference</dt><dd>{}</dd><dt>current</dt><dd>{}</dd>"#,
        Text(title),
        side(page.reference_source, page.reference),
        side(page.current_source, page.current),
    );
    if let Some(at) = page.generated_at {
        let _ = write!(s, "<dt>made</dt><dd>{}</dd>", Text(at));
    }
    s.push_str("</dl></header>");
    s
}

fn count_by(page: &Page, severity: Severity) -> usize {
    page.report
        .schema
        .iter()
        .filter(|f| f.severity == severity)
        .count()
}

fn summary(page: &Page, views: &[FeatureView]) -> String {
    let drifted = page.report.drifted.len();
    let judged = page.report.features.len();
    let errors = count_by(page, Severity::Error);
    let failed = page.report.failed();
    let headline = match (drifted, errors) {
        (0, 0) => "No drift".to_owned(),
        (0, e) => format!("{e} broken invariant{}", plural(e, "", "s")),
        (d, _) => format!("Drift in {d} feature{}", plural(d, "", "s")),
    };
    let one_sided = views
        .iter()
        .filter(|v| matches!(v.verdict, Verdict::Missing | Verdict::New))
        .count();
    let mut s = format!(
        r#"<section class="cards" aria-label="summary"><div class="card {}"><div class="label">verdict</div><div class="big headline">{}</div><div>{}</div></div>"#,
        if failed { "bad" } else { "good" },
        Text(&headline),
        if failed {
            "what makes <code>driftd compare</code> exit 1"
        } else {
            "every judged feature within its threshold"
        },
    );
    let _ = write!(
        s,
        r#"<div class="card"><div class="label">features drifted</div><div class="big"><span class="{}">{}</span> of {}</div><div>{} on one side only</div></div>"#,
        if drifted > 0 { "bad" } else { "" },
        group_digits(drifted as u64),
        group_digits(judged as u64),
        group_digits(one_sided as u64),
    );
    let _ = write!(
        s,
        r#"<div class="card"><div class="label">rows</div><div class="big">{}</div><div>reference {} · current {}</div></div>"#,
        group_digits(page.current.rows),
        group_digits(page.reference.rows),
        group_digits(page.current.rows),
    );
    let _ = write!(
        s,
        r#"<div class="card"><div class="label">invariant findings</div><div class="big">{}</div><div class="sevs"><span class="sev error">{} error{}</span><span class="sev warning">{} warning{}</span><span class="sev info">{} info</span></div></div></section>"#,
        page.report.schema.len(),
        errors,
        plural(errors, "", "s"),
        count_by(page, Severity::Warning),
        plural(count_by(page, Severity::Warning), "", "s"),
        count_by(page, Severity::Info),
    );
    s
}

fn findings(page: &Page, views: &[FeatureView]) -> String {
    let mut s = String::from("<h2>Invariant findings</h2>");
    if page.report.schema.is_empty() {
        s.push_str(r#"<p class="legend">No invariant broken.</p>"#);
        return s;
    }
    let cards: HashMap<&str, usize> = views.iter().enumerate().map(|(i, v)| (v.name, i)).collect();
    let item = |f: &crate::detect::Finding| {
        let item = feature::finding_item(f);
        match f.feature.as_deref().and_then(|n| cards.get(n)) {
            Some(i) => format!(
                r##"{} <a href="#f{i}">chart</a></li>"##,
                item.trim_end_matches("</li>")
            ),
            None => item,
        }
    };
    let listed = &page.report.schema[..page.report.schema.len().min(LISTED_FINDINGS)];
    let (first, rest) = listed.split_at(listed.len().min(OPEN_FINDINGS));
    s.push_str(r#"<ul class="findings">"#);
    s.extend(first.iter().map(item));
    s.push_str("</ul>");
    if !rest.is_empty() {
        let _ = write!(
            s,
            r#"<details><summary>{} more</summary><ul class="findings">"#,
            page.report.schema.len() - first.len()
        );
        s.extend(rest.iter().map(item));
        if page.report.schema.len() > LISTED_FINDINGS {
            let _ = write!(
                s,
                "<li>… and {} more, each on its feature's card</li>",
                page.report.schema.len() - LISTED_FINDINGS
            );
        }
        s.push_str("</ul></details>");
    }
    s
}

fn table(views: &[FeatureView]) -> String {
    let mut s = String::from(
        r#"<h2>Features</h2><div class="controls" id="controls" hidden><input type="search" id="filter" placeholder="Filter by name" aria-label="filter features by name"><label><input type="checkbox" id="drifted-only"> drifted only</label><span id="shown"></span></div><div class="scroll"><table id="features"><thead><tr><th data-first="asc">feature</th><th data-first="asc">kind</th><th data-first="asc">method</th><th>score</th><th>threshold</th><th data-first="asc">verdict</th><th>nulls ref → cur</th><th>findings</th></tr></thead><tbody>"#,
    );
    for (i, v) in views.iter().enumerate() {
        s.push_str(&feature::table_row(v, i));
    }
    s.push_str("</tbody></table></div>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::compare;
    use crate::profile::{DatasetProfile, Limits, Profiler, Stage, Value};
    use crate::rules::DatasetRules;

    const HOSTILE: &str = "<script>alert(1)</script>";

    /// `shift` moves `moved`; the hostile feature gains a hostile category in the current side.
    fn profile(stage: Stage, shift: f64) -> DatasetProfile {
        let mut p = Profiler::new("inputs", stage, Limits::default());
        let moved = p.feature("moved", None).unwrap();
        let calm = p.feature("calm\u{202e}txt.exe", None).unwrap();
        let hostile = p.feature(HOSTILE, None).unwrap();
        for i in 0..2000 {
            let x = f64::from(i % 100);
            p.observe(moved, Value::Number(x + shift));
            p.observe(calm, Value::Number(x));
            let category = if shift > 0.0 && i % 4 == 0 {
                HOSTILE
            } else {
                "plain"
            };
            p.observe(hostile, Value::Str(category));
            p.add_rows(1);
        }
        p.finish().0
    }

    fn page_of(reference: &DatasetProfile, current: &DatasetProfile) -> String {
        let report = compare(reference, current, &DatasetRules::default());
        render(&Page {
            reference,
            current,
            report: &report,
            reference_source: "train \"a\".csv",
            current_source: "<b>serve</b>.csv",
            generated_at: Some("2025-01-01T00:00:00Z"),
        })
    }

    #[test]
    fn names_values_and_sources_are_escaped() {
        let html = page_of(&profile(Stage::Offline, 0.0), &profile(Stage::Online, 30.0));
        // The page's own script is the only one.
        assert_eq!(html.matches("<script").count(), 1, "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains('\u{202e}'));
        assert!(html.contains("calm\\u{202e}txt.exe"));
        assert!(!html.contains("<b>serve") && html.contains("&lt;b&gt;serve&lt;/b&gt;.csv"));
        assert!(html.contains("train &quot;a&quot;.csv"));
        assert!(!html.contains("://"), "a URL in the page");
    }

    #[test]
    fn the_policy_allows_exactly_the_inline_style_and_script() {
        let html = page_of(&profile(Stage::Offline, 0.0), &profile(Stage::Online, 0.0));
        let between = |open: &str, close: &str| {
            let start = html.find(open).unwrap() + open.len();
            html[start..start + html[start..].find(close).unwrap()].to_owned()
        };
        let style = between("<style>", "</style>");
        let script = between("<script>", "</script>");
        let policy = content_security_policy();
        assert!(policy.starts_with("default-src 'none';"));
        assert!(policy.contains(&format!("style-src '{}'", csp_hash(&style))));
        assert!(policy.contains(&format!("script-src '{}'", csp_hash(&script))));
        assert!(html.contains(&format!(r#"content="{policy}""#)));
        // SHA-256 of "" in base64, as `openssl dgst -sha256 -binary | base64` prints it.
        assert_eq!(
            csp_hash(""),
            "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn drifted_features_come_first_with_a_chart_each() {
        let html = page_of(&profile(Stage::Offline, 0.0), &profile(Stage::Online, 30.0));
        let rows: Vec<&str> = html.split("<tr data-i=").skip(1).collect();
        assert_eq!(rows.len(), 3);
        assert!(rows[0].starts_with(r#""0" data-drift="1""#) && rows[0].contains(">moved<"));
        assert!(rows[1].starts_with(r#""1" data-drift="1""#), "{}", rows[1]);
        assert!(rows[2].contains("data-drift=\"0\"") && rows[2].contains("calm"));
        assert_eq!(html.matches(r#"<section class="feature""#).count(), 3);
        assert_eq!(html.matches(r#"<svg class="chart""#).count(), 3);
        assert!(html.contains("Drift in 2 features"));
    }
}
