//! Parquet, read column by column through Arrow: one worker per core takes the next column
//! (heaviest first), decodes and profiles it with a reader of its own. Each row group is read
//! on its own, so a corrupt row group is refused (its rows counted) while the others are
//! profiled. With a sample, a second row-wise pass offers each row to it.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use indicatif::ProgressBar;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use parquet::file::metadata::ParquetMetaData;

use super::IngestError;
use crate::profile::{FeatureProfile, Kind, Profiler, Sample, Value};

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
    // Heaviest columns first: workers take the next column as they finish one, so the last
    // columns taken are the light ones and the workers end together.
    let weights = column_weights(&parquet_meta);
    let mut order = wanted.clone();
    order.sort_by_key(|&c| std::cmp::Reverse(weights.get(c).copied().unwrap_or(1)));
    // Progress counts values (rows × columns), so every worker can advance it.
    progress
        .set_length(parquet_meta.file_metadata().num_rows().max(0) as u64 * wanted.len() as u64);

    let id_column = match profiler.sample_mut() {
        Some(sample) => Some(id_column(path, &fields, sample.id_column())?),
        None => None,
    };

    let mut readable_groups = Vec::new();
    let mut first_row: u64 = 0;
    for (group, meta) in parquet_meta.row_groups().iter().enumerate() {
        let group_rows = meta.num_rows().max(0) as u64;
        // The group joins the profile only once every column decoded, so a group that fails
        // half-way leaves no partial trace.
        let outcome = profile_group(source, &metadata, group, &order, workers, progress);
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
                readable_groups.push(group);
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
    if let (Some(id), Some(sample)) = (id_column, profiler.sample_mut()) {
        let mut columns = wanted.clone();
        if !columns.contains(&id) {
            columns.push(id);
            columns.sort_unstable();
        }
        sample_rows(source, &metadata, readable_groups, &columns, id, sample)
            .map_err(|e| unreadable(&e))?;
    }
    Ok(())
}

/// Decodes one row group's wanted columns on `workers` threads, heaviest first; every column
/// gets a file handle of its own. Fails as a whole when any column fails.
fn profile_group(
    source: &Path,
    metadata: &ArrowReaderMetadata,
    group: usize,
    order: &[usize],
    workers: usize,
    progress: &ProgressBar,
) -> Result<Vec<(usize, FeatureProfile)>, String> {
    let fields = metadata.schema().fields();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    while let Some(&column) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                        // A file handle of its own: clones share one seek position, and the
                        // Parquet reader seeks before every read.
                        let file = File::open(source).map_err(|e| e.to_string())?;
                        let declared = declared_kind(fields[column].data_type());
                        let profile =
                            profile_column(file, metadata, group, column, declared, progress)?;
                        done.push((column, profile));
                    }
                    Ok::<_, String>(done)
                })
            })
            .collect();
        let mut profiles = Vec::with_capacity(order.len());
        for handle in handles {
            profiles.extend(
                handle
                    .join()
                    .map_err(|_| "column worker panicked".to_owned())??,
            );
        }
        Ok(profiles)
    })
}

/// The root index of the id column; ids are strings or integers.
fn id_column(path: &str, fields: &arrow_schema::Fields, name: &str) -> Result<usize, IngestError> {
    let refuse = |why: String| IngestError::IdColumn {
        path: path.to_owned(),
        why,
    };
    let i = fields
        .iter()
        .position(|f| f.name() == name)
        .ok_or_else(|| refuse(format!("the file has no column {name:?}")))?;
    let t = fields[i].data_type();
    let ok = t.is_integer()
        || matches!(declared_kind(t), Some(Kind::String))
        || matches!(t, DataType::Dictionary(_, v) if v.is_integer());
    if !ok {
        return Err(refuse(format!(
            "column {name:?} is {t}; ids must be strings or integers"
        )));
    }
    Ok(i)
}

