//! driftd's integration tests: one binary, modules by surface.

mod accuracy;
mod alerting_rules;
mod alerts;
mod auth;
mod bounds;
mod cli_compare;
mod cli_profile;
mod cli_skew;
mod config_file;
mod counters;
mod dashboards;
mod drift_statistics;
mod drift_verdicts;
mod fuzz_corpus;
mod helpers;
mod merge_laws;
mod otlp;
mod profile_file;
mod prometheus;
mod prometheus_server;
mod push;
mod report_page;
mod rules;
mod serve;
mod skew_sampling;
mod tour;
