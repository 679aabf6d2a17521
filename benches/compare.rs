//! Speed of judging one profile against another: `detect::compare` on two dataset profiles of
//! 1,000 features (600 numeric with 10,000 values each, 400 strings of 50 categories), and the
//! profile-file decoding that precedes it in `driftd compare a.driftprof b.driftprof`.

use criterion::{Criterion, criterion_group, criterion_main};
use driftd::detect::compare;
use driftd::profile::file::{decode, encode};
use driftd::profile::{DatasetProfile, Limits, Profiler, Stage, Value};
use driftd::rules::DatasetRules;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

const FEATURES: usize = 1000;
const NUMERIC: usize = 600;
const ROWS: usize = 10_000;

fn profile(seed: u64, shift: f64) -> DatasetProfile {
    let mut rng = StdRng::seed_from_u64(seed);
    let normal = Normal::new(shift, 1.0).unwrap();
    let names: Vec<String> = (0..FEATURES).map(|i| format!("f{i:04}")).collect();
    let labels: Vec<String> = (0..50).map(|i| format!("cat-{i}")).collect();
    let mut p = Profiler::new("wide", Stage::Offline, Limits::default());
    let slots: Vec<usize> = names.iter().map(|n| p.feature(n, None).unwrap()).collect();
    for _ in 0..ROWS {
        for (i, &slot) in slots.iter().enumerate() {
            if i < NUMERIC {
                p.observe(slot, Value::Number(normal.sample(&mut rng)));
            } else {
                let k = (rng.random::<f64>().powi(2) * 50.0) as usize;
                p.observe(slot, Value::Str(&labels[k.min(49)]));
            }
        }
        p.add_rows(1);
    }
    p.finish().0
}

fn bench(c: &mut Criterion) {
    let reference = profile(1, 0.0);
    let current = profile(2, 0.1);
    let rules = DatasetRules::default();
    let mut group = c.benchmark_group("compare_1000_features");
    group.sample_size(20);
    group.bench_function("detect::compare", |b| {
        b.iter(|| compare(&reference, &current, &rules))
    });
    let (a, z) = (encode(&reference), encode(&current));
    group.bench_function("decode both profile files + compare", |b| {
        b.iter(|| {
            let r = decode(a.as_slice()).unwrap();
            let c = decode(z.as_slice()).unwrap();
            compare(&r, &c, &rules)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
