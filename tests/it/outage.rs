//! Database outages, answered in time and truthfully: on a PostgreSQL server of the test's own
//! (stopped, paused, unreachable at start) and on SQLite whose disk fills up. `/readyz` and the
//! reads answer 503 with the reason at once, ingest goes on into memory up to `queue_bytes` and
//! then answers 503, and when the database is back everything answered 202 is stored.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::full_disk::TinyDisk;
use crate::helpers::{TestApp, series, spawn_app, test_config};
use crate::pg_cluster::ThrowawayPg;
use crate::serve::{drifted_records, start_binary};

/// Short timeouts, and a byte budget a few batches fill.
fn outage_config(url: &str) -> driftd::config::ServeConfig {
    driftd::config::ServeConfig {
        database_connect_timeout: Duration::from_secs(1),
        database_timeout: Duration::from_secs(3),
        database_retry_max: Duration::from_millis(500),
        queue_bytes: 16 << 10,
        max_body_bytes: 8 << 10,
        ..test_config(url)
    }
}

/// Polls `probe` every 20 ms until it gives a value, for at most `limit`; the value and how
/// long it took.
async fn until<T, F: Future<Output = Option<T>>>(
    limit: Duration,
    what: &str,
    mut probe: impl FnMut() -> F,
) -> (T, Duration) {
    let started = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return (v, started.elapsed());
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Records of `dataset` in the stored windows, read with a store of the test's own.
async fn stored_rows(url: &str, dataset: &str) -> u64 {
    let store = driftd::store::Store::connect(&driftd::config::Secret::new(url))
        .await
        .unwrap();
    let rows = store
        .recent_windows(dataset, 0)
        .await
        .unwrap()
        .map_or(0, |p| p.rows);
    store.close().await;
    rows
}

async fn post_records(app: &TestApp, n: usize) -> reqwest::Response {
    app.send_json(
        reqwest::Method::POST,
        "/v1/datasets/d/records",
        &json!({"records": drifted_records(n)}),
    )
    .await
}

/// How a test breaks its database and mends it, and what driftd should say meanwhile.
struct Outage<'a> {
    name: &'a str,
    break_it: Box<dyn FnOnce() + 'a>,
    mend: Box<dyn FnOnce() + 'a>,
    /// `state` and `reason` in `/readyz`'s body (a prefix of the reason).
    state: &'a str,
    reason: &'a str,
    /// Reads fail too (not when only writes do).
    reads_fail: bool,
}

