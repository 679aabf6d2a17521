//! Admission: what ingest lets in. The profiling queue is bounded in batches and in bytes,
//! the number of datasets by `max_datasets` and each dataset's features by `max_features`;
//! whatever is over a bound is refused (or dropped) and counted, never queued without bound.
//! While the database is out, accepted batches keep their share of `queue_bytes` until their
//! window is written: ingest goes on into memory up to that budget, then answers 503 naming
//! the outage rather than 429. Open windows and queued bytes together stay within
//! `max_memory` (see `memory`): at the limit, new data is refused with 503, counted.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::aggregate::Batch;
use super::buffer::{Buffer, BufferError};
use super::memory::Memory;
use super::metrics::{DropReason, IngestMetrics};
use crate::profile::DatasetProfile;
use crate::store::{Health, Outage};

/// Longest feature name kept; longer ones are dropped like features over the limit.
const MAX_FEATURE_NAME_BYTES: usize = 256;

/// Feature names a dataset has, to enforce `max_features` before records are queued.
#[derive(Debug, Default)]
pub struct Datasets {
    features: HashMap<String, HashSet<String>>,
}

impl Datasets {
    /// A dataset known from the store; its features are learnt again from new records.
    pub fn register(&mut self, dataset: String) {
        self.features.entry(dataset).or_default();
    }
}

/// Why admission turned something away.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The queue (in batches or bytes) is full: retry after this many seconds.
    #[error("driftd is busy; retry after {0} s")]
    Busy(u64),
    #[error("driftd is shutting down")]
    ShuttingDown,
    /// The queue or its byte budget is full because the database is out.
    #[error("database unavailable ({0}); records waiting in memory fill queue_bytes")]
    DatabaseUnavailable(Outage),
    #[error("dataset limit reached: driftd accepts {0} datasets (max_datasets)")]
    DatasetLimit(usize),
    /// Open windows and queued requests hold `max_memory`: new data waits for windows to close.
    #[error(
        "memory budget reached: open windows and queued requests hold {used} of max_memory \
         {limit} bytes; retry when the current window closes"
    )]
    MemoryFull { used: usize, limit: usize },
}

/// Features dropped from a profile for being over the dataset's limit.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Values of the dropped features.
    pub values: u64,
    /// The first ten dropped feature names.
    pub names: Vec<String>,
}

/// The bounded profiling queue and the dataset registry.
#[derive(Debug)]
pub struct Admission {
    queue: mpsc::Sender<Batch>,
    /// Bytes of queued requests (see `ServeConfig::queue_bytes`).
    budget: std::sync::Arc<Semaphore>,
    queue_bytes: usize,
    datasets: Mutex<Datasets>,
    max_datasets: usize,
    max_features: usize,
    metrics: IngestMetrics,
    /// The database's standing: why a full queue is full.
    database: Health,
    /// The memory budget shared with the aggregator.
    memory: std::sync::Arc<Memory>,
    /// The durable ingest buffer batches are published to instead of the queue, if any.
    buffer: Option<std::sync::Arc<Buffer>>,
}

impl Admission {
    pub fn new(
        queue: mpsc::Sender<Batch>,
        queue_bytes: usize,
        datasets: Datasets,
        (max_datasets, max_features): (usize, usize),
        metrics: IngestMetrics,
    ) -> Admission {
        Admission {
            queue,
            budget: std::sync::Arc::new(Semaphore::new(queue_bytes)),
            queue_bytes,
            datasets: Mutex::new(datasets),
            max_datasets,
            max_features,
            metrics,
            database: Health::default(),
            memory: std::sync::Arc::new(Memory::new(usize::MAX)),
            buffer: None,
        }
    }

    /// Publishes batches to `buffer` (JetStream) rather than queueing them here.
    pub fn buffered(mut self, buffer: std::sync::Arc<Buffer>) -> Admission {
        self.buffer = Some(buffer);
        self
    }

    /// The durable ingest buffer, when batches go through one.
    pub fn buffer(&self) -> Option<&Buffer> {
        self.buffer.as_deref()
    }

    /// Counts a batch the ingest buffer refused.
    pub fn count_buffer_refusal(&self, e: &BufferError) {
        let reason = match e {
            BufferError::Full(_) => DropReason::buffer_full,
            BufferError::Unavailable(_) => DropReason::buffer_unavailable,
            BufferError::TooLarge { .. } => DropReason::too_large,
        };
        self.metrics.dropped(reason, 1);
    }

    /// Refuses new data while open windows and queued bytes hold the memory budget.
    pub fn within(mut self, memory: std::sync::Arc<Memory>) -> Admission {
        self.memory = memory;
        self
    }

    /// Bytes of the queue's byte budget held now.
    fn queued(&self) -> usize {
        self.queue_bytes - self.budget.available_permits()
    }

