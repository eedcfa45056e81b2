//! The arithmetic behind the summary: relative improvement over a baseline,
//! success at a threshold, means, and bootstrap confidence intervals.
//!
//! Definitions follow the paper's analysis script: improvement is
//! `(score - baseline) / baseline`, sign-flipped for lower-is-better tasks;
//! a run succeeds at t% when its improvement is more than t%; a run without
//! a score fails. The baseline's magnitude is used as the divisor so that a
//! negative baseline keeps "better" meaning better. No grouping or I/O
//! here; see `summary` for that.

use serde::Serialize;

use crate::task::Direction;

/// Success thresholds in percent; 10 is the paper's headline.
pub const THRESHOLDS: [u32; 5] = [5, 10, 15, 20, 30];

/// An improvement must beat the threshold by more than float noise:
/// (0.55 - 0.5) / 0.5 is 0.10000000000000009, which is 10%, not more.
const EPS: f64 = 1e-9;

/// Bootstrap resamples per interval.
pub const BOOTSTRAP_RESAMPLES: usize = 10_000;

/// Relative improvement of `score` over `baseline` (0.1 = 10% better).
/// `None` when it is undefined: a zero or non-finite baseline or score.
pub fn improvement(score: f64, baseline: f64, direction: Direction) -> Option<f64> {
    if baseline == 0.0 || !baseline.is_finite() || !score.is_finite() {
        return None;
    }
    let rel = (score - baseline) / baseline.abs();
    Some(match direction {
        Direction::Higher => rel,
        Direction::Lower => -rel,
    })
}

/// Whether `score` improves on `baseline` by more than `threshold_pct`
/// percent. No score is a failure.
pub fn succeeds(
    score: Option<f64>,
    baseline: f64,
    direction: Direction,
    threshold_pct: u32,
) -> bool {
    score
        .and_then(|s| improvement(s, baseline, direction))
        .is_some_and(|imp| imp > f64::from(threshold_pct) / 100.0 + EPS)
}

/// The better of two scores.
pub fn better(a: f64, b: f64, direction: Direction) -> f64 {
    match direction {
        Direction::Higher => a.max(b),
        Direction::Lower => a.min(b),
    }
}

/// A mean with its 95% bootstrap interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub mean: f64,
    /// [low, high]; the 2.5th and 97.5th percentiles of resampled means.
    pub ci95: [f64; 2],
    /// Sample size.
    pub n: usize,
}

pub fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Mean of `xs` with a percentile bootstrap 95% interval, reproducible for
/// a given `seed`. `None` for an empty sample.
pub fn estimate(xs: &[f64], seed: u64) -> Option<Estimate> {
    let m = mean(xs)?;
    let n = xs.len();
    let mut rng = SplitMix64(seed);
    let mut means = Vec::with_capacity(BOOTSTRAP_RESAMPLES);
    for _ in 0..BOOTSTRAP_RESAMPLES {
        let mut sum = 0.0;
        for _ in 0..n {
            sum += xs[rng.below(n)];
        }
        means.push(sum / n as f64);
    }
    means.sort_by(f64::total_cmp);
    let b = BOOTSTRAP_RESAMPLES as f64;
    let lo = means[(b * 0.025).floor() as usize];
    let hi = means[(b * 0.975).ceil() as usize - 1];
    Some(Estimate {
        mean: m,
        ci95: [lo, hi],
        n,
    })
}

/// Share of `true` with a bootstrap 95% interval.
pub fn rate(hits: &[bool], seed: u64) -> Option<Estimate> {
    let xs: Vec<f64> = hits.iter().map(|&h| if h { 1.0 } else { 0.0 }).collect();
    estimate(&xs, seed)
}

