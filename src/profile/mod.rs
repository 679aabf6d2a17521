//! Profiles: mergeable summaries of features (`FeatureProfile`) and datasets
//! (`DatasetProfile`), the `Profiler` that builds them, the profile file format, and the
//! hash-sampled rows kept for the training/serving skew join (`sample`).
//!
//! Everything here is pure and synchronous: no I/O beyond the `Read` a profile file is decoded
//! from, no clock, no globals.

mod dataset;
mod feature;
pub mod file;
mod moments;
pub mod sample;
mod value;

pub use dataset::{DatasetProfile, FeatureRefused, Limits, Problems, Profiler, Stage};
pub use feature::{
    BooleanCounts, FREQUENT_ITEMS_EXACT, FREQUENT_ITEMS_MAP_SIZE, FeatureProfile, FrequentValue,
    HLL_LG_K, KLL_K, Kind, MergeError, NonFinite, NumericSummary, StringSummary, TypeCounts,
};
pub use moments::Moments;
pub use sample::{Sample, SamplePolicy, SampleValue, SampledRow, id_hash};
pub use value::Value;