    /// The memory budget reached, refused and counted.
    fn memory_full(&self) -> Result<(), Refusal> {
        let queued = self.queued();
        if !self.memory.full(queued) {
            return Ok(());
        }
        self.metrics.dropped(DropReason::memory_limit, 1);
        Err(Refusal::MemoryFull {
            used: self.memory.windows().saturating_add(queued),
            limit: self.memory.limit(),
        })
    }

    /// Says why the queue is full when the database is out: 503 naming the outage, not 429.
    pub fn watching(mut self, database: Health) -> Admission {
        self.database = database;
        self
    }

    /// A full queue or budget, refused and counted: busy, or waiting for the database.
    fn full(&self) -> Refusal {
        match self.database.outage() {
            Some(outage) => {
                self.metrics.dropped(DropReason::database_unavailable, 1);
                Refusal::DatabaseUnavailable(outage)
            }
            None => {
                self.metrics.dropped(DropReason::queue_full, 1);
                Refusal::Busy(1)
            }
        }
    }

    /// The registry. It holds only names: a panic elsewhere while it was locked leaves it
    /// consistent, so a poisoned lock is taken as it is rather than failing every request.
    fn datasets(&self) -> MutexGuard<'_, Datasets> {
        self.datasets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Refuses, counted, a body whose declared length does not fit in the queue's byte budget
    /// now: such a body is never read. Nothing is taken: see [`Admission::hold_bytes`].
    pub fn check_room(&self, bytes: usize) -> Result<(), Refusal> {
        if bytes > self.budget.available_permits() {
            return Err(self.full());
        }
        self.memory_full()
    }

    /// Adds `bytes` that just arrived to what `held` holds of the queue's byte budget (given
    /// back when the batch is folded, or when the request ends first), or refuses, counted.
    /// The budget is held by bytes that came, never by bytes a client promised: a body that
    /// stalls holds what it sent, until `body_timeout` cuts it off.
    pub fn hold_bytes(
        &self,
        held: &mut Option<OwnedSemaphorePermit>,
        bytes: usize,
    ) -> Result<(), Refusal> {
        if bytes == 0 {
            return Ok(());
        }
        let more = self
            .budget
            .clone()
            .try_acquire_many_owned(bytes.min(u32::MAX as usize) as u32)
            .map_err(|_| self.full())?;
        match held {
            Some(permit) => permit.merge(more),
            None => *held = Some(more),
        }
        Ok(())
    }

    /// Exports how many bytes hold the queue's byte budget now.
    pub fn count_bytes(&self) {
        self.metrics.queue_bytes(self.queued());
    }

    /// Queues a batch if there is a place, or refuses (full: 429, or 503 in a database outage;
    /// the memory budget reached or shutting down: 503), counted.
    pub fn enqueue(&self, batch: Batch) -> Result<(), Refusal> {
        self.memory_full()?;
        let permit = self.queue.try_reserve().map_err(|e| match e {
            mpsc::error::TrySendError::Full(()) => self.full(),
            mpsc::error::TrySendError::Closed(()) => {
                self.metrics.dropped(DropReason::shutting_down, 1);
                Refusal::ShuttingDown
            }
        })?;
        permit.send(batch);
        Ok(())
    }

    /// Exports how many batches wait in the queue now.
    pub fn count_depth(&self) {
        self.metrics
            .queue_depth(self.queue.max_capacity() - self.queue.capacity());
    }

    /// Enforces the dataset limit: a new dataset over `max_datasets` is refused, counted.
    pub fn admit_dataset(&self, dataset: &str) -> Result<(), Refusal> {
        self.admit_in(&mut self.datasets(), dataset).map(drop)
    }

    fn admit_in<'d>(
        &self,
        datasets: &'d mut Datasets,
        dataset: &str,
    ) -> Result<&'d mut HashSet<String>, Refusal> {
        let known = datasets.features.len();
        match datasets.features.entry(dataset.to_owned()) {
            Entry::Occupied(features) => Ok(features.into_mut()),
            Entry::Vacant(_) if known >= self.max_datasets => {
                self.metrics.dropped(DropReason::dataset_limit, 1);
                Err(Refusal::DatasetLimit(self.max_datasets))
            }
            Entry::Vacant(slot) => Ok(slot.insert(HashSet::new())),
        }
    }

    /// Enforces the dataset and feature limits under one lock: a new dataset over
    /// `max_datasets` is refused; features of `profile` over the dataset's `max_features` (or
    /// with empty or overlong names) are removed and returned.
    pub fn admit(&self, dataset: &str, profile: &mut DatasetProfile) -> Result<Dropped, Refusal> {
        let mut datasets = self.datasets();
        let known = self.admit_in(&mut datasets, dataset)?;
        let mut dropped = Dropped::default();
        profile.features.retain(|name, feature| {
            if known.contains(name) {
                return true;
            }
            if name.len() <= MAX_FEATURE_NAME_BYTES
                && !name.is_empty()
                && known.len() < self.max_features
            {
                known.insert(name.clone());
                return true;
            }
            dropped.values += feature.count();
            if dropped.names.len() < 10 {
                dropped.names.push(name.clone());
            }
            false
        });
        Ok(dropped)
    }
}
