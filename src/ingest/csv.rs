//! CSV: a header row, then records. An empty field is null; other fields are typed one by one
//! (see `Value::from_text`), so a column mixing numbers and text keeps both, counted by type.

use std::collections::HashSet;
use std::io::Read;

use csv::{ByteRecord, ReaderBuilder, StringRecord};
use indicatif::ProgressBar;

use super::{IngestError, PROGRESS_EVERY};
use crate::profile::{Profiler, Value};

pub(super) fn read(
    path: &str,
    input: impl Read,
    profiler: &mut Profiler,
    progress: &ProgressBar,
) -> Result<(), IngestError> {
    let mut reader = ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .buffer_capacity(1 << 20)
        .from_reader(input);
    let fail = |e: csv::Error| IngestError::Csv {
        path: path.to_owned(),
        why: e.to_string(),
    };
    let header = reader.byte_headers().map_err(fail)?.clone();
    let names = column_names(&header, profiler);
    let slots: Vec<Option<usize>> = names
        .iter()
        .enumerate()
        .map(|(i, name)| match profiler.feature(name, None) {
            Ok(slot) => Some(slot),
            Err(refused) => {
                profiler.warn(|| format!("{path}: column {} ({name:?}) ignored: {refused}", i + 1));
                None
            }
        })
        .collect();
    let id_column = match profiler.sample_mut() {
        Some(sample) => {
            let id = sample.id_column();
            match names.iter().position(|n| n == id) {
                Some(i) => Some(i),
                None => {
                    return Err(IngestError::IdColumn {
                        path: path.to_owned(),
                        why: format!("the header has no column {id:?}"),
                    });
                }
            }
        }
        None => None,
    };

    let mut record = ByteRecord::new();
    let mut n: u64 = 0;
    while reader.read_byte_record(&mut record).map_err(fail)? {
        n += 1;
        let line = record.position().map_or(n + 1, |p| p.line());
        if record.len() != names.len() {
            let found = record.len();
            profiler.reject(|| {
                format!(
                    "{path}: line {line}: expected {} fields, found {found}",
                    names.len()
                )
            });
            continue;
        }
        // Converting in place validates UTF-8 once per record without copying.
        let text = match StringRecord::from_byte_record(std::mem::take(&mut record)) {
            Ok(text) => text,
            Err(e) => {
                let field = e.utf8_error().field();
                let at = e.utf8_error().valid_up_to();
                profiler.reject(|| {
                    format!(
                        "{path}: line {line}, column {:?}: invalid UTF-8 after byte {at}",
                        names[field]
                    )
                });
                record = e.into_byte_record();
                continue;
            }
        };
        for (field, slot) in text.iter().zip(&slots) {
            if let Some(slot) = *slot {
                profiler.observe(slot, Value::from_text(field));
            }
        }
        profiler.add_rows(1);
        if let (Some(i), Some(sample)) = (id_column, profiler.sample_mut()) {
            // The id as written: "00123" stays "00123".
            match &text[i] {
                "" => sample.offer_without_id(),
                id => sample.offer(
                    id,
                    names
                        .iter()
                        .map(String::as_str)
                        .zip(text.iter().map(Value::from_text)),
                ),
            }
        }
        record = text.into_byte_record();
        if n.is_multiple_of(PROGRESS_EVERY) {
            progress.set_position(reader.position().byte());
        }
    }
    progress.set_position(reader.position().byte());
    Ok(())
}

/// Feature names from the header: invalid UTF-8 is replaced, an empty name becomes
/// `column_N`, a repeated name gets a `.N` suffix; each change is reported.
fn column_names(header: &ByteRecord, profiler: &mut Profiler) -> Vec<String> {
    let mut seen = HashSet::new();
    header
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let mut name = match std::str::from_utf8(raw) {
                Ok(s) => s.to_owned(),
                Err(_) => {
                    let lossy = String::from_utf8_lossy(raw).into_owned();
                    profiler.warn(|| {
                        format!(
                            "header column {}: name is not valid UTF-8, read as {lossy:?}",
                            i + 1
                        )
                    });
                    lossy
                }
            };
            if name.is_empty() {
                name = format!("column_{}", i + 1);
            }
            if !seen.insert(name.clone()) {
                let base = name.clone();
                let mut k = 1;
                while !seen.insert(format!("{base}.{k}")) {
                    k += 1;
                }
                name = format!("{base}.{k}");
                profiler.warn(|| {
                    format!(
                        "header column {}: repeated name {base:?} read as {name:?}",
                        i + 1
                    )
                });
            }
            name
        })
        .collect()
}
