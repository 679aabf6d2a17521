//! Continuous evaluation: every `eval_interval`, each dataset's recent online windows are
//! compared with its reference run using `compare`'s engine and the rules; the verdict is
//! stored (it survives restarts) and exported as metrics.

use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::metrics::{DatasetFeature, DatasetLabel, FeatureMethod, FeatureStage, Metrics, Text};
use super::now_ms;
use crate::config::ServeConfig;
use crate::detect::{self, RuleSet};
use crate::profile::DatasetProfile;
use crate::store::{Store, StoreError};

pub async fn run(
    store: Store,
    rules: RuleSet,
    config: Arc<ServeConfig>,
    metrics: Metrics,
    stop: CancellationToken,
) {
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
        for dataset in datasets {
            let started = Instant::now();
            match evaluate(&store, &rules, &config, &metrics, &dataset).await {
                Ok(true) => metrics
                    .evaluation_duration
                    .observe(started.elapsed().as_secs_f64()),
                Ok(false) => debug!(%dataset, "Nothing to evaluate yet"),
                Err(e) => {
                    metrics.evaluations_failed.inc();
                    warn!(error = %e, %dataset, "Evaluation failed");
                }
            }
        }
    }
}

/// Evaluates one dataset; `false` when it lacks a reference or recent online data.
pub async fn evaluate(
    store: &Store,
    rules: &RuleSet,
    config: &ServeConfig,
    metrics: &Metrics,
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
        return Ok(false);
    };
    let report = detect::compare(&reference, &current, &rules.for_dataset(dataset));
    let mut json = serde_json::to_value(&report).expect("reports serialise");
    json["reference"]["run_id"] = run_id.into();
    json["reference"]["pinned"] = pinned.into();
    json["evaluated_at_ms"] = now.into();
    store.put_verdict(dataset, &json.to_string(), now).await?;
    export(metrics, config, dataset, &reference, &current, &report);
    Ok(true)
}

fn export(
    metrics: &Metrics,
    config: &ServeConfig,
    dataset: &str,
    reference: &DatasetProfile,
    current: &DatasetProfile,
    report: &detect::DriftReport,
) {
    let cap = config.metrics_max_features;
    for (profile, stage) in [
        (reference, crate::profile::Stage::Offline),
        (current, crate::profile::Stage::Online),
    ] {
        for (feature, f) in profile.features.iter().take(cap) {
            if profile.rows > 0 {
                metrics
                    .feature_nulls_ratio
                    .get_or_create(&FeatureStage {
                        dataset: dataset.to_owned(),
                        feature: Text(feature.clone()),
                        stage: stage.into(),
                    })
                    .set(f.nulls() as f64 / profile.rows as f64);
            }
        }
    }
    for (feature, verdict) in report.features.iter().take(cap) {
        if let Some(score) = verdict.score {
            metrics
                .feature_drift_score
                .get_or_create(&FeatureMethod {
                    dataset: dataset.to_owned(),
                    feature: Text(feature.clone()),
                    method: verdict.method.name().to_owned(),
                })
                .set(score);
        }
        metrics
            .feature_drifted
            .get_or_create(&DatasetFeature {
                dataset: dataset.to_owned(),
                feature: Text(feature.clone()),
            })
            .set(i64::from(verdict.drift));
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
}
