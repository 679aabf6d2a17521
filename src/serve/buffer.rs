//! The durable ingest buffer (`DRIFTD_NATS_URL`): NATS JetStream between the ingest handlers
//! and the aggregator. A handler profiles its batch as without the buffer, publishes the
//! batch's profile (a profile file) to `STREAM.batches` and answers `202` only once JetStream
//! acknowledged it. Every replica pulls from one durable consumer of the stream, folds what it
//! gets into its own partial of the window open when it folds, and acknowledges each message
//! only after the window holding it is committed: a replica killed at any moment loses nothing
//! that was acknowledged, since what it had not committed is redelivered to another (or to it,
//! restarted) once `nats_ack_wait` passes. The stream sequences of the messages folded into a
//! partial are committed with it (`Store::put_applied`), so a message redelivered because its
//! replica died between that commit and its acknowledgement is acknowledged and not folded
//! again: every record counted once.
//!
//! Sidecars may also publish NDJSON records straight to `STREAM.records` (the dataset in the
//! `Driftd-Dataset` header); the replica that pulls them profiles them. Messages that can never
//! be folded (no dataset, a damaged profile) are terminated, logged with their stream sequence
//! and counted, never redelivered.
//!
//! A message must fit the server's `max_payload`. Batches of records whose profile does not are
//! split by the handler into halves, then halves of halves; a single record too large is refused
//! with 413. A full stream (its `max_bytes`) answers 429, an unreachable server 503, both with
//! `Retry-After` and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::{AckKind, Acker};
use async_nats::jetstream::stream::{DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, ErrorCode};
use futures_util::StreamExt;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::aggregate::Batch;
use super::api::AppState;
use super::api::records::{id_field, profile_batch};
use super::shutdown::Shutdown;
use crate::config::ServeConfig;
use crate::ingest::records::BodyFormat;
use crate::names::DatasetName;
use crate::profile::{DatasetProfile, Stage, file};
use crate::store::{Store, StreamId};
use crate::telemetry::spans::RecordSampler;

/// The durable consumer every replica pulls from.
pub const CONSUMER: &str = "driftd";
/// The dataset a message belongs to (both subjects).
pub const DATASET_HEADER: &str = "Driftd-Dataset";
/// `online` (the default) or `offline`.
pub const STAGE_HEADER: &str = "Driftd-Stage";
/// An offline batch's run.
pub const RUN_HEADER: &str = "Driftd-Run";
/// On `STREAM.batches`: `records` (a batch of records, profiled) or `profile` (an uploaded
/// online profile).
pub const KIND_HEADER: &str = "Driftd-Kind";
/// Most messages pulled at once by one replica.
const PULL_BATCH: usize = 64;
/// Messages delivered and not yet acknowledged, all replicas together, before JetStream waits.
const MAX_ACK_PENDING: i64 = 20_000;
/// Longest wait for JetStream to acknowledge a publish.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
/// Seconds a client is told to wait after a refusal for a full stream.
const FULL_RETRY_AFTER: u64 = 1;
/// When a redelivered message cannot be looked up (the database is unavailable), JetStream
/// delivers it again after this long.
const LOOKUP_RETRY: Duration = Duration::from_secs(5);

/// Why the buffer did not take a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BufferError {
    /// The stream is at its limits: 429.
    #[error("the ingest buffer is full ({0}); retry after {FULL_RETRY_AFTER} s")]
    Full(String),
    /// No answer from JetStream: 503.
    #[error("the ingest buffer is unavailable ({0})")]
    Unavailable(String),
    /// Over the server's `max_payload`, even split: 413.
    #[error("{bytes} bytes as a message, over the NATS server's max_payload of {max} bytes")]
    TooLarge { bytes: usize, max: usize },
}

impl BufferError {
    pub fn retry_after(&self) -> u64 {
        FULL_RETRY_AFTER
    }
}

