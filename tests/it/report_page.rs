//! `driftd report` through the binary, and the page it writes opened in a real browser:
//! Debian's Chromium, headless, driven over the DevTools protocol by
//! `tests/browser/inspect_page.py` (standard library only). The browser is `DRIFTD_CHROMIUM`,
//! else `/usr/bin/chromium`; without it (or without `python3`) the browser tests fail under
//! `CI=true` and are skipped elsewhere. `scripts/test.sh` installs Debian's `chromium`.
//! Screenshots and a printed PDF land in `target/tmp/report-screenshots/<test>/`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal, Normal};
use serde_json::Value;
use tempfile::TempDir;

use crate::helpers::{driftd, stderr};

const HOSTILE_NAME: &str = "<script>alert(1)</script>";
const BIDI_NAME: &str = "invoice\u{202e}fdp.exe";
const HOSTILE_VALUE: &str = "<img src=x onerror=alert(1)>";

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Chromium and python3, or `None` (the test returns) when missing outside CI.
fn browser(what: &str) -> Option<(PathBuf, PathBuf)> {
    let chromium = std::env::var_os("DRIFTD_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let python = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("python3"))
            .find(|p| p.is_file())
    });
    match (chromium.is_file(), python) {
        (true, Some(python)) => Some((chromium, python)),
        (found, python) => {
            let missing = if found { "python3" } else { "chromium" };
            assert!(
                !under_ci(),
                "{missing} is required under CI=true ({} not found; set DRIFTD_CHROMIUM, \
                 scripts/test.sh installs Debian's chromium)",
                if found {
                    "python3".into()
                } else {
                    chromium.display().to_string()
                }
            );
            let _ = python;
            eprintln!("skipping {what}: no {missing}");
            None
        }
    }
}

/// Where a test's screenshots go: kept after the run, for people to look at.
pub fn screenshot_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("report-screenshots")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Opens `page` (a file, or an `http://` URL) in Chromium; the inspector's JSON answer.
pub fn inspect(
    page: impl AsRef<std::ffi::OsStr>,
    out_dir: &Path,
    filter: &str,
    height: u32,
) -> Option<Value> {
    let (chromium, python) = browser("the browser check")?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/inspect_page.py");
    let out = Command::new(python)
        .arg(script)
        .arg(chromium)
        .arg(page)
        .arg(out_dir)
        .args(["--filter", filter, "--timeout", "120", "--height"])
        .arg(height.to_string())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "inspect_page.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("one JSON document"))
}

