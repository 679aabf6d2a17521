//! Counters, offline runs, run metrics and run anomalies.

use std::collections::{BTreeMap, HashMap};

use sqlx::Row;

use super::{Store, StoreError};
use crate::profile::Stage;

/// Where the values judged for a run come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Counters the run reported.
    Counter,
    /// Figures of the run's profile.
    Metric,
}

/// An offline run.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub run_id: String,
    pub run_ms: i64,
    pub reported_ms: i64,
    /// A JSON object.
    pub labels: String,
}

/// A counter name of a dataset, on one side.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterName {
    pub name: String,
    pub stage: Stage,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
}

/// A value of a run that broke from its history.
#[derive(Debug, Clone, PartialEq)]
pub struct RunAnomaly {
    pub run_id: String,
    pub name: String,
    pub value: f64,
    pub expected: f64,
    pub low: f64,
    pub high: f64,
    /// How the baseline was chosen, in words ("earlier Monday runs").
    pub baseline: String,
    pub runs: i64,
    pub found_ms: i64,
    pub acknowledged: bool,
}

impl Source {
    /// The column of `runs` holding the run's values from this source.
    fn column(self) -> &'static str {
        match self {
            Source::Counter => "counters",
            Source::Metric => "metrics",
        }
    }
}

/// A JSON object of name: number, as stored in `runs`.
fn values_of(json: &str) -> Result<BTreeMap<String, f64>, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("run values: {e}")))
}

