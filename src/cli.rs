//! The `driftd` command line: argument types and the commands they run.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::{self, Layer, ServeConfig, Source};
use crate::detect;
use crate::format::plural;
use crate::ingest;
use crate::names::DatasetName;
use crate::profile::{DatasetProfile, Limits, Problems, Profiler, Stage, file};
use crate::report;
use crate::rules::RuleSet;

mod report_page;
mod skew;

#[derive(Debug, Parser)]
#[command(
    name = "driftd",
    version,
    about = "Watches the inputs of machine-learning systems"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Profile a CSV, JSON Lines or Parquet file (or show a saved profile file).
    Profile(ProfileArgs),
    /// Compare current data with a reference: drift per feature and data invariants.
    /// Exit status 0: no drift; 1: drift or a broken invariant of severity error; 2: error.
    Compare(CompareArgs),
    /// Work with rule files.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Profile a file and upload the profile and the run's counters to a driftd server: what a
    /// pipeline step runs. Exit status 0: uploaded; 2: refused, unreachable, or unreadable.
    Push(PushArgs),
    /// Draw a comparison as one self-contained HTML page: summary, features table, a chart per
    /// feature. Exit status 0: written; 2: error.
    Report(report_page::ReportArgs),
    /// Run the daemon: ingest, windows, storage, continuous evaluation, /metrics.
    /// Settings: defaults, then --config, then DRIFTD_* variables, then these flags.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A YAML config file (see driftd.example.yaml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8471] (DRIFTD_LISTEN).
    #[arg(long)]
    pub listen: Option<String>,
    /// sqlite://PATH or postgres://… [default: sqlite://driftd.db] (DRIFTD_DATABASE_URL).
    #[arg(long)]
    pub database: Option<String>,
    /// Rule file or directory (DRIFTD_RULES).
    #[arg(long)]
    pub rules: Option<String>,
    /// Online window length, e.g. 60s (DRIFTD_WINDOW).
    #[arg(long)]
    pub window: Option<String>,
    /// How often drift is evaluated, e.g. 30s (DRIFTD_EVAL_INTERVAL).
    #[arg(long)]
    pub eval_interval: Option<String>,
    /// Print the resolved configuration (secrets redacted) and exit.
    #[arg(long)]
    pub print_config: bool,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The file to profile (.csv, .jsonl, .parquet) or a profile file.
    pub path: PathBuf,
    /// The driftd server, e.g. http://driftd:8471.
    #[arg(long, env = "DRIFTD_URL", hide_env_values = true)]
    pub url: String,
    /// driftd's API token, sent as `Authorization: Bearer …` (DRIFTD_TOKEN; prefer the
    /// variable: a flag shows in the process list).
    #[arg(long, env = "DRIFTD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM file of the certificate authorities to trust for an https URL, e.g. a private CA
    /// (DRIFTD_CA_CERT) [default: the public web roots].
    #[arg(long, env = "DRIFTD_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// The dataset the profile belongs to.
    #[arg(long)]
    pub dataset: String,
    /// offline (a pipeline run) or online.
    #[arg(long, default_value = "offline", value_parser = parse_stage)]
    pub stage: Stage,
    /// The run [default: the dataset and a hash of the file, so a retried step of the same
    /// data is the same run].
    #[arg(long)]
    pub run_id: Option<String>,
    /// When the run ran, for ordering and seasonality: RFC 3339 in UTC or seconds since the
    /// epoch [default: when driftd first hears of the run].
    #[arg(long)]
    pub run_time: Option<String>,
    /// A label (key=value) of the run; repeatable.
    #[arg(long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// A counter of the run (name=value, e.g. rows_read=1200); repeatable.
    #[arg(long = "counter", value_parser = parse_counter)]
    pub counters: Vec<(String, f64)>,
    /// Attempts per request before giving up, the first included.
    #[arg(long, default_value_t = 5)]
    pub attempts: u32,
    /// Timeout of each request, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
}

