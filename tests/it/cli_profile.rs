//! `driftd profile` through the binary: formats, the JSON document, the table, the profile
//! file, and bad input.

use std::io::Write;

use serde_json::Value as Json;
use tempfile::TempDir;

use crate::helpers::{Column, driftd, sample, stderr, stdout_json, write_parquet};

fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> String {
    let path = dir.path().join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn json_document_has_the_documented_shape_and_exact_figures() {
    let out = driftd(&["profile", &sample(), "--json"]);
    let doc = stdout_json(&out);
    assert_eq!(doc["dataset"], "search_ranking_inputs");
    assert_eq!(doc["stage"], "offline");
    assert_eq!(doc["rows"], 1000);

    // Reference figures straight from the CSV.
    let mut reader = csv::Reader::from_path(sample()).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let latency: Vec<f64> = rows.iter().map(|r| r[1].parse().unwrap()).collect();
    let mean = latency.iter().sum::<f64>() / latency.len() as f64;
    let sd = (latency.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (latency.len() - 1) as f64)
        .sqrt();

    let lat = &doc["features"]["latency_ms"];
    assert_eq!(lat["kind"], "numeric");
    assert_eq!(lat["count"], 1000);
    assert_eq!(lat["nulls"], 0);
    let num = &lat["numeric"];
    let min = latency.iter().copied().fold(f64::INFINITY, f64::min);
    let max = latency.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(num["min"].as_f64().unwrap(), min);
    assert_eq!(num["max"].as_f64().unwrap(), max);
    assert!((num["mean"].as_f64().unwrap() - mean).abs() < 1e-9 * mean);
    assert!((num["stddev"].as_f64().unwrap() - sd).abs() < 1e-9 * sd);
    let quantiles = num["quantiles"].as_object().unwrap();
    let keys: Vec<&str> = quantiles.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["0.01", "0.05", "0.25", "0.5", "0.75", "0.95", "0.99"]
    );
    // Quantiles are values of the data, within the sketch's rank error of their rank.
    let mut sorted = latency.clone();
    sorted.sort_by(f64::total_cmp);
    let eps = num["rank_error"].as_f64().unwrap();
    assert!(eps > 0.0 && eps < 0.01);
    for (q, v) in quantiles {
        let (q, v) = (q.parse::<f64>().unwrap(), v.as_f64().unwrap());
        assert!(sorted.contains(&v));
        let below = sorted.partition_point(|x| *x < v) as f64 / 1000.0;
        let at_or_below = sorted.partition_point(|x| *x <= v) as f64 / 1000.0;
        assert!(
            below - eps <= q && q <= at_or_below + eps,
            "quantile {q}: ranks {below}..{at_or_below}"
        );
    }

    let age = &doc["features"]["user_age"];
    let nulls = rows.iter().filter(|r| r[5].is_empty()).count() as u64;
    let na = rows.iter().filter(|r| &r[5] == "N/A").count() as u64;
    assert!(na > 0);
    assert_eq!(age["kind"], "numeric");
    assert_eq!(age["nulls"], nulls);
    assert_eq!(age["count"], 1000 - nulls);
    assert_eq!(
        age["types"]["string"], na,
        "minority text values are counted, not dropped"
    );
    assert_eq!(age["top"][0]["value"], "N/A");

    let country = &doc["features"]["country"];
    assert_eq!(country["kind"], "string");
    let us = rows.iter().filter(|r| &r[2] == "US").count() as u64;
    assert_eq!(
        country["top"][0],
        serde_json::json!({"value": "US", "count": us})
    );
    let distinct = country["distinct"].as_u64().unwrap();
    assert_eq!(distinct, 10);
    assert!(
        country["top"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["value"] == "日本")
    );

    let mobile = &doc["features"]["is_mobile"];
    assert_eq!(mobile["kind"], "boolean");
    let trues = rows.iter().filter(|r| &r[3] == "true").count() as u64;
    assert!(
        mobile["top"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"value": true, "count": trues}))
    );
}

