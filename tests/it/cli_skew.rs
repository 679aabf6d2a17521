//! `driftd compare --join-on` and `driftd profile --id-column` through the binary: training and
//! serving files joined on the id and compared value by value.

use std::fmt::Write as _;
use std::path::Path;

use tempfile::TempDir;

use crate::helpers::{Column, driftd, stderr, write_parquet};

const ROWS: usize = 1243;

/// Training rows: `a_same`, `b_ms` in milliseconds, `country`, `flag`.
fn training_csv(path: &Path) {
    let mut text = String::from("id,a_same,b_ms,country,flag\n");
    for i in 0..ROWS {
        writeln!(
            text,
            "u{i},{},{},{},{}",
            i as f64 * 0.37,
            (i + 10) as f64 * 1000.0,
            ["DE", "FR", "US"][i % 3],
            i % 2 == 0
        )
        .unwrap();
    }
    std::fs::write(path, text).unwrap();
}

/// Serving records for ids `from..to`, in a scrambled order: `a_same` with 1e-12 relative
/// noise, `b_ms` in seconds, `country` stale for 3 rows in 100.
fn serving_jsonl(path: &Path, from: usize, to: usize, duplicate: Option<usize>) {
    let mut order: Vec<usize> = (from..to).collect();
    order.sort_by_key(|i| (i * 7919) % 1009);
    if let Some(d) = duplicate {
        order.push(d);
    }
    let mut text = String::new();
    for i in order {
        let country = if i % 100 < 3 {
            "XX"
        } else {
            ["DE", "FR", "US"][i % 3]
        };
        let record = serde_json::json!({
            "id": format!("u{i}"),
            "a_same": i as f64 * 0.37 * (1.0 + 1e-12),
            "b_ms": (i + 10) as f64,
            "country": country,
            "flag": i % 2 == 0,
        });
        writeln!(text, "{record}").unwrap();
    }
    std::fs::write(path, text).unwrap();
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(out)))
}

