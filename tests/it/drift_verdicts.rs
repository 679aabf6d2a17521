//! Verdicts by effect size: what is and is not drift, invariants, and edge cases.

use driftd::detect::{Check, Severity, compare};
use driftd::profile::{DatasetProfile, Kind, Limits, Profiler, Stage, Value};
use driftd::rules::DatasetRules;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

use crate::drift_statistics::numeric_profile;

fn normal(n: usize, mean: f64, sd: f64, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let d = Normal::new(mean, sd).unwrap();
    (0..n).map(|_| d.sample(&mut rng)).collect()
}

fn strings(values: &[String]) -> DatasetProfile {
    let mut p = Profiler::new("d", Stage::Offline, Limits::default());
    for v in values {
        p.observe_record(String::new, [("x", Value::Str(v))]);
    }
    p.finish().0
}

fn records(rows: &[Vec<(&str, Value<'_>)>]) -> DatasetProfile {
    let mut p = Profiler::new("d", Stage::Offline, Limits::default());
    for r in rows {
        p.observe_record(String::new, r.iter().copied());
    }
    p.finish().0
}

#[test]
fn a_tiny_shift_at_volume_is_not_drift_though_its_p_value_is_tiny() {
    let a = normal(100_000, 0.0, 1.0, 1);
    let b = normal(100_000, 0.05, 1.0, 2);
    let report = compare(
        &numeric_profile("d", &a),
        &numeric_profile("d", &b),
        &DatasetRules::default(),
    );
    let f = &report.features["x"];
    assert!(!f.drift, "{}", f.reason);
    let s = &f.statistics;
    assert!(s.psi.unwrap() < 0.01, "psi {:?}", s.psi);
    assert!(
        s.ks_p_value.unwrap() < 1e-8,
        "a p-value verdict would cry wolf: {:?}",
        s.ks_p_value
    );
    assert!(report.drifted.is_empty());
}

#[test]
fn clear_shifts_in_location_scale_and_mix_are_drift() {
    let base = normal(50_000, 10.0, 2.0, 3);
    let rules = DatasetRules::default();
    for (what, shifted) in [
        ("location +1σ", normal(50_000, 12.0, 2.0, 4)),
        ("scale ×2.5", normal(50_000, 10.0, 5.0, 5)),
    ] {
        let report = compare(
            &numeric_profile("d", &base),
            &numeric_profile("d", &shifted),
            &rules,
        );
        let f = &report.features["x"];
        assert!(f.drift, "{what}: {}", f.reason);
        assert!(
            f.reason.starts_with("PSI ") && f.reason.ends_with(" ≥ 0.2"),
            "{}",
            f.reason
        );
        assert_eq!(report.drifted, ["x"]);
    }
    let mut rng = StdRng::seed_from_u64(9);
    let pick = |weights: [f64; 3], rng: &mut StdRng| -> Vec<String> {
        (0..20_000)
            .map(|_| {
                let u: f64 = rng.random();
                let i = if u < weights[0] {
                    0
                } else if u < weights[0] + weights[1] {
                    1
                } else {
                    2
                };
                ["web", "ios", "android"][i].to_owned()
            })
            .collect()
    };
    let before = pick([0.6, 0.3, 0.1], &mut rng);
    let same = pick([0.6, 0.3, 0.1], &mut rng);
    let after = pick([0.3, 0.3, 0.4], &mut rng);
    let report = compare(&strings(&before), &strings(&after), &rules);
    let f = &report.features["x"];
    assert!(f.drift && f.kind == Kind::String, "{}", f.reason);
    assert!(f.reason.starts_with("JS distance "), "{}", f.reason);
    let report = compare(&strings(&before), &strings(&same), &rules);
    assert!(
        !report.features["x"].drift,
        "{}",
        report.features["x"].reason
    );
}

/// 50,000 ids seen twice each, drawn twice from one distribution: raw histograms differ by
/// sampling noise alone, which must not read as drift.
#[test]
fn high_cardinality_noise_is_not_drift() {
    let mut raw_false_alarms = 0;
    for (ids, per_id) in [
        (50_000u32, 2usize),
        (1_000, 2),
        (700, 3),
        (105, 20),
        (300, 10),
        (30, 100),
        (2000, 5),
        (1400, 8),
        // Below FREQUENT_ITEMS_EXACT distinct values, where every count is exact.
        (350, 8),
        (200, 12),
    ] {
        let mut rng = StdRng::seed_from_u64(u64::from(ids));
        let mut draw = || -> Vec<String> {
            (0..ids as usize * per_id)
                .map(|_| format!("id-{}", rng.random_range(0..ids)))
                .collect()
        };
        let (a, b) = (draw(), draw());
        let report = compare(&strings(&a), &strings(&b), &DatasetRules::default());
        let f = &report.features["x"];
        assert!(!f.drift, "{ids} ids × {per_id}: {}", f.reason);
        assert!(f.score.unwrap() < 0.05, "{ids} ids: score {:?}", f.score);
        raw_false_alarms += usize::from(f.statistics.js_distance.unwrap() >= 0.1);
        assert!(report.schema.iter().all(|s| s.severity != Severity::Error));
    }
    // The raw JS distance alone would have cried wolf in several of these.
    assert!(
        raw_false_alarms >= 3,
        "raw false alarms: {raw_false_alarms}"
    );
}

#[test]
fn invariants_are_reported_with_severity() {
    let reference = records(
        &(0..1000)
            .map(|i| {
                vec![
                    ("amount", Value::Number(i as f64)),
                    ("country", Value::Str(["US", "DE"][i % 2])),
                    ("dropped", Value::Number(1.0)),
                    (
                        "sometimes",
                        if i % 100 == 0 {
                            Value::Null
                        } else {
                            Value::Number(2.0)
                        },
                    ),
                    ("flips", Value::Number(i as f64)),
                ]
            })
            .collect::<Vec<_>>(),
    );
    let current = records(
        &(0..1000)
            .map(|i| {
                vec![
                    (
                        "amount",
                        if i % 250 == 0 {
                            Value::Number(f64::NAN)
                        } else {
                            Value::Number(i as f64 * 1.5)
                        },
                    ),
                    ("country", Value::Str(["US", "DE", "FR"][i % 3])),
                    (
                        "sometimes",
                        if i % 4 == 0 {
                            Value::Null
                        } else {
                            Value::Number(2.0)
                        },
                    ),
                    ("flips", Value::Str("x")),
                    ("brand_new", Value::Bool(true)),
                ]
            })
            .collect::<Vec<_>>(),
    );
    let report = compare(&reference, &current, &DatasetRules::default());
    let find = |check: Check, feature: &str| {
        report
            .schema
            .iter()
            .find(|f| f.check == check && f.feature.as_deref() == Some(feature))
            .unwrap_or_else(|| panic!("no {check:?} for {feature}: {:#?}", report.schema))
    };
    assert_eq!(
        find(Check::MissingFeature, "dropped").severity,
        Severity::Error
    );
    assert_eq!(
        find(Check::NewFeature, "brand_new").severity,
        Severity::Warning
    );
    assert_eq!(find(Check::KindChanged, "flips").severity, Severity::Error);
    let nulls = find(Check::NullRatioIncreased, "sometimes");
    assert_eq!(nulls.severity, Severity::Warning);
    assert_eq!(nulls.share, Some(0.25));
    let nan = find(Check::NonFiniteAppeared, "amount");
    assert_eq!(nan.severity, Severity::Error);
    assert!(nan.message.contains("4 NaN"), "{}", nan.message);
    let range = find(Check::OutOfReferenceRange, "amount");
    assert_eq!(range.severity, Severity::Warning);
    // 1.5·i > 999 for i ≥ 667: 333 of the 996 finite values, within the sketch's rank error.
    assert!(
        (range.share.unwrap() - 333.0 / 996.0).abs() < 0.01,
        "{:?}",
        range.share
    );
    let new = find(Check::NewCategories, "country");
    assert_eq!(new.values, ["FR"]);
    assert!((new.share.unwrap() - 333.0 / 1000.0).abs() < 1e-9);
    // Most severe first.
    assert!(
        report
            .schema
            .windows(2)
            .all(|w| w[0].severity >= w[1].severity)
    );
    assert!(report.failed());
}

#[test]
fn edge_cases_have_defined_answers_and_json_has_no_nan() {
    let empty = DatasetProfile::new("d", Stage::Offline);
    let some = numeric_profile("d", &normal(500, 0.0, 1.0, 11));
    let report = compare(&empty, &some, &DatasetRules::default());
    assert!(
        report
            .schema
            .iter()
            .any(|f| f.check == Check::EmptyReference && f.severity == Severity::Error)
    );
    assert!(report.features.is_empty());
    assert!(report.failed());

    // A single distinct value on both sides: zero variance, identical.
    let constant = numeric_profile("d", &[3.0; 500]);
    let f = &compare(&constant, &constant, &DatasetRules::default()).features["x"];
    assert!(!f.drift);
    assert_eq!(f.statistics.psi, Some(0.0));
    assert_eq!(f.statistics.ks, Some(0.0));
    assert_eq!(f.statistics.wasserstein_normalized, None);
    assert_eq!(
        f.missing["wasserstein_normalized"],
        "the reference's standard deviation is 0 or undefined"
    );
    // A constant that moves is drift even with zero variance.
    let moved = numeric_profile("d", &[4.0; 500]);
    let f = &compare(&constant, &moved, &DatasetRules::default()).features["x"];
    assert!(f.drift, "{}", f.reason);

    // All-null on both sides: nothing to judge, said so.
    let nulls: Vec<Vec<(&str, Value)>> = (0..300).map(|_| vec![("x", Value::Null)]).collect();
    let all_null = records(&nulls);
    let report = compare(&all_null, &all_null, &DatasetRules::default());
    let f = &report.features["x"];
    assert!(!f.drift);
    assert_eq!(f.score, None);
    assert_eq!(f.reason, "neither side has values");

    // Too few values for a verdict.
    let few = numeric_profile("d", &[1.0, 2.0, 3.0]);
    let f = &compare(
        &few,
        &numeric_profile("d", &[7.0, 8.0, 9.0]),
        &DatasetRules::default(),
    )
    .features["x"];
    assert!(!f.drift);
    assert!(
        f.reason
            .starts_with("too few values to judge (3 reference, 3 current"),
        "{}",
        f.reason
    );

    // A numeric reference, a string current: judged as numeric, nothing comparable, said so.
    let text: Vec<String> = (0..500).map(|i| format!("t{i}")).collect();
    let report = compare(&some, &strings(&text), &DatasetRules::default());
    let f = &report.features["x"];
    assert_eq!(f.score, None);
    assert_eq!(f.reason, "the current data has no numeric values");
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains("NaN") && !json.contains("inf"), "{json}");
    assert!(json.contains("\"psi\":null"), "{json}");
}
