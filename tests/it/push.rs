//! `driftd push` against a live server: profile and counters in one command, the same run id
//! for the same data, retries on 429/5xx, final refusals and an unreachable server (exit 2).

use std::process::Output;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::alerts::{Answer, SlackStandIn};
use crate::helpers::{BOTH, fresh_database, sample, spawn_app, stderr, test_config};

/// Runs `driftd push` off the async workers (the server under test shares the runtime).
async fn push(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_driftd"))
            .arg("push")
            .args(&args)
            .output()
            .expect("driftd runs")
    })
    .await
    .unwrap()
}

fn args(url: &str, extra: &[&str]) -> Vec<String> {
    let mut a = vec![
        sample(),
        "--url".into(),
        url.into(),
        "--dataset".into(),
        "ranking".into(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_command_uploads_profile_and_counters_and_a_retry_is_the_same_run() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let app = spawn_app(test_config(&url)).await;
        let base = format!("http://{}", app.address);
        let extra = [
            "--counter",
            "rows_read=1200",
            "--counter",
            "rows_dropped=12",
            "--label",
            "dag_id=train_ranker",
            "--run-time",
            "2026-11-02T06:00:00Z",
        ];
        let out = push(args(&base, &extra)).await;
        assert!(out.status.success(), "{db:?}: {}", stderr(&out));
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let run_id = summary["run_id"].as_str().unwrap().to_owned();
        assert!(run_id.starts_with("ranking-") && run_id.len() == "ranking-".len() + 12);
        assert_eq!(summary["counters"], 2);
        let rows = summary["rows"].as_f64().unwrap();
        assert!(rows > 0.0);
        // The step is retried: same data, same run; nothing doubles.
        let again = push(args(&base, &extra)).await;
        assert!(again.status.success(), "{}", stderr(&again));
        let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
        assert_eq!(again["run_id"], run_id.as_str());
        let runs = app.get_json("/v1/datasets/ranking/runs").await;
        assert_eq!(runs["runs"].as_array().unwrap().len(), 1, "{runs}");
        let run = &runs["runs"][0];
        assert_eq!(run["counters"]["rows_read"], 1200.0);
        assert_eq!(run["labels"]["dag_id"], "train_ranker");
        assert_eq!(run["run_time_ms"], 1_793_599_200_000i64);
        assert_eq!(run["metrics"]["profile.rows"], rows);
        assert_eq!(
            app.metric(r#"driftd_records_total{dataset="ranking",stage="offline"}"#)
                .await,
            Some(rows)
        );
        assert_eq!(
            app.metric(
                r#"driftd_counter_total{dataset="ranking",name="rows_read",stage="offline"}"#
            )
            .await,
            Some(1200.0)
        );
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_and_refusals_are_final() {
    // 503, then 429 with Retry-After: 1, then the profile is taken; the counters go through.
    let server =
        SlackStandIn::start(&[Answer::Status(503), Answer::RateLimited { retry_after: 1 }]).await;
    let base = server.url.split("/services").next().unwrap().to_owned();
    let started = Instant::now();
    let out = push(args(&base, &["--run-id", "r1", "--counter", "rows_read=5"])).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let requests = server.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/v1/datasets/ranking/profiles",
            "/v1/datasets/ranking/profiles",
            "/v1/datasets/ranking/profiles",
            "/v1/datasets/ranking/counters",
        ]
    );
    // 0.5 s backoff after the 503, then the 1 s the server asked for.
    let gap = requests[2].at - requests[1].at;
    assert!(gap >= Duration::from_millis(950), "{gap:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(requests[3].body["counters"]["rows_read"], 5.0);
    assert_eq!(requests[3].body["run_id"], "r1");

    // A refusal is not retried: exit 2 with driftd's reason.
    let dir = TempDir::new().unwrap();
    let url = fresh_database(crate::helpers::Db::Sqlite, dir.path())
        .await
        .unwrap();
    let mut config = test_config(&url);
    config.max_counters = 1;
    let app = spawn_app(config).await;
    let out = push(args(
        &format!("http://{}", app.address),
        &["--counter", "a=1", "--counter", "b=2"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(
            "driftd refused the counters (400): 2 counters in one report; at most 1 (max_counters)"
        ),
        "{err}"
    );
    app.stop().await;

    // Nobody listening: two attempts, then exit 2.
    let out = push(args("http://127.0.0.1:9", &["--attempts", "2"])).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("driftd is unreachable or failing after 2 attempts (profile): cannot connect"),
        "{err}"
    );
}

/// An unreadable file is refused before anything is sent, named once.
#[test]
fn a_missing_file_or_a_directory_is_named_once() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("nosuch.csv");
    let missing = missing.to_str().unwrap();
    let folder = dir.path().to_str().unwrap();
    for (path, expected) in [
        (
            missing,
            format!("{missing}: cannot open: No such file or directory (os error 2)"),
        ),
        (
            folder,
            format!(
                "{folder}: is a directory; give a .csv, .jsonl, .ndjson, .json (JSON Lines) or .parquet file"
            ),
        ),
    ] {
        let out = crate::helpers::driftd(&[
            "push",
            path,
            "--url",
            "http://127.0.0.1:9",
            "--dataset",
            "ranking",
        ]);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(stderr(&out), format!("driftd: error: {expected}\n"));
    }
}

/// Help names the variables a flag falls back to, never their values (set or not).
#[test]
fn help_names_the_variables_without_their_values() {
    for url in [None, Some("http://pipeline-secret-host:8471")] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_driftd"));
        cmd.args(["push", "--help"])
            .env_remove("DRIFTD_URL")
            .env("DRIFTD_TOKEN", "tok-do-not-print");
        if let Some(url) = url {
            cmd.env("DRIFTD_URL", url);
        }
        let help = String::from_utf8(cmd.output().unwrap().stdout).unwrap();
        assert!(
            help.contains(
                "--url <URL>            The driftd server, e.g. http://driftd:8471 [env: DRIFTD_URL]\n"
            ),
            "{help}"
        );
        assert!(help.contains("[env: DRIFTD_TOKEN]"), "{help}");
        assert!(!help.contains("DRIFTD_URL="), "{help}");
        assert!(!help.contains("pipeline-secret-host"), "{help}");
        assert!(!help.contains("tok-do-not-print"), "{help}");
    }
    // The variable is still read.
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("nosuch.csv");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args(["push", missing.to_str().unwrap(), "--dataset", "ranking"])
        .env("DRIFTD_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(stderr(&out).contains("cannot open"), "{}", stderr(&out));
}
