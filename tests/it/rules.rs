//! Rule files: parsing, validation with file and line, resolution per dataset, and their
//! effect on `compare`.

use std::path::Path;

use driftd::detect::{Check, Severity, compare};
use driftd::profile::Kind;
use driftd::rules::{Method, RuleSet};
use tempfile::TempDir;

use crate::drift_statistics::numeric_profile;
use crate::helpers::{driftd, stderr};

fn errors_of(text: &str) -> Vec<String> {
    RuleSet::from_str(Path::new("r.yaml"), text)
        .expect_err("rules must be refused")
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn the_shipped_example_rules_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let set = RuleSet::load(&dir).expect("rules/ is valid");
    assert_eq!(set.datasets(), ["*", "search_ranking_inputs"]);
    let rules = set.for_dataset("search_ranking_inputs");
    assert_eq!(
        rules.method_for("latency_ms", Kind::Numeric),
        (Method::WassersteinNormalized, 0.25)
    );
    assert_eq!(
        rules.method_for("query_len", Kind::Numeric),
        (Method::Psi, 0.2)
    );
    assert_eq!(rules.feature("position").kind, Some(Kind::String));
    assert_eq!(
        set.for_dataset("other").features.len(),
        0,
        "named rules stay with their dataset"
    );
}

#[test]
fn unknown_keys_and_bad_values_are_errors_with_line_and_column() {
    let errors = errors_of("dataset: d\nfeatures:\n  x:\n    treshold: 0.3\n");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("r.yaml:4:"), "{errors:?}");
    assert!(errors[0].contains("treshold"), "{errors:?}");

    let errors = errors_of(
        "dataset: d\ndrift:\n  numeric: {method: chi2_p_value}\nfeatures:\n  x: {threshold: -1}\n  y: {range: [5, 1]}\n  z: {max_null_ratio: 2}\n",
    );
    assert_eq!(
        errors.len(),
        4,
        "every problem is reported at once: {errors:?}"
    );
    assert!(
        errors[0].starts_with("r.yaml:3:")
            && errors[0].contains("method chi2_p_value does not apply to numeric features"),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.starts_with("r.yaml:5:")
            && e.contains("x: threshold must be a finite number >= 0, got -1")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("r.yaml:6:") && e.contains("y: range must be [low, high]")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.starts_with("r.yaml:7:")
            && e.contains("z: max_null_ratio must be between 0 and 1")),
        "{errors:?}"
    );

    let errors = errors_of("dataset: d\nfeatures:\n  x: {method: psi_typo}\n");
    assert!(
        errors[0].starts_with("r.yaml:3:") && errors[0].contains("psi_typo"),
        "{errors:?}"
    );
    let errors = errors_of("dataset: \"bad name!\"\n");
    assert!(
        errors[0].starts_with("r.yaml:1:") && errors[0].contains("not a valid name"),
        "{errors:?}"
    );
    let errors = errors_of("features: {}\n");
    assert!(
        errors[0].contains("dataset"),
        "a file must say which dataset: {errors:?}"
    );
    let errors = errors_of("dataset: d\nfeatures:\n  x: {kind: string, method: ks}\n");
    assert!(
        errors[0].contains("x: method ks does not apply to string features"),
        "{errors:?}"
    );
}

#[test]
fn a_feature_configured_twice_is_a_conflict_named_with_both_places() {
    let dir = TempDir::new().unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        "dataset: d\nfeatures:\n  x: {threshold: 0.3}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.yml"),
        "dataset: d\n\nfeatures:\n  x: {ignore: true}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not rules").unwrap();
    let errors = RuleSet::load(dir.path()).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let msg = errors[0].to_string();
    assert!(
        msg.contains("b.yml:4:") && msg.contains("a.yaml:3"),
        "{msg}"
    );
}

