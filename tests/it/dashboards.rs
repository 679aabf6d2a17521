//! driftd's Grafana dashboards (`dashboards/*.json`). Every panel's and template variable's
//! query, with the variables filled in as Grafana would, runs against a real Prometheus scraping
//! a live `driftd serve`: a query Prometheus does not accept fails the test, and so does a core
//! panel (listed below) that comes back empty. The Prometheus also loads
//! `rules/prometheus/driftd.rules.yml`, whose alerts one panel shows. The JSON's shape is checked
//! against Grafana's schema types by `dashboards/schema-check` (`scripts/test.sh` runs it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Value as Json, json};
use tempfile::TempDir;

use crate::helpers::{TestApp, wait_for_json};
use crate::prometheus_server::{ApiError, JOB, Prometheus, drifted_app, prometheus_binary};

const DATASET: &str = "search";
const FEATURE: &str = "latency_ms";

/// Panels that must return data — each of their queries at least one series — once driftd has
/// a reference run, drifted online records, a refused request, and the counters of an offline
/// run and of an online report. (dashboard uid, panel title); titles are unique per dashboard.
const CORE_PANELS: &[(&str, &str)] = &[
    ("driftd-overview", "Records per stage"),
    ("driftd-overview", "Records in range, by stage"),
    ("driftd-overview", "Drifted features"),
    ("driftd-overview", "Drift by feature over time"),
    ("driftd-overview", "Drifted features over time"),
    ("driftd-overview", "Since last evaluation"),
    ("driftd-overview", "Firing alerts"),
    ("driftd-overview", "driftd alerts by state"),
    ("driftd-overview", "Prometheus alerts on driftd"),
    ("driftd-overview", "Ingest drops by reason"),
    ("driftd-overview", "Ingest queue depth"),
    ("driftd-overview", "Evaluation duration"),
    ("driftd-overview", "driftd instances up"),
    ("driftd-dataset", "Drift score by feature"),
    ("driftd-dataset", "Drift score now"),
    ("driftd-dataset", "Drifted"),
    ("driftd-dataset", "Null ratio, offline vs online"),
    ("driftd-dataset", "Null ratio now"),
    ("driftd-dataset", "Records per stage"),
    // Fed by the counters API (POST /v1/datasets/{dataset}/counters).
    ("driftd-overview", "Since last offline run"),
    ("driftd-dataset", "Counters, offline vs online"),
    ("driftd-dataset", "Counters in range, offline vs online"),
    ("driftd-dataset", "Latest offline run's counters"),
    ("driftd-dataset", "Anomalous counters in the latest run"),
    ("driftd-dataset", "Since last offline run"),
];

/// Template variables that must offer at least one value: (dashboard uid, variable name).
const CORE_VARIABLES: &[(&str, &str)] = &[
    ("driftd-overview", "job"),
    ("driftd-overview", "dataset"),
    ("driftd-dataset", "dataset"),
    ("driftd-dataset", "feature"),
];

/// What Grafana would put in place of each variable the queries may use; anything else fails.
fn variable_value(name: &str) -> Option<&'static str> {
    Some(match name {
        "dataset" => DATASET,
        "feature" => FEATURE,
        "job" => JOB,
        // Grafana's $__rate_interval is at least four scrape intervals (1 s here).
        "__rate_interval" => "10s",
        "__interval" => "2s",
        "__interval_ms" => "2000",
        "__range" => "5m",
        "__range_s" => "300",
        "__range_ms" => "300000",
        _ => return None,
    })
}

