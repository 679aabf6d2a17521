//! A profile file (`driftd compare`, `POST …/profiles`): decoded, re-encoded, merged, compared, drawn.
//! The checks are in `driftd::fuzzing::profile_file`, which the corpus replay test runs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| driftd::fuzzing::profile_file(data));
