//! Values that once broke driftd are refused at the door with a 400 that says why, and
//! nothing stored can make a later read fail.

use reqwest::Method;
use serde_json::json;
use tempfile::TempDir;

use crate::helpers::{BOTH, fresh_database, spawn_app, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_century_long_silence_is_refused_and_alerts_still_list() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let app = spawn_app(test_config(&url)).await;
        for (body, says) in [
            (
                json!({"for": "99999999999d"}),
                "must be longer than 0 and at most 1year",
            ),
            (json!({"for": "100y"}), "at most 1year"),
            (json!({"for": "0s"}), "must be longer than 0"),
        ] {
            for action in ["silence", "acknowledge"] {
                let r = app
                    .send_json(Method::POST, format!("/v1/alerts/0123abcd/{action}"), &body)
                    .await;
                assert_eq!(r.status(), 400, "{db:?} {action} {body}");
                let text = r.text().await.unwrap();
                assert!(text.contains(says), "{db:?}: {text}");
            }
        }
        let r = app.client.get(app.url("/v1/alerts")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{db:?}");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_increments_beyond_2_to_the_53_are_refused_and_totals_stay_finite() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let app = spawn_app(test_config(&url)).await;
        let path = "/v1/datasets/ranking/counters";
        for _ in 0..3 {
            let r = app
                .send_json(
                    Method::POST,
                    path,
                    &json!({"stage": "online", "counters": {"requests": 1.7e308}}),
                )
                .await;
            assert_eq!(r.status(), 400, "{db:?}");
            let text = r.text().await.unwrap();
            assert!(text.contains("1.7e308 is beyond 2^53"), "{db:?}: {text}");
        }
        // The largest exact increment is taken, three times, and stays finite everywhere.
        for _ in 0..3 {
            let r = app
                .send_json(
                    Method::POST,
                    path,
                    &json!({"stage": "online", "counters": {"requests": 9007199254740992u64}}),
                )
                .await;
            assert_eq!(r.status(), 200, "{db:?}");
        }
        let metrics = app.metrics().await;
        let infinite: Vec<&str> = metrics
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.ends_with(" +Inf") || l.ends_with(" NaN"))
            .collect();
        assert!(infinite.is_empty(), "{infinite:?}");
        let total = app
            .metric(r#"driftd_counter_total{dataset="ranking",name="requests",stage="online"}"#)
            .await
            .unwrap();
        assert_eq!(total, 3.0 * 9007199254740992.0, "{db:?}");
        let counters = app.get_json(path).await;
        assert_eq!(
            counters["counters"][0]["online"]["total"].as_f64(),
            Some(3.0 * 9007199254740992.0),
            "{db:?}: {counters}"
        );
        app.stop().await;
    }
}
