//! Run-level anomaly detection: is one offline run's value of a counter (or of a run metric such
//! as its row count) in line with the runs before it?
//!
//! The baseline is robust: the median of earlier runs and their median absolute deviation
//! (scaled to a standard deviation), so one odd run in the history moves neither. Runs flagged
//! earlier (and not acknowledged) are left out of it. A median and a MAD of a few runs are
//! themselves uncertain, so the range widens for short histories: × (1 + 11 / (n − 4)) for n
//! earlier runs, a fit to the 99.9th percentile of |x − median| / σ̂ over normal samples of size n
//! (×4.7 at n = 7, ×1.4 at n = 30, ×1.06 at n = 200); without it, 5 % of normal runs would be
//! flagged at n = 7. When runs
//! have a daily or weekly rhythm (fewer rows at night, on Sundays), the run is compared with
//! earlier runs of the same hour of day or weekday — but only when the history shows that rhythm:
//! predicting each earlier run from its season must halve the mean absolute error of predicting
//! it from the overall median. (The MAD alone cannot tell: when weekends are two days in seven,
//! the overall MAD describes weekdays only, and every Saturday would look broken.) An absolute and a relative
//! floor keep tiny changes from ever counting.
//!
//! Pure code: no clock, no I/O; times are the runs' own timestamps (UTC).

use serde::{Deserialize, Serialize};

/// One earlier (or the current) run's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// When the run ran (its logical time), in ms since the epoch.
    pub at_ms: i64,
    pub value: f64,
    /// Flagged as anomalous and not acknowledged: left out of the overall baseline.
    pub flagged: bool,
}

pub use crate::rules::{DEFAULT_MIN_RUNS, DEFAULT_THRESHOLD, Policy, Seasonality};

/// Earlier runs of the same hour or weekday needed for a seasonal baseline.
pub const SEASON_MIN_RUNS: usize = 4;

/// Which earlier runs the expectation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "of", rename_all = "lowercase")]
pub enum Baseline {
    /// Every earlier run in the history.
    All,
    /// Earlier runs at the same hour of day (UTC, 0–23).
    Hour(u32),
    /// Earlier runs on the same weekday (0 = Monday).
    Weekday(u32),
}

impl Baseline {
    /// "earlier runs", "earlier 14:00 runs", "earlier Monday runs".
    pub fn describe(self) -> String {
        const DAYS: [&str; 7] = [
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
        ];
        match self {
            Baseline::All => "earlier runs".into(),
            Baseline::Hour(h) => format!("earlier {h:02}:00 UTC runs"),
            Baseline::Weekday(d) => format!("earlier {} runs", DAYS[d as usize % 7]),
        }
    }
}

/// A judged run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Judgement {
    pub value: f64,
    pub expected: f64,
    pub low: f64,
    pub high: f64,
    /// Earlier runs the expectation is made of.
    pub runs: usize,
    pub baseline: Baseline,
    pub anomalous: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Too few earlier runs to judge.
    Learning {
        runs: usize,
        needed: usize,
    },
    Judged(Judgement),
}

/// Judges `current` against `history` (earlier runs, in any order).
///
/// Flagged runs stay out of the overall baseline, so that anomalies do not become the new
/// normal. Seasonal baselines are medians per season, which a few flagged runs cannot move;
/// they learn from every run, so a weekly rhythm that the overall baseline first flagged (every
/// Saturday, say) is learnt without anyone acknowledging each Saturday.
pub fn judge(history: &[Point], current: Point, policy: &Policy) -> Verdict {
    let needed = policy.min_runs.max(1);
    let values: Vec<f64> = history
        .iter()
        .filter(|p| !p.flagged)
        .map(|p| p.value)
        .collect();
    if values.len() < needed {
        return Verdict::Learning {
            runs: values.len(),
            needed,
        };
    }
    let center = median(&values);
    let mut chosen = (
        Baseline::All,
        center,
        robust_scale(&values, center) * small_sample(values.len()),
        values.len(),
    );
    if let Some(seasonal) = seasonal(history, current, policy.seasonality) {
        let all: Vec<f64> = history.iter().map(|p| p.value).collect();
        let overall = median(&all);
        let overall_error = all.iter().map(|v| (v - overall).abs()).sum::<f64>() / all.len() as f64;
        if policy.seasonality != Seasonality::Auto || seasonal.error < 0.5 * overall_error {
            // The season's median is itself uncertain (its variance is about π/2 · σ²/m).
            let center_error = (1.0 + std::f64::consts::FRAC_PI_2 / seasonal.runs as f64).sqrt();
            chosen = (
                seasonal.baseline,
                seasonal.expected,
                seasonal.scale * small_sample(seasonal.residuals) * center_error,
                seasonal.runs,
            );
        }
    }
    let (baseline, expected, scale, runs) = chosen;
    let half_width = (policy.threshold * scale)
        .max(policy.min_change)
        .max(policy.min_relative_change * expected.abs());
    let (low, high) = (expected - half_width, expected + half_width);
    Verdict::Judged(Judgement {
        value: current.value,
        expected,
        low,
        high,
        runs,
        baseline,
        anomalous: current.value < low || current.value > high,
    })
}