/// `expr` with every `$name`, `${name}`, `${name:format}` and `[[name]]` replaced.
fn substitute(expr: &str) -> Result<String, String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(at) = rest.find(['$', '[']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let (name, len) = if let Some(braced) = tail.strip_prefix("${") {
            let end = braced
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {expr}"))?;
            let name = braced[..end].split(':').next().unwrap_or_default();
            (name, end + 3)
        } else if let Some(bracketed) = tail.strip_prefix("[[") {
            let end = bracketed
                .find("]]")
                .ok_or_else(|| format!("unclosed [[ in {expr}"))?;
            (&bracketed[..end], end + 4)
        } else if let Some(plain) = tail.strip_prefix('$') {
            let end = plain.find(|c| !is_name(c)).unwrap_or(plain.len());
            (&plain[..end], end + 1)
        } else {
            // A `[` that opens a range selector.
            out.push('[');
            rest = &tail[1..];
            continue;
        };
        let value = variable_value(name)
            .ok_or_else(|| format!("unknown template variable `{name}` in {expr}"))?;
        out.push_str(value);
        rest = &tail[len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A Prometheus variable query, `label_values(selector, label)` or `label_values(label)`, as
/// PromQL returning one series per value.
fn variable_promql(query: &str) -> Result<String, String> {
    let args = query
        .trim()
        .strip_prefix("label_values(")
        .and_then(|q| q.strip_suffix(')'))
        .ok_or_else(|| format!("not a label_values() query: {query}"))?;
    Ok(match args.rsplit_once(',') {
        Some((selector, label)) => format!("count by ({}) ({})", label.trim(), selector.trim()),
        None => format!("count by ({0}) ({{{0}!=\"\"}})", args.trim()),
    })
}

fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

/// Every dashboard, by uid.
fn dashboards() -> BTreeMap<String, Json> {
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(dashboards_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            let dashboard: Json =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let uid = dashboard["uid"].as_str().unwrap().to_owned();
            let clash = found.insert(uid.clone(), dashboard);
            assert!(clash.is_none(), "two dashboards have uid {uid}");
        }
    }
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        ["driftd-dataset", "driftd-overview"]
    );
    found
}

/// A dashboard's panels, those inside rows included; rows themselves left out.
fn panels(dashboard: &Json) -> Vec<&Json> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            out.extend(panel["panels"].as_array().unwrap());
        } else {
            out.push(panel);
        }
    }
    out
}

fn variables(dashboard: &Json) -> &Vec<Json> {
    dashboard["templating"]["list"].as_array().unwrap()
}

/// One query to run: where it comes from and the PromQL Prometheus gets.
struct Query {
    dashboard: String,
    /// A panel's title, or `$name` for a template variable.
    source: String,
    promql: String,
    core: bool,
}

/// Every panel's and variable's query, substituted; panics on a variable it cannot fill in.
fn queries() -> Vec<Query> {
    let mut out = Vec::new();
    for (uid, dashboard) in &dashboards() {
        for panel in panels(dashboard) {
            let title = panel["title"].as_str().unwrap();
            let core = CORE_PANELS.contains(&(uid.as_str(), title));
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                out.push(Query {
                    dashboard: uid.clone(),
                    source: title.to_owned(),
                    promql: substitute(expr).unwrap_or_else(|e| panic!("{uid} / {title}: {e}")),
                    core,
                });
            }
        }
        for variable in variables(dashboard) {
            if variable["type"] != "query" {
                continue;
            }
            let name = variable["name"].as_str().unwrap();
            let query = variable["query"].as_str().unwrap();
            let promql = substitute(query)
                .and_then(|q| variable_promql(&q))
                .unwrap_or_else(|e| panic!("{uid} / ${name}: {e}"));
            out.push(Query {
                dashboard: uid.clone(),
                source: format!("${name}"),
                promql,
                core: CORE_VARIABLES.contains(&(uid.as_str(), name)),
            });
        }
    }
    out
}

#[test]
fn dashboards_import_anywhere_and_name_their_core_panels() {
    let prometheus = json!({"type": "prometheus", "uid": "${datasource}"});
    for (uid, dashboard) in &dashboards() {
        // The data source is a variable, so the JSON imports into any Grafana (UI import and
        // provisioning alike) and works with whichever Prometheus data source is chosen.
        let datasource: Vec<&Json> = variables(dashboard)
            .iter()
            .filter(|v| v["name"] == "datasource")
            .collect();
        match datasource.as_slice() {
            [v] if v["type"] == "datasource" && v["query"] == "prometheus" => {}
            other => panic!("{uid}: datasource variable: {other:?}"),
        }
        for variable in variables(dashboard).iter().filter(|v| v["type"] == "query") {
            assert_eq!(variable["datasource"], prometheus, "{uid}: {variable}");
        }
        let mut titles = BTreeSet::new();
        let mut ids = BTreeSet::new();
        for row in dashboard["panels"].as_array().unwrap() {
            if row["type"] == "row" {
                assert!(ids.insert(row["id"].as_u64().unwrap()), "{uid}: {row}");
            }
        }
        for panel in panels(dashboard) {
            let title = panel["title"].as_str().unwrap();
            assert!(titles.insert(title), "{uid}: two panels titled {title:?}");
            assert!(ids.insert(panel["id"].as_u64().unwrap()), "{uid}: {title}");
            assert_eq!(panel["datasource"], prometheus, "{uid} / {title}");
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{uid} / {title}: no query");
            for target in targets {
                assert_eq!(target["datasource"], prometheus, "{uid} / {title}");
            }
        }
        for (_, title) in CORE_PANELS.iter().filter(|(d, _)| d == uid) {
            assert!(titles.contains(title), "{uid}: no panel titled {title:?}");
        }
    }
    // Every query's variables can be filled in (panics otherwise).
    assert!(queries().len() > 30);
}

