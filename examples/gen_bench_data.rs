//! Generates a synthetic table for benchmarking `driftd profile`.
//!
//! ```text
//! cargo run --release --example gen_bench_data -- OUT.parquet [OUT.csv ...] [--rows 1000000] [--seed 1]
//! ```
//!
//! Each OUT is written in the format its extension names (`.parquet`/`.pq` or `.csv`); given
//! several, all are written in one pass and hold the same rows. The table has 15 columns:
//!
//! | column            | type    | values                                           |
//! |-------------------|---------|--------------------------------------------------|
//! | `normal_f64`      | Float64 | normal(0, 1)                                     |
//! | `normal_wide_f64` | Float64 | normal(1000, 250)                                |
//! | `lognormal_f64`   | Float64 | lognormal(3, 0.8) (a latency in ms, say)         |
//! | `price_f64`       | Float64 | lognormal(2.5, 1.2) rounded to cents             |
//! | `uniform_f64`     | Float64 | uniform [0, 1)                                   |
//! | `uniform_wide_f64`| Float64 | uniform [-1000, 1000)                            |
//! | `poisson_i64`     | Int64   | Poisson(3) counts                                |
//! | `zipf_count_i64`  | Int64   | Zipf(10000, 1.5) - 1: mostly 0, a heavy tail     |
//! | `age_i64`         | Int64   | uniform 18..=90                                  |
//! | `days_i64`        | Int64   | uniform 0..=3650                                 |
//! | `str_card_5`      | Utf8    | 5 values, uniform                                |
//! | `str_card_100`    | Utf8    | 100 values, Zipf exponent 1.1                    |
//! | `str_card_1k`     | Utf8    | 1,000 values, Zipf exponent 1.0                  |
//! | `str_card_10k`    | Utf8    | 10,000 values, Zipf exponent 0.8                 |
//! | `str_card_100k`   | Utf8    | 100,000 values, uniform                          |
//!
//! Every column is null in about 1 % of rows (an empty field in CSV). Output is a function of
//! `--seed` and `--rows` only: each column draws from its own random stream, so the batch size
//! does not change a value. Rows are generated and written 64Ki at a time, so memory stays
//! small (the Parquet writer keeps one encoded row group in memory). Parquet is written with
//! Snappy and row groups of at most 1Mi rows, pyarrow's default.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, Normal, Poisson, Zipf};

const BATCH_ROWS: usize = 64 * 1024;
const MAX_ROW_GROUP_ROWS: usize = 1024 * 1024;
const NULL_FRACTION: f64 = 0.01;

/// How one column's values are drawn.
enum Source {
    Normal(Normal<f64>),
    LogNormal(LogNormal<f64>),
    /// Lognormal rounded to two decimals.
    Price(LogNormal<f64>),
    Uniform(f64, f64),
    Poisson(Poisson<f64>),
    /// Zipf over 1..=n, shifted to start at 0.
    ZipfCount(Zipf<f64>),
    UniformInt(i64, i64),
    StrUniform(Vec<String>),
    StrZipf(Zipf<f64>, Vec<String>),
}

struct Column {
    name: &'static str,
    source: Source,
    rng: StdRng,
}

/// One batch of one column.
enum Values {
    F64(Vec<Option<f64>>),
    I64(Vec<Option<i64>>),
    /// Indices into the column's vocabulary.
    Str(Vec<Option<u32>>),
}

impl Column {
    fn data_type(&self) -> DataType {
        match self.source {
            Source::Normal(_) | Source::LogNormal(_) | Source::Price(_) | Source::Uniform(..) => {
                DataType::Float64
            }
            Source::Poisson(_) | Source::ZipfCount(_) | Source::UniformInt(..) => DataType::Int64,
            Source::StrUniform(_) | Source::StrZipf(..) => DataType::Utf8,
        }
    }

    fn vocab(&self) -> &[String] {
        match &self.source {
            Source::StrUniform(v) | Source::StrZipf(_, v) => v,
            _ => &[],
        }
    }

