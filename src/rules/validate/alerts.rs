//! `alerts:` — named alert rules: what they watch, for how long, how loud, where they go.

use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::Problems;
use crate::rules::model::{AlertSeverity, AlertSpec, AlertWhen, NOTIFIERS, Severity};
use crate::rules::schema::RawAlert;

pub(super) fn validate(
    dataset: &str,
    raw: Vec<Spanned<RawAlert>>,
    p: &mut Problems,
) -> Vec<AlertSpec> {
    let mut alerts: Vec<AlertSpec> = Vec::new();
    for spanned in raw {
        let a = spanned.value;
        let at = spanned.referenced;
        if a.name.is_empty() || a.name.len() > 128 || a.name.chars().any(char::is_control) {
            p.at(
                &at,
                "alert name must be 1 to 128 printable characters".to_owned(),
            );
        }
        if alerts.iter().any(|other| other.name == a.name) {
            p.at(&at, format!("alert {:?} is defined twice", a.name));
        }
        let for_duration = duration(&a, &at, p);
        check(&a, &at, p);
        alerts.push(AlertSpec {
            dataset: dataset.to_owned(),
            name: a.name,
            when: a.when,
            features: a.features,
            min_features: a.min_features.unwrap_or(1).max(1),
            min_severity: a.min_severity.unwrap_or(Severity::Error),
            for_duration,
            severity: a.severity.unwrap_or(AlertSeverity::Warning),
            labels: a.labels,
            annotations: a.annotations,
            notify: a.notify,
        });
    }
    alerts
}

/// The longest `for:` of an alert rule.
pub const MAX_FOR: Duration = Duration::from_secs(7 * 86_400);

fn duration(a: &RawAlert, at: &Location, p: &mut Problems) -> Option<Duration> {
    let text = a.for_duration.as_ref()?;
    match humantime::parse_duration(text.trim()) {
        Ok(d) if d > MAX_FOR => {
            p.at(
                at,
                format!(
                    "{}: for: {text:?} is longer than {}: a condition that must hold that long never alerts in time",
                    a.name,
                    humantime::format_duration(MAX_FOR)
                ),
            );
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            p.at(
                at,
                format!("{}: for: {text:?} is not a duration ({e})", a.name),
            );
            None
        }
    }
}

fn check(a: &RawAlert, at: &Location, p: &mut Problems) {
    for n in &a.notify {
        if !NOTIFIERS.contains(&n.as_str()) {
            p.at(
                at,
                format!(
                    "{}: unknown notifier {n:?}; use {}",
                    a.name,
                    NOTIFIERS.join(", ")
                ),
            );
        }
    }
    if a.when == AlertWhen::Invariant && (a.features.is_some() || a.min_features.is_some()) {
        p.at(
            at,
            format!(
                "{}: features and min_features apply to drift alerts",
                a.name
            ),
        );
    }
    if a.when == AlertWhen::Drift && a.min_severity.is_some() {
        p.at(
            at,
            format!("{}: min_severity applies to invariant alerts", a.name),
        );
    }
}