/// What a message on `STREAM.batches` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carried {
    Records,
    Profile,
}

/// The batch a message describes, as its headers say.
#[derive(Debug, Clone)]
pub struct Head<'a> {
    pub dataset: &'a str,
    pub stage: Stage,
    pub run_id: Option<&'a str>,
    pub carried: Carried,
}

/// The JetStream stream of one deployment and this process's connection to it.
pub struct Buffer {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    stream: String,
    /// The stream's name and creation time, as counted messages are recorded under.
    id: StreamId,
    ack_wait: Duration,
    metrics: BufferMetrics,
    /// Makes the message ids of batches without an `Idempotency-Key` unique.
    counter: AtomicU64,
    prefix: String,
}

impl std::fmt::Debug for Buffer {
    // The server URL may carry credentials: only the stream is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffer")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl Buffer {
    /// Connects to the server of `nats_url` and makes sure the stream and its consumer exist
    /// (created with `nats_max_bytes` and `nats_ack_wait` when they do not; kept as they are
    /// otherwise). `None` without `nats_url`.
    pub async fn connect(
        config: &ServeConfig,
        metrics: BufferMetrics,
    ) -> anyhow::Result<Option<Buffer>> {
        let Some(url) = &config.nats_url else {
            return Ok(None);
        };
        // Errors name the kind of failure, never the URL (it may carry credentials).
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .name("driftd")
            .connect(url.expose())
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to NATS (nats_url): {}", e.kind()))?;
        let jetstream = jetstream::ContextBuilder::new()
            .timeout(PUBLISH_TIMEOUT)
            .build(client.clone());
        let stream = config.nats_stream.clone();
        let created = jetstream
            .get_or_create_stream(jetstream::stream::Config {
                name: stream.clone(),
                subjects: vec![format!("{stream}.batches"), format!("{stream}.records")],
                // Each message goes to the one consumer, and is gone once acknowledged.
                retention: RetentionPolicy::WorkQueue,
                storage: StorageType::File,
                max_bytes: config.nats_max_bytes.min(i64::MAX as usize) as i64,
                // A full stream refuses new batches (429) rather than dropping old ones.
                discard: DiscardPolicy::New,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("cannot create the JetStream stream {stream:?}: {e}"))?
            .cached_info()
            .created;
        let id = StreamId {
            name: stream.clone(),
            created_ns: i64::try_from(created.unix_timestamp_nanos()).unwrap_or(i64::MAX),
        };
        let buffer = Buffer {
            client,
            jetstream,
            stream,
            id,
            ack_wait: config.nats_ack_wait,
            metrics,
            counter: AtomicU64::new(0),
            prefix: crate::serve::writer::resolve(None),
        };
        buffer.consumer().await?;
        info!(stream = %buffer.stream, max_payload = buffer.max_payload(), "Ingest buffered by JetStream");
        Ok(Some(buffer))
    }

    async fn consumer(&self) -> anyhow::Result<PullConsumer> {
        let stream = self.jetstream.get_stream(&self.stream).await.map_err(|e| {
            anyhow::anyhow!("cannot read the JetStream stream {:?}: {e}", self.stream)
        })?;
        stream
            .get_or_create_consumer(
                CONSUMER,
                pull::Config {
                    durable_name: Some(CONSUMER.to_owned()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: self.ack_wait,
                    max_ack_pending: MAX_ACK_PENDING,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("cannot create the JetStream consumer {CONSUMER:?}: {e}"))
    }

    /// The largest message the server takes, headers included.
    pub fn max_payload(&self) -> usize {
        self.client.server_info().max_payload
    }

    /// The stream's name, also its subjects' first token.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The stream's name and creation time.
    pub fn id(&self) -> &StreamId {
        &self.id
    }

    /// Forgets the messages counted that JetStream delivers no more: those at or below the
    /// consumer's acknowledgement floor. Any replica may: the floor is the consumer's.
    async fn forget_counted(&self, store: &Store) {
        let floor = async {
            let mut consumer = self.consumer().await?;
            anyhow::Ok(consumer.info().await?.ack_floor.stream_sequence)
        };
        let floor = match floor.await {
            Ok(floor) => floor,
            Err(e) => {
                warn!(error = %e, "Cannot read the ingest buffer's acknowledgement floor");
                return;
            }
        };
        match store.forget_applied(&self.id, floor).await {
            Ok(n) => debug!(
                forgotten = n,
                floor, "Messages counted, forgotten below the floor"
            ),
            Err(e) if e.outage().is_some() => {}
            Err(e) => warn!(error = %e, "Cannot forget the ingest buffer's messages counted"),
        }
    }

    /// A message id for a batch: `key` (the request's `Idempotency-Key`) when given, so that a
    /// retried request is stored once; unique otherwise.
    pub fn message_id(&self, dataset: &str, key: Option<&str>) -> String {
        match key {
            Some(key) => format!("{dataset}/{key}"),
            None => format!(
                "{}-{}",
                self.prefix,
                self.counter.fetch_add(1, Ordering::Relaxed)
            ),
        }
    }

    /// Publishes one batch profile and waits until JetStream has it.
    pub async fn publish(
        &self,
        head: &Head<'_>,
        profile: &DatasetProfile,
        message_id: &str,
    ) -> Result<(), BufferError> {
        let payload = file::encode(profile);
        let mut headers = HeaderMap::new();
        headers.insert(DATASET_HEADER, head.dataset);
        headers.insert(STAGE_HEADER, head.stage.as_str());
        if let Some(run) = head.run_id {
            headers.insert(RUN_HEADER, run);
        }
        let carried = match head.carried {
            Carried::Records => "records",
            Carried::Profile => "profile",
        };
        headers.insert(KIND_HEADER, carried);
        headers.insert("Nats-Msg-Id", message_id);
        let max = self.max_payload();
        // The headers travel in the same message.
        let bytes = payload.len() + 256 + message_id.len() + head.dataset.len();
        if bytes > max {
            // Not counted yet: the handler may split the batch.
            return Err(BufferError::TooLarge { bytes, max });
        }
        let subject = format!("{}.batches", self.stream);
        let classified = |e: async_nats::jetstream::context::PublishError| match e.kind() {
            PublishErrorKind::MaxPayloadExceeded => BufferError::TooLarge { bytes, max },
            _ => classify(&e),
        };
        let ack = self
            .jetstream
            .publish_with_headers(subject, headers, payload.into())
            .await
            .map_err(classified)?;
        let ack = ack.await.map_err(classified)?;
        if ack.duplicate {
            self.metrics.duplicates.inc();
        }
        self.metrics.published.inc();
        Ok(())
    }
}

/// A publish error as the client should see it: a full stream is 429, the rest 503.
fn classify(e: &async_nats::jetstream::context::PublishError) -> BufferError {
    let kind = e.kind();
    let api = std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<jetstream::Error>())
        .map(|api| (api.error_code(), api.to_string()));
    match (kind, api) {
        (PublishErrorKind::MaxAckPending, _) => {
            BufferError::Full("too many publishes waiting for JetStream".into())
        }
        (_, Some((code, text)))
            if [
                ErrorCode::STREAM_STORE_FAILED,
                ErrorCode::STORAGE_RESOURCES_EXCEEDED,
                ErrorCode::INSUFFICIENT_RESOURCES,
            ]
            .contains(&code) =>
        {
            BufferError::Full(text)
        }
        (_, Some((_, text))) => BufferError::Unavailable(text),
        (kind, None) => BufferError::Unavailable(kind.to_string()),
    }
}

/// A message folded and not yet acknowledged: acknowledged once the window holding it is
/// committed, told "in progress" while writes fail, terminated if its window is given up.
pub struct Delivered {
    acker: Acker,
    /// The message's stream sequence, committed with the partial it is folded into.
    pub sequence: u64,
}

impl std::fmt::Debug for Delivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Delivered")
    }
}

