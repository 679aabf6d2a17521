//! A load generator for `driftd serve`: posts JSON record batches to
//! `POST /v1/datasets/{dataset}/records?stage=online` and reports throughput and latency.
//!
//! ```text
//! cargo run --release --example load_serve -- --url http://127.0.0.1:PORT --dataset NAME \
//!     --batch N --features F --duration SECS [--concurrency C] [--rate BATCHES_PER_SEC] \
//!     [--warmup SECS] [--threads T] [--bodies K] [--seed S]
//! ```
//!
//! A handful of request bodies (`--bodies`, default 8) are generated before the clock starts,
//! so generating JSON is not measured. Each record has F features named `f000_num`,
//! `f001_int`, `f002_cat`, `f003_bool`, `f004_wide`, `f005_num`, …: normal and lognormal
//! numbers, small integers, strings of small cardinality (5 to 50 values), booleans, and
//! about 2 % nulls (JSON `null`).
//!
//! Two modes:
//! - closed loop (default): `--concurrency` workers (default 4), each sending its next batch
//!   as soon as the previous one is answered. Measures throughput.
//! - open loop (`--rate R`): a batch is started every 1/R s whatever the server does, so a slow
//!   server cannot slow the load down. Latency is counted from the moment a batch was due, not
//!   from when it was sent, so queueing in the client is charged to the server (no coordinated
//!   omission). At most 1,024 batches are in flight; a batch due beyond that is counted as
//!   "skipped", not sent.
//!
//! A 429 is counted and not retried; a closed-loop worker that gets one waits 5 ms before its
//! next batch. Requests time out after 10 s. The run stops after `--duration` (at most 60 s);
//! batches already in flight are awaited. With `--warmup W` the first W seconds of load are
//! sent but not counted.
//!
//! Latency percentiles cover the batches answered 202 (a 429 is fast and would flatter them).
//!
//! Accepted is not profiled: driftd answers 202 once a batch is queued. After the load, the
//! generator polls `driftd_ingest_queue_depth` on `{url}/metrics` every 10 ms (at most 60 s)
//! until the queue is empty, and reports "records/s e2e": every accepted record divided by
//! the time from the start of the load until then. When the queue stays short the two rates
//! agree; when it fills, e2e is the rate driftd really profiles at.
//!
//! Output: a human-readable report, then one `RESULT key=value …` line for scripts.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, Normal};
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

const MAX_DURATION_SECS: f64 = 60.0;
const MAX_IN_FLIGHT: usize = 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const BUSY_BACKOFF: Duration = Duration::from_millis(5);
const NULL_FRACTION: f64 = 0.02;

const USAGE: &str = "usage: load_serve --url http://127.0.0.1:PORT --dataset NAME --batch N \
--features F --duration SECS [--concurrency C] [--rate BATCHES_PER_SEC] [--warmup SECS] \
[--threads T] [--bodies K] [--seed S]";

