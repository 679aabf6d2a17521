//! The daemon's pages for people: `GET /` when the request's `Accept` prefers HTML (a browser),
//! and `GET /datasets/{dataset}`. Drawn by `pictures::daemon` from what the API serves as JSON;
//! the comparison is judged as evaluation judges it (`evaluate::judge`), so the page and the
//! stored verdict are one code path. Read-only; behind the `read` scope like every `GET`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use super::{ApiError, AppState, Path};
use crate::alert_model::AlertState;
use crate::clock::now_ms;
use crate::names::DatasetName;
use crate::pictures::daemon::{self, AlertView, AnomalyView, Brief, DatasetLine, RunView};
use crate::pictures::{Page, html};
use crate::serve::evaluate::{self, Judgement};
use crate::serve::runs::describe;
use crate::store::{AlertRow, Source, Store, StoreError};

/// Evaluations read for the score history, as `/drift/history` reads them.
const HISTORY_ROWS: i64 = super::drift::HISTORY_ROWS;
/// Runs shown.
const RUNS: i64 = 30;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/datasets/{dataset}", get(get_dataset_page))
}

/// Whether `Accept` prefers HTML to JSON: `text/html` (or `text/*`) with a higher quality than
/// `application/json` (or `application/*`, `*/*`). `*/*` alone, as curl sends, is JSON.
pub fn prefers_html(headers: &HeaderMap) -> bool {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let quality = |types: &[&str]| {
        types.iter().find_map(|wanted| {
            accept.split(',').find_map(|item| {
                let mut parts = item.split(';');
                let media = parts.next()?.trim();
                if !media.eq_ignore_ascii_case(wanted) {
                    return None;
                }
                let q = parts
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .find_map(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                Some(q)
            })
        })
    };
    let html = quality(&["text/html", "text/*"]).unwrap_or(0.0);
    let json = quality(&["application/json", "application/*", "*/*"]).unwrap_or(0.0);
    html > 0.0 && html > json
}

/// A page as the response: HTML, its Content-Security-Policy also as a header, not cached.
fn page_response(body: String) -> Response {
    let policy =
        HeaderValue::from_str(&html::content_security_policy()).expect("the policy is ASCII");
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CONTENT_SECURITY_POLICY, policy),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::VARY, HeaderValue::from_static("Accept")),
        ],
        body,
    )
        .into_response()
}

/// `/` for people: every dataset with its latest verdict.
pub async fn index_page(state: &AppState) -> Result<Response, ApiError> {
    let now = now_ms();
    let alerts = state.store.alerts().await?;
    let summaries = state.store.dataset_summaries(None).await?;
    let mut lines = Vec::with_capacity(summaries.len());
    for s in &summaries {
        let brief = state
            .store
            .verdict(&s.dataset)
            .await?
            .and_then(|(text, at)| brief_of(&text, at));
        let firing = alerts
            .iter()
            .filter(|a| a.dataset == s.dataset && a.state == AlertState::Firing)
            .count();
        lines.push(DatasetLine {
            name: &s.dataset,
            brief,
            offline_rows: s.offline_rows,
            online_rows: s.online_rows,
            firing,
        });
    }
    Ok(page_response(daemon::index(&lines, now)))
}

/// The stored verdict in brief; `None` when it is not a JSON object.
fn brief_of(text: &str, evaluated_ms: i64) -> Option<Brief> {
    let verdict: Value = serde_json::from_str(text).ok()?;
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    Some(Brief {
        drifted: names(&verdict["drifted"]),
        judged: verdict["features"].as_object().map_or(0, |f| f.len()),
        findings: verdict["schema"].as_array().map_or(0, Vec::len),
        stale: verdict["stale"] == Value::Bool(true),
        evaluated_ms,
    })
}

