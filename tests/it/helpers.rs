//! Shared test helpers: exact reference computations, data writers, and running the binary.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use driftd::profile::{FeatureProfile, Value};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

/// A value owned by the test, for generating data.
#[derive(Debug, Clone, PartialEq)]
pub enum Owned {
    Null,
    Num(f64),
    Bool(bool),
    Str(String),
}

impl Owned {
    pub fn as_value(&self) -> Value<'_> {
        match self {
            Owned::Null => Value::Null,
            Owned::Num(x) => Value::Number(*x),
            Owned::Bool(b) => Value::Bool(*b),
            Owned::Str(s) => Value::Str(s),
        }
    }
}

pub fn profile_of(values: &[Owned]) -> FeatureProfile {
    let mut f = FeatureProfile::default();
    values.iter().for_each(|v| f.observe(v.as_value()));
    f
}

/// Exact statistics of the finite numbers in `values`.
pub struct ExactNumeric {
    pub sorted: Vec<f64>,
    pub mean: f64,
    pub stddev: Option<f64>,
}

pub fn exact_numeric(values: &[Owned]) -> ExactNumeric {
    let mut sorted: Vec<f64> = values
        .iter()
        .filter_map(|v| match v {
            Owned::Num(x) if x.is_finite() => Some(*x),
            _ => None,
        })
        .collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    // Two-pass in a wider accumulator: the reference must be more exact than what it checks.
    let mean = sorted.iter().sum::<f64>() / n;
    let stddev = (sorted.len() > 1).then(|| {
        let ss: f64 = sorted.iter().map(|x| (x - mean) * (x - mean)).sum();
        (ss / (n - 1.0)).sqrt()
    });
    ExactNumeric {
        sorted,
        mean,
        stddev,
    }
}

impl ExactNumeric {
    /// The normalised ranks just below and at `v`: (#x < v, #x <= v) / n.
    pub fn rank_interval(&self, v: f64) -> (f64, f64) {
        let n = self.sorted.len() as f64;
        let below = self.sorted.partition_point(|x| *x < v) as f64;
        let at_or_below = self.sorted.partition_point(|x| *x <= v) as f64;
        (below / n, at_or_below / n)
    }
}

/// Asserts that `v`, reported as the `q` quantile, lies within `eps` normalised rank of it.
pub fn assert_quantile(exact: &ExactNumeric, q: f64, v: f64, eps: f64, what: &str) {
    let (lo, hi) = exact.rank_interval(v);
    assert!(
        lo - eps <= q && q <= hi + eps,
        "{what}: quantile {q} reported as {v}, whose exact rank is {lo}..{hi} (allowed error {eps})"
    );
}

pub fn rel_close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1e-300)
}

pub fn driftd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args(args)
        .output()
        .expect("driftd runs")
}

pub fn stdout_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "driftd failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A column for `write_parquet`.
pub enum Column {
    F64(Vec<Option<f64>>),
    I64(Vec<Option<i64>>),
    Bool(Vec<Option<bool>>),
    Str(Vec<Option<String>>),
}

pub fn write_parquet(path: &Path, columns: Vec<(&str, Column)>, row_group_rows: usize) {
    let arrays: Vec<(&str, ArrayRef)> = columns
        .into_iter()
        .map(|(name, c)| {
            let array: ArrayRef = match c {
                Column::F64(v) => Arc::new(Float64Array::from(v)),
                Column::I64(v) => Arc::new(Int64Array::from(v)),
                Column::Bool(v) => Arc::new(BooleanArray::from(v)),
                Column::Str(v) => Arc::new(StringArray::from(v)),
            };
            (name, array)
        })
        .collect();
    let batch = RecordBatch::try_from_iter(arrays).expect("columns of one length");
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group_rows))
        .build();
    let file = std::fs::File::create(path).expect("create parquet");
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).expect("writer");
    writer.write(&batch).expect("write batch");
    writer.close().expect("close parquet");
}
