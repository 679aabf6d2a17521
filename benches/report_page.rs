//! Speed of drawing a comparison as a page: `pictures::render` for two dataset profiles of
//! 1,000 features (600 numeric with 10,000 values each, 300 strings of 50 categories, 100
//! booleans), every tenth feature moved; and the page's size.

use criterion::{Criterion, criterion_group, criterion_main};
use driftd::detect::compare;
use driftd::pictures::{Page, render};
use driftd::profile::{DatasetProfile, Limits, Profiler, Stage, Value};
use driftd::rules::DatasetRules;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

const FEATURES: usize = 1000;
const ROWS: usize = 10_000;

fn profile(seed: u64, moved: bool) -> DatasetProfile {
    let mut rng = StdRng::seed_from_u64(seed);
    let normal = Normal::new(0.0, 1.0).unwrap();
    let labels: Vec<String> = (0..50).map(|i| format!("cat-{i}")).collect();
    let mut p = Profiler::new("wide", Stage::Offline, Limits::default());
    let slots: Vec<usize> = (0..FEATURES)
        .map(|i| p.feature(&format!("f{i:04}"), None).unwrap())
        .collect();
    for _ in 0..ROWS {
        for (i, &slot) in slots.iter().enumerate() {
            let shift = if moved && i % 10 == 0 { 1.0 } else { 0.0 };
            match i % 10 {
                0..6 => p.observe(slot, Value::Number(normal.sample(&mut rng) + shift)),
                6..9 => {
                    let k = (rng.random::<f64>().powf(2.0 - shift) * 50.0) as usize;
                    p.observe(slot, Value::Str(&labels[k.min(49)]));
                }
                _ => p.observe(slot, Value::Bool(rng.random::<f64>() < 0.4 + 0.2 * shift)),
            }
        }
        p.add_rows(1);
    }
    p.finish().0
}

fn bench(c: &mut Criterion) {
    let reference = profile(1, false);
    let current = profile(2, true);
    let report = compare(&reference, &current, &DatasetRules::default());
    let page = Page {
        reference: &reference,
        current: &current,
        report: &report,
        reference_source: "reference.driftprof",
        current_source: "current.driftprof",
        generated_at: None,
    };
    let html = render(&page);
    println!(
        "page of {FEATURES} features: {} bytes ({:.0} bytes a feature)",
        html.len(),
        html.len() as f64 / FEATURES as f64
    );
    let mut group = c.benchmark_group("report_page_1000_features");
    group.sample_size(10);
    group.bench_function("pictures::render", |b| b.iter(|| render(&page)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
