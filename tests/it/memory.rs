//! The memory budget (`max_memory`): open windows of high-cardinality features fill it, new data
//! is then refused with 503 and counted instead of the process growing, and ingest resumes by
//! itself once the windows close — nothing answered 202 is lost.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::{BOTH, TestApp, fresh_database, spawn_app, test_config};

const LIMIT: usize = 3 << 20;
const FEATURES: usize = 200;
const RECORDS: usize = 100;

/// `RECORDS` records of `FEATURES` string features, every value new (ids, free text).
fn batch(n: usize) -> Value {
    let records: Vec<Value> = (0..RECORDS)
        .map(|r| {
            let record: serde_json::Map<String, Value> = (0..FEATURES)
                .map(|f| (format!("f{f:03}"), json!(format!("v{n}-{r}-{f}-abcdefgh"))))
                .collect();
            Value::Object(record)
        })
        .collect();
    json!({ "records": records })
}

async fn post(app: &TestApp, dataset: &str, n: usize) -> reqwest::Response {
    let path = format!("/v1/datasets/{dataset}/records?stage=online");
    app.send_json(Method::POST, path, &batch(n)).await
}

/// Posts batches to new datasets until one is refused; returns the records accepted.
async fn fill(app: &TestApp, db: impl std::fmt::Debug) -> (u64, reqwest::Response) {
    let mut accepted = 0;
    for n in 0..40 {
        let r = post(app, &format!("d{}", n % 4), n).await;
        if r.status() != 202 {
            return (accepted, r);
        }
        accepted += RECORDS as u64;
    }
    panic!(
        "{db:?}: 40 batches of {FEATURES} high-cardinality features stayed within {LIMIT} bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_memory_budget_sheds_new_data_and_ingest_resumes_when_windows_close() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let mut config = test_config(&url);
        config.max_memory = LIMIT;
        let app = spawn_app(config).await;
        assert_eq!(
            app.metric("driftd_memory_limit_bytes").await,
            Some(LIMIT as f64)
        );

        let (accepted, refused) = fill(&app, db).await;
        assert!(accepted >= RECORDS as u64, "{db:?}: the first batch fits");
        assert_eq!(refused.status(), 503, "{db:?}");
        assert!(refused.headers().contains_key("retry-after"), "{db:?}");
        let text = refused.text().await.unwrap();
        // What windows and queue held at the refusal: past the limit with the last batch
        // accepted, by at most what one batch of FEATURES features can add (a full
        // frequent-items map each, ~36 KiB).
        let used: usize = text
            .split(" hold ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{db:?}: {text}"));
        assert!(
            (LIMIT..=LIMIT + FEATURES * 40 * 1024).contains(&used),
            "{db:?}: {used} held"
        );
        assert!(
            text.contains("memory budget reached") && text.contains(&format!("max_memory {LIMIT}")),
            "{db:?}: {text}"
        );
        let shed = app
            .metric("driftd_ingest_dropped_total{reason=\"memory_limit\"}")
            .await;
        assert!(shed >= Some(1.0), "{db:?}: {shed:?}");
        // The gauge never shows more (a window may have closed since, showing less).
        let held = app
            .metric("driftd_memory_open_windows_bytes")
            .await
            .unwrap();
        assert!(
            held <= (LIMIT + FEATURES * 40 * 1024) as f64,
            "{db:?}: open windows hold {held}"
        );

        // The windows close (1.5 s) and are written: the budget is free again.
        let start = Instant::now();
        let resumed = loop {
            let r = post(&app, "d0", 1000).await;
            if r.status() == 202 {
                break start.elapsed();
            }
            assert_eq!(r.status(), 503, "{db:?}");
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{db:?}: still refused"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert!(
            resumed < Duration::from_secs(5),
            "{db:?}: resumed after {resumed:?}"
        );
        let counted = wait_for_records(&app, accepted + RECORDS as u64).await;
        assert_eq!(
            counted,
            accepted + RECORDS as u64,
            "{db:?}: accepted records lost"
        );
        app.stop().await;
    }
}

/// The online records stored for every dataset (`GET /v1/datasets`), once they reach `want`
/// (or after 5 s).
async fn wait_for_records(app: &TestApp, want: u64) -> u64 {
    let mut total = 0;
    for _ in 0..50 {
        let v = app.get_json("/v1/datasets").await;
        total = v["datasets"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["records"]["online"].as_u64())
            .sum();
        if total >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    total
}
