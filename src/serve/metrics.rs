//! driftd's Prometheus metrics (OpenMetrics text at `/metrics`). Offline and online figures
//! share a family and differ in the `stage` label. Label values come from bounded sets:
//! datasets are capped by `max_datasets`, features by `metrics_max_features` per dataset.
//!
//! Each subsystem owns its metrics struct, registered under the one `driftd` registry as
//! prometheus-client and linkerd2-proxy do: [`IngestMetrics`] (records, drops, the queue), [`EvaluationMetrics`] (verdicts and alerts by state),
//! [`CounterMetrics`] (counters reported and the latest offline run's gauges), [`HttpMetrics`]
//! (connections) and `alert::DeliveryMetrics`.
//! Code updates them through named methods; label sets stay in this module.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::alert::{AlertState, DeliveryMetrics};
use crate::profile::Stage;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum StageLabel {
    offline,
    online,
}

impl From<Stage> for StageLabel {
    fn from(s: Stage) -> Self {
        match s {
            Stage::Offline => StageLabel::offline,
            Stage::Online => StageLabel::online,
        }
    }
}

/// Why ingest turned something away.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum DropReason {
    /// The profiling queue was full: 429.
    queue_full,
    /// Shutting down: 503.
    shutting_down,
    /// The database is unreachable or cannot be written and the memory set aside for
    /// unwritten records (`queue_bytes`) is full: 503.
    database_unavailable,
    /// Body over the limit: 413.
    too_large,
    /// Not JSON / NDJSON, or a coding other than gzip and zstd: 415.
    unsupported_media_type,
    /// Unparseable body or bad parameters: 400.
    invalid_request,
    /// A record that is not a JSON object.
    invalid_record,
    /// A new dataset over `max_datasets`.
    dataset_limit,
    /// Open windows and queued requests hold `max_memory`: 503.
    memory_limit,
    /// Values of features over `max_features`.
    feature_limit,
    /// A connection over `max_connections`, closed at once.
    connection_limit,
    /// A connection whose request headers (or TLS handshake) took over `header_timeout`.
    header_timeout,
    /// A request body slower than `body_min_bytes` per `body_timeout`: 408.
    body_timeout,
    /// The ingest buffer's stream is full (`nats_max_bytes`): 429.
    buffer_full,
    /// The ingest buffer (NATS JetStream) did not answer: 503.
    buffer_unavailable,
}

/// Which listener a connection came to.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum ListenerLabel {
    /// `listen`: the API.
    api,
    /// `metrics_listen`: probes and metrics.
    probes,
}

/// Why a counter report was refused.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum CounterRejection {
    /// Not JSON, not an object, unknown fields, bad labels or run time.
    malformed,
    unknown_stage,
    missing_run_id,
    invalid_name,
    invalid_value,
    /// New names over `max_counters`.
    counter_limit,
    dataset_limit,
}

/// A label value from data (a feature name): escaped as the exposition format requires, since
/// the encoder writes label values verbatim and one `"` would break the whole scrape.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Text(pub String);

