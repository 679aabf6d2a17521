//! Slack: one Block Kit message per notification, for an incoming webhook, kept within Slack's
//! limits however many features drifted and whatever their names contain.
//!
//! Layout: a header naming the dataset and state; a context line with rule, severity and times;
//! the configured labels and other annotations; the `summary`/`description` annotations; the
//! links; the invariant findings; then one section per drifted feature, ending with "…and N
//! more features" when they do not all fit.
//!
//! Every string that comes from data or configuration is escaped (`&`, `<`, `>`) so that a
//! feature named `<!channel>` cannot mention a channel or forge a link, and mrkdwn text is sent
//! `verbatim` so Slack does not turn data into links or mentions on its own.

use serde_json::{Value, json};

use super::webhook::rfc3339;
use super::{AlertSeverity, FeatureLine, Notification, Status};
use crate::format::plural;

/// Slack rejects a message with more blocks than this.
const MAX_BLOCKS: usize = 50;
/// Slack rejects a section (or context element) whose text is longer than this.
const MAX_TEXT: usize = 3000;
/// Slack rejects a header whose text is longer than this.
const MAX_HEADER: usize = 150;
/// A feature name is cut to this in its section so the verdict after it stays visible.
const MAX_NAME: usize = 200;
/// A verdict, change or finding is cut to this, so one long string cannot crowd out the rest.
const MAX_LINE: usize = 500;
/// Changes listed per feature, largest first.
const MAX_CHANGES: usize = 3;
/// Features named in the fallback text, which phones show as the push notification.
const FALLBACK_FEATURES: usize = 3;
/// The fallback only needs to say what happened; the blocks carry the detail.
const MAX_FALLBACK: usize = 1000;

/// The incoming-webhook payload for `n`: `{"text": <fallback>, "blocks": [...]}`.
pub fn message(n: &Notification) -> Value {
    let mut blocks = vec![header(n), context(n)];
    blocks.extend(labels(n));
    blocks.extend(annotation_text(n));
    blocks.extend(links(n));
    blocks.extend(findings(n));

    // At most six blocks come before the features, so there is always room for some.
    let room = MAX_BLOCKS - blocks.len();
    let total = n.features.len();
    let shown = if total <= room { total } else { room - 1 };
    blocks.extend(n.features[..shown].iter().map(feature));
    if shown < total {
        let more = total - shown;
        blocks.push(section(format!(
            "…and {more} more {}",
            plural(more, "feature", "features")
        )));
    }

    json!({ "text": fallback(n), "blocks": blocks })
}

fn header(n: &Notification) -> Value {
    let lead = match n.status {
        Status::Firing => format!(":rotating_light: {} in ", n.topic.title()),
        Status::Resolved => format!(":white_check_mark: Resolved: {} in ", n.topic.words()),
    };
    let text = truncate_escaped(&format!("{lead}{}", escape(&n.dataset)), MAX_HEADER);
    json!({
        "type": "header",
        "text": { "type": "plain_text", "text": text, "emoji": true },
    })
}

fn context(n: &Notification) -> Value {
    let mut text = format!(
        "*Rule:* {} · *Severity:* {} · *Since:* {}",
        escape(&n.rule),
        severity(n.severity),
        human_time(n.since_ms)
    );
    if let (Status::Resolved, Some(ms)) = (n.status, n.resolved_ms) {
        text.push_str(&format!(" · *Resolved:* {}", human_time(ms)));
    }
    json!({ "type": "context", "elements": [mrkdwn(truncate_escaped(&text, MAX_TEXT))] })
}

/// Labels and the annotations not shown as text, as one small-print line.
fn labels(n: &Notification) -> Option<Value> {
    let labels = n
        .labels
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)));
    let annotations = n
        .annotations
        .iter()
        .filter(|(k, _)| !is_text_annotation(k))
        .map(|(k, v)| {
            // A link cut short would swallow the text after it, so long URLs stay text.
            let link = link(k, v);
            if is_url(v) && units(&link) <= MAX_LINE {
                link
            } else {
                format!("{}: {}", escape(k), escape(v))
            }
        });
    let items: Vec<String> = labels
        .chain(annotations)
        .map(|item| truncate_escaped(&item, MAX_LINE))
        .collect();
    if items.is_empty() {
        return None;
    }
    let text = bounded_list("", &items, " · ", ("label", "labels"));
    Some(json!({ "type": "context", "elements": [mrkdwn(text)] }))
}

