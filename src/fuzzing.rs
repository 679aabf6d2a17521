//! Ways in for the coverage-guided fuzz targets (`fuzz/`) and for the test that replays their
//! corpus (`tests/it/fuzz_corpus.rs`), so both run one code path: one function per target,
//! taking raw bytes, driving them through the code a user's input goes through, with the
//! limits it has there, and panicking when an invariant breaks — a panic here is a bug in
//! driftd, whatever the bytes. Not a stable interface; see docs/fuzzing.md.

use std::path::Path;
use std::sync::OnceLock;

use crate::config::ServeConfig;
use crate::detect::anomaly::{self, Point};
use crate::detect::skew::{self, SideNames};
use crate::detect::{self as detection, parity};
use crate::ingest::records::{BodyError, BodyFormat, MAX_LISTED_ERRORS, Streamed};
use crate::ingest::{self, Format};
use crate::pictures::{self, Page};
use crate::profile::file::{self, HEADER_LEN, MAGIC};
use crate::profile::sample::SamplePolicy;
use crate::profile::{DatasetProfile, Limits, MergeError, Profiler, Sample, Stage, Value};
use crate::report;
use crate::rules::{self, DatasetRules, RuleSet};
use crate::serve::api::records::profile_batch;
use crate::telemetry::spans::RecordSampler;

/// `profile_file`: a profile file, as `driftd compare` reads one and `POST …/profiles`
/// receives one. The bytes are decoded as they are, then once more with the header's length
/// and checksum made to fit them, so that mutations of the body reach its decoder instead of
/// stopping at the checksum. Whatever decodes is re-encoded (the same bytes twice: decoding is
/// faithful), merged with itself, compared with itself (no drift, no skew) and drawn.
pub fn profile_file(data: &[u8]) {
    decode_and_check(data);
    if let Some(fitted) = with_fitting_header(data) {
        decode_and_check(&fitted);
    }
}

fn with_fitting_header(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < HEADER_LEN || data[..MAGIC.len()] != MAGIC {
        return None;
    }
    let body = &data[HEADER_LEN..];
    let mut fitted = data.to_vec();
    let len = u32::try_from(body.len()).ok()?;
    fitted[12..16].copy_from_slice(&len.to_le_bytes());
    fitted[16..20].copy_from_slice(&crc32fast::hash(body).to_le_bytes());
    (fitted != data).then_some(fitted)
}

