//! `driftd compare` and `driftd rules check` through the binary.

use std::fmt::Write as _;

use tempfile::TempDir;
use unicode_width::UnicodeWidthStr;

use crate::helpers::{driftd, stderr};

/// Writes reference and current CSVs: `a_same` unchanged, `b_shift` moved by one σ, `c_mix`
/// with another category mix, `d_nan` gaining NaN.
fn write_pair(dir: &TempDir) -> (String, String) {
    use rand::{Rng, SeedableRng, rngs::StdRng};
    use rand_distr::{Distribution, Normal};
    let mut rng = StdRng::seed_from_u64(5);
    let normal = Normal::new(0.0, 1.0).unwrap();
    let mut files = Vec::new();
    for (name, shift, weights) in [("train", 0.0, [0.6, 0.3]), ("serve", 1.0, [0.2, 0.3])] {
        let mut text = String::from("a_same,b_shift,c_mix,d_nan\n");
        for i in 0..5000 {
            let u: f64 = rng.random();
            let cat = if u < weights[0] {
                "x"
            } else if u < weights[0] + weights[1] {
                "y"
            } else {
                "z"
            };
            let d = if shift > 0.0 && i % 500 == 0 {
                "NaN".to_owned()
            } else {
                normal.sample(&mut rng).to_string()
            };
            writeln!(
                text,
                "{},{},{cat},{d}",
                normal.sample(&mut rng),
                normal.sample(&mut rng) + shift
            )
            .unwrap();
        }
        let path = dir.path().join(format!("{name}.csv"));
        std::fs::write(&path, text).unwrap();
        files.push(path.to_str().unwrap().to_owned());
    }
    (files[0].clone(), files[1].clone())
}

