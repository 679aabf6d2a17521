//! What the store knows of each dataset, for `GET /v1/datasets`: rows per stage, when each
//! stage was last written, and the names of its features.

use std::collections::BTreeSet;

use sqlx::Row;

use super::{Kind, Store, StoreError, decode};
use crate::profile::Stage;

/// A dataset's stored profiles, summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSummary {
    pub dataset: String,
    /// Rows of every stored offline run.
    pub offline_rows: i64,
    /// Rows of the stored online windows (those not yet expired; the open window as of its
    /// last flush).
    pub online_rows: i64,
    pub offline_runs: i64,
    /// When an offline run, or an online window, was last written.
    pub offline_seen_ms: Option<i64>,
    pub online_seen_ms: Option<i64>,
}

/// Sums per dataset; `$1`..`$4` bind offline, run, online and window, `$5` one dataset or `''`.
const SUMMARIES: &str = "SELECT dataset,
        CAST(SUM(CASE WHEN stage = $1 AND kind = $2 THEN rows ELSE 0 END) AS BIGINT),
        CAST(SUM(CASE WHEN stage = $3 AND kind = $4 THEN rows ELSE 0 END) AS BIGINT),
        CAST(COUNT(DISTINCT CASE WHEN stage = $1 AND kind = $2 THEN run_id END) AS BIGINT),
        MAX(CASE WHEN stage = $1 AND kind = $2 THEN updated_ms END),
        MAX(CASE WHEN stage = $3 AND kind = $4 THEN updated_ms END)
     FROM profiles WHERE ($5 = '' OR dataset = $5)
     GROUP BY dataset ORDER BY dataset";

impl Store {
    /// Every dataset with a stored profile, or only `only`; in name order.
    pub async fn dataset_summaries(
        &self,
        only: Option<&str>,
    ) -> Result<Vec<DatasetSummary>, StoreError> {
        let rows = sqlx::query(SUMMARIES)
            .bind(Stage::Offline.as_str())
            .bind(Kind::Run.as_str())
            .bind(Stage::Online.as_str())
            .bind(Kind::Window.as_str())
            .bind(only.unwrap_or(""))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(DatasetSummary {
                    dataset: r.try_get(0)?,
                    offline_rows: r.try_get::<Option<i64>, _>(1)?.unwrap_or(0),
                    online_rows: r.try_get::<Option<i64>, _>(2)?.unwrap_or(0),
                    offline_runs: r.try_get::<Option<i64>, _>(3)?.unwrap_or(0),
                    offline_seen_ms: r.try_get(4)?,
                    online_seen_ms: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// The features of a dataset's reference run (its parts) and of its latest online window
    /// (every writer's partial).
    pub async fn feature_names(
        &self,
        dataset: &str,
        reference_run: Option<&str>,
    ) -> Result<BTreeSet<String>, StoreError> {
        let mut bodies = Vec::new();
        if let Some(run_id) = reference_run {
            let parts = sqlx::query(
                "SELECT body FROM profiles WHERE dataset = $1 AND stage = $2 AND kind = $3
                 AND run_id = $4",
            )
            .bind(dataset)
            .bind(Stage::Offline.as_str())
            .bind(Kind::Run.as_str())
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?;
            bodies.extend(parts);
        }
        // Every writer's partial of the latest window.
        let latest = sqlx::query(
            "SELECT body FROM profiles WHERE dataset = $1 AND stage = $2 AND kind = $3
             AND start_ms = (SELECT MAX(start_ms) FROM profiles
                             WHERE dataset = $1 AND stage = $2 AND kind = $3)",
        )
        .bind(dataset)
        .bind(Stage::Online.as_str())
        .bind(Kind::Window.as_str())
        .fetch_all(&self.pool)
        .await?;
        bodies.extend(latest);
        let mut names = BTreeSet::new();
        for row in bodies {
            let profile = decode(&row.try_get::<Vec<u8>, _>(0)?)?;
            names.extend(profile.features.into_keys());
        }
        Ok(names)
    }
}