fn parse_counter(s: &str) -> Result<(String, f64), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("counter {s:?} is not name=value"))?;
    if !crate::names::valid_counter_name(name) {
        return Err(format!(
            "counter name {name:?} must match [a-zA-Z_][a-zA-Z0-9_]*"
        ));
    }
    match value.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok((name.to_owned(), x)),
        _ => Err(format!(
            "counter {name}: {value:?} is not a non-negative number"
        )),
    }
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The reference: a data file or a profile file (typically the training data).
    pub reference: PathBuf,
    /// The data to judge: a data file or a profile file (typically serving traffic).
    pub current: PathBuf,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
    /// A rule file, or a directory of them (*.yaml, *.yml).
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Dataset name for data files (rules are looked up under it)
    /// [default: the current side's profile name, else the current file's name].
    #[arg(long)]
    pub dataset: Option<String>,
    /// Also join both sides' rows on this id column and compare them value by value
    /// (training/serving skew); each side a data file or a profile file with sampled rows.
    #[arg(long, value_name = "ID")]
    pub join_on: Option<String>,
    /// Cut the table's lines to N columns; 0 keeps them whole [default: the terminal's width
    /// (COLUMNS, else the terminal's size) when stdout is a terminal, whole lines otherwise;
    /// COLUMNS, when set, also applies to pipes].
    #[arg(long, value_name = "N")]
    pub width: Option<usize>,
    #[command(flatten)]
    pub sample: skew::SampleArgs,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate rule files; every problem is printed with file, line and column.
    /// Exit status 0: valid; 1: problems found.
    Check {
        /// A rule file or a directory of them.
        path: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// The file to profile: .csv, .jsonl/.ndjson/.json (JSON Lines), .parquet, or a profile file.
    pub path: PathBuf,
    /// Dataset name [default: the file name without its extension].
    #[arg(long)]
    pub dataset: Option<String>,
    /// Where the data comes from.
    #[arg(long, default_value = "offline", value_parser = parse_stage)]
    pub stage: Stage,
    /// Write the profile file here, for later comparison or upload.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
    /// A label (key=value) stored with the profile; repeatable.
    #[arg(long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Most features profiled; values of further features are counted and ignored.
    #[arg(long, default_value_t = Limits::default().max_features)]
    pub max_features: usize,
    /// Keep hash-sampled rows keyed by this id column in the profile file, for
    /// `driftd compare --join-on`.
    #[arg(long, value_name = "ID")]
    pub id_column: Option<String>,
    /// Cut the table's lines to N columns; 0 keeps them whole [default: the terminal's width
    /// (COLUMNS, else the terminal's size) when stdout is a terminal, whole lines otherwise;
    /// COLUMNS, when set, also applies to pipes].
    #[arg(long, value_name = "N")]
    pub width: Option<usize>,
    #[command(flatten)]
    pub sample: skew::SampleArgs,
}

fn parse_stage(s: &str) -> Result<Stage, String> {
    s.parse()
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("label {s:?} is not key=value"))?;
    if k.is_empty() {
        return Err(format!("label {s:?} has an empty key"));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// Runs a parsed command line. `Ok` carries the exit status; errors exit with 2.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Profile(args) => profile(args),
        Command::Compare(args) => compare(args),
        Command::Rules(RulesCommand::Check { path }) => rules_check(&path),
        Command::Push(args) => push(args),
        Command::Report(args) => report_page::report(args),
        Command::Serve(args) => serve(args),
    }
}

