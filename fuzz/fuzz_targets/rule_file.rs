//! A rule file (`driftd rules check`, `serve --rules`), and the detectors it tunes.
//! The checks are in `driftd::fuzzing::rule_file`, which the corpus replay test runs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| driftd::fuzzing::rule_file(data));
