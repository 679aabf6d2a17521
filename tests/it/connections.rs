//! What a client cannot hold: request headers, bodies and kept-alive connections under their
//! deadlines, the queue's byte budget held by bytes that arrived, the connection cap, and TLS.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{BOTH, Db, fresh_database, series, spawn_app, test_config};

/// A client that opens a new connection for every request, so none is left idle in a pool.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn metric(address: &str, name_and_labels: &str) -> Option<f64> {
    let text = fresh_client()
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    series(&text, name_and_labels)
}

/// Reads and drops what the server sends until it closes the connection: how long that took
/// from `since`, or `None` if it is still open at `since + limit`.
async fn closed_after(stream: &mut TcpStream, since: Instant, limit: Duration) -> Option<Duration> {
    let mut buf = [0u8; 4096];
    let deadline = since + limit;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(since.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// One whole response on a kept-alive connection: its status and body (by Content-Length).
async fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("a response within 5 s")
            .unwrap();
        assert!(
            n > 0,
            "closed before a response: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..head_end]).to_string();
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .map_or(0, |v| v.trim().parse().unwrap());
    while got.len() < head_end + length {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed inside a response body");
        got.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&got[head_end..head_end + length]).to_string();
    (status, body)
}

/// A request's head and the start of a chunked body, then nothing more.
async fn stalled_upload(address: &str, dataset: &str) -> TcpStream {
    let mut s = TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /v1/datasets/{dataset}/records HTTP/1.1\r\nHost: driftd\r\n\
         Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{{\"x\":\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_headers_are_closed_after_header_timeout_and_idle_ones_after_idle_timeout() {
    let dir = TempDir::new().unwrap();
    let db = fresh_database(Db::Sqlite, dir.path()).await.unwrap();
    let mut config = test_config(&db);
    config.header_timeout = Duration::from_secs(1);
    config.idle_timeout = Duration::from_secs(3);
    let app = spawn_app(config).await;
    let address = app.address.clone();

    let started = Instant::now();
    // Half a request head, then nothing.
    let mut half = TcpStream::connect(&address).await.unwrap();
    half.write_all(b"POST /v1/datasets/d/records HTTP/1.1\r\nHost: driftd\r\n")
        .await
        .unwrap();
    // Connected, nothing sent.
    let mut silent = TcpStream::connect(&address).await.unwrap();
    // A header line a byte at a time: moving, but the head is due a second after it began.
    let mut trickle = TcpStream::connect(&address).await.unwrap();
    let (mut trickle_read, mut trickle_write) = trickle.split();
    let closed = async {
        let half = closed_after(&mut half, started, Duration::from_secs(6)).await;
        let silent = closed_after(&mut silent, started, Duration::from_secs(6)).await;
        let mut buf = [0u8; 64];
        let trickle = tokio::time::timeout(Duration::from_secs(6), trickle_read.read(&mut buf))
            .await
            .ok()
            .map(|_| started.elapsed());
        (half, silent, trickle)
    };
    let trickling = async {
        for byte in b"GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if trickle_write.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let ((half, silent, trickle), ()) = tokio::join!(closed, trickling);
    for (what, closed) in [
        ("half a head", half),
        ("silent", silent),
        ("trickle", trickle),
    ] {
        let closed = closed.unwrap_or_else(|| panic!("{what}: still open after 6 s"));
        assert!(
            closed >= Duration::from_millis(900) && closed < Duration::from_millis(2500),
            "{what}: closed after {closed:?}, header_timeout is 1 s"
        );
    }
    assert_eq!(
        metric(
            &address,
            "driftd_ingest_dropped_total{reason=\"header_timeout\"}"
        )
        .await,
        Some(3.0)
    );

    // A kept-alive connection waits longer than header_timeout for its next request, and is
    // closed after idle_timeout.
    let mut kept = TcpStream::connect(&address).await.unwrap();
    let get = b"GET /healthz HTTP/1.1\r\nHost: driftd\r\n\r\n";
    kept.write_all(get).await.unwrap();
    assert_eq!(read_response(&mut kept).await, (200, "ok\n".to_owned()));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    kept.write_all(get).await.unwrap();
    assert_eq!(read_response(&mut kept).await, (200, "ok\n".to_owned()));
    let idle = Instant::now();
    let closed = closed_after(&mut kept, idle, Duration::from_secs(8))
        .await
        .expect("closed after idle_timeout");
    assert!(
        closed >= Duration::from_millis(2800) && closed < Duration::from_millis(4500),
        "idle connection closed after {closed:?}, idle_timeout is 3 s"
    );
    // Idle closes are not refusals.
    assert_eq!(
        metric(
            &address,
            "driftd_ingest_dropped_total{reason=\"header_timeout\"}"
        )
        .await,
        Some(3.0)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_uploads_hold_only_the_bytes_they_sent_and_are_cut_off() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let mut config = test_config(&url);
        config.body_timeout = Duration::from_secs(2);
        let app = spawn_app(config).await;
        let address = app.address.clone();
        let started = Instant::now();
        let mut stalled = vec![
            stalled_upload(&address, "s").await,
            stalled_upload(&address, "s").await,
        ];
        // A declared length that fits takes nothing before its bytes arrive either.
        let mut declared = TcpStream::connect(&address).await.unwrap();
        declared
            .write_all(
                b"POST /v1/datasets/s/records HTTP/1.1\r\nHost: driftd\r\n\
                  Content-Type: application/x-ndjson\r\nContent-Length: 8000000\r\n\r\n{\"x\": 1}\n",
            )
            .await
            .unwrap();
        stalled.push(declared);
        tokio::time::sleep(Duration::from_millis(300)).await;

        // A normal batch, while they stall, within the default 16 MiB budget.
        let r = fresh_client()
            .post(format!("http://{address}/v1/datasets/s/records"))
            .json(&json!({"records": [{"x": 1.0}, {"x": 2.0}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{db:?}: {}", r.text().await.unwrap());
        let held = metric(&address, "driftd_ingest_queue_bytes").await.unwrap();
        assert!(held < 100.0, "{db:?}: the stalled bodies hold {held} bytes");

        // Each stalled body gets 408 once it delivered under 1024 bytes in 2 s.
        for s in &mut stalled {
            let mut got = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(6), s.read_to_end(&mut got)).await;
            let text = String::from_utf8_lossy(&got);
            assert!(text.starts_with("HTTP/1.1 408 "), "{db:?}: {text}");
            assert!(
                text.contains("slower than 1024 bytes in 2s"),
                "{db:?}: {text}"
            );
        }
        let cut = started.elapsed();
        assert!(
            cut >= Duration::from_millis(1900) && cut < Duration::from_secs(4),
            "{db:?}: cut off after {cut:?}"
        );
        assert_eq!(
            metric(
                &address,
                "driftd_ingest_dropped_total{reason=\"body_timeout\"}"
            )
            .await,
            Some(3.0),
            "{db:?}"
        );
        assert_eq!(
            metric(&address, "driftd_ingest_queue_bytes").await,
            Some(0.0),
            "{db:?}: the budget is whole again"
        );
        app.stop().await;
    }
}

/// Sends `body` as chunks of `chunk` bytes every `every`, and returns the response's status and
/// body.
async fn trickled_upload(
    address: &str,
    body: &[u8],
    chunk: usize,
    every: Duration,
) -> (u16, String) {
    let mut s = TcpStream::connect(address).await.unwrap();
    s.write_all(
        b"POST /v1/datasets/slow/records HTTP/1.1\r\nHost: driftd\r\n\
          Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await
    .unwrap();
    for part in body.chunks(chunk) {
        let mut framed = format!("{:x}\r\n", part.len()).into_bytes();
        framed.extend_from_slice(part);
        framed.extend_from_slice(b"\r\n");
        if s.write_all(&framed).await.is_err() {
            break;
        }
        tokio::time::sleep(every).await;
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    read_response(&mut s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_that_keeps_moving_is_read_and_one_too_slow_is_not() {
    let dir = TempDir::new().unwrap();
    let db = fresh_database(Db::Sqlite, dir.path()).await.unwrap();
    let mut config = test_config(&db);
    config.body_timeout = Duration::from_secs(1);
    config.body_min_bytes = 1024;
    let app = spawn_app(config).await;
    let lines: String = (0..240)
        .map(|i| format!("{{\"x\": {i}.5, \"c\": \"c{:03}\"}}\n", i % 7))
        .collect();
    assert!(lines.len() > 5000, "{}", lines.len());

    // 700 bytes every 0.5 s: 1,024 bytes in every second, 4 s in all.
    let started = Instant::now();
    let (status, body) = trickled_upload(
        &app.address,
        lines.as_bytes(),
        700,
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["accepted"], 240, "{answer}");
    assert!(
        started.elapsed() > Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // 100 bytes every 0.3 s: under 1,024 bytes in a second.
    let started = Instant::now();
    let (status, body) = trickled_upload(
        &app.address,
        lines.as_bytes(),
        100,
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(status, 408, "{body}");
    assert!(body.contains("slower than 1024 bytes in 1s"), "{body}");
    let cut = started.elapsed();
    assert!(cut < Duration::from_secs(3), "cut off after {cut:?}");
    assert_eq!(
        metric(
            &app.address,
            "driftd_ingest_dropped_total{reason=\"body_timeout\"}"
        )
        .await,
        Some(1.0)
    );
    assert_eq!(
        metric(
            &app.address,
            "driftd_records_total{dataset=\"slow\",stage=\"online\"}"
        )
        .await,
        Some(240.0)
    );
    app.stop().await;
}

/// Serves `config` on an API listener and a probe listener; returns their addresses.
async fn spawn_with_probes(
    config: driftd::config::ServeConfig,
) -> (
    SocketAddr,
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let probes = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (api_address, probe_address) = (api.local_addr().unwrap(), probes.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(driftd::serve::run(
        driftd::serve::Listeners {
            api,
            probes: Some(probes),
        },
        config,
        async move {
            let _ = stopped.await;
        },
    ));
    (api_address, probe_address, stop, server)
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_refused_at_once_and_probes_still_answer() {
    let dir = TempDir::new().unwrap();
    let db = fresh_database(Db::Sqlite, dir.path()).await.unwrap();
    let mut config = test_config(&db);
    config.max_connections = 4;
    config.header_timeout = Duration::from_secs(60);
    let (api, probes, stop, server) = spawn_with_probes(config).await;
    let client = fresh_client();
    let probe = |path: &str| format!("http://{probes}{path}");
    wait_until("ready", async || {
        client
            .get(probe("/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let probe_metric = async |name: &str| metric(&probes.to_string(), name).await;

    // Four connections that say nothing fill the cap.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(api).await.unwrap());
    }
    wait_until("4 open", async || {
        probe_metric("driftd_http_connections_open{listener=\"api\"}").await == Some(4.0)
    })
    .await;

    // The fifth is answered 503 (or closed) at once, not queued.
    let started = Instant::now();
    let mut fifth = TcpStream::connect(api).await.unwrap();
    let _ = fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: driftd\r\n\r\n")
        .await;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), fifth.read_to_end(&mut got)).await;
    let refused_in = started.elapsed();
    assert!(
        refused_in < Duration::from_millis(500),
        "refused after {refused_in:?}"
    );
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 503 "),
        "{text}"
    );
    let started = Instant::now();
    match client.get(format!("http://{api}/healthz")).send().await {
        Ok(r) => assert_eq!(r.status(), 503),
        Err(e) => assert!(!e.is_timeout(), "{e}"),
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );

    // Counted, and the probe listener still answers.
    assert_eq!(
        probe_metric("driftd_http_connections_refused_total{listener=\"api\"}").await,
        Some(2.0)
    );
    assert_eq!(
        probe_metric("driftd_ingest_dropped_total{reason=\"connection_limit\"}").await,
        Some(2.0)
    );
    for path in ["/healthz", "/readyz"] {
        let r = client.get(probe(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }

    // Room again once they close.
    drop(held);
    wait_until("closed", async || {
        probe_metric("driftd_http_connections_open{listener=\"api\"}").await == Some(0.0)
    })
    .await;
    let r = client
        .get(format!("http://{api}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        probe_metric("driftd_http_connections_refused_total{listener=\"api\"}").await,
        Some(2.0)
    );
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
