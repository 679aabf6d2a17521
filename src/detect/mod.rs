//! Detect: judges a current profile against a reference — distribution drift per feature
//! (`drift`), broken data invariants (`invariants`), as configured by rule files (`crate::rules`) —
//! an offline run's counters against the runs before it (`anomaly`), and the id-joined samples
//! of two sides value by value (`skew`).
//!
//! Pure and synchronous: profiles and rules in, a `DriftReport` out.

pub mod anomaly;
pub mod drift;
pub mod invariants;
pub mod parity;
pub mod skew;
pub mod stats;

pub use drift::{DriftReport, FeatureDrift, Statistics, compare};
pub use invariants::{Check, Finding, Severity};
