//! driftd watches the inputs of machine-learning systems. The same binary profiles training
//! data in an offline pipeline step and live requests next to a model server, so every figure
//! exists twice — offline and online — under one name, ready to be compared.
//!
//! Modules, in the order data flows through them:
//!
//! - [`ingest`] reads records: from CSV, JSON Lines and Parquet files, streaming, and from
//!   HTTP bodies (`ingest::records`); unreadable records are refused one by one with the line,
//!   row or index and the reason.
//! - [`profile`] owns the feature profile: exact counts and extremes, mergeable moments and
//!   Apache DataSketches sketches (KLL quantiles, HLL distinct counts, frequent items); the
//!   dataset profile and the `Profiler` that builds it; the versioned profile file.
//! - [`store`] keeps profiles (online windows and rollups, offline runs), reference pins,
//!   verdicts and each evaluation's scores, alerts, counters and run histories in SQLite or
//!   PostgreSQL.
//! - [`rules`] is the rule-file model that `detect` and `alert` both read: per dataset and
//!   feature, drift methods and thresholds, invariants, alert rules, run-anomaly, parity and
//!   skew settings; their YAML schema, one validator per section (every problem of a file
//!   reported at once), and loading from disk.
//! - [`detect`] judges a current profile against a reference: drift statistics and verdicts,
//!   data invariants, training/serving parity, as the rules say; an offline run's counters
//!   against the runs before it (`detect::anomaly`); and the feature skew of two sides'
//!   id-joined samples (`detect::skew`, fed by `profile::sample`).
//! - [`alert`] turns verdicts and run judgements into alerts and delivers them (with its own
//!   `alert::DeliveryMetrics`).
//! - [`serve`] is the daemon that joins these: the HTTP API, one module per resource
//!   (`serve::api`), admission through a bounded queue (`serve::admission`), windows,
//!   offline runs stored and judged (`serve::offline`), counters, continuous evaluation, and
//!   each subsystem's Prometheus metrics under one registry (`serve::metrics`); every route
//!   behind the token gate (`serve::api::auth`), probes and metrics also on their own
//!   listener; the listeners' connection caps, deadlines and TLS (`serve::listen`).
//! - [`push`] uploads a pipeline step's profile and counters to a server (`driftd push`).
//! - [`report`] renders profiles and comparisons for programs (JSON) and people (tables);
//!   [`pictures`] draws a comparison as one self-contained HTML page (`driftd report`), and
//!   the daemon's pages (`pictures::daemon`, served by `serve::api::pages`).
//! - Leaves every stage may use: [`alert_model`], the words the store keeps and alerting acts
//!   on (severity, alert state, notifier, event); [`clock`], the wall clock; [`names`],
//!   names checked once where they enter; [`format`], printing helpers; [`auth`], API
//!   tokens and their scopes (kept as digests, compared in constant time); [`secret`], values
//!   that never reach logs or `Debug` output.
//! - [`config`] resolves `driftd serve`'s layered configuration; [`telemetry`] sets up logs
//!   and OpenTelemetry spans (OTLP export, what each span carries);
//!   [`cli`] is the `driftd` command line.
//!
//! Profiling and detection are pure and synchronous; I/O lives in `ingest`, `store` and `serve`.

pub mod alert;
pub mod alert_model;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod detect;
pub mod format;
#[doc(hidden)]
pub mod fuzzing;
pub mod ingest;
pub mod names;
pub mod pictures;
pub mod profile;
pub mod push;
pub mod report;
pub mod rules;
pub mod secret;
pub mod serve;
pub mod store;
pub mod telemetry;