/// A seasonal baseline for one run.
struct Seasonal {
    baseline: Baseline,
    /// The median of earlier runs in the run's season.
    expected: f64,
    /// The robust spread of every earlier run around its own season's median.
    scale: f64,
    /// The mean absolute error of those predictions.
    error: f64,
    runs: usize,
    /// Earlier runs the spread was measured on.
    residuals: usize,
}

/// How much wider the range is for a baseline of `n` runs (see the module documentation).
fn small_sample(n: usize) -> f64 {
    1.0 + 11.0 / (n.saturating_sub(4).max(1)) as f64
}

/// The seasonal baseline for `current`. Each earlier run is predicted from the other runs of
/// its season (leaving it out, so small seasons do not look tighter than they are). `None` when
/// the history has too few runs in the current run's season.
fn seasonal(history: &[Point], current: Point, seasonality: Seasonality) -> Option<Seasonal> {
    let season: fn(i64) -> Baseline = match seasonality {
        Seasonality::None => return None,
        Seasonality::Hour => hour_of,
        Seasonality::Weekday => weekday_of,
        Seasonality::Auto => {
            let mut times: Vec<i64> = history.iter().map(|p| p.at_ms).collect();
            times.sort_unstable();
            let gaps: Vec<f64> = times.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
            if gaps.is_empty() {
                return None;
            }
            let gap = median(&gaps);
            const HOUR: f64 = 3_600_000.0;
            if gap < 20.0 * HOUR {
                hour_of
            } else if gap <= 84.0 * HOUR {
                weekday_of
            } else {
                return None;
            }
        }
    };
    let mut groups: std::collections::HashMap<Baseline, Vec<f64>> = Default::default();
    for p in history {
        groups.entry(season(p.at_ms)).or_default().push(p.value);
    }
    let own = season(current.at_ms);
    let mine = groups.get(&own).filter(|g| g.len() >= SEASON_MIN_RUNS)?;
    let expected = median(mine);
    let mut residuals = Vec::new();
    for group in groups.values().filter(|g| g.len() >= SEASON_MIN_RUNS) {
        for i in 0..group.len() {
            let others: Vec<f64> = group
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, v)| *v)
                .collect();
            residuals.push(group[i] - median(&others));
        }
    }
    let center = median(&residuals);
    Some(Seasonal {
        baseline: own,
        expected,
        scale: robust_scale(&residuals, center),
        error: residuals.iter().map(|r| r.abs()).sum::<f64>() / residuals.len() as f64,
        runs: mine.len(),
        residuals: residuals.len(),
    })
}

fn hour_of(ms: i64) -> Baseline {
    Baseline::Hour((ms.div_euclid(3_600_000)).rem_euclid(24) as u32)
}

fn weekday_of(ms: i64) -> Baseline {
    // 1970-01-01 was a Thursday (3 when Monday is 0).
    Baseline::Weekday((ms.div_euclid(86_400_000) + 3).rem_euclid(7) as u32)
}

