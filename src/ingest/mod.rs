//! Ingest: reads records from files (CSV, JSON Lines, Parquet) into a `Profiler`.
//!
//! Readers stream: memory is bounded by the profile and one batch of input, never by the
//! file. When the profiler carries a sample (`Profiler::with_sample`), rows are also offered
//! to it by their id. A record that cannot be read is refused and described (file, line or row, why);
//! reading fails as a whole only when the file cannot be opened or nothing in it is readable.

mod csv;
pub mod inference;
mod jsonl;
mod parquet;
pub mod records;

use std::fs::File;
use std::path::Path;

use indicatif::ProgressBar;

use crate::profile::Profiler;

/// File formats driftd reads, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
    Parquet,
}

impl Format {
    pub const EXTENSIONS: &'static str = ".csv, .jsonl, .ndjson, .json (JSON Lines) or .parquet";

    pub fn from_path(path: &Path) -> Result<Format, IngestError> {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext.as_deref() {
            Some("csv") => Ok(Format::Csv),
            Some("jsonl" | "ndjson" | "json") => Ok(Format::JsonLines),
            Some("parquet" | "pq") => Ok(Format::Parquet),
            _ => Err(IngestError::UnknownFormat {
                path: path.display().to_string(),
                extension: ext.map_or_else(|| "no extension".to_owned(), |e| format!(".{e}")),
            }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(
        "{path}: unknown file format ({extension}); driftd reads {}",
        Format::EXTENSIONS
    )]
    UnknownFormat { path: String, extension: String },
    #[error("{path}: is a directory; give a {} file", Format::EXTENSIONS)]
    Directory { path: String },
    // The I/O error is part of the message, not a `source`: chained, it would print twice.
    #[error("{path}: cannot open: {error}")]
    Open { path: String, error: std::io::Error },
    #[error("{path}: read failed at {location}: {error}")]
    Read {
        path: String,
        location: String,
        error: std::io::Error,
    },
    #[error("{path}: {why}")]
    Csv { path: String, why: String },
    #[error("{path}: not a readable Parquet file: {why}")]
    Parquet { path: String, why: String },
    #[error("{path}: id column: {why}")]
    IdColumn { path: String, why: String },
    #[error("{path}: no record could be read ({rejected} rejected); first problem: {first}{hint}")]
    NothingReadable {
        path: String,
        rejected: u64,
        first: String,
        hint: &'static str,
    },
}

/// Profiles every record of the file at `path` into `profiler`, advancing `progress`
/// (its length is set here, in bytes or rows).
pub fn read_file(
    path: &Path,
    profiler: &mut Profiler,
    progress: &ProgressBar,
) -> Result<Format, IngestError> {
    let shown = path.display().to_string();
    // Before the extension: a directory's name has none, or a misleading one.
    if path.is_dir() {
        return Err(IngestError::Directory { path: shown });
    }
    let format = Format::from_path(path)?;
    let file = File::open(path).map_err(|error| IngestError::Open {
        path: shown.clone(),
        error,
    })?;
    if let Ok(meta) = file.metadata() {
        if meta.is_dir() {
            return Err(IngestError::Directory { path: shown });
        }
        if format != Format::Parquet {
            progress.set_length(meta.len());
        }
    }
    match format {
        Format::Csv => csv::read(&shown, file, profiler, progress)?,
        Format::JsonLines => jsonl::read(&shown, file, profiler, progress)?,
        Format::Parquet => parquet::read(path, &shown, file, profiler, progress)?,
    }
    readable(shown, format, profiler)?;
    Ok(format)
}

/// Profiles CSV or JSON Lines held in memory exactly as `read_file` profiles a file of that
/// format named `shown` (the fuzz targets' way in: `crate::fuzzing`).
pub(crate) fn read_bytes(
    format: Format,
    shown: &str,
    bytes: &[u8],
    profiler: &mut Profiler,
) -> Result<(), IngestError> {
    let progress = ProgressBar::hidden();
    match format {
        Format::Csv => csv::read(shown, bytes, profiler, &progress)?,
        Format::JsonLines => jsonl::read(shown, bytes, profiler, &progress)?,
        Format::Parquet => {
            return Err(IngestError::Parquet {
                path: shown.to_owned(),
                why: "read from a file, not from memory".to_owned(),
            });
        }
    }
    readable(shown.to_owned(), format, profiler)
}

/// After reading: refuses a file of which nothing was readable, or, with a sample, in which
/// no record had a usable id.
fn readable(shown: String, format: Format, profiler: &Profiler) -> Result<(), IngestError> {
    if let Some(sample) = profiler.sample()
        && sample.offered() == 0
        && profiler.rows() > 0
    {
        return Err(IngestError::IdColumn {
            path: shown,
            why: format!(
                "no record has a usable id in {:?} ({} without one; ids are strings or numbers)",
                sample.id_column(),
                sample.without_id()
            ),
        });
    }
    let problems = profiler.problems();
    if profiler.rows() == 0 && problems.rejected_rows > 0 {
        return Err(IngestError::NothingReadable {
            path: shown,
            rejected: problems.rejected_rows,
            first: problems.samples.first().cloned().unwrap_or_default(),
            hint: if format == Format::JsonLines {
                " (driftd reads JSON Lines: one JSON object per line)"
            } else {
                ""
            },
        });
    }
    Ok(())
}

/// How often (in records) readers advance the progress bar.
const PROGRESS_EVERY: u64 = 16_384;

/// "an array", "a string": how a JSON value is named in a refusal.
pub(crate) fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
