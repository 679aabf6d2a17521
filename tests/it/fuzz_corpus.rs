//! The fuzz corpus (`fuzz/corpus/<target>/`) replayed through the functions the fuzz targets
//! call (`driftd::fuzzing`), so every input the fuzzer kept — and every input that once found
//! a bug — passes the targets' checks in every test run, without the fuzzer.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

/// Runs every file of the target's corpus through `entry`; returns how many there were.
fn replay(target: &str, entry: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    replay_dir(&dir, entry)
}

/// Every file of `dir` through `entry`, each caught apart; fails naming each file that panicked.
fn replay_dir(dir: &Path, entry: fn(&[u8])) -> usize {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut failed = Vec::new();
    for path in &files {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| entry(&data))) {
            let why = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            failed.push(format!("{}: {why}", path.display()));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} corpus files of {} failed:\n{}",
        failed.len(),
        files.len(),
        dir.display(),
        failed.join("\n")
    );
    files.len()
}

#[test]
fn profile_file_corpus_replays() {
    let n = replay("profile_file", driftd::fuzzing::profile_file);
    assert!(n >= 20, "{n} profile_file corpus files");
}

#[test]
fn records_corpus_replays() {
    let n = replay("records", driftd::fuzzing::records);
    assert!(n >= 20, "{n} records corpus files");
}

#[test]
fn csv_corpus_replays() {
    let n = replay("csv", driftd::fuzzing::csv);
    assert!(n >= 20, "{n} csv corpus files");
}

#[test]
fn rule_file_corpus_replays() {
    let n = replay("rule_file", driftd::fuzzing::rule_file);
    assert!(n >= 20, "{n} rule_file corpus files");
}

#[test]
fn a_broken_invariant_names_its_file() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("x"), b"{}").expect("written");
    // The replay must report a panic, not swallow it: `entry` here always fails.
    let caught = catch_unwind(|| replay_dir(dir.path(), |_| panic!("invariant broken")));
    let message = caught
        .expect_err("a failing entry fails the replay")
        .downcast::<String>()
        .map(|s| *s)
        .unwrap_or_default();
    assert!(
        message.contains("1 of 1") && message.contains("x: invariant broken"),
        "{message}"
    );
}
