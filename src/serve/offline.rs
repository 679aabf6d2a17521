//! Offline runs, as the API reports them: a profile part or a set of counters is stored,
//! counted and its run judged — one report at a time, so what a re-reported part or counter
//! adds is measured against what it replaces.

use super::metrics::Metrics;
use super::runs::{Judged, Runs, run_metrics};
use crate::clock::now_ms;
use crate::profile::{DatasetProfile, Stage};
use crate::store::{Key, Kind, Store, StoreError};

/// Run ids and part names: 1 to 128 printable characters; the error says so, naming `what`.
pub fn check_identifier(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > 128 || value.chars().any(|c| c.is_control()) {
        return Err(format!("{what} must be 1 to 128 printable characters"));
    }
    Ok(())
}

/// Where an uploaded profile part goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub run_id: String,
    /// Empty for a run uploaded in one piece.
    pub part: String,
    /// The run's logical time, when given.
    pub run_ms: Option<i64>,
}

/// A stored part: rows of the whole run so far, and the run's judgement.
#[derive(Debug)]
pub struct StoredPart {
    pub run_rows: u64,
    pub judged: Vec<Judged>,
}

/// One offline run's counters, checked.
#[derive(Debug)]
pub struct RunCounters<'a> {
    pub run_id: &'a str,
    pub run_ms: Option<i64>,
    /// A JSON object of string values.
    pub labels: Option<&'a str>,
    pub counters: &'a [(String, f64)],
}

/// The offline use cases and the lock that takes their reports one at a time.
#[derive(Debug)]
pub struct Offline {
    pub runs: Runs,
    one_at_a_time: tokio::sync::Mutex<()>,
    /// Features of a run whose null ratio is judged (`metrics_max_features`).
    max_features: usize,
}

impl Offline {
    pub fn new(runs: Runs, max_features: usize) -> Offline {
        Offline {
            runs,
            one_at_a_time: tokio::sync::Mutex::new(()),
            max_features,
        }
    }

    /// Stores a part of a run (committed before it returns), counts the rows it adds and
    /// judges the run.
    pub async fn store_part(
        &self,
        store: &Store,
        metrics: &Metrics,
        dataset: &str,
        part: &Part,
        profile: &DatasetProfile,
    ) -> Result<StoredPart, StoreError> {
        let now = now_ms();
        let key = Key {
            dataset: dataset.to_owned(),
            stage: Stage::Offline,
            kind: Kind::Run,
            run_id: part.run_id.clone(),
            part: part.part.clone(),
            start_ms: 0,
            // Uploaded parts are nobody's partial: a re-upload replaces the part.
            writer: String::new(),
        };
        let _one_at_a_time = self.one_at_a_time.lock().await;
        let earlier_rows = store.partial(&key).await?.map_or(0, |p| p.rows);
        store.put(&key, now, profile, now).await?;
        store
            .upsert_run(dataset, &part.run_id, part.run_ms, None, now)
            .await?;
        // A re-uploaded part adds only the rows it grew by: a retry never doubles.
        let grew = profile.rows.saturating_sub(earlier_rows);
        metrics
            .ingest
            .records_accepted(dataset, Stage::Offline, grew);
        let run = store.run_profile(dataset, &part.run_id).await?;
        let run = run.as_ref().unwrap_or(profile);
        let figures = run_metrics(run, self.max_features);
        store
            .put_run_metrics(dataset, &part.run_id, &figures)
            .await?;
        let judged = self
            .runs
            .judge(store, &metrics.counters, dataset, &part.run_id, now)
            .await?;
        Ok(StoredPart {
            run_rows: run.rows,
            judged,
        })
    }

    /// Sets a run's counters (a re-reported counter replaces its value, and adds to
    /// `driftd_counter_total` only what it grew by) and judges the run.
    pub async fn store_counters(
        &self,
        store: &Store,
        metrics: &Metrics,
        dataset: &str,
        report: &RunCounters<'_>,
    ) -> Result<Vec<Judged>, StoreError> {
        let now = now_ms();
        let run_id = report.run_id;
        let names: Vec<&str> = report.counters.iter().map(|(n, _)| n.as_str()).collect();
        let _one_at_a_time = self.one_at_a_time.lock().await;
        store
            .upsert_run(dataset, run_id, report.run_ms, report.labels, now)
            .await?;
        let earlier = store
            .put_run_counters(dataset, run_id, report.counters, now)
            .await?;
        store
            .saw_counter_names(dataset, Stage::Offline, &names, now)
            .await?;
        for ((name, value), old) in report.counters.iter().zip(&earlier) {
            let grew = value - old.unwrap_or(0.0);
            metrics
                .counters
                .counter_added(dataset, Stage::Offline, name, grew);
        }
        self.runs
            .judge(store, &metrics.counters, dataset, run_id, now)
            .await
    }

    /// Accepts a run's anomalies as the new normal and judges it again (its alert resolves).
    /// `None` when the dataset has no such run.
    pub async fn acknowledge(
        &self,
        store: &Store,
        metrics: &Metrics,
        dataset: &str,
        run_id: &str,
    ) -> Result<Option<u64>, StoreError> {
        let _one_at_a_time = self.one_at_a_time.lock().await;
        if store.run(dataset, run_id).await?.is_none() {
            return Ok(None);
        }
        let acknowledged = store.acknowledge_run(dataset, run_id).await?;
        self.runs
            .judge(store, &metrics.counters, dataset, run_id, now_ms())
            .await?;
        Ok(Some(acknowledged))
    }
}