#[derive(Debug, Clone)]
struct Args {
    url: String,
    dataset: String,
    batch: usize,
    features: usize,
    duration: f64,
    concurrency: usize,
    rate: Option<f64>,
    warmup: f64,
    threads: usize,
    bodies: usize,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: String::new(),
        dataset: String::new(),
        batch: 0,
        features: 0,
        duration: 0.0,
        concurrency: 4,
        rate: None,
        warmup: 0.0,
        threads: 1,
        bodies: 8,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.into());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |what: &str| format!("{flag}: expected {what}, got {value:?}");
        match flag.as_str() {
            "--url" => args.url = value.trim_end_matches('/').to_owned(),
            "--dataset" => args.dataset = value,
            "--batch" => args.batch = value.parse().map_err(|_| bad("a count"))?,
            "--features" => args.features = value.parse().map_err(|_| bad("a count"))?,
            "--duration" => args.duration = value.parse().map_err(|_| bad("seconds"))?,
            "--concurrency" => args.concurrency = value.parse().map_err(|_| bad("a count"))?,
            "--rate" => args.rate = Some(value.parse().map_err(|_| bad("batches per second"))?),
            "--warmup" => args.warmup = value.parse().map_err(|_| bad("seconds"))?,
            "--threads" => args.threads = value.parse().map_err(|_| bad("a count"))?,
            "--bodies" => args.bodies = value.parse().map_err(|_| bad("a count"))?,
            "--seed" => args.seed = value.parse().map_err(|_| bad("an integer"))?,
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if args.url.is_empty() || args.dataset.is_empty() {
        return Err(format!("--url and --dataset are required\n{USAGE}"));
    }
    if args.batch == 0 || args.features == 0 {
        return Err(format!(
            "--batch and --features must be at least 1\n{USAGE}"
        ));
    }
    if !(args.duration > 0.0 && args.duration <= MAX_DURATION_SECS) {
        return Err(format!(
            "--duration must be more than 0 and at most {MAX_DURATION_SECS} s"
        ));
    }
    if !(args.warmup >= 0.0 && args.warmup < args.duration) {
        return Err("--warmup must be at least 0 and less than --duration".into());
    }
    if args.concurrency == 0 || args.concurrency > MAX_IN_FLIGHT {
        return Err(format!("--concurrency must be 1 to {MAX_IN_FLIGHT}"));
    }
    if let Some(rate) = args.rate
        && !(rate > 0.0 && rate <= 100_000.0)
    {
        return Err("--rate must be more than 0 and at most 100000".into());
    }
    if args.threads == 0 || args.threads > 64 || args.bodies == 0 || args.bodies > 64 {
        return Err("--threads and --bodies must be 1 to 64".into());
    }
    Ok(args)
}

/// How one feature's values are drawn, chosen by its position.
enum Column {
    Normal(Normal<f64>),
    LogNormal(LogNormal<f64>),
    Int(u32),
    Category(Vec<String>),
    Bool(f64),
}

impl Column {
    fn of(i: usize) -> (String, Column) {
        match i % 5 {
            0 => (
                format!("f{i:03}_num"),
                Column::Normal(Normal::new(i as f64, 1.0 + i as f64 / 10.0).expect("valid")),
            ),
            1 => (format!("f{i:03}_int"), Column::Int(10 + 7 * i as u32)),
            2 => {
                let cardinality = [5, 12, 50][i / 5 % 3];
                let values = (0..cardinality).map(|v| format!("c{i}_{v}")).collect();
                (format!("f{i:03}_cat"), Column::Category(values))
            }
            3 => (format!("f{i:03}_bool"), Column::Bool(0.3)),
            _ => (
                format!("f{i:03}_wide"),
                Column::LogNormal(LogNormal::new(3.0, 0.8).expect("valid")),
            ),
        }
    }

    fn draw(&self, rng: &mut StdRng) -> Value {
        if rng.random_bool(NULL_FRACTION) {
            return Value::Null;
        }
        match self {
            // Rounded to 4 decimals: realistic payload sizes rather than 17-digit floats.
            Column::Normal(d) => json!((d.sample(rng) * 1e4).round() / 1e4),
            Column::LogNormal(d) => json!((d.sample(rng) * 100.0).round() / 100.0),
            Column::Int(n) => json!(rng.random_range(0..*n)),
            Column::Category(values) => {
                // Skewed: low indices are more frequent.
                let u: f64 = rng.random();
                json!(values[((u * u) * values.len() as f64) as usize])
            }
            Column::Bool(p) => json!(rng.random_bool(*p)),
        }
    }
}

