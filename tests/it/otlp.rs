//! Spans over OTLP, received by a collector built here from the official protobuf definitions
//! (opentelemetry-proto), over gRPC and HTTP/protobuf; and JSON log lines with trace ids.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Value as Json, json};
use tempfile::TempDir;

use crate::helpers::reference_profile;
use crate::serve::{drifted_records, spawn_binary};

/// The caller's span, as a model server would send it.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Export requests as the collector received them.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// A received span with its resource's attributes.
struct Exported {
    resource: HashMap<String, Any>,
    span: Span,
}

impl Received {
    fn spans(&self) -> Vec<Exported> {
        let mut spans = Vec::new();
        for request in self.0.lock().unwrap().iter() {
            for resource_spans in &request.resource_spans {
                let resource = attributes(
                    &resource_spans
                        .resource
                        .as_ref()
                        .map(|r| r.attributes.clone())
                        .unwrap_or_default(),
                );
                for scope in &resource_spans.scope_spans {
                    for span in &scope.spans {
                        spans.push(Exported {
                            resource: resource.clone(),
                            span: span.clone(),
                        });
                    }
                }
            }
        }
        spans
    }
}

fn attributes(list: &[KeyValue]) -> HashMap<String, Any> {
    list.iter()
        .filter_map(|kv| {
            let value = kv.value.clone()?.value?;
            Some((kv.key.clone(), value))
        })
        .collect()
}

fn text(value: Option<&Any>) -> Option<&str> {
    match value {
        Some(Any::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn int(value: Option<&Any>) -> Option<i64> {
    match value {
        Some(Any::IntValue(n)) => Some(*n),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An OTLP/gRPC collector on a free port: its endpoint and what it receives.
async fn grpc_collector() -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let received = Received::default();
    let service = TraceServiceServer::new(received.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (format!("http://{address}"), received)
}

/// An OTLP/HTTP collector (`POST /v1/traces`, protobuf bodies) on a free port.
async fn http_collector() -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let received = Received::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| async move {
                assert_eq!(
                    headers.get("content-type").unwrap(),
                    "application/x-protobuf"
                );
                let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                store.0.lock().unwrap().push(request);
                (
                    [("content-type", "application/x-protobuf")],
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), received)
}

/// SIGTERM, then the exit status and everything driftd logged.
async fn stop(mut child: tokio::process::Child) -> (Option<i32>, String) {
    let pid = child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("driftd exits after SIGTERM")
        .unwrap();
    let mut logs = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut logs)
        .await
        .unwrap();
    (status.code(), logs)
}

/// The environment of a `driftd serve` that exports to `endpoint` and evaluates quickly.
fn exporting_env<'a>(endpoint: &'a str, protocol: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        ("OTEL_SERVICE_NAME", "driftd-under-test"),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment.name=test,k8s.pod.name=sidecar-7",
        ),
        ("DRIFTD_WINDOW", "1500ms"),
        ("DRIFTD_EVAL_INTERVAL", "200ms"),
        ("DRIFTD_FLUSH_INTERVAL", "100ms"),
        ("DRIFTD_TRACE_RECORD_SAMPLE_RATE", "1"),
        ("DRIFTD_TRACE_RECORD_MAX_ATTRIBUTES", "4"),
        ("DRIFTD_LOG_FORMAT", "json"),
        ("DRIFTD_LOG", "info,driftd=debug"),
    ]
}

