//! Record batches posted to `driftd serve`: a JSON document `{"records": [...], "labels": {...}}`
//! or NDJSON (one record per line). Pure parsing: a malformed document is refused naming where
//! it broke; a record that is not an object is refused alone, with its index and why.

use std::collections::BTreeMap;

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

/// Walks a body record by record, without holding more than one record in memory: each JSON
/// object goes to `on_record`, anything else is refused with its index (or line).
pub fn for_each_record(
    format: BodyFormat,
    body: &[u8],
    mut on_record: impl FnMut(Map<String, Value>),
) -> Result<Streamed, BodyError> {
    let mut streamed = Streamed::default();
    match format {
        BodyFormat::Json => {
            let mut de = serde_json::Deserializer::from_slice(body);
            let visitor = DocumentVisitor {
                on_record: &mut on_record,
                streamed: &mut streamed,
            };
            serde::Deserializer::deserialize_map(&mut de, visitor)
                .and_then(|()| de.end())
                .map_err(|e| match e.classify() {
                    serde_json::error::Category::Data => BodyError::Shape(json_reason(&e)),
                    _ => BodyError::InvalidJson {
                        line: e.line(),
                        column: e.column(),
                        reason: json_reason(&e),
                    },
                })?;
            if !streamed.saw_records {
                return Err(BodyError::Shape("missing field `records`".into()));
            }
        }
        BodyFormat::Ndjson => {
            for (i, line) in body.split(|&b| b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match serde_json::from_slice::<Value>(line) {
                    Ok(Value::Object(map)) => on_record(map),
                    Ok(other) => streamed.reject(
                        i + 1,
                        format!("expected a JSON object, found {}", json_type(&other)),
                    ),
                    Err(e) => streamed.reject(
                        i + 1,
                        format!("invalid JSON at column {}: {}", e.column(), json_reason(&e)),
                    ),
                }
            }
        }
    }
    Ok(streamed)
}

/// What walking a body found besides its records.
#[derive(Debug, Default)]
pub struct Streamed {
    pub labels: BTreeMap<String, String>,
    /// The first `MAX_LISTED_ERRORS` refused records.
    pub rejected: Vec<RecordError>,
    pub rejected_count: usize,
    saw_records: bool,
}

/// Refused records listed in a response; the rest are counted.
pub const MAX_LISTED_ERRORS: usize = 100;

impl Streamed {
    fn reject(&mut self, index: usize, reason: String) {
        self.rejected_count += 1;
        if self.rejected.len() < MAX_LISTED_ERRORS {
            self.rejected.push(RecordError { index, reason });
        }
    }
}

struct DocumentVisitor<'a, F> {
    on_record: &'a mut F,
    streamed: &'a mut Streamed,
}

impl<'de, F: FnMut(Map<String, Value>)> serde::de::Visitor<'de> for DocumentVisitor<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object with \"records\" and optional \"labels\"")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // A repeated key is refused, not read twice or overridden: readers of JSON disagree on
        // which copy counts, and a body must mean one thing to every one of them.
        let mut saw_labels = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "records" if self.streamed.saw_records => {
                    return Err(serde::de::Error::duplicate_field("records"));
                }
                "labels" if saw_labels => {
                    return Err(serde::de::Error::duplicate_field("labels"));
                }
                "records" => {
                    self.streamed.saw_records = true;
                    map.next_value_seed(RecordsSeed {
                        on_record: &mut *self.on_record,
                        streamed: &mut *self.streamed,
                    })?
                }
                "labels" => {
                    saw_labels = true;
                    self.streamed.labels = map.next_value()?;
                }
                other => {
                    return Err(serde::de::Error::unknown_field(
                        other,
                        &["records", "labels"],
                    ));
                }
            }
        }
        Ok(())
    }
}

struct RecordsSeed<'a, F> {
    on_record: &'a mut F,
    streamed: &'a mut Streamed,
}

impl<'de, F: FnMut(Map<String, Value>)> serde::de::DeserializeSeed<'de> for RecordsSeed<'_, F> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(Map<String, Value>)> serde::de::Visitor<'de> for RecordsSeed<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while let Some(record) = seq.next_element::<Value>()? {
            match record {
                Value::Object(map) => (self.on_record)(map),
                other => self.streamed.reject(
                    index,
                    format!("expected a JSON object, found {}", json_type(&other)),
                ),
            }
            index += 1;
        }
        Ok(())
    }
}

/// Parses a whole body into records (for callers that want them all at once).
pub fn parse(format: BodyFormat, body: &[u8]) -> Result<ParsedBatch, BodyError> {
    let mut records = Vec::new();
    let streamed = for_each_record(format, body, |r| records.push(r))?;
    Ok(ParsedBatch {
        records,
        labels: streamed.labels,
        rejected: streamed.rejected,
    })
}

/// serde_json's message without its " at line 1 column N" suffix (the caller names the place).
pub(super) fn json_reason(e: &serde_json::Error) -> String {
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
        for twice in [
            r#"{"records": [{"a": 1}], "records": [{"b": 2}, {"b": 3}]}"#,
            r#"{"records": [], "labels": {"a": "1"}, "labels": {"b": "2"}}"#,
        ] {
            let err = parse(BodyFormat::Json, twice.as_bytes()).unwrap_err();
            assert!(
                matches!(&err, BodyError::Shape(why) if why.starts_with("duplicate field `")),
                "{err}"
            );
        }

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
