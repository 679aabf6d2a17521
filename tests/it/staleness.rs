//! When a dataset's online traffic stops, `/drift`, `/metrics` and `/v1/alerts` tell one story:
//! the verdict is stale (with its age and why), the drift series are withdrawn and
//! `driftd_dataset_stale` is 1, pending alerts are dropped and firing ones stay, marked stale.
//! On SQLite and the real PostgreSQL.

use std::time::Duration;

use serde_json::{Value as Json, json};
use tempfile::TempDir;

use crate::helpers::{BOTH, Db, fresh_database, spawn_app, test_config};
use crate::serve::{drifted_records, reference_then_drift};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_verdict_tells_one_story_everywhere() {
    for db in BOTH {
        a_stale_verdict_tells_one_story_everywhere_on(db).await;
    }
}

/// Polls `check` every 50 ms for up to `seconds`; the last value it saw when it never passed.
async fn eventually<T>(seconds: u64, mut check: impl AsyncFnMut() -> (bool, T)) -> (bool, T) {
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        let (done, seen) = check().await;
        if done || std::time::Instant::now() > deadline {
            return (done, seen);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn alert<'a>(alerts: &'a Json, rule: &str) -> Option<&'a Json> {
    alerts["alerts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["rule"] == rule))
}

async fn a_stale_verdict_tells_one_story_everywhere_on(db: Db) {
    let dir = TempDir::new().unwrap();
    let Some(url) = fresh_database(db, dir.path()).await else {
        return;
    };
    // One drift alert that fires at once and one that would wait an hour.
    let rules = dir.path().join("alerts.yaml");
    std::fs::write(
        &rules,
        "dataset: search\nalerts:\n  - name: drift_now\n    when: drift\n    for: 0s\n  - name: drift_later\n    when: drift\n    for: 1h\n",
    )
    .unwrap();
    let mut config = test_config(&url);
    config.window = Duration::from_millis(400);
    config.rules = Some(rules);
    let app = spawn_app(config).await;
    reference_then_drift(&app, &dir).await;

    // While traffic flows: a fresh verdict, one alert firing and one pending.
    let (fresh, alerts) = eventually(10, async || {
        let alerts = app.get_json("/v1/alerts").await;
        let states = (
            alert(&alerts, "drift_now").map(|a| a["state"].clone()),
            alert(&alerts, "drift_later").map(|a| a["state"].clone()),
        );
        (
            states == (Some(json!("firing")), Some(json!("pending"))),
            alerts,
        )
    })
    .await;
    assert!(fresh, "{db:?}: {alerts}");
    assert_eq!(
        alert(&alerts, "drift_now").unwrap()["stale"],
        false,
        "{db:?}"
    );
    let verdict = app.get_json("/v1/datasets/search/drift").await;
    assert_eq!(verdict["stale"], false, "{db:?}: {verdict}");
    assert!(
        verdict["age_seconds"].as_f64().unwrap() < 5.0,
        "{db:?}: {verdict}"
    );
    assert!(
        !verdict["drifted"].as_array().unwrap().is_empty(),
        "{db:?}: {verdict}"
    );
    assert_eq!(
        app.metric("driftd_dataset_stale{dataset=\"search\"}").await,
        Some(0.0)
    );

    // Traffic stops: two windows later, every surface says stale.
    let (stale, verdict) = eventually(10, async || {
        let verdict = app.get_json("/v1/datasets/search/drift").await;
        (verdict["stale"] == true, verdict)
    })
    .await;
    assert!(stale, "{db:?}: {verdict}");
    assert_eq!(
        verdict["stale_reason"], "no online data in the last 800ms (two windows)",
        "{db:?}"
    );
    assert!(
        !verdict["drifted"].as_array().unwrap().is_empty(),
        "the last verdict still stands: {verdict}"
    );
    let since = verdict["stale_since_ms"].as_i64().unwrap();
    assert!(
        since >= verdict["evaluated_at_ms"].as_i64().unwrap(),
        "{verdict}"
    );
    let text = app.metrics().await;
    assert!(
        text.contains("driftd_dataset_stale{dataset=\"search\"} 1"),
        "{db:?}: {text}"
    );
    assert!(!text.contains("driftd_feature_drifted{"), "{db:?}: {text}");
    let alerts = app.get_json("/v1/alerts").await;
    assert!(
        alert(&alerts, "drift_later").is_none(),
        "pending dropped: {alerts}"
    );
    let firing = alert(&alerts, "drift_now").expect("firing alert kept");
    assert_eq!(
        (&firing["state"], &firing["stale"]),
        (&json!("firing"), &json!(true))
    );

    // The verdict ages while nothing renews it; marking it stale happened once.
    let age = verdict["age_seconds"].as_f64().unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let later = app.get_json("/v1/datasets/search/drift").await;
    assert!(
        later["age_seconds"].as_f64().unwrap() >= age + 0.5,
        "{later}"
    );
    assert_eq!(later["stale_since_ms"], since, "{db:?}");
    assert_eq!(
        later["evaluated_at_ms"], verdict["evaluated_at_ms"],
        "{db:?}"
    );

    // Traffic returns: fresh again everywhere.
    let r = app
        .send_json(
            reqwest::Method::POST,
            "/v1/datasets/search/records",
            &json!({"records": drifted_records(300)}),
        )
        .await;
    assert_eq!(r.status(), 202);
    let (fresh, verdict) = eventually(10, async || {
        let verdict = app.get_json("/v1/datasets/search/drift").await;
        (verdict["stale"] == false, verdict)
    })
    .await;
    assert!(fresh, "{db:?}: {verdict}");
    assert!(verdict.get("stale_since_ms").is_none(), "{verdict}");
    assert_eq!(
        app.metric("driftd_dataset_stale{dataset=\"search\"}").await,
        Some(0.0)
    );
    let alerts = app.get_json("/v1/alerts").await;
    assert_eq!(
        alert(&alerts, "drift_now").unwrap()["stale"],
        false,
        "{alerts}"
    );
    app.stop().await;
}
