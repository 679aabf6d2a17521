//! Continuous evaluation: every `eval_interval`, each dataset's recent online windows are
//! compared with its reference run using `compare`'s engine and the rules ([`judge`]), and
//! their rows sampled by id with the run's (feature skew, `serve::skew`); the verdict is stored
//! (it survives restarts) with a compact record of its scores (the score history) and exported
//! as metrics. Only the leader (`serve::leader`) evaluates.

use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use std::collections::HashMap;

use super::leader::Leadership;
use super::metrics::{EvaluationMetrics, EvaluationSeries};
use super::skew;
use crate::alert::AlertState;
use crate::alert::engine::Alerting;
use crate::clock::now_ms;
use crate::config::ServeConfig;
use crate::detect::skew::SkewReport;
use crate::detect::{self, parity};
use crate::profile::DatasetProfile;
use crate::rules::RuleSet;
use crate::store::{Score, Scores, Store, StoreError};

pub async fn run(
    store: Store,
    rules: RuleSet,
    alerting: Alerting,
    config: Arc<ServeConfig>,
    metrics: EvaluationMetrics,
    leadership: Leadership,
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
        // Another process sharing the database evaluates meanwhile (`serve::leader`): the
        // series this one exported while it led would go stale, so they are withdrawn.
        if !leadership.leading() {
            for (_, series) in exported.drain() {
                metrics.withdraw(&series, &EvaluationSeries::default());
            }
            // Read from the database: the same on every replica.
            count_alerts(&store, &metrics).await;
            continue;
        }
        let datasets = match store.datasets().await {
            Ok(d) => d,
            // The database health check logs the outage, once: nothing to evaluate meanwhile.
            Err(e) if e.outage().is_some() => continue,
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
                Ok(true) => metrics.evaluated(started.elapsed().as_secs_f64()),
                Ok(false) => debug!(%dataset, "Nothing to evaluate"),
                // The lease passed to another process while this one evaluated (it was paused
                // or cut off for longer than the lease): the fence kept its successor's work.
                // Not a failure of evaluation; the leader task notices the loss at its next try.
                Err(StoreError::NotLeader) => {
                    metrics.write_refused();
                    warn!(%dataset, "Verdict refused: the leader lease is another's now");
                }
                // Stopped inside its fenced write for longer than FENCE_HOLD, this process had
                // its transaction ended by the database, so that a successor could take over.
                Err(e) if e.fence_held_too_long() => {
                    metrics.write_refused();
                    warn!(%dataset, "Verdict refused: this process stalled inside its fenced write");
                }
                Err(e) => {
                    metrics.evaluation_failed();
                    if e.outage().is_none() {
                        warn!(error = %e, %dataset, "Evaluation failed");
                    }
                }
            }
        }
        count_alerts(&store, &metrics).await;
    }
}

