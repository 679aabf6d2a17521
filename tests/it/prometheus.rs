//! A real Prometheus server scrapes `driftd serve`'s `/metrics` (OpenMetrics) and the values
//! are read back through Prometheus's HTTP API. The binary comes from `DRIFTD_PROMETHEUS`, else
//! `prometheus` on the PATH (`scripts/test.sh` installs the Debian package); without it the test
//! is skipped, except under `CI=true`, where it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use tempfile::TempDir;

use crate::helpers::{
    Db, fresh_database, reference_profile, spawn_app, test_config, wait_for_json,
};
use crate::serve::drifted_records;

const JOB: &str = "driftd";

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The Prometheus binary: `DRIFTD_PROMETHEUS` if set, else `prometheus` on the PATH.
fn prometheus_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("DRIFTD_PROMETHEUS").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "DRIFTD_PROMETHEUS={} is not a file",
            path.display()
        );
        return Some(path);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join("prometheus"))
        .find(|p| p.is_file())
}

/// A running Prometheus server, killed when dropped (also when the test panics).
struct Prometheus {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Prometheus {
    fn start(binary: &Path, dir: &Path, target: &str) -> Prometheus {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: {JOB}\n    scrape_interval: 1s\n    \
                 scrape_timeout: 1s\n    metrics_path: /metrics\n    static_configs:\n      \
                 - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("prometheus.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics, with Prometheus's log, if the server has exited.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("prometheus exited ({status}):\n{}", self.log());
        }
    }

    /// `GET /api/v1/<path>`: the `data` of a successful answer, else why not.
    async fn api(
        &self,
        client: &reqwest::Client,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Json, String> {
        let r = client
            .get(format!("{}/api/v1/{path}", self.base))
            .query(query)
            .send()
            .await
            .map_err(|e| format!("{path}: {e}"))?;
        let status = r.status();
        let body: Json = r.json().await.map_err(|e| format!("{path}: {e}"))?;
        if !status.is_success() || body["status"] != "success" {
            return Err(format!("{path} {query:?}: {status} {body}"));
        }
        Ok(body["data"].clone())
    }

    /// An instant query: each series' labels and value.
    async fn query(
        &self,
        client: &reqwest::Client,
        promql: &str,
    ) -> Result<Vec<(Json, f64)>, String> {
        let data = self.api(client, "query", &[("query", promql)]).await?;
        assert_eq!(data["resultType"], "vector", "{promql}: {data}");
        Ok(data["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let value = s["value"][1].as_str().unwrap();
                (s["metric"].clone(), value.parse::<f64>().unwrap())
            })
            .collect())
    }

    /// The value of the one series `promql` selects.
    async fn single(&self, client: &reqwest::Client, promql: &str) -> Result<f64, String> {
        match self.query(client, promql).await?.as_slice() {
            [(_, v)] => Ok(*v),
            other => Err(format!("{promql}: expected one series, got {other:?}")),
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything the test expects Prometheus to have stored; `Err` says what is not there yet.
async fn check(prom: &Prometheus, client: &reqwest::Client, target: &str) -> Result<(), String> {
    let expect = async |promql: &str, want: f64| -> Result<(), String> {
        let got = prom.single(client, promql).await?;
        if (got - want).abs() > 1e-9 {
            return Err(format!("{promql} = {got}, expected {want}"));
        }
        Ok(())
    };
    expect(&format!("up{{job=\"{JOB}\"}}"), 1.0).await?;
    expect(
        "driftd_records_total{dataset=\"search\",stage=\"online\"}",
        600.0,
    )
    .await?;
    expect("driftd_records_total{stage=\"offline\"}", 1000.0).await?;
    expect("driftd_feature_drifted{feature=\"latency_ms\"}", 1.0).await?;
    expect(
        "driftd_feature_nulls_ratio{dataset=\"search\",feature=\"user_age\",stage=\"offline\"}",
        0.032,
    )
    .await?;

    let scores = prom
        .query(
            client,
            "driftd_feature_drift_score{dataset=\"search\",feature=\"latency_ms\"}",
        )
        .await?;
    match scores.as_slice() {
        [(labels, score)] if labels["method"] == "psi" && *score > 0.2 => {}
        other => return Err(format!("latency_ms drift score: {other:?}")),
    }
    // The histogram made it through too.
    let evaluations = prom
        .single(client, "driftd_evaluation_duration_seconds_count")
        .await?;
    if evaluations < 1.0 {
        return Err(format!("{evaluations} evaluations recorded"));
    }
    prom.single(client, "driftd_ingest_queue_depth").await?;

    // The target's last scrape parsed without error.
    let targets = prom.api(client, "targets", &[("state", "active")]).await?;
    let active = targets["activeTargets"].as_array().unwrap();
    let ours: Vec<&Json> = active
        .iter()
        .filter(|t| t["labels"]["job"] == JOB)
        .collect();
    match ours.as_slice() {
        [t] if t["health"] == "up"
            && t["lastError"] == ""
            && t["scrapeUrl"] == format!("http://{target}/metrics") =>
        {
            Ok(())
        }
        other => Err(format!("targets: {other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_and_stores_the_metrics() {
    let Some(binary) = prometheus_binary() else {
        assert!(
            !under_ci(),
            "Prometheus is required under CI=true: set DRIFTD_PROMETHEUS or put `prometheus` \
             on the PATH (scripts/test.sh installs the Debian package)"
        );
        eprintln!("skipping the Prometheus scrape test: no `prometheus` binary on the PATH");
        return;
    };

    let dir = TempDir::new().unwrap();
    let url = fresh_database(Db::Sqlite, dir.path()).await.unwrap();
    // A window longer than the test: the records stay "recent" until Prometheus, which takes a
    // few seconds to start scraping, has seen the verdict (without recent data it is withdrawn).
    let mut config = test_config(&url);
    config.window = Duration::from_secs(120);
    config.rollup = Duration::from_secs(3600);
    let app = spawn_app(config).await;

    let created = app
        .client
        .post(app.url("/v1/datasets/search/profiles?run_id=train-1"))
        .body(reference_profile(&dir))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let posted = app
        .send_json(
            reqwest::Method::POST,
            "/v1/datasets/search/records",
            &json!({"records": drifted_records(600), "labels": {"host": "h1"}}),
        )
        .await;
    assert_eq!(posted.status(), 202);
    let body: Json = posted.json().await.unwrap();
    assert_eq!(body, json!({"accepted": 600, "rejected": 0}));
    // Evaluated once: the drift figures are in /metrics before Prometheus looks.
    wait_for_json(
        &app.client,
        &app.url("/v1/datasets/search/drift"),
        10,
        |v| v["current"]["rows"].as_u64() == Some(600),
    )
    .await;

    let mut prom = Prometheus::start(&binary, dir.path(), &app.address);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(30);
    loop {
        prom.assert_running();
        match check(&prom, &client, &app.address).await {
            Ok(()) => break,
            Err(why) if Instant::now() >= deadline => {
                let metrics = app
                    .client
                    .get(app.url("/metrics"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                panic!(
                    "Prometheus did not have the expected values after 30 s: {why}\n\
                     --- /metrics\n{metrics}--- prometheus log\n{}",
                    prom.log()
                );
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    eprintln!(
        "Prometheus had every expected value after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    drop(prom);
    app.stop().await;
}