fn push(args: PushArgs) -> anyhow::Result<ExitCode> {
    let dataset: DatasetName = args.dataset.parse()?;
    let stage = args.stage;
    let progress = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    // Loaded before the digest below, so a file that cannot be read is refused the way
    // `driftd profile` refuses it.
    let (mut profile, problems) = load(&args.path, &dataset, stage, Limits::default(), &progress)?;
    let run_id = match (&args.run_id, stage) {
        (Some(id), _) => Some(id.clone()),
        (None, Stage::Offline) => Some(format!("{}-{}", dataset, &file_digest(&args.path)?[..12])),
        (None, Stage::Online) => None,
    };
    profile.labels.extend(args.labels.iter().cloned());
    if let Some(problems) = &problems {
        report_problems(problems);
    }
    let upload = crate::push::Upload {
        url: args.url.clone(),
        token: args.token.clone().map(crate::secret::Secret::new),
        ca_cert: args.ca_cert.clone(),
        dataset,
        stage: stage.as_str(),
        run_id,
        run_time: args.run_time.clone(),
        labels: args.labels.clone(),
        counters: args.counters.clone(),
        attempts: args.attempts,
        timeout: std::time::Duration::from_secs(args.timeout.max(1)),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let summary = runtime.block_on(crate::push::push(&upload, file::encode(&profile)))?;
    println!("{summary}");
    Ok(ExitCode::SUCCESS)
}

/// SHA-256 of a file, in hex.
fn file_digest(path: &Path) -> anyhow::Result<String> {
    use sha2::{Digest, Sha256};
    let mut file =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn profile(args: ProfileArgs) -> anyhow::Result<ExitCode> {
    let dataset = match &args.dataset {
        Some(name) => name.parse()?,
        None => DatasetName::from_path(&args.path),
    };
    let limits = Limits {
        max_features: args.max_features,
        ..Limits::default()
    };
    let progress = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let (mut profile, problems, sample) = match &args.id_column {
        Some(id) => {
            let policy = args.sample.policy()?;
            let (profile, problems, sample) = skew::load_sampled(
                &args.path,
                dataset.as_str(),
                args.stage,
                limits,
                id,
                policy,
                &progress,
            )?;
            (profile, problems, Some(sample))
        }
        None => {
            let (profile, problems) = load(&args.path, &dataset, args.stage, limits, &progress)?;
            (profile, problems, None)
        }
    };
    profile.labels.extend(args.labels.iter().cloned());

    if let Some(out) = &args.out {
        write_profile(out, &profile, sample.as_ref())?;
    }
    let problems = problems.unwrap_or_default();
    if args.json {
        let mut doc = serde_json::to_value(report::document(&profile, Some(&problems)))?;
        if let Some(sample) = &sample {
            doc["sample"] = skew::sample_document(sample);
        }
        print_json(&doc)?;
    } else {
        let columns = table_width(args.width);
        let mut text = report::table(&profile, columns);
        if let Some(sample) = &sample {
            text += &crate::format::fit(&skew::sample_line(sample), columns);
        }
        print_text(&text)?;
    }
    if !args.json {
        report_problems(&problems);
    }
    Ok(ExitCode::SUCCESS)
}

fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    if let Some(id) = &args.join_on {
        return skew::compare(&args, id);
    }
    let Judged {
        report, problems, ..
    } = judge(&args)?;
    if args.json {
        print_json(&report)?;
    } else {
        print_text(&report::compare_table(&report, table_width(args.width)))?;
    }
    if let Some(problems) = problems
        && !args.json
    {
        report_problems(&problems);
    }
    Ok(if report.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Both sides of a comparison and its verdicts.
struct Judged {
    reference: DatasetProfile,
    current: DatasetProfile,
    /// The current side's unreadable records, when it is a data file.
    problems: Option<Problems>,
    report: detect::DriftReport,
}

/// Loads both sides (at once: decoding or profiling one does not wait for the other) and
/// judges the current one against the reference under the rules.
fn judge(args: &CompareArgs) -> anyhow::Result<Judged> {
    let dataset: Option<DatasetName> = args.dataset.as_deref().map(str::parse).transpose()?;
    let rules = match &args.rules {
        Some(path) => load_rules(path)?,
        None => RuleSet::default(),
    };
    let name_of = |path: &Path| {
        dataset
            .clone()
            .unwrap_or_else(|| DatasetName::from_path(path))
    };
    let limits = Limits::default();
    let progress = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let (reference, current) = std::thread::scope(|scope| {
        let reference = scope.spawn(|| {
            load(
                &args.reference,
                &name_of(&args.reference),
                Stage::Offline,
                limits,
                &progress,
            )
            .map_err(|e| side_error("reference", &args.reference, e))
        });
        let current = load(
            &args.current,
            &name_of(&args.current),
            Stage::Online,
            limits,
            &progress,
        )
        .map_err(|e| side_error("current", &args.current, e));
        (reference.join().expect("loading does not panic"), current)
    });
    let (reference, _) = reference?;
    let (current, problems) = current?;
    let rules = rules.for_dataset(&current.dataset);
    let report = detect::compare(&reference, &current, &rules);
    Ok(Judged {
        reference,
        current,
        problems,
        report,
    })
}

/// An error loading one side of a comparison, its role in front: "reference train.csv: cannot
/// open: …". Loading errors start with the file's name already; it is not repeated.
fn side_error(role: &str, path: &Path, error: anyhow::Error) -> anyhow::Error {
    let shown = path.display().to_string();
    let message = format!("{error:#}");
    if message.starts_with(&format!("{shown}: ")) {
        anyhow::anyhow!("{role} {message}")
    } else {
        anyhow::anyhow!("{role} {shown}: {message}")
    }
}

/// Resolves the configuration layers; every problem is reported at once.
fn serve_config(args: &ServeArgs) -> anyhow::Result<ServeConfig> {
    let mut layers = Vec::new();
    let mut errors = Vec::new();
    if let Some(path) = &args.config {
        let (layer, mut problems) = Layer::from_file(path);
        layers.push((Source::File(path.clone()), layer));
        errors.append(&mut problems);
    }
    let (env, unknown) = Layer::from_env(
        std::env::vars().filter(|(k, _)| !crate::telemetry::VARIABLES.contains(&k.as_str())),
    );
    for name in unknown {
        tracing::warn!(variable = %name, "Unknown DRIFTD_ environment variable ignored");
    }
    layers.push((Source::Environment, env));
    layers.push((
        Source::Flags,
        Layer {
            listen: args.listen.clone(),
            database_url: args.database.clone(),
            rules: args.rules.clone(),
            window: args.window.clone(),
            eval_interval: args.eval_interval.clone(),
            ..Layer::default()
        },
    ));
    match config::resolve(layers) {
        Ok(c) if errors.is_empty() => Ok(c),
        Ok(_) => Err(config_errors(&errors)),
        Err(mut more) => {
            errors.append(&mut more);
            Err(config_errors(&errors))
        }
    }
}

fn config_errors(errors: &[config::ConfigError]) -> anyhow::Error {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    anyhow::anyhow!("invalid configuration:\n  {}", lines.join("\n  "))
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // Held until the runtime below is gone: finishing it sends the spans still queued, within
    // what is left of the shutdown's grace.
    let telemetry = crate::telemetry::init()?;
    let config = serve_config(&args)?;
    if args.print_config {
        print!("{}", config.to_yaml());
        return Ok(ExitCode::SUCCESS);
    }
    let grace = config.shutdown_grace;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // When the signal came: the runtime's end and span export get what is left of the grace.
    let signalled = std::sync::Arc::new(std::sync::OnceLock::new());
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let probes = match config.metrics_listen {
            Some(address) => Some(
                tokio::net::TcpListener::bind(address)
                    .await
                    .with_context(|| format!("cannot listen on {address} (metrics_listen)"))?,
            ),
            None => None,
        };
        let listeners = crate::serve::Listeners {
            api: listener,
            probes,
        };
        let signal = {
            let signalled = signalled.clone();
            async move {
                shutdown_signal().await;
                let _ = signalled.set(std::time::Instant::now());
            }
        };
        crate::serve::run(listeners, config, signal).await
    });
    // As for the server's own tasks, the last twentieth of the grace is for exiting.
    let left = signalled.get().map_or(grace, |at: &std::time::Instant| {
        (*at + grace * 19 / 20).saturating_duration_since(std::time::Instant::now())
    });
    // Tasks still running (a request on a database that hangs) are dropped, not waited for.
    runtime.shutdown_timeout(left.min(std::time::Duration::from_millis(500)));
    telemetry.finish_within(left);
    served?;
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM (what Kubernetes sends) or SIGINT.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn load_rules(path: &Path) -> anyhow::Result<RuleSet> {
    RuleSet::load(path).map_err(|errors| {
        let lines = crate::rules::report(&errors);
        anyhow::anyhow!("invalid rules:\n  {}", lines.join("\n  "))
    })
}

fn rules_check(path: &Path) -> anyhow::Result<ExitCode> {
    if !path.exists() {
        bail!("{}: no such file or directory", path.display());
    }
    match RuleSet::load(path) {
        Ok(set) => {
            println!(
                "{}: {} {} valid; datasets: {}",
                path.display(),
                set.files(),
                plural(set.files(), "rule file", "rule files"),
                set.datasets().join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for line in crate::rules::report(&errors) {
                eprintln!("{line}");
            }
            eprintln!(
                "driftd: {} {} in rule files",
                errors.len(),
                plural(errors.len(), "problem", "problems")
            );
            Ok(ExitCode::from(1))
        }
    }
}

/// A profile from a profile file (recognised by its magic bytes) or from a data file.
/// Problems are `None` for a profile file.
pub fn load(
    path: &Path,
    dataset: &DatasetName,
    stage: Stage,
    limits: Limits,
    progress: &MultiProgress,
) -> anyhow::Result<(DatasetProfile, Option<Problems>)> {
    if is_profile_file(path) {
        let f = std::fs::File::open(path)
            .with_context(|| format!("{}: cannot open", path.display()))?;
        let profile = file::decode(std::io::BufReader::new(f))
            .with_context(|| format!("{}", path.display()))?;
        return Ok((profile, None));
    }
    let mut profiler = Profiler::new(dataset.as_str(), stage, limits);
    let bar = progress_bar(path, progress);
    let result = ingest::read_file(path, &mut profiler, &bar);
    bar.finish_and_clear();
    result?;
    let (profile, problems) = profiler.finish();
    Ok((profile, Some(problems)))
}

fn is_profile_file(path: &Path) -> bool {
    let mut magic = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok_and(|()| magic == file::MAGIC)
}

/// A progress bar on stderr for files big enough to take a while, only on a terminal.
fn progress_bar(path: &Path, progress: &MultiProgress) -> ProgressBar {
    const SHOW_FROM_BYTES: u64 = 32 << 20;
    let big = std::fs::metadata(path).is_ok_and(|m| m.len() >= SHOW_FROM_BYTES);
    if !big || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    // Styled and named before it joins the display, so it never draws with the default style.
    let style = ProgressStyle::with_template(
        "{spinner} profiling {msg} [{bar:40}] {percent:>3}% {elapsed} (eta {eta})",
    )
    .expect("valid template")
    .progress_chars("=> ");
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let bar = ProgressBar::new(0)
        .with_style(style)
        .with_message(crate::format::printable(&name, 30));
    progress.add(bar)
}

/// Writes the profile file next to its destination, then renames it into place, so a reader
/// never sees half a file.
fn write_profile(
    out: &Path,
    profile: &DatasetProfile,
    sample: Option<&crate::profile::Sample>,
) -> anyhow::Result<()> {
    let bytes = file::encode_with_sample(profile, sample);
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp =
        tempfile_in(dir).with_context(|| format!("cannot write profile to {}", out.display()))?;
    tmp.1
        .write_all(&bytes)
        .and_then(|()| tmp.1.sync_all())
        .and_then(|()| std::fs::rename(&tmp.0, out))
        .with_context(|| format!("cannot write profile to {}", out.display()))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp.0);
        })
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let path = dir.join(format!(".driftd-profile-{}.tmp", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((path, file))
}

fn report_problems(problems: &Problems) {
    if problems.samples.is_empty() && problems.rejected_rows == 0 && problems.ignored_values == 0 {
        return;
    }
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "driftd: {} {} rejected, {} {} ignored",
        problems.rejected_rows,
        plural(problems.rejected_rows, "row", "rows"),
        problems.ignored_values,
        plural(problems.ignored_values, "value", "values"),
    );
    for line in report::problem_lines(problems) {
        let _ = writeln!(err, "  {}", crate::format::printable(&line, 400));
    }
}

/// The columns tables are cut to: `--width` (0: none), else COLUMNS, else the terminal's
/// width when stdout is one; `None` (whole lines) for pipes and files.
fn table_width(flag: Option<usize>) -> Option<usize> {
    if let Some(columns) = flag {
        return (columns > 0).then_some(columns);
    }
    let from_env = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&c| c > 0);
    if from_env.is_some() {
        return from_env;
    }
    let stdout = console::Term::stdout();
    if !stdout.is_term() {
        return None;
    }
    Some(
        stdout
            .size_checked()
            .map_or(100, |(_, columns)| usize::from(columns)),
    )
}

fn print_json(doc: &impl serde::Serialize) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let printed = serde_json::to_writer_pretty(&mut stdout, doc)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(stdout));
    ignore_broken_pipe(printed)
}

fn print_text(text: &str) -> std::io::Result<()> {
    ignore_broken_pipe(std::io::stdout().lock().write_all(text.as_bytes()))
}

/// `driftd profile x | head` closes the pipe early; that is not an error.
fn ignore_broken_pipe(result: std::io::Result<()>) -> std::io::Result<()> {
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
