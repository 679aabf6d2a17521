use super::*;
use crate::profile::{SamplePolicy, Value};

/// A sample of rows `(id, [(feature, value)])` under `policy`.
fn sample_of(policy: SamplePolicy, rows: &[(String, Vec<(&str, Value<'_>)>)]) -> Sample {
    let mut s = Sample::new("id", policy);
    for (id, fields) in rows {
        s.offer(id, fields.iter().copied());
    }
    s
}

fn all() -> SamplePolicy {
    SamplePolicy::default()
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("req-{i}")).collect()
}

fn join_default(r: &Sample, c: &Sample) -> SkewReport {
    join(r, c, &SkewRules::default(), SideNames::default())
}

#[test]
fn a_unit_change_in_every_row_is_found_and_said_in_words() {
    let ids = ids(1243);
    let value = |i: usize| 10.0 + i as f64;
    let reference: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), vec![("b_ms", Value::Number(value(i) * 1000.0))]))
        .collect();
    let current: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), vec![("b_ms", Value::Number(value(i)))]))
        .collect();
    let report = join_default(&sample_of(all(), &reference), &sample_of(all(), &current));
    assert_eq!(report.joined, 1243);
    assert_eq!(report.skewed, ["b_ms"]);
    let f = &report.features["b_ms"];
    assert_eq!((f.compared, f.mismatched), (1243, 1243));
    assert_eq!(f.mismatch_ratio, Some(1.0));
    assert_eq!(
        f.verdict,
        "b_ms differs in 100% of 1,243 joined examples; median ratio current/reference 0.001"
    );
    let d = f.differences.as_ref().unwrap();
    assert_eq!(d.pairs, 1243);
    assert!((d.ratio["0.5"] - 0.001).abs() < 1e-15);
    assert!((d.relative["max"] + 0.999).abs() < 1e-12);
    // |x/1000 − x| for x = 1000·(10 + i): 999·(10 + i); the median i is 621.
    assert!((d.absolute["0.5"] - 999.0 * 631.0).abs() < 1e-6);
    assert_eq!(f.examples.len(), MAX_EXAMPLES);
    // The daemon names its sides offline and online.
    let names = SideNames {
        reference: "offline",
        current: "online",
    };
    let online = join(
        &sample_of(all(), &reference),
        &sample_of(all(), &current),
        &SkewRules::default(),
        names,
    );
    assert!(
        online.features["b_ms"]
            .verdict
            .ends_with("median ratio online/offline 0.001")
    );
}

#[test]
fn a_three_percent_categorical_mismatch_is_found() {
    let ids = ids(2000);
    let country = ["DE", "FR", "US"];
    let row = |i: usize, stale: bool| {
        let c = if stale { "XX" } else { country[i % 3] };
        vec![("country", Value::Str(c))]
    };
    let reference: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), row(i, false)))
        .collect();
    // 3 rows in every 100 are stale: 60 of 2000.
    let current: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), row(i, i % 100 < 3)))
        .collect();
    let report = join_default(&sample_of(all(), &reference), &sample_of(all(), &current));
    let f = &report.features["country"];
    assert_eq!((f.compared, f.mismatched), (2000, 60));
    assert_eq!(f.kind, Some("string"));
    assert!(f.skewed, "{}", f.verdict);
    assert!(f.differences.is_none());
    assert!(
        f.verdict
            .starts_with("country differs in 3.0% of 2,000 joined examples (95%: 2.3%–3.8%, above 0.50%); e.g. id "),
        "{}",
        f.verdict
    );
    assert!(f.verdict.contains("vs \"XX\""), "{}", f.verdict);
    let [lo, hi] = f.interval.unwrap();
    assert!(lo > 0.02 && hi < 0.04, "{lo} {hi}");
}

