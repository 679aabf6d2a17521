//! SIGTERM during a database outage: the real `driftd serve` binary ends within
//! `shutdown_grace`, says in one log line what it could not write, and exits non-zero — for a
//! PostgreSQL that refuses (stopped), one that hangs (SIGSTOP), and SQLite on a full disk.

use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::full_disk::TinyDisk;
use crate::pg_cluster::ThrowawayPg;
use crate::serve::{drifted_records, spawn_binary};

const GRACE: Duration = Duration::from_secs(5);
/// Process teardown on a busy machine.
const SLACK: Duration = Duration::from_secs(1);

/// Starts the binary on `url` (nothing flushed before shutdown), posts 250 records, breaks the
/// database, sends SIGTERM, runs `meanwhile`, and returns how the process ended, how long after
/// the signal, and its logs.
async fn sigterm_in_an_outage(
    name: &str,
    url: &str,
    break_it: impl FnOnce(),
    meanwhile: impl FnOnce(),
) -> (std::process::ExitStatus, Duration, String) {
    let (mut child, base) = spawn_binary(
        url,
        &[
            ("DRIFTD_SHUTDOWN_GRACE", "5s"),
            ("DRIFTD_WINDOW", "1h"),
            ("DRIFTD_ROLLUP", "2h"),
            ("DRIFTD_FLUSH_INTERVAL", "1h"),
            ("DRIFTD_DATABASE_CONNECT_TIMEOUT", "1s"),
            ("DRIFTD_DATABASE_RETRY_MAX", "1s"),
        ],
        std::process::Stdio::piped(),
    )
    .await;
    let stderr = child.stderr.take().unwrap();
    let logs = tokio::spawn(async move {
        let mut text = String::new();
        let mut stderr = stderr;
        tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text)
            .await
            .unwrap();
        text
    });
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/v1/datasets/t/records"))
        .json(&json!({"records": drifted_records(250)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{name}");
    // Folded into the open window before the database goes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    break_it();

    let pid = child.id().unwrap().to_string();
    let signalled = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    meanwhile();
    let status = tokio::time::timeout(GRACE + Duration::from_secs(10), child.wait())
        .await
        .unwrap_or_else(|_| panic!("{name}: still running 15 s after SIGTERM"))
        .unwrap();
    let took = signalled.elapsed();
    let logs = logs.await.unwrap();
    eprintln!("{name}: exited {:?} {took:?} after SIGTERM", status.code());
    assert!(took <= GRACE + SLACK, "{name}: {took:?}\n{logs}");
    assert!(!logs.contains("hunter2secret"), "{name}: {logs}");
    (status, took, logs)
}

/// The exit of a shutdown that could not write: non-zero, one line naming the loss.
async fn loses_and_says_so(name: &str, url: &str, break_it: impl FnOnce(), reason: &str) {
    let (status, _, logs) = sigterm_in_an_outage(name, url, break_it, || {}).await;
    assert_eq!(status.code(), Some(2), "{name}: {logs}");
    let lines: Vec<Json> = logs
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|e: &Json| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Shutdown could not write to the database"))
        })
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{name}: one line says what was lost:\n{logs}"
    );
    let lost = &lines[0];
    eprintln!("{name}: {lost}");
    assert_eq!(lost["level"], "ERROR");
    assert_eq!(lost["datasets"], "t", "{lost}");
    assert_eq!(lost["windows"], 1, "{lost}");
    assert_eq!(lost["runs"], 0, "{lost}");
    assert_eq!(lost["records"], 250, "{lost}");
    assert_eq!(lost["reason"], reason, "{lost}");
    assert_eq!(
        lost["message"],
        "Shutdown could not write to the database: lost 250 records in 1 window and 0 runs of \
         dataset t",
    );
    assert!(
        logs.contains(&format!(
            "driftd: error: shutdown could not write to the database ({reason}): lost 250 records"
        )),
        "{name}: {logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_postgres_refuses_ends_in_time_and_names_the_loss() {
    let Some(pg) = ThrowawayPg::start() else {
        return;
    };
    let url = pg.url("driftd:hunter2secret");
    loses_and_says_so("postgres stopped", &url, || pg.stop(), "connection refused").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_postgres_hangs_ends_in_time_and_names_the_loss() {
    let Some(pg) = ThrowawayPg::start() else {
        return;
    };
    let url = pg.url("driftd:hunter2secret");
    loses_and_says_so(
        "postgres paused",
        &url,
        || pg.pause(),
        "no answer within 1s",
    )
    .await;
}

/// A server that answers but refuses writes (a standby after a failover, or read-only by
/// configuration): the open windows cannot be written either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_postgres_is_read_only_ends_in_time_and_names_the_loss() {
    let Some(pg) = ThrowawayPg::start() else {
        return;
    };
    let url = pg.url("driftd:hunter2secret");
    loses_and_says_so("postgres read-only", &url, || pg.read_only(), "read-only").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_on_a_full_sqlite_disk_ends_in_time_and_names_the_loss() {
    let Some(disk) = TinyDisk::mount(1024) else {
        return;
    };
    let url = format!("sqlite://{}", disk.path().join("driftd.db").display());
    loses_and_says_so("sqlite disk full", &url, || disk.fill(), "disk full").await;
}

/// A database back within the grace period gets the windows after all: the last writes are
/// retried until the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_postgres_is_briefly_down_writes_once_it_is_back() {
    let Some(pg) = ThrowawayPg::start() else {
        return;
    };
    let url = pg.url("driftd:hunter2secret");
    let back = || {
        std::thread::sleep(Duration::from_secs(1));
        pg.start_again();
    };
    let (status, took, logs) =
        sigterm_in_an_outage("postgres back", &url, || pg.stop(), back).await;
    assert_eq!(status.code(), Some(0), "{logs}");
    assert!(took < GRACE, "{took:?}");
    assert!(
        logs.contains("\"message\":\"Open windows flushed\",\"windows\":1"),
        "{logs}"
    );
    let store = driftd::store::Store::connect(&driftd::config::Secret::new(&url))
        .await
        .unwrap();
    let stored = store.recent_windows("t", 0).await.unwrap().unwrap();
    assert_eq!(stored.rows, 250);
    store.close().await;
}

/// Span export takes its share of the one deadline too: with a collector that never answers,
/// driftd still exits within the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn span_export_to_a_dead_collector_ends_within_the_grace_period() {
    // Bound and listening, never accepting: exports hang until their own 10 s timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let dir = tempfile::TempDir::new().unwrap();
    let url = format!("sqlite://{}", dir.path().join("driftd.db").display());
    let (mut child, base) = spawn_binary(
        &url,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
            ("DRIFTD_SHUTDOWN_GRACE", "2s"),
        ],
        std::process::Stdio::null(),
    )
    .await;
    let client = reqwest::Client::new();
    for _ in 0..5 {
        let r = client
            .post(format!("{base}/v1/datasets/t/records"))
            .json(&json!({"records": drifted_records(10)}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    // The batch processor is now stuck on an export that gets no answer.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = child.id().unwrap().to_string();
    let signalled = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exits")
        .unwrap();
    let took = signalled.elapsed();
    eprintln!(
        "dead collector: exited {:?} {took:?} after SIGTERM",
        status.code()
    );
    assert_eq!(status.code(), Some(0));
    assert!(took <= Duration::from_secs(2) + SLACK, "{took:?}");
    drop(silent);
}