/// Fifteen features of every kind, some moved, with hostile names and values.
fn write_pair(dir: &TempDir) -> (String, String) {
    let mut rng = StdRng::seed_from_u64(17);
    let names = [
        "age",
        "income",
        "latency_ms",
        "score",
        "clicks",
        "temp_c",
        "session_len",
        HOSTILE_NAME,
        "country",
        "device",
        "plan",
        BIDI_NAME,
        "is_member",
        "opted_in",
        "ratio",
    ];
    let countries = [
        "US", "DE", "FR", "JP", "BR", "IN", "GB", "CA", "MX", "ES", "IT",
    ];
    let mut paths = Vec::new();
    for (side, moved) in [("train", false), ("serve", true)] {
        let mut w = csv::Writer::from_path(dir.path().join(format!("{side}.csv"))).unwrap();
        w.write_record(names).unwrap();
        let shift = if moved { 1.0 } else { 0.0 };
        for _ in 0..4000 {
            let country_weights: [f64; 11] = if moved {
                [20., 12., 8., 9., 12., 18., 7., 5., 4., 5., 4.]
            } else {
                [30., 12., 8., 9., 6., 10., 7., 5., 4., 5., 4.]
            };
            let country = rand_distr::weighted::WeightedIndex::new(country_weights)
                .unwrap()
                .sample(&mut rng);
            let plan = match rng.random_range(0..if moved { 4 } else { 3 }) {
                0 => "free",
                1 => "pro",
                2 => "team",
                _ => HOSTILE_VALUE,
            };
            let temp = if moved && rng.random::<f64>() < 0.08 {
                String::new()
            } else {
                format!("{:.1}", Normal::new(20.0, 5.0).unwrap().sample(&mut rng))
            };
            let row = [
                format!(
                    "{:.1}",
                    Normal::new(40.0 + 3.0 * shift, 12.0)
                        .unwrap()
                        .sample(&mut rng)
                ),
                format!("{:.2}", LogNormal::new(10.5, 0.6).unwrap().sample(&mut rng)),
                format!(
                    "{:.2}",
                    Exp::new(1.0 / (30.0 + 20.0 * shift))
                        .unwrap()
                        .sample(&mut rng)
                ),
                format!("{:.4}", rng.random::<f64>()),
                (Exp::new(0.3).unwrap().sample(&mut rng) as u64).to_string(),
                temp,
                rng.random_range(1..600).to_string(),
                Normal::new(0.0, 1.0).unwrap().sample(&mut rng).to_string(),
                countries[country].to_owned(),
                ["ios", "android", "web"][rng.random_range(0..3)].to_owned(),
                plan.to_owned(),
                ["a", "b"][rng.random_range(0..2)].to_owned(),
                (rng.random::<f64>() < 0.3 + 0.15 * shift).to_string(),
                (rng.random::<f64>() < 0.5).to_string(),
                format!("{:.4}", rng.random::<f64>().powi(2)),
            ];
            w.write_record(&row).unwrap();
        }
        w.flush().unwrap();
        paths.push(
            dir.path()
                .join(format!("{side}.csv"))
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    (paths[0].clone(), paths[1].clone())
}

/// What `driftd compare --json` says about the pair: the drifted features, in order.
fn drifted(reference: &str, current: &str) -> Vec<String> {
    let out = driftd(&["compare", reference, current, "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("compare --json");
    doc["drifted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn report(dir: &TempDir, reference: &str, current: &str) -> (PathBuf, String) {
    let page = dir.path().join("report.html");
    let out = driftd(&[
        "report",
        reference,
        current,
        "--out",
        page.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    (page, said)
}

#[test]
fn report_writes_one_self_contained_page_and_exits_0() {
    let dir = TempDir::new().unwrap();
    let (train, serve) = write_pair(&dir);
    let (page, said) = report(&dir, &train, &serve);
    let drifted = drifted(&train, &serve);
    assert!(
        said.contains(&format!("{} of 15 features drifted", drifted.len())),
        "{said}"
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(
        !html.contains("://"),
        "a URL in a page that must load nothing"
    );
    assert_eq!(html.matches("<script").count(), 1);
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(html.contains("invoice\\u{202e}fdp.exe") && !html.contains('\u{202e}'));
    assert_eq!(html.matches(r#"<section class="feature""#).count(), 15);
    println!("report of 15 features: {} bytes", html.len());
    assert!(
        html.len() < 120 * 1024,
        "{} bytes for 15 features",
        html.len()
    );
    // Nothing but the page is left in the directory.
    let mut files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["report.html", "serve.csv", "train.csv"]);
}

#[test]
fn report_errors_exit_2_with_a_message() {
    let dir = TempDir::new().unwrap();
    let (train, serve) = write_pair(&dir);
    let missing = dir.path().join("nope.csv");
    let page = dir.path().join("r.html");
    let out = driftd(&[
        "report",
        &train,
        missing.to_str().unwrap(),
        "--out",
        page.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nope.csv"), "{}", stderr(&out));
    let nowhere = dir.path().join("no/such/dir/r.html");
    let out = driftd(&["report", &train, &serve, "--out", nowhere.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(
        message.contains("cannot write the report to") && message.contains("no/such/dir"),
        "{message}"
    );
    assert!(!page.exists());
}

/// The assertions every opened report must pass.
fn assert_renders_cleanly(seen: &Value, features: usize, drifted: &[String]) {
    assert_eq!(seen["console"], serde_json::json!([]), "console messages");
    assert_eq!(seen["requests"], serde_json::json!([]), "network requests");
    let facts = &seen["facts"];
    assert_eq!(facts["cards"], features);
    assert_eq!(facts["rows"], features);
    assert_eq!(facts["cards_with_chart"], features, "a chart per feature");
    assert_eq!(facts["printed_cards"], features, "every card printed");
    assert_eq!(facts["scripts"], 1);
    assert_eq!(facts["external"], serde_json::json!([]));
    assert!(
        facts["csp"]
            .as_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );
    // Drifted first, in the order `compare` ranks them, then the rest; cards as the table.
    let names: Vec<&str> = facts["row_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let shown: Vec<String> = names[..drifted.len()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(shown, drifted);
    let flags: Vec<bool> = facts["row_drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_bool().unwrap())
        .collect();
    assert!(flags[..drifted.len()].iter().all(|&d| d));
    assert!(flags[drifted.len()..].iter().all(|&d| !d));
    assert_eq!(facts["card_drift"], facts["row_drift"]);
    assert_eq!(seen["interaction"]["drifted_only_rows"], drifted.len());
    assert_eq!(seen["interaction"]["drifted_only_cards"], drifted.len());
    assert_eq!(seen["without_scripts"]["cards_with_chart"], features);
    assert_eq!(seen["without_scripts"]["controls_shown"], false);
    for (key, magic) in [
        ("light", &b"\x89PNG"[..]),
        ("dark", b"\x89PNG"),
        ("pdf", b"%PDF"),
    ] {
        let bytes = std::fs::read(seen["files"][key].as_str().unwrap()).unwrap();
        assert!(bytes.starts_with(magic) && bytes.len() > 10_000, "{key}");
    }
}

#[test]
fn report_renders_in_chromium_without_errors_or_requests() {
    let dir = TempDir::new().unwrap();
    let (train, serve) = write_pair(&dir);
    let (page, _) = report(&dir, &train, &serve);
    let shots = screenshot_dir("fifteen_features");
    let Some(seen) = inspect(&page, &shots, "ag", 2200) else {
        return;
    };
    let drifted = drifted(&train, &serve);
    assert!(drifted.len() >= 3, "{drifted:?}");
    assert_renders_cleanly(&seen, 15, &drifted);
    let facts = &seen["facts"];
    let names = facts["row_names"].as_array().unwrap();
    assert!(names.contains(&Value::from(HOSTILE_NAME)), "{names:?}");
    assert!(names.contains(&Value::from("invoice\\u{202e}fdp.exe")));
    let interaction = &seen["interaction"];
    // Of the fifteen names only "age" contains "ag".
    assert_eq!(interaction["filter_rows"], serde_json::json!(["age"]));
    assert_eq!(interaction["filter_cards"], 1);
    let by_name: Vec<&str> = interaction["by_name"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut sorted = by_name.clone();
    sorted.sort_by_key(|s| s.to_lowercase());
    assert_eq!(by_name, sorted);
    assert_eq!(interaction["first_card_after_sort"], by_name[0]);
    let scores: Vec<f64> = interaction["by_score"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().parse::<f64>().unwrap_or(-1.0))
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    println!("15 features: {} bytes, {}", seen["bytes"], seen["timing"]);
}

#[test]
fn the_browser_check_sees_requests_and_blocked_scripts() {
    // The harness itself must not be blind: a tampered page is caught both ways.
    let dir = TempDir::new().unwrap();
    let (train, serve) = write_pair(&dir);
    let (page, _) = report(&dir, &train, &serve);
    let html = std::fs::read_to_string(&page).unwrap();
    let injected = r#"<img src="http://127.0.0.1:9/pixel.png"><script>console.log("injected")</script></body>"#;
    let with_policy = dir.path().join("tampered.html");
    std::fs::write(&with_policy, html.replace("</body>", injected)).unwrap();
    let Some(seen) = inspect(&with_policy, &screenshot_dir("tampered"), "", 2200) else {
        return;
    };
    let console = seen["console"].to_string();
    assert!(console.contains("Content Security Policy"), "{console}");
    assert!(!console.contains("\"injected\""), "{console}");
    let start = html
        .find("<meta http-equiv=\"Content-Security-Policy\"")
        .unwrap();
    let end = start + html[start..].find('>').unwrap() + 1;
    let mut open = html.clone();
    open.replace_range(start..end, "");
    let without_policy = dir.path().join("tampered-open.html");
    std::fs::write(&without_policy, open.replace("</body>", injected)).unwrap();
    let seen = inspect(&without_policy, &screenshot_dir("tampered_open"), "", 2200).unwrap();
    // Once per tab: the inspector opens the page with and without scripts.
    let requests = seen["requests"].as_array().unwrap();
    assert!(!requests.is_empty());
    assert!(
        requests.iter().all(|u| u == "http://127.0.0.1:9/pixel.png"),
        "{requests:?}"
    );
    assert!(seen["console"].to_string().contains("injected"));
}

/// A profile file of `features` features (60 % numeric, 30 % strings, 10 % booleans) of
/// 1,000 rows; every tenth feature moved in the current side.
fn wide_profile(path: &Path, features: usize, seed: u64, moved: bool) {
    use driftd::profile::{Limits, Profiler, Stage, Value as V, file};
    let mut rng = StdRng::seed_from_u64(seed);
    let stage = if moved { Stage::Online } else { Stage::Offline };
    let mut p = Profiler::new("wide", stage, Limits::default());
    let names: Vec<String> = (0..features).map(|i| format!("feature_{i:04}")).collect();
    let slots: Vec<usize> = names.iter().map(|n| p.feature(n, None).unwrap()).collect();
    let categories: Vec<String> = (0..30).map(|i| format!("category-{i}")).collect();
    let normal = Normal::new(0.0, 1.0).unwrap();
    for _ in 0..1000 {
        for (i, &slot) in slots.iter().enumerate() {
            let shift = if moved && i % 10 == 0 { 1.0 } else { 0.0 };
            match i % 10 {
                0..6 => p.observe(slot, V::Number(normal.sample(&mut rng) + shift)),
                6..9 => {
                    let k = (rng.random::<f64>().powf(2.0 - shift) * 30.0) as usize;
                    p.observe(slot, V::Str(&categories[k.min(29)]));
                }
                _ => p.observe(slot, V::Bool(rng.random::<f64>() < 0.4 + 0.2 * shift)),
            }
        }
        p.add_rows(1);
    }
    std::fs::write(path, file::encode(&p.finish().0)).unwrap();
}

#[test]
fn a_thousand_features_stay_small_and_open_in_chromium() {
    let dir = TempDir::new().unwrap();
    let (reference, current) = (
        dir.path().join("ref.driftprof"),
        dir.path().join("cur.driftprof"),
    );
    wide_profile(&reference, 1000, 1, false);
    wide_profile(&current, 1000, 2, true);
    let (r, c) = (reference.to_str().unwrap(), current.to_str().unwrap());
    let (page, said) = report(&dir, r, c);
    let drifted = drifted(r, c);
    assert!(
        said.contains(&format!("{} of 1000 features drifted", drifted.len())),
        "{said}"
    );
    assert!(drifted.len() >= 50, "{}", drifted.len());
    let bytes = std::fs::metadata(&page).unwrap().len();
    let mut figures = format!("1000 features: {bytes} bytes");
    // The budget: a few hundred KB plus about 2 KB per feature.
    assert!(bytes < 200 * 1024 + 1000 * 2048, "{figures}");
    if let Some(seen) = inspect(
        &page,
        &screenshot_dir("thousand_features"),
        "feature_000",
        2200,
    ) {
        assert_renders_cleanly(&seen, 1000, &drifted);
        assert_eq!(seen["interaction"]["filter_cards"], 10);
        let _ = write!(figures, ", {}", seen["timing"]);
    }
    println!("{figures}");
}
