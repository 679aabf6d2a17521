//! JSON Lines (NDJSON): one JSON object per line. Blank lines are skipped; a line that is not
//! valid JSON, not an object or longer than `MAX_LINE_BYTES` is refused with its line number.

use std::io::{BufRead, BufReader, Read};

use indicatif::ProgressBar;

use super::records::json_reason;
use super::{IngestError, PROGRESS_EVERY, json_type};
use crate::profile::{Profiler, Value};

/// Longest line read; longer ones are skipped (without buffering them) and refused.
pub const MAX_LINE_BYTES: usize = 16 << 20;

pub(super) fn read(
    path: &str,
    input: impl Read,
    profiler: &mut Profiler,
    progress: &ProgressBar,
) -> Result<(), IngestError> {
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let mut buf = Vec::new();
    let mut line_no: u64 = 0;
    let mut offset: u64 = 0;
    loop {
        buf.clear();
        let (read, complete) =
            read_line_bounded(&mut reader, &mut buf, MAX_LINE_BYTES).map_err(|error| {
                IngestError::Read {
                    path: path.to_owned(),
                    location: format!("line {}", line_no + 1),
                    error,
                }
            })?;
        if read == 0 {
            break;
        }
        line_no += 1;
        offset += read as u64;
        if line_no.is_multiple_of(PROGRESS_EVERY) {
            progress.set_position(offset);
        }
        if !complete {
            profiler
                .reject(|| format!("{path}: line {line_no}: longer than {MAX_LINE_BYTES} bytes"));
            continue;
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<serde_json::Value>(&buf) {
            Ok(serde_json::Value::Object(map)) => profiler.observe_record(
                || format!("{path}: line {line_no}"),
                map.iter()
                    .map(|(name, value)| (name.as_str(), Value::from_json(value))),
            ),
            Ok(other) => {
                let found = json_type(&other);
                profiler.reject(|| {
                    format!("{path}: line {line_no}: expected a JSON object, found {found}")
                });
            }
            Err(e) => profiler.reject(|| {
                format!(
                    "{path}: line {line_no}, column {}: invalid JSON: {}",
                    e.column(),
                    json_reason(&e)
                )
            }),
        }
    }
    progress.set_position(offset);
    Ok(())
}

/// Reads through the next newline. Returns the bytes consumed and whether the line fit in
/// `max` bytes; an overlong line is consumed but not kept.
fn read_line_bounded(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<(usize, bool)> {
    let mut consumed = 0;
    let mut fits = true;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok((consumed, fits));
        }
        let (take, done) = match memchr_newline(chunk) {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if fits && buf.len() + take <= max + 1 {
            buf.extend_from_slice(&chunk[..take]);
        } else {
            fits = false;
            buf.clear();
        }
        reader.consume(take);
        consumed += take;
        if done {
            return Ok((consumed, fits));
        }
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::read_line_bounded;
    use std::io::{BufReader, Cursor};

    #[test]
    fn overlong_lines_are_skipped_without_buffering() {
        let data = format!("{}\n{{\"a\":1}}\nlast", "x".repeat(100));
        let mut r = BufReader::with_capacity(16, Cursor::new(data));
        let mut buf = Vec::new();
        assert_eq!(
            read_line_bounded(&mut r, &mut buf, 50).unwrap(),
            (101, false)
        );
        assert!(buf.len() <= 51);
        buf.clear();
        assert_eq!(read_line_bounded(&mut r, &mut buf, 50).unwrap(), (8, true));
        assert_eq!(buf, b"{\"a\":1}\n");
        buf.clear();
        assert_eq!(read_line_bounded(&mut r, &mut buf, 50).unwrap(), (4, true));
        assert_eq!(buf, b"last");
        buf.clear();
        assert_eq!(read_line_bounded(&mut r, &mut buf, 50).unwrap(), (0, true));
    }
}