/// The `summary` and `description` annotations, which people write to be read as prose.
fn annotation_text(n: &Notification) -> Option<Value> {
    let summary = n.annotations.get("summary").filter(|s| !s.is_empty());
    let description = n.annotations.get("description").filter(|s| !s.is_empty());
    let text = match (summary, description) {
        (None, None) => return None,
        (Some(s), None) => format!("*{}*", escape(s)),
        (None, Some(d)) => escape(d),
        (Some(s), Some(d)) => format!("*{}*\n{}", escape(s), escape(d)),
    };
    Some(section(truncate_escaped(&text, MAX_TEXT)))
}

fn links(n: &Notification) -> Option<Value> {
    if n.links.is_empty() {
        return None;
    }
    // mrkdwn links rather than buttons: a URL button in a message from an app without
    // interactivity configured shows a warning when clicked.
    let items: Vec<String> = n
        .links
        .iter()
        .map(|(label, url)| link(label, url))
        .filter(|item| units(item) <= MAX_LINE * 2)
        .collect();
    let text = bounded_list("", &items, " · ", ("link", "links"));
    let dropped = n.links.len() - items.len();
    let text = if dropped > 0 {
        // Links too long to show whole are left out rather than cut, which would break them.
        format!("{text} ({dropped} too long to show)")
    } else {
        text
    };
    Some(section(truncate_escaped(&text, MAX_TEXT)))
}

fn findings(n: &Notification) -> Option<Value> {
    if n.findings.is_empty() {
        return None;
    }
    let items: Vec<String> = n
        .findings
        .iter()
        .map(|f| format!("• {}", truncate_escaped(&escape(f), MAX_LINE)))
        .collect();
    let text = bounded_list(
        "*Invariant findings*\n",
        &items,
        "\n",
        ("finding", "findings"),
    );
    Some(section(text))
}

/// "*latency_ms* — PSI 0.93 ≥ 0.2" and up to three of its largest changes.
fn feature(f: &FeatureLine) -> Value {
    let verdict = if f.reason.is_empty() {
        let (score, threshold) = match f.score {
            Some(s) => crate::format::against(s, f.threshold),
            None => (
                "no score".into(),
                crate::format::significant(f.threshold, 2),
            ),
        };
        format!("{} {score} ≥ {threshold}", f.method)
    } else {
        f.reason.clone()
    };
    let mut text = format!(
        "*{}* — {}",
        truncate_escaped(&escape(&f.name), MAX_NAME),
        truncate_escaped(&escape(&verdict), MAX_LINE)
    );
    for change in f.changes.iter().take(MAX_CHANGES) {
        text.push_str("\n• ");
        text.push_str(&truncate_escaped(&escape(change), MAX_LINE));
    }
    section(truncate_escaped(&text, MAX_TEXT))
}

/// Plain words for phones and screen readers, also shown where blocks cannot be.
fn fallback(n: &Notification) -> String {
    let dataset = escape(&n.dataset);
    let text = match n.status {
        Status::Resolved => format!(
            "Resolved: {} in {dataset} (rule {})",
            n.topic.words(),
            escape(&n.rule)
        ),
        Status::Firing => {
            let mut text = format!(
                "{} in {dataset} ({}, rule {})",
                n.topic.title(),
                severity(n.severity),
                escape(&n.rule)
            );
            let count = n.features.len();
            if count > 0 {
                let mut names: Vec<String> = n
                    .features
                    .iter()
                    .take(FALLBACK_FEATURES)
                    .map(|f| truncate_escaped(&escape(&f.name), MAX_NAME))
                    .collect();
                if count > FALLBACK_FEATURES {
                    names.push("…".into());
                }
                text.push_str(&format!(
                    ": {count} {} drifted: {}",
                    plural(count, "feature", "features"),
                    names.join(", ")
                ));
            }
            let findings = n.findings.len();
            if findings > 0 {
                text.push_str(&format!(
                    "; {findings} invariant {}",
                    plural(findings, "finding", "findings")
                ));
            }
            text
        }
    };
    truncate_escaped(&text, MAX_FALLBACK)
}

fn section(text: String) -> Value {
    json!({ "type": "section", "text": mrkdwn(text) })
}

fn mrkdwn(text: String) -> Value {
    json!({ "type": "mrkdwn", "text": text, "verbatim": true })
}

/// `<url|label>`, with both escaped so neither can close the link early or open another.
fn link(label: &str, url: &str) -> String {
    // `|` would end the URL early; percent-encoding it keeps the URL meaning the same.
    format!(
        "<{}|{}>",
        escape(url).replace('|', "%7C"),
        truncate_escaped(&escape(label), MAX_NAME)
    )
}

