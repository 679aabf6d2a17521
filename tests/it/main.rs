//! driftd's integration tests: one binary, modules by surface.

mod accuracy;
mod cli_profile;
mod helpers;
mod merge_laws;
mod profile_file;