#[test]
fn table_fits_a_100_column_terminal() {
    let out = driftd(&["profile", &sample(), "--width", "100"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("dataset search_ranking_inputs (offline) · 1,000 rows · 6 features"));
    for name in ["latency_ms", "country", "is_mobile", "user_age"] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    assert!(text.contains("note: user_age:"), "{text}");
    for line in text.lines() {
        assert!(
            unicode_width::UnicodeWidthStr::width(line) <= 100,
            "too wide: {line}"
        );
    }
}

#[test]
fn columns_cut_the_profile_table_and_a_pipe_gets_it_whole() {
    let run = |columns: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_driftd"));
        cmd.args(["profile", &sample()]).env_remove("COLUMNS");
        if let Some(columns) = columns {
            cmd.env("COLUMNS", columns);
        }
        String::from_utf8(cmd.output().unwrap().stdout).unwrap()
    };
    let whole = run(None);
    assert!(
        whole.contains(
            "country     string   1,000     0%        10  US 34% · FR 12% · DE 12% · GB 10%\n"
        ),
        "{whole}"
    );
    let cut = run(Some("40"));
    assert!(
        cut.starts_with("dataset search_ranking_inputs (offline)…\n"),
        "{cut}"
    );
    assert!(
        cut.contains("\ncountry     string   1,000     0%      …\n"),
        "{cut}"
    );
    for line in cut.lines() {
        assert!(
            unicode_width::UnicodeWidthStr::width(line) <= 40,
            "too wide: {line}"
        );
    }
}

#[test]
fn parquet_csv_and_jsonl_agree() {
    let dir = TempDir::new().unwrap();
    let n = 5000;
    let xs: Vec<Option<f64>> = (0..n)
        .map(|i| (i % 17 != 0).then_some(i as f64 * 0.25))
        .collect();
    let ks: Vec<Option<i64>> = (0..n).map(|i| Some(i as i64 % 9)).collect();
    let cs: Vec<Option<String>> = (0..n)
        .map(|i| (i % 23 != 0).then(|| format!("c{}", i % 40)))
        .collect();
    let bs: Vec<Option<bool>> = (0..n).map(|i| (i % 5 != 0).then_some(i % 3 == 0)).collect();
    let parquet = dir.path().join("d.parquet");
    write_parquet(
        &parquet,
        vec![
            ("x", Column::F64(xs.clone())),
            ("k", Column::I64(ks.clone())),
            ("c", Column::Str(cs.clone())),
            ("b", Column::Bool(bs.clone())),
        ],
        1024,
    );
    let mut csv_text = String::from("x,k,c,b\n");
    let mut jsonl = String::new();
    for i in 0..n {
        let x = xs[i].map(|v| v.to_string()).unwrap_or_default();
        let c = cs[i].clone().unwrap_or_default();
        let b = bs[i].map(|v| v.to_string()).unwrap_or_default();
        csv_text.push_str(&format!("{x},{},{c},{b}\n", ks[i].unwrap()));
        let mut obj = serde_json::Map::new();
        obj.insert("x".into(), xs[i].into());
        obj.insert("k".into(), ks[i].into());
        if let Some(c) = &cs[i] {
            obj.insert("c".into(), c.clone().into()); // absent key: a null too
        }
        obj.insert("b".into(), bs[i].into());
        jsonl.push_str(&Json::Object(obj).to_string());
        jsonl.push('\n');
    }
    let csv_path = write(&dir, "d.csv", csv_text.as_bytes());
    let jsonl_path = write(&dir, "d.ndjson", jsonl.as_bytes());
    let docs: Vec<Json> = [parquet.to_str().unwrap(), &csv_path, &jsonl_path]
        .iter()
        .map(|p| stdout_json(&driftd(&["profile", p, "--json", "--dataset", "d"])))
        .collect();
    for doc in &docs {
        assert_eq!(doc["rows"], n);
        assert_eq!(
            doc["features"]["x"]["nulls"],
            (0..n).filter(|i| i % 17 == 0).count()
        );
        assert_eq!(
            doc["features"]["c"]["nulls"],
            (0..n).filter(|i| i % 23 == 0).count()
        );
        assert_eq!(doc["features"]["b"]["kind"], "boolean");
        assert_eq!(doc["features"]["k"]["distinct"], 9);
        assert_eq!(doc["features"]["c"]["distinct"], 40);
    }
    for key in ["x", "k", "c", "b"] {
        let strip = |d: &Json| {
            let mut f = d["features"][key].clone();
            // Quantiles come from a randomised sketch, and Parquet merges moments per row group
            // where text is read in one pass (last-bit rounding): compared apart below.
            if let Some(num) = f.get_mut("numeric") {
                num.as_object_mut().unwrap().remove("quantiles");
            }
            let moments = [("numeric", None), ("string", Some("length"))];
            for (section, sub) in moments {
                let Some(mut obj) = f.get_mut(section) else {
                    continue;
                };
                if let Some(sub) = sub {
                    obj = obj.get_mut(sub).unwrap();
                }
                let obj = obj.as_object_mut().unwrap();
                for m in ["mean", "stddev"] {
                    let v = obj.remove(m).unwrap().as_f64().unwrap();
                    obj.insert(m.into(), format!("{v:.9e}").into());
                }
            }
            f
        };
        assert_eq!(strip(&docs[0]), strip(&docs[1]), "{key}: parquet vs csv");
        assert_eq!(strip(&docs[0]), strip(&docs[2]), "{key}: parquet vs jsonl");
    }
}

