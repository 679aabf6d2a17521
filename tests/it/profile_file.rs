//! The profile file: round trips, and refuses truncated, corrupt and unknown-version files
//! with a clear error, never a panic.

use driftd::profile::file::{FORMAT_VERSION, ProfileFileError, decode, encode};
use driftd::profile::{DatasetProfile, Limits, Profiler, Stage, Value};
use driftd::report;
use proptest::prelude::*;

fn sample_profile() -> DatasetProfile {
    let mut p = Profiler::new("search_ranking_inputs", Stage::Online, Limits::default());
    for i in 0..3000 {
        let x = i as f64 * 0.5;
        let country = ["US", "DE", "日本", "🙂"][i % 4];
        p.observe_record(
            String::new,
            [
                (
                    "latency_ms",
                    if i % 50 == 0 {
                        Value::Null
                    } else {
                        Value::Number(x)
                    },
                ),
                ("country", Value::Str(country)),
                ("is_mobile", Value::Bool(i % 3 == 0)),
                (
                    "weird",
                    if i % 7 == 0 {
                        Value::Number(f64::NAN)
                    } else {
                        Value::Str("x")
                    },
                ),
            ],
        );
    }
    let (mut profile, _) = p.finish();
    profile.labels.insert("model_version".into(), "v7".into());
    profile
}

fn json_of(p: &DatasetProfile) -> serde_json::Value {
    serde_json::to_value(report::document(p, None)).unwrap()
}

#[test]
fn round_trip_preserves_every_figure() {
    let profile = sample_profile();
    let bytes = encode(&profile);
    let back = decode(bytes.as_slice()).expect("decodes");
    assert_eq!(json_of(&back), json_of(&profile));
    assert_eq!(back.labels["model_version"], "v7");
    assert_eq!(back.stage, Stage::Online);
    // Compact: a 4-feature profile of 3,000 rows stays in kilobytes.
    assert!(
        bytes.len() < 40_000,
        "profile file is {} bytes",
        bytes.len()
    );
    // A decoded profile still merges: it carries the sketches, not just the figures.
    let mut doubled = back.clone();
    doubled.merge(&back).unwrap();
    assert_eq!(doubled.rows, 6000);
    assert_eq!(doubled.features["country"].strings().estimate("日本"), 1500);
}

#[test]
fn every_truncation_is_refused() {
    let bytes = encode(&sample_profile());
    for len in (0..bytes.len()).step_by(7).chain([bytes.len() - 1]) {
        let err = decode(&bytes[..len]).expect_err("truncated file must be refused");
        let msg = err.to_string();
        assert!(
            matches!(
                err,
                ProfileFileError::Truncated(_) | ProfileFileError::NotAProfile
            ),
            "length {len}: {msg}"
        );
        if len >= 8 {
            assert!(
                msg.starts_with("truncated profile file"),
                "length {len}: {msg}"
            );
        }
    }
}

#[test]
fn every_flipped_byte_is_refused() {
    let bytes = encode(&sample_profile());
    for i in (0..bytes.len()).step_by(3) {
        let mut bad = bytes.clone();
        bad[i] ^= 0x5a;
        assert!(
            decode(bad.as_slice()).is_err(),
            "flipped byte {i} was accepted"
        );
    }
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let msg = decode(bad.as_slice()).unwrap_err().to_string();
    assert!(
        msg.starts_with("corrupt profile file: checksum mismatch"),
        "{msg}"
    );
}

#[test]
fn unknown_versions_and_trailing_bytes_are_refused_by_name() {
    let bytes = encode(&sample_profile());
    let mut newer = bytes.clone();
    newer[8..10].copy_from_slice(&(FORMAT_VERSION + 8).to_le_bytes());
    assert_eq!(
        decode(newer.as_slice()).unwrap_err().to_string(),
        format!(
            "profile file format version {} is not supported by this driftd (reads versions 1 to {FORMAT_VERSION}); upgrade driftd",
            FORMAT_VERSION + 8
        )
    );
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        decode(longer.as_slice()).unwrap_err().to_string(),
        "corrupt profile file: trailing bytes after the body"
    );
    let mut huge = bytes.clone();
    huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(
        decode(huge.as_slice())
            .unwrap_err()
            .to_string()
            .contains("exceeds the limit")
    );
}

/// A body that passes the checksum but lies about its figures is refused too.
#[test]
fn inconsistent_bodies_are_refused() {
    let mut profile = sample_profile();
    profile.rows += 1; // features now add up to one row fewer than the dataset
    let msg = decode(encode(&profile).as_slice()).unwrap_err().to_string();
    assert!(msg.contains("do not add up to 3001 rows"), "{msg}");
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..2048), keep_header in any::<bool>()) {
        let mut bytes = Vec::new();
        if keep_header {
            // A valid header and checksum around garbage: the CBOR and sketch decoders see it.
            bytes.extend_from_slice(&driftd::profile::file::MAGIC);
            bytes.extend_from_slice(&1u16.to_le_bytes());
            bytes.extend_from_slice(&0u16.to_le_bytes());
            bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        }
        bytes.extend_from_slice(&body);
        prop_assert!(decode(bytes.as_slice()).is_err());
    }

    #[test]
    fn mutated_sketch_bytes_never_panic(i in 0usize..10_000, x in 1u8..=255) {
        // Mutate a real body, then fix the checksum, so the damage reaches the sketch decoders.
        let bytes = encode(&sample_profile());
        let mut body = bytes[20..].to_vec();
        let i = i % body.len();
        body[i] ^= x;
        let mut bad = bytes[..16].to_vec();
        bad.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        bad.extend_from_slice(&body);
        let _ = decode(bad.as_slice());
    }
}

/// Values of both signs near f64::MAX made a feature's mean overflow to NaN, which the decoder
/// refuses: `profile --out` wrote a file that `compare` then called corrupt, and the daemon
/// stored windows it could not read back. (Found by the `csv` fuzz target's seed corpus.)
#[test]
fn a_profile_whose_mean_overflows_reads_back() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let csv = dir.path().join("huge.csv");
    std::fs::write(&csv, "n\n1e308\n-1e308\n5e-324\n1\n-1e308\n").expect("written");
    let out = dir.path().join("huge.dpf");
    let (csv, out) = (csv.to_str().unwrap(), out.to_str().unwrap());
    let written = crate::helpers::driftd(&["profile", csv, "--out", out]);
    assert!(
        written.status.success(),
        "{}",
        crate::helpers::stderr(&written)
    );
    let compared = crate::helpers::driftd(&["compare", out, out, "--json"]);
    let report = crate::helpers::stdout_json(&compared);
    assert_eq!(report["drifted"], serde_json::json!([]));
    let profiled = crate::helpers::driftd(&["profile", out, "--json"]);
    let n = &crate::helpers::stdout_json(&profiled)["features"]["n"];
    assert_eq!(n["count"], 5);
    assert_eq!(n["numeric"]["max"], 1e308);
    assert_eq!(n["numeric"]["stddev"], serde_json::Value::Null, "{n}");
}
