//! The ingest buffer's messages already counted (`buffer_applied`). A replica commits its
//! partial of a window together with the stream sequences of the JetStream messages folded into
//! it, so a message redelivered because its replica died between that commit and its
//! acknowledgement is recognised, acknowledged and not folded again: every record counted once.

use super::{Key, Store, StoreError, upsert};
use crate::profile::DatasetProfile;

/// Sequences bound per statement (with the three shared parameters), well inside SQLite's
/// limit of 32,766.
const ROWS_PER_STATEMENT: usize = 500;

/// One JetStream stream: its name, and when it was created (a stream deleted and created anew
/// under the same name numbers its messages from 1 again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamId {
    pub name: String,
    pub created_ns: i64,
}

/// Messages of one stream folded into a partial.
#[derive(Debug, Clone, Copy)]
pub struct Applied<'a> {
    pub stream: &'a StreamId,
    pub sequences: &'a [u64],
}

impl Store {
    /// Writes `profile` at `key` (as [`Store::put`]) and records `applied` as counted, in one
    /// transaction. Answers how many of those sequences were recorded already: messages another
    /// replica folded too, because this one held them past their acknowledgement wait.
    pub async fn put_applied(
        &self,
        key: &Key,
        end_ms: i64,
        profile: &DatasetProfile,
        now_ms: i64,
        applied: Applied<'_>,
    ) -> Result<u64, StoreError> {
        self.bounded(async {
            let mut tx = self.begin_write().await?;
            upsert(key, end_ms, profile, now_ms)
                .execute(&mut *tx)
                .await?;
            let mut again = 0;
            for chunk in applied.sequences.chunks(ROWS_PER_STATEMENT) {
                let rows: Vec<String> = (0..chunk.len())
                    .map(|i| format!("($1, $2, ${}, $3)", i + 4))
                    .collect();
                let statement = format!(
                    "INSERT INTO buffer_applied (stream, created_ns, sequence, applied_ms)
                     VALUES {} ON CONFLICT (stream, created_ns, sequence) DO NOTHING",
                    rows.join(", ")
                );
                let mut query = sqlx::query(&statement)
                    .bind(&applied.stream.name)
                    .bind(applied.stream.created_ns)
                    .bind(now_ms);
                for &sequence in chunk {
                    query = query.bind(sequence_value(sequence)?);
                }
                let inserted = query.execute(&mut *tx).await?.rows_affected();
                again += chunk.len() as u64 - inserted;
            }
            tx.commit().await?;
            Ok(again)
        })
        .await
    }

    /// Whether message `sequence` of `stream` is counted in some writer's partial.
    pub async fn applied(&self, stream: &StreamId, sequence: u64) -> Result<bool, StoreError> {
        self.bounded(async {
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT sequence FROM buffer_applied
                 WHERE stream = $1 AND created_ns = $2 AND sequence = $3",
            )
            .bind(&stream.name)
            .bind(stream.created_ns)
            .bind(sequence_value(sequence)?)
            .fetch_optional(&self.pool)
            .await?;
            Ok(found.is_some())
        })
        .await
    }

    /// Forgets the sequences of `stream` at or below `floor` (the consumer's acknowledgement
    /// floor: JetStream delivers none of them again), and those of earlier streams of its
    /// name; answers how many rows went.
    pub async fn forget_applied(&self, stream: &StreamId, floor: u64) -> Result<u64, StoreError> {
        self.bounded(async {
            let done = sqlx::query(
                "DELETE FROM buffer_applied
                 WHERE stream = $1 AND (created_ns <> $2 OR sequence <= $3)",
            )
            .bind(&stream.name)
            .bind(stream.created_ns)
            .bind(sequence_value(floor)?)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected())
        })
        .await
    }
}

/// A stream sequence as the databases store it (a signed 64-bit integer).
fn sequence_value(sequence: u64) -> Result<i64, StoreError> {
    i64::try_from(sequence)
        .map_err(|_| StoreError::Corrupt(format!("stream sequence {sequence} over 2^63")))
}