#[test]
fn drift_exits_1_with_the_documented_json() {
    let dir = TempDir::new().unwrap();
    let (train, serve) = write_pair(&dir);
    let out = driftd(&["compare", &train, &serve, "--json", "--dataset", "inputs"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["drifted"], serde_json::json!(["b_shift", "c_mix"]));
    let b = &doc["features"]["b_shift"];
    assert_eq!(b["kind"], "numeric");
    assert_eq!(b["drift"], true);
    assert_eq!(b["method"], "psi");
    assert_eq!(b["threshold"], 0.2);
    assert!(b["score"].as_f64().unwrap() > 0.5);
    for key in ["psi", "ks", "ks_p_value", "wasserstein", "js_distance"] {
        assert!(b["statistics"][key].is_number(), "{key} missing: {b}");
    }
    assert!(b["reason"].as_str().unwrap().starts_with("PSI "));
    let c = &doc["features"]["c_mix"];
    assert_eq!(c["kind"], "string");
    assert_eq!(c["method"], "js_distance");
    for key in ["psi", "js_distance", "chi2", "chi2_p_value", "linf"] {
        assert!(c["statistics"][key].is_number(), "{key} missing: {c}");
    }
    assert_eq!(doc["features"]["a_same"]["drift"], false);
    let schema = doc["schema"].as_array().unwrap();
    let nan = schema
        .iter()
        .find(|f| f["check"] == "non_finite_appeared")
        .expect("NaN finding");
    assert_eq!(nan["feature"], "d_nan");
    assert_eq!(nan["severity"], "error");
    assert_eq!(doc["reference"]["dataset"], "inputs");
    assert_eq!(doc["current"]["rows"], 5000);
}

#[test]
fn no_drift_exits_0_and_profile_files_compare_like_data() {
    let dir = TempDir::new().unwrap();
    let (train, _) = write_pair(&dir);
    let prof = dir.path().join("train.driftprof");
    assert!(
        driftd(&["profile", &train, "--out", prof.to_str().unwrap()])
            .status
            .success()
    );
    let out = driftd(&["compare", prof.to_str().unwrap(), &train]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("0 of 4 features drifted · 0 invariant errors"),
        "{text}"
    );
}

#[test]
fn the_table_puts_drift_first_with_reasons_in_words_within_100_columns() {
    let dir = TempDir::new().unwrap();
    let (train, serve) = write_pair(&dir);
    let out = driftd(&["compare", &train, &serve, "--width", "100"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("feature"))
        .skip(1)
        .take(4)
        .collect();
    assert!(
        rows[0].starts_with("b_shift")
            && rows[0].contains("DRIFT")
            && rows[0].contains("PSI ")
            && rows[0].contains(" ≥ 0.2"),
        "{text}"
    );
    assert!(
        rows[1].starts_with("c_mix") && rows[1].contains("JS distance "),
        "{text}"
    );
    assert!(rows[2].contains("ok") && rows[3].contains("ok"), "{text}");
    assert!(
        text.contains("error    d_nan has non-finite values the reference never had: 10 NaN"),
        "{text}"
    );
    for line in text.lines() {
        assert!(line.width() <= 100, "too wide ({}): {line}", line.width());
    }
}

#[test]
fn errors_exit_2_and_rule_problems_are_listed() {
    let dir = TempDir::new().unwrap();
    let (train, serve) = write_pair(&dir);
    let out = driftd(&["compare", &train, "/nonexistent/serve.csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "driftd: error: current /nonexistent/serve.csv: cannot open: No such file or directory (os error 2)\n"
    );

    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("bad.yaml"),
        "dataset: d\nfeatures:\n  x: {methd: psi}\n  y: {threshold: nope}\n",
    )
    .unwrap();
    let out = driftd(&[
        "compare",
        &train,
        &serve,
        "--rules",
        rules.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("invalid rules:") && err.contains("bad.yaml:3:"),
        "{err}"
    );

    let out = driftd(&["rules", "check", rules.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("bad.yaml:3:"), "{}", stderr(&out));
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/rules");
    let out = driftd(&["rules", "check", shipped]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 rule files valid"));
}

/// `driftd compare` with a given environment, stdout a pipe.
fn compare_with(args: &[&str], columns: Option<&str>) -> String {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_driftd"));
    cmd.arg("compare").args(args).env_remove("COLUMNS");
    if let Some(columns) = columns {
        cmd.env("COLUMNS", columns);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.code().is_some_and(|c| c < 2), "{}", stderr(&out));
    String::from_utf8(out.stdout).expect("lines are never cut inside a character")
}

/// COLUMNS or --width cut lines to a width (by display width, never inside a character);
/// a pipe without either gets whole lines.
#[test]
fn lines_fit_the_width_asked_for_and_pipes_get_them_whole() {
    let dir = TempDir::new().unwrap();
    let (train, serve) = write_pair(&dir);
    // A wide name and wide values: each 語 takes two columns.
    let wide = "語".repeat(20);
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    let mut text_a = format!("{wide},n\n");
    let mut text_b = text_a.clone();
    for i in 0..400 {
        writeln!(text_a, "x{},{i}", i % 3).unwrap();
        writeln!(text_b, "{wide}{},{}", i % 7, i * 3).unwrap();
    }
    std::fs::write(&a, text_a).unwrap();
    std::fs::write(&b, text_b).unwrap();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    for pair in [[train.as_str(), serve.as_str()], [a, b]] {
        let whole = compare_with(&pair, None);
        let again = compare_with(&pair, None);
        let widest = whole.lines().map(UnicodeWidthStr::width).max().unwrap();
        assert!(
            widest > 60,
            "whole lines in a pipe, some wider than 60:\n{whole}"
        );
        // (A long name is shortened in its column, wherever it is printed; lines are not cut.)
        assert!(
            !whole.lines().any(|l| l.ends_with('…')),
            "nothing cut in a pipe:\n{whole}"
        );
        let zero = compare_with(&[pair[0], pair[1], "--width", "0"], Some("60"));
        assert!(!zero.lines().any(|l| l.ends_with('…')), "{zero}");
        assert_eq!(zero.lines().count(), whole.lines().count());
        if pair[0] == a {
            assert_eq!(whole, again, "the small pair prints the same every run");
            assert_eq!(zero, whole);
        }
        for cut in [
            compare_with(&pair, Some("60")),
            compare_with(&[pair[0], pair[1], "--width", "60"], None),
            compare_with(&[pair[0], pair[1], "--width", "60"], Some("200")),
        ] {
            for line in cut.lines() {
                assert!(line.width() <= 60, "too wide ({}): {line}", line.width());
            }
            assert!(cut.lines().any(|l| l.ends_with('…')), "{cut}");
            // Cut, not rewrapped: the same lines, each a prefix of the whole one (for the
            // small pair, whose sketches are exact and so its scores the same every run).
            assert_eq!(cut.lines().count(), whole.lines().count());
            if pair[0] == a {
                for (cut, whole) in cut.lines().zip(whole.lines()) {
                    assert!(
                        whole.starts_with(cut.trim_end_matches('…')),
                        "{cut:?} / {whole:?}"
                    );
                }
            }
        }
    }
    // The skew table too.
    let join = ["--join-on", "a_same"];
    let whole = compare_with(&[&train, &serve, join[0], join[1]], None);
    assert!(whole.contains("skew on id \"a_same\""), "{whole}");
    let cut = compare_with(&[&train, &serve, join[0], join[1]], Some("50"));
    assert!(cut.lines().all(|l| l.width() <= 50), "{cut}");
    assert_eq!(cut.lines().count(), whole.lines().count());
}

/// Counts of one read in the singular: "1 row", "1 feature", "1 category … makes up".
#[test]
fn counts_of_one_are_singular() {
    let dir = TempDir::new().unwrap();
    let train = dir.path().join("one.csv");
    let serve = dir.path().join("two.csv");
    std::fs::write(&train, "c\nx\n").unwrap();
    std::fs::write(&serve, "c\ny\n").unwrap();
    let out = driftd(&["compare", train.to_str().unwrap(), serve.to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(
            "reference  one (offline, 1 row)\ncurrent    two (online, 1 row)\n\
             0 of 1 feature drifted · 0 invariant errors, 1 warning\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "warning  c: 1 category not in the reference makes up 100.0% of values (e.g. \"y\")\n"
        ),
        "{text}"
    );

    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("one.yaml"),
        "dataset: d\nfeatures:\n  x: {ignore: true}\n",
    )
    .unwrap();
    let out = driftd(&["rules", "check", rules.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{}: 1 rule file valid; datasets: d\n", rules.display())
    );
    std::fs::write(
        rules.join("one.yaml"),
        "dataset: d\nfeatures:\n  x: {methd: psi}\n",
    )
    .unwrap();
    let out = driftd(&["rules", "check", rules.to_str().unwrap()]);
    assert!(
        stderr(&out).ends_with("\ndriftd: 1 problem in rule files\n"),
        "{}",
        stderr(&out)
    );
}

/// Each side's role and file are named once, whichever command loads them.
#[test]
fn a_missing_or_directory_side_is_named_once_with_its_role() {
    let dir = TempDir::new().unwrap();
    let (train, serve) = write_pair(&dir);
    let folder = dir.path().join("batch");
    std::fs::create_dir(&folder).unwrap();
    let folder = folder.to_str().unwrap();
    let missing = dir.path().join("nosuch.csv");
    let missing = missing.to_str().unwrap();
    let html = dir.path().join("page.html");
    let cases: [(Vec<&str>, String); 5] = [
        (
            vec!["compare", missing, &serve],
            format!("reference {missing}: cannot open: No such file or directory (os error 2)"),
        ),
        (
            vec!["compare", &train, folder],
            format!(
                "current {folder}: is a directory; give a .csv, .jsonl, .ndjson, .json (JSON Lines) or .parquet file"
            ),
        ),
        (
            vec!["compare", missing, &serve, "--join-on", "a_same"],
            format!("reference {missing}: cannot open: No such file or directory (os error 2)"),
        ),
        (
            vec!["compare", &train, folder, "--join-on", "a_same"],
            format!(
                "current {folder}: is a directory; give a .csv, .jsonl, .ndjson, .json (JSON Lines) or .parquet file"
            ),
        ),
        (
            vec!["report", &train, missing, "--out", html.to_str().unwrap()],
            format!("current {missing}: cannot open: No such file or directory (os error 2)"),
        ),
    ];
    for (args, expected) in cases {
        let out = driftd(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(
            stderr(&out),
            format!("driftd: error: {expected}\n"),
            "{args:?}"
        );
    }
}

/// A score just under its threshold prints with the digits that show it under: with two
/// decimals both would read the same ("JS distance 0.40 < 0.40").
#[test]
fn a_score_just_under_its_threshold_prints_as_under() {
    let dir = TempDir::new().unwrap();
    let (train, serve) = write_pair(&dir);
    let out = driftd(&["compare", &train, &serve, "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let score = doc["features"]["c_mix"]["score"].as_f64().unwrap();
    assert_eq!(doc["features"]["c_mix"]["method"], "js_distance");
    // The next thousandth up: two decimals print score and threshold alike.
    let threshold = (score * 1000.0).ceil() / 1000.0;
    assert!(threshold > score && format!("{score:.2}") == format!("{threshold:.2}"));
    let rules = dir.path().join("r.yaml");
    std::fs::write(
        &rules,
        format!("dataset: serve\nfeatures:\n  c_mix: {{threshold: {threshold}}}\n"),
    )
    .unwrap();
    let out = driftd(&[
        "compare",
        &train,
        &serve,
        "--rules",
        rules.to_str().unwrap(),
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().find(|l| l.starts_with("c_mix")).unwrap();
    // The fewest significant digits, at least 2, that tell the score from the threshold,
    // both rounded alike.
    let at = |x: f64, digits: i32| {
        let decimals = (digits - 1 - x.log10().floor() as i32).max(0) as usize;
        let s = format!("{x:.decimals$}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    };
    let (shown, shown_threshold) = (2..17)
        .map(|digits| (at(score, digits), at(threshold, digits)))
        .find(|(s, t)| s.parse::<f64>().unwrap() < t.parse::<f64>().unwrap())
        .unwrap();
    assert_ne!(shown, shown_threshold);
    let reason = format!("JS distance {shown} < {shown_threshold}");
    assert!(line.ends_with(&format!("ok     {reason}")), "{line}");
    assert!(
        line.contains(&format!("  {shown}  ok")),
        "score column as the reason: {line}"
    );
    let out = driftd(&[
        "compare",
        &train,
        &serve,
        "--rules",
        rules.to_str().unwrap(),
        "--json",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["features"]["c_mix"]["reason"], reason.as_str());
    assert_eq!(
        doc["features"]["c_mix"]["score"], score,
        "JSON scores unchanged"
    );
}

#[test]
fn rules_apply_per_dataset() {
    let dir = TempDir::new().unwrap();
    let (train, serve) = write_pair(&dir);
    let rules = dir.path().join("inputs.yaml");
    std::fs::write(&rules, "dataset: inputs\nfeatures:\n  b_shift: {ignore: true}\n  c_mix: {threshold: 0.9}\n  d_nan: {ignore: true}\n").unwrap();
    let out = driftd(&[
        "compare",
        &train,
        &serve,
        "--json",
        "--dataset",
        "inputs",
        "--rules",
        rules.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["drifted"], serde_json::json!([]));
    assert!(doc["features"].get("b_shift").is_none());
    assert_eq!(doc["features"]["c_mix"]["threshold"], 0.9);
}
