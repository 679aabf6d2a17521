//! `skew:` — tolerances and thresholds of the training/serving feature-skew comparison.

use serde_saphyr::Spanned;

use super::Problems;
use crate::rules::model::{SkewOverrides, SkewRules};
use crate::rules::schema::RawSkew;

/// Longest id field name: the longest feature name.
const MAX_ID_FIELD_BYTES: usize = 256;

/// The section, validated; each problem is reported at the section.
pub(super) fn validate(raw: &Spanned<RawSkew>, p: &mut Problems) -> SkewRules {
    parse_rules(&raw.value).unwrap_or_else(|problems| {
        for problem in problems {
            p.at(&raw.referenced, problem);
        }
        SkewRules::default()
    })
}

/// Validates a `skew:` section; every problem is returned, each naming its key.
pub(super) fn parse_rules(raw: &RawSkew) -> Result<SkewRules, Vec<String>> {
    let defaults = SkewOverrides {
        tolerance: raw.tolerance,
        absolute_tolerance: raw.absolute_tolerance,
        threshold: raw.threshold,
        min_joined: raw.min_joined,
        ignore: None,
    };
    let mut problems = Vec::new();
    if let Some(id) = &raw.id
        && (id.is_empty() || id.len() > MAX_ID_FIELD_BYTES)
    {
        problems.push(format!(
            "skew: id must be a field name of 1 to {MAX_ID_FIELD_BYTES} bytes, got {} bytes",
            id.len()
        ));
    }
    check_overrides(&defaults, "skew: ", &mut problems);
    for (name, f) in &raw.features {
        if name.is_empty() {
            problems.push("skew: feature name is empty".to_owned());
        }
        check_overrides(f, &format!("skew: {name}: "), &mut problems);
    }
    if problems.is_empty() {
        Ok(SkewRules {
            id: raw.id.clone(),
            defaults,
            features: raw.features.clone(),
        })
    } else {
        Err(problems)
    }
}

/// Problems of one set of overrides, each naming its key after `what`.
fn check_overrides(o: &SkewOverrides, what: &str, out: &mut Vec<String>) {
    let mut check = |key: &str, x: Option<f64>, ok: bool, bound: &str| {
        if let Some(x) = x
            && !ok
        {
            out.push(format!("{what}{key} must be {bound}, got {x}"));
        }
    };
    let finite_non_negative = |x: Option<f64>| x.is_none_or(|x| x.is_finite() && x >= 0.0);
    check(
        "tolerance",
        o.tolerance,
        finite_non_negative(o.tolerance),
        "a finite number >= 0",
    );
    check(
        "absolute_tolerance",
        o.absolute_tolerance,
        finite_non_negative(o.absolute_tolerance),
        "a finite number >= 0",
    );
    check(
        "threshold",
        o.threshold,
        o.threshold.is_none_or(|t| (0.0..1.0).contains(&t)),
        "between 0 (inclusive) and 1 (exclusive)",
    );
    if o.min_joined == Some(0) {
        out.push(format!("{what}min_joined must be at least 1"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::model::{DEFAULT_MIN_JOINED, DEFAULT_TOLERANCE};

    #[test]
    fn features_override_the_section_which_overrides_the_defaults() {
        let raw: RawSkew = serde_saphyr::from_str(
            "id: request_id\nthreshold: 0.02\nfeatures:\n  price: {tolerance: 1e-6}\n  id2: {ignore: true}\n",
        )
        .unwrap();
        let rules = parse_rules(&raw).unwrap();
        assert_eq!(rules.id.as_deref(), Some("request_id"));
        let price = rules.for_feature("price");
        assert_eq!((price.tolerance, price.threshold), (1e-6, 0.02));
        assert_eq!(rules.for_feature("other").tolerance, DEFAULT_TOLERANCE);
        assert!(rules.for_feature("id2").ignore);
        assert_eq!(rules.for_feature("other").min_joined, DEFAULT_MIN_JOINED);
    }

    #[test]
    fn bad_values_are_named() {
        let raw: RawSkew = serde_saphyr::from_str(
            "id: ''\nthreshold: 1.5\nfeatures:\n  x: {tolerance: -1, min_joined: 0}\n",
        )
        .unwrap();
        let problems = parse_rules(&raw).unwrap_err();
        assert_eq!(
            problems,
            [
                "skew: id must be a field name of 1 to 256 bytes, got 0 bytes",
                "skew: threshold must be between 0 (inclusive) and 1 (exclusive), got 1.5",
                "skew: x: tolerance must be a finite number >= 0, got -1",
                "skew: x: min_joined must be at least 1",
            ]
        );
    }
}
