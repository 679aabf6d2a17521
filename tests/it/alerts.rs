//! Alerts end to end against a local stand-in for Slack's incoming webhooks: one message when
//! inputs drift and one when they recover, none twice — through restarts, rate limits (429 with
//! Retry-After), server errors, permanent errors and crashes; on SQLite and PostgreSQL.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value as Json, json};
use tempfile::TempDir;

use crate::helpers::{
    BOTH, Db, TestApp, fresh_database, reference_profile, sample, spawn_app, test_config,
    wait_for_json,
};

/// What the stand-in answers, in order; then 200 "ok" as Slack does.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    Status(u16),
    RateLimited { retry_after: u64 },
    Slow(Duration),
}

/// One request as the stand-in saw it.
#[derive(Clone, Debug)]
pub struct Request {
    pub at: Instant,
    pub path: String,
    pub headers: axum::http::HeaderMap,
    pub raw: Vec<u8>,
    pub body: Json,
}

#[derive(Default)]
struct Receiver {
    answers: VecDeque<Answer>,
    received: Vec<Request>,
}

/// A local HTTP receiver that behaves like a Slack incoming webhook.
pub struct SlackStandIn {
    pub url: String,
    state: Arc<Mutex<Receiver>>,
}

impl SlackStandIn {
    pub async fn start(answers: &[Answer]) -> SlackStandIn {
        let state = Arc::new(Mutex::new(Receiver {
            answers: answers.iter().copied().collect(),
            received: Vec::new(),
        }));
        async fn post(
            State(state): State<Arc<Mutex<Receiver>>>,
            uri: axum::http::Uri,
            headers: axum::http::HeaderMap,
            raw: axum::body::Bytes,
        ) -> axum::response::Response {
            let answer = {
                let mut s = state.lock().unwrap();
                s.received.push(Request {
                    at: Instant::now(),
                    path: uri.path().to_owned(),
                    headers,
                    raw: raw.to_vec(),
                    body: serde_json::from_slice(&raw).unwrap_or(Json::Null),
                });
                s.answers.pop_front()
            };
            match answer {
                None => (StatusCode::OK, "ok").into_response(),
                Some(Answer::Status(404)) => (StatusCode::NOT_FOUND, "no_service").into_response(),
                Some(Answer::Status(410)) => {
                    (StatusCode::GONE, "channel_is_archived").into_response()
                }
                Some(Answer::Status(400)) => {
                    (StatusCode::BAD_REQUEST, "invalid_payload").into_response()
                }
                Some(Answer::Status(code)) => {
                    (StatusCode::from_u16(code).unwrap(), "error").into_response()
                }
                Some(Answer::RateLimited { retry_after }) => (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", retry_after.to_string())],
                    "rate_limited",
                )
                    .into_response(),
                Some(Answer::Slow(d)) => {
                    tokio::time::sleep(d).await;
                    (StatusCode::OK, "ok").into_response()
                }
            }
        }
        let app = axum::Router::new()
            .route("/{*path}", axum::routing::post(post))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/services/T0001/B0001/SECRETtoken42",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        SlackStandIn { url, state }
    }

    pub fn received(&self) -> Vec<(Instant, Json)> {
        self.requests()
            .into_iter()
            .map(|r| (r.at, r.body))
            .collect()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().received.clone()
    }

    pub async fn wait_for(&self, n: usize, seconds: u64) -> Vec<(Instant, Json)> {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} Slack messages, got {}: {got:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Records like the reference: the sample file's rows.
fn good_records() -> Vec<Json> {
    let mut reader = csv::Reader::from_path(sample()).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            json!({
                "query_len": r[0].parse::<f64>().unwrap(),
                "latency_ms": r[1].parse::<f64>().unwrap(),
                "country": &r[2],
                "is_mobile": &r[3] == "true",
                "position": r[4].parse::<f64>().unwrap(),
                "user_age": r[5].parse::<f64>().ok(),
            })
        })
        .collect()
}

