//! Many writers, one truth: several `driftd serve` processes on one database each write their
//! own partial of every open window (`writer_id`), reads merge the partials, and a writer that
//! restarts under the same id continues its own partial.

use std::time::Duration;

use driftd::config::{Secret, ServeConfig};
use driftd::profile::Stage;
use driftd::store::{Key, Kind, Store};
use serde_json::{Value as Json, json};
use tempfile::TempDir;

use crate::helpers::{
    BOTH, Db, TestApp, fresh_database, reference_profile, spawn_app, stderr, test_config,
    wait_for_json,
};
use crate::serve::drifted_records;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

fn writer_config(url: &str, writer: &str, window: Duration, rollup: Duration) -> ServeConfig {
    ServeConfig {
        writer_id: Some(writer.to_owned()),
        window,
        rollup,
        ..test_config(url)
    }
}

async fn post_records(app: &TestApp, dataset: &str, n: usize) {
    let r = app
        .send_json(
            reqwest::Method::POST,
            format!("/v1/datasets/{dataset}/records"),
            &json!({"records": drifted_records(n)}),
        )
        .await;
    assert_eq!(r.status(), 202);
    assert_eq!(
        r.json::<Json>().await.unwrap(),
        json!({"accepted": n, "rejected": 0})
    );
}

/// `n` records to each of three replicas at the same time.
async fn post_to_three(apps: &[TestApp], dataset: &str, n: usize) {
    tokio::join!(
        post_records(&apps[0], dataset, n),
        post_records(&apps[1], dataset, n),
        post_records(&apps[2], dataset, n),
    );
}

/// Waits until `GET /v1/datasets` of `app` counts `online` records of `dataset`.
async fn wait_for_online(app: &TestApp, online: u64) -> Json {
    wait_for_json(&app.client, &app.url("/v1/datasets"), 15, |v| {
        v["datasets"][0]["records"]["online"].as_u64() == Some(online)
    })
    .await
}

fn place(dataset: &str, kind: Kind, start_ms: i64, writer: &str) -> Key {
    Key {
        dataset: dataset.to_owned(),
        stage: Stage::Online,
        kind,
        run_id: String::new(),
        part: String::new(),
        start_ms,
        writer: writer.to_owned(),
    }
}

fn floor(ms: i64, to: i64) -> i64 {
    ms - ms.rem_euclid(to)
}