#[test]
fn identical_features_and_float_noise_are_not_skew() {
    let ids = ids(1000);
    let x = |i: usize| (i as f64 * 0.37).sin() * 1e3;
    let reference: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            (
                id.clone(),
                vec![
                    ("same", Value::Number(x(i))),
                    ("noisy", Value::Number(x(i))),
                    ("zero", Value::Number(0.0)),
                    ("flag", Value::Bool(i % 2 == 0)),
                ],
            )
        })
        .collect();
    let current: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let noise = if i % 2 == 0 { 1.0 + 1e-12 } else { 1.0 - 1e-12 };
            (
                id.clone(),
                vec![
                    ("same", Value::Number(x(i))),
                    ("noisy", Value::Number(x(i) * noise)),
                    ("zero", Value::Number(5.5e-17)),
                    ("flag", Value::Bool(i % 2 == 0)),
                ],
            )
        })
        .collect();
    let report = join_default(&sample_of(all(), &reference), &sample_of(all(), &current));
    assert!(report.skewed.is_empty(), "{:?}", report.skewed);
    for name in ["same", "noisy", "zero", "flag"] {
        let f = &report.features[name];
        assert_eq!((f.compared, f.mismatched), (1000, 0), "{name}");
        assert_eq!(
            f.verdict,
            format!("{name} agrees in all 1,000 joined examples")
        );
    }
    // A tolerance of 0 (per feature, in rules) makes the noise a mismatch.
    let rules = SkewRules {
        features: [(
            "noisy".to_owned(),
            SkewOverrides {
                tolerance: Some(0.0),
                absolute_tolerance: Some(0.0),
                ..SkewOverrides::default()
            },
        )]
        .into(),
        ..SkewRules::default()
    };
    let strict = join(
        &sample_of(all(), &reference),
        &sample_of(all(), &current),
        &rules,
        SideNames::default(),
    );
    // x(0) = 0 is equal however strict; every other row differs.
    assert_eq!(strict.features["noisy"].mismatched, 999);
    assert_eq!(strict.skewed, ["noisy"]);
}

#[test]
fn row_order_does_not_matter() {
    let ids = ids(500);
    let rows: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), vec![("x", Value::Number(i as f64))]))
        .collect();
    let other: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            (
                id.clone(),
                vec![(
                    "x",
                    Value::Number(if i % 10 == 0 { -1.0 } else { i as f64 }),
                )],
            )
        })
        .collect();
    let mut shuffled = other.clone();
    shuffled.reverse();
    shuffled.rotate_left(77);
    let capped = SamplePolicy {
        max_rows: 200,
        ..SamplePolicy::default()
    };
    let a = join_default(&sample_of(capped, &rows), &sample_of(capped, &other));
    let b = join_default(&sample_of(capped, &rows), &sample_of(capped, &shuffled));
    assert_eq!(a, b);
    assert_eq!(a.joined, 200);
    assert!(a.capped);
}

#[test]
fn duplicates_and_one_sided_ids_are_counted_not_joined() {
    let row = |id: &str, x: f64| (id.to_owned(), vec![("x", Value::Number(x))]);
    let reference = vec![
        row("a", 1.0),
        row("b", 2.0),
        row("b", 2.0),
        row("c", 3.0),
        row("only-ref", 4.0),
    ];
    let current = vec![
        row("a", 1.0),
        row("b", 9.0),
        row("c", 3.0),
        row("c", 3.5),
        row("only-cur", 5.0),
        row("only-cur2", 6.0),
    ];
    let report = join_default(&sample_of(all(), &reference), &sample_of(all(), &current));
    assert_eq!(report.joined, 1);
    assert_eq!(report.reference_only, 1);
    assert_eq!(report.current_only, 2);
    assert_eq!(
        report.duplicate_ids,
        PerSide {
            reference: 1,
            current: 1
        }
    );
    assert_eq!(
        report.rows_with_id,
        PerSide {
            reference: 5,
            current: 6
        }
    );
    let f = &report.features["x"];
    assert_eq!((f.compared, f.mismatched), (1, 0));
    assert!(!f.skewed);
    assert!(
        f.verdict.contains("fewer examples than the 100 needed"),
        "{}",
        f.verdict
    );
}

#[test]
fn nulls_equal_only_nulls_and_missing_features_are_not_mismatches() {
    let ids = ids(400);
    let reference: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let n = if i % 4 == 0 {
                Value::Null
            } else {
                Value::Number(1.0)
            };
            (
                id.clone(),
                vec![
                    ("n", n),
                    ("gone", Value::Str("v")),
                    ("half", Value::Number(2.0)),
                ],
            )
        })
        .collect();
    let current: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            // Rows 0, 4, 8…: null on both; rows 1, 5, 9…: null on the current side only.
            let n = if i % 4 <= 1 {
                Value::Null
            } else {
                Value::Number(1.0)
            };
            let mut fields = vec![("n", n)];
            if i % 2 == 0 {
                fields.push(("half", Value::Number(2.0)));
            }
            (id.clone(), fields)
        })
        .collect();
    let report = join_default(&sample_of(all(), &reference), &sample_of(all(), &current));
    let n = &report.features["n"];
    assert_eq!(
        (n.compared, n.mismatched, n.both_null, n.current_null),
        (400, 100, 100, 100)
    );
    assert!(n.skewed);
    let gone = &report.features["gone"];
    assert_eq!(
        (gone.compared, gone.missing_current, gone.mismatched),
        (0, 400, 0)
    );
    assert!(!gone.skewed);
    assert_eq!(
        gone.verdict,
        "gone is missing from current in all 400 joined examples"
    );
    let half = &report.features["half"];
    assert_eq!(
        (half.compared, half.missing_current, half.mismatched),
        (200, 200, 0)
    );
    assert_eq!(
        half.verdict,
        "half agrees in all 200 joined examples; missing from reference in 0, from current in 200"
    );
    assert_eq!(report.skewed, ["n"]);
}

