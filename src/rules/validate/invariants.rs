//! `invariants:` — how far null ratios, out-of-range and new-category shares may move.

use serde_saphyr::Spanned;

use super::Problems;
use crate::rules::schema::RawInvariants;

/// The section, validated; `None` where the file leaves a setting out.
#[derive(Default)]
pub(super) struct Invariants {
    pub(super) null_ratio_increase: Option<f64>,
    pub(super) out_of_range_share: Option<f64>,
    pub(super) new_category_share: Option<f64>,
}

pub(super) fn validate(raw: Option<&RawInvariants>, p: &mut Problems) -> Invariants {
    let Some(i) = raw else {
        return Invariants::default();
    };
    Invariants {
        null_ratio_increase: share(i.null_ratio_increase.as_ref(), "null_ratio_increase", p),
        out_of_range_share: share(i.out_of_range_share.as_ref(), "out_of_range_share", p),
        new_category_share: share(i.new_category_share.as_ref(), "new_category_share", p),
    }
}

fn share(x: Option<&Spanned<f64>>, what: &str, p: &mut Problems) -> Option<f64> {
    let x = x?;
    if !(0.0..=1.0).contains(&x.value) {
        p.at(
            &x.referenced,
            format!("{what} must be between 0 and 1, got {}", x.value),
        );
    }
    Some(x.value)
}
