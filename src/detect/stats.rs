//! Distances and tests between two distributions, computed from what profiles keep.
//!
//! Discrete distributions are slices of fractions (or counts) over the same bins, reference
//! first. Numeric distributions are `StepCdf`s: right-continuous step functions read off the
//! quantile sketches. Everything here is pure.

use statrs::distribution::{ChiSquared, ContinuousCDF};

/// Fractions below this are raised to it before PSI's logarithm, so an empty bin on one side
/// gives a large but finite term. 1e-4 is the customary floor (one in ten thousand).
pub const PSI_FLOOR: f64 = 1e-4;

/// Population stability index: Σ (q − p) · ln(q / p), p the reference fractions, q the current,
/// both floored at `PSI_FLOOR`.
pub fn psi(p: &[f64], q: &[f64]) -> f64 {
    p.iter()
        .zip(q)
        .map(|(&p, &q)| {
            let (p, q) = (p.max(PSI_FLOOR), q.max(PSI_FLOOR));
            (q - p) * (q / p).ln()
        })
        .sum()
}

/// Jensen–Shannon distance with base-2 logarithms: the square root of the JS divergence,
/// between 0 (same) and 1 (disjoint). Inputs are normalised first.
pub fn js_distance(p: &[f64], q: &[f64]) -> f64 {
    let (sp, sq) = (p.iter().sum::<f64>(), q.iter().sum::<f64>());
    if sp <= 0.0 || sq <= 0.0 {
        return 0.0;
    }
    let kl_to_mid = |a: f64, m: f64| if a > 0.0 { a * (a / m).log2() } else { 0.0 };
    let divergence: f64 = p
        .iter()
        .zip(q)
        .map(|(&p, &q)| {
            let (p, q) = (p / sp, q / sq);
            let m = (p + q) / 2.0;
            (kl_to_mid(p, m) + kl_to_mid(q, m)) / 2.0
        })
        .sum();
    divergence.clamp(0.0, 1.0).sqrt()
}

/// Hellinger distance, between 0 and 1: sqrt(1 − Σ sqrt(p·q)) over normalised inputs.
pub fn hellinger(p: &[f64], q: &[f64]) -> f64 {
    let (sp, sq) = (p.iter().sum::<f64>(), q.iter().sum::<f64>());
    if sp <= 0.0 || sq <= 0.0 {
        return 0.0;
    }
    let bc: f64 = p
        .iter()
        .zip(q)
        .map(|(&p, &q)| (p / sp * q / sq).sqrt())
        .sum();
    (1.0 - bc).max(0.0).sqrt()
}

/// L∞ distance: the largest difference of one bin's fraction (inputs normalised).
pub fn linf(p: &[f64], q: &[f64]) -> f64 {
    let (sp, sq) = (p.iter().sum::<f64>(), q.iter().sum::<f64>());
    if sp <= 0.0 || sq <= 0.0 {
        return 0.0;
    }
    p.iter()
        .zip(q)
        .map(|(&p, &q)| (p / sp - q / sq).abs())
        .fold(0.0, f64::max)
}

/// Pearson's χ² test of homogeneity on a 2 × k table of counts (no continuity correction, as
/// scipy's `chi2_contingency(correction=False)`). Bins empty on both sides are skipped.
/// Returns (statistic, degrees of freedom, p-value), or `None` with fewer than two bins or
/// an empty side.
pub fn chi2_homogeneity(reference: &[f64], current: &[f64]) -> Option<(f64, u64, f64)> {
    let (nr, nc) = (reference.iter().sum::<f64>(), current.iter().sum::<f64>());
    let n = nr + nc;
    if nr <= 0.0 || nc <= 0.0 {
        return None;
    }
    let mut stat = 0.0;
    let mut bins = 0u64;
    for (&r, &c) in reference.iter().zip(current) {
        let total = r + c;
        if total <= 0.0 {
            continue;
        }
        bins += 1;
        let (er, ec) = (total * nr / n, total * nc / n);
        stat += (r - er).powi(2) / er + (c - ec).powi(2) / ec;
    }
    if bins < 2 {
        return None;
    }
    let dof = bins - 1;
    let p = ChiSquared::new(dof as f64).ok()?.sf(stat);
    Some((stat, dof, p))
}

/// Survival function of the Kolmogorov distribution, P(K > λ): the asymptotic two-sided
/// Kolmogorov–Smirnov p-value for λ = sqrt(n·m / (n + m)) · D (scipy's `kstwobign.sf`).
pub fn kolmogorov_sf(lambda: f64) -> f64 {
    if lambda.is_nan() {
        return f64::NAN;
    }
    if lambda <= 0.0 {
        return 1.0;
    }
    if lambda < 1.0 {
        // Small λ: the alternating series converges slowly; use the Jacobi theta form of the CDF.
        let c = std::f64::consts::PI.powi(2) / (8.0 * lambda * lambda);
        let cdf = (2.0 * std::f64::consts::PI).sqrt() / lambda
            * (1..=8)
                .map(|j| (-((2 * j - 1) as f64).powi(2) * c).exp())
                .sum::<f64>();
        return (1.0 - cdf).clamp(0.0, 1.0);
    }
    let sum: f64 = (1..=100)
        .map(|j| {
            let sign = if j % 2 == 1 { 1.0 } else { -1.0 };
            sign * (-2.0 * (j * j) as f64 * lambda * lambda).exp()
        })
        .sum();
    (2.0 * sum).clamp(0.0, 1.0)
}

