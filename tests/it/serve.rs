//! `driftd serve` end to end, on SQLite and on the real PostgreSQL: ingest, profile uploads,
//! references, continuous evaluation, restarts, limits and bad input.

use std::time::Duration;

use serde_json::{Value as Json, json};
use tempfile::TempDir;

use crate::helpers::{
    BOTH, Db, fresh_database, reference_profile, spawn_app, test_config, wait_for_json,
};

const COUNTRIES: [&str; 3] = ["US", "DE", "XX"];

/// Online records: latency much slower, a new country, otherwise like the sample.
pub fn drifted_records(n: usize) -> Vec<Json> {
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

            let posted = app.send_json(reqwest::Method::POST, "/v1/datasets/search/records", &json!({"records": drifted_records(600), "labels": {"host": "h1"}})).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_precisely_and_counted() {
    for db in BOTH {
        run_on(db, async |url, _dir| {
            let mut config = test_config(url);
            config.max_body_bytes = 4096;
            config.max_features = 3;
            config.max_datasets = 2;
            let app = spawn_app(config).await;
            let post = |path: &str, content_type: &str, body: Vec<u8>| {
                app.client
                    .post(app.url(path))
                    .header("content-type", content_type)
                    .body(body)
                    .send()
            };
            let records = "/v1/datasets/d/records";

            let r = post(
                records,
                "application/json",
                b"{\"records\": [{\"a\": 1},\n {\"a\": }]}".to_vec(),
            )
            .await
            .unwrap();
            assert_eq!(r.status(), 400);
            let body: Json = r.json().await.unwrap();
            assert_eq!(
                body["error"], "invalid JSON at line 2, column 8: expected value",
                "{db:?}"
            );

            let r = post(records, "text/csv", b"a,b\n1,2\n".to_vec())
                .await
                .unwrap();
            assert_eq!(r.status(), 415);
            let r = app
                .client
                .post(app.url(records))
                .header("content-type", "application/json")
                .header("content-encoding", "br")
                .body("x")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 415);

            let r = post(records, "application/json", vec![b' '; 5000])
                .await
                .unwrap();
            assert_eq!(r.status(), 413);
            let body: Json = r.json().await.unwrap();
            assert_eq!(body["error"], "request body larger than 4096 bytes");

            let r = post(
                "/v1/datasets/d/records?stage=staging",
                "application/json",
                b"{\"records\": []}".to_vec(),
            )
            .await
            .unwrap();
            assert_eq!(r.status(), 400);
            assert!(
                r.text()
                    .await
                    .unwrap()
                    .contains("unknown stage \\\"staging\\\"")
            );
            let r = post(
                "/v1/datasets/d/records?stage=offline",
                "application/json",
                b"{\"records\": []}".to_vec(),
            )
            .await
            .unwrap();
            assert_eq!(r.status(), 400);
            let r = post(
                "/v1/datasets/bad%20name/records",
                "application/json",
                b"{\"records\": []}".to_vec(),
            )
            .await
            .unwrap();
            assert_eq!(r.status(), 400);
            let body: Json = r.json().await.unwrap();
            let wording =
                "dataset name \"bad name\" contains ' '; use letters, digits, '_', '-', '.' or ':'";
            assert_eq!(body["error"], wording);
            // Every route with a dataset in its path refuses it alike, before anything else.
            for path in [
                "/v1/datasets/bad%20name/drift",
                "/v1/datasets/bad%20name/runs",
            ] {
                let r = app.client.get(app.url(path)).send().await.unwrap();
                assert_eq!(r.status(), 400, "{path}");
                let body: Json = r.json().await.unwrap();
                assert_eq!(body["error"], wording, "{path}");
            }

            // Individually bad records are refused alone; wrong-typed values are profiled.
            let body =
                json!({"records": [{"a": 1}, [1, 2], {"a": "text"}, "x", {"a": null, "b": true}]});
            let r = post(
                records,
                "application/json",
                serde_json::to_vec(&body).unwrap(),
            )
            .await
            .unwrap();
            assert_eq!(r.status(), 202);
            let body: Json = r.json().await.unwrap();
            assert_eq!(body["accepted"], 3);
            assert_eq!(body["rejected"], 2);
            assert_eq!(
                body["errors"][0],
                json!({"index": 1, "reason": "expected a JSON object, found an array"})
            );
            assert_eq!(
                body["errors"][1],
                json!({"index": 3, "reason": "expected a JSON object, found a string"})
            );

            let ndjson = b"{\"a\": 2}\n{oops\n{\"a\": 3}\n".to_vec();
            let r = post(records, "application/x-ndjson", ndjson).await.unwrap();
            let body: Json = r.json().await.unwrap();
            assert_eq!(
                (body["accepted"].as_u64(), body["rejected"].as_u64()),
                (Some(2), Some(1))
            );
            assert_eq!(body["errors"][0]["index"], 2, "NDJSON errors name the line");

            // A flood of feature names: the first max_features are kept, the rest counted.
            let flood: Vec<Json> = (0..50).map(|i| json!({format!("f{i}"): i})).collect();
            let r = post(
                records,
                "application/json",
                serde_json::to_vec(&json!({"records": flood})).unwrap(),
            )
            .await
            .unwrap();
            let body: Json = r.json().await.unwrap();
            assert_eq!(body["accepted"], 50);
            assert_eq!(
                body["ignored_values"], 49,
                "a and b plus one new feature fit in 3: {body}"
            );
            assert_eq!(body["ignored_features"].as_array().unwrap().len(), 10);

            // Datasets beyond max_datasets are refused with a reason.
            assert_eq!(
                post(
                    "/v1/datasets/e/records",
                    "application/json",
                    b"{\"records\": [{\"a\": 1}]}".to_vec()
                )
                .await
                .unwrap()
                .status(),
                202
            );
            let r = post(
                "/v1/datasets/f/records",
                "application/json",
                b"{\"records\": [{\"a\": 1}]}".to_vec(),
            )
            .await
            .unwrap();
            assert_eq!(r.status(), 422);
            assert!(
                r.text()
                    .await
                    .unwrap()
                    .contains("dataset limit reached: driftd accepts 2 datasets")
            );

            let text = app.metrics().await;
            for line in [
                "driftd_ingest_dropped_total{reason=\"unsupported_media_type\"} 2",
                "driftd_ingest_dropped_total{reason=\"too_large\"} 1",
                "driftd_ingest_dropped_total{reason=\"invalid_record\"} 3",
                "driftd_ingest_dropped_total{reason=\"feature_limit\"} 49",
                "driftd_ingest_dropped_total{reason=\"dataset_limit\"} 1",
                "driftd_records_rejected_total{dataset=\"d\",stage=\"online\"} 3",
            ] {
                assert!(text.contains(line), "{db:?}: {line} missing from\n{text}");
            }
            app.stop().await;
        })
        .await;
    }
}