/// `driftd_alerts{state}` from the stored alerts.
async fn count_alerts(store: &Store, metrics: &EvaluationMetrics) {
    let alerts = match store.alerts().await {
        Ok(a) => a,
        Err(e) if e.outage().is_some() => return,
        Err(e) => {
            warn!(error = %e, "Cannot count alerts");
            return;
        }
    };
    for &state in AlertState::ALL {
        let n = alerts.iter().filter(|a| a.state == state).count();
        metrics.alerts(state, n);
    }
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
    metrics: &EvaluationMetrics,
    exported: &mut HashMap<String, EvaluationSeries>,
    dataset: &str,
) -> Result<bool, StoreError> {
    let now = now_ms();
    let Judged {
        run_id,
        pinned,
        reference,
        current,
        report,
        skew,
    } = match judge(store, rules, config, dataset, now).await? {
        Judgement::NoReference => return Ok(false),
        Judgement::NoCurrent { .. } => {
            let keep = exported
                .get(dataset)
                .map(EvaluationSeries::offline_only)
                .unwrap_or_default();
            withdraw(metrics, &keep, dataset, exported);
            exported.insert(dataset.to_owned(), keep);
            metrics.drifted_features(dataset, 0);
            let stale = go_stale(store, alerting, config, dataset, now).await?;
            metrics.stale(dataset, stale);
            return Ok(false);
        }
        Judgement::Judged(judged) => *judged,
    };
    crate::telemetry::spans::record_evaluation(&run_id, pinned, &report);
    if let Some(skew) = &skew {
        crate::telemetry::spans::record_skew(skew);
    }
    let mut json = serde_json::to_value(&report).expect("reports serialise");
    json["reference"]["run_id"] = run_id.into();
    json["reference"]["pinned"] = pinned.into();
    json["evaluated_at_ms"] = now.into();
    json["stale"] = false.into();
    // Metrics first, then the stored verdict, then alerts: whoever sees a verdict through the
    // API also finds it in /metrics.
    let sides = (&reference, &current);
    let now_exported = export(metrics, config, dataset, sides, &report, skew.as_ref());
    withdraw(metrics, &now_exported, dataset, exported);
    exported.insert(dataset.to_owned(), now_exported);
    store.put_verdict(dataset, &json.to_string(), now).await?;
    alerting
        .observe(store, dataset, &reference, &current, &report, now)
        .await?;
    // Last: the history is for people; failing to keep it must not hold back the alerts.
    let scores = scores_of(&report, now, config.metrics_max_features);
    store.put_scores(dataset, &scores).await?;
    Ok(true)
}

/// A dataset's reference run against its recent online windows, as evaluation judges it.
#[derive(Debug)]
pub enum Judgement {
    /// No offline run to compare with (or the pinned one has no profile).
    NoReference,
    /// A reference, but no online data in the last two windows.
    NoCurrent {
        run_id: String,
        pinned: bool,
    },
    Judged(Box<Judged>),
}

/// Both sides and their comparison.
#[derive(Debug)]
pub struct Judged {
    pub run_id: String,
    pub pinned: bool,
    pub reference: DatasetProfile,
    pub current: DatasetProfile,
    pub report: detect::DriftReport,
    /// The id-joined samples compared, when both sides have rows sampled by id.
    pub skew: Option<SkewReport>,
}

