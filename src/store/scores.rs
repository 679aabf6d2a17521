//! The drift score history: each evaluation's scores, one compact row per dataset and
//! evaluation (a JSON object of feature → `[score, threshold, drifted]`), expired with the
//! windows.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{Store, StoreError};

/// One feature's score in one evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// `None`: judged, but no score could be computed.
    pub score: Option<f64>,
    pub threshold: f64,
    pub drifted: bool,
}

/// Every feature's score in one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub evaluated_ms: i64,
    pub features: BTreeMap<String, Score>,
}

/// As stored: `[score or null, threshold, 0|1]`.
type Stored = (Option<f64>, f64, u8);

impl Store {
    /// Records one evaluation's scores (a second record at the same time replaces the first).
    pub async fn put_scores(&self, dataset: &str, scores: &Scores) -> Result<(), StoreError> {
        let stored: BTreeMap<&str, Stored> = scores
            .features
            .iter()
            .map(|(name, s)| (name.as_str(), (s.score, s.threshold, u8::from(s.drifted))))
            .collect();
        let json = serde_json::to_string(&stored).expect("scores serialise");
        self.bounded(async {
            sqlx::query(
                "INSERT INTO score_history (dataset, evaluated_ms, scores) VALUES ($1, $2, $3)
                 ON CONFLICT (dataset, evaluated_ms) DO UPDATE SET scores = excluded.scores",
            )
            .bind(dataset)
            .bind(scores.evaluated_ms)
            .bind(json)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
        .await
    }

    /// The newest `limit` evaluations after `since_ms`, oldest first.
    pub async fn score_history(
        &self,
        dataset: &str,
        since_ms: i64,
        limit: i64,
    ) -> Result<Vec<Scores>, StoreError> {
        self.bounded(async {
            let rows = sqlx::query(
                "SELECT evaluated_ms, scores FROM score_history
                 WHERE dataset = $1 AND evaluated_ms > $2 ORDER BY evaluated_ms DESC LIMIT $3",
            )
            .bind(dataset)
            .bind(since_ms)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            let mut history = rows.iter().map(scores_of).collect::<Result<Vec<_>, _>>()?;
            history.reverse();
            Ok(history)
        })
        .await
    }
}

fn scores_of(row: &sqlx::any::AnyRow) -> Result<Scores, StoreError> {
    let text: String = row.try_get(1)?;
    let stored: BTreeMap<String, Stored> = serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("score history: {e}")))?;
    let features = stored
        .into_iter()
        .map(|(name, (score, threshold, drifted))| {
            let score = Score {
                score,
                threshold,
                drifted: drifted != 0,
            };
            (name, score)
        })
        .collect();
    Ok(Scores {
        evaluated_ms: row.try_get(0)?,
        features,
    })
}
