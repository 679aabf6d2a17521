//! Offline runs: each report (a profile part, a set of counters) re-judges its run against the
//! runs before it, stores what broke from its history, keeps the latest run's gauges current and
//! tells the alerting.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use serde::Serialize;

use super::metrics::{CounterMetrics, LatestRunSeries};
use crate::alert::engine::Alerting;
use crate::detect::anomaly::{self, Point, Verdict};
use crate::profile::DatasetProfile;
use crate::rules::RuleSet;
use crate::store::{RunAnomaly, Source, Store, StoreError};

/// The run metric holding a run's row count.
pub const ROWS: &str = "profile.rows";
/// Run metric names of features' null ratios start with this.
pub const NULLS_RATIO: &str = "profile.nulls_ratio.";

/// Changes of a null ratio smaller than one percentage point are never anomalous unless the
/// rule files say otherwise: a feature that was never null gaining one null in a million rows
/// is not news.
const NULLS_RATIO_MIN_CHANGE: f64 = 0.01;

/// Figures of a run's profile judged like counters: its rows and, for up to `cap` features,
/// their null ratio.
pub fn run_metrics(profile: &DatasetProfile, cap: usize) -> Vec<(String, f64)> {
    let mut metrics = vec![(ROWS.to_owned(), profile.rows as f64)];
    if profile.rows > 0 {
        for (name, feature) in profile.features.iter().take(cap) {
            metrics.push((
                format!("{NULLS_RATIO}{name}"),
                feature.nulls() as f64 / profile.rows as f64,
            ));
        }
    }
    metrics
}

/// One judged value of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Judged {
    pub name: String,
    /// `counter` or `metric`.
    pub source: &'static str,
    pub value: f64,
    /// `learning` (too few earlier runs), `normal` or `anomalous`.
    pub verdict: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
    /// Earlier runs the expectation was made of (or found, while learning).
    pub runs: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
}

/// What the serve loop needs to judge runs.
#[derive(Debug)]
pub struct Runs {
    pub rules: RuleSet,
    pub alerting: Alerting,
    /// Series of the latest run exported per dataset, to remove those a newer run lacks.
    exported: Mutex<HashMap<String, LatestRunSeries>>,
}

impl Runs {
    pub fn new(rules: RuleSet, alerting: Alerting) -> Runs {
        Runs {
            rules,
            alerting,
            exported: Mutex::default(),
        }
    }

    /// Judges every counter and run metric of `run_id` against earlier runs, stores its
    /// anomalies and, when it is the dataset's latest run, refreshes the gauges and alerts.
    pub async fn judge(
        &self,
        store: &Store,
        metrics: &CounterMetrics,
        dataset: &str,
        run_id: &str,
        now_ms: i64,
    ) -> Result<Vec<Judged>, StoreError> {
        let Some(run) = store.run(dataset, run_id).await? else {
            return Ok(Vec::new());
        };
        let rules = self.rules.for_dataset(dataset);
        let mut judged = Vec::new();
        let mut anomalies = Vec::new();
        for source in [Source::Counter, Source::Metric] {
            let mut history = store
                .run_history(dataset, source, run.run_ms, rules.anomaly.history as i64)
                .await?;
            for (name, value) in store.run_values(dataset, run_id, source).await? {
                let Some(mut policy) = rules.anomaly.policy_for(&name) else {
                    continue;
                };
                if name.starts_with(NULLS_RATIO) && !rules.anomaly.counters.contains_key(&name) {
                    policy.min_change = policy.min_change.max(NULLS_RATIO_MIN_CHANGE);
                }
                let history: Vec<Point> = history
                    .remove(&name)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|v| Point {
                        at_ms: v.at_ms,
                        value: v.value,
                        flagged: v.flagged,
                    })
                    .collect();
                let current = Point {
                    at_ms: run.run_ms,
                    value,
                    flagged: false,
                };
                let source_name = match source {
                    Source::Counter => "counter",
                    Source::Metric => "metric",
                };
                judged.push(match anomaly::judge(&history, current, &policy) {
                    Verdict::Learning { runs, .. } => Judged {
                        name,
                        source: source_name,
                        value,
                        verdict: "learning",
                        expected: None,
                        low: None,
                        high: None,
                        runs,
                        baseline: None,
                    },
                    Verdict::Judged(j) => {
                        if j.anomalous {
                            anomalies.push(RunAnomaly {
                                run_id: run_id.to_owned(),
                                name: name.clone(),
                                value,
                                expected: j.expected,
                                low: j.low,
                                high: j.high,
                                baseline: j.baseline.describe(),
                                runs: j.runs as i64,
                                found_ms: now_ms,
                                acknowledged: false,
                            });
                        }
                        Judged {
                            name,
                            source: source_name,
                            value,
                            verdict: if j.anomalous { "anomalous" } else { "normal" },
                            expected: Some(j.expected),
                            low: Some(j.low),
                            high: Some(j.high),
                            runs: j.runs,
                            baseline: Some(j.baseline.describe()),
                        }
                    }
                });
            }
        }
        store.put_run_anomalies(dataset, run_id, &anomalies).await?;
        let latest = store.runs(dataset, 1).await?;
        if latest.first().is_some_and(|r| r.run_id == run_id) {
            self.refresh(store, metrics, dataset).await?;
            let stored = store.run_anomalies(dataset, run_id).await?;
            let messages: Vec<String> = stored
                .iter()
                .filter(|a| !a.acknowledged)
                .map(describe)
                .collect();
            self.alerting
                .observe_run(store, dataset, &messages, now_ms)
                .await?;
        }
        Ok(judged)
    }

    /// Sets the gauges of `dataset`'s latest run: `driftd_run_counter`, `driftd_run_metric`,
    /// `driftd_run_anomalous` and `driftd_last_run_timestamp_seconds`.
    pub async fn refresh(
        &self,
        store: &Store,
        metrics: &CounterMetrics,
        dataset: &str,
    ) -> Result<(), StoreError> {
        let Some(run) = store.runs(dataset, 1).await?.into_iter().next() else {
            return Ok(());
        };
        let mut now = LatestRunSeries::default();
        for (name, value) in store
            .run_values(dataset, &run.run_id, Source::Counter)
            .await?
        {
            metrics.run_counter(&mut now, dataset, &name, value);
        }
        for (name, value) in store
            .run_values(dataset, &run.run_id, Source::Metric)
            .await?
        {
            metrics.run_metric(&mut now, dataset, &name, value);
        }
        let anomalous: HashSet<String> = store
            .run_anomalies(dataset, &run.run_id)
            .await?
            .into_iter()
            .filter(|a| !a.acknowledged)
            .map(|a| a.name)
            .collect();
        metrics.run_anomalous(&mut now, |name| anomalous.contains(name));
        metrics.last_run(dataset, run.reported_ms);
        // Only series labels: a panic elsewhere leaves them usable, so poisoning is ignored.
        let mut exported = self
            .exported
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(last) = exported.get(dataset) {
            metrics.withdraw(last, &now);
        }
        exported.insert(dataset.to_owned(), now);
        Ok(())
    }
}

/// "rows_read = 1,000 in run r42; expected 9,412 to 10,588 (median 10,000 of 30 earlier runs)".
pub fn describe(a: &RunAnomaly) -> String {
    let fmt = crate::format::format_number;
    format!(
        "{} = {} in run {}; expected {} to {} (median {} of {} {})",
        a.name,
        fmt(a.value),
        a.run_id,
        fmt(a.low),
        fmt(a.high),
        fmt(a.expected),
        a.runs,
        a.baseline
    )
}
