//! Parquet, read column by column through Arrow. Columns are split into shares of similar size,
//! one per core, each decoded and profiled by its own reader. Each row group is read on its
//! own, so a corrupt row group is refused (its rows counted) while the others are profiled.

use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use indicatif::ProgressBar;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use parquet::file::metadata::ParquetMetaData;

use super::IngestError;
use crate::profile::{FeatureProfile, Kind, Profiler};

const BATCH_ROWS: usize = 65_536;

pub(super) fn read(
    source: &Path,
    path: &str,
    file: File,
    profiler: &mut Profiler,
    progress: &ProgressBar,
) -> Result<(), IngestError> {
    let unreadable = |e: &dyn std::fmt::Display| IngestError::Parquet {
        path: path.to_owned(),
        why: e.to_string(),
    };
    let metadata =
        ArrowReaderMetadata::load(&file, Default::default()).map_err(|e| unreadable(&e))?;
    let parquet_meta = metadata.metadata().clone();
    let fields = metadata.schema().fields().clone();

    let slots: Vec<Option<usize>> = fields
        .iter()
        .enumerate()
        .map(
            |(i, field)| match profiler.feature(field.name(), declared_kind(field.data_type())) {
                Ok(slot) => Some(slot),
                Err(refused) => {
                    profiler.warn(|| {
                        format!(
                            "{path}: column {} ({:?}) ignored: {refused}",
                            i + 1,
                            field.name()
                        )
                    });
                    None
                }
            },
        )
        .collect();
    let wanted: Vec<usize> = (0..fields.len()).filter(|&i| slots[i].is_some()).collect();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(wanted.len())
        .max(1);
    let shares = balance(&wanted, &column_weights(&parquet_meta), workers);
    // Progress counts values (rows × columns), so every worker can advance it.
    progress
        .set_length(parquet_meta.file_metadata().num_rows().max(0) as u64 * wanted.len() as u64);

    let mut first_row: u64 = 0;
    for (group, meta) in parquet_meta.row_groups().iter().enumerate() {
        let group_rows = meta.num_rows().max(0) as u64;
        // Each worker decodes and profiles its own share of the columns with its own reader;
        // the group joins the profile only once every share decoded, so a group that fails
        // half-way leaves no partial trace.
        let outcome: Result<Vec<(usize, FeatureProfile)>, String> = std::thread::scope(|scope| {
            let handles: Vec<_> = shares
                .iter()
                .map(|share| {
                    // A file handle of its own: clones share one seek position, and the Parquet
                    // reader seeks before every read.
                    let handle = File::open(source);
                    let metadata = metadata.clone();
                    let declared: Vec<Option<Kind>> = share
                        .iter()
                        .map(|&c| declared_kind(fields[c].data_type()))
                        .collect();
                    scope.spawn(move || {
                        let handle = handle.map_err(|e| e.to_string())?;
                        profile_columns(handle, metadata, group, share, declared, progress)
                    })
                })
                .collect();
            let mut profiles = Vec::with_capacity(wanted.len());
            for handle in handles {
                profiles.extend(
                    handle
                        .join()
                        .map_err(|_| "column worker panicked".to_owned())??,
                );
            }
            Ok(profiles)
        });
        match outcome {
            Ok(profiles) => {
                for (column, profile) in profiles {
                    let slot = slots[column].expect("only wanted columns are read");
                    profiler
                        .slot_mut(slot)
                        .merge(&profile)
                        .map_err(|e| unreadable(&e))?;
                }
                profiler.add_rows(group_rows);
            }
            Err(why) => {
                let last = first_row + group_rows;
                profiler.reject_rows(group_rows, || {
                    format!(
                        "{path}: row group {group} (rows {}..={last}): unreadable: {why}",
                        first_row + 1
                    )
                });
            }
        }
        first_row += group_rows;
    }
    Ok(())
}

/// Decodes columns `share` (root indices) of one row group and profiles each.
fn profile_columns(
    file: File,
    metadata: ArrowReaderMetadata,
    group: usize,
    share: &[usize],
    declared: Vec<Option<Kind>>,
    progress: &ProgressBar,
) -> Result<Vec<(usize, FeatureProfile)>, String> {
    let mask = ProjectionMask::roots(
        metadata.metadata().file_metadata().schema_descr(),
        share.iter().copied(),
    );
    let batches = ParquetRecordBatchReaderBuilder::new_with_metadata(file, metadata)
        .with_row_groups(vec![group])
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| e.to_string())?;
    let mut profiles: Vec<FeatureProfile> = declared
        .into_iter()
        .map(FeatureProfile::with_declared)
        .collect();
    for batch in batches {
        let batch = batch.map_err(|e| e.to_string())?;
        // The projected batch holds the share's columns in schema order, as `share` is.
        for (column, profile) in batch.columns().iter().zip(profiles.iter_mut()) {
            observe_column(profile, column)?;
        }
        progress.inc((batch.num_rows() * share.len()) as u64);
    }
    Ok(share.iter().copied().zip(profiles).collect())
}