#[test]
fn rules_change_verdicts_and_invariants() {
    let reference: Vec<f64> = (0..2000).map(|i| (i % 100) as f64).collect();
    let current: Vec<f64> = (0..2000).map(|i| (i % 100) as f64 + 8.0).collect();
    let (r, c) = (
        numeric_profile("d", &reference),
        numeric_profile("d", &current),
    );

    let default = compare(&r, &c, &RuleSet::default().for_dataset("d"));
    assert!(
        !default.features["x"].drift,
        "{}",
        default.features["x"].reason
    );

    let strict = RuleSet::from_str(
        Path::new("r.yaml"),
        "dataset: d\nfeatures:\n  x: {method: ks, threshold: 0.05, range: [0, 100]}\n",
    )
    .unwrap();
    let report = compare(&r, &c, &strict.for_dataset("d"));
    let f = &report.features["x"];
    assert!(f.drift, "{}", f.reason);
    // KS is read off random-compacting sketches: 0.08 give or take its last digit.
    let (score, threshold) = f
        .reason
        .strip_prefix("KS ")
        .and_then(|r| r.split_once(" ≥ "))
        .unwrap_or_else(|| panic!("{}", f.reason));
    assert_eq!(threshold, "0.05");
    let printed: f64 = score.parse().unwrap_or_else(|_| panic!("{}", f.reason));
    assert!(
        // Half a unit of the last digit, and a hair for a score that is exactly at the half.
        (printed - f.score.unwrap()).abs() <= 0.0005 + 1e-12,
        "the printed score is the score to three decimals: {}",
        f.reason
    );
    assert!((0.075..0.085).contains(&f.score.unwrap()), "{}", f.reason);
    let range = report
        .schema
        .iter()
        .find(|f| f.check == Check::OutOfExpectedRange)
        .expect("range finding");
    assert_eq!(range.severity, Severity::Error);
    assert!(
        (range.share.unwrap() - 0.07).abs() < 0.01,
        "{:?}",
        range.share
    );

    let ignored = RuleSet::from_str(
        Path::new("r.yaml"),
        "dataset: \"*\"\nfeatures:\n  x: {ignore: true}\n",
    )
    .unwrap();
    let report = compare(&r, &c, &ignored.for_dataset("d"));
    assert!(report.features.is_empty() && report.schema.is_empty());
}

#[test]
fn alert_rules_are_validated_with_their_line() {
    let errors = errors_of(
        "dataset: d\nalerts:\n  - name: a\n    when: drift\n    notify: [pagerduty]\n  - name: b\n    when: invariant\n    for: soon\n",
    );
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("r.yaml:3:")
            && errors[0].contains("a: unknown notifier \"pagerduty\""),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("r.yaml:6:")
            && errors[1].contains("b: for: \"soon\" is not a duration"),
        "{errors:?}"
    );
    let errors = errors_of("dataset: d\nalerts:\n  - name: a\n    when: sometimes\n");
    assert!(errors[0].contains("sometimes"), "{errors:?}");
    // A `for:` beyond a week is refused, a week is taken.
    let errors =
        errors_of("dataset: d\nalerts:\n  - name: slow\n    when: drift\n    for: 99999999999d\n");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("slow: for: \"99999999999d\" is longer than 7days"),
        "{errors:?}"
    );
    let week = RuleSet::from_str(
        Path::new("r.yaml"),
        "dataset: d\nalerts:\n  - name: slow\n    when: drift\n    for: 7d\n",
    );
    assert!(week.is_ok(), "{week:?}");
}

#[test]
fn anomaly_and_parity_sections_resolve_and_bad_values_are_errors() {
    let set = RuleSet::from_str(
        Path::new("r.yaml"),
        "dataset: d\nanomaly:\n  min_runs: 10\n  threshold: 5\n  seasonality: weekday\n  min_relative_change: 0.02\n  counters:\n    rows_read: {min_change: 1000}\n    debug_rows: {ignore: true}\nparity:\n  ratios:\n    - {ratio: rows_dropped / rows_read, tolerance: 0.01, severity: error}\n  null_ratio_tolerance: 0.05\n",
    )
    .unwrap();
    let rules = set.for_dataset("d");
    let policy = rules.anomaly.policy_for("rows_read").unwrap();
    assert_eq!(policy.min_runs, 10);
    assert_eq!(policy.threshold, 5.0);
    assert_eq!(policy.min_change, 1000.0);
    assert_eq!(policy.min_relative_change, 0.02);
    assert_eq!(policy.seasonality, driftd::rules::Seasonality::Weekday);
    assert!(rules.anomaly.policy_for("debug_rows").is_none());
    assert_eq!(rules.parity.ratios[0].name(), "rows_dropped / rows_read");
    assert_eq!(rules.parity.ratios[0].severity, Severity::Error);
    assert_eq!(rules.parity.null_ratio_tolerance, Some(0.05));
    // Other datasets keep the defaults.
    assert_eq!(
        set.for_dataset("e")
            .anomaly
            .policy_for("x")
            .unwrap()
            .min_runs,
        7
    );

    let errors =
        errors_of("dataset: d\nanomaly:\n  min_runs: 0\n  threshold: -1\n  seasonality: monthly\n");
    assert!(
        errors[0].contains("unknown variant `monthly`"),
        "{errors:?}"
    );
    let errors = errors_of("dataset: d\nanomaly:\n  min_runs: 0\n  threshold: -1\n");
    assert_eq!(
        errors,
        [
            "r.yaml:3:3: anomaly: min_runs must be at least 1",
            "r.yaml:3:3: anomaly: threshold must be a finite number > 0, got -1",
        ]
    );
    let errors =
        errors_of("dataset: d\nparity:\n  ratios:\n    - {ratio: rows_dropped, tolerance: 0.1}\n");
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with(
            "r.yaml:4:7: parity: ratio \"rows_dropped\" must read \"counter / counter\""
        ),
        "{errors:?}"
    );
}