fn now_ms() -> i64 {
    driftd::clock::now_ms()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_postgres_count_every_record_once() {
    let dir = TempDir::new().unwrap();
    let Some(url) = fresh_database(Db::Postgres, dir.path()).await else {
        return;
    };
    let hour = Duration::from_millis(HOUR_MS as u64);
    let mut apps = Vec::new();
    for writer in ["replica-a", "replica-b", "replica-c"] {
        apps.push(spawn_app(writer_config(&url, writer, hour, hour * 24)).await);
    }
    let created = apps[0]
        .client
        .post(apps[0].url("/v1/datasets/search/profiles?run_id=train-1"))
        .body(reference_profile(&dir))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let started = floor(now_ms(), HOUR_MS);
    // The replicas take their records at the same time, in rounds, as behind a load balancer:
    // each folds into its open window while the others write theirs.
    for _ in 0..4 {
        post_to_three(&apps, "search", 500).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let ended = floor(now_ms(), HOUR_MS);

    for app in &apps {
        let list = wait_for_online(app, 6000).await;
        assert_eq!(
            list["datasets"][0]["records"],
            json!({"offline": 1000, "online": 6000})
        );
        let verdict = wait_for_json(
            &app.client,
            &app.url("/v1/datasets/search/drift"),
            15,
            |v| v["current"]["rows"].as_u64() == Some(6000),
        )
        .await;
        assert_eq!(verdict["current"]["rows"], 6000, "{verdict}");
        assert_eq!(verdict["reference"]["rows"], 1000, "{verdict}");
    }
    for app in apps {
        app.stop().await;
    }

    let store = Store::connect(&Secret::new(&*url)).await.unwrap();
    assert_eq!(
        store
            .recent_windows("search", 0)
            .await
            .unwrap()
            .unwrap()
            .rows,
        6000
    );
    if started == ended {
        // One window: three partials, each a writer's own 2,000 rows, merged on read.
        assert_eq!(store.count("search", Kind::Window).await.unwrap(), 3);
        let window = place("search", Kind::Window, started, "");
        assert_eq!(store.get(&window).await.unwrap().unwrap().rows, 6000);
        for writer in ["replica-a", "replica-b", "replica-c"] {
            let own = place("search", Kind::Window, started, writer);
            assert_eq!(
                store.partial(&own).await.unwrap().unwrap().rows,
                2000,
                "{writer}"
            );
        }
        assert!(store.partial(&window).await.unwrap().is_none());
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_partials_are_rolled_up_once_each() {
    let dir = TempDir::new().unwrap();
    let Some(url) = fresh_database(Db::Postgres, dir.path()).await else {
        return;
    };
    let (window, day) = (
        Duration::from_millis(400),
        Duration::from_millis(DAY_MS as u64),
    );
    let mut apps = Vec::new();
    for writer in ["replica-a", "replica-b", "replica-c"] {
        apps.push(spawn_app(writer_config(&url, writer, window, day)).await);
    }
    let started = floor(now_ms(), DAY_MS);
    post_to_three(&apps, "roll", 700).await;
    // Every window closes and is rolled up by its writer's next flushes.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for app in apps {
        app.stop().await;
    }
    let ended = floor(now_ms(), DAY_MS);

    let store = Store::connect(&Secret::new(&*url)).await.unwrap();
    assert_eq!(
        store.recent_windows("roll", 0).await.unwrap().unwrap().rows,
        2100
    );
    if started == ended {
        assert_eq!(store.count("roll", Kind::Rollup).await.unwrap(), 3);
        let rollup = place("roll", Kind::Rollup, started, "");
        assert_eq!(store.get(&rollup).await.unwrap().unwrap().rows, 2100);
        let own = place("roll", Kind::Rollup, started, "replica-b");
        assert_eq!(store.partial(&own).await.unwrap().unwrap().rows, 700);
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_writer_continues_its_own_partial() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let hour = Duration::from_millis(HOUR_MS as u64);
        let config = |writer: &str| writer_config(&url, writer, hour, hour * 24);
        let started = floor(now_ms(), HOUR_MS);

        let app = spawn_app(config("pod-0")).await;
        post_records(&app, "restart", 500).await;
        wait_for_online(&app, 500).await;
        app.stop().await;

        let app = spawn_app(config("pod-0")).await;
        post_records(&app, "restart", 700).await;
        wait_for_online(&app, 1200).await;
        app.stop().await;

        let store = Store::connect(&Secret::new(&*url)).await.unwrap();
        if started == floor(now_ms(), HOUR_MS) {
            assert_eq!(
                store.count("restart", Kind::Window).await.unwrap(),
                1,
                "{db:?}"
            );
            let own = place("restart", Kind::Window, started, "pod-0");
            assert_eq!(
                store.partial(&own).await.unwrap().unwrap().rows,
                1200,
                "{db:?}"
            );
        }
        store.close().await;

        // Another writer id starts a partial of its own; reads count both.
        let app = spawn_app(config("pod-1")).await;
        post_records(&app, "restart", 300).await;
        wait_for_online(&app, 1500).await;
        app.stop().await;
        let store = Store::connect(&Secret::new(&*url)).await.unwrap();
        if started == floor(now_ms(), HOUR_MS) {
            assert_eq!(
                store.count("restart", Kind::Window).await.unwrap(),
                2,
                "{db:?}"
            );
            let window = place("restart", Kind::Window, started, "");
            assert_eq!(
                store.get(&window).await.unwrap().unwrap().rows,
                1500,
                "{db:?}"
            );
        }
        assert_eq!(
            store
                .recent_windows("restart", 0)
                .await
                .unwrap()
                .unwrap()
                .rows,
            1500,
            "{db:?}"
        );
        store.close().await;
    }
}

/// `driftd serve --print-config`, with `DRIFTD_WRITER_ID` set to `id`.
fn print_config(id: Option<&str>) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_driftd"));
    cmd.args(["serve", "--print-config"])
        .env_remove("DRIFTD_API_TOKEN")
        .env_remove("DRIFTD_ALLOW_UNAUTHENTICATED")
        .env_remove("DRIFTD_WRITER_ID");
    if let Some(id) = id {
        cmd.env("DRIFTD_WRITER_ID", id);
    }
    cmd.output().unwrap()
}

#[test]
fn a_bad_writer_id_is_refused() {
    let long = "a".repeat(65);
    for (id, reason) in [
        (
            "pod 0",
            "contains ' '; use letters, digits, '.', '_' or '-'",
        ),
        (
            "pod/0",
            "contains '/'; use letters, digits, '.', '_' or '-'",
        ),
        ("", "must be 1 to 64 characters long"),
        (long.as_str(), "must be 1 to 64 characters long"),
    ] {
        let out = print_config(Some(id));
        assert_eq!(out.status.code(), Some(2), "{id:?}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("writer_id (environment): {id:?}: {reason}")),
            "{id:?}: {err}"
        );
    }
    let out = print_config(Some("driftd-0.ns_1"));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        printed.contains("writer_id: \"driftd-0.ns_1\""),
        "{printed}"
    );
    let out = print_config(None);
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!printed.contains("writer_id: \""), "{printed}");
}

