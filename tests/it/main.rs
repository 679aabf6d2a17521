//! driftd's integration tests: one binary, modules by surface.

mod accuracy;
mod alerts;
mod cli_compare;
mod cli_profile;
mod drift_statistics;
mod drift_verdicts;
mod helpers;
mod merge_laws;
mod otlp;
mod profile_file;
mod prometheus;
mod rules;
mod serve;
