//! `driftd serve --config`: every problem of a file at once, and `--print-config` as a file
//! that `--config` takes back.

use crate::helpers::{driftd, stderr};

#[test]
fn every_problem_of_a_config_file_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("driftd.yaml");
    std::fs::write(&path, "listen: nope\nwindw: 30s\nmax_features: 0\nfoo: 1\n").unwrap();
    let out = driftd(&[
        "serve",
        "--config",
        path.to_str().unwrap(),
        "--print-config",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let file = format!("config file {}", path.display());
    let expected = [
        format!("windw ({file}, line 2 column 8): unknown setting; did you mean `window`?"),
        format!("foo ({file}, line 4 column 6): unknown setting"),
        format!(
            "listen ({file}, line 1 column 9): \"nope\": not an address such as 127.0.0.1:8471"
        ),
        format!("max_features ({file}, line 3 column 15): \"0\": must be at least 1"),
    ];
    for line in &expected {
        assert!(err.contains(line.as_str()), "missing {line:?} in:\n{err}");
    }
    assert_eq!(err.matches(&file).count(), 4, "{err}");
}

#[test]
fn printed_config_is_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let first = std::process::Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args(["serve", "--print-config", "--window", "90s"])
        .env(
            "DRIFTD_SLACK_WEBHOOK_URL",
            "https://hooks.slack.com/services/T/B/hunter3",
        )
        .env("DRIFTD_MAX_FEATURES", "321")
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    let printed = String::from_utf8(first.stdout).unwrap();
    assert!(!printed.contains("hunter3"), "{printed}");
    assert!(printed.contains("window: \"1m 30s\""), "{printed}");
    assert!(printed.contains("max_features: \"321\""), "{printed}");
    let path = dir.path().join("printed.yaml");
    std::fs::write(&path, &printed).unwrap();
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args([
            "serve",
            "--print-config",
            "--config",
            path.to_str().unwrap(),
        ])
        .env_remove("DRIFTD_SLACK_WEBHOOK_URL")
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    let reprinted = String::from_utf8(again.stdout).unwrap();
    // The secret was not printed, so it is unset the second time; every other line is equal.
    let without_secret = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| !l.contains("slack_webhook_url"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(without_secret(&printed), without_secret(&reprinted));
}
