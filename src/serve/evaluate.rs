//! Continuous evaluation: every `eval_interval`, each dataset's recent online windows are
//! compared with its reference run using `compare`'s engine and the rules; the verdict is
//! stored (it survives restarts) and exported as metrics.

use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use std::collections::{HashMap, HashSet};

use super::metrics::{
    AlertStateLabel, AlertStateLabels, DatasetFeature, DatasetLabel, FeatureMethod, FeatureStage,
    Metrics, StageLabel, Text,
};
use super::now_ms;
use crate::alert::engine::Alerting;
use crate::config::ServeConfig;
use crate::detect::{self, parity};
use crate::profile::DatasetProfile;
use crate::rules::RuleSet;
use crate::store::{Store, StoreError};

pub async fn run(
    store: Store,
    rules: RuleSet,
    alerting: Alerting,
    config: Arc<ServeConfig>,
    metrics: Metrics,
    stop: CancellationToken,
) {
    let mut exported = HashMap::new();
    let mut tick = tokio::time::interval(config.eval_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let datasets = match store.datasets().await {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, "Cannot list datasets to evaluate");
                continue;
            }
        };
        for dataset in &datasets {
            let dataset = dataset.as_str();
            let started = Instant::now();
            match evaluate(
                &store,
                &rules,
                &alerting,
                &config,
                &metrics,
                &mut exported,
                dataset,
            )
            .await
            {
                Ok(true) => metrics
                    .evaluation_duration
                    .observe(started.elapsed().as_secs_f64()),
                Ok(false) => debug!(%dataset, "Nothing to evaluate"),
                Err(e) => {
                    metrics.evaluations_failed.inc();
                    warn!(error = %e, %dataset, "Evaluation failed");
                }
            }
        }
        count_alerts(&store, &metrics).await;
    }
}

/// `driftd_alerts{state}` from the stored alerts.
async fn count_alerts(store: &Store, metrics: &Metrics) {
    let alerts = match store.alerts().await {
        Ok(a) => a,
        Err(e) => {
            warn!(error = %e, "Cannot count alerts");
            return;
        }
    };
    for (state, label) in [
        ("pending", AlertStateLabel::pending),
        ("firing", AlertStateLabel::firing),
        ("resolved", AlertStateLabel::resolved),
    ] {
        let n = alerts.iter().filter(|a| a.state == state).count();
        metrics
            .alerts
            .get_or_create(&AlertStateLabels { state: label })
            .set(n as i64);
    }
}

/// The metric series exported for one dataset at its last evaluation, so that series of
/// features that went away, or of a dataset without recent traffic, are removed rather than
/// left showing their last value.
#[derive(Debug, Default)]
pub struct Exported {
    nulls: HashSet<FeatureStage>,
    scores: HashSet<FeatureMethod>,
    drifted: HashSet<DatasetFeature>,
}

