//! Update paths of `FeatureProfile`, the merge, and the profile file's encode/decode.
//!
//! ```text
//! cargo bench --bench profile_update            # whole run, about 1.5 minutes
//! cargo bench --bench profile_update -- observe # only names matching "observe"
//! ```
//!
//! Every `observe/*` and `parse/*` benchmark processes 100,000 values per iteration into a
//! fresh profile, so criterion's `elem/s` is values per second on one core. `merge/*` folds one
//! 100k-value profile into a copy of another (elements are merges); `file/*` encodes or decodes
//! a 15-feature dataset profile (elements are features, bytes are the encoded file).

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use driftd::profile::{DatasetProfile, FeatureProfile, Kind, Limits, Profiler, Stage, Value, file};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, Normal, Zipf};

const N: usize = 100_000;

fn rng(stream: u64) -> StdRng {
    StdRng::seed_from_u64(0xD1F7_0000 + stream)
}

fn normals(n: usize, stream: u64) -> Vec<f64> {
    let d = Normal::new(0.0, 1.0).expect("valid normal");
    let mut r = rng(stream);
    (0..n).map(|_| d.sample(&mut r)).collect()
}

/// `n` strings drawn uniformly from a vocabulary of `cardinality` strings.
fn strings(n: usize, cardinality: usize, stream: u64) -> Vec<String> {
    let width = (cardinality - 1).to_string().len();
    let vocab: Vec<String> = (0..cardinality)
        .map(|i| format!("value_{i:0width$}"))
        .collect();
    let mut r = rng(stream);
    (0..n)
        .map(|_| vocab[r.random_range(0..cardinality)].clone())
        .collect()
}

fn profile_of_numbers(xs: &[f64]) -> FeatureProfile {
    let mut p = FeatureProfile::default();
    xs.iter().for_each(|&x| p.observe_number(x));
    p
}

fn profile_of_strings(ss: &[String]) -> FeatureProfile {
    let mut p = FeatureProfile::default();
    ss.iter().for_each(|s| p.observe_str(s));
    p
}

fn configure<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    // Iterations take milliseconds: flat sampling keeps the run short and the samples even.
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g
}

