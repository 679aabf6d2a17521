//! Profiles: mergeable summaries of features (`FeatureProfile`) and datasets
//! (`DatasetProfile`), the `Profiler` that builds them, and the profile file format.
//!
//! Everything here is pure and synchronous: no I/O beyond the `Read` a profile file is decoded
//! from, no clock, no globals.

mod dataset;
mod feature;
pub mod file;
mod moments;
mod value;

pub use dataset::{DatasetProfile, FeatureRefused, Limits, Problems, Profiler, Stage};
pub use feature::{
    BooleanCounts, FREQUENT_ITEMS_MAP_SIZE, FeatureProfile, FrequentValue, HLL_LG_K, KLL_K, Kind,
    MergeError, NonFinite, NumericSummary, StringSummary, TypeCounts,
};
pub use moments::Moments;
pub use value::Value;
