//! Inference payloads as records, one per batch row: KServe V1 (`instances`, `predictions`),
//! the Open Inference Protocol V2 (`inputs`, `outputs`: tensors split into columns), Seldon's
//! `data` (`names` with `ndarray` or `tensor`) and `jsonData`. Feature names:
//!
//! | payload | request | response |
//! | --- | --- | --- |
//! | an object (V1 instance, `jsonData`) | its keys | `prediction.<key>` |
//! | a scalar per row (V1) | `input` | `prediction` |
//! | an array per row (V1, Seldon without `names`) | `input_0`, `input_1`, … | `prediction_0`, … |
//! | Seldon with `names` | the names | `prediction.<name>` |
//! | V2 tensor `x`, one value per row | `x` | `prediction.x` |
//! | V2 tensor `x`, k values per row | `x_0` … `x_<k-1>` | `prediction.x_0` … |
//!
//! Arrays inside a row are flattened in row-major order (`[[1, 2], [3, 4]]` is four columns);
//! arrays under an object key `k` give `k_0`, `k_1`, …. A row keeps at most `max_columns`
//! values: the rest are counted as ignored, never held. The payload is walked in place
//! (`raw`): memory is one row, whatever the size of the batch.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::raw::{self, Elements, Leaves, Shape};
use super::{Direction, PayloadError};
use crate::ingest::records::{MAX_LISTED_ERRORS, RecordError};

/// The record field holding a record's id.
pub const RECORD_ID: &str = "_id";

/// How rows are named and bounded.
#[derive(Debug, Clone)]
pub struct Options {
    pub direction: Direction,
    /// The event's record id: `_id` of a single row, `<id>:<row>` of each row of a batch.
    pub id: Option<String>,
    pub max_columns: usize,
    /// Names of the positional values of this direction's rows (the dataset's rules'
    /// `inference:` inputs or outputs); past its end, `input_<j>` / `prediction_<j>`.
    pub positional_names: Vec<String>,
}

/// What walking a payload found besides its rows.
#[derive(Debug, Default)]
pub struct Rows {
    pub accepted: usize,
    /// The first `MAX_LISTED_ERRORS` refused rows.
    pub rejected: Vec<RecordError>,
    pub rejected_count: usize,
    /// Values beyond `max_columns` in a row.
    pub ignored_values: u64,
    pub ignored_features: Vec<String>,
}

impl Rows {
    fn reject(&mut self, index: usize, reason: String) {
        self.rejected_count += 1;
        if self.rejected.len() < MAX_LISTED_ERRORS {
            self.rejected.push(RecordError { index, reason });
        }
    }
}

/// Walks the rows of a payload: each good row goes to `on_row`, a bad one is refused alone
/// (its index from 0, the field, why); a payload driftd cannot read at all is an error.
pub fn for_each_row(
    data: &[u8],
    options: &Options,
    mut on_row: impl FnMut(Map<String, Value>),
) -> Result<Rows, PayloadError> {
    let doc: BTreeMap<String, &RawValue> = serde_json::from_slice(data).map_err(|e| {
        if e.classify() == serde_json::error::Category::Data {
            PayloadError::Shape(format!("the payload must be a JSON object: {e}"))
        } else {
            PayloadError::InvalidJson {
                line: e.line(),
                column: e.column(),
                reason: crate::ingest::records::json_reason(&e),
            }
        }
    })?;
    let mut walk = Walk {
        options,
        rows: Rows::default(),
        on_row: &mut on_row,
        total: 0,
    };
    let found = |key: &str| doc.get(key).copied();
    if let Some(rows) = found("instances").or_else(|| found("predictions")) {
        walk.v1(rows)?;
    } else if let Some(tensors) = found("inputs").or_else(|| found("outputs")) {
        let key = if doc.contains_key("inputs") {
            "inputs"
        } else {
            "outputs"
        };
        walk.v2(key, tensors)?;
    } else if let Some(data) = found("data") {
        walk.seldon(data)?;
    } else if let Some(json) = found("jsonData") {
        walk.v1(json)?;
    } else if doc.contains_key("strData") || doc.contains_key("binData") {
        return Err(PayloadError::Shape(
            "Seldon strData and binData payloads carry no features driftd can profile; \
             send data (names with ndarray or tensor) or jsonData"
                .into(),
        ));
    } else {
        let keys: Vec<&str> = doc.keys().take(5).map(String::as_str).collect();
        return Err(PayloadError::Shape(format!(
            "no inference payload found (keys: {keys:?}); driftd reads \"instances\"/\"predictions\" \
             (KServe V1), \"inputs\"/\"outputs\" (Open Inference Protocol V2), \"data\" or \"jsonData\" (Seldon)"
        )));
    }
    Ok(walk.rows)
}