fn observe(c: &mut Criterion) {
    let numbers = normals(N, 1);
    let card_100 = strings(N, 100, 2);
    let card_100k = strings(N, 100_000, 3);
    let mut r = rng(4);
    let bools: Vec<bool> = (0..N).map(|_| r.random_bool(0.3)).collect();

    let mut g = configure(c, "observe");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("number_normal_f64", |b| {
        b.iter_batched(
            FeatureProfile::default,
            |mut p| {
                black_box(&numbers)
                    .iter()
                    .for_each(|&x| p.observe_number(x));
                p
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("str_card_100", |b| {
        b.iter_batched(
            FeatureProfile::default,
            |mut p| {
                black_box(&card_100).iter().for_each(|s| p.observe_str(s));
                p
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("str_card_100k", |b| {
        b.iter_batched(
            FeatureProfile::default,
            |mut p| {
                black_box(&card_100k).iter().for_each(|s| p.observe_str(s));
                p
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("bool", |b| {
        b.iter_batched(
            FeatureProfile::default,
            |mut p| {
                black_box(&bools).iter().for_each(|&x| p.observe_bool(x));
                p
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn parse(c: &mut Criterion) {
    // Numeric CSV fields as the generator writes them: shortest round-trip floats and integers.
    let mut r = rng(5);
    let lognormal = LogNormal::new(3.0, 0.8).expect("valid lognormal");
    let texts: Vec<String> = normals(N, 6)
        .into_iter()
        .enumerate()
        .map(|(i, x)| match i % 3 {
            0 => x.to_string(),
            1 => lognormal.sample(&mut r).to_string(),
            _ => r.random_range(0..3650).to_string(),
        })
        .collect();
    let zipf = Zipf::new(1000.0, 1.0).expect("valid zipf");
    let words: Vec<String> = (0..N)
        .map(|_| format!("city_{:03}", zipf.sample(&mut r) as u32 - 1))
        .collect();

    let mut g = configure(c, "parse");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("from_text_numeric", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            for t in black_box(&texts) {
                if let Value::Number(x) = Value::from_text(t) {
                    sum += x;
                }
            }
            sum
        })
    });
    g.bench_function("from_text_string", |b| {
        b.iter(|| {
            black_box(&words)
                .iter()
                .filter(|t| matches!(Value::from_text(t), Value::Str(_)))
                .count()
        })
    });
    // The whole CSV path for one field: parse, then observe.
    g.bench_function("from_text_numeric_then_observe", |b| {
        b.iter_batched(
            FeatureProfile::default,
            |mut p| {
                black_box(&texts)
                    .iter()
                    .for_each(|t| p.observe(Value::from_text(t)));
                p
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn merge(c: &mut Criterion) {
    let numeric = (
        profile_of_numbers(&normals(N, 7)),
        profile_of_numbers(&normals(N, 8)),
    );
    let card_100 = (
        profile_of_strings(&strings(N, 100, 9)),
        profile_of_strings(&strings(N, 100, 10)),
    );
    let card_100k = (
        profile_of_strings(&strings(N, 100_000, 11)),
        profile_of_strings(&strings(N, 100_000, 12)),
    );

    let mut g = configure(c, "merge");
    g.sampling_mode(SamplingMode::Auto).sample_size(30);
    g.throughput(Throughput::Elements(1));
    for (name, (a, b)) in [
        ("numeric_100k_into_100k", &numeric),
        ("str_card_100_100k_into_100k", &card_100),
        ("str_card_100k_100k_into_100k", &card_100k),
    ] {
        g.bench_function(name, |bench| {
            bench.iter_batched(
                || a.clone(),
                |mut a| {
                    a.merge(black_box(b)).expect("profiles merge");
                    a
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

/// A dataset profile shaped like `gen_bench_data`'s table: 10 numeric and 5 string features
/// (cardinalities 5 to 100k), 100k rows.
fn dataset_profile() -> DatasetProfile {
    let mut profiler = Profiler::new("bench", Stage::Offline, Limits::default());
    for i in 0..10u64 {
        let slot = profiler
            .feature(&format!("num_{i}"), Some(Kind::Numeric))
            .expect("feature accepted");
        let p = profiler.slot_mut(slot);
        normals(N, 100 + i)
            .into_iter()
            .for_each(|x| p.observe_number(x * (i + 1) as f64));
    }
    for (i, cardinality) in [5, 100, 1_000, 10_000, 100_000].into_iter().enumerate() {
        let slot = profiler
            .feature(&format!("str_{cardinality}"), Some(Kind::String))
            .expect("feature accepted");
        let p = profiler.slot_mut(slot);
        strings(N, cardinality, 200 + i as u64)
            .iter()
            .for_each(|s| p.observe_str(s));
    }
    profiler.add_rows(N as u64);
    profiler.finish().0
}

fn profile_file(c: &mut Criterion) {
    let profile = dataset_profile();
    let features = profile.features.len() as u64;
    let bytes = file::encode(&profile);
    eprintln!(
        "file: {features} features, encoded profile is {} bytes",
        bytes.len()
    );

    let mut g = configure(c, "file");
    g.sampling_mode(SamplingMode::Auto).sample_size(30);
    g.throughput(Throughput::ElementsAndBytes {
        elements: features,
        bytes: bytes.len() as u64,
    });
    g.bench_function("encode_15_features", |b| {
        b.iter(|| file::encode(black_box(&profile)))
    });
    g.bench_function("decode_15_features", |b| {
        b.iter(|| file::decode(black_box(bytes.as_slice())).expect("decodes"))
    });
    g.finish();
}

criterion_group!(benches, observe, parse, merge, profile_file);
criterion_main!(benches);
