//! Mergeable first and second moments (count, mean, sum of squared deviations).
//!
//! Updates use Welford's recurrence and merges use the pairwise formula of Chan, Golub and
//! LeVeque, so profiling parts and merging them gives the same mean and variance as profiling
//! the whole, up to floating-point rounding, in any order.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    n: u64,
    mean: f64,
    /// Sum of squared deviations from the mean.
    m2: f64,
}

/// Moments whose mean overflowed: the mean and the variance are unknown from then on, and
/// stay so through updates and merges. Both parts are +∞, which every reader of the profile
/// file accepts (a NaN, or a negative sum of squares, is refused as corrupt).
const OVERFLOWED: (f64, f64) = (f64::INFINITY, f64::INFINITY);

impl Moments {
    /// Adds one finite value.
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        if !self.mean.is_finite() {
            return;
        }
        let delta = x - self.mean;
        if delta.is_finite() {
            self.mean += delta / self.n as f64;
        } else {
            // Values of opposite signs near f64::MAX: their difference overflows, their mean
            // does not.
            self.mean += x / self.n as f64 - self.mean / self.n as f64;
        }
        // An overflowing delta makes the sum of squares +∞ (the variance did overflow).
        self.m2 += delta * (x - self.mean);
        self.settle();
    }

    /// Keeps an overflowed mean, or a sum of squares that is no longer a number, in the one
    /// state the profile file reads back: +∞ for both.
    fn settle(&mut self) {
        if !self.mean.is_finite() || self.m2.is_nan() {
            (self.mean, self.m2) = OVERFLOWED;
        }
    }

    pub fn merge(&mut self, other: &Moments) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *other;
            return;
        }
        let n = self.n + other.n;
        if !self.mean.is_finite() || !other.mean.is_finite() {
            self.n = n;
            (self.mean, self.m2) = OVERFLOWED;
            return;
        }
        let (na, nb, nf) = (self.n as f64, other.n as f64, n as f64);
        let delta = other.mean - self.mean;
        // Weighted mean rather than `mean + delta * nb / n`: it is symmetric in the two sides,
        // which keeps merge commutative to the last bit.
        self.mean = (self.mean * na + other.mean * nb) / nf;
        if !self.mean.is_finite() {
            self.mean = (self.mean / nf) * na + (other.mean / nf) * nb;
        }
        self.m2 = self.m2 + other.m2 + delta * delta * (na * nb / nf);
        self.n = n;
        self.settle();
    }

    pub fn count(&self) -> u64 {
        self.n
    }

    /// The arithmetic mean, `None` without values or when it overflowed.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0 && self.mean.is_finite()).then_some(self.mean)
    }

    /// Sample variance (divisor n - 1), `None` below two values or when it overflowed.
    pub fn sample_variance(&self) -> Option<f64> {
        if self.n < 2 {
            return None;
        }
        let v = (self.m2 / (self.n - 1) as f64).max(0.0);
        v.is_finite().then_some(v)
    }

    pub fn sample_stddev(&self) -> Option<f64> {
        self.sample_variance().map(f64::sqrt)
    }

    /// Raw parts, for the profile file.
    pub(crate) fn parts(&self) -> (u64, f64, f64) {
        (self.n, self.mean, self.m2)
    }

    pub(crate) fn from_parts(n: u64, mean: f64, m2: f64) -> Option<Self> {
        let consistent = if n == 0 {
            mean == 0.0 && m2 == 0.0
        } else {
            !mean.is_nan() && !m2.is_nan() && m2 >= 0.0
        };
        let mut moments = Moments { n, mean, m2 };
        // A mean of -∞ (written by nothing, read all the same) is the overflowed state too.
        moments.settle();
        consistent.then_some(moments)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var)
    }

    #[test]
    fn matches_two_pass_computation() {
        let xs: Vec<f64> = (0..1000).map(|i| 1e6 + (i as f64).sin() * 3.0).collect();
        let mut m = Moments::default();
        xs.iter().for_each(|&x| m.push(x));
        let (mean, var) = exact(&xs);
        assert!((m.mean().unwrap() - mean).abs() / mean < 1e-12);
        assert!((m.sample_variance().unwrap() - var).abs() / var < 1e-9);
    }

    #[test]
    fn merge_of_parts_equals_whole() {
        let xs: Vec<f64> = (0..999)
            .map(|i| (i as f64 * 0.37).cos() * 10.0 + 5.0)
            .collect();
        let mut whole = Moments::default();
        xs.iter().for_each(|&x| whole.push(x));
        let mut parts: Vec<Moments> = xs
            .chunks(97)
            .map(|c| {
                let mut m = Moments::default();
                c.iter().for_each(|&x| m.push(x));
                m
            })
            .collect();
        let mut merged = Moments::default();
        parts.drain(..).for_each(|p| merged.merge(&p));
        assert_eq!(merged.count(), 999);
        let rel = |a: f64, b: f64| (a - b).abs() / b.abs();
        assert!(rel(merged.mean().unwrap(), whole.mean().unwrap()) < 1e-12);
        assert!(
            rel(
                merged.sample_variance().unwrap(),
                whole.sample_variance().unwrap()
            ) < 1e-12
        );
    }

    #[test]
    fn undefined_statistics_are_none() {
        let mut m = Moments::default();
        assert_eq!(m.mean(), None);
        m.push(4.0);
        assert_eq!(m.mean(), Some(4.0));
        assert_eq!(m.sample_variance(), None);
        m.push(1e308);
        m.push(-1e308);
        m.push(1e308);
        assert_eq!(
            m.sample_variance(),
            None,
            "overflowed variance is reported as unknown"
        );
    }

    /// Values of both signs near f64::MAX once made the mean -∞ and then NaN, which the
    /// profile file refuses: a profile of such values could be written but not read back.
    #[test]
    fn overflow_is_a_state_the_file_reads_back() {
        let mut m = Moments::default();
        for x in [1e308, -1e308, 5e-324, 1.0, -1e308, 1e308] {
            m.push(x);
            let (n, mean, m2) = m.parts();
            assert!(Moments::from_parts(n, mean, m2).is_some(), "{m:?}");
        }
        assert_eq!(m.count(), 6);
        assert!(m.mean().is_some_and(f64::is_finite), "{m:?}");
        assert_eq!(m.sample_variance(), None);

        let mut huge = Moments::default();
        [f64::MAX, f64::MAX].iter().for_each(|&x| huge.push(x));
        assert_eq!(huge.mean(), Some(f64::MAX));
        huge.push(f64::MAX);
        let mut other = Moments::default();
        other.push(-f64::MAX);
        for (a, b) in [(huge, other), (other, huge)] {
            let mut merged = a;
            merged.merge(&b);
            let (n, mean, m2) = merged.parts();
            assert_eq!(n, 4);
            assert!(Moments::from_parts(n, mean, m2).is_some(), "{merged:?}");
        }
        let mut overflowed = Moments::from_parts(2, f64::NEG_INFINITY, 1.0).unwrap();
        assert_eq!(overflowed.parts(), (2, f64::INFINITY, f64::INFINITY));
        overflowed.push(3.0);
        overflowed.merge(&other);
        assert_eq!(overflowed.parts(), (4, f64::INFINITY, f64::INFINITY));
        assert_eq!(
            (overflowed.mean(), overflowed.sample_variance()),
            (None, None)
        );
    }
}