#[test]
fn out_writes_a_profile_file_that_profile_and_labels_read_back() {
    let dir = TempDir::new().unwrap();
    let out_path = dir.path().join("inputs.driftprof");
    let out = driftd(&[
        "profile",
        &sample(),
        "--json",
        "--stage",
        "online",
        "--dataset",
        "search",
        "--label",
        "model_version=v3",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    let direct = stdout_json(&out);
    assert_eq!(direct["stage"], "online");
    let again = stdout_json(&driftd(&["profile", out_path.to_str().unwrap(), "--json"]));
    assert_eq!(direct["features"], again["features"]);
    assert_eq!(again["labels"]["model_version"], "v3");
    assert_eq!(again["dataset"], "search");
    let size = std::fs::metadata(&out_path).unwrap().len();
    assert!(
        size < 64 * 1024,
        "profile file of 1,000 rows is {size} bytes"
    );
}

#[test]
fn bad_rows_are_counted_and_named_and_good_rows_kept() {
    let dir = TempDir::new().unwrap();
    let mut csv_bytes = b"a,b,c\n1,x,2\n3,y\n4,z,5\n".to_vec();
    csv_bytes.extend_from_slice(b"6,\xff\xfe,7\n8,w,9\n");
    let path = write(&dir, "ragged.csv", &csv_bytes);
    let out = driftd(&["profile", &path]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("2 rows rejected"), "{err}");
    assert!(
        err.contains("ragged.csv: line 3: expected 3 fields, found 2"),
        "{err}"
    );
    assert!(
        err.contains("ragged.csv: line 5, column \"b\": invalid UTF-8 after byte 0"),
        "{err}"
    );
    let doc = stdout_json(&driftd(&["profile", &path, "--json"]));
    assert_eq!(doc["rows"], 3);
    assert_eq!(doc["rejected_rows"], 2);
    assert_eq!(doc["features"]["a"]["numeric"]["max"], 8.0);
    assert_eq!(doc["problems"].as_array().unwrap().len(), 2);

    let jsonl = write(
        &dir,
        "mixed.jsonl",
        b"{\"a\": 1}\n[1,2]\n\n{\"a\": \n\"text\"\n{\"a\": 2, \"b\": {\"n\": 1}}\n",
    );
    let doc = stdout_json(&driftd(&["profile", &jsonl, "--json"]));
    assert_eq!(doc["rows"], 2);
    assert_eq!(doc["rejected_rows"], 3);
    let problems: Vec<&str> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        problems
            .iter()
            .any(|p| p.ends_with("mixed.jsonl: line 2: expected a JSON object, found an array")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("mixed.jsonl: line 4, column ")
                && p.contains("invalid JSON: EOF while parsing")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.ends_with("line 5: expected a JSON object, found a string")),
        "{problems:?}"
    );
    assert_eq!(
        doc["features"]["b"]["types"]["other"], 1,
        "nested values are counted"
    );
    assert_eq!(
        doc["features"]["b"]["nulls"], 1,
        "a record without the key is a null"
    );
}

fn write_dir(dir: &TempDir, name: &str) -> String {
    let path = dir.path().join(name);
    std::fs::create_dir(&path).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn unreadable_inputs_exit_2_with_a_message_naming_the_file() {
    let dir = TempDir::new().unwrap();
    let cases: Vec<(String, &str)> = vec![
        (
            dir.path().join("missing.csv").to_str().unwrap().to_owned(),
            "missing.csv: cannot open: No such file or directory",
        ),
        (
            write(&dir, "data.xlsx", b"x"),
            "data.xlsx: unknown file format (.xlsx); driftd reads .csv, .jsonl, .ndjson, .json (JSON Lines) or .parquet",
        ),
        (
            write(&dir, "all_bad.jsonl", b"[1]\n2\n"),
            "all_bad.jsonl: no record could be read (2 rejected); first problem:",
        ),
        (
            write(&dir, "array.json", b"[{\"a\": 1},\n {\"a\": 2}]\n"),
            "(driftd reads JSON Lines: one JSON object per line)",
        ),
        (
            write(&dir, "not.parquet", b"PAR1 this is not parquet"),
            "not.parquet: not a readable Parquet file:",
        ),
        (
            dir.path().to_str().unwrap().to_owned() + "/",
            "/: is a directory; give a .csv, .jsonl, .ndjson, .json (JSON Lines) or .parquet file\n",
        ),
        (
            write_dir(&dir, "batch.csv"),
            "batch.csv: is a directory; give a .csv, .jsonl, .ndjson, .json (JSON Lines) or .parquet file\n",
        ),
    ];
    for (path, expected) in cases {
        let out = driftd(&["profile", &path]);
        assert_eq!(out.status.code(), Some(2), "{path}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.starts_with("driftd: error: "), "{err}");
        assert!(
            err.contains(expected),
            "{path}: expected {expected:?} in {err:?}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn truncated_parquet_is_refused_and_corrupt_row_groups_are_skipped() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("full.parquet");
    let n = 40_000;
    let xs: Vec<Option<f64>> = (0..n).map(|i| Some(((i * 7919) % 10007) as f64)).collect();
    write_parquet(&path, vec![("x", Column::F64(xs))], 10_000);
    let bytes = std::fs::read(&path).unwrap();

    let cut = write(&dir, "cut.parquet", &bytes[..bytes.len() / 2]);
    let out = driftd(&["profile", &cut]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cut.parquet: not a readable Parquet file"),
        "{}",
        stderr(&out)
    );

    // Damage the first row group's first page header: that group is refused, the rest read.
    let mut damaged = bytes.clone();
    damaged[4..40].fill(0xff);
    let bad = write(&dir, "damaged.parquet", &damaged);
    let out = driftd(&["profile", &bad, "--json"]);
    let doc = stdout_json(&out);
    assert_eq!(doc["rows"], 30_000);
    assert_eq!(doc["rejected_rows"], 10_000);
    let problem = doc["problems"][0].as_str().unwrap();
    assert!(
        problem.contains("damaged.parquet: row group 0 (rows 1..=10000): unreadable:"),
        "{problem}"
    );
}

#[test]
fn corrupt_and_unknown_profile_files_exit_2() {
    let dir = TempDir::new().unwrap();
    let good = dir.path().join("p.driftprof");
    assert!(
        driftd(&["profile", &sample(), "--out", good.to_str().unwrap()])
            .status
            .success()
    );
    let bytes = std::fs::read(&good).unwrap();
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    let mut newer = bytes.clone();
    newer[8] = 99;
    for (name, data, expected) in [
        (
            "flipped.driftprof",
            flipped,
            "corrupt profile file: checksum mismatch",
        ),
        (
            "cut.driftprof",
            bytes[..bytes.len() - 10].to_vec(),
            "truncated profile file",
        ),
        (
            "newer.driftprof",
            newer,
            "profile file format version 99 is not supported",
        ),
    ] {
        let path = write(&dir, name, &data);
        let out = driftd(&["profile", &path]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = stderr(&out);
        assert!(
            err.contains(name) && err.contains(expected),
            "{name}: {err}"
        );
    }
}

#[test]
fn a_flood_of_feature_names_is_capped_not_absorbed() {
    let dir = TempDir::new().unwrap();
    let mut text = String::new();
    for i in 0..20_000 {
        text.push_str(&format!("{{\"f{i}\": {i}, \"g{i}\": \"v\"}}\n"));
    }
    let path = write(&dir, "flood.jsonl", text.as_bytes());
    let out = driftd(&["profile", &path, "--json", "--max-features", "100"]);
    let doc = stdout_json(&out);
    assert_eq!(doc["rows"], 20_000);
    assert_eq!(doc["features"].as_object().unwrap().len(), 100);
    let problems = doc["problems"].as_array().unwrap();
    assert!(
        problems[0]
            .as_str()
            .unwrap()
            .contains("feature limit reached (100 features per dataset)")
    );
    assert!(
        problems
            .last()
            .unwrap()
            .as_str()
            .unwrap()
            .starts_with("… and ")
    );
}

#[test]
fn hostile_unicode_is_data() {
    let dir = TempDir::new().unwrap();
    let text = "\u{feff}name,\"evil\u{1b}[2J\u{202e}col\",emoji🙂\n\
                \"Zoë\",\"\u{0}nul\",🙂🙂\n\
                \"𝔘𝔫𝔦𝔠𝔬𝔡𝔢\",\"a\u{301}\",\"\"\n";
    let path = write(&dir, "unicode.csv", text.as_bytes());
    let doc = stdout_json(&driftd(&["profile", &path, "--json"]));
    let features = doc["features"].as_object().unwrap();
    assert!(
        features.contains_key("name"),
        "BOM is not part of the first name: {:?}",
        features.keys()
    );
    assert!(features.contains_key("evil\u{1b}[2J\u{202e}col"));
    assert_eq!(
        features["emoji🙂"]["string"]["length"]["max"], 2,
        "lengths count characters"
    );
    assert_eq!(features["emoji🙂"]["nulls"], 1);
    let out = driftd(&["profile", &path]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        !table.contains('\u{1b}') && !table.contains('\u{202e}'),
        "control characters reach the terminal: {table:?}"
    );
    assert!(table.contains("evil\\u{1b}[2J"), "{table}");
}

/// Column shares are read by parallel workers; each needs its own file handle (clones share a
/// seek position). Many columns, pages and row groups make any sharing show up as corruption.
#[test]
fn parallel_parquet_workers_read_every_value() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("wide.parquet");
    let n = 300_000usize;
    let columns: Vec<(String, Column)> = (0..8)
        .map(|c| {
            let name = format!("c{c}");
            let col = if c % 2 == 0 {
                Column::F64((0..n).map(|i| Some((i * (c + 1)) as f64)).collect())
            } else {
                Column::Str(
                    (0..n)
                        .map(|i| Some(format!("v{}", (i * 7 + c) % 50)))
                        .collect(),
                )
            };
            (name, col)
        })
        .collect();
    write_parquet(
        &path,
        columns
            .into_iter()
            .map(|(n, c)| (Box::leak(n.into_boxed_str()) as &str, c))
            .collect(),
        100_000,
    );
    let doc = stdout_json(&driftd(&["profile", path.to_str().unwrap(), "--json"]));
    assert_eq!(doc["rows"], n);
    assert_eq!(doc["rejected_rows"], 0, "{:?}", doc["problems"]);
    for c in (0..8).step_by(2) {
        let f = &doc["features"][format!("c{c}")]["numeric"];
        assert_eq!(f["max"].as_f64().unwrap(), ((n - 1) * (c + 1)) as f64);
        let mean = (n - 1) as f64 / 2.0 * (c + 1) as f64;
        assert!((f["mean"].as_f64().unwrap() - mean).abs() < 1e-6 * mean);
    }
    for c in (1..8).step_by(2) {
        let f = &doc["features"][format!("c{c}")];
        assert_eq!(f["distinct"], 50);
        assert_eq!(f["top"][0]["count"], 6000);
    }
}
