//! A record batch (`POST …/records`, JSON and NDJSON) and a JSON Lines file.
//! The checks are in `driftd::fuzzing::records`, which the corpus replay test runs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| driftd::fuzzing::records(data));
