//! The durable ingest buffer on the real NATS JetStream of this machine (127.0.0.1:4222): a
//! `202` only once the stream has the batch; replicas fold from one durable consumer and
//! acknowledge after writing, so a replica killed right after its `202`s loses nothing; retries
//! with one `Idempotency-Key` are stored once; what does not fit one message is split, or
//! refused with 413; a full stream answers 429, an unreachable server 503; records published
//! straight to the stream are counted, unreadable messages terminated; batches a replica wrote
//! and died before acknowledging are recognised when redelivered and not counted again. Every
//! test makes its own stream and removes it, and its own database.

use std::process::Stdio;
use std::time::{Duration, Instant};

use driftd::config::{Secret, ServeConfig};
use serde_json::{Value as Json, json};
use tempfile::TempDir;

use crate::helpers::{
    BOTH, Db, TestApp, free_port, fresh_database, spawn_app, test_config, uuid_like, wait_for_json,
};
use crate::serve::drifted_records;

const NATS: &str = "nats://127.0.0.1:4222";
const DATASET: &str = "search";

/// A JetStream stream of this test's own, deleted on drop (also when the test fails).
struct TestStream {
    name: String,
    url: String,
}

impl TestStream {
    /// A fresh stream name on the server at `url`, which must answer (under `CI=true` a missing
    /// server fails the test; elsewhere `None` skips it, saying so).
    async fn new(url: &str) -> Option<TestStream> {
        match async_nats::connect(url).await {
            Ok(client) => drop(client),
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!(
                    "NATS JetStream is required under CI=true and is not reachable at {url}: {e}"
                )
            }
            Err(e) => {
                eprintln!("skipping NATS: {e}");
                return None;
            }
        }
        let name = format!("driftd_test_{}", uuid_like());
        Some(TestStream {
            name,
            url: url.to_owned(),
        })
    }

    async fn jetstream(&self) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(async_nats::connect(&self.url).await.unwrap())
    }

    /// Messages the stream holds now (published and not yet acknowledged).
    async fn messages(&self) -> u64 {
        let js = self.jetstream().await;
        let mut stream = js.get_stream(&self.name).await.unwrap();
        stream.info().await.unwrap().state.messages
    }

    /// Waits up to `seconds` until every message is acknowledged (the work queue is empty).
    async fn drained(&self, seconds: u64, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        while self.messages().await > 0 {
            assert!(
                Instant::now() < deadline,
                "{what}: messages stay unacknowledged"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        let (name, url) = (self.name.clone(), self.url.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on.
        let deleted = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let client = async_nats::connect(&url).await.map_err(|e| e.to_string())?;
                let js = async_nats::jetstream::new(client);
                match js.delete_stream(&name).await {
                    Ok(_) => Ok(()),
                    // Never created (the test stopped before driftd started).
                    Err(e) if e.to_string().contains("not found") => Ok(()),
                    Err(e) => Err(format!("delete stream {name}: {e}")),
                }
            })
        })
        .join();
        match deleted {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("test stream left behind: {e}"),
            Err(_) => eprintln!("test stream left behind: the deleting thread panicked"),
        }
    }
}

/// Test settings with the buffer: acknowledgements may wait 3 s (over a 100 ms flush and a
/// 1 s database timeout), so what a killed replica held is redelivered within 3 s.
fn buffered(url: &str, stream: &TestStream, writer: &str) -> ServeConfig {
    ServeConfig {
        writer_id: Some(writer.to_owned()),
        nats_url: Some(Secret::new(&stream.url)),
        nats_stream: stream.name.clone(),
        nats_ack_wait: Duration::from_secs(3),
        database_timeout: Duration::from_secs(1),
        ..test_config(url)
    }
}

async fn post(app: &TestApp, records: &[Json], key: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(&format!("/v1/datasets/{DATASET}/records")))
        .json(&json!({ "records": records }));
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.unwrap()
}

/// Waits until `app` counts `n` online records of the dataset, as stored (every writer's
/// partial merged).
async fn wait_for_online(app: &TestApp, n: u64, seconds: u64) {
    wait_for_json(&app.client, &app.url("/v1/datasets"), seconds, |v| {
        v["datasets"][0]["records"]["online"].as_u64() == Some(n)
    })
    .await;
}

