//! Parquet, read column by column through Arrow. Each row group is read on its own, so a
//! corrupt row group is refused (its rows counted) while the others are still profiled.

use std::fs::File;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use indicatif::ProgressBar;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};

use super::IngestError;
use crate::profile::{FeatureProfile, Kind, Profiler};

const BATCH_ROWS: usize = 65_536;

pub(super) fn read(
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
    progress.set_length(parquet_meta.file_metadata().num_rows().max(0) as u64);

    let slots: Vec<Option<usize>> = metadata
        .schema()
        .fields()
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

    let mut first_row: u64 = 0;
    for (group, meta) in parquet_meta.row_groups().iter().enumerate() {
        let group_rows = meta.num_rows().max(0) as u64;
        let handle = file.try_clone().map_err(|e| unreadable(&e))?;
        // Rows of this group are profiled only once all of them decoded, so a group that fails
        // half-way leaves no partial trace in the profile.
        let mut group_profiles: Vec<Option<FeatureProfile>> = slots
            .iter()
            .map(|s| {
                s.map(|slot| FeatureProfile::with_declared(profiler.slot_mut(slot).declared()))
            })
            .collect();
        let outcome = ParquetRecordBatchReaderBuilder::new_with_metadata(handle, metadata.clone())
            .with_row_groups(vec![group])
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| e.to_string())
            .and_then(|batches| {
                for batch in batches {
                    let batch = batch.map_err(|e| e.to_string())?;
                    for (column, profile) in batch.columns().iter().zip(group_profiles.iter_mut()) {
                        if let Some(profile) = profile {
                            observe_column(profile, column)?;
                        }
                    }
                    progress.inc(batch.num_rows() as u64);
                }
                Ok(())
            });
        match outcome {
            Ok(()) => {
                for (slot, profile) in slots.iter().zip(group_profiles) {
                    if let (Some(slot), Some(profile)) = (slot, profile) {
                        profiler
                            .slot_mut(*slot)
                            .merge(&profile)
                            .map_err(|e| unreadable(&e))?;
                    }
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
