//! The daemon's pages on SQLite and PostgreSQL: `/` for a browser (the datasets with their
//! verdicts) and JSON for API clients, `/datasets/{dataset}` (the comparison, the score
//! history, the runs with their anomaly bands, the alerts), hostile names escaped, the `read`
//! scope; and the dataset page opened in headless Chromium (see `report_page`).

use driftd::profile::{Limits, Profiler, Stage, Value as V, file};
use reqwest::header::ACCEPT;
use serde_json::{Value as Json, json};
use tempfile::TempDir;

use crate::helpers::{BOTH, Db, TestApp, fresh_database, spawn_app, test_config, wait_for_json};
use crate::report_page::{inspect, screenshot_dir};

const DATASET: &str = "ranker_inputs";
const HOSTILE: &str = "<script>alert(1)</script>";
const BIDI: &str = "invoice\u{202e}fdp.exe";
/// What Chromium sends for a page.
const BROWSER_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
/// 2026-11-02T06:00:00Z and a day, in seconds.
const FIRST_RUN_S: i64 = 1_793_599_200;
const DAY_S: i64 = 86_400;

/// The training side: `latency_ms` around 50, `plan` free or pro, the hostile feature.
fn reference() -> Vec<u8> {
    let mut p = Profiler::new(DATASET, Stage::Offline, Limits::default());
    let slots: Vec<usize> = ["latency_ms", "plan", HOSTILE, BIDI, "calm"]
        .iter()
        .map(|n| p.feature(n, None).unwrap())
        .collect();
    for i in 0..2000 {
        let x = f64::from(i % 100);
        p.observe(slots[0], V::Number(x));
        p.observe(slots[1], V::Str(["free", "pro"][i as usize % 2]));
        p.observe(slots[2], V::Number(x * 2.0));
        p.observe(slots[3], V::Str("a"));
        p.observe(slots[4], V::Number(x));
        p.add_rows(1);
    }
    file::encode(&p.finish().0)
}

/// Serving traffic like the reference, or `moved`: `latency_ms` and the hostile feature
/// shifted, `plan` with a hostile value.
fn online_records(n: usize, moved: bool) -> Vec<Json> {
    (0..n)
        .map(|i| {
            let x = (i % 100) as f64;
            let (shift, plans) = if moved {
                (1.0, &["free", "pro", "<img src=x onerror=alert(1)>"][..])
            } else {
                (0.0, &["free", "pro"][..])
            };
            let plan = plans[i % plans.len()];
            let mut record = json!({"latency_ms": x + 300.0 * shift, "plan": plan, "calm": x});
            record[HOSTILE] = json!(x * 2.0 + 150.0 * shift);
            record[BIDI] = json!("a");
            record
        })
        .collect()
}

async fn post_records(app: &TestApp, records: Vec<Json>) {
    let posted = app
        .send_json(
            reqwest::Method::POST,
            format!("/v1/datasets/{DATASET}/records"),
            &json!({ "records": records }),
        )
        .await;
    assert_eq!(posted.status(), 202);
}

/// Ten runs' counters, a run a day; the last reads a tenth of the rows.
async fn post_runs(app: &TestApp) {
    for i in 0..10i64 {
        let rows = if i == 9 { 1000 } else { 10_000 + i * 10 };
        let body = json!({"stage": "offline", "run_id": format!("train-{i:03}"),
                          "run_time": FIRST_RUN_S + i * DAY_S,
                          "counters": {"rows_read": rows, "rows_dropped": 5}});
        let r = app
            .send_json(
                reqwest::Method::POST,
                format!("/v1/datasets/{DATASET}/counters"),
                &body,
            )
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
}

/// A dataset with runs and a reference; the app serving it.
async fn reference_app(
    url: &str,
    configure: impl FnOnce(&mut driftd::config::ServeConfig),
) -> TestApp {
    let mut config = test_config(url);
    configure(&mut config);
    let app = spawn_app(config).await;
    post_runs(&app).await;
    let created = app
        .client
        .post(app.url(&format!("/v1/datasets/{DATASET}/profiles?run_id=train-009")))
        .body(reference())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    app
}

/// As [`reference_app`], with drifted traffic.
async fn drifted_app(
    url: &str,
    configure: impl FnOnce(&mut driftd::config::ServeConfig),
) -> TestApp {
    let app = reference_app(url, configure).await;
    post_records(&app, online_records(900, true)).await;
    app
}

async fn get_page(app: &TestApp, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let r = app
        .client
        .get(app.url(path))
        .header(ACCEPT, BROWSER_ACCEPT)
        .send()
        .await
        .unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, r.text().await.unwrap(), headers)
}