/// Two-sample KS p-value (asymptotic) for statistic `d` between samples of `n` and `m`.
pub fn ks_p_value(d: f64, n: u64, m: u64) -> Option<f64> {
    if n == 0 || m == 0 {
        return None;
    }
    let (n, m) = (n as f64, m as f64);
    Some(kolmogorov_sf((n * m / (n + m)).sqrt() * d))
}

/// A right-continuous step CDF: `F(x)` is the fraction of values `<= x`.
#[derive(Debug, Clone, PartialEq)]
pub struct StepCdf {
    /// Jump points, strictly increasing.
    points: Vec<f64>,
    /// F at each point, non-decreasing, the last is 1.
    cumulative: Vec<f64>,
}

impl StepCdf {
    /// From (value, F(value)) pairs in increasing order of value.
    pub fn new(points: Vec<f64>, cumulative: Vec<f64>) -> Option<StepCdf> {
        (!points.is_empty() && points.len() == cumulative.len())
            .then_some(StepCdf { points, cumulative })
    }

    /// The empirical CDF of a sample (for tests and exact references).
    pub fn of_sample(values: &[f64]) -> Option<StepCdf> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let mut points = Vec::new();
        let mut cumulative = Vec::new();
        for (i, &x) in sorted.iter().enumerate() {
            if points.last() == Some(&x) {
                *cumulative.last_mut().expect("same length") = (i + 1) as f64 / n;
            } else {
                points.push(x);
                cumulative.push((i + 1) as f64 / n);
            }
        }
        StepCdf::new(points, cumulative)
    }

    pub fn points(&self) -> &[f64] {
        &self.points
    }

    /// F(x): the fraction of values `<= x`.
    pub fn at(&self, x: f64) -> f64 {
        match self.points.partition_point(|p| *p <= x) {
            0 => 0.0,
            i => self.cumulative[i - 1],
        }
    }

    /// Fractions of the values in the bins (−∞, e₀], (e₀, e₁], …, (eₖ, ∞).
    pub fn bin_fractions(&self, edges: &[f64]) -> Vec<f64> {
        let mut previous = 0.0;
        let mut fractions: Vec<f64> = edges
            .iter()
            .map(|&e| {
                let f = self.at(e);
                let share = (f - previous).max(0.0);
                previous = f;
                share
            })
            .collect();
        fractions.push((1.0 - previous).max(0.0));
        fractions
    }
}

/// Walks the union of both CDFs' jump points in order, calling `visit(x, F(x), G(x), next_x)`.
fn walk(a: &StepCdf, b: &StepCdf, mut visit: impl FnMut(f64, f64, f64, Option<f64>)) {
    let (mut i, mut j) = (0, 0);
    let (mut fa, mut fb) = (0.0, 0.0);
    while i < a.points.len() || j < b.points.len() {
        let x = match (a.points.get(i), b.points.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => unreachable!(),
        };
        while i < a.points.len() && a.points[i] <= x {
            fa = a.cumulative[i];
            i += 1;
        }
        while j < b.points.len() && b.points[j] <= x {
            fb = b.cumulative[j];
            j += 1;
        }
        let next = match (a.points.get(i), b.points.get(j)) {
            (Some(&x), Some(&y)) => Some(x.min(y)),
            (Some(&x), None) => Some(x),
            (None, Some(&y)) => Some(y),
            (None, None) => None,
        };
        visit(x, fa, fb, next);
    }
}

/// Two-sample Kolmogorov–Smirnov statistic: sup |F(x) − G(x)|.
pub fn ks_statistic(a: &StepCdf, b: &StepCdf) -> f64 {
    let mut d: f64 = 0.0;
    walk(a, b, |_, fa, fb, _| d = d.max((fa - fb).abs()));
    d
}

/// Wasserstein-1 (earth mover's) distance: ∫ |F(x) − G(x)| dx.
pub fn wasserstein(a: &StepCdf, b: &StepCdf) -> f64 {
    let mut w = 0.0;
    walk(a, b, |x, fa, fb, next| {
        if let Some(next) = next {
            w += (fa - fb).abs() * (next - x);
        }
    });
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_distributions_are_at_distance_zero() {
        let p = [0.2, 0.3, 0.5];
        assert_eq!(psi(&p, &p), 0.0);
        assert_eq!(js_distance(&p, &p), 0.0);
        assert!(hellinger(&p, &p) < 1e-7);
        assert_eq!(linf(&p, &p), 0.0);
        let a = StepCdf::of_sample(&[1.0, 2.0, 2.0, 5.0]).unwrap();
        assert_eq!(ks_statistic(&a, &a), 0.0);
        assert_eq!(wasserstein(&a, &a), 0.0);
    }

    #[test]
    fn disjoint_distributions_are_at_the_maximum() {
        let (p, q) = ([1.0, 0.0], [0.0, 1.0]);
        assert!((js_distance(&p, &q) - 1.0).abs() < 1e-12);
        assert!((hellinger(&p, &q) - 1.0).abs() < 1e-12);
        assert_eq!(linf(&p, &q), 1.0);
        let a = StepCdf::of_sample(&[0.0, 1.0]).unwrap();
        let b = StepCdf::of_sample(&[10.0, 11.0]).unwrap();
        assert_eq!(ks_statistic(&a, &b), 1.0);
        assert!((wasserstein(&a, &b) - 10.0).abs() < 1e-12);
    }

    #[test]
    fn kolmogorov_branches_meet() {
        // Both forms of the distribution agree where they switch.
        let below = kolmogorov_sf(1.0 - 1e-12);
        let above = kolmogorov_sf(1.0);
        assert!((below - above).abs() < 1e-9, "{below} vs {above}");
        assert_eq!(kolmogorov_sf(0.0), 1.0);
        assert!(kolmogorov_sf(10.0) < 1e-80);
    }
}