fn make_bodies(args: &Args) -> Vec<&'static [u8]> {
    let columns: Vec<(String, Column)> = (0..args.features).map(Column::of).collect();
    let mut rng = StdRng::seed_from_u64(args.seed);
    (0..args.bodies)
        .map(|_| {
            let records: Vec<Value> = (0..args.batch)
                .map(|_| {
                    let record: Map<String, Value> = columns
                        .iter()
                        .map(|(name, column)| (name.clone(), column.draw(&mut rng)))
                        .collect();
                    Value::Object(record)
                })
                .collect();
            let body = serde_json::to_vec(&json!({ "records": records })).expect("serialisable");
            // Leaked once, so every request borrows it without copying.
            &*Box::leak(body.into_boxed_slice())
        })
        .collect()
}

/// Counters shared by every sender.
#[derive(Default)]
struct Stats {
    sent: AtomicU64,
    ok: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
    busy: AtomicU64,
    other_status: AtomicU64,
    errors: AtomicU64,
    skipped: AtomicU64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Busy,
    Failed,
}

/// Sends one batch and classifies the answer.
async fn send(client: &reqwest::Client, url: &str, body: &'static [u8], stats: &Stats) -> Outcome {
    stats.sent.fetch_add(1, Ordering::Relaxed);
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            if stats.errors.fetch_add(1, Ordering::Relaxed) < 3 {
                eprintln!("load_serve: request failed: {e}");
            }
            return Outcome::Failed;
        }
    };
    let status = response.status();
    let bytes = match response.bytes().await {
        Ok(b) => b,
        Err(e) => {
            if stats.errors.fetch_add(1, Ordering::Relaxed) < 3 {
                eprintln!("load_serve: reading a response failed: {e}");
            }
            return Outcome::Failed;
        }
    };
    match status.as_u16() {
        202 => {
            let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let count = |key: &str| answer.get(key).and_then(Value::as_u64).unwrap_or(0);
            stats.ok.fetch_add(1, Ordering::Relaxed);
            stats
                .accepted
                .fetch_add(count("accepted"), Ordering::Relaxed);
            stats
                .rejected
                .fetch_add(count("rejected"), Ordering::Relaxed);
            Outcome::Ok
        }
        429 => {
            stats.busy.fetch_add(1, Ordering::Relaxed);
            Outcome::Busy
        }
        _ => {
            if stats.other_status.fetch_add(1, Ordering::Relaxed) < 3 {
                eprintln!(
                    "load_serve: HTTP {status}: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                );
            }
            Outcome::Failed
        }
    }
}

/// Latencies in microseconds of the counted batches, and when the last one was answered.
struct Run {
    latencies_us: Vec<u64>,
    measured: Duration,
}

async fn closed_loop(
    args: &Args,
    client: reqwest::Client,
    url: Arc<str>,
    bodies: Arc<Vec<&'static [u8]>>,
    stats: Arc<Stats>,
) -> Run {
    let start = Instant::now();
    let counted_from = start + Duration::from_secs_f64(args.warmup);
    let deadline = start + Duration::from_secs_f64(args.duration);
    let mut workers = Vec::new();
    for w in 0..args.concurrency {
        let (client, url, bodies, stats) =
            (client.clone(), url.clone(), bodies.clone(), stats.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = w;
            loop {
                let sent_at = Instant::now();
                if sent_at >= deadline {
                    break;
                }
                let outcome = send(&client, &url, bodies[i % bodies.len()], &stats).await;
                i += 1;
                if sent_at >= counted_from && outcome == Outcome::Ok {
                    latencies.push(sent_at.elapsed().as_micros() as u64);
                }
                if outcome != Outcome::Ok {
                    tokio::time::sleep(BUSY_BACKOFF).await;
                }
            }
            latencies
        }));
    }
    let mut latencies_us = Vec::new();
    for worker in workers {
        latencies_us.extend(worker.await.expect("worker panicked"));
    }
    Run {
        latencies_us,
        measured: counted_from.elapsed(),
    }
}

