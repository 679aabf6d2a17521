//! The daemon's pages (`driftd serve`): `/`, every dataset with its latest verdict, and
//! `/datasets/{dataset}`, one dataset's comparison drawn as the report draws it, its drift
//! scores over time, its offline runs with their counters and anomaly bands, and its alerts.
//!
//! Pure like the rest of `pictures`: what the store holds comes in (read by the serve layer),
//! HTML comes out; the time "now" is an argument. Links are relative, so the pages work behind
//! a path prefix.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::Page;
use super::html::{comparison, document};
use super::markup::Text;
use super::svg::{TimeLine, TimePoint, line_svg};
use crate::clock::rfc3339_ms;
use crate::format::{format_number, group_digits, plural};
use crate::store::Scores;

/// Most points a line draws; longer histories are thinned, keeping each stretch's highest
/// score (a spike stays visible) and whether it drifted.
pub const MAX_POINTS: usize = 240;
/// Most features whose score history is drawn (drifted first); the rest are counted.
pub const MAX_HISTORIES: usize = 60;
/// Most counters drawn for a dataset's runs.
pub const MAX_COUNTERS: usize = 12;
/// Drifted features named on the index before "and N more".
const NAMED_DRIFTED: usize = 5;

/// A stored verdict in brief.
#[derive(Debug, Clone, PartialEq)]
pub struct Brief {
    /// Drifted features, highest score first.
    pub drifted: Vec<String>,
    pub judged: usize,
    pub findings: usize,
    pub stale: bool,
    pub evaluated_ms: i64,
}

/// A dataset on the index.
#[derive(Debug, Clone)]
pub struct DatasetLine<'a> {
    pub name: &'a str,
    pub brief: Option<Brief>,
    pub offline_rows: i64,
    pub online_rows: i64,
    pub firing: usize,
}

/// An offline run as the dataset page shows it.
#[derive(Debug, Clone)]
pub struct RunView {
    pub run_id: String,
    pub run_ms: i64,
    pub counters: Vec<(String, f64)>,
    pub anomalies: Vec<AnomalyView>,
}

/// A value of a run that broke from its history.
#[derive(Debug, Clone)]
pub struct AnomalyView {
    pub name: String,
    /// The band the value was expected in.
    pub low: f64,
    pub high: f64,
    pub acknowledged: bool,
    /// In words ("rows_read = 1,000 in run r42; expected …").
    pub message: String,
}

/// An alert of the dataset.
#[derive(Debug, Clone)]
pub struct AlertView {
    pub rule: String,
    pub severity: String,
    pub state: String,
    pub since_ms: i64,
    pub features: Vec<String>,
    pub silenced: bool,
}

/// What the dataset page shows.
#[derive(Debug, Clone, Copy)]
pub struct DatasetPage<'a> {
    pub name: &'a str,
    pub brief: Option<&'a Brief>,
    /// The reference run against the recent windows, or why there is none.
    pub comparison: Result<Page<'a>, &'a str>,
    /// Evaluations, oldest first.
    pub history: &'a [Scores],
    /// Runs, newest first.
    pub runs: &'a [RunView],
    pub alerts: &'a [AlertView],
    pub now_ms: i64,
}

