//! Accuracy against exact computation on 100,000 generated rows: quantiles within 1 % rank
//! error, distinct counts within 5 %, exact counts, nulls, min and max, mean and sample
//! standard deviation to 1e-6 relative, exact frequent-value counts below `FREQUENT_ITEMS_EXACT` distinct values.

use std::collections::HashMap;

use driftd::profile::{FREQUENT_ITEMS_EXACT, Limits, Profiler, Stage, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, Normal, Zipf};

use crate::helpers::{Owned, assert_quantile, exact_numeric, rel_close};

const ROWS: usize = 100_000;

fn columns(seed: u64) -> Vec<(&'static str, Vec<Owned>)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let normal = Normal::new(50.0, 12.5).unwrap();
    let lognormal = LogNormal::new(3.0, 1.2).unwrap();
    let zipf = Zipf::new(300.0, 1.1).unwrap();
    let mut cols: Vec<(&str, Vec<Owned>)> = vec![
        ("normal", vec![]),
        ("lognormal", vec![]),
        ("small_ints", vec![]),
        ("big_offset", vec![]),
        ("category_zipf", vec![]),
        ("user_id", vec![]),
    ];
    for _ in 0..ROWS {
        let null_or = |v: Owned, rng: &mut StdRng| {
            if rng.random_bool(0.01) {
                Owned::Null
            } else {
                v
            }
        };
        let row = [
            Owned::Num(normal.sample(&mut rng)),
            Owned::Num(lognormal.sample(&mut rng)),
            Owned::Num(rng.random_range(0..7) as f64),
            // A large offset with a small spread: naive sum-of-squares variance fails here.
            Owned::Num(1e9 + rng.random::<f64>()),
            Owned::Str(format!("cat-{}", zipf.sample(&mut rng) as u32)),
            Owned::Str(format!("u{}", rng.random_range(0..60_000u32))),
        ];
        for (col, v) in cols.iter_mut().zip(row) {
            col.1.push(null_or(v, &mut rng));
        }
    }
    cols
}

#[test]
fn profiles_match_exact_computation_on_100k_rows() {
    let cols = columns(42);
    let mut profiler = Profiler::new("accuracy", Stage::Offline, Limits::default());
    for row in 0..ROWS {
        profiler.observe_record(
            String::new,
            cols.iter()
                .map(|(name, vals)| (*name, vals[row].as_value())),
        );
    }
    let (profile, problems) = profiler.finish();
    assert_eq!(problems.rejected_rows, 0);
    assert_eq!(profile.rows, ROWS as u64);

    let mut worst_rank_error: f64 = 0.0;
    for (name, data) in &cols {
        let f = &profile.features[*name];
        let nulls = data.iter().filter(|v| **v == Owned::Null).count() as u64;
        assert_eq!(f.nulls(), nulls, "{name}: nulls");
        assert_eq!(f.count(), ROWS as u64 - nulls, "{name}: count");

        let mut distinct: Vec<String> = data
            .iter()
            .filter(|v| **v != Owned::Null)
            .map(|v| format!("{v:?}"))
            .collect();
        distinct.sort_unstable();
        distinct.dedup();
        let d = distinct.len() as f64;
        let est = f.distinct() as f64;
        assert!(
            (est - d).abs() <= 0.05 * d,
            "{name}: distinct {est} vs exact {d}"
        );

        if f.kind() == driftd::profile::Kind::Numeric {
            let exact = exact_numeric(data);
            let n = f.numeric();
            assert_eq!(n.min(), exact.sorted.first().copied(), "{name}: min");
            assert_eq!(n.max(), exact.sorted.last().copied(), "{name}: max");
            assert!(
                rel_close(n.mean().unwrap(), exact.mean, 1e-6),
                "{name}: mean"
            );
            assert!(
                rel_close(n.stddev().unwrap(), exact.stddev.unwrap(), 1e-6),
                "{name}: stddev {:?} vs {:?}",
                n.stddev(),
                exact.stddev
            );
            for i in 1..100 {
                let q = i as f64 / 100.0;
                let v = n.quantile(q).unwrap();
                assert_quantile(&exact, q, v, 0.01, name);
                let (lo, hi) = exact.rank_interval(v);
                worst_rank_error = worst_rank_error.max((lo - q).max(q - hi).max(0.0));
            }
        } else {
            let strings: Vec<&str> = data
                .iter()
                .filter_map(|v| match v {
                    Owned::Str(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect();
            let mut counts: HashMap<&str, u64> = HashMap::new();
            strings
                .iter()
                .for_each(|s| *counts.entry(s).or_default() += 1);
            if counts.len() < FREQUENT_ITEMS_EXACT {
                let top = f.strings().frequent(20);
                assert_eq!(top.len(), 20);
                let mut expected: Vec<(&str, u64)> = counts.into_iter().collect();
                expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                for (got, want) in top.iter().zip(&expected) {
                    assert_eq!((got.value.as_str(), got.count), *want, "{name}: top values");
                }
            }
        }
    }
    assert!(
        worst_rank_error <= 0.01,
        "worst rank error {worst_rank_error}"
    );
}

#[test]
fn text_and_typed_values_profile_alike() {
    // CSV reads text; the same numbers as text must give the same profile figures.
    let mut typed = driftd::profile::FeatureProfile::default();
    let mut text = driftd::profile::FeatureProfile::default();
    for i in 0..5000 {
        let x = (i as f64 * 0.731).sin() * 100.0;
        typed.observe(Value::Number(x));
        text.observe(Value::from_text(&format!("{x}")));
    }
    assert_eq!(typed.numeric().moments(), text.numeric().moments());
    assert_eq!(typed.numeric().min(), text.numeric().min());
}
