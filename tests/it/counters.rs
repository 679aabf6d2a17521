//! Counters end to end, on SQLite and PostgreSQL: offline totals idempotent per run, online
//! increments, the metric families read back from /metrics, run-level anomaly detection with
//! its alert, unmapped counters, parity, and bad reports.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value as Json, json};
use tempfile::TempDir;

use crate::alerts::SlackStandIn;
use crate::helpers::{BOTH, Db, TestApp, fresh_database, series, spawn_app, test_config};

const DAY_S: i64 = 86_400;
/// 2026-11-02T06:00:00Z, a Monday: run `i` is day `i` after it.
const FIRST_RUN_S: i64 = 1_793_599_200;

async fn post(app: &TestApp, dataset: &str, body: Json) -> (u16, Json) {
    let r = app
        .send_json(
            Method::POST,
            format!("/v1/datasets/{dataset}/counters"),
            &body,
        )
        .await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Json::Null))
}

fn run(i: i64, counters: Json) -> Json {
    json!({"stage": "offline", "run_id": format!("run-{i:03}"),
           "run_time": FIRST_RUN_S + i * DAY_S, "counters": counters,
           "labels": {"dag_id": "train_ranker"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_totals_replace_online_increments_add_and_both_reach_metrics() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let app = spawn_app(test_config(&url)).await;
        let offline = r#"driftd_counter_total{dataset="d",name="rows_read",stage="offline"}"#;
        let online = r#"driftd_counter_total{dataset="d",name="rows_read",stage="online"}"#;
        let gauge = r#"driftd_run_counter{dataset="d",name="rows_read"}"#;

        let body = run(1, json!({"rows_read": 1000, "rows_dropped": 10}));
        assert_eq!(post(&app, "d", body.clone()).await.0, 200, "{db:?}");
        // A retried task posts the same totals again: replaced, not doubled.
        assert_eq!(post(&app, "d", body).await.0, 200);
        let text = app.metrics().await;
        assert_eq!(series(&text, offline), Some(1000.0), "{db:?}\n{text}");
        assert_eq!(series(&text, gauge), Some(1000.0));
        // The run reports a larger total: the counter grows by the difference.
        post(&app, "d", run(1, json!({"rows_read": 1200}))).await;
        // A later run adds its own total; the gauge shows the latest run.
        post(&app, "d", run(2, json!({"rows_read": 900}))).await;
        // A backfilled earlier run adds to the counter but is not the latest run.
        post(&app, "d", run(0, json!({"rows_read": 800}))).await;
        for _ in 0..3 {
            let (status, answer) = post(
                &app,
                "d",
                json!({"stage": "online", "counters": {"rows_read": 5}}),
            )
            .await;
            assert_eq!(status, 200, "{answer}");
        }
        let text = app.metrics().await;
        assert_eq!(
            series(&text, offline),
            Some(1200.0 + 900.0 + 800.0),
            "{db:?}"
        );
        assert_eq!(series(&text, online), Some(15.0), "{db:?}");
        assert_eq!(series(&text, gauge), Some(900.0), "{db:?}");
        assert!(
            text.contains("# TYPE driftd_counter counter"),
            "an OpenMetrics counter on both sides"
        );
        let listed = app.get_json("/v1/datasets/d/counters").await;
        let rows_read = listed["counters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "rows_read")
            .unwrap()
            .clone();
        assert_eq!(rows_read["offline"]["value"], 900.0, "{listed}");
        assert_eq!(rows_read["offline"]["run_id"], "run-002");
        assert_eq!(rows_read["online"]["total"], 15.0);
        assert_eq!(rows_read["unmapped"], Json::Null);
        let runs = app.get_json("/v1/datasets/d/runs").await;
        assert_eq!(runs["runs"][0]["run_id"], "run-002", "{runs}");
        assert_eq!(runs["runs"][0]["labels"]["dag_id"], "train_ranker");
        assert_eq!(runs["runs"][2]["counters"]["rows_read"], 800.0);

        // After a restart: the latest run's gauge is back at once; counters start again from 0
        // (a counter reset, which rate() and increase() handle).
        app.stop().await;
        let app = spawn_app(test_config(&url)).await;
        let text = app.metrics().await;
        assert_eq!(series(&text, gauge), Some(900.0), "{db:?}");
        assert_eq!(series(&text, offline), None);
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abnormal_run_alerts_with_its_expected_range_and_normal_runs_stay_quiet() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let slack = SlackStandIn::start(&[]).await;
        let mut config = test_config(&url);
        config.slack_webhook_url = Some(driftd::config::Secret::new(slack.url.clone()));
        let app = spawn_app(config).await;
        // Ten runs that vary as usual: 10,000 rows read ± 60.
        let usual = [
            10_000, 10_040, 9_960, 10_020, 9_990, 10_060, 9_940, 10_010, 9_980, 10_030,
        ];
        for (i, rows) in usual.iter().enumerate() {
            let (status, answer) = post(
                &app,
                "train",
                run(i as i64, json!({"rows_read": rows, "rows_dropped": 40 + i})),
            )
            .await;
            assert_eq!(status, 200, "{answer}");
            let verdict = &answer["judged"][0];
            assert_eq!(verdict["name"], "rows_dropped");
            // Seven earlier runs are needed before judging.
            let expected = if i < 7 { "learning" } else { "normal" };
            assert_eq!(verdict["verdict"], expected, "run {i}: {answer}");
            assert_eq!(
                answer["judged"][1]["verdict"], expected,
                "run {i}: {answer}"
            );
        }
        let text = app.metrics().await;
        assert_eq!(
            series(
                &text,
                r#"driftd_run_anomalous{dataset="train",name="rows_read"}"#
            ),
            Some(0.0)
        );
        // Run 10 reads a tenth of its usual rows.
        let (_, answer) = post(
            &app,
            "train",
            run(10, json!({"rows_read": 1_000, "rows_dropped": 45})),
        )
        .await;
        let rows = answer["judged"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == "rows_read")
            .unwrap();
        assert_eq!(rows["verdict"], "anomalous", "{answer}");
        // Median 10,005 of the ten runs; MAD 25 → σ̂ 37.065; range ± 4σ̂, widened for a
        // history of ten runs by 1 + 11 / 6: ± 420.07.
        assert_eq!(rows["expected"], 10_005.0);
        let half = 4.0 * 1.4826 * 25.0 * (1.0 + 11.0 / 6.0);
        assert!((rows["low"].as_f64().unwrap() - (10_005.0 - half)).abs() < 1e-6);
        assert!((rows["high"].as_f64().unwrap() - (10_005.0 + half)).abs() < 1e-6);
        assert_eq!(rows["runs"], 10);
        let text = app.metrics().await;
        assert_eq!(
            series(
                &text,
                r#"driftd_run_anomalous{dataset="train",name="rows_read"}"#
            ),
            Some(1.0),
            "{db:?}"
        );
        assert_eq!(
            series(
                &text,
                r#"driftd_run_anomalous{dataset="train",name="rows_dropped"}"#
            ),
            Some(0.0)
        );
        let alerts = app.get_json("/v1/alerts").await;
        let alert = alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["rule"] == "run_anomaly")
            .unwrap_or_else(|| panic!("{db:?}: no run_anomaly alert in {alerts}"))
            .clone();
        assert_eq!(alert["state"], "firing", "{alert}");
        let message = slack.wait_for(1, 10).await[0].1.to_string();
        assert!(message.contains("Anomalous run in train"), "{message}");
        assert!(
            message.contains(
                "rows_read = 1000 in run run-010; expected 9585 to 10425 (median 10005 of 10 earlier runs)"
            ),
            "{message}"
        );

        // Run 11 is normal again: judged against a baseline that leaves run 10 out, and the
        // alert resolves.
        let (_, answer) = post(&app, "train", run(11, json!({"rows_read": 10_010}))).await;
        let rows = &answer["judged"][0];
        assert_eq!(rows["verdict"], "normal", "{answer}");
        assert_eq!(rows["runs"], 10, "run 10 is not part of the baseline");
        let resolved = slack.wait_for(2, 10).await;
        assert!(
            resolved[1].1.to_string().contains("Resolved"),
            "{}",
            resolved[1].1
        );

        // Acknowledged, run 10 joins later baselines.
        let r = app
            .send_json(
                Method::POST,
                "/v1/datasets/train/runs/run-010/acknowledge",
                &json!({}),
            )
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Json>().await.unwrap()["acknowledged"], 1);
        let (_, answer) = post(&app, "train", run(12, json!({"rows_read": 10_000}))).await;
        assert_eq!(answer["judged"][0]["runs"], 12, "{answer}");
        assert_eq!(slack.received().len(), 2, "nothing more to say");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmapped_counters_and_parity_are_reported() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let rules = dir.path().join("rules.yaml");
        std::fs::write(
            &rules,
            "dataset: d\nparity:\n  ratios:\n    - {ratio: rows_dropped / rows_read, tolerance: 0.01, severity: error}\n",
        )
        .unwrap();
        let mut config = test_config(&url);
        config.rules = Some(rules);
        config.counter_unmapped_after = Duration::from_millis(500);
        let app = spawn_app(config).await;
        post(
            &app,
            "d",
            run(
                1,
                json!({"rows_read": 10_000, "rows_dropped": 100, "files_listed": 3}),
            ),
        )
        .await;
        post(
            &app,
            "d",
            json!({"stage": "online", "counters": {"rows_read": 2_000, "rows_dropped": 100, "cache_hits": 7}}),
        )
        .await;
        // Just seen: not unmapped yet.
        let listed = app.get_json("/v1/datasets/d/counters").await;
        assert!(
            listed["counters"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["unmapped"].is_null()),
            "{listed}"
        );
        tokio::time::sleep(Duration::from_millis(600)).await;
        let listed = app.get_json("/v1/datasets/d/counters").await;
        let unmapped = |name: &str| {
            listed["counters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == name)
                .unwrap()["unmapped"]
                .clone()
        };
        assert_eq!(unmapped("files_listed"), "offline_only", "{db:?}: {listed}");
        assert_eq!(unmapped("cache_hits"), "online_only");
        assert_eq!(unmapped("rows_read"), Json::Null);
        // 1 % dropped offline, 5 % online.
        let parity = &listed["parity"][0];
        assert_eq!(parity["ratio"], "rows_dropped / rows_read");
        assert_eq!(parity["offline"], 0.01);
        assert_eq!(parity["online"], 0.05);
        assert_eq!(parity["within_tolerance"], false);
        assert_eq!(listed["findings"][0]["severity"], "error");
        assert_eq!(listed["findings"][0]["check"], "counter_ratio_parity");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_counter_reports_are_refused_with_the_reason_and_counted() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let mut config = test_config(&url);
        config.max_counters = 3;
        let app = spawn_app(config).await;
        for (body, status, message) in [
            (
                json!({"stage": "offline", "counters": {"rows_read": 1}}),
                400,
                "offline counters need a run_id",
            ),
            (
                json!({"stage": "nearline", "counters": {"rows_read": 1}}),
                400,
                "stage: expected \"offline\" or \"online\", got a string \"nearline\"",
            ),
            (
                json!({"stage": "online", "counters": {"rows_read": -4}}),
                400,
                "counter \"rows_read\": expected a non-negative number, got -4",
            ),
            (
                json!({"stage": "online", "counters": {"rows_read": "many"}}),
                400,
                "counter \"rows_read\": expected a non-negative number, got a string \"many\"",
            ),
            (
                json!({"stage": "online", "counters": {"rows-read": 1}}),
                400,
                "counter \"rows-read\": names must match [a-zA-Z_][a-zA-Z0-9_]*",
            ),
            (
                json!({"stage": "online", "counters": {"a": 1, "b": 1, "c": 1}}),
                200,
                "",
            ),
            (
                json!({"stage": "online", "counters": {"a": 1, "d": 1}}),
                422,
                "dataset d has 3 counter names; 1 new ones (d) would pass max_counters (3)",
            ),
        ] {
            let (got, answer) = post(&app, "d", body.clone()).await;
            assert_eq!(got, status, "{db:?} {body}: {answer}");
            if status != 200 {
                let error = answer["error"].as_str().unwrap();
                assert!(error.starts_with(message), "{body}: {error}");
            }
        }
        let r = app
            .client
            .post(app.url("/v1/datasets/d/counters"))
            .header("content-type", "application/json")
            .body("{\"stage\": \"online\", \"counters\": {\"a\": 1}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let text = app.metrics().await;
        for (reason, n) in [
            ("missing_run_id", 1.0),
            ("unknown_stage", 1.0),
            ("invalid_value", 2.0),
            ("invalid_name", 1.0),
            ("counter_limit", 1.0),
            ("malformed", 1.0),
        ] {
            let line = format!("driftd_counter_reports_rejected_total{{reason=\"{reason}\"}}");
            assert_eq!(series(&text, &line), Some(n), "{db:?} {reason}\n{text}");
        }
        // Nothing refused was counted.
        assert_eq!(
            series(
                &text,
                r#"driftd_counter_total{dataset="d",name="rows_read",stage="online"}"#
            ),
            None
        );
        assert_eq!(
            series(
                &text,
                r#"driftd_counter_total{dataset="d",name="a",stage="online"}"#
            ),
            Some(1.0)
        );
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_profiles_become_run_metrics() {
    let dir = TempDir::new().unwrap();
    let url = fresh_database(Db::Sqlite, dir.path()).await.unwrap();
    let app = spawn_app(test_config(&url)).await;
    let body = crate::helpers::reference_profile(&dir);
    for attempt in 0..2 {
        let r = app
            .client
            .post(app.url(
                "/v1/datasets/s/profiles?stage=offline&run_id=r1&run_time=2026-11-02T06:00:00Z",
            ))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "attempt {attempt}");
    }
    let runs = app.get_json("/v1/datasets/s/runs").await;
    let run = &runs["runs"][0];
    assert_eq!(run["run_time_ms"], 1_793_599_200_000i64);
    let rows = run["metrics"]["profile.rows"].as_f64().unwrap();
    assert!(rows > 0.0, "{runs}");
    let text = app.metrics().await;
    assert_eq!(
        series(
            &text,
            r#"driftd_run_metric{dataset="s",name="profile.rows"}"#
        ),
        Some(rows)
    );
    // The upload was retried: the offline record count is the run's, not twice it.
    assert_eq!(
        series(
            &text,
            r#"driftd_records_total{dataset="s",stage="offline"}"#
        ),
        Some(rows)
    );
    assert!(
        run["metrics"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("profile.nulls_ratio.")),
        "{run}"
    );
    app.stop().await;
}
