//! Dataset profiles (feature profiles of one dataset over a run or a window) and the
//! `Profiler` that builds one from a stream of records.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::feature::{FeatureProfile, Kind, MergeError};
use super::sample::{Sample, id_text};
use super::value::Value;

/// Where the data came from: training data and pipeline runs, or serving traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    #[default]
    Offline,
    Online,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Offline => "offline",
            Stage::Online => "online",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "offline" => Ok(Stage::Offline),
            "online" => Ok(Stage::Online),
            other => Err(format!(
                "unknown stage {other:?}: expected offline or online"
            )),
        }
    }
}

/// Feature profiles of one dataset. Invariant: for every feature, `count + nulls == rows`
/// (a record without the feature counts as a null of it).
#[derive(Debug, Clone)]
pub struct DatasetProfile {
    pub dataset: String,
    pub stage: Stage,
    /// Records profiled.
    pub rows: u64,
    /// Records refused as unreadable (ragged, malformed, not an object); not in `rows`.
    pub rejected_rows: u64,
    pub labels: BTreeMap<String, String>,
    pub features: BTreeMap<String, FeatureProfile>,
    /// Rows hash-sampled by id for the skew join, when the records carried ids.
    pub sample: Option<Sample>,
}

impl DatasetProfile {
    /// Bytes this profile holds in memory, estimated from its features' sketches (see
    /// `FeatureProfile::memory_estimate`) and its sampled rows (`Sample::memory_estimate`).
    pub fn memory_estimate(&self) -> usize {
        let features: usize = self
            .features
            .iter()
            .map(|(name, f)| name.len() + f.memory_estimate())
            .sum();
        let sample = self.sample.as_ref().map_or(0, Sample::memory_estimate);
        std::mem::size_of::<Self>() + features + sample
    }

    pub fn new(dataset: impl Into<String>, stage: Stage) -> Self {
        DatasetProfile {
            dataset: dataset.into(),
            stage,
            rows: 0,
            rejected_rows: 0,
            labels: BTreeMap::new(),
            features: BTreeMap::new(),
            sample: None,
        }
    }

    /// Folds `other` into `self`; associative and commutative. A feature missing on one side
    /// gains that side's rows as nulls; labels that differ between the sides are dropped.
    pub fn merge(&mut self, other: &DatasetProfile) -> Result<(), MergeError> {
        if self.dataset != other.dataset {
            return Err(MergeError::Dataset(
                self.dataset.clone(),
                other.dataset.clone(),
            ));
        }
        if self.stage != other.stage {
            return Err(MergeError::Stage(
                self.stage.to_string(),
                other.stage.to_string(),
            ));
        }
        let rows = self
            .rows
            .checked_add(other.rows)
            .ok_or(MergeError::Overflow)?;
        let rejected = self
            .rejected_rows
            .checked_add(other.rejected_rows)
            .ok_or(MergeError::Overflow)?;
        let mut merged = BTreeMap::new();
        for (name, mine) in &self.features {
            let mut f = mine.clone();
            match other.features.get(name) {
                Some(theirs) => f.merge(theirs)?,
                None => f.add_nulls(other.rows)?,
            }
            merged.insert(name.clone(), f);
        }
        for (name, theirs) in &other.features {
            if !self.features.contains_key(name) {
                let mut f = theirs.clone();
                f.add_nulls(self.rows)?;
                merged.insert(name.clone(), f);
            }
        }
        self.features = merged;
        self.rows = rows;
        self.rejected_rows = rejected;
        self.labels
            .retain(|k, v| other.labels.get(k).is_some_and(|o| o == v));
        merge_samples(&mut self.sample, other.sample.as_ref());
        Ok(())
    }
}

/// Folds `other`'s sample into `mine`. Samples under different id columns (records of a window
/// that straddles a change of the id field) cannot be merged: the one whose id column sorts
/// first is kept, so merging stays commutative and associative.
fn merge_samples(mine: &mut Option<Sample>, other: Option<&Sample>) {
    let Some(theirs) = other else { return };
    match mine {
        None => *mine = Some(theirs.clone()),
        Some(s) if s.id_column() == theirs.id_column() => {
            s.merge(theirs).expect("same id column");
        }
        Some(s) if theirs.id_column() < s.id_column() => *mine = Some(theirs.clone()),
        Some(_) => {}
    }
}

/// Bounds that keep a profile's memory independent of its input.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Features per dataset; values of further features are counted and ignored.
    pub max_features: usize,
    /// Longest feature name, in bytes.
    pub max_feature_name_bytes: usize,
    /// Problem descriptions kept for the report; the rest are only counted.
    pub max_problem_samples: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_features: 10_000,
            max_feature_name_bytes: 256,
            max_problem_samples: 20,
        }
    }
}

