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

fn serve_print(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_driftd"));
    cmd.arg("serve").arg("--print-config").args(args);
    cmd.env_remove("DRIFTD_API_TOKEN")
        .env_remove("DRIFTD_ALLOW_UNAUTHENTICATED");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn listening_beyond_loopback_without_a_token_is_refused() {
    let out = serve_print(&["--listen", "0.0.0.0:8471"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    for fix in [
        "0.0.0.0:8471 is reachable beyond this machine",
        "DRIFTD_API_TOKEN",
        "auth.tokens",
        "allow_unauthenticated: true (unsafe)",
    ] {
        assert!(err.contains(fix), "missing {fix:?} in:\n{err}");
    }
    // A token, or the explicit unsafe switch, lets it start.
    let token = "a3f9c0d1e2b4a5968778695a4b3c2d1e";
    let out = serve_print(
        &["--listen", "0.0.0.0:8471"],
        &[("DRIFTD_API_TOKEN", token)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(!printed.contains(token), "{printed}");
    assert!(printed.contains("# api_token: [redacted]"), "{printed}");
    let out = serve_print(
        &["--listen", "0.0.0.0:8471"],
        &[("DRIFTD_ALLOW_UNAUTHENTICATED", "true")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // Loopback needs neither.
    let out = serve_print(&["--listen", "127.0.0.1:8471"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_short_api_token_is_refused_without_being_echoed() {
    let out = serve_print(&[], &[("DRIFTD_API_TOKEN", "hunter2")]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("api_token (environment): must be at least 16 characters"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn auth_tokens_come_from_the_config_file_and_never_print() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("driftd.yaml");
    let digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    std::fs::write(
        &path,
        format!(
            "listen: 0.0.0.0:8471\nauth:\n  tokens:\n    - {{name: sidecar, scopes: [online], token: \"sidecar-secret-0123456789\"}}\n    - {{name: pipeline, scopes: [offline, read], sha256: \"{digest}\"}}\nwindow: 2m\n"
        ),
    )
    .unwrap();
    let out = serve_print(&["--config", path.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.contains("# auth: 2 tokens [redacted]"), "{printed}");
    assert!(
        printed.contains("#   - {name: \"sidecar\", scopes: [online]}"),
        "{printed}"
    );
    assert!(
        printed.contains("#   - {name: \"pipeline\", scopes: [offline, read]}"),
        "{printed}"
    );
    assert!(printed.contains("window: \"2m\""), "{printed}");
    assert!(!printed.contains("sidecar-secret") && !printed.contains(digest));

    std::fs::write(
        &path,
        "auth:\n  tokens:\n    - {name: sidecar, scopes: [write], token: \"sidecar-secret-0123456789\"}\n",
    )
    .unwrap();
    let out = serve_print(&["--config", path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("unknown scope \"write\": expected online, offline, read or admin"),
        "{err}"
    );
    assert!(err.contains("line 3"), "{err}");
    assert!(!err.contains("sidecar-secret"), "{err}");

    std::fs::write(
        &path,
        "auth:\n  tokens:\n    - {name: a, scopes: [read], token: short}\n    - {name: b, scopes: [read]}\n",
    )
    .unwrap();
    let out = serve_print(&["--config", path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let file = format!("config file {}, line 2 column 3", path.display());
    assert!(
        err.contains(&format!("auth ({file}"))
            && err.contains("auth.tokens[0] (\"a\"): token must be at least 16 characters")
            && err.contains("auth.tokens[1] (\"b\"): give exactly one of token and sha256"),
        "{err}"
    );
    assert!(!err.contains("short"), "{err}");
}