/// Compares the reference run with the recent past (the open window as last flushed and the
/// full window before it) under the dataset's rules, with the parity checks; what evaluation
/// stores and the daemon's page draws.
pub async fn judge(
    store: &Store,
    rules: &RuleSet,
    config: &ServeConfig,
    dataset: &str,
    now: i64,
) -> Result<Judgement, StoreError> {
    let Some((run_id, pinned)) = store.reference_run(dataset).await? else {
        return Ok(Judgement::NoReference);
    };
    let Some(reference) = store.run_profile(dataset, &run_id).await? else {
        return Ok(Judgement::NoReference);
    };
    let since = recent_since(config, now);
    let Some(current) = store.recent_windows(dataset, since).await? else {
        return Ok(Judgement::NoCurrent { run_id, pinned });
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
    let skew = skew::join(&reference, Some(&current), &dataset_rules.skew).ok();
    if let Some(skew) = &skew {
        report.schema.extend(skew.findings());
    }
    report.schema.sort_by_key(|f| std::cmp::Reverse(f.severity));
    Ok(Judgement::Judged(Box::new(Judged {
        run_id,
        pinned,
        reference,
        current,
        report,
        skew,
    })))
}

/// The scores of the first `cap` judged features, as the history keeps them.
fn scores_of(report: &detect::DriftReport, now: i64, cap: usize) -> Scores {
    let features = report
        .features
        .iter()
        .take(cap)
        .map(|(name, d)| {
            let score = Score {
                score: d.score,
                threshold: d.threshold,
                drifted: d.drift,
            };
            (name.clone(), score)
        })
        .collect();
    Scores {
        evaluated_ms: now,
        features,
    }
}

/// The start of the recent past a verdict is about: the open window (as last flushed) and the
/// full window before it.
pub fn recent_since(config: &ServeConfig, now_ms: i64) -> i64 {
    now_ms - 2 * config.window.as_millis() as i64
}

/// No online data in the last two windows: the stored verdict is marked stale, once, saying
/// since when and why (it keeps its evaluation time, so its age keeps growing), and alerts that
/// were only pending are dropped: nothing fires on data that stopped. Firing alerts stay firing,
/// marked stale in `/v1/alerts`: the last verdict still stands until data says otherwise.
/// `false` when there is no verdict to be stale (a dataset that never had online data).
async fn go_stale(
    store: &Store,
    alerting: &Alerting,
    config: &ServeConfig,
    dataset: &str,
    now: i64,
) -> Result<bool, StoreError> {
    alerting.drop_pending(store, dataset).await?;
    let Some((text, evaluated_ms)) = store.verdict(dataset).await? else {
        return Ok(false);
    };
    if let Ok(serde_json::Value::Object(mut verdict)) = serde_json::from_str(&text)
        && verdict.get("stale") != Some(&serde_json::Value::Bool(true))
    {
        let horizon = humantime::format_duration(2 * config.window);
        verdict.insert("stale".into(), true.into());
        verdict.insert("stale_since_ms".into(), now.into());
        verdict.insert(
            "stale_reason".into(),
            format!("no online data in the last {horizon} (two windows)").into(),
        );
        let text = serde_json::Value::Object(verdict).to_string();
        store.put_verdict(dataset, &text, evaluated_ms).await?;
    }
    Ok(true)
}

/// Removes the series exported last time for `dataset` that `now` no longer has.
fn withdraw(
    metrics: &EvaluationMetrics,
    now: &EvaluationSeries,
    dataset: &str,
    exported: &HashMap<String, EvaluationSeries>,
) {
    if let Some(last) = exported.get(dataset) {
        metrics.withdraw(last, now);
    }
}

fn export(
    metrics: &EvaluationMetrics,
    config: &ServeConfig,
    dataset: &str,
    (reference, current): (&DatasetProfile, &DatasetProfile),
    report: &detect::DriftReport,
    skew: Option<&SkewReport>,
) -> EvaluationSeries {
    let mut exported = EvaluationSeries::default();
    let cap = config.metrics_max_features;
    for (profile, stage) in [
        (reference, crate::profile::Stage::Offline),
        (current, crate::profile::Stage::Online),
    ] {
        if profile.rows == 0 {
            continue;
        }
        for (feature, f) in profile.features.iter().take(cap) {
            let ratio = f.nulls() as f64 / profile.rows as f64;
            metrics.nulls_ratio(&mut exported, dataset, feature, stage, ratio);
        }
    }
    for (feature, verdict) in report.features.iter().take(cap) {
        if let Some(score) = verdict.score {
            let method = verdict.method.name();
            metrics.drift_score(&mut exported, dataset, feature, method, score);
        }
        metrics.drifted(&mut exported, dataset, feature, verdict.drift);
    }
    if let Some(skew) = skew {
        export_skew(metrics, &mut exported, cap, dataset, skew);
    }
    metrics.drifted_features(dataset, report.drifted.len());
    metrics.stale(dataset, false);
    metrics.last_evaluation(dataset, now_ms());
    exported
}

/// The joined count and each compared feature's mismatch ratio (at most `cap` features).
fn export_skew(
    metrics: &EvaluationMetrics,
    exported: &mut EvaluationSeries,
    cap: usize,
    dataset: &str,
    skew: &SkewReport,
) {
    metrics.skew_joined(exported, dataset, skew.joined);
    for (feature, f) in skew.features.iter().take(cap) {
        if let Some(ratio) = f.mismatch_ratio {
            metrics.skew_ratio(exported, dataset, feature, ratio);
        }
    }
}