impl Delivered {
    pub async fn ack(&self) {
        self.send(AckKind::Ack).await;
    }

    /// Restarts the message's `ack_wait`: it is still being worked on.
    pub async fn in_progress(&self) {
        self.send(AckKind::Progress).await;
    }

    /// Never to be delivered again.
    pub async fn term(&self) {
        self.send(AckKind::Term).await;
    }

    async fn send(&self, kind: AckKind) {
        // A lost acknowledgement redelivers the message after ack_wait: counted twice, never lost.
        if let Err(e) = self.acker.ack_with(kind).await {
            warn!(error = %e, "Cannot acknowledge a message of the ingest buffer");
        }
    }
}

/// Makes sure acknowledgements sent so far have left for the server.
pub async fn flush(client: &async_nats::Client) {
    if let Err(e) = client.flush().await {
        warn!(error = %e, "Cannot flush acknowledgements to the ingest buffer");
    }
}

impl Buffer {
    pub fn client(&self) -> async_nats::Client {
        self.client.clone()
    }
}

/// Pulls messages from the stream's consumer into the aggregator's queue until intake stops.
/// The queue is bounded: while it is full nothing more is pulled, and JetStream keeps the rest.
pub async fn consume(
    buffer: Arc<Buffer>,
    state: AppState,
    queue: mpsc::Sender<Batch>,
    shutdown: Shutdown,
) {
    let mut backoff = Duration::from_millis(200);
    // The record of messages counted is cut down to what JetStream may still deliver once per
    // acknowledgement wait: a message is redelivered at most that often.
    let mut forget = tokio::time::interval(buffer.ack_wait);
    forget.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let messages = async {
            let consumer = buffer.consumer().await?;
            consumer
                .stream()
                .max_messages_per_batch(PULL_BATCH)
                .heartbeat(Duration::from_secs(5))
                .expires(Duration::from_secs(30))
                .messages()
                .await
                .map_err(anyhow::Error::from)
        };
        let mut messages = tokio::select! {
            () = shutdown.intake_over() => return,
            m = messages => match m {
                Ok(m) => {
                    backoff = Duration::from_millis(200);
                    m
                }
                Err(e) => {
                    warn!(error = %e, "Cannot pull from the ingest buffer; retrying");
                    tokio::select! {
                        () = shutdown.intake_over() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            },
        };
        loop {
            let next = tokio::select! {
                () = shutdown.intake_over() => return,
                _ = forget.tick() => {
                    buffer.forget_counted(&state.store).await;
                    continue;
                }
                next = messages.next() => next,
            };
            match next {
                Some(Ok(message)) => {
                    if !take(&buffer, &state, &queue, message).await {
                        return;
                    }
                }
                Some(Err(e)) => {
                    warn!(error = %e, "Pulling from the ingest buffer failed");
                    if matches!(
                        e.kind(),
                        pull::MessagesErrorKind::ConsumerDeleted
                            | pull::MessagesErrorKind::RequestLimitExceeded
                    ) {
                        break;
                    }
                }
                None => break,
            }
        }
    }
}

/// Hands one message to the aggregator; `false` once the queue is closed (shutting down: the
/// message is left unacknowledged, for another replica).
async fn take(
    buffer: &Buffer,
    state: &AppState,
    queue: &mpsc::Sender<Batch>,
    message: jetstream::Message,
) -> bool {
    let sequence = message.info().map_or(0, |i| i.stream_sequence);
    let redelivered = message.info().is_ok_and(|i| i.delivered > 1);
    let (message, acker) = message.split();
    let delivered = Delivered { acker, sequence };
    if redelivered {
        buffer.metrics.redelivered.inc();
        // Its replica may have died after committing it and before acknowledging it.
        match state.store.applied(&buffer.id, sequence).await {
            Ok(true) => {
                buffer.metrics.taken(subject_of(&message), Outcome::counted);
                delivered.ack().await;
                return true;
            }
            Ok(false) => {}
            Err(e) => {
                if e.outage().is_none() {
                    warn!(stream.sequence = sequence, error = %e, "Cannot tell whether a redelivered message is counted; it is delivered again");
                }
                delivered.send(AckKind::Nak(Some(LOOKUP_RETRY))).await;
                return true;
            }
        }
    }
    let subject = subject_of(&message);
    let batch = match subject {
        Subject::batches => batch_of(&message),
        Subject::records => records_of(state, &message),
    };
    match batch {
        Ok(Some(batch)) => {
            buffer.metrics.taken(subject, Outcome::folded);
            queue.send(batch.delivered(delivered)).await.is_ok()
        }
        Ok(None) => {
            // Records that were all refused: nothing to fold, nothing to redeliver.
            buffer.metrics.taken(subject, Outcome::empty);
            delivered.ack().await;
            true
        }
        Err(why) => {
            warn!(stream.sequence = sequence, subject = %message.subject, error = %why, "Unreadable message in the ingest buffer; terminated");
            buffer.metrics.taken(subject, Outcome::rejected);
            delivered.term().await;
            true
        }
    }
}

fn subject_of(message: &async_nats::Message) -> Subject {
    if message.subject.ends_with(".records") {
        Subject::records
    } else {
        Subject::batches
    }
}

fn header<'m>(message: &'m async_nats::Message, name: &str) -> Option<&'m str> {
    message
        .headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.as_str())
}

