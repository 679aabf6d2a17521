//! Shutdown, one way, under one deadline: `shutdown_grace` after SIGTERM or SIGINT, whatever
//! the database does. Requests in flight may finish during the first three quarters of it;
//! the aggregator then drains the queue and writes the open windows, retrying failed writes
//! until nine tenths; the last tenth is for the other tasks, closing the database, reporting
//! and exiting (span export gets what is left). When windows
//! could not be written, one log line says what was lost (datasets, windows, runs, records)
//! and `driftd serve` exits non-zero.

use std::collections::BTreeSet;
use std::future::{Future, IntoFuture};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::store::Store;

/// The shutdown request and its deadline, shared by everything that must end by it.
#[derive(Clone, Debug)]
pub struct Shutdown {
    requested: CancellationToken,
    began: Arc<OnceLock<Instant>>,
    grace: Duration,
}

impl Shutdown {
    pub fn new(grace: Duration) -> Shutdown {
        Shutdown {
            requested: CancellationToken::new(),
            began: Arc::default(),
            grace,
        }
    }

    /// Begins shutdown when `signal` completes. The future returned completes then too (or
    /// when shutdown begins another way), for the server's graceful shutdown.
    pub fn on(
        &self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = signal => this.begin(),
                () = this.requested.cancelled() => {}
            }
        });
        self.requested.clone().cancelled_owned()
    }

    /// Starts the clock (once; later calls change nothing).
    pub fn begin(&self) {
        let _ = self.began.set(Instant::now());
        self.requested.cancel();
    }

    pub async fn requested(&self) {
        self.requested.cancelled().await;
    }

    /// `shutdown_grace` after shutdown began; `None` before.
    pub fn deadline(&self) -> Option<Instant> {
        self.at(1, 1)
    }

    fn at(&self, numerator: u32, denominator: u32) -> Option<Instant> {
        let began = *self.began.get()?;
        Some(began + self.grace * numerator / denominator)
    }

    async fn until(&self, numerator: u32, denominator: u32) {
        self.requested().await;
        if let Some(at) = self.at(numerator, denominator) {
            tokio::time::sleep_until(at).await;
        }
    }

    /// Requests in flight have had their time: what they queued is flushed after.
    pub async fn intake_over(&self) {
        self.until(3, 4).await;
    }

    /// Writes stop being attempted: what is not written by then is lost.
    pub async fn writes_over(&self) {
        self.until(9, 10).await;
    }

    /// The tasks still running and the database connections are given up: what is left is
    /// for reporting and exiting.
    fn closing_over(&self) -> Option<Instant> {
        self.at(19, 20)
    }
}

/// Serves until `serving` ends, or until the requests in flight have had their share of the
/// grace period, whichever is first.
pub async fn drain<F, E>(shutdown: &Shutdown, serving: F) -> Result<(), E>
where
    F: IntoFuture<Output = Result<(), E>>,
{
    tokio::select! {
        served = serving.into_future() => served,
        () = shutdown.intake_over() => {
            warn!("Shutting down: requests still in flight are abandoned");
            Ok(())
        }
    }
}

/// What the aggregator could not write before the deadline.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unwritten {
    pub datasets: BTreeSet<String>,
    /// Online windows with records the database lacks.
    pub windows: usize,
    /// Offline runs with records the database lacks.
    pub runs: usize,
    /// Closed windows written, but not merged into their rollup.
    pub rollups: usize,
    /// Records accepted and not in the database.
    pub records: u64,
    /// Why the last write failed.
    pub reason: Option<String>,
}

impl Unwritten {
    pub fn is_empty(&self) -> bool {
        self.windows == 0 && self.runs == 0 && self.rollups == 0
    }

    /// "250 records in 1 window and 0 runs of datasets t, u (1 rollup not updated)".
    pub fn describe(&self) -> String {
        let datasets: Vec<&str> = self.datasets.iter().map(String::as_str).collect();
        let mut text = format!(
            "{} {} in {} {} and {} {} of {} {}",
            self.records,
            crate::format::plural(self.records as usize, "record", "records"),
            self.windows,
            crate::format::plural(self.windows, "window", "windows"),
            self.runs,
            crate::format::plural(self.runs, "run", "runs"),
            crate::format::plural(datasets.len(), "dataset", "datasets"),
            datasets.join(", "),
        );
        if self.rollups > 0 {
            text.push_str(&format!(
                " ({} {} not updated)",
                self.rollups,
                crate::format::plural(self.rollups, "rollup", "rollups")
            ));
        }
        text
    }
}

/// The background tasks as `finish` ends them: `stop` ends evaluation, delivery and the probe
/// listener at once; `checks` ends the database health check once the aggregator is done, so
/// that its last writes still learn when the database goes or comes back.
pub struct Tasks {
    pub tracker: TaskTracker,
    pub stop: CancellationToken,
    pub checks: CancellationToken,
}

/// After serving: waits for the aggregator's last writes and the other tasks, closes the
/// database, all by the deadline, and reports what could not be written (an error then).
pub async fn finish(
    shutdown: &Shutdown,
    tasks: &Tasks,
    aggregator: JoinHandle<Unwritten>,
    store: &Store,
) -> anyhow::Result<()> {
    shutdown.begin();
    tasks.stop.cancel();
    tasks.tracker.close();
    let deadline = shutdown.deadline().expect("shutdown began");
    let unwritten = match tokio::time::timeout_at(deadline, aggregator).await {
        Ok(Ok(unwritten)) => Ok(unwritten),
        Ok(Err(e)) => Err(format!("the aggregator failed: {e}")),
        Err(_) => Err("the aggregator did not finish within shutdown_grace".to_owned()),
    };
    tasks.checks.cancel();
    let closing_over = shutdown.closing_over().expect("shutdown began");
    let tasks = &tasks.tracker;
    if tokio::time::timeout_at(closing_over, tasks.wait())
        .await
        .is_err()
    {
        warn!(
            tasks = tasks.len(),
            "Shutdown grace period over; exiting with tasks still running (a notification being \
             sent is sent again after a restart)"
        );
    }
    if tokio::time::timeout_at(closing_over, store.close())
        .await
        .is_err()
    {
        warn!("The database connections did not close within shutdown_grace");
    }
    match unwritten {
        Ok(lost) if lost.is_empty() => {
            info!("Stopped");
            Ok(())
        }
        Ok(lost) => {
            let what = lost.describe();
            let datasets: Vec<&str> = lost.datasets.iter().map(String::as_str).collect();
            let reason = lost.reason.clone().unwrap_or_default();
            error!(
                datasets = %datasets.join(","), windows = lost.windows, runs = lost.runs,
                rollups = lost.rollups, records = lost.records, %reason,
                "Shutdown could not write to the database: lost {what}"
            );
            anyhow::bail!("shutdown could not write to the database ({reason}): lost {what}")
        }
        Err(why) => {
            error!(%why, "Shutdown could not flush the open windows: they are lost");
            anyhow::bail!("shutdown could not flush the open windows: {why}")
        }
    }
}
