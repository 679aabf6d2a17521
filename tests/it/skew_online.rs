//! Training/serving feature skew in `driftd serve`: an offline run's rows sampled by id (posted
//! records, or an uploaded profile file), joined with the online records of the same ids; the
//! finding in the verdict, the metrics and `GET /v1/datasets/{dataset}/skew`, on SQLite and
//! PostgreSQL.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value as Json, json};

use super::helpers::{BOTH, driftd, fresh_database, spawn_app, stderr, test_config, wait_for_json};

pub(crate) const IDS: usize = 300;

/// Records `u0..u{IDS}` with `latency_ms` in milliseconds, or (as a serving path that forgot the
/// conversion) in seconds, and a country that agrees either way.
pub(crate) fn records(seconds: bool) -> Vec<Json> {
    (0..IDS)
        .map(|i| {
            let ms = 1000.0 + i as f64 * 7.0;
            let latency = if seconds { ms / 1000.0 } else { ms };
            json!({"_id": format!("u{i}"), "latency_ms": latency, "country": format!("C{}", i % 5)})
        })
        .collect()
}

async fn post(app: &super::helpers::TestApp, path: &str, records: Vec<Json>) {
    let r = app
        .send_json(Method::POST, path, &json!({"records": records}))
        .await;
    assert_eq!(r.status(), 202, "{path}: {}", r.text().await.unwrap());
}

/// `records` as the offline run `r1` of `rank`, once it is the reference.
async fn post_reference(app: &super::helpers::TestApp, records: Vec<Json>) {
    post(
        app,
        "/v1/datasets/rank/records?stage=offline&run_id=r1",
        records,
    )
    .await;
    let reference = app.url("/v1/datasets/rank/reference");
    wait_for_json(&app.client, &reference, 10, |v| v["run_id"] == "r1").await;
}

