//! `driftd serve`: ingest over HTTP into bounded queues, windows of profiles in a database,
//! continuous evaluation against the reference, and `/metrics`.
//!
//! `run` takes its listener and its shutdown signal as arguments, so tests start and stop it.
//! On shutdown: intake stops (in-flight requests finish), the queue drains, open windows are
//! flushed, and background tasks get `shutdown_grace` to end.

pub mod aggregate;
pub mod counters;
pub mod evaluate;
pub mod http;
pub mod metrics;
pub mod runs;

use std::future::Future;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::alert::deliver::{self, Notifiers};
use crate::alert::engine::Alerting;
use crate::config::ServeConfig;
use crate::rules::RuleSet;
use crate::store::Store;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Serves until `shutdown` completes, then drains and flushes.
pub async fn run(
    listener: TcpListener,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let rules = match &config.rules {
        Some(path) => RuleSet::load(path).map_err(|errors| {
            let lines = crate::rules::report(&errors);
            anyhow::anyhow!("invalid rules:\n  {}", lines.join("\n  "))
        })?,
        None => RuleSet::default(),
    };
    let store = Store::connect(&config.database_url)
        .await
        .context("cannot open the database")?;
    let mut registry = Registry::default();
    let metrics = metrics::Metrics::register(&mut registry);

    let (queue, receiver) = mpsc::channel(config.queue_capacity);
    let stop = CancellationToken::new();
    let tasks = TaskTracker::new();
    tasks.spawn(
        aggregate::Aggregator::new(store.clone(), config.clone(), metrics.clone()).run(receiver),
    );
    let alerting = Alerting::new(&config, &rules);
    let runs = Arc::new(runs::Runs::new(rules.clone(), alerting.clone()));
    for dataset in store.run_datasets().await.context("cannot list runs")? {
        runs.refresh(&store, &metrics, &dataset)
            .await
            .context("cannot read the latest runs")?;
    }
    tasks.spawn(evaluate::run(
        store.clone(),
        rules,
        alerting,
        config.clone(),
        metrics.clone(),
        stop.clone(),
    ));
    tasks.spawn(deliver::run(
        store.clone(),
        Notifiers::from_config(&config),
        metrics.clone(),
        stop.clone(),
    ));

    let mut known = http::Datasets::default();
    for dataset in store.datasets().await.context("cannot list datasets")? {
        known.register(dataset);
    }
    let state = http::AppState {
        store: store.clone(),
        metrics,
        registry: Arc::new(registry),
        queue,
        queue_budget: Arc::new(tokio::sync::Semaphore::new(config.queue_bytes)),
        datasets: Arc::new(Mutex::new(known)),
        config: config.clone(),
        runs,
    };
    info!(listen = %listener.local_addr()?, backend = ?store.backend(), "driftd serving");
    let serving = stop.clone();
    axum::serve(listener, http::router(state))
        .with_graceful_shutdown(async move {
            tokio::select! {
                () = shutdown => {}
                () = serving.cancelled() => {}
            }
            info!("Shutting down: intake stopped");
        })
        .await
        .context("server failed")?;
    // The router and its queue sender are gone: the aggregator drains, flushes and ends.
    stop.cancel();
    tasks.close();
    if tokio::time::timeout(config.shutdown_grace, tasks.wait())
        .await
        .is_err()
    {
        warn!(grace = ?config.shutdown_grace, tasks = tasks.len(), "Shutdown grace period over; exiting with tasks still running");
    }
    store.close().await;
    info!("Stopped");
    Ok(())
}
