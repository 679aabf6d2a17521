//! Turns verdicts into alerts: each alert rule's condition is checked against a dataset's
//! latest verdict, the state machine advances, and every transition that people must hear
//! about is written to the outbox in the same transaction as the new state.

use std::collections::BTreeMap;

use super::state::{self, AlertState, Standing, Transition};
use super::{AlertSeverity, FeatureLine, Notification, Notifier, Status, Topic};
use crate::config::ServeConfig;
use crate::detect::{DriftReport, Severity};
use crate::profile::{DatasetProfile, FeatureProfile, Kind};
use crate::rules::{AlertWhen, RuleSet};
use crate::store::{AlertRow, OutboxEntry, Store, StoreError};

/// What makes an alert active.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// At least `min_features` drifted features (among `features`, when given).
    Drift {
        min_features: usize,
        features: Option<Vec<String>>,
    },
    /// At least one data-invariant finding at `min_severity` or above.
    Invariant { min_severity: Severity },
    /// The latest offline run has a counter or run metric that broke from its history.
    RunAnomaly,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    pub name: String,
    /// A dataset name, or "*" for every dataset.
    pub dataset: String,
    pub condition: Condition,
    pub for_ms: i64,
    pub severity: AlertSeverity,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Notifiers to tell; empty means every configured one.
    pub notify: Vec<String>,
}

/// How often a firing alert is sent to Alertmanager again.
pub const ALERTMANAGER_REFRESH_MS: i64 = 60_000;

#[derive(Debug, Clone)]
pub struct Alerting {
    rules: Vec<AlertRule>,
    notifiers: Vec<Notifier>,
    grafana_url: Option<String>,
    honeycomb_url: Option<String>,
}

impl Alerting {
    /// The alert rules of the rule files; without any, driftd alerts on any drifted feature of
    /// any dataset, and on invariant errors, after `alert_for`.
    pub fn new(config: &ServeConfig, rules: &RuleSet) -> Alerting {
        let mut alerting = Alerting::from_config(config);
        let specs = rules.alerts();
        if !specs.is_empty() {
            let default_for = config.alert_for.as_millis() as i64;
            alerting.rules = specs
                .into_iter()
                .map(|a| AlertRule {
                    name: a.name,
                    dataset: a.dataset,
                    condition: match a.when {
                        AlertWhen::Drift => Condition::Drift {
                            min_features: a.min_features,
                            features: a.features,
                        },
                        AlertWhen::Invariant => Condition::Invariant {
                            min_severity: a.min_severity,
                        },
                        AlertWhen::RunAnomaly => Condition::RunAnomaly,
                    },
                    // A run is judged once: its alert fires at once unless asked otherwise.
                    for_ms: a.for_duration.map_or(
                        if a.when == AlertWhen::RunAnomaly {
                            0
                        } else {
                            default_for
                        },
                        |d| d.as_millis() as i64,
                    ),
                    severity: a.severity,
                    labels: a.labels,
                    annotations: a.annotations,
                    notify: a.notify,
                })
                .collect();
        }
        alerting
    }

    /// With any notifier configured, driftd alerts on any drifted feature of any dataset, and
    /// on invariant errors, after `alert_for`.
    pub fn from_config(config: &ServeConfig) -> Alerting {
        let mut notifiers = Vec::new();
        if config.slack_webhook_url.is_some() {
            notifiers.push(Notifier::Slack);
        }
        if config.webhook_url.is_some() {
            notifiers.push(Notifier::Webhook);
        }
        if config.alertmanager_url.is_some() {
            notifiers.push(Notifier::Alertmanager);
        }
        let for_ms = config.alert_for.as_millis() as i64;
        let rules = vec![
            AlertRule {
                name: "input_drift".into(),
                dataset: "*".into(),
                condition: Condition::Drift {
                    min_features: 1,
                    features: None,
                },
                for_ms,
                severity: AlertSeverity::Warning,
                labels: BTreeMap::new(),
                annotations: BTreeMap::new(),
                notify: Vec::new(),
            },
            AlertRule {
                name: "run_anomaly".into(),
                dataset: "*".into(),
                condition: Condition::RunAnomaly,
                for_ms: 0,
                severity: AlertSeverity::Warning,
                labels: BTreeMap::new(),
                annotations: BTreeMap::new(),
                notify: Vec::new(),
            },
            AlertRule {
                name: "broken_invariant".into(),
                dataset: "*".into(),
                condition: Condition::Invariant {
                    min_severity: Severity::Error,
                },
                for_ms,
                severity: severity_of(Severity::Error),
                labels: BTreeMap::new(),
                annotations: BTreeMap::new(),
                notify: Vec::new(),
            },
        ];
        Alerting {
            rules,
            notifiers,
            grafana_url: config.grafana_url.clone(),
            honeycomb_url: config.honeycomb_url.clone(),
        }
    }

