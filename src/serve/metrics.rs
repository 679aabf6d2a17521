//! driftd's Prometheus metrics (OpenMetrics text at `/metrics`). Offline and online figures
//! share a family and differ in the `stage` label. Label values come from bounded sets:
//! datasets are capped by `max_datasets`, features by `metrics_max_features` per dataset.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

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
    /// Body over the limit: 413.
    too_large,
    /// Not JSON / NDJSON, or compressed: 415.
    unsupported_media_type,
    /// Unparseable body or bad parameters: 400.
    invalid_request,
    /// A record that is not a JSON object.
    invalid_record,
    /// A new dataset over `max_datasets`.
    dataset_limit,
    /// Values of features over `max_features`.
    feature_limit,
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

/// How a delivery attempt ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum DeliveryOutcome {
    sent,
    rate_limited,
    retry,
    permanent_failure,
    gave_up,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum AlertStateLabel {
    pending,
    firing,
    resolved,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotifierOutcome {
    /// One of a fixed set of notifier names (slack, webhook, alertmanager).
    pub notifier: String,
    pub outcome: DeliveryOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotifierLabel {
    pub notifier: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertStateLabels {
    pub state: AlertStateLabel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DatasetStage {
    pub dataset: String,
    pub stage: StageLabel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: DropReason,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeatureStage {
    pub dataset: String,
    pub feature: Text,
    pub stage: StageLabel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeatureMethod {
    pub dataset: String,
    pub feature: Text,
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DatasetFeature {
    pub dataset: String,
    pub feature: Text,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DatasetLabel {
    pub dataset: String,
}

/// A counter on one side. Counter names are checked (`[a-zA-Z_][a-zA-Z0-9_]*`) and capped
/// per dataset by `max_counters`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CounterStage {
    pub dataset: String,
    pub name: String,
    pub stage: StageLabel,
}

/// A counter or run metric of the latest offline run. Run metric names carry feature names.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DatasetName {
    pub dataset: String,
    pub name: Text,
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CounterRejectionLabel {
    pub reason: CounterRejection,
}

/// Every metric `driftd serve` exports. Cheap to clone (all handles are shared).
#[derive(Clone, Debug)]
pub struct Metrics {
    pub records: Family<DatasetStage, Counter>,
    pub records_rejected: Family<DatasetStage, Counter>,
    pub ingest_dropped: Family<Reason, Counter>,
    pub queue_depth: Gauge,
    pub evaluation_duration: Histogram,
    pub evaluations_failed: Counter,
    pub feature_nulls_ratio: Family<FeatureStage, Gauge<f64, AtomicU64>>,
    pub feature_drift_score: Family<FeatureMethod, Gauge<f64, AtomicU64>>,
    pub feature_drifted: Family<DatasetFeature, Gauge>,
    pub dataset_drifted_features: Family<DatasetLabel, Gauge>,
    pub last_evaluation: Family<DatasetLabel, Gauge<f64, AtomicU64>>,
    pub alerts: Family<AlertStateLabels, Gauge>,
    pub notifications: Family<NotifierOutcome, Counter>,
    pub notifier_failing: Family<NotifierLabel, Gauge>,
    pub counter_total: Family<CounterStage, Counter<f64, AtomicU64>>,
    pub run_counter: Family<DatasetName, Gauge<f64, AtomicU64>>,
    pub run_metric: Family<DatasetName, Gauge<f64, AtomicU64>>,
    pub run_anomalous: Family<DatasetName, Gauge>,
    pub last_run: Family<DatasetLabel, Gauge<f64, AtomicU64>>,
    pub counter_reports_rejected: Family<CounterRejectionLabel, Counter>,
}

impl Metrics {
    /// Registers every family under the `driftd` prefix.
    pub fn register(registry: &mut Registry) -> Metrics {
        let m = Metrics {
            records: Family::default(),
            records_rejected: Family::default(),
            ingest_dropped: Family::default(),
            queue_depth: Gauge::default(),
            evaluation_duration: Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]),
            evaluations_failed: Counter::default(),
            feature_nulls_ratio: Family::default(),
            feature_drift_score: Family::default(),
            feature_drifted: Family::default(),
            dataset_drifted_features: Family::default(),
            last_evaluation: Family::default(),
            alerts: Family::default(),
            notifications: Family::default(),
            notifier_failing: Family::default(),
            counter_total: Family::default(),
            run_counter: Family::default(),
            run_metric: Family::default(),
            run_anomalous: Family::default(),
            last_run: Family::default(),
            counter_reports_rejected: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("driftd");
        r.register(
            "records",
            "Records accepted, by dataset and stage",
            m.records.clone(),
        );
        r.register(
            "records_rejected",
            "Records refused as unreadable, by dataset and stage",
            m.records_rejected.clone(),
        );
        r.register(
            "ingest_dropped",
            "Requests or values turned away by ingest, by reason",
            m.ingest_dropped.clone(),
        );
        r.register(
            "ingest_queue_depth",
            "Record batches waiting to be profiled",
            m.queue_depth.clone(),
        );
        r.register(
            "evaluation_duration_seconds",
            "Time to evaluate drift for one dataset",
            m.evaluation_duration.clone(),
        );
        r.register(
            "evaluations_failed",
            "Evaluations that failed (see the logs)",
            m.evaluations_failed.clone(),
        );
        r.register("feature_nulls_ratio", "Share of null values of a feature: in the reference run (offline) and the recent online windows (online)", m.feature_nulls_ratio.clone());
        r.register(
            "feature_drift_score",
            "Drift score of a feature by method (noise floor removed)",
            m.feature_drift_score.clone(),
        );
        r.register(
            "feature_drifted",
            "1 when a feature drifted at the latest evaluation",
            m.feature_drifted.clone(),
        );
        r.register(
            "dataset_drifted_features",
            "Drifted features of a dataset at the latest evaluation",
            m.dataset_drifted_features.clone(),
        );
        r.register(
            "last_evaluation_timestamp_seconds",
            "When a dataset was last evaluated",
            m.last_evaluation.clone(),
        );
        r.register("alerts", "Alerts by state", m.alerts.clone());
        r.register(
            "notifications",
            "Notification delivery attempts by notifier and outcome",
            m.notifications.clone(),
        );
        r.register(
            "notifier_failing",
            "1 when a notifier's last delivery failed for good (bad URL, revoked webhook)",
            m.notifier_failing.clone(),
        );
        r.register(
            "counter",
            "Pipeline and serving counters: each offline run adds its totals, each online report its increments",
            m.counter_total.clone(),
        );
        r.register(
            "run_counter",
            "A counter's value in the latest offline run",
            m.run_counter.clone(),
        );
        r.register(
            "run_metric",
            "A figure of the latest offline run's profile (profile.rows, profile.nulls_ratio.FEATURE)",
            m.run_metric.clone(),
        );
        r.register(
            "run_anomalous",
            "1 when the latest offline run's counter or run metric broke from its history",
            m.run_anomalous.clone(),
        );
        r.register(
            "last_run_timestamp_seconds",
            "When a dataset's latest offline run was reported",
            m.last_run.clone(),
        );
        r.register(
            "counter_reports_rejected",
            "Counter reports refused, by reason",
            m.counter_reports_rejected.clone(),
        );
        m
    }

    pub fn counter_rejected(&self, reason: CounterRejection) {
        self.counter_reports_rejected
            .get_or_create(&CounterRejectionLabel { reason })
            .inc();
    }

    pub fn dropped(&self, reason: DropReason, n: u64) {
        self.ingest_dropped
            .get_or_create(&Reason { reason })
            .inc_by(n);
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
            .feature_drifted
            .get_or_create(&DatasetFeature {
                dataset: "d".into(),
                feature: Text("a\"b\\c\nd} 1".into()),
            })
            .set(1);
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