/// The dataset, stage and run a message's headers name.
fn head_of(message: &async_nats::Message) -> Result<(DatasetName, Stage, Option<String>), String> {
    let dataset = header(message, DATASET_HEADER)
        .ok_or_else(|| format!("no {DATASET_HEADER} header"))?
        .parse::<DatasetName>()
        .map_err(|e| format!("{DATASET_HEADER}: {e}"))?;
    let stage = match header(message, STAGE_HEADER) {
        None => Stage::Online,
        Some(s) => s
            .parse::<Stage>()
            .map_err(|_| format!("{STAGE_HEADER}: {s:?} is neither online nor offline"))?,
    };
    let run = header(message, RUN_HEADER).map(str::to_owned);
    if let Some(run) = &run {
        super::offline::check_identifier("run_id", run)
            .map_err(|e| format!("{RUN_HEADER}: {e}"))?;
    }
    if stage == Stage::Offline && run.is_none() {
        return Err(format!("an offline batch needs a {RUN_HEADER} header"));
    }
    Ok((dataset, stage, run))
}

/// A profiled batch published by a replica's handler.
fn batch_of(message: &async_nats::Message) -> Result<Option<Batch>, String> {
    let (dataset, stage, run_id) = head_of(message)?;
    let mut profile = file::decode(message.payload.as_ref())
        .map_err(|e| format!("not a readable profile file: {e}"))?;
    profile.dataset = dataset.to_string();
    profile.stage = stage;
    let batch = match header(message, KIND_HEADER) {
        Some("profile") => Batch::Profile {
            dataset: dataset.as_str().into(),
            profile: Box::new(profile),
            budget: None,
            delivered: None,
        },
        Some("records") | None => records_batch(&dataset, stage, run_id, profile),
        Some(other) => return Err(format!("{KIND_HEADER}: unknown kind {other:?}")),
    };
    Ok(Some(batch))
}