    pub fn rules(&self) -> &[AlertRule] {
        &self.rules
    }

    /// Advances every drift and invariant rule that applies to `dataset` with its latest
    /// verdict.
    pub async fn observe(
        &self,
        store: &Store,
        dataset: &str,
        reference: &DatasetProfile,
        current: &DatasetProfile,
        report: &DriftReport,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        for rule in self.applicable(dataset) {
            if rule.condition == Condition::RunAnomaly {
                continue;
            }
            let active = holds(&rule.condition, report);
            self.advance(rule, dataset, active, now_ms, store, |standing, status| {
                self.notification(rule, dataset, standing, status, reference, current, report)
            })
            .await?;
        }
        Ok(())
    }

    /// Advances every run-anomaly rule that applies to `dataset` with the judgement of its
    /// latest offline run: `anomalies` says, in words, what broke from its history.
    pub async fn observe_run(
        &self,
        store: &Store,
        dataset: &str,
        anomalies: &[String],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        for rule in self.applicable(dataset) {
            if rule.condition != Condition::RunAnomaly {
                continue;
            }
            let active = !anomalies.is_empty();
            self.advance(rule, dataset, active, now_ms, store, |standing, status| {
                let mut n = self.bare_notification(rule, dataset, standing, status);
                n.findings = anomalies.to_vec();
                n
            })
            .await?;
        }
        Ok(())
    }

    /// Drops the pending drift and invariant alerts of `dataset`, whose online data stopped:
    /// they would wait forever for an evaluation that never comes. Never fired, nobody was
    /// told, so nobody is told now either.
    pub async fn drop_pending(&self, store: &Store, dataset: &str) -> Result<(), StoreError> {
        for rule in self.applicable(dataset) {
            if rule.condition == Condition::RunAnomaly {
                continue;
            }
            let fingerprint = state::fingerprint(&rule.name, dataset);
            if store
                .alert(&fingerprint)
                .await?
                .is_some_and(|a| a.state == AlertState::Pending)
            {
                store.delete_alert(&fingerprint).await?;
            }
        }
        Ok(())
    }

    /// Whether `rule` follows the online verdict (drift, invariants), rather than offline runs.
    pub fn follows_verdict(&self, rule: &str) -> bool {
        self.rules
            .iter()
            .any(|r| r.name == rule && r.condition != Condition::RunAnomaly)
    }