#[test]
fn capped_samples_join_only_below_both_bounds() {
    // The reference has 10,000 ids and keeps 1,000; the current side has every 10th id and keeps
    // all of them. Ids the reference's cap dropped are not "current only".
    let all_ids = ids(10_000);
    let row = |id: &String| (id.clone(), vec![("x", Value::Number(1.0))]);
    let reference: Vec<_> = all_ids.iter().map(row).collect();
    let current: Vec<_> = all_ids.iter().step_by(10).map(row).collect();
    let capped = SamplePolicy {
        max_rows: 1000,
        ..SamplePolicy::default()
    };
    let (r, c) = (sample_of(capped, &reference), sample_of(all(), &current));
    let report = join_default(&r, &c);
    let (bh, bid) = r.bound().unwrap();
    let below = all_ids
        .iter()
        .step_by(10)
        .filter(|id| (crate::profile::id_hash(id), id.as_str()) < (bh, bid))
        .count() as u64;
    assert_eq!(report.joined, below);
    assert_eq!(report.current_only, 0);
    assert_eq!(report.reference_only, 1000 - below);
    // About a tenth of the reference's 1,000.
    assert!((60..=140).contains(&below), "{below}");
}

#[test]
fn wilson_intervals_match_newcombe_1998() {
    // Newcombe, "Two-sided confidence intervals for the single proportion", Stat. Med. 1998,
    // table I, method 3 (score): 81/263, 15/148, 0/20, 1/29.
    let cases = [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ];
    for (k, n, lo, hi) in cases {
        let [l, h] = wilson_interval(k, n).unwrap();
        assert!(
            (l - lo).abs() < 5e-5 && (h - hi).abs() < 5e-5,
            "{k}/{n}: {l} {h}"
        );
    }
    assert_eq!(wilson_interval(0, 0), None);
}

#[test]
fn numbers_compare_within_tolerance() {
    let s = SkewSettings::default();
    assert!(numbers_equal(1.0, 1.0 + 1e-12, &s));
    assert!(numbers_equal(1e6, 1e6 * (1.0 + 5e-10), &s));
    assert!(!numbers_equal(1.0, 1.0 + 1e-8, &s));
    assert!(numbers_equal(0.0, 1e-13, &s));
    assert!(!numbers_equal(0.0, 1e-11, &s));
    assert!(numbers_equal(f64::NAN, f64::NAN, &s));
    assert!(!numbers_equal(f64::NAN, 1.0, &s));
    assert!(numbers_equal(f64::INFINITY, f64::INFINITY, &s));
    assert!(!numbers_equal(f64::INFINITY, f64::NEG_INFINITY, &s));
    assert!(!numbers_equal(f64::MAX, f64::INFINITY, &s));
}

#[test]
fn a_few_mismatches_in_many_do_not_cry_wolf() {
    // 4 of 800 (0.5 %) differ: the ratio is at the threshold, its interval well below it.
    let ids = ids(800);
    let rows = |bad: bool| -> Vec<_> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| {
                (
                    id.clone(),
                    vec![(
                        "x",
                        Value::Number(if bad && i % 200 == 0 { 2.0 } else { 1.0 }),
                    )],
                )
            })
            .collect()
    };
    let report = join_default(
        &sample_of(all(), &rows(false)),
        &sample_of(all(), &rows(true)),
    );
    let f = &report.features["x"];
    assert_eq!(f.mismatched, 4);
    assert!(!f.skewed);
    assert!(
        f.verdict.contains("not clearly above 0.50%"),
        "{}",
        f.verdict
    );
}
