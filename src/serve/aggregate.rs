//! Folds record batches into windows: online records into time windows, offline records into
//! their run. Open windows are written to the store every `flush_interval` (what a crash can
//! lose), closed windows are written for good and merged into their rollup, and everything is
//! flushed when the queue closes at shutdown.
//!
//! Every window, rollup and run record part is this process's own partial (its writer id): other
//! processes sharing the database write theirs, and reads merge them. After a restart with the
//! same writer id, a window continues from its own partial only.
//!
//! A write that fails is retried, never dropped: the window stays in memory, dirty, and is
//! written at the next flush (at once when the database is reachable again). While writes
//! fail for an outage, the batches folded keep their share of `queue_bytes`, so what waits in
//! memory stays within that budget; ingest answers 503 beyond it. At shutdown the writes are
//! retried until the deadline, and what is still unwritten is reported.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tracing::{info, warn};

use super::buffer::{self, BufferMetrics, Delivered};
use super::leader::Leadership;
use super::memory::Memory;
use super::metrics::{DatabaseMetrics, IngestMetrics};
use super::shutdown::{Shutdown, Unwritten};
use crate::clock::now_ms;
use crate::config::ServeConfig;
use crate::profile::{DatasetProfile, Stage};
use crate::store::{Applied, Key, Kind, Outage, Store, StoreError, StreamId};

/// Failed writes an outage does not explain (a bug, corrupt data) before a window is given up.
const MAX_FAILURES: u32 = 3;
/// How often the last writes are retried at shutdown.
const RETRY_AT_SHUTDOWN: Duration = Duration::from_millis(200);

/// What the ingest handlers hand over.
#[derive(Debug)]
pub enum Batch {
    Records {
        dataset: Arc<str>,
        stage: Stage,
        run_id: Option<String>,
        /// The batch's records, profiled by the handler.
        profile: Box<DatasetProfile>,
        /// The request's share of `queue_bytes`, given back when the batch is folded (or,
        /// while the database is out, when its window is written).
        budget: Option<OwnedSemaphorePermit>,
        /// The ingest buffer's message it came in, acknowledged once its window is written.
        delivered: Option<Delivered>,
    },
    /// An online profile uploaded by a sidecar: merged into the current window.
    Profile {
        dataset: Arc<str>,
        profile: Box<DatasetProfile>,
        /// The upload's share of `queue_bytes`, as for records.
        budget: Option<OwnedSemaphorePermit>,
        delivered: Option<Delivered>,
    },
}

impl Batch {
    /// This batch, as the ingest buffer's message `delivered`.
    pub fn delivered(mut self, message: Delivered) -> Batch {
        match &mut self {
            Batch::Records { delivered, .. } | Batch::Profile { delivered, .. } => {
                *delivered = Some(message);
            }
        }
        self
    }
}

/// An open window or run: the merge of what was stored before a restart and every batch
/// profile and uploaded profile since.
#[derive(Default)]
struct Open {
    profile: Option<DatasetProfile>,
    end_ms: i64,
    /// Holds records the database lacks.
    dirty: bool,
    /// The stored profile was read (or there was none, or it was unreadable). `false` when
    /// reading it failed in an outage: it is merged in before the first write.
    loaded: bool,
    /// Rows the database had of it after the last write (or the load).
    written_rows: u64,
    /// The window ended: once written, it is merged into its rollup and forgotten.
    closing: bool,
    /// The budget of batches folded while writes failed, given back once written.
    held: Vec<OwnedSemaphorePermit>,
    /// Failed writes an outage does not explain.
    failures: u32,
    /// What `profile` holds in memory (`DatasetProfile::memory_estimate`).
    bytes: usize,
    /// The ingest buffer's messages folded in, acknowledged once written.
    delivered: Vec<Delivered>,
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
        self.bytes = self
            .profile
            .as_ref()
            .map_or(0, DatasetProfile::memory_estimate);
    }

    fn unwritten_rows(&self) -> u64 {
        match (&self.profile, self.dirty) {
            (Some(p), true) => p.rows.saturating_sub(self.written_rows),
            _ => 0,
        }
    }
}

