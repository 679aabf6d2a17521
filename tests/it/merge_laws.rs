//! Merge laws, proven with property tests: merge is commutative and associative, and merging
//! the profiles of parts equals profiling the whole, within the sketches' bounds.

use driftd::profile::{
    DatasetProfile, FREQUENT_ITEMS_EXACT, FeatureProfile, Limits, Profiler, Stage, Value,
};
use proptest::prelude::*;

use crate::helpers::{Owned, assert_quantile, exact_numeric, profile_of, rel_close};

fn value() -> impl Strategy<Value = Owned> {
    prop_oneof![
        2 => Just(Owned::Null),
        6 => (-1e6f64..1e6).prop_map(Owned::Num),
        2 => (0i64..20).prop_map(|i| Owned::Num(i as f64)),
        1 => prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY)].prop_map(Owned::Num),
        1 => any::<bool>().prop_map(Owned::Bool),
        4 => prop_oneof![
            "[a-e]{1,2}",
            "[αβγ日本🙂\u{202e}]{0,3}",
            "[a-z0-9]{0,12}",
        ].prop_map(Owned::Str),
    ]
}

fn values(max: usize) -> impl Strategy<Value = Vec<Owned>> {
    prop::collection::vec(value(), 0..max)
}

/// Checks a profile against an exact computation over `data`.
fn assert_matches_exact(p: &FeatureProfile, data: &[Owned]) {
    let nulls = data.iter().filter(|v| **v == Owned::Null).count() as u64;
    assert_eq!(p.nulls(), nulls, "nulls");
    assert_eq!(p.count(), data.len() as u64 - nulls, "count");
    let strings: Vec<&str> = data
        .iter()
        .filter_map(|v| match v {
            Owned::Str(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    let trues = data.iter().filter(|v| **v == Owned::Bool(true)).count() as u64;
    let falses = data.iter().filter(|v| **v == Owned::Bool(false)).count() as u64;
    assert_eq!(p.types().string, strings.len() as u64, "strings");
    assert_eq!(p.booleans().true_count, trues);
    assert_eq!(p.booleans().false_count, falses);
    let nan = data
        .iter()
        .filter(|v| matches!(v, Owned::Num(x) if x.is_nan()))
        .count() as u64;
    assert_eq!(p.non_finite().nan, nan, "NaN count");

    let exact = exact_numeric(data);
    let n = p.numeric();
    assert_eq!(n.count(), exact.sorted.len() as u64, "finite numbers");
    assert_eq!(n.min(), exact.sorted.first().copied(), "min");
    assert_eq!(n.max(), exact.sorted.last().copied(), "max");
    if let Some(mean) = n.mean() {
        // Values reach 1e6: compare on the data's scale, not relative to a mean near zero.
        assert!(
            (mean - exact.mean).abs() <= 1e-9 * 1e6,
            "mean {mean} vs {}",
            exact.mean
        );
    }
    match (n.stddev(), exact.stddev) {
        (Some(s), Some(e)) => assert!((s - e).abs() <= 1e-7 * e.max(1.0), "stddev {s} vs {e}"),
        (None, None) => {}
        other => panic!("stddev presence differs: {other:?}"),
    }
    for q in [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0] {
        if let Some(v) = n.quantile(q) {
            // Twice the 99 %-confidence bound, so random compaction cannot fail the property.
            assert_quantile(&exact, q, v, 2.0 * n.rank_error(), "merged");
        }
    }

    let mut distinct: Vec<String> = data
        .iter()
        .filter_map(|v| match v {
            Owned::Null => None,
            Owned::Num(x) if x.is_nan() => Some("nan".to_owned()),
            Owned::Num(x) => Some(format!("n{}", if *x == 0.0 { 0.0 } else { *x })),
            Owned::Bool(b) => Some(format!("b{b}")),
            Owned::Str(s) => Some(format!("s{s}")),
        })
        .collect();
    distinct.sort();
    distinct.dedup();
    let d = distinct.len() as f64;
    let est = p.distinct() as f64;
    assert!(
        (est - d).abs() <= 0.02 * d + 1.0,
        "distinct {est} vs exact {d}"
    );

    // Below FREQUENT_ITEMS_EXACT distinct strings every count is exact; beyond, each estimate
    // is within the sketch's maximum error of the exact count.
    let s = p.strings();
    let mut kinds = strings.clone();
    kinds.sort_unstable();
    kinds.dedup();
    if kinds.len() < FREQUENT_ITEMS_EXACT {
        assert_eq!(s.max_error(), 0, "{} distinct strings", kinds.len());
    }
    for v in &kinds {
        let exact = strings.iter().filter(|w| *w == v).count() as u64;
        let estimate = s.estimate(v);
        assert!(
            estimate.abs_diff(exact) <= s.max_error(),
            "count of {v:?}: {estimate} (max error {}) vs exact {exact}",
            s.max_error()
        );
    }
    let lens: Vec<u64> = strings.iter().map(|s| s.chars().count() as u64).collect();
    assert_eq!(s.min_len(), lens.iter().min().copied());
    assert_eq!(s.max_len(), lens.iter().max().copied());
}

fn merged(a: &FeatureProfile, b: &FeatureProfile) -> FeatureProfile {
    let mut m = a.clone();
    m.merge(b).expect("merge");
    m
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn profiling_parts_and_merging_equals_profiling_the_whole(
        a in values(1500), b in values(1500), c in values(300)
    ) {
        let whole: Vec<Owned> = a.iter().chain(&b).chain(&c).cloned().collect();
        let (pa, pb, pc) = (profile_of(&a), profile_of(&b), profile_of(&c));
        let left = merged(&merged(&pa, &pb), &pc);
        let right = merged(&pa, &merged(&pb, &pc));
        assert_matches_exact(&left, &whole);
        assert_matches_exact(&right, &whole);
        assert_matches_exact(&profile_of(&whole), &whole);
    }

    #[test]
    fn merge_is_commutative(a in values(800), b in values(800)) {
        let ab = merged(&profile_of(&a), &profile_of(&b));
        let ba = merged(&profile_of(&b), &profile_of(&a));
        prop_assert_eq!(ab.count(), ba.count());
        prop_assert_eq!(ab.nulls(), ba.nulls());
        prop_assert_eq!(ab.types(), ba.types());
        prop_assert_eq!(ab.non_finite(), ba.non_finite());
        prop_assert_eq!(ab.booleans(), ba.booleans());
        // The moment merge is symmetric in its operands: bit-for-bit equal.
        prop_assert_eq!(ab.numeric().moments(), ba.numeric().moments());
        prop_assert_eq!(ab.numeric().min(), ba.numeric().min());
        prop_assert_eq!(ab.numeric().max(), ba.numeric().max());
        prop_assert_eq!(ab.strings().frequent(usize::MAX), ba.strings().frequent(usize::MAX));
        prop_assert_eq!(ab.distinct(), ba.distinct());
        prop_assert_eq!(ab.kind(), ba.kind());
    }

    #[test]
    fn merge_is_associative(a in values(600), b in values(600), c in values(600)) {
        let (pa, pb, pc) = (profile_of(&a), profile_of(&b), profile_of(&c));
        let left = merged(&merged(&pa, &pb), &pc);
        let right = merged(&pa, &merged(&pb, &pc));
        prop_assert_eq!(left.types(), right.types());
        prop_assert_eq!(left.nulls(), right.nulls());
        prop_assert_eq!(left.numeric().min(), right.numeric().min());
        prop_assert_eq!(left.numeric().max(), right.numeric().max());
        prop_assert_eq!(left.strings().frequent(usize::MAX), right.strings().frequent(usize::MAX));
        prop_assert_eq!(left.distinct(), right.distinct());
        match (left.numeric().mean(), right.numeric().mean()) {
            (Some(x), Some(y)) => prop_assert!((x - y).abs() <= 1e-9 * 1e6),
            (x, y) => prop_assert_eq!(x, y),
        }
        match (left.numeric().stddev(), right.numeric().stddev()) {
            (Some(x), Some(y)) => prop_assert!(rel_close(x, y, 1e-9) || (x - y).abs() < 1e-6),
            (x, y) => prop_assert_eq!(x, y),
        }
    }

    /// Dataset profiles: records with varying feature sets, split anywhere, merged in any order.
    #[test]
    fn dataset_merge_keeps_rows_and_nulls(
        records in prop::collection::vec(prop::collection::btree_map("[a-d]", value(), 0..4), 0..200),
        split in 0usize..200,
    ) {
        let split = split.min(records.len());
        let profile = |part: &[std::collections::BTreeMap<String, Owned>]| -> DatasetProfile {
            let mut p = Profiler::new("d", Stage::Online, Limits::default());
            for r in part {
                p.observe_record(String::new, r.iter().map(|(k, v)| (k.as_str(), v.as_value())));
            }
            p.finish().0
        };
        let whole = profile(&records);
        let mut ab = profile(&records[..split]);
        ab.merge(&profile(&records[split..])).unwrap();
        let mut ba = profile(&records[split..]);
        ba.merge(&profile(&records[..split])).unwrap();
        for m in [&ab, &ba] {
            prop_assert_eq!(m.rows, records.len() as u64);
            prop_assert_eq!(m.features.keys().collect::<Vec<_>>(), whole.features.keys().collect::<Vec<_>>());
            for (name, f) in &m.features {
                let w = &whole.features[name];
                prop_assert_eq!(f.count() + f.nulls(), m.rows);
                prop_assert_eq!(f.nulls(), w.nulls());
                prop_assert_eq!(f.types(), w.types());
            }
        }
    }
}

#[test]
fn merging_different_datasets_or_stages_is_refused() {
    let mut a = DatasetProfile::new("a", Stage::Offline);
    let b = DatasetProfile::new("b", Stage::Offline);
    let err = a.merge(&b).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot merge profiles of different datasets (\"a\" and \"b\")"
    );
    let c = DatasetProfile::new("a", Stage::Online);
    assert!(a.merge(&c).unwrap_err().to_string().contains("stages"));
}

#[test]
fn kind_is_what_most_values_are() {
    let mut f = FeatureProfile::default();
    for i in 0..10 {
        f.observe(Value::Number(i as f64));
    }
    f.observe(Value::Str("N/A"));
    f.observe(Value::Str("N/A"));
    assert_eq!(f.kind().as_str(), "numeric");
    assert_eq!(f.types().string, 2);
    assert_eq!(
        f.strings().estimate("N/A"),
        2,
        "minority values are kept, not dropped"
    );
    for _ in 0..20 {
        f.observe(Value::Bool(true));
    }
    assert_eq!(f.kind().as_str(), "boolean");
}