async fn online(app: &TestApp) -> u64 {
    app.get_json("/v1/datasets").await["datasets"][0]["records"]["online"]
        .as_u64()
        .unwrap_or(0)
}

async fn metric(app: &TestApp, series: &str) -> f64 {
    app.metric(series).await.unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_go_through_the_stream_and_are_counted_once() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let Some(stream) = TestStream::new(NATS).await else {
            return;
        };
        // SQLite is one process; PostgreSQL gets two replicas on one consumer.
        let mut apps = vec![spawn_app(buffered(&url, &stream, "r0")).await];
        if db == Db::Postgres {
            apps.push(spawn_app(buffered(&url, &stream, "r1")).await);
        }
        let batch = drifted_records(100);
        for i in 0..10 {
            let app = &apps[i % apps.len()];
            let key = format!("batch-{i}");
            let r = post(app, &batch, Some(&key)).await;
            assert_eq!(r.status(), 202, "{db:?}");
            assert_eq!(
                r.json::<Json>().await.unwrap(),
                json!({"accepted": 100, "rejected": 0})
            );
        }
        // A retry of batch 3 (its answer lost, say) to the other replica: stored once.
        let r = post(apps.last().unwrap(), &batch, Some("batch-3")).await;
        assert_eq!(r.status(), 202);
        wait_for_online(&apps[0], 1000, 20).await;
        let mut published = 0.0;
        let (mut duplicates, mut folded) = (0.0, 0.0);
        for app in &apps {
            published += metric(app, "driftd_buffer_published_total").await;
            duplicates += metric(app, "driftd_buffer_duplicates_total").await;
            folded += metric(
                app,
                r#"driftd_buffer_messages_total{subject="batches",outcome="folded"}"#,
            )
            .await;
        }
        assert_eq!((published, duplicates, folded), (11.0, 1.0, 10.0), "{db:?}");
        // Acknowledged once written: the work queue empties.
        stream.drained(10, &format!("{db:?}")).await;
        // Nothing is redelivered later and counted again.
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(online(&apps[0]).await, 1000, "{db:?}");
        for app in apps {
            app.stop().await;
        }
    }
}

/// A `driftd serve` process for a test to `kill -9`; killed and waited for on drop.
struct Victim {
    child: std::process::Child,
    base: String,
    client: reqwest::Client,
}

