//! The Prometheus alerting rules for driftd's metrics (`rules/prometheus/`): promtool accepts
//! them and their unit tests pass, every alert is tested firing and not firing, carries a
//! severity and says what happened, and `driftd serve --rules rules/` does not mistake them for
//! driftd rule files.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;

use crate::helpers::{driftd, stderr};
use crate::prometheus_server::promtool_binary;

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")
}

fn yaml(path: &Path) -> Json {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn promtool(binary: &Path, args: &[&str]) {
    let out = Command::new(binary)
        .args(args)
        .current_dir(rules_dir().join("prometheus"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_checks_the_rules_and_their_unit_tests_pass() {
    let Some(promtool_bin) = promtool_binary("the alerting rules test") else {
        return;
    };
    promtool(&promtool_bin, &["check", "rules", "driftd.rules.yml"]);
    promtool(&promtool_bin, &["test", "rules", "driftd.rules.test.yml"]);
}

#[test]
fn every_alert_is_tested_firing_and_not_firing_and_explains_itself() {
    let rules = yaml(&rules_dir().join("prometheus/driftd.rules.yml"));
    let alerts: Vec<&Json> = rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    let names: Vec<&str> = alerts
        .iter()
        .map(|a| a["alert"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "DriftdFeatureDrifted",
            "DriftdOnlineDataStopped",
            "DriftdReferenceStale",
            "DriftdIngestDropping",
            "DriftdNotificationsFailing",
            "DriftdDown",
            "DriftdDatabaseDown",
            "DriftdRunAnomalous"
        ]
    );
    for alert in &alerts {
        let name = alert["alert"].as_str().unwrap();
        let severity = alert["labels"]["severity"].as_str();
        assert!(
            matches!(severity, Some("warning" | "critical")),
            "{name}: severity {severity:?}"
        );
        for annotation in ["summary", "description"] {
            let text = alert["annotations"][annotation]
                .as_str()
                .unwrap_or_default();
            assert!(text.len() > 20, "{name}: {annotation} {text:?}");
        }
    }

    let tests = yaml(&rules_dir().join("prometheus/driftd.rules.test.yml"));
    let cases: Vec<&Json> = tests["tests"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_array().unwrap())
        .collect();
    for name in names {
        let expected = |firing: bool| {
            cases.iter().any(|c| {
                c["alertname"] == name
                    && c["exp_alerts"]
                        .as_array()
                        .is_some_and(|a| a.is_empty() != firing)
            })
        };
        assert!(expected(true), "{name} is never tested firing");
        assert!(expected(false), "{name} is never tested not firing");
    }
}

#[test]
fn driftd_reads_only_the_top_level_rule_files() {
    let out = driftd(&["rules", "check", rules_dir().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("2 rule files valid"), "{said}");
}