/// Records whose latency moved far from the reference.
pub fn drifted_records() -> Vec<Json> {
    good_records()
        .into_iter()
        .map(|mut r| {
            r["latency_ms"] = json!(r["latency_ms"].as_f64().unwrap() * 10.0 + 300.0);
            r
        })
        .collect()
}

pub fn alert_config(url: &str, slack: &str) -> driftd::config::ServeConfig {
    let mut config = test_config(url);
    config.slack_webhook_url = Some(driftd::config::Secret::new(slack));
    config.alert_for = Duration::ZERO;
    config.window = Duration::from_millis(800);
    config
}

pub async fn start(app: &TestApp, dir: &TempDir, records: Vec<Json>) {
    let r = app
        .client
        .post(app.url("/v1/datasets/search/profiles?run_id=train"))
        .body(reference_profile(dir))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    post(app, records).await;
}

pub async fn post(app: &TestApp, records: Vec<Json>) {
    let r = app
        .send_json(
            reqwest::Method::POST,
            "/v1/datasets/search/records",
            &json!({ "records": records }),
        )
        .await;
    assert_eq!(r.status(), 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_when_inputs_drift_one_when_they_recover_none_twice() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let slack = SlackStandIn::start(&[]).await;
        let app = spawn_app(alert_config(&url, &slack.url)).await;
        start(&app, &dir, drifted_records()).await;

        let got = slack.wait_for(1, 15).await;
        let firing = &got[0].1;
        let text = firing.to_string();
        assert!(
            text.contains("search") && text.contains("latency_ms"),
            "{db:?}: {text}"
        );
        assert!(!text.to_lowercase().contains("resolved"), "{text}");
        let alerts = wait_for_json(&app.client, &app.url("/v1/alerts"), 10, |v| {
            v["alerts"][0]["last_delivery"]
                .as_str()
                .is_some_and(|d| d.contains("sent"))
        })
        .await;
        let alert = &alerts["alerts"][0];
        assert_eq!(alert["state"], "firing");
        assert_eq!(alert["rule"], "input_drift");
        assert_eq!(alert["dataset"], "search");
        assert_eq!(alert["features"], json!(["latency_ms"]));
        let fingerprint = alert["fingerprint"].as_str().unwrap().to_owned();
        let m = app.metrics().await;
        assert!(m.contains("driftd_alerts{state=\"firing\"} 1"), "{m}");
        assert!(
            m.contains("driftd_notifications_total{notifier=\"slack\",outcome=\"sent\"} 1"),
            "{m}"
        );
        assert!(!m.contains("SECRETtoken42"));
        assert!(!alerts.to_string().contains("SECRETtoken42"));

        // Restart while firing: the alert is still firing, and nothing is sent again.
        app.stop().await;
        let app = spawn_app(alert_config(&url, &slack.url)).await;
        post(&app, drifted_records()).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            slack.received().len(),
            1,
            "{db:?}: sent twice after a restart"
        );
        let alerts: Json = app.get_json("/v1/alerts").await;
        assert_eq!(alerts["alerts"][0]["fingerprint"], fingerprint.as_str());
        assert_eq!(alerts["alerts"][0]["state"], "firing");

        // Recovery: only reference-like records in the recent windows.
        tokio::time::sleep(Duration::from_millis(1700)).await;
        post(&app, good_records()).await;
        let got = slack.wait_for(2, 15).await;
        let resolved = got[1].1.to_string();
        assert!(
            resolved.to_lowercase().contains("resolved"),
            "{db:?}: {resolved}"
        );
        let alerts = wait_for_json(&app.client, &app.url("/v1/alerts"), 10, |v| {
            v["alerts"][0]["state"] == "resolved"
        })
        .await;
        assert_eq!(alerts["alerts"][0]["fingerprint"], fingerprint.as_str());
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(
            slack.received().len(),
            2,
            "{db:?}: exactly one firing and one resolved message"
        );
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_errors_and_permanent_failures() {
    for db in BOTH {
        rate_limits_and_errors(db).await;
        permanent_failures(db).await;
    }
}

/// 429 with Retry-After 2: the next attempt comes 2 s later, never sooner; then a 500.
async fn rate_limits_and_errors(db: Db) {
    let dir = TempDir::new().unwrap();
    let Some(url) = fresh_database(db, dir.path()).await else {
        return;
    };
    let slack =
        SlackStandIn::start(&[Answer::RateLimited { retry_after: 2 }, Answer::Status(500)]).await;
    let app = spawn_app(alert_config(&url, &slack.url)).await;
    start(&app, &dir, drifted_records()).await;
    let got = slack.wait_for(3, 20).await;
    let wait = got[1].0 - got[0].0;
    assert!(
        wait >= Duration::from_secs(2) && wait < Duration::from_millis(3500),
        "retried after {wait:?}"
    );
    // 500: backoff of about a second (±20 %), then delivered.
    let backoff = got[2].0 - got[1].0;
    assert!(
        backoff >= Duration::from_millis(750) && backoff < Duration::from_millis(2500),
        "backoff {backoff:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let m = app.metrics().await;
    for line in [
        "driftd_notifications_total{notifier=\"slack\",outcome=\"rate_limited\"} 1",
        "driftd_notifications_total{notifier=\"slack\",outcome=\"retry\"} 1",
        "driftd_notifications_total{notifier=\"slack\",outcome=\"sent\"} 1",
        "driftd_notifier_failing{notifier=\"slack\"} 0",
    ] {
        assert!(m.contains(line), "{line} missing from\n{m}");
    }
    assert_eq!(slack.received().len(), 3);
    app.stop().await;
}

/// 404 or 410 (a deleted webhook): permanent, counted, no retry storm.
async fn permanent_failures(db: Db) {
    for code in [404, 410] {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            return;
        };
        let slack = SlackStandIn::start(&[Answer::Status(code)]).await;
        let app = spawn_app(alert_config(&url, &slack.url)).await;
        start(&app, &dir, drifted_records()).await;
        slack.wait_for(1, 15).await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(
            slack.received().len(),
            1,
            "{code}: retried a permanent failure"
        );
        let m = app.metrics().await;
        assert!(
            m.contains(
                "driftd_notifications_total{notifier=\"slack\",outcome=\"permanent_failure\"} 1"
            ),
            "{m}"
        );
        assert!(
            m.contains("driftd_notifier_failing{notifier=\"slack\"} 1"),
            "{m}"
        );
        let alerts: Json = app.get_json("/v1/alerts").await;
        let delivery = alerts["alerts"][0]["last_delivery"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            delivery.contains("permanent_failure") && delivery.contains(&code.to_string()),
            "{delivery}"
        );
        app.stop().await;
    }
}

/// `kill -9` while Slack is answering: the notification was not marked sent, so the restarted
/// daemon sends it again — at least once, at most one duplicate per crash. The webhook URL (a
/// secret) never reaches the logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_a_send_resends_once() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let slack = SlackStandIn::start(&[Answer::Slow(Duration::from_secs(5))]).await;
        let env = [
            ("DRIFTD_SLACK_WEBHOOK_URL", slack.url.as_str()),
            ("DRIFTD_ALERT_FOR", "0s"),
            ("DRIFTD_WINDOW", "30s"),
            ("DRIFTD_ROLLUP", "1h"),
            ("DRIFTD_EVAL_INTERVAL", "200ms"),
            ("DRIFTD_FLUSH_INTERVAL", "100ms"),
            // The killed process's lease lapses within 3 s; then the second one evaluates.
            ("DRIFTD_LEADER_LEASE_TTL", "3s"),
            // Restarted under its writer id, the replica takes back the killed run's claim on
            // the notification at once (SQLite: whatever the id) instead of after it lapses.
            ("DRIFTD_WRITER_ID", "replica-0"),
            ("DRIFTD_LOG", "debug,sqlx=warn,hyper=info,reqwest=info"),
        ];
        let (mut first, base) =
            crate::serve::spawn_binary(&url, &env, std::process::Stdio::piped()).await;
        let client = reqwest::Client::new();
        let r = client
            .post(format!("{base}/v1/datasets/search/profiles?run_id=train"))
            .body(reference_profile(&dir))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let r = client
            .post(format!("{base}/v1/datasets/search/records"))
            .json(&json!({"records": drifted_records()}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        slack.wait_for(1, 15).await;
        // Slack has the message but has not answered yet.
        first.start_kill().unwrap();
        first.wait().await.unwrap();
        let mut logs = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut first.stderr.take().unwrap(), &mut logs)
            .await
            .unwrap();

        let (mut second, _) =
            crate::serve::spawn_binary(&url, &env, std::process::Stdio::piped()).await;
        let got = slack.wait_for(2, 15).await;
        assert_eq!(got[0].1, got[1].1, "{db:?}: the same notification, resent");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            slack.received().len(),
            2,
            "{db:?}: at most one duplicate per crash"
        );
        let kill = std::process::Command::new("kill")
            .args(["-TERM", &second.id().unwrap().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        assert_eq!(second.wait().await.unwrap().code(), Some(0));
        tokio::io::AsyncReadExt::read_to_string(&mut second.stderr.take().unwrap(), &mut logs)
            .await
            .unwrap();
        assert!(logs.contains("Notification sent"), "{logs}");
        assert!(
            !logs.contains("SECRETtoken42"),
            "{db:?}: the webhook URL reached the logs"
        );
        let store = driftd::store::Store::connect(&driftd::config::Secret::new(&*url))
            .await
            .unwrap();
        assert_eq!(store.outbox_count("sent").await.unwrap(), 1);
        assert_eq!(store.outbox_count("pending").await.unwrap(), 0);
        store.close().await;
    }
}

/// Rule-file alerts route to the generic webhook (signed) and Alertmanager; an acknowledged
/// alert's resolution is not announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_routes_signed_webhooks_alertmanager_and_silences() {
    for db in BOTH {
        rule_routes_signed_webhooks_alertmanager_and_silences_on(db).await;
    }
}