/// Two tiny data files for `compare`: the rules are refused before they are read.
fn data_pair(dir: &TempDir) -> (String, String) {
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    std::fs::write(&a, "x\n1\n2\n3\n").unwrap();
    std::fs::write(&b, "x\n1\n2\n4\n").unwrap();
    (a.display().to_string(), b.display().to_string())
}

/// The lines of stderr that report a problem of `file`.
fn problem_lines(err: &str, file: &Path) -> Vec<String> {
    let prefix = format!("{}:", file.display());
    err.lines()
        .map(str::trim)
        .filter(|l| l.starts_with(&prefix))
        .map(|l| l[prefix.len()..].to_owned())
        .collect()
}

#[test]
fn every_problem_of_a_rule_file_is_reported_at_once_through_the_binary() {
    let dir = TempDir::new().unwrap();
    let (a, b) = data_pair(&dir);
    let rules = dir.path().join("bad.yaml");
    std::fs::write(
        &rules,
        "dataset: d\ndrift:\n  numerc: {method: psi}\nfeatures:\n  x: {threshold: -1}\nalerts:\n  - {name: a, when: drfit}\n",
    )
    .unwrap();
    let out = driftd(&["compare", &a, &b, "--rules", rules.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("invalid rules:"), "{err}");
    let lines = problem_lines(&err, &rules);
    assert_eq!(lines.len(), 3, "one line per problem: {err}");
    assert!(
        lines[0].starts_with("3:3: unknown field `numerc`")
            && lines[0].ends_with("; did you mean `numeric`?"),
        "{err}"
    );
    assert!(
        lines[1].starts_with("5:")
            && lines[1].ends_with("x: threshold must be a finite number >= 0, got -1"),
        "{err}"
    );
    assert!(
        lines[2].starts_with("7:") && lines[2].contains("unknown variant `drfit`"),
        "{err}"
    );
    assert!(lines[2].ends_with("did you mean `drift`?"), "{err}");
    for line in &lines {
        assert_eq!(line.matches("line ").count(), 0, "one location: {line}");
    }

    let out = driftd(&["rules", "check", rules.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(problem_lines(&stderr(&out), &rules), lines);
    assert!(
        stderr(&out).contains("3 problems in rule files"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_hundred_problems_are_shown_and_the_rest_counted() {
    let dir = TempDir::new().unwrap();
    let (a, b) = data_pair(&dir);
    let rules = dir.path().join("many.yaml");
    let mut text = String::from("dataset: d\nfeatures:\n");
    for i in 0..150 {
        text.push_str(&format!("  f{i:03}: {{treshold: 0.1}}\n"));
    }
    std::fs::write(&rules, text).unwrap();
    let out = driftd(&["compare", &a, &b, "--rules", rules.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    let lines = problem_lines(&err, &rules);
    assert_eq!(lines.len(), 100, "{err}");
    for (i, line) in lines.iter().enumerate() {
        assert!(
            line.starts_with(&format!("{}:", i + 3)) && line.contains("`treshold`"),
            "in the order of the file: {line}"
        );
    }
    assert_eq!(
        err.lines()
            .map(str::trim)
            .filter(|l| l.starts_with('…'))
            .collect::<Vec<_>>(),
        ["… and 50 more problems"],
        "{err}"
    );
    let errors = RuleSet::load(&rules).unwrap_err();
    assert_eq!(errors.len(), 150);
}

/// A small file nested 60 deep overflowed a 2 MiB thread stack (a test's, a runtime worker's)
/// while its mistakes were looked for, and aborted the process. (Found by the `rule_file`
/// fuzz target's seed corpus.) Nesting is bounded now; the file is refused with a location.
#[test]
fn deeply_nested_rule_files_are_refused_on_a_small_stack() {
    let mut text = String::from("dataset: d\nfeatures:\n");
    for i in 0..60 {
        text += &format!("{}k{i}:\n", "  ".repeat(i + 1));
    }
    let flow = format!(
        "dataset: d\nfeatures:\n  x: {}{}\n",
        "[".repeat(60),
        "]".repeat(60)
    );
    for text in [text, flow] {
        let errors = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || errors_of(&text))
            .expect("a thread")
            .join()
            .expect("reading the file does not panic");
        assert!(!errors.is_empty());
        assert!(
            errors
                .iter()
                .all(|e| e.starts_with("r.yaml:") && e.split(':').nth(1) != Some("0")),
            "{errors:?}"
        );
    }
}
