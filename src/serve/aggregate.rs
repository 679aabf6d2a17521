//! Folds record batches into windows: online records into time windows, offline records into
//! their run. Open windows are written to the store every `flush_interval` (what a crash can
//! lose), closed windows are written for good and merged into their rollup, and everything is
//! flushed when the queue closes at shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{info, warn};

use super::metrics::IngestMetrics;
use crate::clock::now_ms;
use crate::config::ServeConfig;
use crate::profile::{DatasetProfile, Stage};
use crate::store::{Key, Kind, Store};

/// What the ingest handlers hand over.
#[derive(Debug)]
pub enum Batch {
    Records {
        dataset: Arc<str>,
        stage: Stage,
        run_id: Option<String>,
        /// The batch's records, profiled by the handler.
        profile: Box<DatasetProfile>,
        /// The request's share of `queue_bytes`, given back when the batch is folded.
        budget: Option<tokio::sync::OwnedSemaphorePermit>,
    },
    /// An online profile uploaded by a sidecar: merged into the current window.
    Profile {
        dataset: Arc<str>,
        profile: Box<DatasetProfile>,
    },
}

/// An open window or run: the merge of what was stored before a restart and every batch
/// profile and uploaded profile since.
struct Open {
    profile: Option<DatasetProfile>,
    end_ms: i64,
    dirty: bool,
}

impl Open {
    fn add(&mut self, profile: DatasetProfile) {
        match &mut self.profile {
            None => self.profile = Some(profile),
            Some(p) => {
                if let Err(e) = p.merge(&profile) {
                    warn!(error = %e, "Cannot merge a batch into its window");
                }
            }
        }
        self.dirty = true;
    }
}

pub struct Aggregator {
    store: Store,
    config: Arc<ServeConfig>,
    metrics: IngestMetrics,
    open: HashMap<Key, Open>,
}

fn window_ms(d: Duration) -> i64 {
    d.as_millis().max(1) as i64
}

impl Aggregator {
    pub fn new(store: Store, config: Arc<ServeConfig>, metrics: IngestMetrics) -> Self {
        Aggregator {
            store,
            config,
            metrics,
            open: HashMap::new(),
        }
    }

    /// Runs until the queue closes (every sender dropped), then flushes everything.
    pub async fn run(mut self, mut queue: mpsc::Receiver<Batch>) {
        let mut flush = tokio::time::interval(self.config.flush_interval);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                batch = queue.recv() => match batch {
                    Some(batch) => {
                        self.metrics.queue_depth(queue.len());
                        self.fold(batch).await;
                    }
                    None => break,
                },
                _ = flush.tick() => self.flush(now_ms(), false).await,
            }
        }
        let open = self.open.len();
        self.flush(now_ms(), true).await;
        info!(windows = open, "Open windows flushed");
    }

    async fn slot(&mut self, key: Key, end_ms: i64) -> &mut Open {
        if !self.open.contains_key(&key) {
            // After a restart the window (or run) may already hold data: continue from it.
            let merged = match self.store.get(&key).await {
                Ok(stored) => stored,
                Err(e) => {
                    warn!(error = %e, dataset = %key.dataset, "Cannot load a stored window; starting it afresh");
                    None
                }
            };
            self.open.insert(
                key.clone(),
                Open {
                    profile: merged,
                    end_ms,
                    dirty: false,
                },
            );
        }
        self.open.get_mut(&key).expect("inserted above")
    }

    async fn fold(&mut self, batch: Batch) {
        let now = now_ms();
        let window = window_ms(self.config.window);
        match batch {
            Batch::Records {
                dataset,
                stage,
                run_id,
                profile,
                budget: _budget,
            } => {
                let (key, end) = match (stage, run_id) {
                    (Stage::Offline, Some(run_id)) => (
                        Key {
                            dataset: dataset.to_string(),
                            stage,
                            kind: Kind::Run,
                            run_id,
                            part: "records".into(),
                            start_ms: 0,
                        },
                        now,
                    ),
                    _ => {
                        let start = now - now.rem_euclid(window);
                        (window_key(&dataset, start), start + window)
                    }
                };
                let open = self.slot(key, end).await;
                open.add(*profile);
                open.end_ms = open.end_ms.max(end);
            }
            Batch::Profile { dataset, profile } => {
                let start = now - now.rem_euclid(window);
                let open = self.slot(window_key(&dataset, start), start + window).await;
                open.add(*profile);
            }
        }
    }

    /// Writes dirty open windows; closes (and rolls up) windows that ended; with `all`, closes
    /// everything.
    async fn flush(&mut self, now: i64, all: bool) {
        let rollup = window_ms(self.config.rollup);
        let keys: Vec<Key> = self.open.keys().cloned().collect();
        for key in keys {
            let open = &self.open[&key];
            let closed = key.kind == Kind::Window && open.end_ms <= now;
            if !(open.dirty || closed) {
                continue;
            }
            let Some(profile) = open.profile.clone() else {
                self.open.remove(&key);
                continue;
            };
            let end = open.end_ms;
            if let Err(e) = self.store.put(&key, end, &profile, now).await {
                warn!(error = %e, dataset = %key.dataset, "Cannot store a window; will retry");
                continue;
            }
            if closed {
                let rollup_start = key.start_ms - key.start_ms.rem_euclid(rollup);
                let rollup_key = Key {
                    kind: Kind::Rollup,
                    start_ms: rollup_start,
                    ..key.clone()
                };
                if let Err(e) = self
                    .store
                    .merge_into(&rollup_key, rollup_start + rollup, &profile, now)
                    .await
                {
                    warn!(error = %e, dataset = %key.dataset, "Cannot roll a closed window up");
                }
            }
            if closed || all || key.kind == Kind::Run {
                // Runs are reloaded from the store when more records arrive.
                self.open.remove(&key);
            } else if let Some(open) = self.open.get_mut(&key) {
                open.dirty = false;
            }
        }
        let retention = self.config.retention.as_millis() as i64;
        let rollup_retention = self.config.rollup_retention.as_millis() as i64;
        if let Err(e) = self
            .store
            .expire(now - retention, now - rollup_retention)
            .await
        {
            warn!(error = %e, "Cannot expire old windows");
        }
    }
}

fn window_key(dataset: &str, start_ms: i64) -> Key {
    Key {
        dataset: dataset.to_owned(),
        stage: Stage::Online,
        kind: Kind::Window,
        run_id: String::new(),
        part: String::new(),
        start_ms,
    }
}