/// A batch of 300 drifted records and one that is not an object, with labels.
fn labelled_batch() -> Json {
    let mut records = drifted_records(300);
    for (i, r) in records.iter_mut().enumerate() {
        r["_id"] = json!(format!("req-{i}"));
    }
    records.push(json!("not a record"));
    json!({
        "records": records,
        "labels": {"model_version": "ranker-v42", "host": "gpu-node-3", "flag.new_ranker": "on"},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_collector_over_grpc() {
    let (endpoint, received) = grpc_collector().await;
    spans_reach_a_collector(&endpoint, "grpc", received).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_collector_over_http_protobuf() {
    let (endpoint, received) = http_collector().await;
    spans_reach_a_collector(&endpoint, "http/protobuf", received).await;
}

/// The API token of the spans test: its name may reach spans, never its value.
const SPAN_TOKEN: &str = "span-test-token-0123456789abcdef";

/// A webhook receiver that answers 200: its URL (with a path that must not leak).
async fn webhook() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/hooks/s3cr3t-token",
        axum::routing::post(|| async { "ok" }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/hooks/s3cr3t-token")
}

async fn spans_reach_a_collector(endpoint: &str, protocol: &str, received: Received) {
    let dir = TempDir::new().unwrap();
    let url = format!("sqlite://{}", dir.path().join("driftd.db").display());
    let hook = webhook().await;
    let mut env = exporting_env(endpoint, protocol);
    env.extend([
        ("DRIFTD_WEBHOOK_URL", hook.as_str()),
        ("DRIFTD_ALERT_FOR", "0s"),
        ("DRIFTD_API_TOKEN", SPAN_TOKEN),
    ]);
    let (child, base) = spawn_binary(&url, &env, std::process::Stdio::piped()).await;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {SPAN_TOKEN}").parse().unwrap(),
    );
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    let r = client
        .post(format!("{base}/v1/datasets/search/profiles?run_id=train-1"))
        .body(reference_profile(&dir))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = client
        .post(format!("{base}/v1/datasets/search/records"))
        .header("traceparent", TRACEPARENT)
        .header("tracestate", "vendor=opaque")
        .json(&labelled_batch())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let answer: Json = r.json().await.unwrap();
    assert_eq!(
        (answer["accepted"].as_u64(), answer["rejected"].as_u64()),
        (Some(300), Some(1))
    );
    // Evaluated: a verdict exists.
    crate::helpers::wait_for_json(
        &client,
        &format!("{base}/v1/datasets/search/drift"),
        20,
        |v| v["drifted"].is_array(),
    )
    .await;
    // The drift alert fired and its notification was delivered.
    crate::helpers::wait_for_json(&client, &format!("{base}/v1/alerts"), 20, |v| {
        v["alerts"][0]["last_delivery"].is_string()
    })
    .await;
    let (status, logs) = stop(child).await;
    assert_eq!(status, Some(0), "{logs}");

    let spans = received.spans();
    assert!(
        !spans.is_empty(),
        "the collector received nothing over {protocol}: {logs}"
    );

    // The resource: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
    let resource = &spans[0].resource;
    assert_eq!(
        text(resource.get("service.name")),
        Some("driftd-under-test")
    );
    assert_eq!(
        text(resource.get("deployment.environment.name")),
        Some("test")
    );
    assert_eq!(text(resource.get("k8s.pod.name")), Some("sidecar-7"));
    assert!(text(resource.get("service.version")).is_some());

    // Only driftd's own spans: none from the exporter's HTTP or gRPC traffic, nor the database.
    for exported in &spans {
        assert!(
            ["ingest", "evaluate", "notify"].contains(&exported.span.name.as_str()),
            "unexpected span {:?}",
            exported.span.name
        );
    }

    // The record batch's span joined the caller's trace, under the caller's span.
    let ingest: Vec<&Span> = spans
        .iter()
        .map(|e| &e.span)
        .filter(|s| {
            s.name == "ingest"
                && text(attributes(&s.attributes).get("ingest.kind")) == Some("records")
        })
        .collect();
    assert_eq!(ingest.len(), 1, "one ingest span per batch");
    let span = ingest[0];
    assert_eq!(hex(&span.trace_id), TRACE_ID);
    assert_eq!(hex(&span.parent_span_id), PARENT_SPAN_ID);
    assert_eq!(span.kind, 2, "a server span");
    let a = attributes(&span.attributes);
    assert_eq!(text(a.get("dataset")), Some("search"));
    assert_eq!(text(a.get("stage")), Some("online"));
    assert_eq!(text(a.get("label.model_version")), Some("ranker-v42"));
    assert_eq!(text(a.get("label.host")), Some("gpu-node-3"));
    assert_eq!(text(a.get("label.flag.new_ranker")), Some("on"));
    assert_eq!(int(a.get("records.accepted")), Some(300));
    assert_eq!(int(a.get("records.rejected")), Some(1));
    assert_eq!(int(a.get("records.sampled")), Some(300));
    assert_eq!(int(a.get("http.response.status_code")), Some(202));

    // Sampling rate 1: every record is a `record` event, its values capped at 4 attributes.
    let records: Vec<HashMap<String, Any>> = span
        .events
        .iter()
        .filter(|e| e.name == "record")
        .map(|e| attributes(&e.attributes))
        .collect();
    assert_eq!(records.len(), 300);
    let first = records
        .iter()
        .find(|r| text(r.get("record.id")) == Some("req-0"))
        .expect("record req-0");
    assert_eq!(int(first.get("record.position")), Some(0));
    let features: Vec<&String> = first.keys().filter(|k| k.starts_with("feature.")).collect();
    assert_eq!(features.len(), 4, "{features:?}");
    assert_eq!(int(first.get("record.features_omitted")), Some(2));
    // serde_json keeps keys sorted: the first four features by name.
    assert!(matches!(first.get("feature.country"), Some(Any::StringValue(c)) if c == "US"));
    assert!(matches!(first.get("feature.latency_ms"), Some(Any::DoubleValue(x)) if *x == 200.0));

    // The profile upload has its own span, with its run id.
    let upload = spans
        .iter()
        .map(|e| &e.span)
        .find(|s| text(attributes(&s.attributes).get("ingest.kind")) == Some("profile"))
        .expect("profile upload span");
    let a = attributes(&upload.attributes);
    assert_eq!(text(a.get("stage")), Some("offline"));
    assert_eq!(text(a.get("run_id")), Some("train-1"));
    assert_eq!(
        text(a.get("auth.token")),
        Some("api_token"),
        "the token's name"
    );
    assert_eq!(int(a.get("http.response.status_code")), Some(201));
    assert_eq!(
        int(a.get("records.accepted")),
        Some(1000),
        "the profile's rows"
    );
    assert_ne!(
        hex(&upload.trace_id),
        TRACE_ID,
        "no traceparent, a trace of its own"
    );

    // Evaluations: per-feature verdicts as events.
    let evaluation = spans
        .iter()
        .map(|e| &e.span)
        .filter(|s| s.name == "evaluate")
        .find(|s| s.events.iter().any(|e| e.name == "feature"))
        .expect("an evaluation with feature events");
    let a = attributes(&evaluation.attributes);
    assert_eq!(text(a.get("dataset")), Some("search"));
    assert_eq!(text(a.get("reference.run_id")), Some("train-1"));
    assert!(int(a.get("features.drifted")).unwrap() >= 1);
    let features: Vec<HashMap<String, Any>> = evaluation
        .events
        .iter()
        .filter(|e| e.name == "feature")
        .map(|e| attributes(&e.attributes))
        .collect();
    assert_eq!(int(a.get("features.compared")), Some(features.len() as i64));
    let latency = features
        .iter()
        .find(|f| text(f.get("feature")) == Some("latency_ms"))
        .expect("latency_ms verdict");
    assert_eq!(text(latency.get("method")), Some("psi"));
    assert!(matches!(latency.get("threshold"), Some(Any::DoubleValue(t)) if *t == 0.2));
    assert!(matches!(latency.get("score"), Some(Any::DoubleValue(s)) if *s > 0.2));
    assert!(matches!(latency.get("drift"), Some(Any::BoolValue(true))));
    // Drifted features come first.
    assert!(matches!(
        features[0].get("drift"),
        Some(Any::BoolValue(true))
    ));

    // Notification attempts, without the webhook's URL.
    let notify = spans
        .iter()
        .map(|e| &e.span)
        .find(|s| s.name == "notify")
        .expect("a notify span");
    let a = attributes(&notify.attributes);
    assert_eq!(text(a.get("notifier")), Some("webhook"));
    assert_eq!(text(a.get("outcome")), Some("sent"));
    assert_eq!(int(a.get("attempt")), Some(1));
    assert_eq!(int(a.get("http.response.status_code")), Some(200));
    let everything = format!("{:?}", received.0.lock().unwrap());
    assert!(
        !everything.contains("s3cr3t"),
        "the webhook URL stays out of spans"
    );
    assert!(!logs.contains("s3cr3t"), "and out of logs");
    assert!(
        !everything.contains(SPAN_TOKEN) && !logs.contains(SPAN_TOKEN),
        "the API token stays out of spans and logs"
    );

    // The JSON log line written inside the ingest span carries its trace and span ids.
    let line = ingest_log_line(&logs);
    assert_eq!(line["trace_id"], TRACE_ID);
    assert_eq!(line["span_id"], hex(&span.span_id));
    assert_eq!(line["span"]["name"], "ingest");
    assert_eq!(line["accepted"], 300);
}

/// The "Records ingested" line, parsed; every line must be JSON.
fn ingest_log_line(logs: &str) -> Json {
    let lines: Vec<Json> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    lines
        .into_iter()
        .find(|l| l["message"] == "Records ingested")
        .unwrap_or_else(|| panic!("no ingest log line in {logs}"))
}

/// No endpoint: nothing is exported, ingest works, and log lines still carry the caller's
/// trace id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_nothing_is_exported_and_logs_carry_trace_ids() {
    let dir = TempDir::new().unwrap();
    let url = format!("sqlite://{}", dir.path().join("driftd.db").display());
    let (child, base) = spawn_binary(
        &url,
        &[
            ("DRIFTD_LOG_FORMAT", "json"),
            ("DRIFTD_LOG", "info,driftd=debug"),
            ("DRIFTD_TRACE_RECORD_SAMPLE_RATE", "0.5"),
        ],
        std::process::Stdio::piped(),
    )
    .await;
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/datasets/search/records"))
        .header("traceparent", TRACEPARENT)
        .json(&labelled_batch())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let (status, logs) = stop(child).await;
    assert_eq!(status, Some(0), "{logs}");
    let line = ingest_log_line(&logs);
    assert_eq!(line["trace_id"], TRACE_ID);
    assert_eq!(line["span_id"].as_str().map(str::len), Some(16));
    assert_ne!(line["span_id"], PARENT_SPAN_ID, "driftd's own span");
    // Lines outside any span have no ids.
    let outside = logs
        .lines()
        .map(|l| serde_json::from_str::<Json>(l).unwrap())
        .find(|l| l["message"] == "driftd serving")
        .unwrap();
    assert!(outside.get("trace_id").is_none(), "{outside}");
}

/// A collector that accepts connections and never answers: ingest answers 202 as fast as
/// ever, and driftd still stops promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_collector_never_slows_ingest() {
    for protocol in ["grpc", "http/protobuf"] {
        // Bound and listening, never accepting: connections hang until the export times out.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", silent.local_addr().unwrap());
        let dir = TempDir::new().unwrap();
        let url = format!("sqlite://{}", dir.path().join("driftd.db").display());
        let mut env = exporting_env(&endpoint, protocol);
        env.push(("OTEL_BSP_SCHEDULE_DELAY", "50"));
        let (child, base) = spawn_binary(&url, &env, std::process::Stdio::piped()).await;
        let client = reqwest::Client::new();
        let mut slowest = Duration::ZERO;
        for _ in 0..30 {
            let started = Instant::now();
            let r = client
                .post(format!("{base}/v1/datasets/search/records"))
                .header("traceparent", TRACEPARENT)
                .json(&labelled_batch())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
            slowest = slowest.max(started.elapsed());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Far below the exporter's 10 s timeout, which a request waiting for it would take.
        assert!(
            slowest < Duration::from_secs(2),
            "{protocol}: slowest ingest took {slowest:?}"
        );
        let started = Instant::now();
        let (status, logs) = stop(child).await;
        assert_eq!(status, Some(0), "{logs}");
        // The shutdown grace (10 s at most) plus the exporter's 5 s.
        assert!(
            started.elapsed() < Duration::from_secs(16),
            "{protocol}: stopping took {:?}",
            started.elapsed()
        );
        drop(silent);
    }
}

/// Traces do not depend on the log level: with `DRIFTD_LOG=warn`, batches still have spans.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_whatever_the_log_level() {
    let (endpoint, received) = http_collector().await;
    let dir = TempDir::new().unwrap();
    let url = format!("sqlite://{}", dir.path().join("driftd.db").display());
    let (child, base) = spawn_binary(
        &url,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("DRIFTD_LOG", "warn"),
        ],
        std::process::Stdio::piped(),
    )
    .await;
    for _ in 0..3 {
        let r = reqwest::Client::new()
            .post(format!("{base}/v1/datasets/search/records"))
            .json(&labelled_batch())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    let (status, logs) = stop(child).await;
    assert_eq!(status, Some(0), "{logs}");
    assert!(logs.is_empty(), "nothing at warn: {logs}");
    let spans = received.spans();
    let ingest = spans.iter().filter(|e| e.span.name == "ingest").count();
    assert_eq!(ingest, 3, "one span per batch");
    // The default protocol is http/protobuf and the default service name driftd.
    assert_eq!(text(spans[0].resource.get("service.name")), Some("driftd"));
}

/// Training/serving feature skew on the `evaluate` span: `skew.joined`, and a `feature_skew`
/// event for the feature posted in seconds online and in milliseconds offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skewed_features_are_events_of_the_evaluation() {
    use crate::skew_online::{IDS, records};
    let (endpoint, received) = grpc_collector().await;
    let dir = TempDir::new().unwrap();
    let url = format!("sqlite://{}", dir.path().join("driftd.db").display());
    let mut env = exporting_env(&endpoint, "grpc");
    env.retain(|(k, _)| *k != "DRIFTD_WINDOW");
    env.push(("DRIFTD_WINDOW", "30s"));
    let (child, base) = spawn_binary(&url, &env, std::process::Stdio::piped()).await;
    let client = reqwest::Client::new();
    for (path, seconds) in [
        ("/v1/datasets/rank/records?stage=offline&run_id=r1", false),
        ("/v1/datasets/rank/records", true),
    ] {
        let r = client
            .post(format!("{base}{path}"))
            .json(&json!({"records": records(seconds)}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        if !seconds {
            let reference = format!("{base}/v1/datasets/rank/reference");
            crate::helpers::wait_for_json(&client, &reference, 20, |v| v["run_id"] == "r1").await;
        }
    }
    let drift = format!("{base}/v1/datasets/rank/drift");
    crate::helpers::wait_for_json(&client, &drift, 20, |v| {
        v["schema"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["check"] == "feature_skew"))
    })
    .await;
    let (status, logs) = stop(child).await;
    assert_eq!(status, Some(0), "{logs}");

    let spans = received.spans();
    let evaluation = spans
        .iter()
        .map(|e| &e.span)
        .filter(|s| s.name == "evaluate")
        .find(|s| s.events.iter().any(|e| e.name == "feature_skew"))
        .expect("an evaluation with a feature_skew event");
    let a = attributes(&evaluation.attributes);
    assert_eq!(int(a.get("skew.joined")), Some(IDS as i64));
    assert_eq!(int(a.get("skew.skewed")), Some(1));
    let events: Vec<HashMap<String, Any>> = evaluation
        .events
        .iter()
        .filter(|e| e.name == "feature_skew")
        .map(|e| attributes(&e.attributes))
        .collect();
    assert_eq!(events.len(), 1, "only the skewed feature");
    let e = &events[0];
    assert_eq!(text(e.get("feature")), Some("latency_ms"));
    assert!(matches!(e.get("mismatch_ratio"), Some(Any::DoubleValue(r)) if *r == 1.0));
    assert_eq!(int(e.get("compared")), Some(IDS as i64));
    assert_eq!(int(e.get("mismatched")), Some(IDS as i64));
    assert!(matches!(e.get("threshold"), Some(Any::DoubleValue(t)) if *t == 0.005));
    assert_eq!(
        text(e.get("verdict")),
        Some(
            "latency_ms differs in 100% of 300 joined examples; median ratio online/offline 0.001"
        )
    );
}