/// A database migrated as a driftd before writer ids left it: migrations 0001..0004.
async fn migrate_before_writers(url: &str, backend: &str, dir: &std::path::Path) {
    use sqlx::Connection;
    let old = dir.join("migrations-before-writers");
    std::fs::create_dir_all(&old).unwrap();
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    for entry in std::fs::read_dir(all).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.as_str() < "0005" {
            std::fs::copy(&path, old.join(name)).unwrap();
        }
    }
    sqlx::any::install_default_drivers();
    let url = if backend == "sqlite" {
        format!("{url}?mode=rwc")
    } else {
        url.to_owned()
    };
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    let migrator = sqlx::migrate::Migrator::new(old).await.unwrap();
    assert_eq!(migrator.iter().count(), 4);
    migrator.run(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_stored_before_writer_ids_are_kept_as_the_writer_nobody() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let backend = if matches!(db, Db::Sqlite) {
            "sqlite"
        } else {
            "postgres"
        };
        migrate_before_writers(&url, backend, dir.path()).await;
        let body = reference_profile(&dir);
        {
            use sqlx::Connection;
            let url = if backend == "sqlite" {
                format!("{url}?mode=rwc")
            } else {
                url.to_string()
            };
            let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
            sqlx::query(
                "INSERT INTO profiles (dataset, stage, kind, run_id, part, start_ms, end_ms, rows, body, updated_ms)
                 VALUES ('old', 'online', 'window', '', '', 60000, 120000, 1000, $1, 1)",
            )
            .bind(body)
            .execute(&mut conn)
            .await
            .unwrap();
            conn.close().await.unwrap();
        }
        // Opening the store applies 0005: the row becomes the writer ''.
        let store = Store::connect(&Secret::new(&*url)).await.unwrap();
        store.ready().await.unwrap();
        let nobody = place("old", Kind::Window, 60_000, "");
        assert_eq!(
            store.partial(&nobody).await.unwrap().unwrap().rows,
            1000,
            "{db:?}"
        );
        let other = place("old", Kind::Window, 60_000, "pod-0");
        assert!(store.partial(&other).await.unwrap().is_none(), "{db:?}");
        assert_eq!(
            store.get(&other).await.unwrap().unwrap().rows,
            1000,
            "{db:?}"
        );
        let summary = store.dataset_summaries(Some("old")).await.unwrap();
        assert_eq!(summary[0].online_rows, 1000, "{db:?}");
        store.close().await;
    }
}