#[test]
fn template_variables_are_substituted_as_grafana_would() {
    assert_eq!(
        substitute(r#"rate(x{dataset=~"$dataset", f="${feature:regex}"}[$__rate_interval])"#)
            .unwrap(),
        r#"rate(x{dataset=~"search", f="latency_ms"}[10s])"#
    );
    assert_eq!(
        substitute("increase(x[$__range]) / $__range_s + [[job]]").unwrap(),
        "increase(x[5m]) / 300 + driftd"
    );
    assert!(substitute("x{a=\"$nope\"}").unwrap_err().contains("`nope`"));
    assert_eq!(
        variable_promql(r#"label_values(m{dataset="search"}, feature)"#).unwrap(),
        r#"count by (feature) (m{dataset="search"})"#
    );
}

/// Posts `body` to `path`; a problem to report unless driftd answered 2xx.
async fn post(app: &TestApp, path: &str, body: &Json) -> Option<String> {
    let r = app.send_json(reqwest::Method::POST, path, body).await;
    let status = r.status();
    if status.is_success() {
        return None;
    }
    let answer = r.text().await.unwrap_or_default();
    Some(format!("POST {path} {body} answered {status}: {answer}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_parses_and_core_panels_have_data() {
    let Some(binary) = prometheus_binary("the dashboards test") else {
        return;
    };
    let dir = TempDir::new().unwrap();
    let (app, _) = drifted_app(&dir).await;
    // A body that is not JSON: refused and counted as an ingest drop.
    let refused = app
        .client
        .post(app.url("/v1/datasets/search/records"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    // Counters of an offline run and of an online report; their failures are reported with the
    // panels' rather than at once, so the rest of the dashboards is still checked.
    let mut setup_problems = Vec::new();
    let counters = "/v1/datasets/search/counters";
    let offline = json!({"stage": "offline", "run_id": "train-1",
                         "counters": {"rows_read": 1000, "rows_dropped": 12}});
    let online = json!({"stage": "online", "counters": {"rows_read": 600, "rows_dropped": 3}});
    setup_problems.extend(post(&app, counters, &offline).await);
    setup_problems.extend(post(&app, counters, &online).await);
    wait_for_json(
        &app.client,
        &app.url("/v1/datasets/search/drift"),
        10,
        |v| v["current"]["rows"].as_u64() == Some(600),
    )
    .await;

    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/prometheus/driftd.rules.yml");
    let mut prom = Prometheus::start(&binary, dir.path(), &app.address, &[&rules]);
    let queries = queries();
    prom.wait_until(&app, 30, async |prom| {
        let mut problems = setup_problems.clone();
        for q in &queries {
            let at = format!("{} / {}", q.dashboard, q.source);
            match prom.query(&q.promql).await {
                Err(ApiError::Rejected(why)) => {
                    panic!("{at}: Prometheus does not accept `{}`: {why}", q.promql)
                }
                Err(ApiError::Unavailable(why)) => problems.push(format!("{at}: {why}")),
                Ok(series) if series.is_empty() && q.core => {
                    problems.push(format!("{at}: no data for `{}`", q.promql))
                }
                Ok(_) => {}
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} problems:\n  {}",
                problems.len(),
                problems.join("\n  ")
            ))
        }
    })
    .await;
    eprintln!(
        "{} queries accepted by Prometheus; {} of them core, all with data",
        queries.len(),
        queries.iter().filter(|q| q.core).count()
    );
    drop(prom);
    app.stop().await;
}
