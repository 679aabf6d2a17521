//! Hash sampling by id: both sides keep the same ids, whatever the id sets, rates, caps and
//! row orders; a sample of two parts merged is the sample of the whole.

use std::collections::BTreeSet;

use driftd::profile::{Sample, SamplePolicy, Value, id_hash};
use proptest::prelude::*;

fn sample(ids: &[String], policy: SamplePolicy) -> Sample {
    let mut s = Sample::new("id", policy);
    for (i, id) in ids.iter().enumerate() {
        s.offer(id, [("x", Value::Number(i as f64))]);
    }
    s
}

fn kept(s: &Sample) -> BTreeSet<String> {
    s.rows().map(|(_, id, _)| id.to_owned()).collect()
}

/// An id set drawn from a shared pool, in a shuffled order.
fn id_set() -> impl Strategy<Value = Vec<String>> {
    prop::collection::btree_set(0u32..400, 0..200)
        .prop_map(|set| {
            set.into_iter()
                .map(|i| format!("user-{i}"))
                .collect::<Vec<_>>()
        })
        .prop_shuffle()
}

fn policy() -> impl Strategy<Value = SamplePolicy> {
    (
        prop_oneof![Just(1.0), 0.05f64..1.0],
        1usize..120,
        prop_oneof![Just(usize::MAX), 2_000usize..20_000],
    )
        .prop_map(|(rate, max_rows, max_bytes)| SamplePolicy {
            rate,
            max_rows,
            max_bytes,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn both_sides_keep_every_common_id_below_both_bounds(
        a in id_set(), b in id_set(), pa in policy(), pb in policy(),
    ) {
        let (sa, sb) = (sample(&a, pa), sample(&b, pb));
        let bound = match (sa.bound(), sb.bound()) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        let rate = pa.rate.min(pb.rate);
        let common: BTreeSet<&String> = a.iter().filter(|id| b.contains(id)).collect();
        let expected: BTreeSet<String> = common
            .into_iter()
            .filter(|id| {
                let h = id_hash(id);
                (h as u128) < SamplePolicy { rate, ..pa }.rate_bound()
                    && bound.is_none_or(|bd| (h, id.as_str()) < bd)
            })
            .cloned()
            .collect();
        let both: BTreeSet<String> = kept(&sa).intersection(&kept(&sb)).cloned().collect();
        let both_in_range: BTreeSet<String> = both
            .into_iter()
            .filter(|id| {
                let h = id_hash(id);
                (h as u128) < SamplePolicy { rate, ..pa }.rate_bound()
                    && bound.is_none_or(|bd| (h, id.as_str()) < bd)
            })
            .collect();
        prop_assert_eq!(both_in_range, expected);
        // Each side holds every eligible id of its own below its bound, and nothing else.
        for (ids, s, p) in [(&a, &sa, pa), (&b, &sb, pb)] {
            let own: BTreeSet<String> = ids
                .iter()
                .filter(|id| {
                    let h = id_hash(id);
                    (h as u128) < p.rate_bound() && s.bound().is_none_or(|bd| (h, id.as_str()) < bd)
                })
                .cloned()
                .collect();
            prop_assert_eq!(kept(s), own);
            prop_assert!(s.len() <= p.max_rows);
        }
    }

    #[test]
    fn the_same_ids_in_any_order_give_the_same_sample(a in id_set(), p in policy(), seed in any::<u64>()) {
        let mut shuffled = a.clone();
        // A deterministic shuffle from the seed.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(kept(&sample(&a, p)), kept(&sample(&shuffled, p)));
    }

    #[test]
    fn merged_parts_are_the_sample_of_the_whole(a in id_set(), p in policy(), cut in 0usize..200) {
        let cut = cut.min(a.len());
        let (left, right) = a.split_at(cut);
        let mut merged = sample(left, p);
        merged.merge(&sample(right, p)).unwrap();
        let whole = sample(&a, p);
        prop_assert_eq!(kept(&merged), kept(&whole));
        prop_assert_eq!(merged.bound(), whole.bound());
    }
}
