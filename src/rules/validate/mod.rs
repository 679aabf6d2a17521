//! Validation: a rule file's schema checked section by section, one validator per section, each
//! adding what it finds to one list of problems so that a file's problems are reported together.

mod alerts;
mod anomaly;
mod drift;
mod features;
mod inference;
mod invariants;
mod parity;
mod skew;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_saphyr::Location;

use super::model::{AlertSpec, FeatureRule, InferenceNames, Method, ParityRules, SkewRules};
use super::schema::{RawAnomaly, RawFile, yaml_options};
use super::{RuleError, recover};
use crate::names::DatasetName;

/// One parsed, validated rule file.
#[derive(Debug, Clone)]
pub(super) struct RuleFile {
    pub(super) path: PathBuf,
    pub(super) dataset: String,
    pub(super) numeric: Option<(Method, f64)>,
    pub(super) categorical: Option<(Method, f64)>,
    pub(super) min_count: Option<u64>,
    pub(super) null_ratio_increase: Option<f64>,
    pub(super) out_of_range_share: Option<f64>,
    pub(super) new_category_share: Option<f64>,
    /// Each feature's rule and the line it is configured on.
    pub(super) features: BTreeMap<String, (FeatureRule, u64)>,
    pub(super) alerts: Vec<AlertSpec>,
    pub(super) anomaly: Option<RawAnomaly>,
    pub(super) parity: Option<ParityRules>,
    pub(super) skew: Option<SkewRules>,
    pub(super) inference: Option<InferenceNames>,
}

/// The problems found in one file so far.
pub(super) struct Problems<'a> {
    file: &'a Path,
    found: Vec<RuleError>,
}

impl Problems<'_> {
    pub(super) fn at(&mut self, at: &Location, message: String) {
        self.found.push(RuleError {
            file: self.file.to_owned(),
            line: at.line(),
            column: at.column(),
            message,
        });
    }
}

/// Parses and validates one rule file; every problem is returned, not just the first, in the
/// order they stand in the file.
pub(super) fn parse(path: &Path, text: &str) -> Result<RuleFile, Vec<RuleError>> {
    let mut problems = Problems {
        file: path,
        found: Vec::new(),
    };
    let file = match serde_saphyr::from_str_with_options::<RawFile>(text, yaml_options()) {
        Ok(raw) => Some(validate(path, raw, &mut problems)),
        Err(first) => {
            // What the schema refuses is found again, every mistake of it, and the sections
            // without a mistake are validated as usual.
            let recovered = recover::read(text);
            schema_problems(&first, recovered.found, &mut problems);
            if let Some(raw) = recovered.rest {
                validate(path, raw.without(&recovered.sections), &mut problems);
            }
            None
        }
    };
    match file {
        Some(file) if problems.found.is_empty() => Ok(file),
        _ => {
            let mut found = problems.found;
            found.sort_by_key(|e| (e.line, e.column));
            Err(found)
        }
    }
}

/// The reader's own error (its message exactly, with a suggestion when the mistake is a near
/// miss) and every other mistake found against the schema.
fn schema_problems(first: &serde_saphyr::Error, mistakes: Vec<recover::Found>, p: &mut Problems) {
    let (line, column) = first.location().map_or((0, 0), |l| (l.line(), l.column()));
    let mut message = first_line(&first.to_string());
    let mut others = mistakes;
    // The same mistake, found again: at the same place, or else the first with its message
    // (the two readers can place a missing field a column apart).
    let same = others
        .iter()
        .position(|m| (m.at.line(), m.at.column()) == (line, column))
        .or_else(|| others.iter().position(|m| m.message == message));
    if let Some(hint) = same.and_then(|i| others.remove(i).hint) {
        message = format!("{message}; {hint}");
    }
    p.found.push(RuleError {
        file: p.file.to_owned(),
        line,
        column,
        message,
    });
    for m in others {
        let message = match m.hint {
            Some(hint) => format!("{}; {hint}", m.message),
            None => m.message,
        };
        p.at(&m.at, message);
    }
}

/// Every section's validator, in the order of the sections in the documentation.
fn validate(path: &Path, raw: RawFile, p: &mut Problems) -> RuleFile {
    let dataset = raw.dataset.value.clone();
    if dataset != "*" && dataset.parse::<DatasetName>().is_err() {
        p.at(
            &raw.dataset.referenced,
            format!(
                "dataset {dataset:?} is not a valid name (letters, digits, '_', '-', '.', ':'), nor \"*\""
            ),
        );
    }
    let drift = drift::validate(raw.drift.as_ref(), p);
    let invariants = invariants::validate(raw.invariants.as_ref(), p);
    let features = features::validate(raw.features, p);
    let alerts = alerts::validate(&dataset, raw.alerts, p);
    anomaly::validate(raw.anomaly.as_ref(), p);
    let parity = raw.parity.map(|section| parity::validate(section, p));
    let skew = raw.skew.as_ref().map(|section| skew::validate(section, p));
    let inference = raw
        .inference
        .as_ref()
        .map(|section| inference::validate(section, p));
    RuleFile {
        path: path.to_owned(),
        dataset,
        numeric: drift.numeric,
        categorical: drift.categorical,
        min_count: drift.min_count,
        null_ratio_increase: invariants.null_ratio_increase,
        out_of_range_share: invariants.out_of_range_share,
        new_category_share: invariants.new_category_share,
        features,
        alerts,
        anomaly: raw.anomaly.map(|a| a.value),
        parity,
        skew,
        inference,
    }
}

/// serde-saphyr's message without the snippet it renders under it, its "error: " prefix and
/// its own copy of the location (reported separately as file:line:column).
pub(super) fn first_line(message: &str) -> String {
    let mut line = message.lines().next().unwrap_or(message).trim();
    line = line.strip_prefix("error: ").unwrap_or(line);
    if line.starts_with("line ")
        && let Some((_, rest)) = line.split_once(": ")
    {
        line = rest;
    }
    if let Some(i) = line.rfind(" at line ") {
        line = &line[..i];
    }
    line.to_owned()
}
