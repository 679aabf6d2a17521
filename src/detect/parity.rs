//! Training/serving parity: the same figure measured offline (a pipeline run) and online
//! (serving traffic) must agree — counter ratios such as `rows_dropped / rows_read`, and each
//! feature's null ratio — within the tolerances of the rule files.

use std::collections::BTreeMap;

use serde::Serialize;

use super::invariants::{Check, Finding};
use crate::profile::DatasetProfile;
use crate::rules::ParityRules;

/// One counter ratio on both sides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RatioParity {
    pub ratio: String,
    /// `None` when a side lacks one of the counters or its denominator is 0.
    pub offline: Option<f64>,
    pub online: Option<f64>,
    pub tolerance: f64,
    /// `None` when either side is missing.
    pub within_tolerance: Option<bool>,
}

/// Counter ratios: `offline` holds the latest run's counters, `online` the online totals of
/// the same period. Returns every ratio and a finding for each one out of tolerance.
pub fn counter_ratios(
    rules: &ParityRules,
    offline: &BTreeMap<String, f64>,
    online: &BTreeMap<String, f64>,
) -> (Vec<RatioParity>, Vec<Finding>) {
    let ratio = |side: &BTreeMap<String, f64>, n: &str, d: &str| match (side.get(n), side.get(d)) {
        (Some(n), Some(d)) if *d > 0.0 => Some(n / d),
        _ => None,
    };
    let mut ratios = Vec::new();
    let mut findings = Vec::new();
    for rule in &rules.ratios {
        let off = ratio(offline, &rule.numerator, &rule.denominator);
        let on = ratio(online, &rule.numerator, &rule.denominator);
        let within = match (off, on) {
            (Some(a), Some(b)) => Some((a - b).abs() <= rule.tolerance),
            _ => None,
        };
        if let (Some(a), Some(b), Some(false)) = (off, on, within) {
            let shown = apart(a, b, rule.tolerance, 4);
            findings.push(Finding {
                feature: None,
                check: Check::CounterRatioParity,
                severity: rule.severity,
                message: format!(
                    "{}: {} offline vs {} online, more than {} apart",
                    rule.name(),
                    shown[0],
                    shown[1],
                    shown[2]
                ),
                share: Some((a - b).abs()),
                values: Vec::new(),
            });
        }
        ratios.push(RatioParity {
            ratio: rule.name(),
            offline: off,
            online: on,
            tolerance: rule.tolerance,
            within_tolerance: within,
        });
    }
    (ratios, findings)
}

/// Features whose null ratio differs between `offline` and `online` by more than the
/// tolerance, either way.
pub fn null_ratios(
    rules: &ParityRules,
    offline: &DatasetProfile,
    online: &DatasetProfile,
) -> Vec<Finding> {
    let Some(tolerance) = rules.null_ratio_tolerance else {
        return Vec::new();
    };
    if offline.rows == 0 || online.rows == 0 {
        return Vec::new();
    }
    let mut findings = Vec::new();
    for (name, off) in &offline.features {
        let Some(on) = online.features.get(name) else {
            continue;
        };
        let a = off.nulls() as f64 / offline.rows as f64;
        let b = on.nulls() as f64 / online.rows as f64;
        if (a - b).abs() > tolerance {
            let shown = apart(a * 100.0, b * 100.0, tolerance * 100.0, 2);
            findings.push(Finding {
                feature: Some(name.clone()),
                check: Check::NullRatioParity,
                severity: super::Severity::Warning,
                message: format!(
                    "{name}: null ratio {}% offline vs {}% online, more than {} points apart",
                    shown[0], shown[1], shown[2]
                ),
                share: Some((a - b).abs()),
                values: Vec::new(),
            });
        }
    }
    findings
}

/// Two values more than `tolerance` apart, with `decimals` unless that would hide it ("0.1000
/// vs 0.1001, more than 0.0002 apart"); then with the digits it takes.
fn apart(a: f64, b: f64, tolerance: f64, decimals: usize) -> Vec<String> {
    crate::format::telling_as(
        &[a, b, tolerance],
        |x| format!("{x:.decimals$}"),
        |p| (p[0] - p[1]).abs() > p[2],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Severity;
    use crate::rules::RatioRule;

    fn rules() -> ParityRules {
        ParityRules {
            ratios: vec![RatioRule {
                numerator: "rows_dropped".into(),
                denominator: "rows_read".into(),
                tolerance: 0.01,
                severity: Severity::Error,
            }],
            null_ratio_tolerance: Some(0.05),
        }
    }

    fn side(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn ratios_out_of_tolerance_are_findings() {
        let offline = side(&[("rows_read", 10_000.0), ("rows_dropped", 100.0)]);
        // 1 % offline, 1.5 % online: within 0.01.
        let online = side(&[("rows_read", 2_000.0), ("rows_dropped", 30.0)]);
        let (ratios, findings) = counter_ratios(&rules(), &offline, &online);
        assert_eq!(ratios[0].offline, Some(0.01));
        assert_eq!(ratios[0].online, Some(0.015));
        assert_eq!(ratios[0].within_tolerance, Some(true));
        assert!(findings.is_empty());
        // 5 % online: 0.04 apart.
        let online = side(&[("rows_read", 2_000.0), ("rows_dropped", 100.0)]);
        let (ratios, findings) = counter_ratios(&rules(), &offline, &online);
        assert_eq!(ratios[0].within_tolerance, Some(false));
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, Severity::Error);
        assert_eq!(
            findings[0].message,
            "rows_dropped / rows_read: 0.0100 offline vs 0.0500 online, more than 0.0100 apart"
        );
        // 0.01 vs 0.01007, more than 0.00004 apart: four decimals would print the tolerance as 0.
        let tight = ParityRules {
            ratios: vec![RatioRule {
                tolerance: 0.00004,
                ..rules().ratios[0].clone()
            }],
            null_ratio_tolerance: None,
        };
        let online = side(&[("rows_read", 100_000.0), ("rows_dropped", 1_007.0)]);
        let (_, findings) = counter_ratios(&tight, &offline, &online);
        assert_eq!(
            findings[0].message,
            "rows_dropped / rows_read: 0.01 offline vs 0.0101 online, more than 0.00004 apart"
        );
        // A side without the counters, or with a zero denominator: no verdict.
        let (ratios, findings) = counter_ratios(
            &rules(),
            &offline,
            &side(&[("rows_read", 0.0), ("rows_dropped", 0.0)]),
        );
        assert_eq!(ratios[0].online, None);
        assert_eq!(ratios[0].within_tolerance, None);
        assert!(findings.is_empty());
    }
}