/// A column of one batch in the form sampled values are read from.
enum SampledColumn {
    Numbers(arrow_array::Float64Array),
    Bools(arrow_array::BooleanArray),
    Strings(arrow_array::StringArray),
    Other(ArrayRef),
}

impl SampledColumn {
    fn of(column: &ArrayRef) -> Result<SampledColumn, String> {
        let cast = |t: &DataType| arrow_cast::cast(column, t).map_err(|e| e.to_string());
        Ok(match column.data_type() {
            DataType::Boolean => SampledColumn::Bools(column.as_boolean().clone()),
            t if declared_kind(t) == Some(Kind::String) => {
                SampledColumn::Strings(cast(&DataType::Utf8)?.as_string::<i32>().clone())
            }
            t if is_numeric(t) => {
                SampledColumn::Numbers(cast(&DataType::Float64)?.as_primitive().clone())
            }
            t if t.is_temporal() => {
                let ints = cast(&DataType::Int64)?;
                let floats =
                    arrow_cast::cast(&ints, &DataType::Float64).map_err(|e| e.to_string())?;
                SampledColumn::Numbers(floats.as_primitive().clone())
            }
            _ => SampledColumn::Other(column.clone()),
        })
    }

    fn value(&self, row: usize) -> Value<'_> {
        match self {
            SampledColumn::Numbers(a) if a.is_valid(row) => Value::Number(a.value(row)),
            SampledColumn::Bools(a) if a.is_valid(row) => Value::Bool(a.value(row)),
            SampledColumn::Strings(a) if a.is_valid(row) => Value::Str(a.value(row)),
            SampledColumn::Other(a) if a.is_valid(row) => Value::Other,
            _ => Value::Null,
        }
    }
}

/// A second, row-wise pass over the readable row groups that offers each row to the sample.
/// Values are read only for rows the sample keeps; memory is one batch.
fn sample_rows(
    source: &Path,
    metadata: &ArrowReaderMetadata,
    groups: Vec<usize>,
    columns: &[usize],
    id: usize,
    sample: &mut Sample,
) -> Result<(), String> {
    let file = File::open(source).map_err(|e| e.to_string())?;
    let schema = metadata.metadata().file_metadata().schema_descr();
    let mask = ProjectionMask::roots(schema, columns.iter().copied());
    let batches = ParquetRecordBatchReaderBuilder::new_with_metadata(file, metadata.clone())
        .with_row_groups(groups)
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| e.to_string())?;
    let id_at = columns.iter().position(|&c| c == id).expect("id is read");
    for batch in batches {
        let batch = batch.map_err(|e| e.to_string())?;
        let ids =
            arrow_cast::cast(batch.column(id_at), &DataType::Utf8).map_err(|e| e.to_string())?;
        let ids = ids.as_string::<i32>();
        let names: Vec<&str> = batch
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        let values = batch
            .columns()
            .iter()
            .map(SampledColumn::of)
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            if ids.is_null(row) {
                sample.offer_without_id();
                continue;
            }
            let fields = names
                .iter()
                .copied()
                .zip(values.iter().map(|c| c.value(row)));
            sample.offer(ids.value(row), fields);
        }
    }
    Ok(())
}

/// Decodes one column (a root index) of one row group and profiles it.
fn profile_column(
    file: File,
    metadata: &ArrowReaderMetadata,
    group: usize,
    column: usize,
    declared: Option<Kind>,
    progress: &ProgressBar,
) -> Result<FeatureProfile, String> {
    let mask = ProjectionMask::roots(metadata.metadata().file_metadata().schema_descr(), [column]);
    let batches = ParquetRecordBatchReaderBuilder::new_with_metadata(file, metadata.clone())
        .with_row_groups(vec![group])
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| e.to_string())?;
    let mut profile = FeatureProfile::with_declared(declared);
    for batch in batches {
        let batch = batch.map_err(|e| e.to_string())?;
        observe_column(&mut profile, batch.column(0))?;
        progress.inc(batch.num_rows() as u64);
    }
    Ok(profile)
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