    fn applicable<'a>(&'a self, dataset: &'a str) -> impl Iterator<Item = &'a AlertRule> + 'a {
        self.rules
            .iter()
            .filter(move |r| r.dataset == "*" || r.dataset == dataset)
    }

    /// One step of `rule`'s state machine for `dataset`; the state and any notification it
    /// calls for are written in one transaction.
    async fn advance(
        &self,
        rule: &AlertRule,
        dataset: &str,
        active: bool,
        now_ms: i64,
        store: &Store,
        notification: impl Fn(&Standing, Status) -> Notification,
    ) -> Result<(), StoreError> {
        let fingerprint = state::fingerprint(&rule.name, dataset);
        let previous = store.alert(&fingerprint).await?;
        let standing = previous.as_ref().and_then(standing_of);
        let (next, transition) = state::step(standing.as_ref(), active, now_ms, rule.for_ms);
        let Some(next) = next else {
            if previous.is_some() {
                store.delete_alert(&fingerprint).await?;
            }
            return Ok(());
        };
        if !active && transition == Transition::None && standing.as_ref() == Some(&next) {
            return Ok(());
        }
        let status = if next.state == AlertState::Resolved {
            Status::Resolved
        } else {
            Status::Firing
        };
        let mut notification = notification(&next, status);
        if status == Status::Resolved
            && let Some(firing) = previous
                .as_ref()
                .and_then(|p| serde_json::from_str::<Notification>(&p.summary).ok())
        {
            // Say what resolved.
            notification.features = firing.features;
            notification.findings = firing.findings;
        }
        let payload = serde_json::to_string(&notification).expect("notifications serialise");
        let silenced = previous
            .as_ref()
            .is_some_and(|p| p.silenced_until_ms > now_ms);
        let mut entries: Vec<OutboxEntry> = match transition {
            Transition::Fired | Transition::Resolved if !silenced => self
                .targets(rule)
                .map(|notifier| OutboxEntry {
                    fingerprint: fingerprint.clone(),
                    notifier,
                    event: status,
                    payload: payload.clone(),
                    created_ms: now_ms,
                })
                .collect(),
            _ => Vec::new(),
        };
        // Alertmanager resolves an alert it has not heard of for `resolve_timeout` (5 min by
        // default): while firing, it hears again every `ALERTMANAGER_REFRESH_MS`.
        if transition == Transition::None
            && next.state == AlertState::Firing
            && !silenced
            && self.targets(rule).any(|n| n == Notifier::Alertmanager)
            && store
                .last_queued(&fingerprint, Notifier::Alertmanager)
                .await?
                .is_none_or(|t| now_ms - t >= ALERTMANAGER_REFRESH_MS)
        {
            entries.push(OutboxEntry {
                fingerprint: fingerprint.clone(),
                notifier: Notifier::Alertmanager,
                event: status,
                payload: payload.clone(),
                created_ms: now_ms,
            });
        }
        let row = AlertRow {
            fingerprint: fingerprint.clone(),
            rule: rule.name.clone(),
            dataset: dataset.to_owned(),
            severity: rule.severity,
            state: next.state,
            active_since_ms: next.active_since_ms,
            firing_since_ms: next.firing_since_ms.unwrap_or(0),
            resolved_ms: next.resolved_ms.unwrap_or(0),
            updated_ms: now_ms,
            silenced_until_ms: previous.as_ref().map_or(0, |p| p.silenced_until_ms),
            acknowledged: previous.as_ref().is_some_and(|p| p.acknowledged),
            last_delivery: previous
                .as_ref()
                .map(|p| p.last_delivery.clone())
                .unwrap_or_default(),
            summary: payload,
        };
        store.save_alert(&row, &entries).await
    }

    fn targets<'a>(&'a self, rule: &'a AlertRule) -> impl Iterator<Item = Notifier> + 'a {
        self.notifiers
            .iter()
            .copied()
            .filter(move |n| rule.notify.is_empty() || rule.notify.iter().any(|r| r == n.as_str()))
    }

    /// A notification with no features or findings yet.
    fn bare_notification(
        &self,
        rule: &AlertRule,
        dataset: &str,
        standing: &Standing,
        status: Status,
    ) -> Notification {
        let mut links = Vec::new();
        for (label, template) in [
            ("Grafana", &self.grafana_url),
            ("Honeycomb", &self.honeycomb_url),
        ] {
            if let Some(t) = template {
                links.push((
                    label.to_owned(),
                    t.replace("{dataset}", &url_component(dataset)),
                ));
            }
        }
        Notification {
            topic: match rule.condition {
                Condition::Drift { .. } => Topic::Drift,
                Condition::Invariant { .. } => Topic::BrokenInputs,
                Condition::RunAnomaly => Topic::AnomalousRun,
            },
            fingerprint: state::fingerprint(&rule.name, dataset),
            rule: rule.name.clone(),
            dataset: dataset.to_owned(),
            severity: rule.severity,
            status,
            since_ms: standing.firing_since_ms.unwrap_or(standing.active_since_ms),
            resolved_ms: standing.resolved_ms,
            features: Vec::new(),
            findings: Vec::new(),
            labels: rule.labels.clone(),
            annotations: rule.annotations.clone(),
            links,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn notification(
        &self,
        rule: &AlertRule,
        dataset: &str,
        standing: &Standing,
        status: Status,
        reference: &DatasetProfile,
        current: &DatasetProfile,
        report: &DriftReport,
    ) -> Notification {
        let features = match rule.condition {
            Condition::Drift { ref features, .. } => drifted(report, features.as_deref())
                .filter_map(|name| {
                    let verdict = report.features.get(name)?;
                    Some(FeatureLine {
                        name: name.clone(),
                        kind: verdict.kind.as_str().to_owned(),
                        method: verdict.method.name().to_owned(),
                        score: verdict.score,
                        threshold: verdict.threshold,
                        reason: verdict.reason.clone(),
                        changes: match (reference.features.get(name), current.features.get(name)) {
                            (Some(r), Some(c)) => changes(r, c, verdict.kind),
                            _ => Vec::new(),
                        },
                    })
                })
                .collect(),
            Condition::Invariant { .. } | Condition::RunAnomaly => Vec::new(),
        };
        let findings = match rule.condition {
            Condition::Invariant { min_severity } => report
                .schema
                .iter()
                .filter(|f| f.severity >= min_severity)
                .map(|f| f.message.clone())
                .collect(),
            Condition::Drift { .. } | Condition::RunAnomaly => Vec::new(),
        };
        let mut n = self.bare_notification(rule, dataset, standing, status);
        n.features = features;
        n.findings = findings;
        n
    }
}

fn holds(condition: &Condition, report: &DriftReport) -> bool {
    match condition {
        Condition::Drift {
            min_features,
            features,
        } => drifted(report, features.as_deref()).count() >= (*min_features).max(1),
        Condition::Invariant { min_severity } => {
            report.schema.iter().any(|f| f.severity >= *min_severity)
        }
        Condition::RunAnomaly => false,
    }
}

/// Drifted features, among `only` when given.
fn drifted<'a>(
    report: &'a DriftReport,
    only: Option<&'a [String]>,
) -> impl Iterator<Item = &'a String> + 'a {
    report
        .drifted
        .iter()
        .filter(move |name| only.is_none_or(|only| only.contains(name)))
}

