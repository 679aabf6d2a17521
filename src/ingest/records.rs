//! Record batches posted to `driftd serve`: a JSON document `{"records": [...], "labels": {...}}`
//! or NDJSON (one record per line). Pure parsing: a malformed document is refused naming where
//! it broke; a record that is not an object is refused alone, with its index and why.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::json_type;

/// The two body formats, chosen by `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Ndjson,
}

impl BodyFormat {
    /// `application/json`, or `application/x-ndjson` / `application/jsonl` / `application/ndjson`.
    pub fn from_content_type(value: &str) -> Option<BodyFormat> {
        let essence = value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => Some(BodyFormat::Json),
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines" => Some(BodyFormat::Ndjson),
            _ => None,
        }
    }
}

/// A record refused alone. `index` counts records from 0 (JSON) or lines from 1 (NDJSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordError {
    pub index: usize,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct ParsedBatch {
    pub records: Vec<Map<String, Value>>,
    pub labels: BTreeMap<String, String>,
    pub rejected: Vec<RecordError>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("invalid JSON at line {line}, column {column}: {reason}")]
    InvalidJson {
        line: usize,
        column: usize,
        reason: String,
    },
    #[error(
        "the body must be a JSON object with \"records\": [...] (and optional \"labels\"): {0}"
    )]
    Shape(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    records: Vec<Value>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

pub fn parse(format: BodyFormat, body: &[u8]) -> Result<ParsedBatch, BodyError> {
    match format {
        BodyFormat::Json => {
            let doc: Document = serde_json::from_slice(body).map_err(|e| match e.classify() {
                serde_json::error::Category::Data => BodyError::Shape(reason(&e)),
                _ => BodyError::InvalidJson {
                    line: e.line(),
                    column: e.column(),
                    reason: reason(&e),
                },
            })?;
            let mut batch = ParsedBatch {
                labels: doc.labels,
                ..ParsedBatch::default()
            };
            for (index, record) in doc.records.into_iter().enumerate() {
                push(&mut batch, index, record);
            }
            Ok(batch)
        }
        BodyFormat::Ndjson => {
            let mut batch = ParsedBatch::default();
            for (i, line) in body.split(|&b| b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match serde_json::from_slice::<Value>(line) {
                    Ok(record) => push(&mut batch, i + 1, record),
                    Err(e) => batch.rejected.push(RecordError {
                        index: i + 1,
                        reason: format!("invalid JSON at column {}: {}", e.column(), reason(&e)),
                    }),
                }
            }
            Ok(batch)
        }
    }
}

fn push(batch: &mut ParsedBatch, index: usize, record: Value) {
    match record {
        Value::Object(map) => batch.records.push(map),
        other => batch.rejected.push(RecordError {
            index,
            reason: format!("expected a JSON object, found {}", json_type(&other)),
        }),
    }
}

fn reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_documents_and_ndjson_lines() {
        let b = parse(
            BodyFormat::Json,
            br#"{"records": [{"a": 1}, [2], {"b": "x"}], "labels": {"host": "h1"}}"#,
        )
        .unwrap();
        assert_eq!(b.records.len(), 2);
        assert_eq!(
            b.rejected,
            [RecordError {
                index: 1,
                reason: "expected a JSON object, found an array".into()
            }]
        );
        assert_eq!(b.labels["host"], "h1");

        let err = parse(
            BodyFormat::Json,
            b"{\"records\": [{\"a\": 1},\n {\"a\": }]}",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid JSON at line 2, column 8: expected value"
        );
        let err = parse(BodyFormat::Json, br#"{"rows": []}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `rows`"), "{err}");

        let b = parse(
            BodyFormat::Ndjson,
            b"{\"a\": 1}\n\n{bad\n\"s\"\n{\"a\": 2}\n",
        )
        .unwrap();
        assert_eq!(b.records.len(), 2);
        assert_eq!(b.rejected.len(), 2);
        assert_eq!(b.rejected[0].index, 3);
        assert!(
            b.rejected[0].reason.starts_with("invalid JSON at column 2"),
            "{:?}",
            b.rejected
        );
        assert_eq!(
            b.rejected[1],
            RecordError {
                index: 4,
                reason: "expected a JSON object, found a string".into()
            }
        );
    }

    #[test]
    fn content_types() {
        assert_eq!(
            BodyFormat::from_content_type("application/json; charset=utf-8"),
            Some(BodyFormat::Json)
        );
        assert_eq!(
            BodyFormat::from_content_type("application/x-ndjson"),
            Some(BodyFormat::Ndjson)
        );
        assert_eq!(BodyFormat::from_content_type("text/csv"), None);
    }
}