#[test]
fn a_unit_change_and_stale_categories_are_found_and_nothing_else() {
    let dir = TempDir::new().unwrap();
    let (train, serve) = (dir.path().join("train.csv"), dir.path().join("serve.jsonl"));
    training_csv(&train);
    // Ids u20..u1272: 20 only in training, 30 only in serving.
    serving_jsonl(&serve, 20, ROWS + 30, None);
    let args = [train.to_str().unwrap(), serve.to_str().unwrap()];
    let out = driftd(&["compare", args[0], args[1], "--join-on", "id", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc = json(&out);
    // The drift report is still there, without the id column.
    assert!(doc["features"]["b_ms"]["drift"].as_bool().unwrap());
    assert!(doc["features"].get("id").is_none());
    let skew = &doc["skew"];
    assert_eq!(skew["id"], "id");
    assert_eq!(skew["joined"], 1223);
    assert_eq!(skew["reference_only"], 20);
    assert_eq!(skew["current_only"], 30);
    assert_eq!(
        skew["duplicate_ids"],
        serde_json::json!({"reference": 0, "current": 0})
    );
    assert_eq!(skew["skewed"], serde_json::json!(["b_ms", "country"]));
    let b = &skew["features"]["b_ms"];
    assert_eq!(b["compared"], 1223);
    assert_eq!(b["mismatched"], 1223);
    assert_eq!(b["mismatch_ratio"], 1.0);
    assert_eq!(
        b["verdict"],
        "b_ms differs in 100% of 1,223 joined examples; median ratio current/reference 0.001"
    );
    assert_eq!(b["differences"]["ratio"]["0.5"], 0.001);
    assert_eq!(b["examples"].as_array().unwrap().len(), 5);
    let e = &b["examples"][0];
    let i: f64 = e["id"].as_str().unwrap()[1..].parse().unwrap();
    assert_eq!(e["reference"], (i + 10.0) * 1000.0);
    assert_eq!(e["current"], i + 10.0);
    // Ids 20..1243 with i % 100 < 3: 3 per hundred from 100 on, none of 20..99.
    let stale = (20..ROWS).filter(|i| i % 100 < 3).count() as u64;
    let country = &skew["features"]["country"];
    assert_eq!(country["mismatched"], stale);
    assert_eq!(country["kind"], "string");
    for name in ["a_same", "flag"] {
        let f = &skew["features"][name];
        assert_eq!(f["mismatched"], 0, "{name}");
        assert_eq!(f["skewed"], false, "{name}");
    }

    // The table says the same.
    let out = driftd(&["compare", args[0], args[1], "--join-on", "id"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("skew on id \"id\": 1,223 joined · 20 reference only · 30 current only"),
        "{text}"
    );
    assert!(text.contains("2 of 4 features skewed"), "{text}");
    assert!(
        text.contains("b_ms differs in 100% of 1,223 joined examples"),
        "{text}"
    );
}

#[test]
fn agreeing_files_exit_0() {
    let dir = TempDir::new().unwrap();
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    training_csv(&a);
    // The same rows, bottom up.
    let text = std::fs::read_to_string(&a).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1..].reverse();
    std::fs::write(&b, lines.join("\n") + "\n").unwrap();
    let out = driftd(&[
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--join-on",
        "id",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let skew = &json(&out)["skew"];
    assert_eq!(skew["joined"], ROWS as u64);
    assert_eq!(skew["skewed"], serde_json::json!([]));
    assert_eq!(
        skew["features"]["b_ms"]["verdict"],
        "b_ms agrees in all 1,243 joined examples"
    );
}

#[test]
fn profile_files_carry_the_sample_and_join_like_the_data() {
    let dir = TempDir::new().unwrap();
    let (train, serve) = (dir.path().join("train.csv"), dir.path().join("serve.jsonl"));
    training_csv(&train);
    serving_jsonl(&serve, 0, ROWS, Some(7));
    let (tp, sp) = (dir.path().join("train.dpf"), dir.path().join("serve.dpf"));
    for (data, out) in [(&train, &tp), (&serve, &sp)] {
        let run = driftd(&[
            "profile",
            data.to_str().unwrap(),
            "--id-column",
            "id",
            "--out",
            out.to_str().unwrap(),
            "--json",
        ]);
        assert!(run.status.success(), "{}", stderr(&run));
        let doc = json(&run);
        assert_eq!(doc["sample"]["id_column"], "id");
        assert_eq!(doc["sample"]["capped"], false);
    }
    let files = driftd(&[
        "compare",
        tp.to_str().unwrap(),
        sp.to_str().unwrap(),
        "--join-on",
        "id",
        "--json",
    ]);
    let data = driftd(&[
        "compare",
        train.to_str().unwrap(),
        serve.to_str().unwrap(),
        "--join-on",
        "id",
        "--json",
    ]);
    assert_eq!(files.status.code(), Some(1), "{}", stderr(&files));
    let (files, data) = (json(&files), json(&data));
    assert_eq!(files["skew"], data["skew"]);
    // u7 arrived twice: left out of the join, counted.
    assert_eq!(files["skew"]["duplicate_ids"]["current"], 1);
    assert_eq!(files["skew"]["joined"], ROWS as u64 - 1);
    // A file with a sample still reads everywhere a profile file does.
    let plain = driftd(&[
        "compare",
        tp.to_str().unwrap(),
        sp.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(json(&plain)["drifted"], data["drifted"]);
    // A profile file without a sample cannot be joined, and says how to make one.
    let bare = dir.path().join("bare.dpf");
    let run = driftd(&[
        "profile",
        train.to_str().unwrap(),
        "--out",
        bare.to_str().unwrap(),
    ]);
    assert!(run.status.success());
    let out = driftd(&[
        "compare",
        bare.to_str().unwrap(),
        sp.to_str().unwrap(),
        "--join-on",
        "id",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains("has no sampled rows; write one with `driftd profile DATA --id-column id"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn capped_samples_keep_the_same_ids_on_both_sides() {
    let dir = TempDir::new().unwrap();
    let (train, serve) = (dir.path().join("train.csv"), dir.path().join("serve.jsonl"));
    training_csv(&train);
    serving_jsonl(&serve, 0, ROWS, None);
    let out = driftd(&[
        "compare",
        train.to_str().unwrap(),
        serve.to_str().unwrap(),
        "--join-on",
        "id",
        "--sample-rows",
        "300",
        "--json",
    ]);
    let skew = &json(&out)["skew"];
    // The same 1,243 ids on both sides: both keep the 300 smallest hashes.
    assert_eq!(skew["joined"], 300);
    assert_eq!(skew["reference_only"], 0);
    assert_eq!(skew["current_only"], 0);
    assert_eq!(skew["capped"], true);
    assert_eq!(skew["features"]["b_ms"]["mismatched"], 300);

    // A rate of 0.5 keeps the ids whose hash is below 2^63: about half.
    let out = driftd(&[
        "compare",
        train.to_str().unwrap(),
        serve.to_str().unwrap(),
        "--join-on",
        "id",
        "--sample-rate",
        "0.5",
        "--json",
    ]);
    let skew = &json(&out)["skew"];
    let want = (0..ROWS)
        .filter(|i| driftd::profile::id_hash(&format!("u{i}")) < 1 << 63)
        .count();
    assert_eq!(skew["joined"], want as u64);
    assert!((520..=720).contains(&want), "{want}");
}

#[test]
fn integer_ids_in_parquet_join_csv_ids() {
    let dir = TempDir::new().unwrap();
    let n = 500;
    let parquet = dir.path().join("train.parquet");
    write_parquet(
        &parquet,
        vec![
            (
                "id",
                Column::I64((0..n).map(|i| Some(i as i64 * 3)).collect()),
            ),
            ("x", Column::F64((0..n).map(|i| Some(i as f64)).collect())),
            (
                "s",
                Column::Str((0..n).map(|i| Some(format!("v{}", i % 5))).collect()),
            ),
            (
                "b",
                Column::Bool((0..n).map(|i| (i % 7 != 0).then_some(i % 2 == 0)).collect()),
            ),
        ],
        128,
    );
    let mut csv = String::from("id,x,s,b\n");
    for i in 0..n {
        let b = if i % 7 == 0 {
            String::new()
        } else {
            (i % 2 == 0).to_string()
        };
        let x = if i % 50 == 0 { -1.0 } else { i as f64 };
        writeln!(csv, "{},{x},v{},{b}", i * 3, i % 5).unwrap();
    }
    let serve = dir.path().join("serve.csv");
    std::fs::write(&serve, csv).unwrap();
    let out = driftd(&[
        "compare",
        parquet.to_str().unwrap(),
        serve.to_str().unwrap(),
        "--join-on",
        "id",
        "--json",
    ]);
    let skew = &json(&out)["skew"];
    assert_eq!(skew["joined"], n as u64);
    assert_eq!(skew["features"]["x"]["mismatched"], 10);
    assert_eq!(skew["features"]["s"]["mismatched"], 0);
    let b = &skew["features"]["b"];
    assert_eq!(
        (b["mismatched"].as_u64(), b["both_null"].as_u64()),
        (Some(0), Some(72))
    );
    // 10 of 500 is 2 %: skewed at the default 0.5 %.
    assert_eq!(skew["skewed"], serde_json::json!(["x"]));
}

#[test]
fn rule_files_set_thresholds_and_tolerances_per_feature() {
    let dir = TempDir::new().unwrap();
    let (train, serve) = (dir.path().join("train.csv"), dir.path().join("serve.jsonl"));
    training_csv(&train);
    serving_jsonl(&serve, 0, ROWS, None);
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "dataset: \"*\"\nskew:\n  threshold: 0.05\n  features:\n    b_ms: {ignore: true}\n    a_same: {tolerance: 0, absolute_tolerance: 0}\n",
    )
    .unwrap();
    let out = driftd(&[
        "compare",
        train.to_str().unwrap(),
        serve.to_str().unwrap(),
        "--join-on",
        "id",
        "--rules",
        rules.to_str().unwrap(),
        "--json",
    ]);
    let skew = &json(&out)["skew"];
    // country's 3 % is under a 5 % threshold; b_ms is not judged; a_same's noise counts.
    assert!(skew["features"].get("b_ms").is_none());
    assert_eq!(skew["features"]["country"]["skewed"], false);
    assert_eq!(skew["features"]["country"]["threshold"], 0.05);
    assert_eq!(skew["skewed"], serde_json::json!(["a_same"]));

    std::fs::write(
        &rules,
        "dataset: \"*\"\nskew:\n  threshold: 2\n  features:\n    x: {bogus: 1}\n",
    )
    .unwrap();
    let out = driftd(&["rules", "check", rules.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("bogus"), "{}", stderr(&out));
    std::fs::write(&rules, "dataset: \"*\"\nskew:\n  threshold: 2\n").unwrap();
    let out = driftd(&["rules", "check", rules.to_str().unwrap()]);
    assert!(
        stderr(&out).contains(
            "rules.yaml:3:3: skew: threshold must be between 0 (inclusive) and 1 (exclusive), got 2"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_missing_id_column_is_an_error_naming_it() {
    let dir = TempDir::new().unwrap();
    let (train, serve) = (dir.path().join("train.csv"), dir.path().join("serve.jsonl"));
    training_csv(&train);
    serving_jsonl(&serve, 0, 10, None);
    let out = driftd(&[
        "compare",
        train.to_str().unwrap(),
        serve.to_str().unwrap(),
        "--join-on",
        "request_id",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("train.csv: id column: the header has no column \"request_id\""),
        "{err}"
    );
    let out = driftd(&[
        "profile",
        serve.to_str().unwrap(),
        "--id-column",
        "request_id",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no record has a usable id in \"request_id\" (10 without one"),
        "{}",
        stderr(&out)
    );
}
