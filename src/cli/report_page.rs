//! `driftd report`: a comparison drawn as one self-contained HTML file.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::{CompareArgs, Judged, judge, report_problems};
use crate::format::plural;
use crate::pictures::{self, Page};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The reference: a data file or a profile file (typically the training data).
    pub reference: PathBuf,
    /// The data to judge: a data file or a profile file (typically serving traffic).
    pub current: PathBuf,
    /// The HTML file to write (replaced whole: a reader never sees half a page).
    #[arg(long)]
    pub out: PathBuf,
    /// A rule file, or a directory of them (*.yaml, *.yml), as for `driftd compare`.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Dataset name for data files (rules are looked up under it)
    /// [default: the current side's profile name, else the current file's name].
    #[arg(long)]
    pub dataset: Option<String>,
}

pub fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let compare = CompareArgs {
        reference: args.reference.clone(),
        current: args.current.clone(),
        json: false,
        rules: args.rules.clone(),
        dataset: args.dataset.clone(),
        join_on: None,
        width: None,
        sample: super::skew::SampleArgs {
            sample_rate: 1.0,
            sample_rows: crate::profile::sample::DEFAULT_MAX_ROWS,
        },
    };
    let Judged {
        reference,
        current,
        problems,
        report,
    } = judge(&compare)?;
    let generated_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let source = |p: &Path| {
        p.file_name().map_or_else(
            || p.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    };
    let (reference_source, current_source) = (source(&args.reference), source(&args.current));
    let html = pictures::render(&Page {
        reference: &reference,
        current: &current,
        report: &report,
        reference_source: &reference_source,
        current_source: &current_source,
        generated_at: Some(&generated_at),
    });
    write_whole(&args.out, html.as_bytes())
        .with_context(|| format!("cannot write the report to {}", args.out.display()))?;
    if let Some(problems) = &problems {
        report_problems(problems);
    }
    println!(
        "wrote {} ({} KB): {} of {} {} drifted, {} invariant {}",
        args.out.display(),
        html.len().div_ceil(1024),
        report.drifted.len(),
        report.features.len(),
        plural(report.features.len(), "feature", "features"),
        report.schema.len(),
        plural(report.schema.len(), "finding", "findings"),
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes a temporary file next to `out`, then renames it into place.
fn write_whole(out: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = out.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, out));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