/// A full queue — by batches or by bytes — answers 429 with Retry-After, counts it and keeps
/// nothing of the refused batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_sheds_load_with_retry_after() {
    use std::sync::Arc;
    // (batches, bytes, batches accepted before the first 429). Nobody consumes the queue.
    // The body below is 22 bytes: a 60-byte budget holds two of them.
    for (capacity, bytes, accepted) in [(1usize, 1usize << 20, 1u64), (100, 60, 2)] {
        let dir = TempDir::new().unwrap();
        let config = test_config(&fresh_database(Db::Sqlite, dir.path()).await.unwrap());
        let store = driftd::store::Store::connect(&config.database_url)
            .await
            .unwrap();
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = driftd::serve::metrics::Metrics::register(&mut registry);
        let (queue, _receiver) = tokio::sync::mpsc::channel(capacity);
        let admission = driftd::serve::admission::Admission::new(
            queue,
            bytes,
            Default::default(),
            (config.max_datasets, config.max_features),
            metrics.ingest.clone(),
        );
        let runs = driftd::serve::runs::Runs::new(
            Default::default(),
            driftd::alert::engine::Alerting::from_config(&config),
        );
        let (leadership, _) = driftd::serve::leader::start(
            store.clone(),
            "w".into(),
            config.leader_lease_ttl,
            metrics.leader.clone(),
        )
        .await;
        let state = driftd::serve::api::AppState {
            leadership,
            store,
            metrics,
            registry: Arc::new(registry),
            admission: Arc::new(admission),
            offline: Arc::new(driftd::serve::offline::Offline::new(
                runs,
                config.metrics_max_features,
            )),
            tokens: Arc::new(config.tokens()),
            config: Arc::new(config),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, driftd::serve::api::router(state)).await });
        let client = reqwest::Client::new();
        let url = format!("http://{address}/v1/datasets/d/records");
        let send = || {
            client
                .post(&url)
                .header("content-type", "application/json")
                .body(r#"{"records":[{"a":1}]}"#)
                .send()
        };
        for _ in 0..accepted {
            assert_eq!(send().await.unwrap().status(), 202);
        }
        let r = send().await.unwrap();
        assert_eq!(r.status(), 429, "capacity {capacity}, bytes {bytes}");
        assert_eq!(r.headers()["retry-after"], "1");
        let text = client
            .get(format!("http://{address}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            text.contains("driftd_ingest_dropped_total{reason=\"queue_full\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "driftd_records_total{{dataset=\"d\",stage=\"online\"}} {accepted}\n"
            )),
            "the refused batch is not counted: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_runs_fold_records_and_parts_and_references_can_be_pinned() {
    for db in BOTH {
        run_on(db, async |url, dir| {
            let app = spawn_app(test_config(url)).await;
            let profile = reference_profile(dir);
            // Two parts of run r1 and a retried upload of part "a": parts merge, retries replace.
            for part in ["a", "b", "a"] {
                let r = app
                    .client
                    .post(app.url(&format!(
                        "/v1/datasets/search/profiles?run_id=r1&part={part}"
                    )))
                    .body(profile.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201, "{db:?}");
            }
            // Offline records of run r2 fold per run.
            for _ in 0..2 {
                let r = app
                    .send_json(
                        reqwest::Method::POST,
                        "/v1/datasets/search/records?stage=offline&run_id=r2",
                        &json!({"records": drifted_records(100)}),
                    )
                    .await;
                assert_eq!(r.status(), 202);
            }
            let reference = wait_for_json(
                &app.client,
                &app.url("/v1/datasets/search/reference"),
                10,
                |v| v["run_id"] == "r2",
            )
            .await;
            assert_eq!(
                reference["pinned"], false,
                "the latest run is the reference"
            );

            let r = app
                .send_json(
                    reqwest::Method::PUT,
                    "/v1/datasets/search/reference",
                    &json!({"run_id": "nope"}),
                )
                .await;
            assert_eq!(r.status(), 404);
            let r = app
                .send_json(
                    reqwest::Method::PUT,
                    "/v1/datasets/search/reference",
                    &json!({"run_id": "r1"}),
                )
                .await;
            assert_eq!(r.status(), 200);
            let reference: Json = app.get_json("/v1/datasets/search/reference").await;
            assert_eq!(
                reference,
                json!({"dataset": "search", "run_id": "r1", "pinned": true})
            );

            let r = app
                .send_json(
                    reqwest::Method::POST,
                    "/v1/datasets/search/records",
                    &json!({"records": drifted_records(300)}),
                )
                .await;
            assert_eq!(r.status(), 202);
            let verdict = wait_for_json(
                &app.client,
                &app.url("/v1/datasets/search/drift"),
                10,
                |v| v["current"]["rows"] == 300,
            )
            .await;
            assert_eq!(verdict["reference"]["run_id"], "r1");
            assert_eq!(
                verdict["reference"]["rows"], 2000,
                "{db:?}: two parts of 1,000 rows, the retry replaced"
            );

            let r = app
                .client
                .delete(app.url("/v1/datasets/search/reference"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204);
            let reference: Json = app.get_json("/v1/datasets/search/reference").await;
            assert_eq!(reference["run_id"], "r2");

            let r = app
                .client
                .post(app.url("/v1/datasets/search/profiles?run_id=r3"))
                .body(b"not a profile".to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400);
            assert!(
                r.text()
                    .await
                    .unwrap()
                    .contains("not a readable profile file: not a driftd profile file")
            );
            let r = app
                .client
                .post(app.url("/v1/datasets/search/profiles"))
                .body(profile.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "an offline profile needs a run id");
            app.stop().await;
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_persist_roll_up_and_expire() {
    for db in BOTH {
        run_on(db, async |url, _dir| {
            let mut config = test_config(url);
            config.window = Duration::from_millis(300);
            config.rollup = Duration::from_secs(3600);
            let app = spawn_app(config).await;
            for _ in 0..3 {
                let r = app
                    .send_json(
                        reqwest::Method::POST,
                        "/v1/datasets/w/records",
                        &json!({"records": drifted_records(10)}),
                    )
                    .await;
                assert_eq!(r.status(), 202);
                tokio::time::sleep(Duration::from_millis(350)).await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            app.stop().await;
            let store = driftd::store::Store::connect(&driftd::config::Secret::new(url))
                .await
                .unwrap();
            let windows = store.count("w", driftd::store::Kind::Window).await.unwrap();
            assert!(windows >= 3, "{db:?}: {windows} windows");
            assert!(store.count("w", driftd::store::Kind::Rollup).await.unwrap() >= 1);
            let all = store.recent_windows("w", 0).await.unwrap().unwrap();
            assert_eq!(all.rows, 30, "{db:?}: every record is in a stored window");
            // Expiry removes what is older than the retention.
            let removed = store.expire(i64::MAX, 0).await.unwrap();
            assert!(removed >= 3);
            assert_eq!(
                store.count("w", driftd::store::Kind::Window).await.unwrap(),
                0
            );
            store.close().await;
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness() {
    for db in BOTH {
        health_and_readiness_on(db).await;
    }
}

async fn health_and_readiness_on(db: Db) {
    let dir = TempDir::new().unwrap();
    let Some(url) = fresh_database(db, dir.path()).await else {
        return;
    };
    let app = spawn_app(test_config(&url)).await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ready: serde_json::Value = r.json().await.unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    // One process on its own database leads.
    assert_eq!(ready["leader"]["this_replica"], true, "{ready}");
    assert_eq!(ready["leader"]["term"], 1, "{ready}");
    assert!(
        ready["leader"]["holder"]
            .as_str()
            .unwrap()
            .starts_with("w-"),
        "{ready}"
    );
    let r = app
        .client
        .get(app.url("/v1/datasets/none/drift"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    app.stop().await;
}

/// The real binary: SIGTERM stops intake, flushes the open window and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_open_windows_and_exits_0() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        // Nothing is flushed before shutdown: what is stored afterwards came from the flush on exit.
        let (mut child, base) = spawn_binary(
            &url,
            &[
                ("DRIFTD_WINDOW", "1h"),
                ("DRIFTD_ROLLUP", "2h"),
                ("DRIFTD_FLUSH_INTERVAL", "1h"),
            ],
            std::process::Stdio::piped(),
        )
        .await;
        let client = reqwest::Client::new();
        let r = client
            .post(format!("{base}/v1/datasets/t/records"))
            .json(&json!({"records": drifted_records(250)}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);

        let pid = child.id().unwrap().to_string();
        let kill = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(kill.success());
        let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
            .await
            .expect("exits within the grace period")
            .unwrap();
        assert_eq!(status.code(), Some(0), "{db:?}");
        let mut logs = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut logs)
            .await
            .unwrap();
        for line in logs.lines() {
            let event: Json = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
            assert!(event["message"].is_string() && event["level"].is_string());
        }
        assert!(
            logs.contains("\"message\":\"Open windows flushed\",\"windows\":1"),
            "{logs}"
        );
        assert!(
            !logs.contains("postgres://postgres@"),
            "the database URL stays out of logs"
        );

        let store = driftd::store::Store::connect(&driftd::config::Secret::new(&*url))
            .await
            .unwrap();
        let stored = store
            .recent_windows("t", 0)
            .await
            .unwrap()
            .expect("the open window was flushed");
        assert_eq!(stored.rows, 250, "{db:?}");
        store.close().await;
    }
}

/// `kill -9` loses at most the last `flush_interval` of an open window: records accepted longer
/// ago than that are in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_at_most_the_flush_interval() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let (mut child, base) = spawn_binary(
            &url,
            &[
                ("DRIFTD_WINDOW", "1h"),
                ("DRIFTD_ROLLUP", "2h"),
                ("DRIFTD_FLUSH_INTERVAL", "200ms"),
            ],
            std::process::Stdio::null(),
        )
        .await;
        let client = reqwest::Client::new();
        for _ in 0..4 {
            let r = client
                .post(format!("{base}/v1/datasets/k/records"))
                .json(&json!({"records": drifted_records(50)}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
        }
        // Longer than the flush interval, then SIGKILL: no chance to flush on the way out.
        tokio::time::sleep(Duration::from_millis(700)).await;
        child.start_kill().unwrap();
        let status = child.wait().await.unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
        let store = driftd::store::Store::connect(&driftd::config::Secret::new(&*url))
            .await
            .unwrap();
        let stored = store
            .recent_windows("k", 0)
            .await
            .unwrap()
            .expect("flushed before the kill");
        assert_eq!(stored.rows, 200, "{db:?}");
        store.close().await;
    }
}

/// Starts the `driftd serve` binary on a free port with `env` added, and waits until it is
/// ready. Returns the child and its base URL.
pub async fn spawn_binary(
    database_url: &str,
    env: &[(&str, &str)],
    stderr: std::process::Stdio,
) -> (tokio::process::Child, String) {
    let (child, base) = start_binary(database_url, env, stderr);
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return (child, base);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("driftd did not become ready on {base}");
}

/// Starts the `driftd serve` binary on a free port with `env` added, without waiting for it.
pub fn start_binary(
    database_url: &str,
    env: &[(&str, &str)],
    stderr: std::process::Stdio,
) -> (tokio::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_driftd"));
    // The daemon sees only the DRIFTD_* settings the test gives it, not the test runner's
    // (DRIFTD_PROMETHEUS and the like, which it would warn about).
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("DRIFTD_")) {
        command.env_remove(name);
    }
    let child = command
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            database_url,
        ])
        .envs(env.iter().copied())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    (child, format!("http://127.0.0.1:{port}"))
}

/// No recent traffic, no verdict: drift series are withdrawn instead of showing their last value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_series_are_withdrawn_when_traffic_stops() {
    for db in BOTH {
        drift_series_are_withdrawn_when_traffic_stops_on(db).await;
    }
}

/// Dataset `search`: offline run `r1` from the sample, then 300 drifted online records.
pub async fn reference_then_drift(app: &crate::helpers::TestApp, dir: &TempDir) {
    let r = app
        .client
        .post(app.url("/v1/datasets/search/profiles?run_id=r1"))
        .body(reference_profile(dir))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = app
        .send_json(
            reqwest::Method::POST,
            "/v1/datasets/search/records",
            &json!({"records": drifted_records(300)}),
        )
        .await;
    assert_eq!(r.status(), 202);
}

async fn drift_series_are_withdrawn_when_traffic_stops_on(db: Db) {
    let dir = TempDir::new().unwrap();
    let Some(url) = fresh_database(db, dir.path()).await else {
        return;
    };
    let mut config = test_config(&url);
    config.window = Duration::from_millis(400);
    let app = spawn_app(config).await;
    reference_then_drift(&app, &dir).await;
    let metrics = || async { app.metrics().await };
    let mut seen = false;
    for _ in 0..40 {
        if metrics()
            .await
            .contains("driftd_feature_drifted{dataset=\"search\",feature=\"latency_ms\"} 1")
        {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen, "drift was exported while traffic flowed");
    // Two windows later nothing recent is left.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let text = metrics().await;
    assert!(!text.contains("driftd_feature_drifted{"), "{text}");
    assert!(!text.contains("driftd_feature_drift_score{"), "{text}");
    assert!(!text.contains("stage=\"online\"} 0"), "{text}");
    assert!(
        text.contains("driftd_dataset_drifted_features{dataset=\"search\"} 0"),
        "{text}"
    );
    assert!(text.contains("driftd_feature_nulls_ratio{dataset=\"search\",feature=\"user_age\",stage=\"offline\"} 0.032"), "{text}");
    app.stop().await;
}
