//! driftd watches the inputs of machine-learning systems. The same binary profiles training
//! data in an offline pipeline step and live requests next to a model server, so every figure
//! exists twice — offline and online — under one name, ready to be compared.
//!
//! Modules, in the order data flows through them:
//!
//! - [`ingest`] reads records from CSV, JSON Lines and Parquet files, streaming, and refuses
//!   unreadable records one by one with the line or row and the reason.
//! - [`profile`] owns the feature profile: exact counts and extremes, mergeable moments and
//!   Apache DataSketches sketches (KLL quantiles, HLL distinct counts, frequent items); the
//!   dataset profile and the `Profiler` that builds it; the versioned profile file.
//! - [`report`] renders profiles for programs (the `profile --json` document) and people (a
//!   table).
//! - [`cli`] is the `driftd` command line.
//!
//! Storage, detection, alerting and export (`driftd serve`, `driftd compare`) build on these.

pub mod cli;
pub mod config;
pub mod detect;
pub mod ingest;
pub mod profile;
pub mod report;
pub mod serve;
pub mod store;
pub mod telemetry;
