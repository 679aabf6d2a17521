//! `driftd serve` end to end, on SQLite and on the real PostgreSQL: ingest, profile uploads,
//! references, continuous evaluation, restarts, limits and bad input.

use std::time::Duration;

use serde_json::{Value as Json, json};
use tempfile::TempDir;

use crate::helpers::{BOTH, Db, fresh_database, spawn_app, test_config, wait_for_json};

fn sample() -> String {
    format!(
        "{}/samples/search_ranking_inputs.csv",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The sample file's profile, as a pipeline step would upload it.
fn reference_profile(dir: &TempDir) -> Vec<u8> {
    let out = dir.path().join("ref.driftprof");
    let run = crate::helpers::driftd(&["profile", &sample(), "--out", out.to_str().unwrap()]);
    assert!(run.status.success());
    std::fs::read(out).unwrap()
}

const COUNTRIES: [&str; 3] = ["US", "DE", "XX"];

/// Online records: latency much slower, a new country, otherwise like the sample.
fn drifted_records(n: usize) -> Vec<Json> {
    (0..n)
        .map(|i| {
            json!({
                "latency_ms": 200.0 + (i % 50) as f64,
                "country": COUNTRIES[i % 3],
                "is_mobile": i % 2 == 0,
                "query_len": (i % 9 + 1) as f64,
                "position": (i % 50 + 1) as f64,
                "user_age": 18 + (i % 60) as i64,
            })
        })
        .collect()
}

async fn run_on(db: Db, test: impl AsyncFnOnce(&str, &TempDir)) {
    let dir = TempDir::new().unwrap();
    let Some(url) = fresh_database(db, dir.path()).await else {
        return;
    };
    test(&url, &dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_and_a_reference_become_a_verdict_that_survives_a_restart() {
    for db in BOTH {
        run_on(db, async |url, dir| {
            let app = spawn_app(test_config(url)).await;
            let created = app
                .client
                .post(app.url("/v1/datasets/search/profiles?run_id=train-1"))
                .body(reference_profile(dir))
                .send()
                .await
                .unwrap();
            assert_eq!(created.status(), 201, "{db:?}");
            let body: Json = created.json().await.unwrap();
            assert_eq!(body["rows"], 1000);

            let posted = app
                .client
                .post(app.url("/v1/datasets/search/records"))
                .json(&json!({"records": drifted_records(600), "labels": {"host": "h1"}}))
                .send()
                .await
                .unwrap();
            assert_eq!(posted.status(), 202);
            let body: Json = posted.json().await.unwrap();
            assert_eq!(body, json!({"accepted": 600, "rejected": 0}));

            let verdict = wait_for_json(&app.client, &app.url("/v1/datasets/search/drift"), 10, |v| {
                v["current"]["rows"].as_u64() == Some(600)
            })
            .await;
            let drifted: Vec<&str> = verdict["drifted"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
            assert!(drifted.contains(&"latency_ms") && drifted.contains(&"country"), "{db:?}: {verdict}");
            assert_eq!(verdict["reference"]["run_id"], "train-1");
            assert_eq!(verdict["features"]["latency_ms"]["method"], "psi");
            assert!(verdict["schema"].as_array().unwrap().iter().any(|f| f["check"] == "new_categories" && f["values"] == json!(["XX"])));

            let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
            assert_eq!(
                metrics.headers()["content-type"],
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            );
            let text = metrics.text().await.unwrap();
            for line in [
                "driftd_records_total{dataset=\"search\",stage=\"online\"} 600",
                "driftd_records_total{dataset=\"search\",stage=\"offline\"} 1000",
                "driftd_feature_drifted{dataset=\"search\",feature=\"latency_ms\"} 1",
                "driftd_feature_nulls_ratio{dataset=\"search\",feature=\"user_age\",stage=\"offline\"} 0.032",
            ] {
                assert!(text.contains(line), "{db:?}: {line} missing from\n{text}");
            }
            assert!(text.contains("driftd_feature_drift_score{dataset=\"search\",feature=\"latency_ms\",method=\"psi\"}"));
            assert!(text.ends_with("# EOF\n"));
            app.stop().await;

            // A restart reads the verdict back from the database.
            let mut config = test_config(url);
            config.eval_interval = Duration::from_secs(3600);
            let again = spawn_app(config).await;
            let r = again.client.get(again.url("/v1/datasets/search/drift")).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let stored: Json = r.json().await.unwrap();
            assert_eq!(stored["drifted"], verdict["drifted"], "{db:?}");
            again.stop().await;
        })
        .await;
    }
}