impl EncodeLabelValue for Text {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        for c in self.0.chars() {
            match c {
                '\\' => encoder.write_str("\\\\")?,
                '"' => encoder.write_str("\\\"")?,
                '\n' => encoder.write_str("\\n")?,
                c => encoder.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertStateLabels {
    state: AlertState,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DatasetStage {
    dataset: String,
    stage: StageLabel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Listener {
    listener: ListenerLabel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: DropReason,
}

/// The null ratio of a feature on one side.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeatureStage {
    dataset: String,
    feature: Text,
    stage: StageLabel,
}

/// The drift score of a feature by one method.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeatureMethod {
    dataset: String,
    feature: Text,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DatasetFeature {
    dataset: String,
    feature: Text,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DatasetLabel {
    dataset: String,
}

/// A counter on one side. Counter names are checked (`[a-zA-Z_][a-zA-Z0-9_]*`) and capped
/// per dataset by `max_counters`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CounterStage {
    dataset: String,
    name: String,
    stage: StageLabel,
}

/// A counter or run metric of the latest offline run. Run metric names carry feature names.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunSeries {
    dataset: String,
    name: Text,
}

impl RunSeries {
    pub fn name(&self) -> &str {
        &self.name.0
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CounterRejectionLabel {
    reason: CounterRejection,
}

/// Removes the series of `family` exported `before` that are not among those exported `now`:
/// a feature that went away, a counter a newer run lacks, stops showing its last value.
fn withdraw_stale<S, M, C>(family: &Family<S, M, C>, before: &HashSet<S>, now: &HashSet<S>)
where
    S: Clone + Hash + Eq,
    C: MetricConstructor<M>,
{
    for labels in before.difference(now) {
        family.remove(labels);
    }
}

/// Every metric `driftd serve` exports, one struct per subsystem. Cheap to clone (all
/// handles are shared).
#[derive(Clone, Debug)]
pub struct Metrics {
    pub ingest: IngestMetrics,
    pub evaluation: EvaluationMetrics,
    pub delivery: DeliveryMetrics,
    pub counters: CounterMetrics,
    pub database: DatabaseMetrics,
    pub http: HttpMetrics,
    pub leader: super::leader::LeaderMetrics,
    pub buffer: super::buffer::BufferMetrics,
}

impl Metrics {
    /// Registers every subsystem's families under the `driftd` prefix.
    pub fn register(registry: &mut Registry) -> Metrics {
        let r = registry.sub_registry_with_prefix("driftd");
        Metrics {
            ingest: IngestMetrics::register(r),
            evaluation: EvaluationMetrics::register(r),
            delivery: DeliveryMetrics::register(r),
            counters: CounterMetrics::register(r),
            database: DatabaseMetrics::register(r),
            http: HttpMetrics::register(r),
            leader: super::leader::LeaderMetrics::register(r),
            buffer: super::buffer::BufferMetrics::register(r),
        }
    }
}

/// The database: whether the health check reaches it, and what waits in memory to be written.
#[derive(Clone, Debug)]
pub struct DatabaseMetrics {
    up: Gauge,
    unwritten_windows: Gauge,
    unwritten_records: Gauge,
}

impl DatabaseMetrics {
    pub fn register(registry: &mut Registry) -> DatabaseMetrics {
        let m = DatabaseMetrics {
            up: Gauge::default(),
            unwritten_windows: Gauge::default(),
            unwritten_records: Gauge::default(),
        };
        // Up until the health check says otherwise: driftd serves only once it reached it.
        m.up.set(1);
        registry.register(
            "database_up",
            "1 while the database answers the health check, 0 while it does not",
            m.up.clone(),
        );
        registry.register(
            "database_unwritten_windows",
            "Windows and runs held in memory because writing them failed",
            m.unwritten_windows.clone(),
        );
        registry.register(
            "database_unwritten_records",
            "Records in windows and runs held in memory because writing them failed",
            m.unwritten_records.clone(),
        );
        m
    }

    pub fn up(&self, up: bool) {
        self.up.set(i64::from(up));
    }

    /// What waits in memory for the database.
    pub fn unwritten(&self, windows: usize, records: u64) {
        self.unwritten_windows.set(windows as i64);
        self.unwritten_records
            .set(i64::try_from(records).unwrap_or(i64::MAX));
    }
}

/// Ingest: records and profiles accepted or refused, the queue, counters reported.
#[derive(Clone, Debug)]
pub struct IngestMetrics {
    records: Family<DatasetStage, Counter>,
    records_rejected: Family<DatasetStage, Counter>,
    dropped: Family<Reason, Counter>,
    queue_depth: Gauge,
    queue_bytes: Gauge,
    open_windows_bytes: Gauge,
    memory_limit: Gauge,
}

impl IngestMetrics {
    pub fn register(registry: &mut Registry) -> IngestMetrics {
        let m = IngestMetrics {
            records: Family::default(),
            records_rejected: Family::default(),
            dropped: Family::default(),
            queue_depth: Gauge::default(),
            queue_bytes: Gauge::default(),
            open_windows_bytes: Gauge::default(),
            memory_limit: Gauge::default(),
        };
        registry.register(
            "records",
            "Records accepted, by dataset and stage",
            m.records.clone(),
        );
        registry.register(
            "records_rejected",
            "Records refused as unreadable, by dataset and stage",
            m.records_rejected.clone(),
        );
        registry.register(
            "ingest_dropped",
            "Requests or values turned away by ingest, by reason",
            m.dropped.clone(),
        );
        registry.register(
            "ingest_queue_depth",
            "Record batches waiting to be profiled",
            m.queue_depth.clone(),
        );
        registry.register(
            "ingest_queue_bytes",
            "Request bytes holding the queue's byte budget (queue_bytes): bodies being read and batches waiting",
            m.queue_bytes.clone(),
        );
        registry.register(
            "memory_open_windows_bytes",
            "Memory the open windows of every dataset hold, estimated from their sketches",
            m.open_windows_bytes.clone(),
        );
        registry.register(
            "memory_limit_bytes",
            "The memory budget (max_memory) of open windows and queued requests together",
            m.memory_limit.clone(),
        );
        m
    }

    /// What the open windows hold in memory.
    pub fn open_windows_bytes(&self, bytes: usize) {
        self.open_windows_bytes
            .set(bytes.min(i64::MAX as usize) as i64);
    }

    /// The memory budget, exported once at start.
    pub fn memory_limit(&self, bytes: usize) {
        self.memory_limit.set(bytes.min(i64::MAX as usize) as i64);
    }

    /// `n` records of `dataset` accepted on `stage` (the series exists from the first request,
    /// even when `n` is 0).
    pub fn records_accepted(&self, dataset: &str, stage: Stage, n: u64) {
        self.records
            .get_or_create(&dataset_stage(dataset, stage))
            .inc_by(n);
    }

    /// `n` records refused as unreadable: counted for the dataset and as dropped.
    pub fn records_rejected(&self, dataset: &str, stage: Stage, n: u64) {
        self.records_rejected
            .get_or_create(&dataset_stage(dataset, stage))
            .inc_by(n);
        self.dropped(DropReason::invalid_record, n);
    }

    /// `n` requests or values turned away for `reason`.
    pub fn dropped(&self, reason: DropReason, n: u64) {
        self.dropped.get_or_create(&Reason { reason }).inc_by(n);
    }

    /// Batches waiting in the profiling queue.
    pub fn queue_depth(&self, batches: usize) {
        self.queue_depth.set(batches as i64);
    }

    /// Bytes of the queue's byte budget held now.
    pub fn queue_bytes(&self, bytes: usize) {
        self.queue_bytes.set(bytes as i64);
    }
}

/// The HTTP listeners: connections open and connections refused over the cap.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    open: Family<Listener, Gauge>,
    refused: Family<Listener, Counter>,
}

impl HttpMetrics {
    pub fn register(registry: &mut Registry) -> HttpMetrics {
        let m = HttpMetrics {
            open: Family::default(),
            refused: Family::default(),
        };
        registry.register(
            "http_connections_open",
            "Connections open, by listener",
            m.open.clone(),
        );
        registry.register(
            "http_connections_refused",
            "Connections closed at once for being over the listener's cap, by listener",
            m.refused.clone(),
        );
        m
    }

    /// The series of `listener` exist from its start, at 0.
    pub fn listening(&self, listener: ListenerLabel) {
        drop(self.open.get_or_create(&Listener { listener }));
        drop(self.refused.get_or_create(&Listener { listener }));
    }

    pub fn opened(&self, listener: ListenerLabel) {
        self.open.get_or_create(&Listener { listener }).inc();
    }

    pub fn closed(&self, listener: ListenerLabel) {
        self.open.get_or_create(&Listener { listener }).dec();
    }

    pub fn refused(&self, listener: ListenerLabel) {
        self.refused.get_or_create(&Listener { listener }).inc();
    }
}

fn dataset_stage(dataset: &str, stage: Stage) -> DatasetStage {
    DatasetStage {
        dataset: dataset.to_owned(),
        stage: stage.into(),
    }
}

/// The series one evaluation of a dataset exported, to withdraw at the next one those it no
/// longer has.
#[derive(Debug, Default)]
pub struct EvaluationSeries {
    nulls: HashSet<FeatureStage>,
    scores: HashSet<FeatureMethod>,
    drifted: HashSet<DatasetFeature>,
    skew_ratios: HashSet<DatasetFeature>,
    skew_joined: HashSet<DatasetLabel>,
}

impl EvaluationSeries {
    /// Only the offline null ratios of `self`: what stays exported when a dataset has no recent
    /// online data (the reference is still there; no data, no verdict).
    pub fn offline_only(&self) -> EvaluationSeries {
        EvaluationSeries {
            nulls: self
                .nulls
                .iter()
                .filter(|l| l.stage == StageLabel::offline)
                .cloned()
                .collect(),
            ..EvaluationSeries::default()
        }
    }
}

/// Continuous evaluation: its duration and failures, each feature's verdict, and alerts by
/// state.
#[derive(Clone, Debug)]
pub struct EvaluationMetrics {
    duration: Histogram,
    failed: Counter,
    refused: Counter,
    feature_nulls_ratio: Family<FeatureStage, Gauge<f64, AtomicU64>>,
    feature_drift_score: Family<FeatureMethod, Gauge<f64, AtomicU64>>,
    feature_drifted: Family<DatasetFeature, Gauge>,
    dataset_drifted_features: Family<DatasetLabel, Gauge>,
    last_evaluation: Family<DatasetLabel, Gauge<f64, AtomicU64>>,
    stale: Family<DatasetLabel, Gauge>,
    feature_skew_ratio: Family<DatasetFeature, Gauge<f64, AtomicU64>>,
    feature_skew_joined: Family<DatasetLabel, Gauge>,
    alerts: Family<AlertStateLabels, Gauge>,
}

impl EvaluationMetrics {
    pub fn register(registry: &mut Registry) -> EvaluationMetrics {
        let m = EvaluationMetrics {
            duration: Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]),
            failed: Counter::default(),
            refused: Counter::default(),
            feature_nulls_ratio: Family::default(),
            feature_drift_score: Family::default(),
            feature_drifted: Family::default(),
            dataset_drifted_features: Family::default(),
            last_evaluation: Family::default(),
            stale: Family::default(),
            feature_skew_ratio: Family::default(),
            feature_skew_joined: Family::default(),
            alerts: Family::default(),
        };
        registry.register(
            "evaluation_duration_seconds",
            "Time to evaluate drift for one dataset",
            m.duration.clone(),
        );
        registry.register(
            "evaluations_failed",
            "Evaluations that failed (see the logs)",
            m.failed.clone(),
        );
        registry.register(
            "leader_writes_refused",
            "Verdicts and alert changes this process tried to write under a leader lease that had passed to another (a pause longer than the lease), or that stalled inside their write for longer than the database allows; refused, the successor's stand",
            m.refused.clone(),
        );
        registry.register("feature_nulls_ratio", "Share of null values of a feature: in the reference run (offline) and the recent online windows (online)", m.feature_nulls_ratio.clone());
        registry.register(
            "feature_drift_score",
            "Drift score of a feature by method (noise floor removed)",
            m.feature_drift_score.clone(),
        );
        registry.register(
            "feature_drifted",
            "1 when a feature drifted at the latest evaluation",
            m.feature_drifted.clone(),
        );
        registry.register(
            "dataset_drifted_features",
            "Drifted features of a dataset at the latest evaluation",
            m.dataset_drifted_features.clone(),
        );
        registry.register(
            "last_evaluation_timestamp_seconds",
            "When a dataset was last evaluated",
            m.last_evaluation.clone(),
        );
        registry.register(
            "dataset_stale",
            "1 while a dataset's verdict is stale: no online data in the last two windows",
            m.stale.clone(),
        );
        registry.register(
            "feature_skew_ratio",
            "Share of the id-joined examples whose feature differs offline and online",
            m.feature_skew_ratio.clone(),
        );
        registry.register(
            "feature_skew_joined",
            "Ids joined between the reference run's sample and the recent online windows'",
            m.feature_skew_joined.clone(),
        );
        registry.register("alerts", "Alerts by state", m.alerts.clone());
        m
    }

    pub fn evaluated(&self, seconds: f64) {
        self.duration.observe(seconds);
    }

    pub fn evaluation_failed(&self) {
        self.failed.inc();
    }

    /// An evaluation whose verdict or alert change the lease fence refused.
    pub fn write_refused(&self) {
        self.refused.inc();
    }

    /// A feature's share of nulls on `stage`, remembered in `series`.
    pub fn nulls_ratio(
        &self,
        series: &mut EvaluationSeries,
        dataset: &str,
        feature: &str,
        stage: Stage,
        ratio: f64,
    ) {
        let labels = FeatureStage {
            dataset: dataset.to_owned(),
            feature: Text(feature.to_owned()),
            stage: stage.into(),
        };
        self.feature_nulls_ratio.get_or_create(&labels).set(ratio);
        series.nulls.insert(labels);
    }

    /// A feature's drift score by `method`, remembered in `series`.
    pub fn drift_score(
        &self,
        series: &mut EvaluationSeries,
        dataset: &str,
        feature: &str,
        method: &str,
        score: f64,
    ) {
        let labels = FeatureMethod {
            dataset: dataset.to_owned(),
            feature: Text(feature.to_owned()),
            method: method.to_owned(),
        };
        self.feature_drift_score.get_or_create(&labels).set(score);
        series.scores.insert(labels);
    }

    /// Whether a feature drifted, remembered in `series`.
    pub fn drifted(
        &self,
        series: &mut EvaluationSeries,
        dataset: &str,
        feature: &str,
        drifted: bool,
    ) {
        let labels = DatasetFeature {
            dataset: dataset.to_owned(),
            feature: Text(feature.to_owned()),
        };
        self.feature_drifted
            .get_or_create(&labels)
            .set(i64::from(drifted));
        series.drifted.insert(labels);
    }

    pub fn drifted_features(&self, dataset: &str, n: usize) {
        self.dataset_drifted_features
            .get_or_create(&dataset_label(dataset))
            .set(n as i64);
    }

    /// Whether `dataset`'s verdict is stale (no online data in the last two windows).
    pub fn stale(&self, dataset: &str, stale: bool) {
        self.stale
            .get_or_create(&dataset_label(dataset))
            .set(i64::from(stale));
    }

    pub fn last_evaluation(&self, dataset: &str, at_ms: i64) {
        self.last_evaluation
            .get_or_create(&dataset_label(dataset))
            .set(at_ms as f64 / 1000.0);
    }

    /// A feature's mismatch ratio over the id-joined examples, remembered in `series`.
    pub fn skew_ratio(
        &self,
        series: &mut EvaluationSeries,
        dataset: &str,
        feature: &str,
        ratio: f64,
    ) {
        let labels = DatasetFeature {
            dataset: dataset.to_owned(),
            feature: Text(feature.to_owned()),
        };
        self.feature_skew_ratio.get_or_create(&labels).set(ratio);
        series.skew_ratios.insert(labels);
    }

    /// Ids joined for the skew comparison, remembered in `series`.
    pub fn skew_joined(&self, series: &mut EvaluationSeries, dataset: &str, joined: u64) {
        let labels = dataset_label(dataset);
        self.feature_skew_joined
            .get_or_create(&labels)
            .set(joined.min(i64::MAX as u64) as i64);
        series.skew_joined.insert(labels);
    }

    /// Removes the series exported `before` that `now` no longer has.
    pub fn withdraw(&self, before: &EvaluationSeries, now: &EvaluationSeries) {
        withdraw_stale(&self.feature_nulls_ratio, &before.nulls, &now.nulls);
        withdraw_stale(&self.feature_drift_score, &before.scores, &now.scores);
        withdraw_stale(&self.feature_drifted, &before.drifted, &now.drifted);
        let ratios = (&before.skew_ratios, &now.skew_ratios);
        withdraw_stale(&self.feature_skew_ratio, ratios.0, ratios.1);
        let joined = (&before.skew_joined, &now.skew_joined);
        withdraw_stale(&self.feature_skew_joined, joined.0, joined.1);
    }

    /// `driftd_alerts{state}`.
    pub fn alerts(&self, state: AlertState, n: usize) {
        self.alerts
            .get_or_create(&AlertStateLabels { state })
            .set(n as i64);
    }
}

fn dataset_label(dataset: &str) -> DatasetLabel {
    DatasetLabel {
        dataset: dataset.to_owned(),
    }
}

/// The series of a dataset's latest run, to withdraw those a newer run lacks.
#[derive(Debug, Default)]
pub struct LatestRunSeries {
    counters: HashSet<RunSeries>,
    metrics: HashSet<RunSeries>,
    anomalous: HashSet<RunSeries>,
}

/// Counters on both sides, and the latest offline run of each dataset: its counters, run
/// metrics, which broke from their history, and when it was reported.
#[derive(Clone, Debug)]
pub struct CounterMetrics {
    counter_total: Family<CounterStage, Counter<f64, AtomicU64>>,
    run_counter: Family<RunSeries, Gauge<f64, AtomicU64>>,
    run_metric: Family<RunSeries, Gauge<f64, AtomicU64>>,
    run_anomalous: Family<RunSeries, Gauge>,
    last_run: Family<DatasetLabel, Gauge<f64, AtomicU64>>,
    reports_rejected: Family<CounterRejectionLabel, Counter>,
}

impl CounterMetrics {
    pub fn register(registry: &mut Registry) -> CounterMetrics {
        let m = CounterMetrics {
            counter_total: Family::default(),
            run_counter: Family::default(),
            run_metric: Family::default(),
            run_anomalous: Family::default(),
            last_run: Family::default(),
            reports_rejected: Family::default(),
        };
        registry.register(
            "counter",
            "Pipeline and serving counters: each offline run adds its totals, each online report its increments",
            m.counter_total.clone(),
        );
        registry.register(
            "run_counter",
            "A counter's value in the latest offline run",
            m.run_counter.clone(),
        );
        registry.register(
            "run_metric",
            "A figure of the latest offline run's profile (profile.rows, profile.nulls_ratio.FEATURE)",
            m.run_metric.clone(),
        );
        registry.register(
            "run_anomalous",
            "1 when the latest offline run's counter or run metric broke from its history",
            m.run_anomalous.clone(),
        );
        registry.register(
            "last_run_timestamp_seconds",
            "When a dataset's latest offline run was reported",
            m.last_run.clone(),
        );
        registry.register(
            "counter_reports_rejected",
            "Counter reports refused, by reason",
            m.reports_rejected.clone(),
        );
        m
    }