impl Store {
    /// Records a report of run `run_id`: its logical time when given (otherwise the time it was
    /// first reported), and its labels when given.
    pub async fn upsert_run(
        &self,
        dataset: &str,
        run_id: &str,
        run_ms: Option<i64>,
        labels: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.bounded(async {
            // One statement: a given run time or labels replace the stored ones, absent ones keep
            // them (the first report's time stands for a run that never says when it ran).
            sqlx::query(
                "INSERT INTO runs (dataset, run_id, run_ms, reported_ms, labels)
                 VALUES ($1, $2, COALESCE($3, $4), $4, COALESCE($5, '{}'))
                 ON CONFLICT (dataset, run_id) DO UPDATE SET reported_ms = excluded.reported_ms,
                     run_ms = COALESCE($3, runs.run_ms), labels = COALESCE($5, runs.labels)",
            )
            .bind(dataset)
            .bind(run_id)
            .bind(run_ms)
            .bind(now_ms)
            .bind(labels)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await
    }

    pub async fn run(&self, dataset: &str, run_id: &str) -> Result<Option<Run>, StoreError> {
        self.bounded(async {
            let row = sqlx::query(
                "SELECT run_id, run_ms, reported_ms, labels FROM runs WHERE dataset = $1 AND run_id = $2",
            )
            .bind(dataset)
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?;
            row.map(|r| run_of(&r)).transpose()
        })
        .await
    }

    /// The latest runs by logical time, newest first.
    pub async fn runs(&self, dataset: &str, limit: i64) -> Result<Vec<Run>, StoreError> {
        self.bounded(async {
            let rows = sqlx::query(
                "SELECT run_id, run_ms, reported_ms, labels FROM runs WHERE dataset = $1
                 ORDER BY run_ms DESC, run_id DESC LIMIT $2",
            )
            .bind(dataset)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(run_of).collect()
        })
        .await
    }

    /// Datasets with at least one offline run.
    pub async fn run_datasets(&self) -> Result<Vec<String>, StoreError> {
        self.bounded(async {
            let rows = sqlx::query("SELECT DISTINCT dataset FROM runs ORDER BY dataset")
                .fetch_all(&self.pool)
                .await?;
            Ok(rows
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Sets a run's counters (each name replaces its earlier value: a retried report never
    /// doubles). Returns the earlier value of each counter, in order.
    pub async fn put_run_counters(
        &self,
        dataset: &str,
        run_id: &str,
        counters: &[(String, f64)],
        now_ms: i64,
    ) -> Result<Vec<Option<f64>>, StoreError> {
        self.bounded(async {
            let mut tx = self.begin_write().await?;
            let mut earlier = Vec::with_capacity(counters.len());
            for (name, value) in counters {
                let old: Option<f64> = sqlx::query(
                    "SELECT value FROM counters WHERE dataset = $1 AND stage = 'offline' AND run_id = $2
                     AND start_ms = 0 AND name = $3",
                )
                .bind(dataset)
                .bind(run_id)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
                earlier.push(old);
                sqlx::query(
                    "INSERT INTO counters (dataset, stage, run_id, start_ms, name, value, updated_ms)
                     VALUES ($1, 'offline', $2, 0, $3, $4, $5)
                     ON CONFLICT (dataset, stage, run_id, start_ms, name)
                     DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
                )
                .bind(dataset)
                .bind(run_id)
                .bind(name)
                .bind(*value)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            }
            // The run's copy for anomaly detection (the run's row exists: `upsert_run` first).
            let stored: Option<String> =
                sqlx::query("SELECT counters FROM runs WHERE dataset = $1 AND run_id = $2")
                    .bind(dataset)
                    .bind(run_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| r.try_get(0))
                    .transpose()?;
            let mut all = values_of(stored.as_deref().unwrap_or("{}"))?;
            all.extend(counters.iter().cloned());
            sqlx::query("UPDATE runs SET counters = $3 WHERE dataset = $1 AND run_id = $2")
                .bind(dataset)
                .bind(run_id)
                .bind(serde_json::to_string(&all).expect("numbers serialise"))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(earlier)
        })
        .await
    }

    /// Adds online increments to the window starting at `start_ms`.
    pub async fn add_online_counters(
        &self,
        dataset: &str,
        start_ms: i64,
        counters: &[(String, f64)],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.bounded(async {
            let mut tx = self.begin_write().await?;
            for (name, value) in counters {
                sqlx::query(
                    "INSERT INTO counters (dataset, stage, run_id, start_ms, name, value, updated_ms)
                     VALUES ($1, 'online', '', $2, $3, $4, $5)
                     ON CONFLICT (dataset, stage, run_id, start_ms, name)
                     DO UPDATE SET value = counters.value + excluded.value, updated_ms = excluded.updated_ms",
                )
                .bind(dataset)
                .bind(start_ms)
                .bind(name)
                .bind(*value)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Every counter name of `dataset`, on each side it was seen.
    pub async fn counter_names(&self, dataset: &str) -> Result<Vec<CounterName>, StoreError> {
        self.bounded(async {
            let rows = sqlx::query(
                "SELECT name, stage, first_seen_ms, last_seen_ms FROM counter_names WHERE dataset = $1
                 ORDER BY name, stage",
            )
            .bind(dataset)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    let name: String = r.try_get(0)?;
                    let stage = r
                        .try_get::<String, _>(1)?
                        .parse()
                        .map_err(|e| StoreError::Corrupt(format!("counter name {name:?}: {e}")))?;
                    Ok(CounterName {
                        name,
                        stage,
                        first_seen_ms: r.try_get(2)?,
                        last_seen_ms: r.try_get(3)?,
                    })
                })
                .collect()
        })
        .await
    }

    /// Notes that `names` were reported on `stage` now.
    pub async fn saw_counter_names(
        &self,
        dataset: &str,
        stage: Stage,
        names: &[&str],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.bounded(async {
            let mut tx = self.begin_write().await?;
            for name in names {
                sqlx::query(
                    "INSERT INTO counter_names (dataset, name, stage, first_seen_ms, last_seen_ms)
                     VALUES ($1, $2, $3, $4, $4)
                     ON CONFLICT (dataset, name, stage) DO UPDATE SET last_seen_ms = excluded.last_seen_ms",
                )
                .bind(dataset)
                .bind(*name)
                .bind(stage.as_str())
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Replaces the figures of a run's profile (the run's row exists: `upsert_run` first).
    pub async fn put_run_metrics(
        &self,
        dataset: &str,
        run_id: &str,
        metrics: &[(String, f64)],
    ) -> Result<(), StoreError> {
        self.bounded(async {
            let all: BTreeMap<&str, f64> = metrics.iter().map(|(n, v)| (n.as_str(), *v)).collect();
            sqlx::query("UPDATE runs SET metrics = $3 WHERE dataset = $1 AND run_id = $2")
                .bind(dataset)
                .bind(run_id)
                .bind(serde_json::to_string(&all).expect("numbers serialise"))
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    /// A run's values from `source`, by name.
    pub async fn run_values(
        &self,
        dataset: &str,
        run_id: &str,
        source: Source,
    ) -> Result<Vec<(String, f64)>, StoreError> {
        self.bounded(async {
            let sql = format!(
                "SELECT {} FROM runs WHERE dataset = $1 AND run_id = $2",
                source.column()
            );
            let row = sqlx::query(&sql)
                .bind(dataset)
                .bind(run_id)
                .fetch_optional(&self.pool)
                .await?;
            match row {
                None => Ok(Vec::new()),
                Some(r) => Ok(values_of(&r.try_get::<String, _>(0)?)?
                    .into_iter()
                    .collect()),
            }
        })
        .await
    }

    /// Every value from `source` in the `limit` runs before `before_ms`, by name, each marked
    /// when it was flagged and not acknowledged: two queries for a whole run's judgement.
    pub async fn run_history(
        &self,
        dataset: &str,
        source: Source,
        before_ms: i64,
        limit: i64,
    ) -> Result<HashMap<String, Vec<RunValue>>, StoreError> {
        self.bounded(async {
            let sql = format!(
                "SELECT run_id, run_ms, {} FROM runs WHERE dataset = $1 AND run_ms < $2
                 ORDER BY run_ms DESC LIMIT $3",
                source.column()
            );
            let runs = sqlx::query(&sql)
                .bind(dataset)
                .bind(before_ms)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
            let flagged: std::collections::HashSet<(String, String)> = sqlx::query(
                "SELECT run_id, name FROM run_anomalies WHERE dataset = $1 AND acknowledged = 0",
            )
            .bind(dataset)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, StoreError>>()?;
            let mut history: HashMap<String, Vec<RunValue>> = HashMap::new();
            for r in &runs {
                let run_id: String = r.try_get(0)?;
                let at_ms: i64 = r.try_get(1)?;
                for (name, value) in values_of(&r.try_get::<String, _>(2)?)? {
                    let flagged = flagged.contains(&(run_id.clone(), name.clone()));
                    history.entry(name).or_default().push(RunValue {
                        at_ms,
                        value,
                        flagged,
                    });
                }
            }
            Ok(history)
        })
        .await
    }

    /// Replaces a run's anomalies; a value that stays anomalous keeps its acknowledgement.
    pub async fn put_run_anomalies(
        &self,
        dataset: &str,
        run_id: &str,
        anomalies: &[RunAnomaly],
    ) -> Result<(), StoreError> {
        self.bounded(async {
            let mut tx = self.begin_write().await?;
            let keep: Vec<&str> = anomalies.iter().map(|a| a.name.as_str()).collect();
            let stored =
                sqlx::query("SELECT name FROM run_anomalies WHERE dataset = $1 AND run_id = $2")
                    .bind(dataset)
                    .bind(run_id)
                    .fetch_all(&mut *tx)
                    .await?;
            for row in stored {
                let name: String = row.try_get(0)?;
                if !keep.contains(&name.as_str()) {
                    sqlx::query(
                        "DELETE FROM run_anomalies WHERE dataset = $1 AND run_id = $2 AND name = $3",
                    )
                    .bind(dataset)
                    .bind(run_id)
                    .bind(&name)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            for a in anomalies {
                sqlx::query(
                    "INSERT INTO run_anomalies (dataset, run_id, name, value, expected, low, high, baseline, runs, found_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                     ON CONFLICT (dataset, run_id, name) DO UPDATE SET value = excluded.value,
                       expected = excluded.expected, low = excluded.low, high = excluded.high,
                       baseline = excluded.baseline, runs = excluded.runs",
                )
                .bind(dataset)
                .bind(run_id)
                .bind(&a.name)
                .bind(a.value)
                .bind(a.expected)
                .bind(a.low)
                .bind(a.high)
                .bind(&a.baseline)
                .bind(a.runs)
                .bind(a.found_ms)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    pub async fn run_anomalies(
        &self,
        dataset: &str,
        run_id: &str,
    ) -> Result<Vec<RunAnomaly>, StoreError> {
        self.bounded(async {
            let rows = sqlx::query(
                "SELECT run_id, name, value, expected, low, high, baseline, runs, found_ms, acknowledged
                 FROM run_anomalies WHERE dataset = $1 AND run_id = $2 ORDER BY name",
            )
            .bind(dataset)
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(RunAnomaly {
                        run_id: r.try_get(0)?,
                        name: r.try_get(1)?,
                        value: r.try_get(2)?,
                        expected: r.try_get(3)?,
                        low: r.try_get(4)?,
                        high: r.try_get(5)?,
                        baseline: r.try_get(6)?,
                        runs: r.try_get(7)?,
                        found_ms: r.try_get(8)?,
                        acknowledged: r.try_get::<i64, _>(9)? != 0,
                    })
                })
                .collect()
        })
        .await
    }

    /// Accepts a run's anomalies as the new normal: they join later baselines. Returns how
    /// many were acknowledged.
    pub async fn acknowledge_run(&self, dataset: &str, run_id: &str) -> Result<u64, StoreError> {
        self.bounded(async {
            let done = sqlx::query(
                "UPDATE run_anomalies SET acknowledged = 1 WHERE dataset = $1 AND run_id = $2
                 AND acknowledged = 0",
            )
            .bind(dataset)
            .bind(run_id)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected())
        })
        .await
    }

    /// Each offline counter's value in the latest run (by logical time) that reported it.
    pub async fn latest_run_counters(
        &self,
        dataset: &str,
    ) -> Result<Vec<(String, Run, f64)>, StoreError> {
        self.bounded(async {
            let rows = sqlx::query(
                "SELECT c.name, r.run_id, r.run_ms, r.reported_ms, r.labels, c.value FROM counters c
                 JOIN runs r ON r.dataset = c.dataset AND r.run_id = c.run_id
                 WHERE c.dataset = $1 AND c.stage = 'offline'
                 ORDER BY c.name, r.run_ms DESC, r.run_id DESC",
            )
            .bind(dataset)
            .fetch_all(&self.pool)
            .await?;
            let mut latest: Vec<(String, Run, f64)> = Vec::new();
            for r in &rows {
                let name: String = r.try_get(0)?;
                if latest.last().is_some_and(|(n, _, _)| *n == name) {
                    continue;
                }
                let run = Run {
                    run_id: r.try_get(1)?,
                    run_ms: r.try_get(2)?,
                    reported_ms: r.try_get(3)?,
                    labels: r.try_get(4)?,
                };
                latest.push((name, run, r.try_get(5)?));
            }
            Ok(latest)
        })
        .await
    }

    /// Online increments per counter name since `since_ms` (window starts).
    pub async fn online_counter_totals(
        &self,
        dataset: &str,
        since_ms: i64,
    ) -> Result<Vec<(String, f64)>, StoreError> {
        self.bounded(async {
            let rows = sqlx::query(
                "SELECT name, SUM(value) FROM counters WHERE dataset = $1 AND stage = 'online'
                 AND start_ms >= $2 GROUP BY name ORDER BY name",
            )
            .bind(dataset)
            .bind(since_ms)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect()
        })
        .await
    }
}

fn run_of(r: &sqlx::any::AnyRow) -> Result<Run, StoreError> {
    Ok(Run {
        run_id: r.try_get(0)?,
        run_ms: r.try_get(1)?,
        reported_ms: r.try_get(2)?,
        labels: r.try_get(3)?,
    })
}

/// One earlier run's value of a name, as the store keeps it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunValue {
    /// When the run ran (its logical time), in ms since the epoch.
    pub at_ms: i64,
    pub value: f64,
    /// Flagged as anomalous and not acknowledged.
    pub flagged: bool,
}
