//! API tokens and scopes over real HTTP: 401 with `WWW-Authenticate: Bearer` without a valid
//! token, 403 for a scope the token lacks (and nothing changed), probes always open, and the
//! probe listener serving `/metrics`, `/healthz` and `/readyz` without a token.

use driftd::auth::{Scope, Token};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tempfile::TempDir;

use crate::helpers::{Db, driftd, fresh_database, sample, spawn_app, stderr, test_config};

pub const SIDECAR: &str = "sidecar-token-0123456789abcdef";
pub const PIPELINE: &str = "pipeline-token-0123456789abcdef";
pub const READER: &str = "reader-token-0123456789abcdef";
pub const ADMIN: &str = "admin-token-0123456789abcdef";

/// One token per scope (admin also reads), shared by every test of scopes.
pub fn tokens() -> Vec<Token> {
    vec![
        Token::from_secret("sidecar", vec![Scope::Online], SIDECAR),
        Token::from_secret("pipeline", vec![Scope::Offline], PIPELINE),
        Token::from_secret("reader", vec![Scope::Read], READER),
        Token::from_secret("admin", vec![Scope::Admin, Scope::Read], ADMIN),
    ]
}

async fn call(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (StatusCode, Option<String>, String) {
    let mut request = client.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.unwrap();
    let status = r.status();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, challenge, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_needs_its_scope_and_refusals_change_nothing() {
    let dir = TempDir::new().unwrap();
    let db = fresh_database(Db::Sqlite, dir.path()).await.unwrap();
    let mut config = test_config(&db);
    config.file_tokens = tokens();
    let app = spawn_app(config).await;
    let c = &app.client;
    let url = |p: &str| app.url(p);
    let records = json!({"records": [{"latency_ms": 12.5, "country": "DE"}]});

    // Probes never need a token.
    for probe in ["/healthz", "/readyz"] {
        let (status, _, _) = call(c, Method::GET, &url(probe), None, None).await;
        assert_eq!(status, 200, "{probe}");
    }
    // No token, a wrong one, another scheme: 401 with the challenge.
    for token in [None, Some("not-a-token-0123456789")] {
        let (status, challenge, body) = call(c, Method::GET, &url("/metrics"), token, None).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(challenge.as_deref(), Some(r#"Bearer realm="driftd""#));
        assert!(body.contains("bearer token"), "{body}");
    }
    // Basic carries the token as its password (what an inference logger given a URL with
    // user info sends); a wrong password is refused like a wrong bearer token.
    let r = c
        .get(url("/v1/alerts"))
        .basic_auth("reader", Some(READER))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(url("/v1/alerts"))
        .basic_auth(READER, Some("not-a-token-0123456789"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"].to_str().unwrap(),
        r#"Bearer realm="driftd""#
    );

    // Reads need `read`.
    let (status, _, body) = call(c, Method::GET, &url("/metrics"), Some(READER), None).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("driftd_records_total") || body.contains("# EOF"),
        "{body}"
    );
    let (status, challenge, body) =
        call(c, Method::GET, &url("/metrics"), Some(SIDECAR), None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        challenge.as_deref(),
        Some(r#"Bearer realm="driftd", error="insufficient_scope""#)
    );
    assert!(
        body.contains(r#"token \"sidecar\" lacks the read scope"#),
        "{body}"
    );
    assert!(!body.contains(SIDECAR), "{body}");

    // Online records need `online`; offline ones `offline`.
    let online = url("/v1/datasets/search/records");
    let (status, _, body) = call(
        c,
        Method::POST,
        &online,
        Some(SIDECAR),
        Some(records.clone()),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let (status, _, body) = call(
        c,
        Method::POST,
        &online,
        Some(PIPELINE),
        Some(records.clone()),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("lacks the online scope"), "{body}");
    let offline = url("/v1/datasets/search/records?stage=offline&run_id=r1");
    let (status, _, body) = call(
        c,
        Method::POST,
        &offline,
        Some(SIDECAR),
        Some(records.clone()),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("lacks the offline scope"), "{body}");
    let (status, _, body) = call(
        c,
        Method::POST,
        &offline,
        Some(PIPELINE),
        Some(records.clone()),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    // A reader cannot ingest at all, and an admin token without a stage scope neither.
    for token in [READER, ADMIN] {
        let (status, _, _) =
            call(c, Method::POST, &online, Some(token), Some(records.clone())).await;
        assert_eq!(status, 403);
    }

    // Counters carry their stage in the body: checked there, and nothing is stored.
    let counters = url("/v1/datasets/search/counters");
    let body = json!({"stage": "offline", "run_id": "r9", "counters": {"rows_read": 10}});
    let (status, _, text) = call(
        c,
        Method::POST,
        &counters,
        Some(SIDECAR),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 403, "{text}");
    let (_, _, listed) = call(c, Method::GET, &counters, Some(READER), None).await;
    assert!(!listed.contains("rows_read"), "{listed}");
    let (status, _, text) = call(c, Method::POST, &counters, Some(PIPELINE), Some(body)).await;
    assert_eq!(status, 200, "{text}");

    // Changing what driftd believes needs `admin`.
    let reference = url("/v1/datasets/search/reference");
    let pin = json!({"run_id": "r1"});
    for token in [SIDECAR, PIPELINE, READER] {
        let (status, _, _) = call(c, Method::PUT, &reference, Some(token), Some(pin.clone())).await;
        assert_eq!(status, 403);
    }
    let (_, _, pinned) = call(c, Method::GET, &reference, Some(READER), None).await;
    assert!(!pinned.contains("\"pinned\":true"), "{pinned}");
    let silence = url("/v1/alerts/0123456789abcdef/silence");
    let (status, _, _) = call(
        c,
        Method::POST,
        &silence,
        Some(PIPELINE),
        Some(json!({"for": "1h"})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = call(c, Method::PUT, &reference, Some(ADMIN), Some(pin)).await;
    assert_ne!(status, 401);
    assert_ne!(status, 403);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_listener_serves_metrics_and_probes_without_a_token() {
    let dir = TempDir::new().unwrap();
    let db = fresh_database(Db::Sqlite, dir.path()).await.unwrap();
    let mut config = test_config(&db);
    config.file_tokens = tokens();
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let probes = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_address = api.local_addr().unwrap();
    let probe_address = probes.local_addr().unwrap();
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
    let c = reqwest::Client::new();
    let probe = |p: &str| format!("http://{probe_address}{p}");
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(r) = c.get(probe("/readyz")).send().await
            && r.status() == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(ready, "the probe listener never became ready");
    let r = c.get(probe("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.get(probe("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().ends_with("# EOF\n"));
    // Nothing else is served there.
    for path in ["/v1/alerts", "/v1/datasets/search/drift"] {
        let r = c.get(probe(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    // The API listener still wants its token for /metrics.
    let r = c
        .get(format!("http://{api_address}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    // Both listeners are closed once the server stopped.
    assert!(c.get(probe("/healthz")).send().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driftd_push_sends_its_token_and_names_a_refusal() {
    let dir = TempDir::new().unwrap();
    let db = fresh_database(Db::Sqlite, dir.path()).await.unwrap();
    let mut config = test_config(&db);
    config.file_tokens = tokens();
    let app = spawn_app(config).await;
    let base = format!("http://{}", app.address);
    let data = sample();
    let args = [
        "push",
        data.as_str(),
        "--url",
        base.as_str(),
        "--dataset",
        "ranking",
        "--run-id",
        "r1",
        "--attempts",
        "1",
    ];
    let push = |token: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_driftd"));
        cmd.args(args).env_remove("DRIFTD_TOKEN");
        if let Some(token) = token {
            cmd.env("DRIFTD_TOKEN", token);
        }
        cmd.output().unwrap()
    };
    let out = push(None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("(401)"), "{}", stderr(&out));
    let out = push(Some(SIDECAR));
    assert!(stderr(&out).contains("(403)"), "{}", stderr(&out));
    assert!(!stderr(&out).contains(SIDECAR));
    let out = push(Some(PIPELINE));
    assert!(out.status.success(), "{}", stderr(&out));
    let help = driftd(&["push", "--help"]);
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("DRIFTD_TOKEN"), "{help}");
    app.stop().await;
}