fn decode_and_check(data: &[u8]) {
    match file::decode_with_sample(data) {
        Ok((profile, sample)) => {
            let plain = file::decode(data).expect("decode accepts what decode_with_sample does");
            assert!(
                profile.sample.is_none(),
                "decode_with_sample hands the sample apart"
            );
            let apart = file::encode_with_sample(&profile, sample.as_ref());
            assert_eq!(
                file::encode(&plain),
                apart,
                "decode keeps the sample in the profile"
            );
            check_profile(&profile, sample.as_ref());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// `records`: a body posted to `POST /v1/datasets/{dataset}/records`, read as JSON and as
/// NDJSON the way the server reads it (its default limits, every record traced), and the same
/// bytes as a JSON Lines file (`driftd profile data.jsonl`).
pub fn records(data: &[u8]) {
    let config = ServeConfig::default();
    if data.len() > config.max_body_bytes {
        return; // Answered 413 before it is read.
    }
    for format in [BodyFormat::Json, BodyFormat::Ndjson] {
        let mut sampler = RecordSampler::new(1.0, config.trace_record_max_attributes);
        let batch = profile_batch(
            format,
            data,
            ("fuzz", Stage::Online, &config.skew_id_field),
            &config,
            &mut sampler,
        );
        match batch {
            Ok((profile, problems, streamed)) => {
                assert_eq!(problems.rejected_rows, 0, "a batch refuses records alone");
                check_listing(format, data, profile.rows, &streamed);
                assert!(profile.features.len() <= config.max_features);
                check_profile(&profile, profile.sample.as_ref());
            }
            Err(BodyError::InvalidJson { line, .. }) => {
                let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
                assert!((1..=lines).contains(&line), "line {line} of {lines} lines");
            }
            Err(BodyError::Shape(why)) => assert!(!why.is_empty()),
        }
    }
    let profiler = Profiler::new("fuzz", Stage::Offline, Limits::default());
    check_read(Format::JsonLines, "fuzz.jsonl", data, profiler);
}

/// The accepted and refused records of a batch account for every record of the body, and
/// refusals are listed in order, bounded, with indices that exist.
fn check_listing(format: BodyFormat, data: &[u8], accepted: u64, streamed: &Streamed) {
    let total = accepted + streamed.rejected_count as u64;
    let listed = &streamed.rejected;
    assert_eq!(listed.len(), streamed.rejected_count.min(MAX_LISTED_ERRORS));
    assert!(listed.windows(2).all(|w| w[0].index < w[1].index));
    assert!(listed.iter().all(|e| !e.reason.is_empty()));
    match format {
        BodyFormat::Json => {
            // Another reader of the same document finds as many records.
            let document: serde_json::Value =
                serde_json::from_slice(data).expect("an accepted body is JSON");
            let records = document["records"]
                .as_array()
                .expect("an accepted body has an array of records");
            assert_eq!(total, records.len() as u64, "records counted");
            assert!(listed.iter().all(|e| e.index < records.len()));
        }
        BodyFormat::Ndjson => {
            let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
            let written = lines
                .iter()
                .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
                .count();
            assert_eq!(total, written as u64, "non-blank lines counted");
            assert!(listed.iter().all(|e| (1..=lines.len()).contains(&e.index)));
        }
    }
}

/// `csv`: a CSV file, as `driftd profile data.csv` reads it (default limits), then again as
/// `driftd profile data.csv --id-column id --sample-rate 0.5 --sample-rows 8` does, so that
/// sampling, its cap and the sample's encoding are exercised on small inputs.
pub fn csv(data: &[u8]) {
    let profiler = Profiler::new("fuzz", Stage::Offline, Limits::default());
    check_read(Format::Csv, "fuzz.csv", data, profiler);
    let policy = SamplePolicy {
        rate: 0.5,
        max_rows: 8,
        ..SamplePolicy::default()
    };
    let profiler = Profiler::new("fuzz", Stage::Offline, Limits::default())
        .with_sample(Sample::new("id", policy));
    check_read(Format::Csv, "fuzz.csv", data, profiler);
}

fn check_read(format: Format, shown: &str, data: &[u8], mut profiler: Profiler) {
    let read = ingest::read_bytes(format, shown, data, &mut profiler);
    let sample = profiler.take_sample();
    let rejected = profiler.problems().rejected_rows;
    let (profile, problems) = profiler.finish();
    match read {
        Ok(()) => {
            assert_eq!(profile.rejected_rows, rejected);
            assert!(problems.samples.len() <= Limits::default().max_problem_samples);
            check_profile(&profile, sample.as_ref());
        }
        Err(e) => {
            let message = e.to_string();
            assert!(message.starts_with(&format!("{shown}: ")), "{message}");
        }
    }
}

/// What every profile driftd builds or reads must survive: its file encoding (what is decoded
/// says what was encoded: the same figures, the same sampled rows; the sketches' bytes may be
/// laid out anew), a merge with itself, a comparison with itself (nothing drifts, nothing is
/// skewed), the JSON document, the tables and the HTML page.
fn check_profile(profile: &DatasetProfile, sample: Option<&Sample>) {
    let bytes = file::encode_with_sample(profile, sample);
    let (again, again_sample) = file::decode_with_sample(bytes.as_slice())
        .unwrap_or_else(|e| panic!("a profile driftd encoded does not decode: {e}"));
    assert!(
        figures(&again) == figures(profile),
        "decoding an encoded profile changed its figures"
    );
    assert_eq!(
        again_sample.as_ref().map(rows_of),
        sample.map(rows_of),
        "decoding an encoded sample changed it"
    );
    let mut merged = profile.clone();
    match merged.merge(profile) {
        Ok(()) => assert_eq!(Some(merged.rows), profile.rows.checked_mul(2)),
        Err(MergeError::Overflow) => {}
        Err(e) => panic!("a profile does not merge with itself: {e}"),
    }
    let rules = DatasetRules::default();
    let report = detection::compare(profile, profile, &rules);
    assert!(
        report.drifted.is_empty(),
        "a profile drifts from itself: {:?}",
        report.drifted
    );
    serde_json::to_string(&report).expect("the comparison is JSON");
    report::table(profile, Some(100));
    report::compare_table(&report, Some(100));
    check_page(profile, &report);
    if let Some(sample) = sample {
        let joined = skew::join(sample, sample, &rules.skew, SideNames::default());
        assert!(joined.skewed.is_empty(), "a sample is skewed from itself");
        serde_json::to_string(&joined).expect("the skew report is JSON");
    }
}

/// Everything `driftd profile --json` says about a profile.
fn figures(profile: &DatasetProfile) -> serde_json::Value {
    serde_json::to_value(report::document(profile, None)).expect("the profile is JSON")
}

/// A sample's rows and settings, NaN included (a NaN is not equal to itself, its text is).
fn rows_of(sample: &Sample) -> String {
    format!(
        "{:?} {:?} {:?} {:?} {} {} {:?}",
        sample.id_column(),
        sample.policy(),
        sample.features(),
        sample.bound(),
        sample.offered(),
        sample.without_id(),
        sample.rows().collect::<Vec<_>>()
    )
}

/// The HTML page escapes what the profile holds: its only markup is driftd's own.
fn check_page(profile: &DatasetProfile, report: &detection::DriftReport) {
    let html = pictures::render(&Page {
        reference: profile,
        current: profile,
        report,
        reference_source: "reference.dpf",
        current_source: "current.dpf",
        generated_at: None,
    });
    let own = pictures::html::SCRIPT.matches("<script").count() + 1;
    assert_eq!(
        html.matches("<script").count(),
        own,
        "markup from the profile"
    );
    for tag in ["<img", "<iframe", "<object", "<embed"] {
        assert!(!html.contains(tag), "{tag} from the profile");
    }
}

/// `rule_file`: a rule file, as `driftd rules check` and `driftd serve --rules` read one
/// (the same size limit, UTF-8 only). Problems must say where they are; rules that validate
/// drive every detector they tune — drift and invariants, run anomalies, parity, skew — on a
/// small fixed pair of profiles without a panic.
pub fn rule_file(data: &[u8]) {
    if data.len() as u64 > rules::MAX_RULE_FILE_BYTES {
        return; // Refused by size before it is read.
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return; // Refused by the reader ("stream did not contain valid UTF-8").
    };
    let path = Path::new("fuzz.yaml");
    match RuleSet::from_str(path, text) {
        Ok(set) => {
            let mut names = set.datasets();
            names.push("fuzz");
            for name in names {
                judge_with(&set.for_dataset(name));
            }
            set.alerts();
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "refused without a problem");
            // YAML breaks lines at `\n`, `\r\n` and a lone `\r` (as editors do), so locations
            // count those; `str::lines` would miss the lone `\r`.
            let lone_cr = text.matches('\r').count() - text.matches("\r\n").count();
            let lines = (text.matches('\n').count() + lone_cr) as u64 + 2;
            for e in &errors {
                assert_eq!(e.file, path);
                assert!(!e.message.is_empty());
                assert!(e.line <= lines, "line {} of {lines}: {e}", e.line);
            }
            assert!(
                errors.windows(2).all(|w| w[0].line <= w[1].line),
                "problems in the order they stand"
            );
            rules::report(&errors);
        }
    }
}

fn judge_with(rules: &DatasetRules) {
    let fixture = fixture();
    detection::compare(&fixture.reference, &fixture.current, rules);
    let names = ["rows_read", "rows_dropped", "debug_rows"];
    for name in rules
        .anomaly
        .counters
        .keys()
        .map(String::as_str)
        .chain(names)
    {
        if let Some(policy) = rules.anomaly.policy_for(name) {
            let history: Vec<Point> = (0..12)
                .map(|i| Point {
                    at_ms: i * 3_600_000,
                    value: 1000.0 + (i % 3) as f64,
                    flagged: i == 5,
                })
                .collect();
            let current = Point {
                at_ms: 12 * 3_600_000,
                value: 5000.0,
                flagged: false,
            };
            anomaly::judge(&history[..rules.anomaly.history.min(12)], current, &policy);
        }
    }
    let counters = |scale: f64| {
        let mentioned = rules
            .parity
            .ratios
            .iter()
            .flat_map(|r| [r.numerator.clone(), r.denominator.clone()]);
        mentioned
            .enumerate()
            .map(|(i, name)| (name, scale * (i + 1) as f64))
            .collect()
    };
    parity::counter_ratios(&rules.parity, &counters(1.0), &counters(1.5));
    parity::null_ratios(&rules.parity, &fixture.reference, &fixture.current);
    skew::join(
        &fixture.reference_sample,
        &fixture.current_sample,
        &rules.skew,
        SideNames::default(),
    );
}

/// Two small sides that differ in every way a rule can judge.
struct Fixture {
    reference: DatasetProfile,
    current: DatasetProfile,
    reference_sample: Sample,
    current_sample: Sample,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let side = |shift: f64, countries: &[&str]| {
            let sample = Sample::new("id", SamplePolicy::default());
            let mut profiler =
                Profiler::new("fuzz", Stage::Offline, Limits::default()).with_sample(sample);
            for i in 0..400u32 {
                let record = serde_json::json!({
                    "id": i,
                    "latency_ms": f64::from(i % 50) * shift,
                    "price": if i % 7 == 0 { serde_json::Value::Null } else { (f64::from(i) / 3.0).into() },
                    "country": countries[i as usize % countries.len()],
                    "flag": i % 3 == 0,
                    "request_id": format!("r{i}"),
                });
                let map = record.as_object().expect("an object");
                let fields = map.iter().map(|(k, v)| (k.as_str(), Value::from_json(v)));
                profiler.observe_record(String::new, fields);
            }
            let sample = profiler.take_sample().expect("a sample");
            (profiler.finish().0, sample)
        };
        let (reference, reference_sample) = side(1.0, &["US", "DE", "FR"]);
        let (current, current_sample) = side(1.7, &["US", "DE", "BR", "JP"]);
        Fixture {
            reference,
            current,
            reference_sample,
            current_sample,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_inputs_pass_every_check() {
        records(br#"{"records": [{"a": 1, "b": "x"}, [2], {"a": null}], "labels": {"h": "1"}}"#);
        records(b"{\"a\": 1}\n\n{bad\n\"s\"\n{\"a\": 2.5, \"c\": true}\r\n");
        csv(b"id,a,b\n1,2.5,x\n2,,y\n3,NaN,z\n4,inf\n");
        rule_file(b"dataset: d\ndrift:\n  numeric: {method: psi, threshold: 0.2}\n");
        rule_file(b"dataset: d\nbogus: 1\n");
        let mut profiler = Profiler::new("d", Stage::Offline, Limits::default());
        ingest::read_bytes(Format::Csv, "d.csv", b"a,b\n1,x\n2,y\n", &mut profiler).unwrap();
        let encoded = file::encode(&profiler.finish().0);
        profile_file(&encoded);
        let mut truncated = encoded.clone();
        truncated.truncate(encoded.len() - 3);
        profile_file(&truncated);
    }
}