/// The skew answer once `joined` ids are joined.
async fn skew_of(app: &super::helpers::TestApp, dataset: &str) -> Json {
    let url = app.url(&format!("/v1/datasets/{dataset}/skew"));
    wait_for_json(&app.client, &url, 10, |v| v["joined"] == IDS).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_change_online_is_found_named_and_measured() {
    for db in BOTH {
        let dir = tempfile::TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let app = spawn_app(driftd::config::ServeConfig {
            window: Duration::from_secs(30),
            ..test_config(&url)
        })
        .await;
        post_reference(&app, records(false)).await;
        // Two batches: the window's sample is the merge of theirs.
        let online = records(true);
        let (first, second) = online.split_at(IDS / 2);
        post(&app, "/v1/datasets/rank/records", first.to_vec()).await;
        post(&app, "/v1/datasets/rank/records", second.to_vec()).await;

        let skew = skew_of(&app, "rank").await;
        assert_eq!(skew["id"], "_id", "{db:?}");
        assert_eq!(skew["skewed"], json!(["latency_ms"]), "{db:?}");
        assert_eq!(skew["reference"], json!({"run_id": "r1", "pinned": false}));
        assert_eq!(
            skew["rows_with_id"],
            json!({"reference": IDS, "current": IDS})
        );
        assert_eq!(skew["reference_only"], 0);
        assert_eq!(skew["current_only"], 0);
        let latency = &skew["features"]["latency_ms"];
        assert_eq!(latency["compared"], IDS, "{db:?}");
        assert_eq!(latency["mismatched"], IDS, "{db:?}");
        assert_eq!(latency["mismatch_ratio"], 1.0);
        assert_eq!(
            latency["verdict"],
            "latency_ms differs in 100% of 300 joined examples; median ratio online/offline 0.001"
        );
        let country = &skew["features"]["country"];
        assert_eq!(country["compared"], IDS);
        assert_eq!(country["mismatched"], 0);
        assert_eq!(country["skewed"], false);
        assert!(skew["features"].get("_id").is_none(), "the id is a key");

        // The evaluator's verdict carries the finding, and the metrics the figures: once an
        // evaluation saw both batches (one may have run between them).
        let verdict = wait_for_json(&app.client, &app.url("/v1/datasets/rank/drift"), 10, |v| {
            v["schema"].as_array().is_some_and(|f| {
                f.iter()
                    .any(|f| f["check"] == "feature_skew" && f["message"] == latency["verdict"])
            })
        })
        .await;
        let finding = verdict["schema"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["check"] == "feature_skew")
            .unwrap();
        assert_eq!(finding["feature"], "latency_ms", "{db:?}");
        assert_eq!(finding["severity"], "error");
        assert_eq!(finding["share"], 1.0);
        assert_eq!(finding["message"], latency["verdict"]);
        let metrics = app.metrics().await;
        let series = |s: &str| super::helpers::series(&metrics, s);
        let ratio = r#"driftd_feature_skew_ratio{dataset="rank",feature="latency_ms"}"#;
        assert_eq!(series(ratio), Some(1.0), "{db:?}");
        let country = r#"driftd_feature_skew_ratio{dataset="rank",feature="country"}"#;
        assert_eq!(series(country), Some(0.0));
        let joined = r#"driftd_feature_skew_joined{dataset="rank"}"#;
        assert_eq!(series(joined), Some(IDS as f64));
        app.stop().await;

        // Both samples were stored with their window and run: a restart joins them again.
        let app = spawn_app(driftd::config::ServeConfig {
            window: Duration::from_secs(30),
            ..test_config(&url)
        })
        .await;
        let again = skew_of(&app, "rank").await;
        assert_eq!(again["features"]["latency_ms"]["mismatched"], IDS, "{db:?}");
        assert_eq!(again["skewed"], json!(["latency_ms"]));
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agreeing_features_give_no_finding_and_a_ratio_of_zero() {
    for db in BOTH {
        let dir = tempfile::TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        // The reference is a profile file sampled by its `id` column, as a pipeline uploads it.
        let csv = dir.path().join("train.csv");
        let mut text = String::from("id,latency_ms,country\n");
        for r in records(false) {
            let id = r["_id"].as_str().unwrap();
            text += &format!(
                "{id},{},{}\n",
                r["latency_ms"],
                r["country"].as_str().unwrap()
            );
        }
        std::fs::write(&csv, text).unwrap();
        let out = dir.path().join("train.driftprof");
        let run = driftd(&[
            "profile",
            csv.to_str().unwrap(),
            "--id-column",
            "id",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(run.status.success(), "{}", stderr(&run));
        let app = spawn_app(driftd::config::ServeConfig {
            window: Duration::from_secs(30),
            ..test_config(&url)
        })
        .await;
        let r = app
            .client
            .post(app.url("/v1/datasets/rank/profiles?run_id=r1"))
            .body(std::fs::read(&out).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{db:?}");
        post(&app, "/v1/datasets/rank/records", records(false)).await;

        let skew = skew_of(&app, "rank").await;
        assert_eq!(skew["skewed"], json!([]), "{db:?}");
        for feature in ["latency_ms", "country"] {
            let f = &skew["features"][feature];
            assert_eq!(f["compared"], IDS, "{db:?} {feature}");
            assert_eq!(f["mismatched"], 0, "{db:?} {feature}");
            assert_eq!(f["mismatch_ratio"], 0.0);
            assert_eq!(
                f["verdict"],
                format!("{feature} agrees in all 300 joined examples")
            );
        }
        let ratio = r#"driftd_feature_skew_ratio{dataset="rank",feature="latency_ms"}"#;
        let metrics = wait_for_metric(&app, ratio).await;
        assert_eq!(super::helpers::series(&metrics, ratio), Some(0.0));
        // The metrics are set as the evaluation ends; its verdict is stored just after.
        let verdict = wait_for_json(&app.client, &app.url("/v1/datasets/rank/drift"), 10, |v| {
            v["schema"].is_array()
        })
        .await;
        let checks: Vec<&Json> = verdict["schema"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| &f["check"])
            .collect();
        assert!(
            !checks.contains(&&json!("feature_skew")),
            "{db:?}: {checks:?}"
        );
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skew_without_samples_says_what_is_missing() {
    for db in BOTH {
        let dir = tempfile::TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let app = spawn_app(test_config(&url)).await;
        let get = |path: &'static str| {
            let app = &app;
            async move {
                let r = app.client.get(app.url(path)).send().await.unwrap();
                (r.status().as_u16(), r.json::<Json>().await.unwrap())
            }
        };
        let (status, body) = get("/v1/datasets/nope/skew").await;
        assert_eq!(status, 404, "{db:?}");
        assert_eq!(
            body["error"],
            "no dataset \"nope\": nothing was profiled for it"
        );

        let without_ids: Vec<Json> = records(false)
            .into_iter()
            .map(|mut r| {
                r.as_object_mut().unwrap().remove("_id");
                r
            })
            .collect();
        post_reference(&app, without_ids).await;
        let (status, body) = get("/v1/datasets/rank/skew").await;
        assert_eq!(status, 404, "{db:?}");
        assert_eq!(
            body["error"],
            "no skew for dataset \"rank\" yet: the reference run has no rows sampled by id: post \
             its records with the id field, or upload a profile written by `driftd profile \
             --id-column`"
        );

        post(
            &app,
            "/v1/datasets/rank/records?stage=offline&run_id=r2",
            records(false),
        )
        .await;
        let reference = app.url("/v1/datasets/rank/reference");
        wait_for_json(&app.client, &reference, 10, |v| v["run_id"] == "r2").await;
        let (status, body) = get("/v1/datasets/rank/skew").await;
        assert_eq!(status, 404, "{db:?}");
        assert_eq!(
            body["error"],
            "no skew for dataset \"rank\" yet: no online record with the id field in the last two \
             windows"
        );

        // Online ids that the run never saw: an answer, with nothing joined.
        let others: Vec<Json> = (0..10)
            .map(|i| json!({"_id": format!("v{i}"), "latency_ms": 1.0}))
            .collect();
        post(&app, "/v1/datasets/rank/records", others).await;
        let skew = wait_for_json(&app.client, &app.url("/v1/datasets/rank/skew"), 10, |v| {
            v["rows_with_id"]["current"] == 10
        })
        .await;
        assert_eq!(skew["joined"], 0, "{db:?}");
        assert_eq!(skew["reference_only"], IDS);
        assert_eq!(skew["current_only"], 10);
        assert_eq!(skew["skewed"], json!([]));
        assert_eq!(
            skew["reason"],
            "no id is in both the reference run's sample and the online one yet"
        );
        assert_eq!(
            skew["features"]["latency_ms"]["verdict"],
            "latency_ms: no joined examples"
        );
        app.stop().await;
    }
}

/// `/metrics` once it has `series`.
async fn wait_for_metric(app: &super::helpers::TestApp, series: &str) -> String {
    for _ in 0..200 {
        let text = app.metrics().await;
        if super::helpers::series(&text, series).is_some() {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{series} never appeared in /metrics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_file_names_a_datasets_id_field() {
    for db in BOTH {
        let dir = tempfile::TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let rules = dir.path().join("rank.yml");
        std::fs::write(&rules, "dataset: rank\nskew:\n  id: request_id\n").unwrap();
        let app = spawn_app(driftd::config::ServeConfig {
            window: Duration::from_secs(30),
            rules: Some(rules),
            ..test_config(&url)
        })
        .await;
        let keyed = |seconds: bool| -> Vec<Json> {
            records(seconds)
                .into_iter()
                .map(|mut r| {
                    let id = r.as_object_mut().unwrap().remove("_id").unwrap();
                    r["request_id"] = id;
                    r
                })
                .collect()
        };
        post_reference(&app, keyed(false)).await;
        post(&app, "/v1/datasets/rank/records", keyed(true)).await;
        let skew = skew_of(&app, "rank").await;
        assert_eq!(skew["id"], "request_id", "{db:?}");
        assert_eq!(skew["skewed"], json!(["latency_ms"]), "{db:?}");
        assert_eq!(skew["features"]["latency_ms"]["mismatched"], IDS);
        assert!(skew["features"].get("request_id").is_none());
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skewed_feature_reaches_slack_as_a_broken_invariant() {
    for db in BOTH {
        let dir = tempfile::TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let slack = super::alerts::SlackStandIn::start(&[]).await;
        let app = spawn_app(driftd::config::ServeConfig {
            window: Duration::from_secs(30),
            alert_for: Duration::ZERO,
            slack_webhook_url: Some(driftd::config::Secret::new(&slack.url)),
            ..test_config(&url)
        })
        .await;
        post_reference(&app, records(false)).await;
        post(&app, "/v1/datasets/rank/records", records(true)).await;
        let verdict =
            "latency_ms differs in 100% of 300 joined examples; median ratio online/offline 0.001";
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let message = loop {
            let got = slack.received();
            if let Some((_, m)) = got.iter().find(|(_, m)| m.to_string().contains(verdict)) {
                break m.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{db:?}: no Slack message names the skew: {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(message.to_string().contains("rank"), "{db:?}: {message}");
        let alerts = app.get_json("/v1/alerts").await;
        let rules: Vec<&Json> = alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| &a["rule"])
            .collect();
        assert!(
            rules.contains(&&json!("broken_invariant")),
            "{db:?}: {rules:?}"
        );
        app.stop().await;
    }
}