/// The `data-*` value of every element of `class` (`<section class="history" data-feature=…`).
fn attribute_values(html: &str, element: &str, attribute: &str) -> Vec<String> {
    html.split(element)
        .skip(1)
        .filter_map(|rest| {
            let at = rest.find(&format!("{attribute}=\""))? + attribute.len() + 2;
            let end = at + rest[at..].find('"')?;
            Some(rest[at..end].to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_show_datasets_verdicts_and_score_history() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        // Windows of a minute: the traffic stays recent for the whole test.
        let app = drifted_app(&url, |c| c.window = std::time::Duration::from_secs(60)).await;
        // Three evaluations of the drifted traffic at least.
        let history_url = app.url(&format!("/v1/datasets/{DATASET}/drift/history"));
        let history = wait_for_json(&app.client, &history_url, 15, |v| {
            v["evaluations"].as_array().is_some_and(|e| {
                e.len() >= 3 && e.last().unwrap()["features"]["latency_ms"]["drift"] == true
            })
        })
        .await;
        let latest = &history["evaluations"].as_array().unwrap().last().unwrap()["features"];
        assert!(
            latest["latency_ms"]["score"].as_f64().unwrap() > 0.2,
            "{db:?}: {latest}"
        );
        assert_eq!(latest["calm"]["drift"], false);
        assert_eq!(latest["latency_ms"]["threshold"], 0.2);

        // `/` for a browser: the dataset, its drifted features, findings and age.
        let (status, html, headers) = get_page(&app, "/").await;
        assert_eq!(status, 200, "{db:?}");
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .starts_with("default-src 'none'")
        );
        assert_eq!(headers["vary"], "Accept");
        assert!(html.contains(&format!(r#"<a href="datasets/{DATASET}">{DATASET}</a>"#)));
        let row = &html[html.find(r#"<tr data-drift="1">"#).expect("a drifted row")..];
        let row = &row[..row.find("</tr>").unwrap()];
        assert!(row.contains("drift in 3 of 5"), "{db:?}: {row}");
        assert!(
            row.contains(">latency_ms<") && row.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
        );
        assert!(row.contains(" s ago"), "{row}");
        assert!(!html.contains("<script>alert"), "an unescaped name");
        // API clients still get the JSON index.
        for accept in ["application/json", "*/*"] {
            let r = app
                .client
                .get(app.url("/"))
                .header(ACCEPT, accept)
                .send()
                .await
                .unwrap();
            assert_eq!(r.headers()["content-type"], "application/json");
            let index: Json = r.json().await.unwrap();
            assert_eq!(index["name"], "driftd", "{accept}");
            assert_eq!(index["links"]["datasets"], "/v1/datasets");
        }
        assert_eq!(app.get_json("/").await["links"]["page"], "/");

        // The dataset page: drifted features first, a history line per feature.
        let (status, html, _) = get_page(&app, &format!("/datasets/{DATASET}")).await;
        assert_eq!(status, 200, "{db:?}");
        let rows = attribute_values(&html, "<tr data-i=", "data-drift");
        assert_eq!(rows, ["1", "1", "1", "0", "0"], "{db:?}");
        let names = attribute_values(&html, r#"<section class="history""#, "data-feature");
        assert_eq!(names.len(), 5, "{names:?}");
        let drifted: Vec<&str> = names[..3].iter().map(String::as_str).collect();
        for name in [
            "latency_ms",
            "plan",
            "&lt;script&gt;alert(1)&lt;/script&gt;",
        ] {
            assert!(
                drifted.contains(&name),
                "{db:?}: {name} not first in {names:?}"
            );
        }
        assert!(
            names.contains(&"invoice\\u{202e}fdp.exe".to_owned()) && !html.contains('\u{202e}')
        );
        let points: Vec<usize> =
            attribute_values(&html, r#"<svg class="chart line""#, "data-points")
                .iter()
                .map(|p| p.parse().unwrap())
                .collect();
        // Five features' histories, then two counters over ten runs.
        assert_eq!(points.len(), 7, "{points:?}");
        assert!(points[..5].iter().all(|&n| n >= 3), "{points:?}");
        assert_eq!(points[5..], [10, 10]);
        let runs = &html[html.find(r#"<h2 id="runs-h">Offline runs"#).unwrap()..];
        assert!(
            runs.contains("rows_read = 1000 in run train-009; expected 9660 to 10420"),
            "{db:?}: {runs}"
        );
        assert!(html.contains(r#"class="band""#) && html.contains(r#"class="hit""#));
        assert!(
            html.contains("offline run train-009")
                && html.contains(r#"<h2 id="alerts-h">Alerts</h2>"#)
        );
        assert!(!html.contains("<script>alert") && !html.contains("<img src=x"));
        assert!(!html.contains("://"), "a URL in a page that loads nothing");

        // Every stored evaluation is a point: the page drew those stored before it was asked,
        // and at most those stored until the next look.
        let stored = async || {
            app.get_json(format!("/v1/datasets/{DATASET}/drift/history"))
                .await["evaluations"]
                .as_array()
                .unwrap()
                .len()
        };
        let before = stored().await;
        let (_, html, _) = get_page(&app, &format!("/datasets/{DATASET}")).await;
        let after = stored().await;
        let drawn: usize = attribute_values(&html, r#"<svg class="chart line""#, "data-points")[0]
            .parse()
            .unwrap();
        assert!(
            (before..=after).contains(&drawn),
            "{db:?}: {before} ≤ {drawn} ≤ {after}"
        );
        println!("{db:?}: {drawn} evaluations drawn, {} bytes", html.len());

        let (status, _, _) = get_page(&app, "/datasets/nope").await;
        assert_eq!(status, 404);
        let (status, _, _) = get_page(&app, "/datasets/bad%20name").await;
        assert_eq!(status, 400);
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_need_the_read_scope() {
    let dir = TempDir::new().unwrap();
    let db = fresh_database(Db::Sqlite, dir.path()).await.unwrap();
    let mut config = test_config(&db);
    config.file_tokens = crate::auth::tokens();
    let app = spawn_app(config).await;
    for path in ["/", "/datasets/search"] {
        let get = || app.client.get(app.url(path)).header(ACCEPT, BROWSER_ACCEPT);
        let r = get().send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        // Challenged for Basic too: a browser then asks for the token, as the password.
        let challenges: Vec<&str> = r
            .headers()
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(
            challenges,
            [
                r#"Bearer realm="driftd""#,
                r#"Basic realm="driftd", charset="UTF-8""#
            ],
            "{path}"
        );
        assert!(
            !r.text().await.unwrap().contains("<html"),
            "{path}: a page without a token"
        );
        let r = get()
            .bearer_auth(crate::auth::SIDECAR)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
        let r = get().bearer_auth(crate::auth::READER).send().await.unwrap();
        let expected = if path == "/" { 200 } else { 404 };
        assert_eq!(r.status(), expected, "{path}");
        let r = get()
            .basic_auth("anyone", Some(crate::auth::READER))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), expected, "{path}");
    }
    // An API client is challenged for Bearer only.
    let r = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers().get_all("www-authenticate").iter().count(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dataset_page_renders_in_chromium_without_errors_or_requests() {
    let dir = TempDir::new().unwrap();
    let db = fresh_database(Db::Sqlite, dir.path()).await.unwrap();
    // Traffic stays recent for the whole test: the comparison is drawn.
    let app = reference_app(&db, |c| c.window = std::time::Duration::from_secs(60)).await;
    // Traffic like the reference, then moved traffic joins it: the scores climb past their
    // thresholds half way.
    for moved in [false, false, false, false, true, true, true, true] {
        post_records(&app, online_records(200, moved)).await;
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    }
    let history_url = app.url(&format!("/v1/datasets/{DATASET}/drift/history"));
    wait_for_json(&app.client, &history_url, 15, |v| {
        v["evaluations"].as_array().is_some_and(|e| e.len() >= 12)
    })
    .await;
    let page = app.url(&format!("/datasets/{DATASET}"));
    let shots = screenshot_dir("daemon_page");
    let Some(seen) = inspect(&page, &shots, "lat", 3400) else {
        app.stop().await;
        return;
    };
    // The index, as a browser asks for it (`Accept` prefers HTML).
    let index_shots = screenshot_dir("daemon_index");
    let index = inspect(app.url("/"), &index_shots, "", 900).unwrap();
    app.stop().await;
    assert_eq!(index["console"], json!([]), "console messages");
    assert_eq!(index["requests"], json!([]), "requests besides the page");
    assert_eq!(
        index["facts"]["dataset_links"],
        json!([format!("datasets/{DATASET}")])
    );
    assert_eq!(seen["console"], json!([]), "console messages");
    assert_eq!(seen["requests"], json!([]), "requests besides the page");
    let facts = &seen["facts"];
    assert_eq!(facts["cards"], 5);
    assert_eq!(facts["cards_with_chart"], 5, "a distribution per feature");
    assert_eq!(
        facts["history_names"].as_array().unwrap().len(),
        5,
        "a history per feature"
    );
    assert!(
        facts["history_points"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n.as_u64() >= Some(12))
    );
    assert_eq!(facts["counter_charts"], 2);
    // latency_ms first: it drifted only once the moved traffic came.
    assert_eq!(facts["history_names"][0], "latency_ms");
    let (points, hits) = (&facts["history_points"][0], &facts["history_hits"][0]);
    assert!(
        hits.as_u64() > Some(0) && hits.as_u64() < points.as_u64(),
        "{hits} of {points}"
    );
    assert_eq!(facts["row_drift"], json!([true, true, true, false, false]));
    assert_eq!(facts["scripts"], 1);
    let links = facts["external"].as_array().unwrap();
    assert!(
        links.iter().all(|l| !l.as_str().unwrap().contains(':')),
        "{links:?}"
    );
    assert_eq!(seen["interaction"]["filter_rows"], json!(["latency_ms"]));
    assert_eq!(seen["interaction"]["drifted_only_cards"], 3);
    for key in ["light", "dark"] {
        let bytes = std::fs::read(seen["files"][key].as_str().unwrap()).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "{key}"
        );
    }
    println!("screenshots in {}; {}", shots.display(), seen["timing"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_score_history_expires_with_the_windows() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let app = drifted_app(&url, |c| {
            c.window = std::time::Duration::from_secs(60);
            c.retention = std::time::Duration::from_secs(1);
        })
        .await;
        let history_url = app.url(&format!("/v1/datasets/{DATASET}/drift/history"));
        let first = wait_for_json(&app.client, &history_url, 15, |v| {
            v["evaluations"].as_array().is_some_and(|e| !e.is_empty())
        })
        .await["evaluations"][0]["evaluated_at_ms"]
            .as_i64()
            .unwrap();
        // Read as it is stored (the API shows only the retention anyway), while evaluations
        // go on: until the oldest kept is over a second younger than the first.
        let store = driftd::store::Store::connect(&driftd::config::Secret::new(&*url))
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let kept = loop {
            let kept = store.score_history(DATASET, 0, 10_000).await.unwrap();
            if kept.first().is_some_and(|k| k.evaluated_ms > first + 1000) {
                break kept;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{db:?}: evaluations older than the retention stay: oldest {:?}, first {first}",
                kept.first().map(|k| k.evaluated_ms)
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        app.stop().await;
        // Evaluations run every 200 ms: those older than a second (and a flush) are gone.
        assert!(kept.len() <= 8, "{db:?}: {} kept", kept.len());
        assert_eq!(kept.last().unwrap().features.len(), 5);
        store.expire(i64::MAX, 0).await.unwrap();
        assert_eq!(store.score_history(DATASET, 0, 10_000).await.unwrap(), []);
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataset_page_says_what_it_cannot_compare() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let app = reference_app(&url, |c| c.window = std::time::Duration::from_secs(60)).await;
        let (status, html, _) = get_page(&app, &format!("/datasets/{DATASET}")).await;
        assert_eq!(status, 200, "{db:?}");
        assert!(
            html.contains("No online data in the last 2m to compare with offline run train-009."),
            "{db:?}"
        );
        assert!(html.contains("No evaluation recorded yet."));
        assert!(!html.contains(r#"<section class="feature""#));
        assert!(
            html.contains("rows_read = 1000 in run train-009"),
            "the runs are shown"
        );
        // Online traffic without any offline run.
        let r = app
            .send_json(
                reqwest::Method::POST,
                "/v1/datasets/online_only/records",
                &json!({"records": online_records(10, false)}),
            )
            .await;
        assert_eq!(r.status(), 202);
        let page = wait_for_page(&app, "/datasets/online_only").await;
        assert!(page.contains("No reference yet: the dataset needs an offline run."));
        assert!(page.contains("No offline run reported counters.") && page.contains("No alert."));
        let (_, index, _) = get_page(&app, "/").await;
        assert!(index.contains(r#"<a href="datasets/online_only">"#));
        assert!(index.contains("no verdict"), "{db:?}");
        app.stop().await;
    }
}

/// The page at `path` once it answers 200 (a dataset exists once its first window is written).
async fn wait_for_page(app: &TestApp, path: &str) -> String {
    for _ in 0..100 {
        let (status, html, _) = get_page(app, path).await;
        if status == 200 {
            return html;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{path} did not answer 200 in 5 s");
}