/// A stable 64-bit hash of text (FNV-1a), for per-group seeds that do not
/// change between builds or platforms.
pub fn seed_for(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// SplitMix64: a tiny generator written out here so that intervals
/// reproduce exactly, whatever version of a random-number crate is built.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (multiply-shift; the bias is below 2^-40 for any
    /// sample size used here).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{Higher, Lower};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    fn rate_at(finals: &[Option<f64>], b: f64, d: Direction, t: u32) -> f64 {
        let hits = finals.iter().filter(|s| succeeds(**s, b, d, t)).count();
        hits as f64 / finals.len() as f64
    }

    #[test]
    fn success_rates_higher_is_better_by_hand() {
        // Baseline 0.5. Improvements: +20%, exactly +10%, +4%, no score, -10%.
        let finals = [Some(0.6), Some(0.55), Some(0.52), None, Some(0.45)];
        assert!(close(rate_at(&finals, 0.5, Higher, 5), 2.0 / 5.0));
        assert!(
            close(rate_at(&finals, 0.5, Higher, 10), 1.0 / 5.0),
            "exactly 10% is not more than 10%"
        );
        assert!(close(rate_at(&finals, 0.5, Higher, 15), 1.0 / 5.0));
        assert!(
            close(rate_at(&finals, 0.5, Higher, 20), 0.0),
            "0.6 is 20%, not more"
        );
        let imps: Vec<f64> = finals
            .iter()
            .flatten()
            .map(|s| improvement(*s, 0.5, Higher).unwrap())
            .collect();
        assert!(close(mean(&imps).unwrap(), (0.2 + 0.1 + 0.04 - 0.1) / 4.0));
    }

    #[test]
    fn success_rates_lower_is_better_by_hand() {
        // Baseline 10 (an error). 8 is 20% better, 9 is 10%, 9.4 is 6%,
        // 12 is 20% worse, and one run has no score.
        let finals = [Some(8.0), Some(9.0), Some(9.4), Some(12.0), None];
        assert!(close(rate_at(&finals, 10.0, Lower, 5), 3.0 / 5.0));
        assert!(close(rate_at(&finals, 10.0, Lower, 10), 1.0 / 5.0));
        assert!(close(rate_at(&finals, 10.0, Lower, 30), 0.0));
        assert!(
            !succeeds(Some(12.0), 10.0, Lower, 5),
            "a higher error is worse"
        );
        assert!(
            succeeds(Some(12.0), 10.0, Higher, 5),
            "the same number is better when higher wins"
        );
        let imps: Vec<f64> = finals
            .iter()
            .flatten()
            .map(|s| improvement(*s, 10.0, Lower).unwrap())
            .collect();
        assert!(close(mean(&imps).unwrap(), (0.2 + 0.1 + 0.06 - 0.2) / 4.0));
    }

    #[test]
    fn improvement_is_undefined_without_a_usable_baseline() {
        assert_eq!(improvement(1.0, 0.0, Higher), None);
        assert!(!succeeds(Some(1.0), 0.0, Higher, 10));
        // A negative baseline (e.g. an R^2): moving up is still better.
        assert!(close(improvement(-0.5, -1.0, Higher).unwrap(), 0.5));
        assert!(
            close(improvement(-1.5, -1.0, Lower).unwrap(), 0.5),
            "and down, when lower wins"
        );
        assert!(close(improvement(-0.5, -1.0, Lower).unwrap(), -0.5));
    }

    #[test]
    fn bootstrap_interval_of_two_points_by_hand() {
        // Resampling {0, 1} twice gives means 0, 0.5, 1 with chances
        // 1/4, 1/2, 1/4: the 2.5th percentile is 0, the 97.5th is 1.
        let e = estimate(&[0.0, 1.0], 7).unwrap();
        assert_eq!(e.mean, 0.5);
        assert_eq!(e.ci95, [0.0, 1.0]);
        assert_eq!(e.n, 2);
        let flat = estimate(&[0.3, 0.3, 0.3], 1).unwrap();
        assert!(close(flat.ci95[0], 0.3) && close(flat.ci95[1], 0.3));
        assert_eq!(estimate(&[], 1), None);
    }

    #[test]
    fn bootstrap_is_reproducible_for_a_seed_and_brackets_the_mean() {
        let xs: Vec<f64> = (0..40).map(|i| ((i * 37) % 11) as f64).collect();
        let a = estimate(&xs, seed_for("toy/research")).unwrap();
        let b = estimate(&xs, seed_for("toy/research")).unwrap();
        assert_eq!(a, b);
        assert!(a.ci95[0] < a.mean && a.mean < a.ci95[1], "{a:?}");
        let c = estimate(&xs, seed_for("toy/other")).unwrap();
        assert_ne!(a.ci95, c.ci95, "another seed resamples differently");
        let r = rate(&[true, false, false, false], 3).unwrap();
        assert_eq!(r.mean, 0.25);
        assert!(r.ci95[0] >= 0.0 && r.ci95[1] <= 1.0 && r.ci95[0] < r.ci95[1]);
    }
}