    /// Adds `by` to counter `name` of `dataset` on `stage` (the series exists from the first
    /// report; a counter never goes down, so nothing is added for `by <= 0`).
    pub fn counter_added(&self, dataset: &str, stage: Stage, name: &str, by: f64) {
        let counter = self.counter_total.get_or_create(&CounterStage {
            dataset: dataset.to_owned(),
            name: name.to_owned(),
            stage: stage.into(),
        });
        if by > 0.0 {
            counter.inc_by(by);
        }
    }

    pub fn counter_rejected(&self, reason: CounterRejection) {
        self.reports_rejected
            .get_or_create(&CounterRejectionLabel { reason })
            .inc();
    }

    /// A counter's value in the dataset's latest run, remembered in `series`.
    pub fn run_counter(&self, series: &mut LatestRunSeries, dataset: &str, name: &str, value: f64) {
        let labels = run_series(dataset, name);
        self.run_counter.get_or_create(&labels).set(value);
        series.counters.insert(labels);
    }

    /// A figure of the latest run's profile, remembered in `series`.
    pub fn run_metric(&self, series: &mut LatestRunSeries, dataset: &str, name: &str, value: f64) {
        let labels = run_series(dataset, name);
        self.run_metric.get_or_create(&labels).set(value);
        series.metrics.insert(labels);
    }