async fn outage_is_answered_in_time_and_loses_nothing(url: &str, outage: Outage<'_>) {
    let name = outage.name;
    let app = spawn_app(outage_config(url)).await;
    for _ in 0..2 {
        assert_eq!(post_records(&app, 20).await.status(), 202);
    }
    until(
        Duration::from_secs(5),
        "stored before the outage",
        || async { (stored_rows(url, "d").await == 40).then_some(()) },
    )
    .await;

    (outage.break_it)();
    let mut accepted = 40;
    assert_eq!(post_records(&app, 20).await.status(), 202, "{name}");
    accepted += 20;
    let readyz = app.url("/readyz");
    let (_, found) = until(Duration::from_secs(5), "readyz says 503", || async {
        let r = app.client.get(&readyz).send().await.ok()?;
        let body = r.json::<Json>().await.unwrap_or_default();
        let reason = body["database"]["reason"].as_str().unwrap_or_default();
        reason.starts_with(outage.reason).then_some(())
    })
    .await;
    eprintln!("{name}: /readyz found the outage {found:?} after it began");
    let asked = Instant::now();
    let r = app.client.get(&readyz).send().await.unwrap();
    let answered = asked.elapsed();
    eprintln!("{name}: /readyz answered 503 in {answered:?}");
    assert_eq!(r.status(), 503, "{name}");
    assert!(answered < Duration::from_secs(2), "{name}: {answered:?}");
    let body: Json = r.json().await.unwrap();
    assert_eq!(body["database"]["state"], outage.state, "{name}: {body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.starts_with("database "), "{name}: {error}");
    assert!(!error.contains("hunter2"), "{name}: {error}");

    if outage.reads_fail {
        for path in [
            "/v1/datasets/d/drift",
            "/v1/alerts",
            "/v1/datasets/d/reference",
            "/v1/datasets/d/runs",
            "/v1/datasets/d/counters",
        ] {
            let asked = Instant::now();
            let r = app.client.get(app.url(path)).send().await.unwrap();
            let answered = asked.elapsed();
            assert_eq!(r.status(), 503, "{name}: {path}");
            assert!(
                answered < Duration::from_secs(1),
                "{name}: {path} {answered:?}"
            );
            assert_eq!(r.headers()["retry-after"], "5", "{name}: {path}");
            let body: Json = r.json().await.unwrap();
            let error = body["error"].as_str().unwrap();
            assert!(
                error.starts_with(&format!("database unavailable ({}", outage.reason)),
                "{name}: {path}: {error}"
            );
            eprintln!("{name}: GET {path} answered 503 in {answered:?}: {error}");
        }
        assert_eq!(app.metric("driftd_database_up").await, Some(0.0), "{name}");
    }

    // Into memory up to queue_bytes, then 503 with the reason.
    let mut refused = None;
    for _ in 0..40 {
        let r = post_records(&app, 20).await;
        match r.status().as_u16() {
            202 => accepted += 20,
            503 => {
                refused = Some(r);
                break;
            }
            other => panic!("{name}: ingest answered {other} in an outage"),
        }
    }
    let refused = refused.unwrap_or_else(|| panic!("{name}: queue_bytes never filled"));
    assert_eq!(refused.headers()["retry-after"], "5", "{name}");
    let error: Json = refused.json().await.unwrap();
    let error = error["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!("database unavailable ({}", outage.reason))
            && error.contains("queue_bytes"),
        "{name}: {error}"
    );
    assert!(
        accepted >= 100,
        "{name}: {accepted} records accepted into memory"
    );
    let metrics = app.metrics().await;
    assert_eq!(
        series(
            &metrics,
            "driftd_ingest_dropped_total{reason=\"database_unavailable\"}"
        ),
        Some(1.0),
        "{name}"
    );
    // What waits in memory is shown (from the next flush on). At least the batch folded before
    // the budget filled waits: SQLite may still fit some writes into pages it freed.
    let (waiting, _) = until(
        Duration::from_secs(2),
        "unwritten records shown",
        || async {
            let waiting = app.metric("driftd_database_unwritten_records").await?;
            (waiting >= 20.0).then_some(waiting)
        },
    )
    .await;
    eprintln!(
        "{name}: {accepted} records accepted, {waiting} waiting in memory, then 503: {error}"
    );

    (outage.mend)();
    let mended = Instant::now();
    until(Duration::from_secs(15), "readyz says 200 again", || async {
        let r = app.client.get(&readyz).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    let (_, stored) = until(
        Duration::from_secs(15),
        "every accepted record stored",
        || async { (stored_rows(url, "d").await == accepted).then_some(()) },
    )
    .await;
    eprintln!(
        "{name}: ready again {:?} after the database came back; all {accepted} records stored",
        mended.elapsed().saturating_sub(stored)
    );
    assert_eq!(app.metric("driftd_database_up").await, Some(1.0), "{name}");
    assert_eq!(
        app.metric("driftd_database_unwritten_records").await,
        Some(0.0),
        "{name}"
    );
    // The budget held in the outage is given back.
    assert_eq!(post_records(&app, 20).await.status(), 202, "{name}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_postgres_is_answered_in_time_and_loses_nothing() {
    let Some(pg) = ThrowawayPg::start() else {
        return;
    };
    let url = pg.url("driftd:hunter2secret");
    let outage = Outage {
        name: "postgres stopped",
        break_it: Box::new(|| pg.stop()),
        mend: Box::new(|| pg.start_again()),
        state: "unreachable",
        reason: "connection refused",
        reads_fail: true,
    };
    outage_is_answered_in_time_and_loses_nothing(&url, outage).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_postgres_is_answered_in_time_and_loses_nothing() {
    let Some(pg) = ThrowawayPg::start() else {
        return;
    };
    let url = pg.url("driftd:hunter2secret");
    let outage = Outage {
        name: "postgres paused",
        break_it: Box::new(|| pg.pause()),
        mend: Box::new(|| pg.resume()),
        state: "unreachable",
        reason: "no answer within 1s",
        reads_fail: true,
    };
    outage_is_answered_in_time_and_loses_nothing(&url, outage).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sqlite_disk_is_answered_in_time_and_loses_nothing() {
    let Some(disk) = TinyDisk::mount(1024) else {
        return;
    };
    let url = format!("sqlite://{}", disk.path().join("driftd.db").display());
    let outage = Outage {
        name: "sqlite disk full",
        break_it: Box::new(|| disk.fill()),
        mend: Box::new(|| disk.free()),
        state: "unwritable",
        reason: "disk full",
        // Reading needs no space.
        reads_fail: false,
    };
    outage_is_answered_in_time_and_loses_nothing(&url, outage).await;
}

/// The binary's stderr, read as it comes (a full pipe would stall the daemon).
fn collect(stderr: tokio::process::ChildStderr) -> Arc<Mutex<String>> {
    let logs = Arc::new(Mutex::new(String::new()));
    let into = logs.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut logs = into.lock().unwrap();
            logs.push_str(&line);
            logs.push('\n');
        }
    });
    logs
}

/// The JSON log lines with this message.
fn logged(logs: &Mutex<String>, message: &str) -> Vec<Json> {
    logs.lock()
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Json>(l).ok())
        .filter(|e| e["message"] == message)
        .collect()
}

fn terminate(child: &tokio::process::Child) {
    let pid = child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
}

const QUICK_RETRIES: [(&str, &str); 2] = [
    ("DRIFTD_DATABASE_CONNECT_TIMEOUT", "1s"),
    ("DRIFTD_DATABASE_RETRY_MAX", "1s"),
];

/// An unreachable PostgreSQL at start is reported with its cause at once and retried; driftd
/// serves as soon as it is there. The password never shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_postgres_at_start_is_named_with_its_cause_and_retried() {
    let Some(pg) = ThrowawayPg::start() else {
        return;
    };
    for (paused, cause) in [(false, "Connection refused"), (true, "no answer within 1s")] {
        if paused {
            pg.pause();
        } else {
            pg.stop();
        }
        let url = pg.url("driftd:hunter2secret");
        let started = Instant::now();
        let (mut child, base) = start_binary(&url, &QUICK_RETRIES, std::process::Stdio::piped());
        let logs = collect(child.stderr.take().unwrap());
        let retrying = "Cannot reach the database; retrying";
        let (first, reported) = until(Duration::from_secs(5), "the first attempt reported", || {
            let found = logged(&logs, retrying).into_iter().next();
            async move { found }
        })
        .await;
        eprintln!("unreachable at start ({cause}): reported after {reported:?}: {first}");
        assert!(reported < Duration::from_secs(3), "{reported:?}");
        assert_eq!(first["attempt"], 1);
        assert!(first["error"].as_str().unwrap().contains(cause), "{first}");
        assert_eq!(
            first["database"],
            format!(
                "postgres://driftd:[redacted]@127.0.0.1:{}/postgres",
                pg.port()
            )
        );
        until(Duration::from_secs(5), "a second attempt", || {
            let n = logged(&logs, retrying).len();
            async move { (n >= 2).then_some(()) }
        })
        .await;
        if paused {
            pg.resume();
        } else {
            pg.start_again();
        }
        let client = reqwest::Client::new();
        let (_, ready) = until(Duration::from_secs(10), "ready once reachable", || async {
            let r = client.get(format!("{base}/readyz")).send().await.ok()?;
            (r.status() == 200).then_some(())
        })
        .await;
        eprintln!("ready {ready:?} after the database came back");
        assert_eq!(logged(&logs, "Database reached").len(), 1);
        terminate(&child);
        let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
            .await
            .expect("exits")
            .unwrap();
        assert_eq!(status.code(), Some(0));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let text = logs.lock().unwrap().clone();
        assert!(!text.contains("hunter2secret"), "{text}");
        assert!(started.elapsed() < Duration::from_secs(30));
    }
}

/// What no wait mends ends at once, with the cause: a database that does not exist, a SQLite
/// file that cannot be opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_no_retry_mends_ends_at_once_with_its_cause() {
    let dir = tempfile::TempDir::new().unwrap();
    let missing = dir.path().join("no such directory").join("driftd.db");
    let mut cases = vec![(
        format!("sqlite://{}", missing.display()),
        "unable to open database file".to_owned(),
    )];
    let pg = ThrowawayPg::start();
    if let Some(pg) = &pg {
        let url = pg.url("driftd:hunter2secret").replace("/postgres", "/nope");
        cases.push((url, "database \"nope\" does not exist".to_owned()));
    }
    for (url, cause) in cases {
        let started = Instant::now();
        let (child, _) = start_binary(&url, &QUICK_RETRIES, std::process::Stdio::piped());
        let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
            .await
            .expect("exits")
            .unwrap();
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("{cause}: exit {:?} after {took:?}", out.status.code());
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert!(
            stderr.contains("driftd: error: cannot open the database"),
            "{stderr}"
        );
        assert!(stderr.contains(&cause), "{stderr}");
        assert!(!stderr.contains("hunter2secret"), "{stderr}");
    }
}