/// What went wrong while profiling: counts, and the first few descriptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    pub rejected_rows: u64,
    /// Values dropped because their feature was over a limit (see `Limits`).
    pub ignored_values: u64,
    /// The first few features whose values were dropped.
    pub ignored_features: Vec<String>,
    /// The first problems, each naming its row or line and why.
    pub samples: Vec<String>,
    /// Problems past the kept samples.
    pub unlisted: u64,
}

/// Why a feature's values are not profiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeatureRefused {
    #[error("feature limit reached ({0} features per dataset)")]
    TooManyFeatures(usize),
    #[error("feature name is {0} bytes long (limit {1})")]
    NameTooLong(usize, usize),
    #[error("feature name is empty")]
    EmptyName,
}

/// Builds a `DatasetProfile` from records, one value at a time. Pure and synchronous.
#[derive(Debug)]
pub struct Profiler {
    dataset: String,
    stage: Stage,
    limits: Limits,
    names: Vec<String>,
    features: Vec<FeatureProfile>,
    index: HashMap<String, usize>,
    rows: u64,
    problems: Problems,
    /// Rows kept for the skew join, when an id column is given.
    sample: Option<Sample>,
}

impl Profiler {
    pub fn new(dataset: impl Into<String>, stage: Stage, limits: Limits) -> Self {
        Profiler {
            dataset: dataset.into(),
            stage,
            limits,
            names: Vec::new(),
            features: Vec::new(),
            index: HashMap::new(),
            rows: 0,
            problems: Problems::default(),
            sample: None,
        }
    }

    /// Also keeps hash-sampled rows keyed by the sample's id column (see `profile::sample`).
    pub fn with_sample(mut self, sample: Sample) -> Self {
        self.sample = Some(sample);
        self
    }

    /// The sample being built, for readers that offer rows themselves (CSV, Parquet).
    pub fn sample_mut(&mut self) -> Option<&mut Sample> {
        self.sample.as_mut()
    }

    pub fn sample(&self) -> Option<&Sample> {
        self.sample.as_ref()
    }

    /// Takes the sample out (before `finish`, which otherwise leaves it in the profile).
    pub fn take_sample(&mut self) -> Option<Sample> {
        self.sample.take()
    }

    /// The slot of a feature, created on first sight within the limits.
    pub fn feature(&mut self, name: &str, declared: Option<Kind>) -> Result<usize, FeatureRefused> {
        if let Some(&i) = self.index.get(name) {
            return Ok(i);
        }
        if name.is_empty() {
            return Err(FeatureRefused::EmptyName);
        }
        if name.len() > self.limits.max_feature_name_bytes {
            return Err(FeatureRefused::NameTooLong(
                name.len(),
                self.limits.max_feature_name_bytes,
            ));
        }
        if self.features.len() >= self.limits.max_features {
            return Err(FeatureRefused::TooManyFeatures(self.limits.max_features));
        }
        let i = self.features.len();
        self.names.push(name.to_owned());
        self.features.push(FeatureProfile::with_declared(declared));
        self.index.insert(name.to_owned(), i);
        Ok(i)
    }

    #[inline]
    pub fn observe(&mut self, slot: usize, value: Value<'_>) {
        self.features[slot].observe(value);
    }

    /// Direct access to a feature's profile, for columnar readers that update a column at once.
    pub fn slot_mut(&mut self, slot: usize) -> &mut FeatureProfile {
        &mut self.features[slot]
    }

    /// Mutable access to all feature profiles, for profiling columns in parallel.
    pub fn slots_mut(&mut self) -> &mut [FeatureProfile] {
        &mut self.features
    }

    /// Counts `n` accepted records. Values of features a record lacks become nulls at `finish`.
    pub fn add_rows(&mut self, n: u64) {
        self.rows += n;
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Observes one record given as (name, value) pairs; values of refused features are counted
    /// in `Problems::ignored_values` and described, with `location`, in the samples.
    /// With a sample, the record is also offered to it (by the value of its id column).
    pub fn observe_record<'v>(
        &mut self,
        location: impl Fn() -> String,
        fields: impl IntoIterator<Item = (&'v str, Value<'v>)>,
    ) {
        if let Some(sample) = self.sample.as_mut() {
            let fields: Vec<(&str, Value<'_>)> = fields.into_iter().collect();
            let id = fields
                .iter()
                .find(|(name, _)| *name == sample.id_column())
                .and_then(|(_, v)| id_text(*v));
            match id {
                Some(id) => sample.offer(&id, fields.iter().copied()),
                None => sample.offer_without_id(),
            }
            self.observe_fields(location, fields);
        } else {
            self.observe_fields(location, fields);
        }
    }

    fn observe_fields<'v>(
        &mut self,
        location: impl Fn() -> String,
        fields: impl IntoIterator<Item = (&'v str, Value<'v>)>,
    ) {
        for (name, value) in fields {
            match self.feature(name, None) {
                Ok(slot) => self.features[slot].observe(value),
                Err(refused) => {
                    self.problems.ignored_values += 1;
                    if self.problems.ignored_features.len() < 10
                        && !self.problems.ignored_features.iter().any(|n| n == name)
                    {
                        self.problems.ignored_features.push(name.to_owned());
                    }
                    self.note(|| format!("{}: feature {name:?} ignored: {refused}", location()));
                }
            }
        }
        self.rows += 1;
    }

