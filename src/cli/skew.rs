//! `driftd profile --id-column` and `driftd compare --join-on`: the hash-sampled rows of a file,
//! stored in its profile file, and the skew of two sides' samples joined on the id.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{MultiProgress, ProgressDrawTarget};

use super::{CompareArgs, is_profile_file, load_rules, progress_bar, side_error};
use crate::detect;
use crate::detect::skew::{self, SideNames};
use crate::names::DatasetName;
use crate::profile::sample::{DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS};
use crate::profile::{
    DatasetProfile, Limits, Problems, Profiler, Sample, SamplePolicy, Stage, file,
};
use crate::rules::RuleSet;
use crate::{ingest, report};

/// How rows are sampled by id (the same rule on every side: see docs/skew.md).
#[derive(Debug, Clone, Args)]
pub struct SampleArgs {
    /// Share of ids eligible for the sample, in (0, 1]: an id is eligible when the first 8
    /// bytes of SHA-256 of its text, big-endian, are below rate × 2^64.
    #[arg(long, default_value_t = 1.0)]
    pub sample_rate: f64,
    /// Most ids kept per side: those with the smallest hashes, so both sides keep the same.
    #[arg(long, default_value_t = DEFAULT_MAX_ROWS)]
    pub sample_rows: usize,
}

impl SampleArgs {
    pub fn policy(&self) -> anyhow::Result<SamplePolicy> {
        let policy = SamplePolicy {
            rate: self.sample_rate,
            max_rows: self.sample_rows,
            max_bytes: DEFAULT_MAX_BYTES,
        };
        policy.validate().map_err(anyhow::Error::msg)?;
        Ok(policy)
    }
}

/// A profile and its sample: from a profile file with a sample section keyed by `id`, or from
/// a data file, sampled as it is profiled.
pub fn load_sampled(
    path: &Path,
    dataset: &str,
    stage: Stage,
    limits: Limits,
    id: &str,
    policy: SamplePolicy,
    progress: &MultiProgress,
) -> anyhow::Result<(DatasetProfile, Option<Problems>, Sample)> {
    if is_profile_file(path) {
        let f = std::fs::File::open(path)
            .with_context(|| format!("{}: cannot open", path.display()))?;
        let (profile, sample) = file::decode_with_sample(std::io::BufReader::new(f))
            .with_context(|| format!("{}", path.display()))?;
        let Some(sample) = sample else {
            bail!(
                "{}: the profile file has no sampled rows; write one with `driftd profile DATA --id-column {id} --out FILE`",
                path.display()
            );
        };
        if sample.id_column() != id {
            bail!(
                "{}: the profile file's rows are sampled by {:?}, not {id:?}",
                path.display(),
                sample.id_column()
            );
        }
        return Ok((profile, None, sample));
    }
    let mut profiler = Profiler::new(dataset, stage, limits).with_sample(Sample::new(id, policy));
    let bar = progress_bar(path, progress);
    let result = ingest::read_file(path, &mut profiler, &bar);
    bar.finish_and_clear();
    result?;
    let sample = profiler
        .take_sample()
        .expect("the profiler was given a sample");
    let (profile, problems) = profiler.finish();
    Ok((profile, Some(problems), sample))
}

/// One line about a sample, for `driftd profile`'s table.
pub fn sample_line(sample: &Sample) -> String {
    let policy = sample.policy();
    let capped = match sample.bound() {
        Some(_) => format!(
            "capped at {} {}",
            crate::format::group_digits(policy.max_rows as u64),
            crate::format::plural(policy.max_rows, "id", "ids")
        ),
        None => "every eligible id".to_owned(),
    };
    format!(
        "sample     {} {} by id {:?} of {} with an id (rate {}, {capped}); {} without an id\n",
        crate::format::group_digits(sample.len() as u64),
        crate::format::plural(sample.len(), "row", "rows"),
        crate::format::printable(sample.id_column(), 60),
        crate::format::group_digits(sample.offered()),
        policy.rate,
        crate::format::group_digits(sample.without_id()),
    )
}

/// The sample as `driftd profile --json` shows it (its rows are in the profile file only).
pub fn sample_document(sample: &Sample) -> serde_json::Value {
    serde_json::json!({
        "id_column": sample.id_column(),
        "rows": sample.len(),
        "rows_with_id": sample.offered(),
        "without_id": sample.without_id(),
        "rate": sample.policy().rate,
        "max_rows": sample.policy().max_rows,
        "capped": sample.bound().is_some(),
    })
}

/// `driftd compare REF CUR --join-on ID`: the drift report and the skew of the joined samples.
/// Exit 1 when a feature drifted, broke an invariant of severity error, or is skewed.
pub fn compare(args: &CompareArgs, id: &str) -> anyhow::Result<ExitCode> {
    if id.is_empty() {
        bail!("--join-on needs a column name");
    }
    let policy = args.sample.policy()?;
    let rules = match &args.rules {
        Some(path) => load_rules(path)?,
        None => RuleSet::default(),
    };
    let dataset: Option<DatasetName> = args.dataset.as_deref().map(str::parse).transpose()?;
    let name_of = |path: &Path| {
        dataset
            .clone()
            .unwrap_or_else(|| DatasetName::from_path(path))
            .into_string()
    };
    let progress = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let load = |path: &Path, stage: Stage| {
        load_sampled(
            path,
            &name_of(path),
            stage,
            Limits::default(),
            id,
            policy,
            &progress,
        )
    };
    let (reference, current) = std::thread::scope(|scope| {
        let reference = scope.spawn(|| {
            load(&args.reference, Stage::Offline)
                .map_err(|e| side_error("reference", &args.reference, e))
        });
        let current =
            load(&args.current, Stage::Online).map_err(|e| side_error("current", &args.current, e));
        (reference.join().expect("loading does not panic"), current)
    });
    let (mut reference, _, reference_sample) = reference?;
    let (mut current, problems, current_sample) = current?;
    // The id is a key, not a feature: its distribution differs between any two sets of rows.
    reference.features.remove(id);
    current.features.remove(id);
    let rules = rules.for_dataset(&current.dataset);
    let drift = detect::compare(&reference, &current, &rules);
    let skew = skew::join(
        &reference_sample,
        &current_sample,
        &rules.skew,
        SideNames::default(),
    );

    if args.json {
        let mut doc = serde_json::to_value(&drift)?;
        doc["skew"] = serde_json::to_value(&skew)?;
        super::print_json(&doc)?;
    } else {
        let columns = super::table_width(args.width);
        let mut text = report::compare_table(&drift, columns);
        text.push('\n');
        text += &report::skew_table(&skew, columns);
        super::print_text(&text)?;
    }
    if let Some(problems) = problems
        && !args.json
    {
        super::report_problems(&problems);
    }
    Ok(if drift.failed() || skew.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