/// The median; `values` must not be empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A robust standard deviation around `center`: 1.4826 × the median absolute deviation, which
/// estimates σ for normal data; when more than half the values equal the center (MAD = 0), the
/// mean absolute deviation × 1.2533 instead, so one earlier outlier still gives a scale.
pub fn robust_scale(values: &[f64], center: f64) -> f64 {
    let deviations: Vec<f64> = values.iter().map(|v| (v - center).abs()).collect();
    let mad = median(&deviations);
    if mad > 0.0 {
        1.4826 * mad
    } else {
        1.2533 * deviations.iter().sum::<f64>() / deviations.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;
    const HOUR: i64 = 3_600_000;

    fn daily(values: &[f64]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Point {
                at_ms: i as i64 * DAY,
                value: *v,
                flagged: false,
            })
            .collect()
    }

    fn judged(v: Verdict) -> Judgement {
        match v {
            Verdict::Judged(j) => j,
            other => panic!("expected a judgement, got {other:?}"),
        }
    }

    #[test]
    fn median_and_scale_are_exact() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        // |x − 3| = 2, 1, 0, 1, 97 → MAD 1 → 1.4826.
        let v = [1.0, 2.0, 3.0, 4.0, 100.0];
        assert!((robust_scale(&v, 3.0) - 1.4826).abs() < 1e-12);
        // MAD 0 (three of four equal): mean absolute deviation 25 / 4 × 1.2533.
        let v = [10.0, 10.0, 10.0, 35.0];
        assert!((robust_scale(&v, 10.0) - 1.2533 * 6.25).abs() < 1e-12);
    }

    #[test]
    fn learns_until_enough_runs() {
        let history = daily(&[100.0; 6]);
        let current = Point {
            at_ms: 6 * DAY,
            value: 1.0,
            flagged: false,
        };
        assert_eq!(
            judge(&history, current, &Policy::default()),
            Verdict::Learning { runs: 6, needed: 7 }
        );
    }

    #[test]
    fn range_is_median_plus_minus_threshold_scaled_mads() {
        // Median 1000, |x − 1000| = 0,10,10,20,20,30,40 → MAD 20 → σ̂ 29.652.
        let history = daily(&[1000.0, 990.0, 1010.0, 980.0, 1020.0, 970.0, 1040.0]);
        let j = judged(judge(
            &history,
            Point {
                at_ms: 7 * DAY,
                value: 1100.0,
                flagged: false,
            },
            &Policy {
                seasonality: Seasonality::None,
                ..Policy::default()
            },
        ));
        assert_eq!(j.expected, 1000.0);
        // Seven runs widen the range by 1 + 11 / 3.
        let half = 4.0 * 1.4826 * 20.0 * (1.0 + 11.0 / 3.0);
        assert!((j.high - (1000.0 + half)).abs() < 1e-9);
        assert!((j.low - (1000.0 - half)).abs() < 1e-9);
        assert!(!j.anomalous, "1100 is inside 723.3–1276.7");
        let j = judged(judge(
            &history,
            Point {
                at_ms: 7 * DAY,
                value: 100.0,
                flagged: false,
            },
            &Policy::default(),
        ));
        assert!(j.anomalous, "a tenth of the usual rows: {j:?}");
        assert_eq!(j.runs, 7);
    }

    #[test]
    fn an_outlier_in_the_history_does_not_move_the_baseline() {
        let history = daily(&[
            1000.0,
            1010.0,
            990.0,
            1005.0,
            995.0,
            1_000_000.0,
            1000.0,
            1002.0,
        ]);
        let j = judged(judge(
            &history,
            Point {
                at_ms: 8 * DAY,
                value: 500.0,
                flagged: false,
            },
            &Policy::default(),
        ));
        assert!(j.anomalous && j.high < 1200.0, "{j:?}");
    }

    #[test]
    fn floors_keep_tiny_changes_quiet() {
        // A constant history: any change is outside a zero-width range…
        let history = daily(&[50.0; 10]);
        let current = Point {
            at_ms: 10 * DAY,
            value: 51.0,
            flagged: false,
        };
        assert!(judged(judge(&history, current, &Policy::default())).anomalous);
        // …unless it is below the absolute or the relative floor.
        let floor = Policy {
            min_change: 2.0,
            ..Policy::default()
        };
        assert!(!judged(judge(&history, current, &floor)).anomalous);
        let relative = Policy {
            min_relative_change: 0.05,
            ..Policy::default()
        };
        let j = judged(judge(&history, current, &relative));
        assert!(!j.anomalous && (j.high - 52.5).abs() < 1e-12, "{j:?}");
    }

    /// Daily runs over ten weeks with half the rows on weekends (days 5, 6 of each week: the
    /// epoch's weekday 3 is Thursday, so day i is weekday (i + 3) % 7).
    fn weekly() -> Vec<Point> {
        (0..70)
            .map(|i| {
                let weekday = (i + 3) % 7;
                let base = if weekday >= 5 { 5_000.0 } else { 10_000.0 };
                Point {
                    at_ms: i * DAY,
                    value: base + ((i * 37) % 11) as f64 * 20.0 - 100.0,
                    flagged: false,
                }
            })
            .collect()
    }

    #[test]
    fn weekly_rhythm_is_learnt_when_the_history_shows_it() {
        let history = weekly();
        // Day 70 is weekday (70 + 3) % 7 = 3 (Thursday): a weekend-sized Thursday is odd.
        let thursday = Point {
            at_ms: 70 * DAY,
            value: 5_000.0,
            flagged: false,
        };
        let j = judged(judge(&history, thursday, &Policy::default()));
        assert_eq!(j.baseline, Baseline::Weekday(3));
        assert!(j.anomalous, "{j:?}");
        // A normal Saturday (day 72) is quiet, though globally it would be far from the median.
        let saturday = Point {
            at_ms: 72 * DAY,
            value: 5_050.0,
            flagged: false,
        };
        let j = judged(judge(&history, saturday, &Policy::default()));
        assert_eq!(j.baseline, Baseline::Weekday(5));
        assert!(
            !j.anomalous && (j.expected - 5_000.0).abs() <= 100.0,
            "{j:?}"
        );
        // Without seasonality the overall MAD describes weekdays only: every Saturday would
        // be flagged.
        let flat = Policy {
            seasonality: Seasonality::None,
            ..Policy::default()
        };
        let j = judged(judge(&history, saturday, &flat));
        assert_eq!(j.baseline, Baseline::All);
        assert!(j.anomalous, "{j:?}");
    }

    #[test]
    fn no_rhythm_no_seasonal_baseline() {
        // Hourly runs with noise but no daily pattern: the seasonal spread is not smaller.
        let history: Vec<Point> = (0..24 * 8)
            .map(|i| Point {
                at_ms: i * HOUR,
                value: 1_000.0 + ((i * 7919) % 101) as f64,
                flagged: false,
            })
            .collect();
        let j = judged(judge(
            &history,
            Point {
                at_ms: 24 * 8 * HOUR,
                value: 1_050.0,
                flagged: false,
            },
            &Policy::default(),
        ));
        assert_eq!(j.baseline, Baseline::All);
        assert!(!j.anomalous);
        // Asked for explicitly, the hour of day is used anyway.
        let hourly = Policy {
            seasonality: Seasonality::Hour,
            ..Policy::default()
        };
        let j = judged(judge(
            &history,
            Point {
                at_ms: 24 * 8 * HOUR,
                value: 1_050.0,
                flagged: false,
            },
            &hourly,
        ));
        assert_eq!(j.baseline, Baseline::Hour(0));
        assert_eq!(j.runs, 8);
    }

    #[test]
    fn weekdays_and_hours_are_utc() {
        // 2026-11-27T08:26:00Z is a Friday.
        let ms = 1_795_767_960_000;
        assert_eq!(weekday_of(ms), Baseline::Weekday(4));
        assert_eq!(hour_of(ms), Baseline::Hour(8));
        assert_eq!(weekday_of(-DAY), Baseline::Weekday(2));
    }

    /// Runs a long history through the detector as driftd does (a window of 30 earlier runs,
    /// flagged runs marked); returns the share of runs flagged.
    fn flagged_share(values: &[f64]) -> f64 {
        let mut kept: Vec<Point> = Vec::new();
        let (mut judged, mut flagged) = (0, 0);
        for (i, v) in values.iter().enumerate() {
            let mut current = Point {
                at_ms: i as i64 * DAY,
                value: *v,
                flagged: false,
            };
            let start = kept.len().saturating_sub(30);
            if let Verdict::Judged(j) = judge(&kept[start..], current, &Policy::default()) {
                judged += 1;
                flagged += usize::from(j.anomalous);
                current.flagged = j.anomalous;
            }
            kept.push(current);
        }
        flagged as f64 / judged as f64
    }

    #[test]
    fn stationary_histories_rarely_alarm_and_weekly_rhythms_are_learnt() {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let noise = Normal::new(0.0, 100.0).unwrap();
        let stationary: Vec<f64> = (0..5_000)
            .map(|_| 10_000.0 + noise.sample(&mut rng))
            .collect();
        // Measured 0.005 % at 20,000 runs (examples/anomaly_false_alarms.rs); 0.5 % is the bound.
        assert!(flagged_share(&stationary) < 0.005);
        // Weekends at half volume: flagged at first, then learnt, with nobody acknowledging.
        let weekly: Vec<f64> = (0..2_000)
            .map(|i| {
                let base = if (i + 3) % 7 >= 5 { 5_000.0 } else { 10_000.0 };
                base + noise.sample(&mut rng)
            })
            .collect();
        assert!(flagged_share(&weekly) < 0.01);
    }

    #[test]
    fn a_daily_rhythm_of_hourly_runs_is_learnt() {
        // Hourly runs over ten days: 2,000 rows at night (00–05 UTC), 10,000 by day.
        let history: Vec<Point> = (0..240)
            .map(|i| Point {
                at_ms: i * HOUR,
                value: if i % 24 < 6 { 2_000.0 } else { 10_000.0 } + ((i * 7919) % 41) as f64,
                flagged: false,
            })
            .collect();
        let night = |value| Point {
            at_ms: 240 * HOUR + 3 * HOUR,
            value,
            flagged: false,
        };
        let j = judged(judge(&history, night(2_010.0), &Policy::default()));
        assert_eq!(j.baseline, Baseline::Hour(3));
        assert!(!j.anomalous, "{j:?}");
        // A daytime volume at 03:00 is odd.
        assert!(judged(judge(&history, night(10_000.0), &Policy::default())).anomalous);
    }
}