async fn rule_routes_signed_webhooks_alertmanager_and_silences_on(db: Db) {
    let dir = TempDir::new().unwrap();
    let Some(url) = fresh_database(db, dir.path()).await else {
        return;
    };
    let hook = SlackStandIn::start(&[]).await;
    let alertmanager = SlackStandIn::start(&[]).await;
    let rules = dir.path().join("alerts.yaml");
    std::fs::write(
        &rules,
        "dataset: search\nalerts:\n  - name: latency_drift\n    when: drift\n    features: [latency_ms]\n    for: 0s\n    severity: critical\n    labels: {team: search}\n    notify: [webhook, alertmanager]\n",
    )
    .unwrap();
    let mut config = alert_config(&url, "http://127.0.0.1:9/unused");
    config.slack_webhook_url = None;
    config.webhook_url = Some(driftd::config::Secret::new(&hook.url));
    config.webhook_secret = Some(driftd::config::Secret::new("s3cret"));
    let base = alertmanager
        .url
        .split("/services")
        .next()
        .unwrap()
        .to_owned();
    config.alertmanager_url = Some(driftd::config::Secret::new(&base));
    config.rules = Some(rules);
    let app = spawn_app(config).await;
    start(&app, &dir, drifted_records()).await;

    let signed = hook.wait_for(1, 15).await;
    let request = &hook.requests()[0];
    let timestamp: i64 = request.headers["x-driftd-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let signature = request.headers["x-driftd-signature"].to_str().unwrap();
    driftd::alert::webhook::verify(
        b"s3cret",
        timestamp,
        &request.raw,
        signature,
        timestamp,
        300,
    )
    .expect("valid signature");
    assert!(
        driftd::alert::webhook::verify(
            b"wrong",
            timestamp,
            &request.raw,
            signature,
            timestamp,
            300
        )
        .is_err()
    );
    let body = &signed[0].1;
    assert_eq!(body["version"], 1);
    assert_eq!(body["status"], "firing");
    assert_eq!(body["rule"], "latency_drift");
    assert_eq!(body["severity"], "critical");

    alertmanager.wait_for(1, 15).await;
    let am = &alertmanager.requests()[0];
    assert_eq!(am.path, "/api/v2/alerts");
    let alert = &am.body[0];
    assert_eq!(alert["labels"]["alertname"], "latency_drift");
    assert_eq!(alert["labels"]["dataset"], "search");
    assert_eq!(alert["labels"]["team"], "search");
    assert!(alert.get("endsAt").is_none_or(Json::is_null));

    let alerts: Json = app.get_json("/v1/alerts").await;
    let fingerprint = alerts["alerts"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .send_json(
            reqwest::Method::POST,
            &format!("/v1/alerts/{fingerprint}/acknowledge"),
            &json!({"for": "1h"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .send_json(
            reqwest::Method::POST,
            "/v1/alerts/nope/silence",
            &json!({"for": "1h"}),
        )
        .await;
    assert_eq!(r.status(), 404);
    let r = app
        .send_json(
            reqwest::Method::POST,
            &format!("/v1/alerts/{fingerprint}/silence"),
            &json!({"for": "soon"}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let alerts: Json = app.get_json("/v1/alerts").await;
    assert_eq!(alerts["alerts"][0]["acknowledged"], true);
    assert!(alerts["alerts"][0]["silenced_until"].is_string());

    tokio::time::sleep(Duration::from_millis(1700)).await;
    post(&app, good_records()).await;
    wait_for_json(&app.client, &app.url("/v1/alerts"), 15, |v| {
        v["alerts"][0]["state"] == "resolved"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        hook.received().len(),
        1,
        "an acknowledged alert's resolution is not announced"
    );
    assert_eq!(alertmanager.received().len(), 1);
    app.stop().await;
}

/// Slack allows about one message per second per webhook: two alerts at once go out a second
/// apart, one message per dataset (features grouped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_per_dataset_at_most_one_per_second() {
    for db in BOTH {
        one_message_per_dataset_at_most_one_per_second_on(db).await;
    }
}

async fn one_message_per_dataset_at_most_one_per_second_on(db: Db) {
    let dir = TempDir::new().unwrap();
    let Some(url) = fresh_database(db, dir.path()).await else {
        return;
    };
    let slack = SlackStandIn::start(&[]).await;
    let app = spawn_app(alert_config(&url, &slack.url)).await;
    let profile = reference_profile(&dir);
    for dataset in ["search", "ads"] {
        let r = app
            .client
            .post(app.url(&format!("/v1/datasets/{dataset}/profiles?run_id=train")))
            .body(profile.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let mut records = drifted_records();
        for r in &mut records {
            r["country"] = json!("XX"); // a second drifted feature, grouped in the same message
        }
        let r = app
            .send_json(
                reqwest::Method::POST,
                &format!("/v1/datasets/{dataset}/records"),
                &json!({ "records": records }),
            )
            .await;
        assert_eq!(r.status(), 202);
    }
    let got = slack.wait_for(2, 15).await;
    let gap = got[1].0 - got[0].0;
    assert!(
        gap >= Duration::from_millis(1000),
        "two messages {gap:?} apart"
    );
    let texts: Vec<String> = got.iter().map(|(_, m)| m.to_string()).collect();
    assert!(texts.iter().any(|t| t.contains("ads")) && texts.iter().any(|t| t.contains("search")));
    for t in &texts {
        assert!(
            t.contains("latency_ms") && t.contains("country"),
            "one message names every drifted feature: {t}"
        );
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(slack.received().len(), 2);
    app.stop().await;
}
