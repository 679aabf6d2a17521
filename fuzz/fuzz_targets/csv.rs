//! A CSV file (`driftd profile data.csv`), plain and sampled by id.
//! The checks are in `driftd::fuzzing::csv`, which the corpus replay test runs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| driftd::fuzzing::csv(data));
