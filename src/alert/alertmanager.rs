//! Alertmanager: the body of `POST /api/v2/alerts` (a list of `postableAlert`s in Alertmanager's
//! OpenAPI spec: `labels`, `annotations`, `startsAt`, `endsAt`, `generatorURL`), so drift alerts
//! reach whatever routing, silencing and paging a team already runs.
//!
//! Alertmanager identifies an alert by the hash of its labels, so labels hold only what names
//! the alert — rule, dataset, severity and the configured labels — and never a score or a
//! feature list, which change between evaluations and would split one alert into many.
//! Everything that changes goes in annotations.
//!
//! A firing alert is sent without `endsAt`; Alertmanager then treats it as resolved after its
//! `resolve_timeout` (5 minutes by default) unless it is sent again, so delivery must repeat
//! firing alerts more often than that. A resolved alert carries `endsAt`, the resolution time.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::webhook::rfc3339;
use super::{AlertSeverity, Notification, Status};
use crate::format::plural;

/// Features named in the one-line summary before it ends with "…".
const SUMMARY_FEATURES: usize = 3;

/// Features listed in the description: a long description is truncated or refused by the chat
/// and pager integrations that render it, and the rest is one link away.
const DESCRIPTION_FEATURES: usize = 50;

/// The body of `POST /api/v2/alerts` for one notification: an array of one alert.
///
/// Labels are `n.labels` plus `alertname` (the rule), `dataset` and `severity`, which take
/// precedence over configured labels of the same name because they are the alert's identity.
/// Annotations are a generated `summary` and `description` plus `n.annotations`, where a
/// configured `summary` or `description` replaces the generated one.
pub fn alerts(n: &Notification, generator_url: Option<&str>) -> Value {
    let mut labels = n.labels.clone();
    labels.insert("alertname".into(), n.rule.clone());
    labels.insert("dataset".into(), n.dataset.clone());
    labels.insert("severity".into(), severity(n.severity).into());

    let mut annotations = BTreeMap::from([
        ("summary".to_string(), summary(n)),
        ("description".to_string(), description(n)),
    ]);
    annotations.extend(n.annotations.clone());

    let mut alert = json!({
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339(n.since_ms),
    });
    if n.status == Status::Resolved {
        // A resolved notification without a time is a bug upstream; ending the alert when it
        // started still resolves it (Alertmanager accepts endsAt == startsAt) rather than
        // leaving it firing until resolve_timeout.
        alert["endsAt"] = rfc3339(n.resolved_ms.unwrap_or(n.since_ms)).into();
    }
    if let Some(url) = generator_url {
        alert["generatorURL"] = url.into();
    }
    json!([alert])
}

fn severity(s: AlertSeverity) -> &'static str {
    match s {
        AlertSeverity::Info => "info",
        AlertSeverity::Warning => "warning",
        AlertSeverity::Critical => "critical",
    }
}

/// One line: "3 features drifted in search: latency_ms, country, …".
fn summary(n: &Notification) -> String {
    let count = n.features.len();
    let mut line = if count > 0 {
        let mut names: Vec<&str> = n
            .features
            .iter()
            .take(SUMMARY_FEATURES)
            .map(|f| f.name.as_str())
            .collect();
        if count > SUMMARY_FEATURES {
            names.push("…");
        }
        format!(
            "{count} {} drifted in {}: {}",
            plural(count, "feature", "features"),
            n.dataset,
            names.join(", ")
        )
    } else {
        let findings = n.findings.len();
        format!(
            "{findings} invariant {} in {}",
            plural(findings, "finding", "findings"),
            n.dataset
        )
    };
    if n.status == Status::Resolved {
        line = format!("Resolved: {line}");
    }
    // Names come from data; a newline in one must not break the one-line promise.
    line.replace(['\n', '\r'], " ")
}