async fn get_dataset_page(
    State(state): State<AppState>,
    Path(dataset): Path<DatasetName>,
) -> Result<Response, ApiError> {
    let now = now_ms();
    if state
        .store
        .dataset_summaries(Some(&dataset))
        .await?
        .is_empty()
    {
        let name = dataset.as_str();
        return Err(ApiError::NotFound(format!(
            "no dataset {name:?}: nothing was profiled for it"
        )));
    }
    let store = &state.store;
    let brief = store
        .verdict(&dataset)
        .await?
        .and_then(|(text, at)| brief_of(&text, at));
    let rules = &state.offline.runs.rules;
    let judgement = evaluate::judge(store, rules, &state.config, &dataset, now).await?;
    let since = now - state.config.retention.as_millis() as i64;
    let history = store.score_history(&dataset, since, HISTORY_ROWS).await?;
    let runs = run_views(store, &dataset).await?;
    let alerts: Vec<AlertView> = store
        .alerts()
        .await?
        .iter()
        .filter(|a| a.dataset == dataset.as_str())
        .map(|a| alert_view(a, now))
        .collect();
    let horizon = humantime::format_duration(2 * state.config.window).to_string();
    let sources = sources(&judgement, &horizon);
    let page = daemon::DatasetPage {
        name: &dataset,
        brief: brief.as_ref(),
        comparison: comparison(&judgement, &sources),
        history: &history,
        runs: &runs,
        alerts: &alerts,
        now_ms: now,
    };
    Ok(page_response(daemon::dataset(&page)))
}

/// What the page draws of the judgement: both sides and their comparison, or why not.
fn comparison<'a>(
    judgement: &'a Judgement,
    sources: &'a (String, String),
) -> Result<Page<'a>, &'a str> {
    match judgement {
        Judgement::Judged(j) => Ok(Page {
            reference: &j.reference,
            current: &j.current,
            report: &j.report,
            reference_source: &sources.0,
            current_source: &sources.1,
            generated_at: None,
        }),
        Judgement::NoCurrent { .. } => Err(sources.1.as_str()),
        Judgement::NoReference => Err("No reference yet: the dataset needs an offline run."),
    }
}

/// Where each side of the comparison comes from, in words; without current data, why.
fn sources(judgement: &Judgement, horizon: &str) -> (String, String) {
    let run = |run_id: &str, pinned: bool| {
        format!(
            "offline run {run_id}{}",
            if pinned { " (pinned)" } else { "" }
        )
    };
    match judgement {
        Judgement::Judged(j) => (
            run(&j.run_id, j.pinned),
            format!("online windows of the last {horizon}"),
        ),
        Judgement::NoCurrent { run_id, pinned, .. } => (
            run(run_id, *pinned),
            format!(
                "No online data in the last {horizon} to compare with {}.",
                run(run_id, *pinned)
            ),
        ),
        Judgement::NoReference => (String::new(), String::new()),
    }
}

async fn run_views(store: &Store, dataset: &str) -> Result<Vec<RunView>, StoreError> {
    let mut views = Vec::new();
    for run in store.runs(dataset, RUNS).await? {
        let counters = store
            .run_values(dataset, &run.run_id, Source::Counter)
            .await?;
        let anomalies = store
            .run_anomalies(dataset, &run.run_id)
            .await?
            .iter()
            .map(|a| AnomalyView {
                name: a.name.clone(),
                low: a.low,
                high: a.high,
                acknowledged: a.acknowledged,
                message: describe(a),
            })
            .collect();
        views.push(RunView {
            run_id: run.run_id,
            run_ms: run.run_ms,
            counters,
            anomalies,
        });
    }
    Ok(views)
}

fn alert_view(a: &AlertRow, now: i64) -> AlertView {
    let summary: Value = serde_json::from_str(&a.summary).unwrap_or_default();
    let features = summary["features"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|f| f["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    AlertView {
        rule: a.rule.clone(),
        severity: a.severity.as_str().to_owned(),
        state: a.state.as_str().to_owned(),
        since_ms: a.active_since_ms,
        features,
        silenced: a.silenced_until_ms > now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn browsers_get_html_and_api_clients_json() {
        let chromium =
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
        assert!(prefers_html(&accept(chromium)));
        assert!(prefers_html(&accept("text/*")));
        assert!(!prefers_html(&accept("*/*")));
        assert!(!prefers_html(&accept("application/json")));
        assert!(!prefers_html(&accept("text/html;q=0.5, application/json")));
        assert!(!prefers_html(&accept("text/html, application/json")));
        assert!(!prefers_html(&accept("text/html;q=0")));
        assert!(!prefers_html(&HeaderMap::new()));
    }
}