    /// Marks each counter and run metric of `series` anomalous or not.
    pub fn run_anomalous(&self, series: &mut LatestRunSeries, anomalous: impl Fn(&str) -> bool) {
        let all: Vec<RunSeries> = series
            .counters
            .iter()
            .chain(&series.metrics)
            .cloned()
            .collect();
        for labels in all {
            self.run_anomalous
                .get_or_create(&labels)
                .set(i64::from(anomalous(labels.name())));
            series.anomalous.insert(labels);
        }
    }

    pub fn last_run(&self, dataset: &str, reported_ms: i64) {
        self.last_run
            .get_or_create(&dataset_label(dataset))
            .set(reported_ms as f64 / 1000.0);
    }

    /// Removes the series of the run exported `before` that the latest run `now` lacks.
    pub fn withdraw(&self, before: &LatestRunSeries, now: &LatestRunSeries) {
        withdraw_stale(&self.run_counter, &before.counters, &now.counters);
        withdraw_stale(&self.run_metric, &before.metrics, &now.metrics);
        withdraw_stale(&self.run_anomalous, &before.anomalous, &now.anomalous);
    }
}

fn run_series(dataset: &str, name: &str) -> RunSeries {
    RunSeries {
        dataset: dataset.to_owned(),
        name: Text(name.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_feature_names_are_escaped() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        metrics
            .evaluation
            .drifted(&mut EvaluationSeries::default(), "d", "a\"b\\c\nd} 1", true);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(
                "driftd_feature_drifted{dataset=\"d\",feature=\"a\\\"b\\\\c\\nd} 1\"} 1\n"
            ),
            "{text}"
        );
    }
}