struct Walk<'o, F> {
    options: &'o Options,
    rows: Rows,
    on_row: &'o mut F,
    /// Rows in the payload, for the ids.
    total: usize,
}

impl<F: FnMut(Map<String, Value>)> Walk<'_, F> {
    fn named(&self, name: &str) -> String {
        match self.options.direction {
            Direction::Request => name.to_owned(),
            Direction::Response => format!("prediction.{name}"),
        }
    }

    fn positional(&self, j: usize) -> String {
        if let Some(name) = self.options.positional_names.get(j) {
            return self.named(name);
        }
        match self.options.direction {
            Direction::Request => format!("input_{j}"),
            Direction::Response => format!("prediction_{j}"),
        }
    }

    fn single(&self) -> String {
        match self.options.direction {
            Direction::Request => "input".into(),
            Direction::Response => "prediction".into(),
        }
    }

    fn row(&self) -> Row {
        Row {
            fields: Map::new(),
            max: self.options.max_columns,
            ignored: 0,
            ignored_names: Vec::new(),
        }
    }

    /// Hands a finished row on, with its id, and counts what it ignored.
    fn emit(&mut self, index: usize, mut row: Row) {
        if let Some(id) = &self.options.id
            && !row.fields.contains_key(RECORD_ID)
        {
            let id = if self.total == 1 {
                id.clone()
            } else {
                format!("{id}:{index}")
            };
            row.fields.insert(RECORD_ID.into(), Value::String(id));
        }
        self.rows.ignored_values += row.ignored;
        for name in row.ignored_names {
            if self.rows.ignored_features.len() < 10 && !self.rows.ignored_features.contains(&name)
            {
                self.rows.ignored_features.push(name);
            }
        }
        self.rows.accepted += 1;
        (self.on_row)(row.fields);
    }

    /// KServe V1 rows (and Seldon `jsonData`): an array of rows, or one object.
    fn v1(&mut self, rows: &RawValue) -> Result<(), PayloadError> {
        let Some(elements) = Elements::of(rows) else {
            if raw::shape(rows) == Shape::Object {
                self.total = 1;
                return self.object_row(0, rows);
            }
            return Err(PayloadError::Shape(format!(
                "the rows must be an array, found {}",
                raw::kind(rows)
            )));
        };
        self.total = elements.count();
        for (i, element) in Elements::of(rows).into_iter().flatten().enumerate() {
            match raw::shape(element) {
                Shape::Object => self.object_row(i, element)?,
                Shape::Array => {
                    let mut row = self.row();
                    for (j, leaf) in Leaves::of(element).enumerate() {
                        row.push(|| self.positional(j), leaf);
                    }
                    self.emit(i, row);
                }
                Shape::Scalar => {
                    let mut row = self.row();
                    row.push(|| self.single(), element);
                    self.emit(i, row);
                }
            }
        }
        Ok(())
    }

    fn object_row(&mut self, index: usize, object: &RawValue) -> Result<(), PayloadError> {
        let members = raw::members(object)
            .ok_or_else(|| PayloadError::Shape(format!("row {index} is not a JSON object")))?;
        let mut row = self.row();
        for (key, value) in members {
            if key == RECORD_ID {
                row.push(|| key.clone(), value);
            } else if raw::shape(value) == Shape::Array {
                for (j, leaf) in Leaves::of(value).enumerate() {
                    row.push(|| self.named(&format!("{key}_{j}")), leaf);
                }
            } else {
                row.push(|| self.named(&key), value);
            }
        }
        self.emit(index, row);
        Ok(())
    }

    /// Open Inference Protocol V2: tensors sharing their first dimension, the batch.
    fn v2(&mut self, key: &str, tensors: &RawValue) -> Result<(), PayloadError> {
        let tensors = Tensor::all(key, tensors)?;
        let batch = tensors.first().map_or(0, |t| t.rows);
        if let Some(other) = tensors.iter().find(|t| t.rows != batch) {
            return Err(PayloadError::Shape(format!(
                "{key}: tensor {:?} has {} rows but {:?} has {batch}: the first dimension of every tensor is the batch",
                other.name, other.rows, tensors[0].name
            )));
        }
        self.total = batch;
        let mut cursors: Vec<Leaves> = tensors.iter().map(|t| Leaves::of(t.data)).collect();
        for r in 0..batch {
            let mut row = self.row();
            let mut problem = None;
            for (tensor, cursor) in tensors.iter().zip(cursors.iter_mut()) {
                for j in 0..tensor.columns {
                    let Some(leaf) = cursor.next() else { break };
                    if let Err(why) = tensor.check(leaf) {
                        problem.get_or_insert_with(|| format!("{key} {:?}: {why}", tensor.name));
                        continue;
                    }
                    if tensor.columns == 1 {
                        row.push(|| self.named(&tensor.name), leaf);
                    } else {
                        row.push(|| self.named(&format!("{}_{j}", tensor.name)), leaf);
                    }
                }
            }
            match problem {
                Some(why) => self.rows.reject(r, why),
                None => self.emit(r, row),
            }
        }
        Ok(())
    }

    /// Seldon's `data`: `names` with `ndarray` (rows) or `tensor` (`shape` and flat `values`).
    fn seldon(&mut self, data: &RawValue) -> Result<(), PayloadError> {
        let data: SeldonData = serde_json::from_str(data.get())
            .map_err(|e| PayloadError::Shape(format!("data: {}", json_reason(&e))))?;
        let names = data.names.unwrap_or_default();
        let name = |walk: &Self, j: usize| match names.get(j) {
            Some(n) => walk.named(n),
            None => walk.positional(j),
        };
        if let Some(ndarray) = data.ndarray {
            let Some(elements) = Elements::of(ndarray) else {
                return Err(PayloadError::Shape(format!(
                    "data.ndarray must be an array, found {}",
                    raw::kind(ndarray)
                )));
            };
            self.total = elements.count();
            for (i, element) in Elements::of(ndarray).into_iter().flatten().enumerate() {
                if raw::shape(element) == Shape::Object {
                    self.rows.reject(
                        i,
                        "data.ndarray: expected an array or a value, found an object".into(),
                    );
                    continue;
                }
                let mut row = self.row();
                for (j, leaf) in Leaves::of(element).enumerate() {
                    row.push(|| name(self, j), leaf);
                }
                self.emit(i, row);
            }
            Ok(())
        } else if let Some(tensor) = data.tensor {
            let (rows, columns) = dimensions("data.tensor", &tensor.shape)?;
            let count = Leaves::of(tensor.values).count();
            if rows * columns != count {
                return Err(PayloadError::Shape(format!(
                    "data.tensor: shape {:?} needs {} values, values has {count}",
                    tensor.shape,
                    rows * columns
                )));
            }
            self.total = rows;
            let mut leaves = Leaves::of(tensor.values);
            for r in 0..rows {
                let mut row = self.row();
                for j in 0..columns {
                    if let Some(leaf) = leaves.next() {
                        row.push(|| name(self, j), leaf);
                    }
                }
                self.emit(r, row);
            }
            Ok(())
        } else if data.tftensor.is_some() {
            Err(PayloadError::Shape(
                "data.tftensor is not supported; send data.ndarray or data.tensor".into(),
            ))
        } else {
            Err(PayloadError::Shape(
                "data needs \"ndarray\" or \"tensor\" (with optional \"names\")".into(),
            ))
        }
    }
}

