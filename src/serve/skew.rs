//! Training/serving feature skew online: the rows the recent online windows sampled by id,
//! joined with the rows the reference run sampled and compared value by value under the
//! dataset's `skew:` rules (`detect::skew`), for the evaluator and
//! `GET /v1/datasets/{dataset}/skew`.

use crate::detect::skew::{self, SideNames, SkewReport};
use crate::profile::{DatasetProfile, Sample};
use crate::rules::SkewRules;

/// How the two sides are named in verdicts.
pub const SIDES: SideNames<'static> = SideNames {
    reference: "offline",
    current: "online",
};

/// Why the two sides cannot be joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unjoinable {
    #[error(
        "the reference run has no rows sampled by id: post its records with the id field, or \
         upload a profile written by `driftd profile --id-column`"
    )]
    NoReferenceSample,
    #[error("no online record with the id field in the last two windows")]
    NoOnlineSample,
}

/// Joins the reference run's sample with the recent windows' (`None`: no recent window). A
/// sample that saw no id at all (records without the id field) is no sample.
pub fn join(
    reference: &DatasetProfile,
    current: Option<&DatasetProfile>,
    rules: &SkewRules,
) -> Result<SkewReport, Unjoinable> {
    let reference = with_ids(reference).ok_or(Unjoinable::NoReferenceSample)?;
    let current = current
        .and_then(with_ids)
        .ok_or(Unjoinable::NoOnlineSample)?;
    Ok(skew::join(reference, current, rules, SIDES))
}

fn with_ids(profile: &DatasetProfile) -> Option<&Sample> {
    profile.sample.as_ref().filter(|s| s.offered() > 0)
}