/// Evaluates one dataset; `false` when it lacks a reference or recent online data (its drift
/// series are then withdrawn: no data, no verdict).
#[allow(clippy::too_many_arguments)]
#[tracing::instrument(
    target = "driftd::span", name = "evaluate", skip_all, fields(dataset = %dataset), err(Display)
)]
pub async fn evaluate(
    store: &Store,
    rules: &RuleSet,
    alerting: &Alerting,
    config: &ServeConfig,
    metrics: &Metrics,
    exported: &mut HashMap<String, Exported>,
    dataset: &str,
) -> Result<bool, StoreError> {
    let now = now_ms();
    let Some((run_id, pinned)) = store.reference_run(dataset).await? else {
        return Ok(false);
    };
    let Some(reference) = store.run_profile(dataset, &run_id).await? else {
        return Ok(false);
    };
    // The recent past: the open window (as last flushed) and the full window before it.
    let since = now - 2 * config.window.as_millis() as i64;
    let Some(current) = store.recent_windows(dataset, since).await? else {
        let keep = Exported {
            nulls: exported
                .get(dataset)
                .map(|last| {
                    last.nulls
                        .iter()
                        .filter(|l| l.stage == StageLabel::offline)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
            ..Exported::default()
        };
        withdraw(metrics, &keep, dataset, exported);
        exported.insert(dataset.to_owned(), keep);
        metrics
            .dataset_drifted_features
            .get_or_create(&DatasetLabel {
                dataset: dataset.to_owned(),
            })
            .set(0);
        return Ok(false);
    };
    let dataset_rules = rules.for_dataset(dataset);
    let mut report = detect::compare(&reference, &current, &dataset_rules);
    // Training/serving parity: null ratios of the reference run and the recent windows, and
    // counter ratios of the latest run and the recent online counters.
    report.schema.extend(parity::null_ratios(
        &dataset_rules.parity,
        &reference,
        &current,
    ));
    if !dataset_rules.parity.ratios.is_empty() {
        let offline = store
            .latest_run_counters(dataset)
            .await?
            .into_iter()
            .map(|(name, _, value)| (name, value))
            .collect();
        let online = store
            .online_counter_totals(dataset, now - config.parity_window.as_millis() as i64)
            .await?
            .into_iter()
            .collect();
        let (_, findings) = parity::counter_ratios(&dataset_rules.parity, &offline, &online);
        report.schema.extend(findings);
    }
    report.schema.sort_by_key(|f| std::cmp::Reverse(f.severity));
    crate::telemetry::spans::record_evaluation(&run_id, pinned, &report);
    let mut json = serde_json::to_value(&report).expect("reports serialise");
    json["reference"]["run_id"] = run_id.into();
    json["reference"]["pinned"] = pinned.into();
    json["evaluated_at_ms"] = now.into();
    // Metrics first, then the stored verdict, then alerts: whoever sees a verdict through the
    // API also finds it in /metrics.
    let now_exported = export(metrics, config, dataset, &reference, &current, &report);
    withdraw(metrics, &now_exported, dataset, exported);
    exported.insert(dataset.to_owned(), now_exported);
    store.put_verdict(dataset, &json.to_string(), now).await?;
    alerting
        .observe(store, dataset, &reference, &current, &report, now)
        .await?;
    Ok(true)
}

/// Removes the series exported last time for `dataset` that `now` no longer has.
fn withdraw(
    metrics: &Metrics,
    now: &Exported,
    dataset: &str,
    exported: &HashMap<String, Exported>,
) {
    let Some(last) = exported.get(dataset) else {
        return;
    };
    for labels in last.nulls.difference(&now.nulls) {
        metrics.feature_nulls_ratio.remove(labels);
    }
    for labels in last.scores.difference(&now.scores) {
        metrics.feature_drift_score.remove(labels);
    }
    for labels in last.drifted.difference(&now.drifted) {
        metrics.feature_drifted.remove(labels);
    }
}

fn export(
    metrics: &Metrics,
    config: &ServeConfig,
    dataset: &str,
    reference: &DatasetProfile,
    current: &DatasetProfile,
    report: &detect::DriftReport,
) -> Exported {
    let mut exported = Exported::default();
    let cap = config.metrics_max_features;
    for (profile, stage) in [
        (reference, crate::profile::Stage::Offline),
        (current, crate::profile::Stage::Online),
    ] {
        for (feature, f) in profile.features.iter().take(cap) {
            if profile.rows > 0 {
                let labels = FeatureStage {
                    dataset: dataset.to_owned(),
                    feature: Text(feature.clone()),
                    stage: stage.into(),
                };
                metrics
                    .feature_nulls_ratio
                    .get_or_create(&labels)
                    .set(f.nulls() as f64 / profile.rows as f64);
                exported.nulls.insert(labels);
            }
        }
    }
    for (feature, verdict) in report.features.iter().take(cap) {
        if let Some(score) = verdict.score {
            let labels = FeatureMethod {
                dataset: dataset.to_owned(),
                feature: Text(feature.clone()),
                method: verdict.method.name().to_owned(),
            };
            metrics
                .feature_drift_score
                .get_or_create(&labels)
                .set(score);
            exported.scores.insert(labels);
        }
        let labels = DatasetFeature {
            dataset: dataset.to_owned(),
            feature: Text(feature.clone()),
        };
        metrics
            .feature_drifted
            .get_or_create(&labels)
            .set(i64::from(verdict.drift));
        exported.drifted.insert(labels);
    }
    let label = DatasetLabel {
        dataset: dataset.to_owned(),
    };
    metrics
        .dataset_drifted_features
        .get_or_create(&label)
        .set(report.drifted.len() as i64);
    metrics
        .last_evaluation
        .get_or_create(&label)
        .set(now_ms() as f64 / 1000.0);
    exported
}
