//! `driftd serve`: ingest over HTTP (`api`) into a bounded queue (`admission`), windows of
//! profiles in a database (`aggregate`), offline runs stored and judged (`offline`, `runs`),
//! continuous evaluation against the reference (`evaluate`) with the training/serving skew of
//! the id-sampled rows (`skew`), and `/metrics` (`metrics`); one memory budget over open
//! windows and queued bytes (`memory`); the
//! listeners, their connection caps, deadlines and TLS (`listen`).
//!
//! Of the processes sharing a database, the holder of the leader lease (`leader`) alone
//! evaluates and expires old windows; every process delivers notifications, each claimed by
//! one at a time (`alert::deliver`).
//!
//! The database is reached (with retries) and watched by `database`; `shutdown` bounds the
//! way out.
//!
//! `run` takes its listener and its shutdown signal as arguments, so tests start and stop it.
//! On shutdown: intake stops (in-flight requests finish), the queue drains, open windows are
//! flushed, and background tasks end — all within `shutdown_grace` of the signal, whatever the
//! database does; what could not be written is reported, and `run` fails.

pub mod admission;
pub mod aggregate;
pub mod api;
pub mod buffer;
pub mod counters;
pub mod database;
pub mod evaluate;
pub mod leader;
pub mod listen;
pub mod memory;
pub mod metrics;
pub mod offline;
pub mod runs;
pub mod shutdown;
pub mod skew;
pub mod writer;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use crate::alert::deliver::{self, Notifiers};
use crate::alert::engine::Alerting;
use crate::config::ServeConfig;
use crate::rules::RuleSet;
use shutdown::Shutdown;

/// Where `driftd serve` listens: the API, and optionally a second listener for probes and
/// metrics only (`metrics_listen`).
pub struct Listeners {
    pub api: TcpListener,
    pub probes: Option<TcpListener>,
}

impl From<TcpListener> for Listeners {
    fn from(api: TcpListener) -> Self {
        Listeners { api, probes: None }
    }
}

/// Serves until `shutdown` completes, then drains and flushes.
pub async fn run(
    listeners: impl Into<Listeners>,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let Listeners {
        api: listener,
        probes,
    } = listeners.into();
    let config = Arc::new(config);
    let rules = load_rules(&config)?;
    let ending = Shutdown::new(config.shutdown_grace);
    let shutdown = ending.on(shutdown);
    let Some(store) = database::connect(&config, &ending).await? else {
        info!("Stopped before the database could be reached");
        return Ok(());
    };
    let _single = database::single_process(&config)?;
    let mut registry = Registry::default();
    let metrics = metrics::Metrics::register(&mut registry);
    let buffer = buffer::Buffer::connect(&config, metrics.buffer.clone())
        .await?
        .map(Arc::new);

    let (queue, receiver) = mpsc::channel(config.queue_capacity);
    let background = shutdown::Tasks {
        tracker: TaskTracker::new(),
        stop: CancellationToken::new(),
        checks: CancellationToken::new(),
    };
    let (tasks, stop) = (&background.tracker, &background.stop);
    let (health, database) = (store.health().clone(), metrics.database.clone());
    tasks.spawn(database::watch(
        store.clone(),
        config.clone(),
        database.clone(),
        background.checks.clone(),
    ));
    let memory = Arc::new(memory::Memory::new(config.max_memory));
    metrics.ingest.memory_limit(config.max_memory);
    let writer = writer::resolve(config.writer_id.as_deref());
    info!(%writer, "Writing this process's own partial of every open window");
    let (leadership, leading) = leader::start(
        store.clone(),
        writer.clone(),
        config.leader_lease_ttl,
        metrics.leader.clone(),
    )
    .await;
    tasks.spawn(leading(stop.clone()).run());
    let mut aggregator = aggregate::Aggregator::new(
        store.clone(),
        config.clone(),
        metrics.ingest.clone(),
        database,
        ending.clone(),
    )
    .writer(writer)
    .leadership(leadership.clone())
    .accounting(memory.clone());
    if let Some(buffer) = &buffer {
        aggregator =
            aggregator.buffered(buffer.client(), metrics.buffer.clone(), buffer.id().clone());
    }
    let aggregator = tasks.spawn(aggregator.run(receiver));
    let alerting = Alerting::new(&config, &rules);
    let runs = runs::Runs::new(rules.clone(), alerting.clone());
    for dataset in store.run_datasets().await.context("cannot list runs")? {
        runs.refresh(&store, &metrics.counters, &dataset)
            .await
            .context("cannot read the latest runs")?;
    }
    tasks.spawn(evaluate::run(
        store.fenced(leadership.fence()),
        rules,
        alerting,
        config.clone(),
        metrics.evaluation.clone(),
        leadership.clone(),
        stop.clone(),
    ));
    tasks.spawn(deliver::run(
        store.clone(),
        Notifiers::from_config(&config),
        metrics.delivery.clone(),
        leadership.writer().to_owned(),
        stop.clone(),
    ));

    let mut known = admission::Datasets::default();
    for dataset in store.datasets().await.context("cannot list datasets")? {
        known.register(dataset);
    }
    let from_buffer = queue.clone();
    let mut admission = admission::Admission::new(
        queue,
        config.queue_bytes,
        known,
        (config.max_datasets, config.max_features),
        metrics.ingest.clone(),
    )
    .watching(health)
    .within(memory);
    if let Some(buffer) = &buffer {
        admission = admission.buffered(buffer.clone());
    }
    let state = api::AppState {
        store: store.clone(),
        metrics,
        registry: Arc::new(registry),
        admission: Arc::new(admission),
        config: config.clone(),
        offline: Arc::new(offline::Offline::new(runs, config.metrics_max_features)),
        tokens: Arc::new(config.tokens()),
        leadership,
    };
    if let Some(buffer) = buffer {
        tasks.spawn(buffer::consume(
            buffer,
            state.clone(),
            from_buffer,
            ending.clone(),
        ));
    } else {
        drop(from_buffer);
    }
    let tokens = state.tokens.len();
    info!(listen = %listener.local_addr()?, backend = ?store.backend(), tokens, "driftd serving");
    if let Some(probes) = &probes {
        info!(listen = %probes.local_addr()?, "Serving /metrics, /healthz and /readyz");
    }
    let serving = stop.clone();
    let intake_stopped = async move {
        tokio::select! {
            () = shutdown => {}
            () = serving.cancelled() => {}
        }
        info!("Shutting down: intake stopped");
    };
    let served = listen::serve(listener, probes, state, intake_stopped, (stop, tasks));
    shutdown::drain(&ending, served)
        .await
        .context("server failed")?;
    // The router and its queue sender are gone: the aggregator drains, flushes and ends.
    shutdown::finish(&ending, &background, aggregator, &store).await
}

fn load_rules(config: &ServeConfig) -> anyhow::Result<RuleSet> {
    match &config.rules {
        Some(path) => RuleSet::load(path).map_err(|errors| {
            let lines = crate::rules::report(&errors);
            anyhow::anyhow!("invalid rules:\n  {}", lines.join("\n  "))
        }),
        None => Ok(RuleSet::default()),
    }
}
