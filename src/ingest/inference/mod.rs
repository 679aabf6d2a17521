//! Inference logs: the CloudEvents that KServe's and Seldon's payload loggers send for each
//! request and response, as records. Pure parsing: the event's attributes (binary mode `ce-*`
//! headers, CloudEvents 0.1's `ce-eventtype` …, or a structured `application/cloudevents+json`
//! body) say whose event it is, what it is, its dataset and its record id; the payload
//! (`payload`) becomes one record per batch row.

mod payload;
mod raw;

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine;
use serde_json::value::RawValue;

pub use payload::{Options, RECORD_ID, Rows, for_each_row};

/// Which payload logger sent an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    KServe,
    Seldon,
}

/// A request's inputs or a response's predictions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Request,
    Response,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Request => "request",
            Direction::Response => "response",
        }
    }
}

/// The event types driftd takes.
pub const EVENT_TYPES: [(&str, Server, Direction); 4] = [
    (
        "org.kubeflow.serving.inference.request",
        Server::KServe,
        Direction::Request,
    ),
    (
        "org.kubeflow.serving.inference.response",
        Server::KServe,
        Direction::Response,
    ),
    (
        "io.seldon.serving.inference.request",
        Server::Seldon,
        Direction::Request,
    ),
    (
        "io.seldon.serving.inference.response",
        Server::Seldon,
        Direction::Response,
    ),
];

/// Extension attributes kept as labels of the batch (non-empty ones).
const LABELS: [&str; 5] = ["namespace", "endpoint", "component", "modelid", "protocol"];
/// Longest label value and record id kept, in bytes.
const MAX_ATTRIBUTE_BYTES: usize = 256;

/// What an event's attributes say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub server: Server,
    pub direction: Direction,
    /// The record id: `ce-id` (KServe), `ce-requestid` else `ce-id` (Seldon).
    pub id: Option<String>,
    /// The inference service: `ce-inferenceservicename`, for Seldon else `ce-modelid`.
    pub dataset: Option<String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error(
        "not a CloudEvent: no ce-type header (nor CloudEvents 0.1's ce-eventtype); driftd takes {}",
        accepted_types()
    )]
    NoType,
    #[error("unknown CloudEvents type {0:?}; driftd takes {types}", types = accepted_types())]
    UnknownType(String),
    #[error("not a structured CloudEvent: {0}")]
    Structured(String),
    #[error(transparent)]
    Payload(#[from] PayloadError),
}

/// Why a payload as a whole cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("invalid JSON at line {line}, column {column}: {reason}")]
    InvalidJson {
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("{0}")]
    Shape(String),
}

pub fn accepted_types() -> String {
    EVENT_TYPES.map(|(name, _, _)| name).join(", ")
}

/// The envelope of a binary-mode event from its headers (`header` looks one up by its
/// lower-case name). CloudEvents 1.0 and 0.3 name attributes `ce-<name>`; 0.1 named them
/// `ce-eventtype`, `ce-eventid` and extensions `ce-x-<name>`.
pub fn binary<'h>(header: impl Fn(&str) -> Option<&'h str>) -> Result<Envelope, EventError> {
    envelope(|name| {
        let legacy = match name {
            "type" => "ce-eventtype".to_owned(),
            "id" => "ce-eventid".to_owned(),
            other => format!("ce-x-{other}"),
        };
        header(&format!("ce-{name}"))
            .or_else(|| header(&legacy))
            .map(str::to_owned)
    })
}

/// A structured-mode event (`application/cloudevents+json`): its envelope and its payload,
/// borrowed from `body` (`data`) or decoded (`data_base64`, or `data` as a JSON string).
pub fn structured(body: &[u8]) -> Result<(Envelope, Cow<'_, [u8]>), EventError> {
    let members: BTreeMap<String, &RawValue> = serde_json::from_slice(body).map_err(|e| {
        EventError::Structured(format!(
            "the body must be a JSON object: {}",
            records_reason(&e)
        ))
    })?;
    // CloudEvents 0.1 named them eventType and eventID, with extensions in their own object.
    let extensions: BTreeMap<String, serde_json::Value> = members
        .get("extensions")
        .and_then(|raw| serde_json::from_str(raw.get()).ok())
        .unwrap_or_default();
    let text = |raw: &RawValue| match serde_json::from_str::<serde_json::Value>(raw.get()) {
        Ok(serde_json::Value::String(s)) => Some(s),
        Ok(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let envelope = envelope(|name| {
        let legacy = match name {
            "type" => "eventType",
            "id" => "eventID",
            _ => "",
        };
        members
            .get(name)
            .or_else(|| members.get(legacy))
            .and_then(|raw| text(raw))
            .or_else(|| {
                extensions
                    .get(name)
                    .and_then(|v| v.as_str().map(str::to_owned))
            })
    })?;
    let data = if let Some(encoded) = members.get("data_base64") {
        let encoded = text(encoded)
            .ok_or_else(|| EventError::Structured("data_base64 must be a string".into()))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| EventError::Structured(format!("data_base64 is not base64: {e}")))?;
        Cow::Owned(bytes)
    } else {
        match members.get("data") {
            None => return Err(EventError::Structured("the event has no data".into())),
            Some(raw) if raw.get().trim_start().starts_with('"') => {
                Cow::Owned(text(raw).unwrap_or_default().into_bytes())
            }
            Some(raw) => Cow::Borrowed(raw.get().as_bytes()),
        }
    };
    Ok((envelope, data))
}

fn envelope(attribute: impl Fn(&str) -> Option<String>) -> Result<Envelope, EventError> {
    let kind = attribute("type").ok_or(EventError::NoType)?;
    let (_, server, direction) = EVENT_TYPES
        .iter()
        .copied()
        .find(|(name, _, _)| *name == kind.trim())
        .ok_or_else(|| EventError::UnknownType(crate::format::truncate_chars(&kind, 100)))?;
    let present = |name: &str| {
        attribute(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .map(|v| bounded(v, MAX_ATTRIBUTE_BYTES))
    };
    let (id, dataset) = match server {
        Server::KServe => (present("id"), present("inferenceservicename")),
        Server::Seldon => (
            present("requestid").or_else(|| present("id")),
            present("inferenceservicename").or_else(|| present("modelid")),
        ),
    };
    let labels = LABELS
        .iter()
        .filter_map(|name| present(name).map(|v| ((*name).to_owned(), v)))
        .collect();
    Ok(Envelope {
        server,
        direction,
        id,
        dataset,
        labels,
    })
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn bounded(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

fn records_reason(e: &serde_json::Error) -> String {
    crate::ingest::records::json_reason(e)
}

#[cfg(test)]
mod tests;