pub struct Aggregator {
    store: Store,
    config: Arc<ServeConfig>,
    metrics: IngestMetrics,
    database: DatabaseMetrics,
    shutdown: Shutdown,
    open: HashMap<Key, Open>,
    /// Why the last flush could not write everything, while it could not.
    outage: Option<Outage>,
    /// Where what the open windows hold is told (`max_memory`).
    memory: Arc<Memory>,
    /// Whose partials this aggregator writes (`writer_id`).
    writer: String,
    /// Old windows are expired only while leading; always without a leadership.
    leadership: Option<Leadership>,
    /// The ingest buffer's connection, when batches come from it: acknowledgements are
    /// flushed to it after every write. Its messages are written with their partials, under
    /// the stream's name and creation time.
    buffer: Option<(async_nats::Client, BufferMetrics, StreamId)>,
    /// Messages of windows written, to acknowledge.
    written: Vec<Delivered>,
    /// Messages of windows given up, to terminate.
    doomed: Vec<Delivered>,
}

fn window_ms(d: Duration) -> i64 {
    d.as_millis().max(1) as i64
}

/// `operation`, abandoned when shutdown's writes are over.
async fn bounded<T>(
    shutdown: &Shutdown,
    operation: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::select! {
        done = operation => done,
        () = shutdown.writes_over() => Err(StoreError::Unavailable(Outage::Deadline)),
    }
}

impl Aggregator {
    pub fn new(
        store: Store,
        config: Arc<ServeConfig>,
        metrics: IngestMetrics,
        database: DatabaseMetrics,
        shutdown: Shutdown,
    ) -> Self {
        Aggregator {
            store,
            config,
            metrics,
            database,
            shutdown,
            open: HashMap::new(),
            outage: None,
            memory: Arc::new(Memory::new(usize::MAX)),
            writer: String::new(),
            leadership: None,
            buffer: None,
            written: Vec::new(),
            doomed: Vec::new(),
        }
    }

    /// Acknowledges the ingest buffer's messages on `client` once their windows are written,
    /// recording them as counted (in `stream`) in the same transactions.
    pub fn buffered(
        mut self,
        client: async_nats::Client,
        metrics: BufferMetrics,
        stream: StreamId,
    ) -> Self {
        self.buffer = Some((client, metrics, stream));
        self
    }

    /// Expires old windows only while `leadership` leads.
    pub fn leadership(mut self, leadership: Leadership) -> Self {
        self.leadership = Some(leadership);
        self
    }

    /// Writes the partials of writer `id` (the writer `''` otherwise).
    pub fn writer(mut self, id: String) -> Self {
        self.writer = id;
        self
    }

    /// This writer's partial of the online window of `dataset` starting at `start_ms`.
    fn window_key(&self, dataset: &str, start_ms: i64) -> Key {
        Key {
            dataset: dataset.to_owned(),
            stage: Stage::Online,
            kind: Kind::Window,
            run_id: String::new(),
            part: String::new(),
            start_ms,
            writer: self.writer.clone(),
        }
    }

    /// Tells `memory` what the open windows hold after every change.
    pub fn accounting(mut self, memory: Arc<Memory>) -> Self {
        self.memory = memory;
        self
    }

    /// Tells the memory budget and its gauge what the open windows hold now.
    fn account_memory(&self) {
        let bytes = self.open.values().map(|open| open.bytes).sum();
        self.memory.set_windows(bytes);
        self.metrics.open_windows_bytes(bytes);
    }

