//! `parity:` — training vs serving: counter ratios and null ratios that must agree.

use serde_saphyr::Spanned;

use super::Problems;
use crate::names::valid_counter_name;
use crate::rules::model::{ParityRules, RatioRule, Severity};
use crate::rules::schema::{RawParity, RawRatio};

pub(super) fn validate(raw: Spanned<RawParity>, p: &mut Problems) -> ParityRules {
    let mut rules = ParityRules {
        ratios: Vec::new(),
        null_ratio_tolerance: raw.value.null_ratio_tolerance,
    };
    if let Some(t) = rules.null_ratio_tolerance
        && !(0.0..=1.0).contains(&t)
    {
        p.at(
            &raw.referenced,
            format!("parity: null_ratio_tolerance must be between 0 and 1, got {t}"),
        );
    }
    for r in raw.value.ratios {
        if let Some(rule) = ratio(r, p) {
            rules.ratios.push(rule);
        }
    }
    rules
}

fn ratio(raw: Spanned<RawRatio>, p: &mut Problems) -> Option<RatioRule> {
    let (v, at) = (raw.value, raw.referenced);
    let parts: Vec<&str> = v.ratio.split('/').map(str::trim).collect();
    match parts.as_slice() {
        [n, d] if valid_counter_name(n) && valid_counter_name(d) => {
            if !v.tolerance.is_finite() || v.tolerance < 0.0 {
                p.at(
                    &at,
                    format!(
                        "parity: tolerance must be a finite number >= 0, got {}",
                        v.tolerance
                    ),
                );
            }
            Some(RatioRule {
                numerator: (*n).to_owned(),
                denominator: (*d).to_owned(),
                tolerance: v.tolerance,
                severity: v.severity.unwrap_or(Severity::Warning),
            })
        }
        _ => {
            p.at(
                &at,
                format!(
                    "parity: ratio {:?} must read \"counter / counter\" with names matching [a-zA-Z_][a-zA-Z0-9_]*",
                    v.ratio
                ),
            );
            None
        }
    }
}
