//! False-alarm and detection rates of run-level anomaly detection on long simulated
//! histories: stationary counters (normal, log-normal, Poisson), a weekly rhythm, and drops.
//!
//! `cargo run --release --example anomaly_false_alarms [RUNS]` (default 20,000 runs per case).

use driftd::detect::anomaly::{Point, Policy, Verdict, judge};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, LogNormal, Normal, Poisson};

const DAY: i64 = 86_400_000;

/// Runs `runs` daily runs through the detector with a sliding history of `history` runs, flagged
/// runs marked as driftd marks them; returns the share of flagged runs.
fn flagged_share(
    runs: usize,
    history: usize,
    policy: &Policy,
    mut next: impl FnMut(usize) -> f64,
) -> f64 {
    let mut kept: Vec<Point> = Vec::new();
    let (mut judged, mut flagged) = (0usize, 0usize);
    for i in 0..runs {
        let mut current = Point {
            at_ms: i as i64 * DAY,
            value: next(i),
            flagged: false,
        };
        let start = kept.len().saturating_sub(history);
        if let Verdict::Judged(j) = judge(&kept[start..], current, policy) {
            judged += 1;
            flagged += usize::from(j.anomalous);
            current.flagged = j.anomalous;
        }
        kept.push(current);
    }
    flagged as f64 / judged.max(1) as f64
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let policy = Policy::default();
    println!(
        "threshold {} robust σ, min_runs {}, seasonality auto; {runs} daily runs per case",
        policy.threshold, policy.min_runs
    );
    println!("{:<44} {:>8} {:>12}", "case", "history", "flagged");
    for history in [7usize, 14, 30, 200] {
        let mut rng = StdRng::seed_from_u64(7);
        let normal = Normal::new(10_000.0, 100.0).unwrap();
        let share = flagged_share(runs, history, &policy, |_| normal.sample(&mut rng));
        println!(
            "{:<44} {history:>8} {:>11.3}%",
            "stationary normal(10000, 100)",
            share * 100.0
        );
        let mut rng = StdRng::seed_from_u64(8);
        let lognormal = LogNormal::new(9.0, 0.3).unwrap();
        let share = flagged_share(runs, history, &policy, |_| lognormal.sample(&mut rng));
        println!(
            "{:<44} {history:>8} {:>11.3}%",
            "stationary log-normal(9, 0.3)",
            share * 100.0
        );
        let mut rng = StdRng::seed_from_u64(9);
        let poisson = Poisson::new(50.0).unwrap();
        let share = flagged_share(runs, history, &policy, |_| poisson.sample(&mut rng));
        println!(
            "{:<44} {history:>8} {:>11.3}%",
            "stationary Poisson(50) (rows_dropped)",
            share * 100.0
        );
        let mut rng = StdRng::seed_from_u64(10);
        let noise = Normal::new(0.0, 150.0).unwrap();
        let share = flagged_share(runs, history.max(35), &policy, |i| {
            let weekend = (i + 3) % 7 >= 5;
            (if weekend { 5_000.0 } else { 10_000.0 }) + noise.sample(&mut rng)
        });
        println!(
            "{:<44} {:>8} {:>11.3}%",
            "weekly rhythm (weekends half), normal noise",
            history.max(35),
            share * 100.0
        );
    }
    // Detection: one run in 50 reads a tenth of its rows (or 70 %, or 95 %).
    for (label, factor) in [
        ("drop to 10 %", 0.1),
        ("drop to 70 %", 0.7),
        ("drop to 95 %", 0.95),
    ] {
        let mut rng = StdRng::seed_from_u64(11);
        let normal = Normal::new(10_000.0, 100.0).unwrap();
        let (mut drops, mut caught, mut kept) = (0usize, 0usize, Vec::<Point>::new());
        let (mut normal_runs, mut false_alarms) = (0usize, 0usize);
        for i in 0..runs {
            let dropped = i >= 30 && i % 50 == 0;
            let value = normal.sample(&mut rng) * if dropped { factor } else { 1.0 };
            let mut current = Point {
                at_ms: i as i64 * DAY,
                value,
                flagged: false,
            };
            let start = kept.len().saturating_sub(30);
            if let Verdict::Judged(j) = judge(&kept[start..], current, &policy) {
                if dropped {
                    drops += 1;
                    caught += usize::from(j.anomalous);
                } else {
                    normal_runs += 1;
                    false_alarms += usize::from(j.anomalous);
                }
                current.flagged = j.anomalous;
            }
            kept.push(current);
        }
        println!(
            "{label:<44} {:>8} caught {:.1}% of {drops}, false alarms {:.3}%",
            30,
            caught as f64 * 100.0 / drops as f64,
            false_alarms as f64 * 100.0 / normal_runs as f64
        );
    }
}
