//! A real Prometheus server scrapes `driftd serve`'s `/metrics` (OpenMetrics) and the values
//! are read back through Prometheus's HTTP API. The binary comes from `DRIFTD_PROMETHEUS`, else
//! `prometheus` on the PATH (`scripts/test.sh` installs the Debian package); without it the test
//! is skipped, except under `CI=true`, where it fails.

use serde_json::{Value as Json, json};
use tempfile::TempDir;

use crate::helpers::wait_for_json;
use crate::prometheus_server::{JOB, Prometheus, drifted_app, prometheus_binary};

/// Everything the test expects Prometheus to have stored; `Err` says what is not there yet.
async fn check(prom: &Prometheus, target: &str) -> Result<(), String> {
    let expect = async |promql: &str, want: f64| -> Result<(), String> {
        let got = prom.single(promql).await?;
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
        .query("driftd_feature_drift_score{dataset=\"search\",feature=\"latency_ms\"}")
        .await
        .map_err(|e| e.to_string())?;
    match scores.as_slice() {
        [(labels, score)] if labels["method"] == "psi" && *score > 0.2 => {}
        other => return Err(format!("latency_ms drift score: {other:?}")),
    }
    // The histogram made it through too.
    let evaluations = prom
        .single("driftd_evaluation_duration_seconds_count")
        .await?;
    if evaluations < 1.0 {
        return Err(format!("{evaluations} evaluations recorded"));
    }
    prom.single("driftd_ingest_queue_depth").await?;

    // The target's last scrape parsed without error.
    let targets = prom
        .api("targets", &[("state", "active")])
        .await
        .map_err(|e| e.to_string())?;
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
    let Some(binary) = prometheus_binary("the Prometheus scrape test") else {
        return;
    };

    let dir = TempDir::new().unwrap();
    let (app, body) = drifted_app(&dir).await;
    assert_eq!(body, json!({"accepted": 600, "rejected": 0}));
    // Evaluated once: the drift figures are in /metrics before Prometheus looks.
    wait_for_json(
        &app.client,
        &app.url("/v1/datasets/search/drift"),
        10,
        |v| v["current"]["rows"].as_u64() == Some(600),
    )
    .await;

    let mut prom = Prometheus::start(&binary, dir.path(), &app.address, &[]);
    prom.wait_until(&app, 30, async |prom| check(prom, &app.address).await)
        .await;
    drop(prom);
    app.stop().await;
}