async fn open_loop(
    args: &Args,
    rate: f64,
    client: reqwest::Client,
    url: Arc<str>,
    bodies: Arc<Vec<&'static [u8]>>,
    stats: Arc<Stats>,
) -> Run {
    let start = tokio::time::Instant::now();
    let counted_from = start + Duration::from_secs_f64(args.warmup);
    let total = (args.duration * rate).floor() as u64;
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    let mut latencies_us = Vec::new();
    for n in 0..total {
        // Each batch has its due time; latency counts from it.
        let due = start + Duration::from_secs_f64(n as f64 / rate);
        tokio::time::sleep_until(due).await;
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            stats.skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let (client, url, stats) = (client.clone(), url.clone(), stats.clone());
        let body = bodies[n as usize % bodies.len()];
        let counted = due >= counted_from;
        tasks.spawn(async move {
            let outcome = send(&client, &url, body, &stats).await;
            drop(permit);
            (counted && outcome == Outcome::Ok).then(|| due.elapsed().as_micros() as u64)
        });
        // Reap finished tasks as we go so the set stays small.
        while let Some(done) = tasks.try_join_next() {
            latencies_us.extend(done.expect("sender panicked"));
        }
    }
    while let Some(done) = tasks.join_next().await {
        latencies_us.extend(done.expect("sender panicked"));
    }
    Run {
        latencies_us,
        measured: counted_from.elapsed(),
    }
}