    /// Counts a refused record with a description of why.
    pub fn reject(&mut self, why: impl FnOnce() -> String) {
        self.problems.rejected_rows += 1;
        self.note(why);
    }

    /// Counts `n` records refused for one reason (an unreadable block of rows).
    pub fn reject_rows(&mut self, n: u64, why: impl FnOnce() -> String) {
        self.problems.rejected_rows += n;
        self.note(why);
    }

    /// Records a problem that refused nothing (a renamed header, say).
    pub fn warn(&mut self, what: impl FnOnce() -> String) {
        self.note(what);
    }

    fn note(&mut self, what: impl FnOnce() -> String) {
        if self.problems.samples.len() < self.limits.max_problem_samples {
            let line = what();
            if !self.problems.samples.contains(&line) {
                self.problems.samples.push(line);
            }
        } else {
            self.problems.unlisted += 1;
        }
    }

    pub fn problems(&self) -> &Problems {
        &self.problems
    }

    /// The profile so far, leaving the profiler as it is (for checkpoints of open windows).
    pub fn snapshot(&self) -> DatasetProfile {
        let rows = self.rows;
        let features = self
            .names
            .iter()
            .zip(&self.features)
            .map(|(name, f)| {
                let mut f = f.clone();
                f.nulls = rows.saturating_sub(f.count());
                (name.clone(), f)
            })
            .collect();
        DatasetProfile {
            dataset: self.dataset.clone(),
            stage: self.stage,
            rows,
            rejected_rows: self.problems.rejected_rows,
            labels: BTreeMap::new(),
            features,
            sample: self.sample.clone(),
        }
    }

    /// The finished profile (with its sample, if one is still held), and what went wrong on the
    /// way.
    pub fn finish(self) -> (DatasetProfile, Problems) {
        let rows = self.rows;
        let features = self
            .names
            .into_iter()
            .zip(self.features)
            .map(|(name, mut f)| {
                // Records that lacked the feature are its nulls.
                f.nulls = rows.saturating_sub(f.count());
                (name, f)
            })
            .collect();
        let profile = DatasetProfile {
            dataset: self.dataset,
            stage: self.stage,
            rows,
            rejected_rows: self.problems.rejected_rows,
            labels: BTreeMap::new(),
            features,
            sample: self.sample,
        };
        (profile, self.problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::SamplePolicy;

    /// A profile of `ids`, sampled by `id_column`.
    fn sampled(id_column: &str, ids: &[&str]) -> DatasetProfile {
        let sample = Sample::new(id_column, SamplePolicy::default());
        let mut profiler = Profiler::new("d", Stage::Online, Limits::default()).with_sample(sample);
        for id in ids {
            let fields = [(id_column, Value::Str(id)), ("x", Value::Number(1.0))];
            profiler.observe_record(String::new, fields);
        }
        profiler.finish().0
    }

    fn ids(profile: &DatasetProfile) -> Vec<String> {
        let sample = profile.sample.as_ref().expect("a sample");
        let mut ids: Vec<String> = sample.rows().map(|(_, id, _)| id.to_owned()).collect();
        ids.sort();
        ids
    }

    #[test]
    fn merged_profiles_merge_their_samples() {
        let mut a = sampled("_id", &["u1", "u2"]);
        a.merge(&sampled("_id", &["u2", "u3"])).unwrap();
        assert_eq!(ids(&a), ["u1", "u2", "u3"]);
        let sample = a.sample.as_ref().unwrap();
        assert_eq!(sample.offered(), 4);
        let u2 = sample.rows().find(|(_, id, _)| *id == "u2").unwrap().2;
        assert_eq!(u2.copies, 2, "seen in both parts");
        // A profile without a sample (an uploaded one) leaves the other's as it is.
        a.merge(&DatasetProfile::new("d", Stage::Online)).unwrap();
        assert_eq!(ids(&a), ["u1", "u2", "u3"]);
    }

    #[test]
    fn samples_under_different_id_columns_keep_the_first_in_either_order() {
        let (by_id, by_key) = (sampled("_id", &["u1"]), sampled("key", &["k1"]));
        let mut one = by_id.clone();
        one.merge(&by_key).unwrap();
        let mut other = by_key.clone();
        other.merge(&by_id).unwrap();
        assert_eq!(ids(&one), ["u1"]);
        assert_eq!(ids(&other), ["u1"]);
        assert_eq!(other.sample.unwrap().id_column(), "_id");
    }
}