fn standing_of(row: &AlertRow) -> Option<Standing> {
    Some(Standing {
        state: row.state,
        active_since_ms: row.active_since_ms,
        firing_since_ms: (row.firing_since_ms > 0).then_some(row.firing_since_ms),
        resolved_ms: (row.resolved_ms > 0).then_some(row.resolved_ms),
    })
}

/// Dataset names are URL-safe by construction; this keeps a template honest anyway.
fn url_component(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.:".contains(c) {
                c.to_string()
            } else {
                format!("%{:02X}", c as u32 & 0xff)
            }
        })
        .collect()
}

/// The largest changes between a reference and a current feature, in words, largest first:
/// quantiles for numbers, category shares for strings and booleans.
pub fn changes(reference: &FeatureProfile, current: &FeatureProfile, kind: Kind) -> Vec<String> {
    let fmt = crate::format::format_number;
    let mut scored: Vec<(f64, String)> = Vec::new();
    if kind == Kind::Numeric {
        let (r, c) = (reference.numeric(), current.numeric());
        let spread = r.stddev().filter(|s| *s > 0.0).unwrap_or(1.0);
        for (label, q) in [
            ("p1", 0.01),
            ("p10", 0.1),
            ("p50", 0.5),
            ("p90", 0.9),
            ("p99", 0.99),
        ] {
            if let (Some(a), Some(b)) = (r.quantile(q), c.quantile(q)) {
                scored.push((
                    (b - a).abs() / spread,
                    format!("{label} {} → {}", fmt(a), fmt(b)),
                ));
            }
        }
    } else {
        let share = |f: &FeatureProfile| -> BTreeMap<String, f64> {
            if kind == Kind::Boolean {
                let b = f.booleans();
                let n = (b.true_count + b.false_count).max(1) as f64;
                BTreeMap::from([
                    ("true".to_owned(), b.true_count as f64 / n),
                    ("false".to_owned(), b.false_count as f64 / n),
                ])
            } else {
                let n = f.strings().count().max(1) as f64;
                f.strings()
                    .frequent(50)
                    .into_iter()
                    .map(|v| (v.value, v.count as f64 / n))
                    .collect()
            }
        };
        let (r, c) = (share(reference), share(current));
        for name in r
            .keys()
            .chain(c.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            let (a, b) = (
                r.get(name).copied().unwrap_or(0.0),
                c.get(name).copied().unwrap_or(0.0),
            );
            scored.push((
                (b - a).abs(),
                format!("{name} {:.0}% → {:.0}%", a * 100.0, b * 100.0),
            ));
        }
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored
        .into_iter()
        .filter(|(d, _)| *d > 0.0)
        .take(3)
        .map(|(_, s)| s)
        .collect()
}
/// A built-in alert is as severe as the findings it fires on: broken `error` invariants page
/// (`critical`), `warning` findings warn.
pub fn severity_of(finding: Severity) -> AlertSeverity {
    match finding {
        Severity::Error => AlertSeverity::Critical,
        Severity::Warning => AlertSeverity::Warning,
        Severity::Info => AlertSeverity::Info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_alerts_are_as_severe_as_their_findings() {
        let alerting = Alerting::from_config(&crate::config::ServeConfig::default());
        let severity = |name: &str| {
            alerting
                .rules()
                .iter()
                .find(|r| r.name == name)
                .map(|r| r.severity)
        };
        assert_eq!(severity("broken_invariant"), Some(AlertSeverity::Critical));
        assert_eq!(severity("input_drift"), Some(AlertSeverity::Warning));
        assert_eq!(severity_of(Severity::Warning), AlertSeverity::Warning);
    }
}