/// Work per root column: its uncompressed bytes over all row groups (at least 1).
fn column_weights(meta: &ParquetMetaData) -> Vec<u64> {
    let schema = meta.file_metadata().schema_descr();
    let mut weights = vec![1u64; schema.root_schema().get_fields().len()];
    for group in meta.row_groups() {
        for (leaf, chunk) in group.columns().iter().enumerate() {
            let root = schema.get_column_root_idx(leaf);
            if let Some(w) = weights.get_mut(root) {
                *w += chunk.uncompressed_size().max(0) as u64;
            }
        }
    }
    weights
}

/// Splits `columns` into `n` shares of similar weight (heaviest first, each to the lightest
/// share), each share in schema order.
fn balance(columns: &[usize], weights: &[u64], n: usize) -> Vec<Vec<usize>> {
    let mut order = columns.to_vec();
    order.sort_by_key(|&c| std::cmp::Reverse(weights.get(c).copied().unwrap_or(1)));
    let mut shares: Vec<(u64, Vec<usize>)> = vec![(0, Vec::new()); n];
    for c in order {
        let lightest = shares
            .iter_mut()
            .min_by_key(|(w, _)| *w)
            .expect("at least one share");
        lightest.0 += weights.get(c).copied().unwrap_or(1);
        lightest.1.push(c);
    }
    shares
        .into_iter()
        .map(|(_, mut cols)| {
            cols.sort_unstable();
            cols
        })
        .filter(|cols| !cols.is_empty())
        .collect()
}

/// The kind a column's type promises, for columns without any values.
fn declared_kind(data_type: &DataType) -> Option<Kind> {
    match data_type {
        DataType::Boolean => Some(Kind::Boolean),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(Kind::String),
        DataType::Dictionary(_, value) => declared_kind(value),
        t if is_numeric(t) || t.is_temporal() => Some(Kind::Numeric),
        _ => None,
    }
}

fn is_numeric(t: &DataType) -> bool {
    t.is_numeric()
}

fn observe_column(profile: &mut FeatureProfile, column: &ArrayRef) -> Result<(), String> {
    match column.data_type() {
        DataType::Null => (0..column.len()).for_each(|_| profile.observe_null()),
        DataType::Boolean => column.as_boolean().iter().for_each(|v| match v {
            Some(b) => profile.observe_bool(b),
            None => profile.observe_null(),
        }),
        DataType::Float64 => observe_f64(profile, column),
        DataType::Utf8 => observe_strings(profile, column.as_string::<i32>().iter()),
        DataType::LargeUtf8 => observe_strings(profile, column.as_string::<i64>().iter()),
        DataType::Utf8View => observe_strings(profile, column.as_string_view().iter()),
        DataType::Dictionary(_, value) if declared_kind(value) == Some(Kind::String) => {
            let strings = arrow_cast::cast(column, &DataType::Utf8).map_err(|e| e.to_string())?;
            observe_strings(profile, strings.as_string::<i32>().iter())
        }
        t if is_numeric(t) => {
            let floats = arrow_cast::cast(column, &DataType::Float64).map_err(|e| e.to_string())?;
            observe_f64(profile, &floats)
        }
        // Dates, times and timestamps are profiled as numbers in their unit since the epoch.
        t if t.is_temporal() => {
            let ints = arrow_cast::cast(column, &DataType::Int64).map_err(|e| e.to_string())?;
            let floats = arrow_cast::cast(&ints, &DataType::Float64).map_err(|e| e.to_string())?;
            observe_f64(profile, &floats)
        }
        // Binary, nested and other types: counted as values, nothing more.
        _ => (0..column.len()).for_each(|i| {
            if column.is_null(i) {
                profile.observe_null()
            } else {
                profile.observe_other()
            }
        }),
    }
    Ok(())
}

fn observe_f64(profile: &mut FeatureProfile, column: &ArrayRef) {
    let array = column.as_primitive::<Float64Type>();
    if array.null_count() == 0 {
        array
            .values()
            .iter()
            .for_each(|&x| profile.observe_number(x));
    } else {
        array.iter().for_each(|v| match v {
            Some(x) => profile.observe_number(x),
            None => profile.observe_null(),
        });
    }
}

fn observe_strings<'a>(
    profile: &mut FeatureProfile,
    values: impl Iterator<Item = Option<&'a str>>,
) {
    values.for_each(|v| match v {
        Some(s) => profile.observe_str(s),
        None => profile.observe_null(),
    });
}