    fn generate(&mut self, n: usize) -> Values {
        let rng = &mut self.rng;
        // The null draw comes first for every row, so a row's value never depends on whether
        // earlier rows were null in some other way.
        macro_rules! fill {
            ($variant:ident, $sample:expr) => {
                Values::$variant(
                    (0..n)
                        .map(|_| {
                            let null = rng.random_bool(NULL_FRACTION);
                            let v = $sample;
                            (!null).then_some(v)
                        })
                        .collect(),
                )
            };
        }
        match &self.source {
            Source::Normal(d) => fill!(F64, d.sample(rng)),
            Source::LogNormal(d) => fill!(F64, d.sample(rng)),
            Source::Price(d) => fill!(F64, (d.sample(rng) * 100.0).round() / 100.0),
            Source::Uniform(lo, hi) => fill!(F64, rng.random_range(*lo..*hi)),
            Source::Poisson(d) => fill!(I64, d.sample(rng) as i64),
            Source::ZipfCount(d) => fill!(I64, d.sample(rng) as i64 - 1),
            Source::UniformInt(lo, hi) => fill!(I64, rng.random_range(*lo..=*hi)),
            Source::StrUniform(v) => fill!(Str, rng.random_range(0..v.len()) as u32),
            Source::StrZipf(d, _) => fill!(Str, d.sample(rng) as u32 - 1),
        }
    }
}

fn vocabulary(prefix: &str, n: usize) -> Vec<String> {
    let width = (n - 1).to_string().len();
    (0..n).map(|i| format!("{prefix}_{i:0width$}")).collect()
}

fn columns(seed: u64) -> Vec<Column> {
    let zipf = |n: usize, s: f64| Zipf::new(n as f64, s).expect("valid Zipf parameters");
    let sources: Vec<(&'static str, Source)> = vec![
        (
            "normal_f64",
            Source::Normal(Normal::new(0.0, 1.0).expect("valid")),
        ),
        (
            "normal_wide_f64",
            Source::Normal(Normal::new(1000.0, 250.0).expect("valid")),
        ),
        (
            "lognormal_f64",
            Source::LogNormal(LogNormal::new(3.0, 0.8).expect("valid")),
        ),
        (
            "price_f64",
            Source::Price(LogNormal::new(2.5, 1.2).expect("valid")),
        ),
        ("uniform_f64", Source::Uniform(0.0, 1.0)),
        ("uniform_wide_f64", Source::Uniform(-1000.0, 1000.0)),
        (
            "poisson_i64",
            Source::Poisson(Poisson::new(3.0).expect("valid")),
        ),
        ("zipf_count_i64", Source::ZipfCount(zipf(10_000, 1.5))),
        ("age_i64", Source::UniformInt(18, 90)),
        ("days_i64", Source::UniformInt(0, 3650)),
        (
            "str_card_5",
            Source::StrUniform(
                ["mobile", "desktop", "tablet", "tv", "console"]
                    .map(String::from)
                    .to_vec(),
            ),
        ),
        (
            "str_card_100",
            Source::StrZipf(zipf(100, 1.1), vocabulary("country", 100)),
        ),
        (
            "str_card_1k",
            Source::StrZipf(zipf(1_000, 1.0), vocabulary("city", 1_000)),
        ),
        (
            "str_card_10k",
            Source::StrZipf(zipf(10_000, 0.8), vocabulary("product", 10_000)),
        ),
        (
            "str_card_100k",
            Source::StrUniform(vocabulary("user", 100_000)),
        ),
    ];
    sources
        .into_iter()
        .enumerate()
        .map(|(i, (name, source))| Column {
            name,
            source,
            // Independent streams per column: splitmix-style spreading of (seed, column).
            rng: StdRng::seed_from_u64(seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        })
        .collect()
}

enum Sink {
    Parquet(ArrowWriter<File>),
    Csv(csv::Writer<BufWriter<File>>),
}

impl Sink {
    fn create(path: &Path, schema: &SchemaRef) -> Result<Sink, String> {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        let file = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        match ext.as_deref() {
            Some("parquet" | "pq") => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .set_max_row_group_row_count(Some(MAX_ROW_GROUP_ROWS))
                    .build();
                let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
                    .map_err(|e| e.to_string())?;
                Ok(Sink::Parquet(writer))
            }
            Some("csv") => {
                let mut w = csv::Writer::from_writer(BufWriter::with_capacity(1 << 20, file));
                w.write_record(schema.fields().iter().map(|f| f.name().as_str()))
                    .map_err(|e| e.to_string())?;
                Ok(Sink::Csv(w))
            }
            _ => Err(format!(
                "{}: unknown extension; use .parquet or .csv",
                path.display()
            )),
        }
    }

    fn write(
        &mut self,
        schema: &SchemaRef,
        columns: &[Column],
        batch: &[Values],
    ) -> Result<(), String> {
        match self {
            Sink::Parquet(w) => {
                let arrays = batch
                    .iter()
                    .zip(columns)
                    .map(|(values, column)| to_array(values, column.vocab()))
                    .collect();
                let batch =
                    RecordBatch::try_new(schema.clone(), arrays).map_err(|e| e.to_string())?;
                w.write(&batch).map_err(|e| e.to_string())
            }
            Sink::Csv(w) => write_csv(w, columns, batch).map_err(|e| e.to_string()),
        }
    }

    fn finish(self) -> Result<(), String> {
        match self {
            Sink::Parquet(w) => w.close().map(drop).map_err(|e| e.to_string()),
            Sink::Csv(mut w) => w.flush().map_err(|e| e.to_string()),
        }
    }
}

