//! A real Prometheus server for the tests that check what Prometheus and Grafana make of
//! driftd's metrics: started against a live `driftd serve`, killed when dropped. The binaries come
//! from `DRIFTD_PROMETHEUS` (and `DRIFTD_PROMTOOL`), else `prometheus` (`promtool`) on the PATH;
//! `scripts/test.sh` installs Debian's `prometheus` package, which ships both. Without them the
//! tests are skipped, except under `CI=true`, where they fail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use tempfile::TempDir;

use crate::helpers::{Db, TestApp, fresh_database, reference_profile, spawn_app, test_config};
use crate::serve::drifted_records;

/// The scrape job's name: `rules/prometheus/driftd.rules.yml` expects driftd under this one.
pub const JOB: &str = "driftd";

pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `name` from the environment variable `var` if set, else from the PATH.
fn binary(var: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "{var}={} is not a file", path.display());
        return Some(path);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The binary `name` (`prometheus`, `promtool`) for the test `what`; `None` (the test should
/// return) when it is missing outside CI.
pub fn required(var: &str, name: &str, what: &str) -> Option<PathBuf> {
    let found = binary(var, name);
    if found.is_none() {
        assert!(
            !under_ci(),
            "`{name}` is required under CI=true: set {var} or put `{name}` on the PATH \
             (scripts/test.sh installs Debian's prometheus package)"
        );
        eprintln!("skipping {what}: no `{name}` binary on the PATH");
    }
    found
}

pub fn prometheus_binary(what: &str) -> Option<PathBuf> {
    required("DRIFTD_PROMETHEUS", "prometheus", what)
}

pub fn promtool_binary(what: &str) -> Option<PathBuf> {
    required("DRIFTD_PROMTOOL", "promtool", what)
}

/// A running Prometheus server, killed when dropped (also when the test panics).
pub struct Prometheus {
    child: Child,
    base: String,
    log: PathBuf,
    client: reqwest::Client,
}

impl Prometheus {
    /// Scrapes `target` (host:port) every second under job [`JOB`], evaluating `rule_files`
    /// every second too.
    pub fn start(binary: &Path, dir: &Path, target: &str, rule_files: &[&Path]) -> Prometheus {
        let config = dir.join("prometheus.yml");
        let rules: String = rule_files
            .iter()
            .map(|f| format!("  - '{}'\n", f.display()))
            .collect();
        let rules = if rules.is_empty() {
            String::new()
        } else {
            format!("rule_files:\n{rules}")
        };
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 {rules}\
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
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics, with Prometheus's log, if the server has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("prometheus exited ({status}):\n{}", self.log());
        }
    }

    /// `GET /api/v1/<path>`: the `data` of a successful answer, else why not.
    pub async fn api(&self, path: &str, query: &[(&str, &str)]) -> Result<Json, ApiError> {
        let r = self
            .client
            .get(format!("{}/api/v1/{path}", self.base))
            .query(query)
            .send()
            .await
            .map_err(|e| ApiError::Unavailable(format!("{path}: {e}")))?;
        let status = r.status();
        let body: Json = r
            .json()
            .await
            .map_err(|e| ApiError::Unavailable(format!("{path}: {e}")))?;
        if body["status"] == "success" && status.is_success() {
            return Ok(body["data"].clone());
        }
        // bad_data: Prometheus did not accept the query (it does not parse, or is not valid).
        let why = format!("{path} {query:?}: {status} {body}");
        Err(if body["errorType"] == "bad_data" {
            ApiError::Rejected(why)
        } else {
            ApiError::Unavailable(why)
        })
    }

    /// An instant query: each series' labels and value (a scalar answer is one unlabelled
    /// series).
    pub async fn query(&self, promql: &str) -> Result<Vec<(Json, f64)>, ApiError> {
        let data = self.api("query", &[("query", promql)]).await?;
        let number = |v: &Json| v.as_str().unwrap().parse::<f64>().unwrap();
        match data["resultType"].as_str() {
            Some("vector") => Ok(data["result"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (s["metric"].clone(), number(&s["value"][1])))
                .collect()),
            Some("scalar") => Ok(vec![(Json::Null, number(&data["result"][1]))]),
            _ => Err(ApiError::Rejected(format!(
                "{promql}: expected a vector, got {data}"
            ))),
        }
    }

    /// The value of the one series `promql` selects.
    pub async fn single(&self, promql: &str) -> Result<f64, String> {
        match self
            .query(promql)
            .await
            .map_err(|e| e.to_string())?
            .as_slice()
        {
            [(_, v)] => Ok(*v),
            other => Err(format!("{promql}: expected one series, got {other:?}")),
        }
    }

    /// Runs `check` until it returns `Ok`, for up to `seconds`; then panics with its last
    /// answer, driftd's `/metrics` and Prometheus's log.
    pub async fn wait_until(
        &mut self,
        app: &TestApp,
        seconds: u64,
        mut check: impl AsyncFnMut(&Prometheus) -> Result<(), String>,
    ) {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(seconds);
        loop {
            self.assert_running();
            match check(self).await {
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
                        "Prometheus did not have the expected values after {seconds} s: {why}\n\
                         --- /metrics\n{metrics}--- prometheus log\n{}",
                        self.log()
                    );
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
        eprintln!(
            "Prometheus had every expected value after {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why a Prometheus API call did not answer with data.
#[derive(Debug)]
pub enum ApiError {
    /// Prometheus refused the request: the query does not parse or is invalid. Waiting will
    /// not help.
    Rejected(String),
    /// Not (yet) reachable, or failed for a reason of its own.
    Unavailable(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Rejected(why) => write!(f, "rejected: {why}"),
            ApiError::Unavailable(why) => f.write_str(why),
        }
    }
}

/// A driftd with a reference run and 600 drifted online records, its window longer than the test:
/// the records stay "recent" until Prometheus, which takes a few seconds to start scraping, has
/// seen the verdict (without recent data it is withdrawn). Returns the app and the ingest answer.
pub async fn drifted_app(dir: &TempDir) -> (TestApp, Json) {
    let url = fresh_database(Db::Sqlite, dir.path()).await.unwrap();
    let mut config = test_config(&url);
    config.window = Duration::from_secs(120);
    config.rollup = Duration::from_secs(3600);
    let app = spawn_app(config).await;
    let created = app
        .client
        .post(app.url("/v1/datasets/search/profiles?run_id=train-1"))
        .body(reference_profile(dir))
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
    let answer = posted.json().await.unwrap();
    (app, answer)
}