/// NDJSON records a sidecar published straight to the stream: profiled here, under this
/// replica's limits, and counted as if they had been posted.
fn records_of(state: &AppState, message: &async_nats::Message) -> Result<Option<Batch>, String> {
    let (dataset, stage, run_id) = head_of(message)?;
    let metrics = &state.metrics.ingest;
    let mut sampled = RecordSampler::new(0.0, 0);
    let id = id_field(state, &dataset);
    let (mut profile, problems, streamed) = profile_batch(
        BodyFormat::Ndjson,
        &message.payload,
        (&dataset, stage, &id),
        &state.config,
        &mut sampled,
    )
    .map_err(|e| e.to_string())?;
    profile.labels = streamed.labels;
    let dropped = state
        .admission
        .admit(&dataset, &mut profile)
        .map_err(|e| e.to_string())?;
    if let Some(first) = streamed.rejected.first() {
        warn!(dataset = %dataset, rejected = streamed.rejected_count, first.index = first.index, first.reason = %first.reason, "Records refused from the ingest buffer");
    }
    if streamed.rejected_count > 0 {
        metrics.records_rejected(&dataset, stage, streamed.rejected_count as u64);
    }
    let ignored = problems.ignored_values + dropped.values;
    if ignored > 0 {
        metrics.dropped(super::metrics::DropReason::feature_limit, ignored);
    }
    metrics.records_accepted(&dataset, stage, profile.rows);
    if profile.rows == 0 {
        return Ok(None);
    }
    Ok(Some(records_batch(&dataset, stage, run_id, profile)))
}