fn is_url(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://")) && !s.contains(char::is_whitespace)
}

fn is_text_annotation(key: &str) -> bool {
    key == "summary" || key == "description"
}

/// `prefix` and as many `items` as fit in a section, then "…and N more {noun}" for the rest.
/// Items must each be well under [`MAX_TEXT`] so at least one always fits.
fn bounded_list(prefix: &str, items: &[String], sep: &str, noun: (&str, &str)) -> String {
    let all = format!("{prefix}{}", items.join(sep));
    if units(&all) <= MAX_TEXT {
        return all;
    }
    // Room for the longest possible tail, so the count written is always the count left out.
    let tail_room = units(sep) + units(&format!("…and {} more {}", items.len(), noun.1));
    let mut text = prefix.to_string();
    let mut shown = 0;
    for item in items {
        let sep_units = if shown == 0 { 0 } else { units(sep) };
        let needed = sep_units + units(item);
        if units(&text) + needed + tail_room > MAX_TEXT {
            break;
        }
        if shown > 0 {
            text.push_str(sep);
        }
        text.push_str(item);
        shown += 1;
    }
    let more = items.len() - shown;
    if shown > 0 {
        text.push_str(sep);
    }
    text.push_str(&format!(
        "…and {more} more {}",
        plural(more, noun.0, noun.1)
    ));
    text
}

/// Escapes the three characters Slack reserves for links, mentions and entities.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Slack's length, counted in UTF-16 units: never fewer than chars, so a text within the limit
/// in these units is within it however Slack counts (emoji count as two here).
fn units(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Cuts escaped text to at most `max` units, ending in "…", on a char boundary and never inside
/// an `&…;` entity (which would show as stray characters).
fn truncate_escaped(s: &str, max: usize) -> String {
    if units(s) <= max {
        return s.to_string();
    }
    let budget = max.saturating_sub(1);
    let mut used = 0;
    let mut end = 0;
    for (i, c) in s.char_indices() {
        if used + c.len_utf16() > budget {
            break;
        }
        used += c.len_utf16();
        end = i + c.len_utf8();
    }
    let mut kept = &s[..end];
    if let Some(amp) = kept.rfind('&')
        && !kept[amp..].contains(';')
    {
        kept = &kept[..amp];
    }
    format!("{kept}…")
}

fn severity(s: AlertSeverity) -> &'static str {
    match s {
        AlertSeverity::Info => "info",
        AlertSeverity::Warning => "warning",
        AlertSeverity::Critical => "critical",
    }
}