/// `/`: every dataset, those with drift first.
pub fn index(datasets: &[DatasetLine], now_ms: i64) -> String {
    let mut body = String::from(
        r#"<header><h1>driftd</h1><p class="legend">Datasets and their latest verdicts · JSON at <code>/v1/datasets</code></p></header><main>"#,
    );
    let mut lines: Vec<&DatasetLine> = datasets.iter().collect();
    let drifted = |l: &DatasetLine| l.brief.as_ref().map_or(0, |b| b.drifted.len());
    lines.sort_by(|a, b| drifted(b).cmp(&drifted(a)).then_with(|| a.name.cmp(b.name)));
    if lines.is_empty() {
        body.push_str(r#"<p class="legend">No dataset yet: nothing was profiled.</p>"#);
    } else {
        body.push_str(INDEX_HEAD);
        for line in lines {
            body.push_str(&index_row(line, now_ms));
        }
        body.push_str("</tbody></table></div>");
    }
    body.push_str("</main>");
    document("driftd", &body)
}

const INDEX_HEAD: &str = r#"<h2>Datasets</h2><div class="scroll"><table id="datasets"><thead><tr><th>dataset</th><th>verdict</th><th>drifted features</th><th>findings</th><th>evaluated</th><th>rows offline</th><th>rows online</th><th>firing alerts</th></tr></thead><tbody>"#;

fn index_row(line: &DatasetLine, now_ms: i64) -> String {
    let mut s = format!(
        r#"<tr data-drift="{}"><td class="name"><a href="datasets/{}">{}</a></td>"#,
        u8::from(line.brief.as_ref().is_some_and(|b| !b.drifted.is_empty())),
        Text(line.name),
        Text(line.name),
    );
    match &line.brief {
        None => s.push_str(
            r#"<td><span class="badge quiet">no verdict</span></td><td></td><td></td><td>—</td>"#,
        ),
        Some(b) => {
            let _ = write!(
                s,
                r#"<td>{}</td><td class="drifted">{}</td><td>{}</td><td>{}</td>"#,
                verdict_badge(b),
                named(&b.drifted),
                b.findings,
                Text(&age(now_ms, b.evaluated_ms)),
            );
        }
    }
    let _ = write!(
        s,
        r#"<td>{}</td><td>{}</td><td>{}</td></tr>"#,
        group_digits(line.offline_rows.max(0) as u64),
        group_digits(line.online_rows.max(0) as u64),
        firing_badge(line.firing),
    );
    s
}

fn verdict_badge(b: &Brief) -> String {
    let (class, text) = match b.drifted.len() {
        0 => ("good", "no drift".to_owned()),
        n => ("bad", format!("drift in {n} of {}", b.judged)),
    };
    let stale = if b.stale {
        r#" <span class="badge warn">stale</span>"#
    } else {
        ""
    };
    format!(
        r#"<span class="badge {class}">{}</span>{stale}"#,
        Text(&text)
    )
}

fn firing_badge(n: usize) -> String {
    if n == 0 {
        "0".to_owned()
    } else {
        format!(r#"<span class="badge bad">{n}</span>"#)
    }
}

/// The first drifted features' names, then how many more.
fn named(drifted: &[String]) -> String {
    let mut s = drifted
        .iter()
        .take(NAMED_DRIFTED)
        .map(|n| format!(r#"<span class="name">{}</span>"#, Text(n)))
        .collect::<Vec<_>>()
        .join(", ");
    if drifted.len() > NAMED_DRIFTED {
        let _ = write!(s, " and {} more", drifted.len() - NAMED_DRIFTED);
    }
    s
}

/// How long ago `then_ms` was, in the largest whole unit.
pub fn age(now_ms: i64, then_ms: i64) -> String {
    let seconds = (now_ms - then_ms).max(0) / 1000;
    match seconds {
        s if s < 120 => format!("{s} s ago"),
        s if s < 7200 => format!("{} min ago", s / 60),
        s if s < 172_800 => format!("{} h ago", s / 3600),
        s => format!("{} d ago", s / 86_400),
    }
}

/// A time as the pages print it: `2026-12-02 16:20:05 UTC`.
pub fn when(ms: i64) -> String {
    rfc3339_ms(ms).map_or_else(
        || "—".to_owned(),
        |t| format!("{} UTC", t[..19].replace('T', " ")),
    )
}

/// `/datasets/{dataset}`.
pub fn dataset(page: &DatasetPage) -> String {
    let title = format!("driftd: {}", page.name);
    let mut body = dataset_header(page, &title);
    body.push_str("<main>");
    match &page.comparison {
        Ok(view) => body.push_str(&comparison(view)),
        Err(why) => {
            let _ = write!(body, r#"<p class="legend">{}</p>"#, Text(why));
        }
    }
    body.push_str(&history(page.history));
    body.push_str(&runs(page.runs));
    body.push_str(&alerts(page.alerts, page.now_ms));
    body.push_str("</main>");
    document(&title, &body)
}

fn dataset_header(page: &DatasetPage, title: &str) -> String {
    let mut s = format!(
        r##"<header><p class="nav"><a href="../">← all datasets</a> · <a href="#scores">score history</a> · <a href="#runs-h">runs</a> · <a href="#alerts-h">alerts</a></p><h1>{}</h1><dl class="sources">"##,
        Text(title)
    );
    if let Ok(view) = &page.comparison {
        let _ = write!(
            s,
            "<dt>reference</dt><dd>{} · {} rows</dd><dt>current</dt><dd>{} · {} rows</dd>",
            Text(view.reference_source),
            group_digits(view.reference.rows),
            Text(view.current_source),
            group_digits(view.current.rows),
        );
    }
    if let Some(b) = page.brief {
        let _ = write!(
            s,
            "<dt>evaluated</dt><dd>{} ({}){}</dd>",
            Text(&when(b.evaluated_ms)),
            Text(&age(page.now_ms, b.evaluated_ms)),
            if b.stale {
                " · stale: no recent online data"
            } else {
                ""
            },
        );
    }
    s.push_str("</dl></header>");
    s
}

/// A line per feature of its score over the evaluations, drifted features (as of the latest
/// evaluation) first, highest score first.
fn history(history: &[Scores]) -> String {
    let mut s = String::from(r#"<h2 id="scores">Drift score over time</h2>"#);
    let (Some(first), Some(last)) = (history.first(), history.last()) else {
        s.push_str(r#"<p class="legend">No evaluation recorded yet.</p>"#);
        return s;
    };
    let _ = write!(
        s,
        r#"<p class="legend">{} {} from {} to {} · dashed: the threshold · dots: drifted</p><div class="grid" id="history">"#,
        group_digits(history.len() as u64),
        plural(history.len(), "evaluation", "evaluations"),
        Text(&when(first.evaluated_ms)),
        Text(&when(last.evaluated_ms)),
    );
    let times = (
        short_when(first.evaluated_ms),
        short_when(last.evaluated_ms),
    );
    for name in history_order(history) {
        let line = score_line(history, name);
        let latest = last.features.get(name);
        let _ = write!(
            s,
            r#"<section class="history" data-feature="{}" data-drift="{}"><h3><span class="name">{}</span>{}</h3>{}</section>"#,
            Text(name),
            u8::from(latest.is_some_and(|l| l.drifted)),
            Text(name),
            latest
                .and_then(|l| l.score)
                .map(|v| format!(
                    r#" <span class="kind">now {}</span>"#,
                    Text(&format_number(v))
                ))
                .unwrap_or_default(),
            line_svg(
                &line,
                (&times.0, &times.1),
                &format!("{name}: drift score over time")
            ),
        );
    }
    s.push_str("</div>");
    s
}

fn short_when(ms: i64) -> String {
    rfc3339_ms(ms).map_or_else(String::new, |t| t[5..16].replace('T', " "))
}

/// Every feature of the history: drifted in the latest evaluation first, by score, then the
/// rest by score and name.
pub fn history_order(history: &[Scores]) -> Vec<&str> {
    let names: BTreeSet<&str> = history
        .iter()
        .flat_map(|s| s.features.keys().map(String::as_str))
        .collect();
    let latest = history.last().map(|s| &s.features);
    let key = |name: &str| {
        let s = latest.and_then(|l| l.get(name));
        (
            s.is_some_and(|s| s.drifted),
            s.and_then(|s| s.score).unwrap_or(-1.0),
        )
    };
    let mut names: Vec<&str> = names.into_iter().collect();
    names.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        kb.0.cmp(&ka.0)
            .then_with(|| kb.1.total_cmp(&ka.1))
            .then_with(|| a.cmp(b))
    });
    names
}

/// One feature's scores, thinned to `MAX_POINTS`: each stretch keeps its last time, its highest
/// score and whether any of it drifted; the threshold is the latest.
pub fn score_line(history: &[Scores], name: &str) -> TimeLine {
    let stretch = history.len().div_ceil(MAX_POINTS).max(1);
    let points = history
        .chunks(stretch)
        .map(|chunk| {
            let scores = chunk.iter().filter_map(|s| s.features.get(name));
            let value = scores
                .clone()
                .filter_map(|s| s.score)
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
            TimePoint {
                at_ms: chunk.last().expect("chunks are not empty").evaluated_ms,
                value,
                marked: scores.clone().any(|s| s.drifted),
                band: None,
            }
        })
        .collect();
    let limit = history
        .iter()
        .rev()
        .find_map(|s| s.features.get(name))
        .map(|s| s.threshold);
    TimeLine { points, limit }
}

/// The runs: a line per counter over the runs, anomalous values dotted with the band they
/// were expected in; then the runs' table.
fn runs(runs: &[RunView]) -> String {
    let mut s = String::from(r#"<h2 id="runs-h">Offline runs</h2>"#);
    if runs.is_empty() {
        s.push_str(r#"<p class="legend">No offline run reported counters.</p>"#);
        return s;
    }
    let oldest_first: Vec<&RunView> = runs.iter().rev().collect();
    let names: BTreeSet<&str> = runs
        .iter()
        .flat_map(|r| r.counters.iter().map(|(n, _)| n.as_str()))
        .collect();
    let times = (
        short_when(oldest_first[0].run_ms),
        short_when(runs[0].run_ms),
    );
    if !names.is_empty() {
        let _ = write!(
            s,
            r#"<p class="legend">Counters of the last {} {} · dots: anomalous, with the range expected</p><div class="grid" id="counters">"#,
            runs.len(),
            plural(runs.len(), "run", "runs"),
        );
        for name in names.iter().take(MAX_COUNTERS) {
            let line = counter_line(&oldest_first, name);
            let _ = write!(
                s,
                r#"<section class="history counter" data-counter="{}"><h3><span class="name">{}</span></h3>{}</section>"#,
                Text(name),
                Text(name),
                line_svg(&line, (&times.0, &times.1), &format!("{name} per run")),
            );
        }
        s.push_str("</div>");
    }
    s.push_str(&runs_table(runs));
    s
}

fn counter_line(runs: &[&RunView], name: &str) -> TimeLine {
    let points = runs
        .iter()
        .map(|r| {
            let anomaly = r
                .anomalies
                .iter()
                .find(|a| a.name == name && !a.acknowledged);
            TimePoint {
                at_ms: r.run_ms,
                value: r.counters.iter().find(|(n, _)| n == name).map(|(_, v)| *v),
                marked: anomaly.is_some(),
                band: anomaly.map(|a| (a.low, a.high)),
            }
        })
        .collect();
    TimeLine {
        points,
        limit: None,
    }
}

fn runs_table(runs: &[RunView]) -> String {
    let mut s = String::from(
        r#"<div class="scroll"><table id="runs"><thead><tr><th>run</th><th>time</th><th>counters</th><th>anomalies</th></tr></thead><tbody>"#,
    );
    for r in runs {
        let anomalies: Vec<String> = r
            .anomalies
            .iter()
            .map(|a| {
                let class = if a.acknowledged { "quiet" } else { "bad" };
                format!(r#"<span class="badge {class}">{}</span>"#, Text(&a.message))
            })
            .collect();
        let _ = write!(
            s,
            r#"<tr><td class="name">{}</td><td>{}</td><td>{}</td><td class="wrap">{}</td></tr>"#,
            Text(&r.run_id),
            Text(&when(r.run_ms)),
            r.counters.len(),
            anomalies.join(" "),
        );
    }
    s.push_str("</tbody></table></div>");
    s
}

fn alerts(alerts: &[AlertView], now_ms: i64) -> String {
    let mut s = String::from(r#"<h2 id="alerts-h">Alerts</h2>"#);
    if alerts.is_empty() {
        s.push_str(r#"<p class="legend">No alert.</p>"#);
        return s;
    }
    s.push_str(r#"<div class="scroll"><table id="alerts"><thead><tr><th>state</th><th>rule</th><th>severity</th><th>since</th><th>features</th></tr></thead><tbody>"#);
    for a in alerts {
        let class = match a.state.as_str() {
            "firing" => "bad",
            "pending" => "warn",
            _ => "quiet",
        };
        let silenced = if a.silenced {
            r#" <span class="badge quiet">silenced</span>"#
        } else {
            ""
        };
        let _ = write!(
            s,
            r#"<tr data-state="{}"><td><span class="badge {class}">{}</span>{silenced}</td><td class="name">{}</td><td>{}</td><td>{} ({})</td><td class="wrap">{}</td></tr>"#,
            Text(&a.state),
            Text(&a.state),
            Text(&a.rule),
            Text(&a.severity),
            Text(&when(a.since_ms)),
            Text(&age(now_ms, a.since_ms)),
            named(&a.features),
        );
    }
    s.push_str("</tbody></table></div>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Score;

    const HOSTILE: &str = "<script>alert(1)</script>";

    fn scores(at: i64, features: &[(&str, Option<f64>, bool)]) -> Scores {
        Scores {
            evaluated_ms: at,
            features: features
                .iter()
                .map(|&(n, score, drifted)| {
                    let s = Score {
                        score,
                        threshold: 0.2,
                        drifted,
                    };
                    (n.to_owned(), s)
                })
                .collect(),
        }
    }

    #[test]
    fn the_history_puts_drifted_features_first_and_thins_long_lines() {
        let history: Vec<Scores> = (0..1000)
            .map(|i| {
                let moved = if i == 500 { 0.9 } else { 0.01 };
                scores(
                    1_000_000 + i * 1000,
                    &[
                        ("calm", Some(0.05), false),
                        (HOSTILE, Some(moved), i == 500),
                        ("late", Some(0.3 + i as f64 / 1e4), i >= 990),
                    ],
                )
            })
            .collect();
        assert_eq!(history_order(&history), ["late", "calm", HOSTILE]);
        let line = score_line(&history, HOSTILE);
        // 1000 evaluations in stretches of 5: 200 points, the spike kept.
        assert_eq!(line.points.len(), 200);
        assert_eq!(line.points.iter().filter(|p| p.marked).count(), 1);
        let spike = line.points.iter().find(|p| p.marked).unwrap();
        assert_eq!((spike.value, spike.at_ms), (Some(0.9), 1_000_000 + 504_000));
        assert_eq!(line.limit, Some(0.2));
        let html = history_page(&history);
        assert_eq!(html.matches(r#"data-points="200""#).count(), 3);
        assert!(!html.contains("<script>alert"), "an unescaped name");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    fn history_page(history: &[Scores]) -> String {
        dataset(&DatasetPage {
            name: "d\u{202e}x",
            brief: None,
            comparison: Err("no recent online data"),
            history,
            runs: &[],
            alerts: &[],
            now_ms: 2_000_000,
        })
    }

    #[test]
    fn a_missing_score_breaks_the_line() {
        let history = [
            scores(1000, &[("f", Some(0.1), false)]),
            scores(2000, &[("f", None, false)]),
            scores(3000, &[("f", Some(0.3), true)]),
        ];
        let svg = line_svg(&score_line(&history, "f"), ("a", "b"), "f");
        let d = svg.split(r#"class="value" d=""#).nth(1).unwrap();
        let d = &d[..d.find('"').unwrap()];
        assert_eq!(d.matches('M').count(), 2, "{d}");
        assert!(!d.contains('L'), "{d}");
        assert!(svg.contains(r#"class="hit""#) && svg.contains(r#"class="limit""#));
        assert!(!history_page(&history).contains('\u{202e}'));
    }

    #[test]
    fn the_index_lists_drifted_datasets_first_with_their_age() {
        let brief = |drifted: &[&str], at| Brief {
            drifted: drifted.iter().map(|s| s.to_string()).collect(),
            judged: 6,
            findings: 2,
            stale: false,
            evaluated_ms: at,
        };
        let lines = [
            DatasetLine {
                name: "a_calm",
                brief: Some(brief(&[], 90_000)),
                offline_rows: 1000,
                online_rows: 10,
                firing: 0,
            },
            DatasetLine {
                name: "b_moved",
                brief: Some(brief(&[HOSTILE, "x"], 40_000)),
                offline_rows: 1000,
                online_rows: 2_500,
                firing: 1,
            },
        ];
        let html = index(&lines, 100_000);
        let rows: Vec<&str> = html.split("<tr data-drift=").skip(1).collect();
        assert!(
            rows[0].contains(r#"href="datasets/b_moved""#),
            "{}",
            rows[0]
        );
        assert!(rows[0].contains("drift in 2 of 6") && rows[0].contains("60 s ago"));
        assert!(rows[0].contains("2,500"));
        assert!(rows[1].contains("no drift") && rows[1].contains("10 s ago"));
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>alert"));
        assert_eq!(age(10_000_000, 0), "2 h ago");
        assert_eq!(when(1_795_766_400_123), "2026-11-27 08:00:00 UTC");
    }
}
