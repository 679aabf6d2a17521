//! `GET /v1/datasets`, `GET /v1/datasets/{dataset}` and `GET /` on SQLite and PostgreSQL:
//! rows per stage, features, the reference run and the verdict in brief, stale once traffic
//! stops.

use serde_json::{Value as Json, json};
use tempfile::TempDir;

use crate::helpers::{
    BOTH, Db, fresh_database, reference_profile, spawn_app, test_config, wait_for_json,
};
use crate::serve::drifted_records;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_tell_rows_features_reference_and_verdict() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let app = spawn_app(test_config(&url)).await;
        assert_eq!(app.get_json("/v1/datasets").await, json!({"datasets": []}));
        let r = app
            .client
            .get(app.url("/v1/datasets/nope"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{db:?}");
        assert_eq!(
            r.json::<Json>().await.unwrap()["error"],
            "no dataset \"nope\": nothing was profiled for it"
        );
        let r = app
            .client
            .get(app.url("/v1/datasets/bad%20name"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(
            r.json::<Json>().await.unwrap()["error"],
            "dataset name \"bad name\" contains ' '; use letters, digits, '_', '-', '.' or ':'"
        );

        let created = app
            .client
            .post(app.url("/v1/datasets/search/profiles?run_id=train-1"))
            .body(reference_profile(&dir))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let posted = app
            .send_json(
                reqwest::Method::POST,
                "/v1/datasets/search/records",
                &json!({"records": drifted_records(600)}),
            )
            .await;
        assert_eq!(posted.status(), 202);

        let list = wait_for_json(&app.client, &app.url("/v1/datasets"), 15, |v| {
            v["datasets"][0]["records"]["online"] == 600 && v["datasets"][0]["verdict"].is_object()
        })
        .await;
        let search = &list["datasets"][0];
        assert_eq!(search["name"], "search");
        assert_eq!(
            search["records"],
            json!({"offline": 1000, "online": 600}),
            "{db:?}"
        );
        assert_eq!(search["offline_runs"], 1);
        assert!(search["last_seen_ms"]["offline"].as_i64().unwrap() > 0);
        assert!(
            search["last_seen_ms"]["online"].as_i64() >= search["last_seen_ms"]["offline"].as_i64()
        );
        let features: Vec<&str> = search["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        for name in ["country", "latency_ms", "user_age"] {
            assert!(
                features.contains(&name),
                "{db:?}: {name} not in {features:?}"
            );
        }
        assert_eq!(
            search["reference"],
            json!({"run_id": "train-1", "pinned": false})
        );
        let verdict = &search["verdict"];
        assert!(verdict["drifted"].as_u64().unwrap() >= 2, "{verdict}");
        assert_eq!(
            verdict["drifted"].as_u64().unwrap() as usize,
            verdict["drifted_features"].as_array().unwrap().len()
        );
        assert!(
            verdict["drifted_features"]
                .as_array()
                .unwrap()
                .contains(&json!("latency_ms"))
        );
        assert_eq!(verdict["stale"], false);
        assert!(verdict["evaluated_at_ms"].as_i64().unwrap() > 0);

        let one = app.get_json("/v1/datasets/search").await;
        assert_eq!(one["name"], "search");
        assert_eq!(one["records"], search["records"]);
        assert_eq!(one["features"], search["features"]);

        // No more traffic: two windows later the verdict is stale, and the list says so.
        let stale = wait_for_json(&app.client, &app.url("/v1/datasets/search"), 20, |v| {
            v["verdict"]["stale"] == true
        })
        .await;
        assert_eq!(stale["verdict"]["drifted"], verdict["drifted"], "{db:?}");

        let index = app.get_json("/").await;
        assert_eq!(index["name"], "driftd");
        assert_eq!(index["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(index["links"]["datasets"], "/v1/datasets");
        assert_eq!(index["links"]["metrics"], "/metrics");
        assert_eq!(index["links"]["health"], "/healthz");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_need_the_read_scope() {
    let dir = TempDir::new().unwrap();
    let db = fresh_database(Db::Sqlite, dir.path()).await.unwrap();
    let mut config = test_config(&db);
    config.file_tokens = crate::auth::tokens();
    let app = spawn_app(config).await;
    for path in ["/", "/v1/datasets", "/v1/datasets/search"] {
        let get = |token: &'static str| app.client.get(app.url(path)).bearer_auth(token).send();
        let r = get(crate::auth::SIDECAR).await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
        let r = get(crate::auth::READER).await.unwrap();
        let expected = if path == "/v1/datasets/search" {
            404
        } else {
            200
        };
        assert_eq!(r.status(), expected, "{path}");
    }
    app.stop().await;
}