impl Victim {
    /// Starts one on a free port with the ingest buffer at `nats_url`, writing its windows
    /// every `flush`; answers once it is ready.
    async fn start(
        database: &str,
        nats_url: &str,
        stream: &str,
        flush: &str,
        ack_wait: &str,
    ) -> Victim {
        let port = free_port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_driftd"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("DRIFTD_DATABASE_URL", database)
            .env("DRIFTD_WRITER_ID", "victim")
            .env("DRIFTD_NATS_URL", nats_url)
            .env("DRIFTD_NATS_STREAM", stream)
            .env("DRIFTD_FLUSH_INTERVAL", flush)
            .env("DRIFTD_DATABASE_TIMEOUT", "1s")
            .env("DRIFTD_NATS_ACK_WAIT", ack_wait)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("driftd starts");
        let victim = Victim {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !victim
            .client
            .get(format!("{}/readyz", victim.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "the replica did not get ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        victim
    }

    /// Posts 20 batches of 50 records, each answered 202.
    async fn post_1000_records(&self) {
        let batch = drifted_records(50);
        for _ in 0..20 {
            let r = self
                .client
                .post(format!("{}/v1/datasets/{DATASET}/records", self.base))
                .json(&json!({ "records": batch }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
        }
    }

    /// `kill -9`, and waits for it to be gone.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_right_after_the_202s_loses_nothing() {
    let dir = TempDir::new().unwrap();
    let Some(url) = fresh_database(Db::Postgres, dir.path()).await else {
        return;
    };
    let Some(stream) = TestStream::new(NATS).await else {
        return;
    };
    // A replica that writes its windows only every 10 s: killed within that, it has written
    // nothing, and every batch it answered 202 is still unacknowledged in the stream.
    let mut victim = Victim::start(&url, &stream.url, &stream.name, "10s", "12s").await;
    victim.post_1000_records().await;
    victim.kill();
    let answered = Instant::now();
    assert_eq!(stream.messages().await, 20, "every 202 is in the stream");

    // Another replica gets them once the victim's hold lapses.
    let survivor = spawn_app(buffered(&url, &stream, "survivor")).await;
    wait_for_online(&survivor, 1000, 30).await;
    println!(
        "1,000 records answered 202 by a replica killed with SIGKILL counted by another {:.1} s later",
        answered.elapsed().as_secs_f64()
    );
    assert_eq!(
        metric(&survivor, "driftd_buffer_redelivered_total").await,
        20.0
    );
    stream.drained(10, "the survivor").await;
    assert_eq!(online(&survivor).await, 1000);
    survivor.stop().await;
}

/// A NATS proxy in front of `upstream` that passes everything except what a client publishes
/// to `$JS.ACK.…` subjects: a replica behind it folds and writes as always, and none of its
/// acknowledgements (nor its "in progress") reach the server, as if it died right after each
/// write. Runs until the test's runtime ends.
async fn dropping_acks(upstream: &str) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let upstream = upstream.trim_start_matches("nats://").to_owned();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
            let (client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
            });
            tokio::spawn(async move {
                let mut from_client = BufReader::new(client_read);
                let mut line = String::new();
                loop {
                    line.clear();
                    if from_client.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let words: Vec<&str> = line.split_whitespace().collect();
                    // PUB subject [reply] size, HPUB subject [reply] header-size total-size:
                    // the payload (and its CRLF) follows the line.
                    let payload = match words.first().copied() {
                        Some("PUB" | "HPUB") => words.last().and_then(|n| n.parse::<usize>().ok()),
                        _ => None,
                    };
                    let mut frame = line.clone().into_bytes();
                    if let Some(size) = payload {
                        let mut body = vec![0; size + 2];
                        if from_client.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        if words[1].starts_with("$JS.ACK.") {
                            continue;
                        }
                        frame.extend(body);
                    }
                    if server_write.write_all(&frame).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("nats://{address}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_written_by_a_replica_that_died_before_acknowledging_them_are_not_counted_again() {
    for db in BOTH {
        died_before_acknowledging(db).await;
    }
}

async fn died_before_acknowledging(db: Db) {
    use sqlx::Connection;
    let dir = TempDir::new().unwrap();
    let Some(url) = fresh_database(db, dir.path()).await else {
        return;
    };
    let Some(stream) = TestStream::new(NATS).await else {
        return;
    };
    // A replica whose acknowledgements never reach the server writes every 100 ms: it takes
    // 20 batches, writes them (with their stream sequences), and is killed before their
    // acknowledgement wait (3 s) is over, as a replica dying between a write and its
    // acknowledgements would be.
    let proxy = dropping_acks(NATS).await;
    let mut victim = Victim::start(&url, &proxy, &stream.name, "100ms", "3s").await;
    let started = Instant::now();
    victim.post_1000_records().await;
    let datasets = format!("{}/v1/datasets", victim.base);
    wait_for_json(&victim.client, &datasets, 10, |v| {
        v["datasets"][0]["records"]["online"].as_u64() == Some(1000)
    })
    .await;
    victim.kill();
    let written = started.elapsed();
    assert!(
        written < Duration::from_secs(3),
        "the victim took {written:?} to write: its messages may have been redelivered to it"
    );
    assert_eq!(stream.messages().await, 20, "none was acknowledged");
    sqlx::any::install_default_drivers();
    let mut connection = sqlx::AnyConnection::connect(&url).await.unwrap();
    let counted: i64 = sqlx::query_scalar("SELECT count(*) FROM buffer_applied")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(
        counted, 20,
        "{db:?}: each message written with the partial it is in"
    );

    // Redelivered to another replica once the 3 s pass: recognised, acknowledged, not folded.
    let survivor = spawn_app(buffered(&url, &stream, "survivor")).await;
    stream.drained(20, "the survivor").await;
    let acknowledged = started.elapsed();
    // Acknowledged only once written: the count is final.
    assert_eq!(online(&survivor).await, 1000, "{db:?}: counted once");
    let recognised = r#"driftd_buffer_messages_total{subject="batches",outcome="counted"}"#;
    assert_eq!(metric(&survivor, recognised).await, 20.0);
    assert_eq!(
        metric(&survivor, "driftd_buffer_redelivered_total").await,
        20.0
    );
    println!(
        "{db:?}: 20 batches written by a replica killed before acknowledging them: redelivered \
         and recognised by another, acknowledged {:.1} s after the first 202; 1,000 records \
         counted once",
        acknowledged.as_secs_f64()
    );
    // New batches are counted as always, and the record of what was counted is cut down to
    // what JetStream may still deliver (nothing: the consumer's floor is past every message).
    assert_eq!(
        post(&survivor, &drifted_records(50), None).await.status(),
        202
    );
    wait_for_online(&survivor, 1050, 10).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM buffer_applied")
            .fetch_one(&mut connection)
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{db:?}: {left} sequences kept below the floor"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        metric(&survivor, "driftd_buffer_counted_twice_total").await,
        0.0
    );
    connection.close().await.unwrap();
    survivor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_or_event_too_large_for_one_message_is_split_and_a_record_too_large_is_refused() {
    let dir = TempDir::new().unwrap();
    let url = fresh_database(Db::Sqlite, dir.path()).await.unwrap();
    let Some(stream) = TestStream::new(NATS).await else {
        return;
    };
    let app = spawn_app(buffered(&url, &stream, "r0")).await;
    // Every record is sampled for the skew join with its 2 KB of text: 2 MB of samples, over
    // the server's max_payload of 1 MiB.
    let records: Vec<Json> = (0..1000)
        .map(|i| json!({"_id": format!("id-{i}"), "text": format!("{i:0>2000}"), "n": i}))
        .collect();
    let r = post(&app, &records, None).await;
    assert_eq!(r.status(), 202);
    assert_eq!(
        r.json::<Json>().await.unwrap(),
        json!({"accepted": 1000, "rejected": 0})
    );
    let published = metric(&app, "driftd_buffer_published_total").await;
    assert!(published >= 2.0, "split into {published} messages");
    println!("1,000 records with 2 KB of sampled text each published as {published} messages");
    wait_for_online(&app, 1000, 20).await;

    // A KServe payload logger's event likewise: 1,000 rows of 3 KB distinct text.
    let instances: Vec<Json> = (0..1000)
        .map(|i| json!({"text": format!("{i:0>3000}"), "n": i}))
        .collect();
    let r = app
        .client
        .post(app.url(&format!("/v1/inference-logs?dataset={DATASET}")))
        .header("ce-specversion", "1.0")
        .header("ce-type", "org.kubeflow.serving.inference.request")
        .header("ce-source", "http://localhost:9081/")
        .header("ce-id", "big-event")
        .header("ce-inferenceservicename", "search")
        .json(&json!({ "instances": instances }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let answer: Json = r.json().await.unwrap();
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["accepted"], 1000, "{answer}");
    let event_parts = metric(&app, "driftd_buffer_published_total").await - published;
    assert!(event_parts >= 2.0, "split into {event_parts} messages");
    println!(
        "an inference log event of 1,000 rows with 3 KB of text each published as {event_parts} messages"
    );
    wait_for_online(&app, 2000, 20).await;

    // One record alone over max_payload: refused whole, nothing stored.
    let huge = vec![json!({"_id": "big", "text": "x".repeat(1_200_000)})];
    let r = post(&app, &huge, None).await;
    assert_eq!(r.status(), 413);
    let error = r.json::<Json>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.starts_with("record 0 alone profiles to ")
            && error.ends_with("over the NATS server's max_payload of 1048576 bytes: the ingest buffer cannot carry it"),
        "{error}"
    );
    assert_eq!(
        metric(&app, r#"driftd_ingest_dropped_total{reason="too_large"}"#).await,
        1.0
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(online(&app).await, 2000);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_stream_answers_429_until_written_batches_are_acknowledged() {
    let dir = TempDir::new().unwrap();
    let url = fresh_database(Db::Sqlite, dir.path()).await.unwrap();
    let Some(stream) = TestStream::new(NATS).await else {
        return;
    };
    // Windows written every 3 s: until then, the batches fill the stream's 16 KiB.
    let app = spawn_app(ServeConfig {
        nats_max_bytes: 16 << 10,
        flush_interval: Duration::from_secs(3),
        nats_ack_wait: Duration::from_secs(5),
        ..buffered(&url, &stream, "r0")
    })
    .await;
    let batch = drifted_records(100);
    let mut accepted = 0;
    let refused = loop {
        let r = post(&app, &batch, None).await;
        if r.status() != 202 {
            break r;
        }
        accepted += 1;
        assert!(accepted < 100, "the stream never filled");
    };
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let error = refused.json::<Json>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.starts_with("the ingest buffer is full ("), "{error}");
    assert_eq!(
        metric(&app, r#"driftd_ingest_dropped_total{reason="buffer_full"}"#).await,
        1.0
    );
    // Once the window is written its batches are acknowledged, and the stream takes more.
    let deadline = Instant::now() + Duration::from_secs(15);
    while post(&app, &batch, None).await.status() != 202 {
        assert!(Instant::now() < deadline, "the stream stays full");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_for_online(&app, 100 * (accepted + 1), 15).await;
    println!("{accepted} batches filled a 16 KiB stream");
    app.stop().await;
}

/// A NATS server of this test's own (JetStream in `dir`), stopped on drop.
struct NatsServer {
    child: Option<std::process::Child>,
    port: u16,
    dir: std::path::PathBuf,
}

impl NatsServer {
    fn binary() -> Option<String> {
        let path = std::env::var("DRIFTD_NATS_SERVER").unwrap_or("/usr/sbin/nats-server".into());
        if std::path::Path::new(&path).exists() {
            Some(path)
        } else if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("nats-server is required under CI=true and is not at {path}")
        } else {
            eprintln!("skipping: no nats-server at {path}");
            None
        }
    }

    fn start(port: u16, dir: &std::path::Path) -> Option<NatsServer> {
        let mut server = NatsServer {
            child: None,
            port,
            dir: dir.to_owned(),
        };
        server.restart(&Self::binary()?);
        Some(server)
    }

    fn restart(&mut self, binary: &str) {
        let child = std::process::Command::new(binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_answers_503_and_ingest_resumes_when_it_is_back() {
    let dir = TempDir::new().unwrap();
    let url = fresh_database(Db::Sqlite, dir.path()).await.unwrap();
    let port = free_port();
    let Some(mut server) = NatsServer::start(port, &dir.path().join("nats")) else {
        return;
    };
    let stream = TestStream::new(&format!("nats://127.0.0.1:{port}"))
        .await
        .unwrap();
    let app = spawn_app(buffered(&url, &stream, "r0")).await;
    let batch = drifted_records(100);
    assert_eq!(post(&app, &batch, None).await.status(), 202);
    wait_for_online(&app, 100, 15).await;

    server.stop();
    let started = Instant::now();
    let r = post(&app, &batch, Some("during-the-outage")).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "5");
    let error = r.json::<Json>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.starts_with("the ingest buffer is unavailable (") && error.ends_with("; retry later"),
        "{error}"
    );
    assert!(!error.contains(&port.to_string()), "{error}");
    println!("503 after {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(
        metric(
            &app,
            r#"driftd_ingest_dropped_total{reason="buffer_unavailable"}"#
        )
        .await,
        1.0
    );

    // Back, with its stream on disk: the client reconnects and ingest goes on. The refused
    // batch may have reached the stream all the same (a 503 says "not known to be stored"):
    // retried with its Idempotency-Key, it is stored once.
    server.restart(&NatsServer::binary().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    while post(&app, &batch, Some("during-the-outage")).await.status() != 202 {
        assert!(Instant::now() < deadline, "ingest did not resume");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_for_online(&app, 200, 20).await;
    app.stop().await;
    drop(stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_published_straight_to_the_stream_are_counted_and_bad_messages_terminated() {
    let dir = TempDir::new().unwrap();
    let url = fresh_database(Db::Sqlite, dir.path()).await.unwrap();
    let Some(stream) = TestStream::new(NATS).await else {
        return;
    };
    let app = spawn_app(buffered(&url, &stream, "r0")).await;
    let js = stream.jetstream().await;
    let subject = format!("{}.records", stream.name);
    let ndjson: String = drifted_records(100)
        .iter()
        .map(|r| format!("{r}\n"))
        .collect();
    let send = async |headers: async_nats::HeaderMap, body: String| {
        js.publish_with_headers(subject.clone(), headers, body.into())
            .await
            .unwrap()
            .await
            .unwrap();
    };
    let mut good = async_nats::HeaderMap::new();
    good.insert("Driftd-Dataset", DATASET);
    send(good.clone(), ndjson.clone()).await;
    // Lines that are not records: refused one by one, nothing to fold.
    send(good, "not json\n[1,2]\n".into()).await;
    // No dataset, a dataset name driftd refuses: never foldable.
    send(async_nats::HeaderMap::new(), ndjson.clone()).await;
    let mut bad = async_nats::HeaderMap::new();
    bad.insert("Driftd-Dataset", "../etc");
    send(bad, ndjson).await;

    wait_for_online(&app, 100, 15).await;
    let taken = |outcome: &'static str| {
        format!(r#"driftd_buffer_messages_total{{subject="records",outcome="{outcome}"}}"#)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&app, &taken("rejected")).await < 2.0 {
        assert!(Instant::now() < deadline, "bad messages not terminated");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(metric(&app, &taken("folded")).await, 1.0);
    assert_eq!(metric(&app, &taken("empty")).await, 1.0);
    assert_eq!(metric(&app, &taken("rejected")).await, 2.0);
    assert_eq!(
        metric(
            &app,
            r#"driftd_records_rejected_total{dataset="search",stage="online"}"#
        )
        .await,
        2.0
    );
    app.stop().await;
}

#[tokio::test]
async fn messages_counted_are_recorded_with_their_partial_and_forgotten_below_the_floor() {
    use driftd::profile::{DatasetProfile, Stage};
    use driftd::store::{Applied, Key, Kind, Store, StreamId};
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let store = Store::connect(&Secret::new(&*url)).await.unwrap();
        let stream = StreamId {
            name: "driftd".into(),
            created_ns: 1_700_000_000_000_000_000,
        };
        let key = |writer: &str| Key {
            dataset: DATASET.into(),
            stage: Stage::Online,
            kind: Kind::Window,
            run_id: String::new(),
            part: String::new(),
            start_ms: 0,
            writer: writer.into(),
        };
        let mut profile = DatasetProfile::new(DATASET, Stage::Online);
        profile.rows = 10;
        let applied = |sequences| Applied {
            stream: &stream,
            sequences,
        };
        let again = store
            .put_applied(&key("a"), 60_000, &profile, 1, applied(&[1, 2, 3]))
            .await
            .unwrap();
        assert_eq!(again, 0, "{db:?}");
        // Another writer that held 3 past its wait, and wrote it too: told, and counted.
        let again = store
            .put_applied(&key("b"), 60_000, &profile, 2, applied(&[3, 4]))
            .await
            .unwrap();
        assert_eq!(again, 1, "{db:?}");
        assert!(store.applied(&stream, 3).await.unwrap());
        assert!(!store.applied(&stream, 5).await.unwrap());
        // The partial and its sequences go together.
        assert_eq!(store.get(&key("")).await.unwrap().unwrap().rows, 20);
        // A stream created anew numbers from 1 again: its message 1 is not the old one's.
        let anew = StreamId {
            created_ns: stream.created_ns + 1,
            ..stream.clone()
        };
        assert!(!store.applied(&anew, 1).await.unwrap());
        // 500 sequences a statement: 1,200 in three.
        let many: Vec<u64> = (10..1210).collect();
        let again = store
            .put_applied(&key("c"), 60_000, &profile, 3, applied(&many))
            .await
            .unwrap();
        assert_eq!(again, 0, "{db:?}");
        assert!(store.applied(&stream, 1209).await.unwrap());
        // Below the floor, and the sequences of the stream's earlier incarnation, are forgotten.
        assert_eq!(store.forget_applied(&stream, 2).await.unwrap(), 2);
        assert!(!store.applied(&stream, 2).await.unwrap());
        assert!(store.applied(&stream, 3).await.unwrap());
        assert_eq!(store.forget_applied(&anew, 0).await.unwrap(), 2 + 1200);
        assert!(!store.applied(&stream, 3).await.unwrap());
    }
}