/// Records of a message, profiled, for the aggregator (its budget is the stream's).
fn records_batch(
    dataset: &DatasetName,
    stage: Stage,
    run_id: Option<String>,
    profile: DatasetProfile,
) -> Batch {
    Batch::Records {
        dataset: dataset.as_str().into(),
        stage,
        run_id,
        profile: Box::new(profile),
        budget: None,
        delivered: None,
    }
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum Subject {
    batches,
    records,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum Outcome {
    /// Handed to the aggregator.
    folded,
    /// Records all refused: acknowledged, nothing to fold.
    empty,
    /// Unreadable: terminated.
    rejected,
    /// Redelivered, and already counted in a partial: acknowledged, not folded again.
    counted,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TakenLabels {
    subject: Subject,
    outcome: Outcome,
}

/// The buffer's families: what was published, refused and taken.
#[derive(Debug, Clone, Default)]
pub struct BufferMetrics {
    published: Counter,
    duplicates: Counter,
    taken: Family<TakenLabels, Counter>,
    redelivered: Counter,
    twice: Counter,
    unacked: Gauge,
}

impl BufferMetrics {
    pub fn register(registry: &mut Registry) -> BufferMetrics {
        let m = BufferMetrics::default();
        registry.register(
            "buffer_published",
            "Batches this process published to the ingest buffer and JetStream acknowledged",
            m.published.clone(),
        );
        registry.register(
            "buffer_duplicates",
            "Published batches JetStream already had (a retried request with the same Idempotency-Key)",
            m.duplicates.clone(),
        );
        registry.register(
            "buffer_messages",
            "Messages this process took from the ingest buffer, by subject and outcome",
            m.taken.clone(),
        );
        registry.register(
            "buffer_redelivered",
            "Messages taken that had been delivered before (to a replica that did not acknowledge them)",
            m.redelivered.clone(),
        );
        registry.register(
            "buffer_counted_twice",
            "Messages this process wrote that another replica had written already (this one held them past nats_ack_wait before writing)",
            m.twice.clone(),
        );
        registry.register(
            "buffer_unacknowledged",
            "Messages folded into open windows, acknowledged once their windows are written",
            m.unacked.clone(),
        );
        m
    }

    fn taken(&self, subject: Subject, outcome: Outcome) {
        self.taken
            .get_or_create(&TakenLabels { subject, outcome })
            .inc();
    }

    /// Messages written that another replica had written too.
    pub fn counted_twice(&self, n: u64) {
        self.twice.inc_by(n);
    }

    /// Messages folded and waiting for their windows' writes.
    pub fn unacknowledged(&self, n: usize) {
        self.unacked.set(n as i64);
    }
}