/// "2023-11-14 22:13:20 UTC": readable by people in any time zone without guessing.
fn human_time(ms: i64) -> String {
    // rfc3339 is always "YYYY-MM-DDTHH:MM:SS.mmmZ", ASCII.
    let stamp = rfc3339(ms);
    format!("{} {} UTC", &stamp[..10], &stamp[11..19])
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn feature_line(name: &str) -> FeatureLine {
        FeatureLine {
            name: name.into(),
            kind: "numeric".into(),
            method: "psi".into(),
            score: Some(0.93),
            threshold: 0.2,
            reason: "PSI 0.93 ≥ 0.20".into(),
            changes: vec![
                "p50 19.6 → 210.0".into(),
                "p90 40.1 → 380.2".into(),
                "p99 88.0 → 990.5".into(),
                "p10 5.0 → 6.0".into(),
            ],
        }
    }

    fn notification(features: usize) -> Notification {
        Notification {
            topic: Default::default(),
            fingerprint: "fp-1".into(),
            rule: "input-drift".into(),
            dataset: "search_ranking_inputs".into(),
            severity: AlertSeverity::Critical,
            status: Status::Firing,
            since_ms: 1_700_000_000_000,
            resolved_ms: None,
            features: (0..features)
                .map(|i| feature_line(&format!("feature_{i}")))
                .collect(),
            findings: vec!["country: 12% nulls, allowed ≤ 1%".into()],
            labels: BTreeMap::from([("team".into(), "search".into())]),
            annotations: BTreeMap::from([
                ("summary".into(), "Search inputs drifted".into()),
                ("description".into(), "Check the ranking model.".into()),
                (
                    "runbook_url".into(),
                    "https://runbooks.example/drift".into(),
                ),
            ]),
            links: vec![(
                "Grafana".into(),
                "https://grafana.example/d/1?var=a&b=2".into(),
            )],
        }
    }

    fn blocks(message: &Value) -> &Vec<Value> {
        message["blocks"].as_array().unwrap()
    }

    /// Every text in the message: block texts, context elements, the fallback.
    fn texts(v: &Value) -> Vec<String> {
        let mut out = Vec::new();
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(map) => {
                    for (k, v) in map {
                        match (k.as_str(), v) {
                            ("text", Value::String(s)) => out.push(s.clone()),
                            _ => walk(v, out),
                        }
                    }
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        walk(v, &mut out);
        out
    }

    fn section_texts(message: &Value) -> Vec<&str> {
        blocks(message)
            .iter()
            .filter(|b| b["type"] == "section")
            .map(|b| b["text"]["text"].as_str().unwrap())
            .collect()
    }

    fn assert_within_limits(message: &Value) {
        let blocks = blocks(message);
        assert!(blocks.len() <= MAX_BLOCKS, "{} blocks", blocks.len());
        for block in blocks {
            let limit = if block["type"] == "header" {
                MAX_HEADER
            } else {
                MAX_TEXT
            };
            for text in texts(block) {
                assert!(
                    text.chars().count() <= limit,
                    "{} chars",
                    text.chars().count()
                );
                assert!(units(&text) <= limit, "{} UTF-16 units", units(&text));
            }
        }
    }

    #[test]
    fn layout_of_a_small_alert() {
        let m = message(&notification(2));
        let blocks = blocks(&m);
        let kinds: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "header", "context", "context", "section", "section", "section", "section",
                "section"
            ]
        );
        assert_eq!(
            blocks[0]["text"]["text"],
            ":rotating_light: Drift in search_ranking_inputs"
        );
        assert_eq!(
            blocks[1]["elements"][0]["text"],
            "*Rule:* input-drift · *Severity:* critical · *Since:* 2023-11-14 22:13:20 UTC"
        );
        assert_eq!(
            blocks[2]["elements"][0]["text"],
            "team=search · <https://runbooks.example/drift|runbook_url>"
        );
        assert_eq!(
            blocks[3]["text"]["text"],
            "*Search inputs drifted*\nCheck the ranking model."
        );
        assert_eq!(
            blocks[4]["text"]["text"],
            "<https://grafana.example/d/1?var=a&amp;b=2|Grafana>"
        );
        assert_eq!(
            blocks[5]["text"]["text"],
            "*Invariant findings*\n• country: 12% nulls, allowed ≤ 1%"
        );
        // Three changes of four: the largest come first.
        assert_eq!(
            blocks[6]["text"]["text"],
            "*feature_0* — PSI 0.93 ≥ 0.20\n• p50 19.6 → 210.0\n• p90 40.1 → 380.2\n• p99 88.0 → 990.5"
        );
        assert_within_limits(&m);
    }

    #[test]
    fn many_features_fit_in_fifty_blocks_with_an_exact_remainder() {
        let m = message(&notification(200));
        let blocks = blocks(&m);
        assert_eq!(blocks.len(), MAX_BLOCKS);
        let shown = section_texts(&m)
            .iter()
            .filter(|t| t.starts_with("*feature_"))
            .count();
        // Six blocks before the features, 43 features, one remainder.
        assert_eq!(shown, 43);
        assert_eq!(
            blocks.last().unwrap()["text"]["text"],
            format!("…and {} more features", 200 - shown)
        );
        assert_eq!(
            blocks.last().unwrap()["text"]["text"],
            "…and 157 more features"
        );
        assert_within_limits(&m);
    }

    #[test]
    fn the_remainder_appears_only_when_needed() {
        // 44 features fill the 50 blocks exactly.
        let m = message(&notification(44));
        assert_eq!(blocks(&m).len(), 50);
        assert!(!section_texts(&m).iter().any(|t| t.contains("more feature")));
        // One more and two must give way to the remainder line.
        let m = message(&notification(45));
        assert_eq!(blocks(&m).len(), 50);
        assert_eq!(
            blocks(&m).last().unwrap()["text"]["text"],
            "…and 2 more features"
        );
    }

    #[test]
    fn huge_names_are_cut_within_limits_on_char_boundaries() {
        for unit in ["x", "🚨", "漢", "e\u{301}", "&"] {
            let mut n = notification(3);
            n.dataset = unit.repeat(10_000);
            n.features[0].name = unit.repeat(10_000);
            n.features[1].reason = unit.repeat(10_000);
            n.features[2].changes = vec![unit.repeat(10_000); 3];
            n.findings = vec![unit.repeat(10_000); 20];
            n.annotations
                .insert("description".into(), unit.repeat(10_000));
            n.links = vec![(unit.repeat(10_000), "https://x.example/".into()); 20];
            let m = message(&n);
            assert_within_limits(&m);
            let texts = section_texts(&m);
            assert!(
                texts
                    .iter()
                    .any(|t| t.starts_with("*") && t.contains("…* — PSI"))
            );
            assert!(units(m["text"].as_str().unwrap()) <= MAX_FALLBACK);
        }
    }

    #[test]
    fn cuts_never_split_an_entity() {
        assert_eq!(truncate_escaped("ab&amp;cd", 5), "ab…");
        assert_eq!(truncate_escaped("ab&amp;cd", 8), "ab&amp;…");
        assert_eq!(truncate_escaped("🚨🚨🚨", 4), "🚨…");
        assert_eq!(truncate_escaped("short", 150), "short");
    }

    #[test]
    fn hostile_data_is_escaped() {
        let hostile = "<!channel> <https://evil.example|click here> & <@U123>";
        let mut n = notification(1);
        n.dataset = hostile.into();
        n.rule = hostile.into();
        n.features[0].name = hostile.into();
        n.features[0].changes = vec![hostile.into()];
        n.findings = vec![hostile.into()];
        n.labels = BTreeMap::from([(hostile.into(), hostile.into())]);
        n.annotations = BTreeMap::from([("summary".into(), hostile.into())]);
        n.links = vec![(hostile.into(), "https://ok.example/?q=<!here>|x".into())];
        let m = message(&n);
        let escaped =
            "&lt;!channel&gt; &lt;https://evil.example|click here&gt; &amp; &lt;@U123&gt;";
        for text in texts(&m) {
            assert!(!text.contains("<!"), "mention leaked: {text}");
            assert!(!text.contains("<@"), "mention leaked: {text}");
            assert!(!text.contains("<https://evil"), "link leaked: {text}");
        }
        assert!(section_texts(&m)[0].contains(escaped));
        assert!(m["text"].as_str().unwrap().contains(escaped));
        // The one real link: its URL cannot end early or open a mention.
        let link = section_texts(&m)[1];
        assert!(link.starts_with("<https://ok.example/?q=&lt;!here&gt;%7Cx|&lt;!channel&gt;"));
        assert_eq!(link.matches('<').count(), 1);
        assert_eq!(link.matches('>').count(), 1);
    }

    #[test]
    fn resolved_messages_say_resolved() {
        let mut n = notification(2);
        n.status = Status::Resolved;
        n.resolved_ms = Some(1_700_000_600_000);
        let m = message(&n);
        assert_eq!(
            blocks(&m)[0]["text"]["text"],
            ":white_check_mark: Resolved: drift in search_ranking_inputs"
        );
        assert!(
            blocks(&m)[1]["elements"][0]["text"]
                .as_str()
                .unwrap()
                .ends_with("*Resolved:* 2023-11-14 22:23:20 UTC")
        );
        assert_eq!(
            m["text"],
            "Resolved: drift in search_ranking_inputs (rule input-drift)"
        );
    }

    #[test]
    fn fallback_text_is_present() {
        let m = message(&notification(5));
        assert_eq!(
            m["text"],
            "Drift in search_ranking_inputs (critical, rule input-drift): 5 features drifted: \
             feature_0, feature_1, feature_2, …; 1 invariant finding"
        );
        let mut n = notification(0);
        n.findings.clear();
        n.annotations.clear();
        n.labels.clear();
        n.links.clear();
        let m = message(&n);
        assert_eq!(
            m["text"],
            "Drift in search_ranking_inputs (critical, rule input-drift)"
        );
        assert_eq!(blocks(&m).len(), 2);
    }

    #[test]
    fn too_many_findings_end_with_an_exact_count() {
        let mut n = notification(0);
        n.findings = (0..500)
            .map(|i| format!("finding {i:03}: {}", "n".repeat(80)))
            .collect();
        let m = message(&n);
        assert_within_limits(&m);
        let text = section_texts(&m)
            .into_iter()
            .find(|t| t.starts_with("*Invariant findings*"))
            .unwrap();
        let shown = text.matches("\n• ").count();
        assert!(shown > 10, "only {shown} findings shown");
        assert!(text.ends_with(&format!("\n…and {} more findings", 500 - shown)));
    }

    #[test]
    fn missing_reason_is_built_from_score_and_threshold() {
        let mut f = feature_line("latency_ms");
        f.reason.clear();
        f.changes.clear();
        assert_eq!(feature(&f)["text"]["text"], "*latency_ms* — psi 0.93 ≥ 0.2");
        f.score = None;
        assert_eq!(
            feature(&f)["text"]["text"],
            "*latency_ms* — psi no score ≥ 0.2"
        );
    }
}