const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// driftd's `driftd_ingest_queue_depth` gauge (batches waiting to be profiled).
async fn queue_depth(client: &reqwest::Client, base: &str) -> Option<u64> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("driftd_ingest_queue_depth "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

/// When the queue was first seen empty, polling every 10 ms for at most `DRAIN_LIMIT`.
async fn wait_drained(client: &reqwest::Client, base: &str) -> Option<Instant> {
    let limit = Instant::now() + DRAIN_LIMIT;
    while Instant::now() < limit {
        if queue_depth(client, base).await? == 0 {
            return Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match args.threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    }
    .expect("tokio runtime");
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let generated = Instant::now();
    let bodies = make_bodies(&args);
    let mean_body = bodies.iter().map(|b| b.len()).sum::<usize>() / bodies.len();
    println!(
        "load_serve: {} bodies of {} records x {} features, {:.1} KiB each on average (generated in {:.2} s)",
        bodies.len(),
        args.batch,
        args.features,
        mean_body as f64 / 1024.0,
        generated.elapsed().as_secs_f64()
    );
    let url: Arc<str> = format!(
        "{}/v1/datasets/{}/records?stage=online",
        args.url, args.dataset
    )
    .into();
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
        .tcp_nodelay(true)
        .build()
        .expect("HTTP client");
    let bodies = Arc::new(bodies);
    let metrics_client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("HTTP client");
    let stats = Arc::new(Stats::default());
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let mode = match args.rate {
        Some(rate) => format!(
            "open loop at {rate} batches/s ({:.0} records/s offered)",
            rate * args.batch as f64
        ),
        None => format!("closed loop, concurrency {}", args.concurrency),
    };
    println!(
        "load_serve: POST {url} for {} s ({} s warm-up), {mode}",
        args.duration, args.warmup
    );

    // Counters at the end of warm-up, to count only the measured part.
    let warm = {
        let stats = stats.clone();
        let warmup = Duration::from_secs_f64(args.warmup);
        tokio::spawn(async move {
            tokio::time::sleep(warmup).await;
            (
                stats.accepted.load(Ordering::Relaxed),
                stats.ok.load(Ordering::Relaxed),
            )
        })
    };
    let load_start = Instant::now();
    let run = match args.rate {
        Some(rate) => {
            open_loop(
                &args,
                rate,
                client,
                url.clone(),
                bodies.clone(),
                stats.clone(),
            )
            .await
        }
        None => closed_loop(&args, client, url.clone(), bodies, stats.clone()).await,
    };
    let load_end = Instant::now();
    let depth_at_end = queue_depth(&metrics_client, &args.url).await;
    let drained = match depth_at_end {
        Some(_) => wait_drained(&metrics_client, &args.url).await,
        None => None,
    };
    let end_to_end = drained
        .map(|at| load(&stats.accepted) as f64 / at.duration_since(load_start).as_secs_f64());
    let (warm_accepted, warm_ok) = if args.warmup > 0.0 {
        warm.await.expect("warm-up timer")
    } else {
        warm.abort();
        (0, 0)
    };

    let mut lat = run.latencies_us;
    lat.sort_unstable();
    let secs = run.measured.as_secs_f64().max(1e-9);
    let accepted = load(&stats.accepted) - warm_accepted;
    let ok = load(&stats.ok) - warm_ok;
    let records_per_s = accepted as f64 / secs;
    let (p50, p90, p99) = (
        percentile(&lat, 50.0),
        percentile(&lat, 90.0),
        percentile(&lat, 99.0),
    );
    let max = lat.last().map_or(f64::NAN, |&m| m as f64 / 1000.0);
    let mean = if lat.is_empty() {
        f64::NAN
    } else {
        lat.iter().sum::<u64>() as f64 / lat.len() as f64 / 1000.0
    };

    println!("batches sent      {}", load(&stats.sent));
    println!(
        "answered 202      {} ({ok} in the measured {secs:.2} s)",
        load(&stats.ok)
    );
    println!("answered 429      {}", load(&stats.busy));
    println!(
        "failed            {} (other status {}, transport {})",
        load(&stats.other_status) + load(&stats.errors),
        load(&stats.other_status),
        load(&stats.errors)
    );
    if args.rate.is_some() {
        println!(
            "skipped           {} (more than {MAX_IN_FLIGHT} in flight)",
            load(&stats.skipped)
        );
    }
    println!(
        "records accepted  {accepted} (rejected {})",
        load(&stats.rejected)
    );
    println!("records/s         {records_per_s:.0} (accepted: answered 202, maybe still queued)");
    match (depth_at_end, drained, end_to_end) {
        (Some(depth), Some(at), Some(rate)) => println!(
            "records/s e2e     {rate:.0} (every accepted record / load start to queue drained; \
             queue held {depth} batches at the end, drained {:.2} s after)",
            at.duration_since(load_end).as_secs_f64()
        ),
        (Some(depth), None, _) => println!(
            "records/s e2e     n/a (queue held {depth} batches and did not drain within {} s)",
            DRAIN_LIMIT.as_secs()
        ),
        _ => println!(
            "records/s e2e     n/a (no driftd_ingest_queue_depth in {}/metrics)",
            args.url
        ),
    }
    println!("batches/s         {:.1}", ok as f64 / secs);
    println!(
        "latency ms        p50 {p50:.3}  p90 {p90:.3}  p99 {p99:.3}  max {max:.3}  mean {mean:.3}  (n={})",
        lat.len()
    );
    let opt = |x: Option<f64>| x.map_or("nan".to_owned(), |v| format!("{v:.0}"));
    println!(
        "RESULT mode={} batch={} features={} sent={} ok={} accepted={} busy={} failed={} skipped={} seconds={secs:.3} records_per_s={records_per_s:.0} e2e_records_per_s={} queue_depth_end={} p50_ms={p50:.3} p90_ms={p90:.3} p99_ms={p99:.3} max_ms={max:.3} body_bytes={mean_body}",
        if args.rate.is_some() {
            "open"
        } else {
            "closed"
        },
        args.batch,
        args.features,
        load(&stats.sent),
        load(&stats.ok),
        accepted,
        load(&stats.busy),
        load(&stats.other_status) + load(&stats.errors),
        load(&stats.skipped),
        opt(end_to_end),
        opt(depth_at_end.map(|d| d as f64)),
    );
    if load(&stats.ok) == 0 {
        eprintln!("load_serve: no batch was accepted");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
