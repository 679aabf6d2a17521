//! `drift:` — the default method and threshold of numeric and categorical features.

use serde_saphyr::Spanned;

use super::Problems;
use crate::profile::Kind;
use crate::rules::model::{Method, default_threshold};
use crate::rules::schema::{RawDrift, RawPolicy};

/// The section, validated; `None` where the file leaves a setting out.
pub(super) struct Drift {
    pub(super) numeric: Option<(Method, f64)>,
    pub(super) categorical: Option<(Method, f64)>,
    pub(super) min_count: Option<u64>,
}

pub(super) fn validate(raw: Option<&RawDrift>, p: &mut Problems) -> Drift {
    match raw {
        Some(d) => Drift {
            numeric: policy(d.numeric.as_ref(), true, p),
            categorical: policy(d.categorical.as_ref(), false, p),
            min_count: d.min_count,
        },
        None => Drift {
            numeric: None,
            categorical: None,
            min_count: None,
        },
    }
}

fn policy(
    raw: Option<&Spanned<RawPolicy>>,
    numeric: bool,
    p: &mut Problems,
) -> Option<(Method, f64)> {
    let raw = raw?;
    let kind = if numeric { Kind::Numeric } else { Kind::String };
    let method = raw.value.method;
    if !method.applies_to(kind) {
        p.at(
            &raw.referenced,
            format!(
                "method {method} does not apply to {} features",
                if numeric { "numeric" } else { "categorical" }
            ),
        );
    }
    let threshold = raw
        .value
        .threshold
        .unwrap_or_else(|| default_threshold(method));
    if let Some(why) = threshold_problem(method, threshold) {
        p.at(&raw.referenced, why);
    }
    Some((method, threshold))
}

/// Why `t` cannot be the threshold of `method`, if it cannot.
pub(super) fn threshold_problem(method: Method, t: f64) -> Option<String> {
    if !t.is_finite() || t < 0.0 {
        return Some(format!("threshold must be a finite number >= 0, got {t}"));
    }
    if method.is_p_value() && !(t > 0.0 && t < 1.0) {
        return Some(format!(
            "threshold of {method} is a p-value: between 0 and 1 (exclusive), got {t}"
        ));
    }
    if matches!(
        method,
        Method::JsDistance | Method::Hellinger | Method::Ks | Method::Linf
    ) && t > 1.0
    {
        return Some(format!("threshold of {method} must be at most 1, got {t}"));
    }
    None
}
