//! `anomaly:` — how offline runs are judged against the runs before them, per counter too.

use serde_saphyr::{Location, Spanned};

use super::Problems;
use crate::rules::model::DEFAULT_MIN_RUNS;
use crate::rules::schema::RawAnomaly;

pub(super) fn validate(raw: Option<&Spanned<RawAnomaly>>, p: &mut Problems) {
    let Some(a) = raw else {
        return;
    };
    let (v, at) = (&a.value, &a.referenced);
    if v.min_runs == Some(0) {
        p.at(at, "anomaly: min_runs must be at least 1".to_owned());
    }
    if v.history
        .is_some_and(|h| h < v.min_runs.unwrap_or(DEFAULT_MIN_RUNS))
    {
        p.at(at, "anomaly: history must be at least min_runs".to_owned());
    }
    let mut check =
        |what: String, x: Option<f64>, positive: bool| number(at, &what, x, positive, p);
    check("threshold".into(), v.threshold, true);
    check("min_change".into(), v.min_change, false);
    check("min_relative_change".into(), v.min_relative_change, false);
    for (name, c) in &v.counters {
        check(format!("{name}: threshold"), c.threshold, true);
        check(format!("{name}: min_change"), c.min_change, false);
        check(
            format!("{name}: min_relative_change"),
            c.min_relative_change,
            false,
        );
    }
}

/// A finite number, at least 0 (above 0 when `positive`).
fn number(at: &Location, what: &str, x: Option<f64>, positive: bool, p: &mut Problems) {
    if let Some(x) = x
        && (!x.is_finite() || x < 0.0 || (positive && x == 0.0))
    {
        let bound = if positive { "> 0" } else { ">= 0" };
        p.at(
            at,
            format!("anomaly: {what} must be a finite number {bound}, got {x}"),
        );
    }
}