/// One row being built, bounded to `max` values.
struct Row {
    fields: Map<String, Value>,
    max: usize,
    ignored: u64,
    ignored_names: Vec<String>,
}

impl Row {
    /// Adds a column (named only when kept): a scalar as it is, an object as a value of kind
    /// "other" (never parsed into memory here).
    fn push(&mut self, name: impl FnOnce() -> String, raw: &RawValue) {
        if self.fields.len() >= self.max {
            self.ignored += 1;
            if self.ignored_names.len() < 10 {
                self.ignored_names.push(name());
            }
            return;
        }
        let value = raw::scalar(raw).unwrap_or_else(|| Value::Object(Map::new()));
        self.fields.insert(name(), value);
    }
}

/// A V2 tensor's header and its data, unread.
struct Tensor<'a> {
    name: String,
    datatype: Datatype,
    rows: usize,
    columns: usize,
    data: &'a RawValue,
}

#[derive(Deserialize)]
struct TensorHeader<'a> {
    name: String,
    #[serde(default)]
    shape: Vec<u64>,
    datatype: String,
    #[serde(borrow)]
    data: &'a RawValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Datatype {
    Bool,
    Number,
    Bytes,
}

impl<'a> Tensor<'a> {
    /// Every tensor of `inputs` or `outputs`, its shape checked against its data.
    fn all(key: &str, tensors: &'a RawValue) -> Result<Vec<Tensor<'a>>, PayloadError> {
        let elements = Elements::of(tensors).ok_or_else(|| {
            PayloadError::Shape(format!(
                "{key} must be an array of tensors ({{\"name\", \"shape\", \"datatype\", \"data\"}}), found {}",
                raw::kind(tensors)
            ))
        })?;
        elements
            .enumerate()
            .map(|(i, element)| {
                let header: TensorHeader = serde_json::from_str(element.get()).map_err(|e| {
                    PayloadError::Shape(format!("{key}[{i}]: {}", json_reason(&e)))
                })?;
                let what = format!("{key}[{i}] {:?}", header.name);
                let datatype = Datatype::parse(&header.datatype)
                    .ok_or_else(|| PayloadError::Shape(format!(
                        "{what}: unknown datatype {:?}; the Open Inference Protocol's are BOOL, UINT8 … UINT64, INT8 … INT64, FP16, FP32, FP64, BF16 and BYTES",
                        header.datatype
                    )))?;
                let (rows, columns) = dimensions(&what, &header.shape)?;
                let count = Leaves::of(header.data).count();
                if rows * columns != count {
                    return Err(PayloadError::Shape(format!(
                        "{what}: shape {:?} needs {} values, data has {count}",
                        header.shape,
                        rows * columns
                    )));
                }
                Ok(Tensor {
                    name: header.name,
                    datatype,
                    rows,
                    columns,
                    data: header.data,
                })
            })
            .collect()
    }

    /// Whether a value fits the tensor's datatype; the reason when not.
    fn check(&self, leaf: &RawValue) -> Result<(), String> {
        let value = raw::scalar(leaf);
        let fits = matches!(
            (&value, self.datatype),
            (Some(Value::Null), _)
                | (Some(Value::Bool(_)), Datatype::Bool)
                | (Some(Value::Number(_)), Datatype::Number)
                | (Some(Value::String(_)), Datatype::Bytes)
        );
        if fits {
            return Ok(());
        }
        let wanted = match self.datatype {
            Datatype::Bool => "booleans",
            Datatype::Number => "numbers",
            Datatype::Bytes => "strings",
        };
        Err(format!(
            "expected {wanted} for its datatype, found {}",
            raw::kind(leaf)
        ))
    }
}

impl Datatype {
    fn parse(text: &str) -> Option<Datatype> {
        match text {
            "BOOL" => Some(Datatype::Bool),
            "BYTES" => Some(Datatype::Bytes),
            "UINT8" | "UINT16" | "UINT32" | "UINT64" | "INT8" | "INT16" | "INT32" | "INT64"
            | "FP16" | "FP32" | "FP64" | "BF16" => Some(Datatype::Number),
            _ => None,
        }
    }
}

/// Rows (the first dimension; 1 for a scalar) and values per row (the product of the others).
fn dimensions(what: &str, shape: &[u64]) -> Result<(usize, usize), PayloadError> {
    let too_large = || PayloadError::Shape(format!("{what}: shape {shape:?} is too large"));
    let size = |d: &u64| usize::try_from(*d).map_err(|_| too_large());
    let rows = shape.first().map_or(Ok(1), size)?;
    let columns = shape[shape.len().min(1)..]
        .iter()
        .try_fold(1usize, |acc, d| {
            acc.checked_mul(size(d)?).ok_or_else(too_large)
        })?;
    rows.checked_mul(columns).ok_or_else(too_large)?;
    Ok((rows, columns))
}

#[derive(Deserialize)]
struct SeldonData<'a> {
    names: Option<Vec<String>>,
    #[serde(borrow)]
    ndarray: Option<&'a RawValue>,
    #[serde(borrow)]
    tensor: Option<SeldonTensor<'a>>,
    #[serde(borrow)]
    tftensor: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct SeldonTensor<'a> {
    shape: Vec<u64>,
    #[serde(borrow)]
    values: &'a RawValue,
}

fn json_reason(e: &serde_json::Error) -> String {
    crate::ingest::records::json_reason(e)
}
