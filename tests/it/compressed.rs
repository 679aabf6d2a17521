//! Compressed upload bodies (`Content-Encoding: gzip` and `zstd`) on every upload route, on
//! SQLite and PostgreSQL, and a decompression bomb refused while it streams.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use tempfile::TempDir;

use crate::helpers::{BOTH, fresh_database, reference_profile, spawn_app, test_config};
use crate::serve::{drifted_records, spawn_binary};

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_upload_route_takes_gzip_and_zstd() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let app = spawn_app(test_config(&url)).await;
        let post = |path: &str, encoding: &str, content_type: &str, body: Vec<u8>| {
            app.client
                .post(app.url(path))
                .header("content-encoding", encoding)
                .header("content-type", content_type)
                .body(body)
                .send()
        };

        let profile = reference_profile(&dir);
        let r = post(
            "/v1/datasets/z/profiles?run_id=train-1",
            "gzip",
            "application/octet-stream",
            gzip(&profile),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 201, "{db:?}");
        assert_eq!(r.json::<Json>().await.unwrap()["rows"], 1000);

        let records = serde_json::to_vec(&json!({"records": drifted_records(300)})).unwrap();
        let r = post(
            "/v1/datasets/z/records",
            "gzip",
            "application/json",
            gzip(&records),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 202, "{db:?}");
        assert_eq!(
            r.json::<Json>().await.unwrap(),
            json!({"accepted": 300, "rejected": 0})
        );
        let ndjson: String = drifted_records(40)
            .iter()
            .map(|r| format!("{r}\n"))
            .collect();
        let r = post(
            "/v1/datasets/z/records",
            "zstd",
            "application/x-ndjson",
            zstd(ndjson.as_bytes()),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 202, "{db:?}");
        assert_eq!(r.json::<Json>().await.unwrap()["accepted"], 40);

        let counters = json!({"stage": "online", "counters": {"requests": 7}}).to_string();
        let r = post(
            "/v1/datasets/z/counters",
            "zstd",
            "application/json",
            zstd(counters.as_bytes()),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200, "{db:?}");
        assert_eq!(r.json::<Json>().await.unwrap()["counters"], 1);

        // An unknown coding is refused naming the two driftd takes; a corrupt body is a 400.
        for path in [
            "/v1/datasets/z/records",
            "/v1/datasets/z/profiles?run_id=r2",
            "/v1/datasets/z/counters",
        ] {
            let r = post(path, "br", "application/json", b"{}".to_vec())
                .await
                .unwrap();
            assert_eq!(r.status(), 415, "{path}");
            let body: Json = r.json().await.unwrap();
            assert_eq!(
                body["error"],
                "Content-Encoding \"br\" is not supported; send the body uncompressed or as gzip or zstd",
                "{path}"
            );
            let r = post(path, "gzip", "application/json", b"not gzip".to_vec())
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{path}");
            let body: Json = r.json().await.unwrap();
            assert!(
                body["error"]
                    .as_str()
                    .unwrap()
                    .starts_with("the body is not valid gzip"),
                "{path}: {body}"
            );
        }
        let text = app.metrics().await;
        for line in [
            "driftd_ingest_dropped_total{reason=\"unsupported_media_type\"} 1",
            "driftd_ingest_dropped_total{reason=\"invalid_request\"} 1",
            "driftd_records_total{dataset=\"z\",stage=\"online\"} 340",
        ] {
            assert!(text.contains(line), "{db:?}: {line} missing from\n{text}");
        }
        app.stop().await;
    }
}

/// The peak resident memory of a process, in bytes (Linux).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// 200 MB of zeros as gzip (200 members of 1 MiB, 200 KB on the wire: one body, RFC 1952) and
/// as zstd (200 frames): `413` within seconds, and the daemon's peak memory stays far below what
/// decoding either whole would take. Made of repeated members so that a debug build makes it in
/// milliseconds; a single member over the limit is refused the same way (`serve::api::body`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decompression_bomb_is_refused_while_it_streams() {
    const MIB: usize = 1 << 20;
    let zeros = vec![0u8; MIB];
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&zeros).unwrap();
    let gzip_member = e.finish().unwrap();
    let zstd_frame = zstd::encode_all(zeros.as_slice(), 19).unwrap();
    let mut decoded = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(gzip_member.as_slice()),
        &mut decoded,
    )
    .unwrap();
    assert_eq!(decoded.len(), MIB);
    assert_eq!(zstd::decode_all(zstd_frame.as_slice()).unwrap().len(), MIB);
    let (gzip_bomb, zstd_bomb) = (gzip_member.repeat(200), zstd_frame.repeat(200));
    assert!(gzip_bomb.len() < 300_000, "{} bytes", gzip_bomb.len());

    let dir = TempDir::new().unwrap();
    let url = format!("sqlite://{}", dir.path().join("driftd.db").display());
    let (child, base) = spawn_binary(&url, &[], std::process::Stdio::null()).await;
    let pid = child.id().unwrap();
    let before = peak_rss(pid);
    // A 413 before the body is read closes the connection: no connection is reused after one.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for (encoding, bomb) in [("gzip", &gzip_bomb), ("zstd", &zstd_bomb)] {
        for path in ["/v1/datasets/b/records", "/v1/inference-logs"] {
            let started = Instant::now();
            let r = client
                .post(format!("{base}{path}"))
                .header("content-encoding", encoding)
                .header("content-type", "application/json")
                .header("ce-specversion", "1.0")
                .header("ce-type", "org.kubeflow.serving.inference.request")
                .header("ce-id", "bomb")
                .header("ce-inferenceservicename", "b")
                .body(bomb.clone())
                .send()
                .await
                .unwrap();
            let took = started.elapsed();
            assert_eq!(r.status(), 413, "{encoding} {path}");
            let body: Json = r.json().await.unwrap();
            assert_eq!(body["error"], "request body larger than 8388608 bytes");
            assert!(
                took < Duration::from_secs(5),
                "{encoding} {path}: 413 after {took:?}"
            );
            eprintln!(
                "{encoding} bomb ({} bytes) on {path}: 413 after {took:?}",
                bomb.len()
            );
        }
    }
    let after = peak_rss(pid);
    eprintln!(
        "peak RSS {} MiB before, {} MiB after",
        before >> 20,
        after >> 20
    );
    // Decoding whole would take 200 MiB at least; the cap holds 8 MiB per body.
    assert!(
        after < before + (48 << 20),
        "peak RSS grew from {before} to {after} bytes"
    );
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("driftd_ingest_dropped_total{reason=\"too_large\"} 4"),
        "{metrics}"
    );
    drop(child);
}