fn to_array(values: &Values, vocab: &[String]) -> ArrayRef {
    match values {
        Values::F64(v) => {
            let mut b = Float64Builder::with_capacity(v.len());
            v.iter().for_each(|x| b.append_option(*x));
            Arc::new(b.finish())
        }
        Values::I64(v) => {
            let mut b = Int64Builder::with_capacity(v.len());
            v.iter().for_each(|x| b.append_option(*x));
            Arc::new(b.finish())
        }
        Values::Str(v) => {
            let mut b = StringBuilder::with_capacity(v.len(), v.len() * 12);
            v.iter()
                .for_each(|i| b.append_option(i.map(|i| vocab[i as usize].as_str())));
            Arc::new(b.finish())
        }
    }
}

fn write_csv<W: Write>(
    w: &mut csv::Writer<W>,
    columns: &[Column],
    batch: &[Values],
) -> csv::Result<()> {
    let rows = batch.first().map_or(0, |v| match v {
        Values::F64(v) => v.len(),
        Values::I64(v) => v.len(),
        Values::Str(v) => v.len(),
    });
    let mut text = String::new();
    for row in 0..rows {
        for (values, column) in batch.iter().zip(columns) {
            text.clear();
            match values {
                Values::F64(v) => {
                    if let Some(x) = v[row] {
                        // Display prints the shortest text that reads back as the same f64.
                        use std::fmt::Write as _;
                        let _ = write!(text, "{x}");
                    }
                    w.write_field(&text)?;
                }
                Values::I64(v) => {
                    if let Some(x) = v[row] {
                        use std::fmt::Write as _;
                        let _ = write!(text, "{x}");
                    }
                    w.write_field(&text)?;
                }
                Values::Str(v) => match v[row] {
                    Some(i) => w.write_field(&column.vocab()[i as usize])?,
                    None => w.write_field("")?,
                },
            }
        }
        w.write_record(None::<&[u8]>)?;
    }
    Ok(())
}

struct Args {
    outputs: Vec<PathBuf>,
    rows: u64,
    seed: u64,
}

const USAGE: &str =
    "usage: gen_bench_data OUT.parquet|OUT.csv [MORE_OUT ...] [--rows 1000000] [--seed 1]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        outputs: Vec::new(),
        rows: 1_000_000,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut number = |flag: &str| -> Result<u64, String> {
            let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            v.replace('_', "")
                .parse()
                .map_err(|e| format!("{flag} {v:?}: {e}"))
        };
        match a.as_str() {
            "--rows" => args.rows = number("--rows")?,
            "--seed" => args.seed = number("--seed")?,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            s if s.starts_with("--") => return Err(format!("unknown option {s}\n{USAGE}")),
            _ => args.outputs.push(PathBuf::from(a)),
        }
    }
    if args.outputs.is_empty() {
        return Err(USAGE.to_owned());
    }
    Ok(args)
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let started = Instant::now();
    let mut columns = columns(args.seed);
    let schema: SchemaRef = Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(c.name, c.data_type(), true))
            .collect::<Vec<_>>(),
    ));
    let mut sinks = args
        .outputs
        .iter()
        .map(|p| Sink::create(p, &schema))
        .collect::<Result<Vec<_>, _>>()?;

    let mut done: u64 = 0;
    while done < args.rows {
        let n = (args.rows - done).min(BATCH_ROWS as u64) as usize;
        let batch: Vec<Values> = columns.iter_mut().map(|c| c.generate(n)).collect();
        for sink in &mut sinks {
            sink.write(&schema, &columns, &batch)?;
        }
        done += n as u64;
    }
    for sink in sinks {
        sink.finish()?;
    }
    for path in &args.outputs {
        let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        eprintln!(
            "{}: {} rows x {} columns, {:.1} MiB",
            path.display(),
            args.rows,
            columns.len(),
            bytes as f64 / (1 << 20) as f64
        );
    }
    eprintln!(
        "generated in {:.1} s (seed {})",
        started.elapsed().as_secs_f64(),
        args.seed
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_bench_data: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