    /// Runs until the queue closes (every sender dropped), or until requests in flight have
    /// had their share of the grace period; then writes everything it can by the deadline and
    /// returns what it could not.
    pub async fn run(mut self, mut queue: mpsc::Receiver<Batch>) -> Unwritten {
        let mut flush = tokio::time::interval(self.config.flush_interval);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reachable = self.store.health().watch();
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
                Ok(()) = reachable.changed() => {
                    if *reachable.borrow_and_update() {
                        self.flush(now_ms(), false).await;
                    }
                }
                () = self.shutdown.intake_over() => {
                    // Batches already answered 202 are in the queue: take them, refuse more.
                    queue.close();
                    while let Some(batch) = queue.recv().await {
                        self.fold(batch).await;
                    }
                    break;
                }
            }
        }
        self.finish().await
    }

    /// The last writes, retried until the deadline.
    async fn finish(mut self) -> Unwritten {
        let open = self.open.len();
        loop {
            self.flush(now_ms(), true).await;
            if self.unwritten().is_empty() {
                info!(windows = open, "Open windows flushed");
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(RETRY_AT_SHUTDOWN) => {}
                () = self.shutdown.writes_over() => break,
            }
        }
        self.unwritten()
    }

    async fn slot(&mut self, key: Key, end_ms: i64) -> &mut Open {
        if !self.open.contains_key(&key) {
            // After a restart the window (or run) may already hold data: continue from it.
            let (profile, loaded) = match bounded(&self.shutdown, self.store.partial(&key)).await {
                Ok(stored) => (stored, true),
                // Read again before the first write, so that write adds to it.
                Err(e) if e.outage().is_some() => (None, false),
                Err(e) => {
                    warn!(error = %e, dataset = %key.dataset, "Cannot load a stored window; starting it afresh");
                    (None, true)
                }
            };
            let written_rows = profile.as_ref().map_or(0, |p| p.rows);
            self.open.insert(
                key.clone(),
                Open {
                    profile,
                    end_ms,
                    loaded,
                    written_rows,
                    ..Open::default()
                },
            );
        }
        self.open.get_mut(&key).expect("inserted above")
    }

    async fn fold(&mut self, batch: Batch) {
        let now = now_ms();
        let window = window_ms(self.config.window);
        // While writes fail, a batch keeps its share of the budget until it is written.
        let hold = self.outage.is_some() || self.store.health().outage().is_some();
        let (key, end, profile, budget, delivered) = match batch {
            Batch::Records {
                dataset,
                stage,
                run_id,
                profile,
                budget,
                delivered,
            } => match (stage, run_id) {
                (Stage::Offline, Some(run_id)) => {
                    let key = Key {
                        dataset: dataset.to_string(),
                        stage,
                        kind: Kind::Run,
                        run_id,
                        part: "records".into(),
                        start_ms: 0,
                        writer: self.writer.clone(),
                    };
                    (key, now, profile, budget, delivered)
                }
                _ => {
                    let start = now - now.rem_euclid(window);
                    (
                        self.window_key(&dataset, start),
                        start + window,
                        profile,
                        budget,
                        delivered,
                    )
                }
            },
            Batch::Profile {
                dataset,
                profile,
                budget,
                delivered,
            } => {
                let start = now - now.rem_euclid(window);
                (
                    self.window_key(&dataset, start),
                    start + window,
                    profile,
                    budget,
                    delivered,
                )
            }
        };
        let open = self.slot(key, end).await;
        open.add(*profile);
        open.end_ms = open.end_ms.max(end);
        if let Some(budget) = budget.filter(|_| hold) {
            open.held.push(budget);
        }
        open.delivered.extend(delivered);
        self.account_memory();
    }

    /// Writes dirty open windows; closes (and rolls up) windows that ended. Failed writes stay
    /// for the next flush. With `all` (at shutdown), old windows are not expired.
    async fn flush(&mut self, now: i64, all: bool) {
        let keys: Vec<Key> = self.open.keys().cloned().collect();
        let mut failed = None;
        for key in keys {
            if let Err(e) = self.write(&key, now).await {
                failed = self.failed(&key, e).or(failed);
            }
        }
        self.acknowledge().await;
        self.account(failed, now);
        if all || self.outage.is_some() || self.leadership.as_ref().is_some_and(|l| !l.leading()) {
            return;
        }
        let retention = self.config.retention.as_millis() as i64;
        let rollup_retention = self.config.rollup_retention.as_millis() as i64;
        let expired = self.store.expire(now - retention, now - rollup_retention);
        if let Err(e) = bounded(&self.shutdown, expired).await {
            warn!(error = %e, "Cannot expire old windows");
        }
    }

    /// Tells the ingest buffer which of its messages are written, which are still held by
    /// windows whose writes failed, and which were given up; then flushes the connection, so
    /// that what was written is acknowledged before anything else happens.
    async fn acknowledge(&mut self) {
        let Some((client, metrics, _)) = &self.buffer else {
            return;
        };
        for message in self.written.drain(..) {
            message.ack().await;
        }
        // Still being worked on: JetStream waits another ack_wait before redelivering.
        for open in self.open.values().filter(|open| open.dirty) {
            for message in &open.delivered {
                message.in_progress().await;
            }
        }
        for message in self.doomed.drain(..) {
            message.term().await;
        }
        buffer::flush(client).await;
        metrics.unacknowledged(self.open.values().map(|open| open.delivered.len()).sum());
    }

    /// Writes one open window or run if it holds unwritten records, and rolls a closed window
    /// up. Each step happens once: after a failure the next flush goes on from there.
    async fn write(&mut self, key: &Key, now: i64) -> Result<(), StoreError> {
        let Some(open) = self.open.get_mut(key) else {
            return Ok(());
        };
        open.closing |= key.kind == Kind::Window && open.end_ms <= now;
        let Some(profile) = open.profile.as_mut() else {
            self.open.remove(key);
            return Ok(());
        };
        if open.dirty {
            if !open.loaded {
                match bounded(&self.shutdown, self.store.partial(key)).await {
                    Ok(Some(stored)) => {
                        if let Err(e) = profile.merge(&stored) {
                            warn!(error = %e, dataset = %key.dataset, "Cannot merge the stored window; replacing it");
                        }
                    }
                    Ok(None) => {}
                    Err(e) if e.outage().is_some() => return Err(e),
                    Err(e) => {
                        warn!(error = %e, dataset = %key.dataset, "Cannot load a stored window; replacing it");
                    }
                }
                open.loaded = true;
            }
            match &self.buffer {
                Some((_, metrics, stream)) if !open.delivered.is_empty() => {
                    let sequences: Vec<u64> = open.delivered.iter().map(|d| d.sequence).collect();
                    let applied = Applied {
                        stream,
                        sequences: &sequences,
                    };
                    let put = self
                        .store
                        .put_applied(key, open.end_ms, profile, now, applied);
                    let twice = bounded(&self.shutdown, put).await?;
                    if twice > 0 {
                        // Held past nats_ack_wait, redelivered, and written by another first.
                        metrics.counted_twice(twice);
                        warn!(dataset = %key.dataset, messages = twice, "Ingest buffer messages written by another replica too: held past nats_ack_wait");
                    }
                }
                _ => {
                    let put = self.store.put(key, open.end_ms, profile, now);
                    bounded(&self.shutdown, put).await?;
                }
            }
            open.dirty = false;
            open.written_rows = profile.rows;
            open.failures = 0;
            open.held.clear();
        }
        // Written: the buffer's messages folded in are acknowledged at the end of the flush.
        self.written.append(&mut open.delivered);
        if open.closing {
            let rollup = window_ms(self.config.rollup);
            let rollup_start = key.start_ms - key.start_ms.rem_euclid(rollup);
            let rollup_key = Key {
                kind: Kind::Rollup,
                start_ms: rollup_start,
                ..key.clone()
            };
            // Into this writer's own rollup partial, once per window. A merge whose commit
            // failed after it happened is merged again: a rollup may then count a window
            // twice, never lose one.
            let merged = self
                .store
                .merge_into(&rollup_key, rollup_start + rollup, profile, now);
            bounded(&self.shutdown, merged).await?;
        }
        if open.closing || key.kind == Kind::Run {
            // Runs are reloaded from the store when more records arrive.
            self.open.remove(key);
        }
        Ok(())
    }

    /// A failed write: the outage, when one explains it (the write is retried); otherwise
    /// retried a few times, then given up, loudly.
    fn failed(&mut self, key: &Key, error: StoreError) -> Option<Outage> {
        if let Some(outage) = error.outage() {
            return Some(outage);
        }
        let open = self.open.get_mut(key)?;
        open.failures += 1;
        if open.failures < MAX_FAILURES {
            warn!(%error, dataset = %key.dataset, "Cannot store a window; will retry");
        } else {
            let records = open.unwritten_rows();
            tracing::error!(%error, dataset = %key.dataset, records, "Cannot store a window; given up");
            if let Some(open) = self.open.remove(key) {
                self.doomed.extend(open.delivered);
            }
        }
        None
    }

    /// Tells the health state, the metrics and the log what waits in memory.
    fn account(&mut self, failed: Option<Outage>, now: i64) {
        // A write cut short by the shutdown deadline keeps the outage that held it up.
        let failed = match (failed, &self.outage) {
            (Some(Outage::Deadline), Some(before)) => Some(before.clone()),
            (failed, _) => failed,
        };
        self.account_memory();
        let unwritten = self.unwritten();
        let windows = unwritten.windows + unwritten.runs + unwritten.rollups;
        self.database.unwritten(windows, unwritten.records);
        match (&self.outage, &failed) {
            (None, Some(outage)) => warn!(
                reason = %outage, windows, records = unwritten.records,
                "Cannot write to the database; windows stay in memory and are retried, ingest \
                 goes on up to queue_bytes"
            ),
            (Some(_), None) => info!("Windows written after a database outage"),
            _ => {}
        }
        self.outage = failed;
        self.store.health().set_unwritable(self.outage.clone(), now);
    }

    /// What the database lacks of the windows and runs held here.
    fn unwritten(&self) -> Unwritten {
        let mut unwritten = Unwritten {
            reason: self.outage.as_ref().map(ToString::to_string),
            ..Unwritten::default()
        };
        for (key, open) in &self.open {
            let lacking = open.dirty || open.closing;
            if !lacking {
                continue;
            }
            match (open.dirty, key.kind) {
                (true, Kind::Run) => unwritten.runs += 1,
                (true, _) => unwritten.windows += 1,
                (false, _) => unwritten.rollups += 1,
            }
            unwritten.records += open.unwritten_rows();
            unwritten.datasets.insert(key.dataset.clone());
        }
        unwritten
    }
}