/// Feature verdicts with their largest changes, then the findings, one per line.
fn description(n: &Notification) -> String {
    let mut lines = Vec::new();
    for f in n.features.iter().take(DESCRIPTION_FEATURES) {
        let mut line = format!("{}: {}", f.name, f.reason);
        if !f.changes.is_empty() {
            line.push_str(&format!(" ({})", f.changes.join("; ")));
        }
        lines.push(line);
    }
    if n.features.len() > DESCRIPTION_FEATURES {
        lines.push(format!(
            "…and {} more features",
            n.features.len() - DESCRIPTION_FEATURES
        ));
    }
    lines.extend(n.findings.iter().cloned());
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::super::FeatureLine;
    use super::*;

    fn feature(name: &str, score: f64) -> FeatureLine {
        FeatureLine {
            name: name.into(),
            kind: "numeric".into(),
            method: "psi".into(),
            score: Some(score),
            threshold: 0.2,
            reason: format!("PSI {score:.2} ≥ 0.20"),
            changes: vec![format!("p50 of {name} 19.6 → 210.0")],
        }
    }

    fn firing() -> Notification {
        Notification {
            topic: Default::default(),
            fingerprint: "fp-1".into(),
            rule: "input-drift".into(),
            dataset: "search".into(),
            severity: AlertSeverity::Warning,
            status: Status::Firing,
            since_ms: 1_700_000_000_000,
            resolved_ms: None,
            features: vec![
                feature("latency_ms", 0.93),
                feature("country", 0.41),
                feature("query_len", 0.30),
                feature("device", 0.25),
            ],
            findings: vec!["country: 12% nulls, allowed ≤ 1%".into()],
            labels: BTreeMap::from([("team".into(), "search".into())]),
            annotations: BTreeMap::from([("runbook_url".into(), "https://runbooks/drift".into())]),
            links: vec![],
        }
    }

    fn resolved() -> Notification {
        let mut n = firing();
        n.status = Status::Resolved;
        n.resolved_ms = Some(1_700_000_600_000);
        // Scores differ at resolution: they must not reach the labels.
        n.features = vec![feature("latency_ms", 0.05)];
        n
    }

    #[test]
    fn one_alert_with_the_documented_fields() {
        let body = alerts(&firing(), Some("https://driftd.example/datasets/search"));
        let list = body.as_array().unwrap();
        assert_eq!(list.len(), 1);
        let alert = &list[0];
        let mut keys: Vec<&str> = alert
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["annotations", "generatorURL", "labels", "startsAt"]);
        assert_eq!(alert["startsAt"], "2023-11-14T22:13:20.000Z");
        assert_eq!(
            alert["generatorURL"],
            "https://driftd.example/datasets/search"
        );
        assert_eq!(
            alert["labels"],
            json!({"alertname": "input-drift", "dataset": "search", "severity": "warning", "team": "search"})
        );
    }

    #[test]
    fn labels_are_stable_between_firing_and_resolved() {
        let fire = alerts(&firing(), None);
        let resolve = alerts(&resolved(), None);
        assert_eq!(fire[0]["labels"], resolve[0]["labels"]);
        assert_ne!(fire[0]["annotations"], resolve[0]["annotations"]);
    }

    #[test]
    fn ends_at_only_when_resolved() {
        let fire = alerts(&firing(), None);
        assert!(fire[0].get("endsAt").is_none());
        assert!(fire[0].get("generatorURL").is_none());
        let resolve = alerts(&resolved(), None);
        assert_eq!(resolve[0]["endsAt"], "2023-11-14T22:23:20.000Z");
        assert_eq!(resolve[0]["startsAt"], "2023-11-14T22:13:20.000Z");
    }

    #[test]
    fn annotations_describe_the_features_and_findings() {
        let alert = &alerts(&firing(), None)[0];
        assert_eq!(
            alert["annotations"]["summary"],
            "4 features drifted in search: latency_ms, country, query_len, …"
        );
        let description = alert["annotations"]["description"].as_str().unwrap();
        for name in ["latency_ms", "country", "query_len", "device"] {
            assert!(description.contains(name), "{name} missing: {description}");
        }
        assert!(
            description.contains("latency_ms: PSI 0.93 ≥ 0.20 (p50 of latency_ms 19.6 → 210.0)")
        );
        assert!(description.contains("country: 12% nulls, allowed ≤ 1%"));
        assert_eq!(
            alert["annotations"]["runbook_url"],
            "https://runbooks/drift"
        );

        let resolve = &alerts(&resolved(), None)[0];
        assert_eq!(
            resolve["annotations"]["summary"],
            "Resolved: 1 feature drifted in search: latency_ms"
        );
    }

    #[test]
    fn configured_labels_cannot_change_the_identity_but_annotations_override() {
        let mut n = firing();
        n.labels.insert("alertname".into(), "spoof".into());
        n.labels.insert("severity".into(), "page".into());
        n.annotations
            .insert("summary".into(), "Search inputs drifted".into());
        let alert = &alerts(&n, None)[0];
        assert_eq!(alert["labels"]["alertname"], "input-drift");
        assert_eq!(alert["labels"]["severity"], "warning");
        assert_eq!(alert["annotations"]["summary"], "Search inputs drifted");
    }

    #[test]
    fn long_lists_are_bounded_and_summaries_stay_on_one_line() {
        let mut n = firing();
        n.features = (0..120)
            .map(|i| feature(&format!("f{i}\nx"), 0.5))
            .collect();
        n.findings.clear();
        let alert = &alerts(&n, None)[0];
        let summary = alert["annotations"]["summary"].as_str().unwrap();
        assert!(!summary.contains('\n'));
        assert!(summary.starts_with("120 features drifted in search: f0 x, f1 x, f2 x, …"));
        let description = alert["annotations"]["description"].as_str().unwrap();
        assert!(description.ends_with("…and 70 more features"));

        n.features.clear();
        n.findings = vec!["a".into(), "b".into()];
        let alert = &alerts(&n, None)[0];
        assert_eq!(
            alert["annotations"]["summary"],
            "2 invariant findings in search"
        );
    }

    #[test]
    fn resolved_without_a_time_still_resolves() {
        let mut n = resolved();
        n.resolved_ms = None;
        let alert = &alerts(&n, None)[0];
        assert_eq!(alert["endsAt"], alert["startsAt"]);
    }
}
