//! The arithmetic behind the summary: relative improvement over a baseline,
//! success at a threshold, Wilson intervals for success rates, bootstrap
//! intervals for means, and the paired comparison of two configurations.
//!
//! Definitions follow the paper's analysis script: improvement is
//! `(score - baseline) / baseline`, sign-flipped for lower-is-better tasks;
//! a run succeeds at t% when its improvement is more than t%; a run without
//! a score fails. The baseline's magnitude is used as the divisor so that a
//! negative baseline keeps "better" meaning better. No grouping or I/O
//! here; see `summary` for that.
//!
//! Every random draw comes from one generator ([`SplitMix64`]) seeded from
//! the text of what is being estimated ([`seed_for`]), so the same logs give
//! the same intervals and p-values on every machine and every run.

use serde::Serialize;

use crate::task::Direction;

/// Success thresholds in percent; 10 is the paper's headline.
pub const THRESHOLDS: [u32; 5] = [5, 10, 15, 20, 30];

/// An improvement must beat the threshold by more than float noise:
/// (0.55 - 0.5) / 0.5 is 0.10000000000000009, which is 10%, not more.
const EPS: f64 = 1e-9;

/// Bootstrap resamples per interval.
pub const BOOTSTRAP_RESAMPLES: usize = 10_000;

/// Random sign flips for a permutation test too large to enumerate.
pub const PERMUTATIONS: usize = 20_000;

/// Up to this many pairs, the permutation test enumerates every sign flip
/// (2^n of them) and its p-value is exact.
const EXACT_PERMUTATION_MAX: usize = 16;

/// The 97.5th percentile of the standard normal (a two-sided 95% interval).
const Z95: f64 = 1.959_963_984_540_054;

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
    /// [low, high]: the 2.5th and 97.5th percentiles of resampled means;
    /// null for a single value, which says nothing about its spread.
    pub ci95: Option<[f64; 2]>,
    /// Sample size.
    pub n: usize,
}

pub fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Mean of `xs` with a percentile bootstrap 95% interval (from two values
/// on), reproducible for a given `seed`. `None` for an empty sample.
pub fn estimate(xs: &[f64], seed: u64) -> Option<Estimate> {
    let m = mean(xs)?;
    Some(Estimate {
        mean: m,
        ci95: bootstrap_ci(xs, seed),
        n: xs.len(),
    })
}

/// The percentile bootstrap 95% interval of the mean of `xs`: resample
/// `xs` with replacement [`BOOTSTRAP_RESAMPLES`] times and take the 2.5th
/// and 97.5th percentiles of the means. A paired comparison passes the
/// per-pair differences, so pairs are resampled together. None below two
/// values.
pub fn bootstrap_ci(xs: &[f64], seed: u64) -> Option<[f64; 2]> {
    let n = xs.len();
    if n < 2 {
        return None;
    }
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
    Some([lo, hi])
}

/// A success rate: `k` of `n` runs, with the Wilson score 95% interval,
/// which stays honest at 0 or n successes and for a handful of runs (0 of
/// 5 is 0% [0%, 43%], not a certain 0%).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rate {
    pub k: usize,
    pub n: usize,
    /// k / n.
    pub rate: f64,
    /// [low, high] of the Wilson score interval.
    pub ci95: [f64; 2],
}

/// `k` of `n` with its Wilson interval; None when `n` is 0.
pub fn rate(k: usize, n: usize) -> Option<Rate> {
    (n > 0 && k <= n).then(|| Rate {
        k,
        n,
        rate: k as f64 / n as f64,
        ci95: wilson(k, n),
    })
}

/// The Wilson score 95% interval of `k` successes in `n > 0` trials.
pub fn wilson(k: usize, n: usize) -> [f64; 2] {
    let n_f = n as f64;
    let p = k as f64 / n_f;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n_f;
    let centre = (p + z2 / (2.0 * n_f)) / denom;
    let half = Z95 / denom * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt();
    // At 0 or n successes the interval touches the end exactly.
    let lo = if k == 0 {
        0.0
    } else {
        (centre - half).max(0.0)
    };
    let hi = if k == n {
        1.0
    } else {
        (centre + half).min(1.0)
    };
    [lo, hi]
}

/// A paired difference (B minus A): its mean over the pairs, the paired
/// bootstrap 95% interval, and the two-sided sign-flip permutation p-value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedDiff {
    /// Pairs the difference is over.
    pub n: usize,
    pub mean: f64,
    /// Null below two pairs.
    pub ci95: Option<[f64; 2]>,
    /// Chance of a mean difference at least this far from 0 if A and B
    /// were interchangeable (each pair's sign flipped at random).
    pub p_value: f64,
    /// Whether `p_value` enumerates every sign flip (else it is estimated
    /// from [`PERMUTATIONS`] random ones).
    pub exact: bool,
}

/// The paired comparison of `diffs` (one B-minus-A difference per pair).
pub fn paired(diffs: &[f64], seed: u64) -> Option<PairedDiff> {
    let m = mean(diffs)?;
    let (p_value, exact) = permutation_p(diffs, seed ^ 0x9e11);
    Some(PairedDiff {
        n: diffs.len(),
        mean: m,
        ci95: bootstrap_ci(diffs, seed),
        p_value,
        exact,
    })
}

/// Two-sided p-value of the sign-flip permutation test for a mean of
/// paired differences of 0: the share of sign assignments whose mean is at
/// least as far from 0 as the observed one. Every assignment up to
/// [`EXACT_PERMUTATION_MAX`] pairs (exact, as scipy's `permutation_test`
/// with `permutation_type="samples"`); beyond, [`PERMUTATIONS`] random ones
/// with the observed assignment counted in, so p is never 0.
pub fn permutation_p(diffs: &[f64], seed: u64) -> (f64, bool) {
    let n = diffs.len();
    if n == 0 {
        return (1.0, true);
    }
    let observed = diffs.iter().sum::<f64>().abs();
    // Sums within rounding of the observed one count as "as extreme".
    let tol = 1e-9 * (1.0 + observed);
    if n <= EXACT_PERMUTATION_MAX {
        let total = 1usize << n;
        let mut extreme = 0usize;
        for signs in 0..total {
            let s: f64 = diffs
                .iter()
                .enumerate()
                .map(|(i, d)| if signs >> i & 1 == 1 { -d } else { *d })
                .sum();
            if s.abs() >= observed - tol {
                extreme += 1;
            }
        }
        return (extreme as f64 / total as f64, true);
    }
    let mut rng = SplitMix64(seed);
    let mut extreme = 0usize;
    for _ in 0..PERMUTATIONS {
        let mut s = 0.0;
        for d in diffs {
            s += if rng.next() >> 63 == 1 { -d } else { *d };
        }
        if s.abs() >= observed - tol {
            extreme += 1;
        }
    }
    ((extreme + 1) as f64 / (PERMUTATIONS + 1) as f64, false)
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
        assert_eq!(e.ci95, Some([0.0, 1.0]));
        assert_eq!(e.n, 2);
        let flat = estimate(&[0.3, 0.3, 0.3], 1).unwrap().ci95.unwrap();
        assert!(close(flat[0], 0.3) && close(flat[1], 0.3));
        assert_eq!(estimate(&[], 1), None);
    }

    #[test]
    fn bootstrap_is_reproducible_for_a_seed_and_brackets_the_mean() {
        let xs: Vec<f64> = (0..40).map(|i| ((i * 37) % 11) as f64).collect();
        let a = estimate(&xs, seed_for("toy/research")).unwrap();
        let b = estimate(&xs, seed_for("toy/research")).unwrap();
        assert_eq!(a, b);
        let ci = a.ci95.unwrap();
        assert!(ci[0] < a.mean && a.mean < ci[1], "{a:?}");
        let c = estimate(&xs, seed_for("toy/other")).unwrap();
        assert_ne!(a.ci95, c.ci95, "another seed resamples differently");
    }

    #[test]
    fn one_value_has_no_interval() {
        let e = estimate(&[0.7], 1).unwrap();
        assert_eq!((e.mean, e.ci95, e.n), (0.7, None, 1));
        assert_eq!(bootstrap_ci(&[0.7], 1), None);
        assert_eq!(paired(&[0.5], 1).unwrap().ci95, None);
    }

    #[test]
    fn wilson_intervals_by_hand() {
        // k = 0: the interval is [0, (z^2/n) / (1 + z^2/n)].
        let z2 = Z95 * Z95;
        let hi = (z2 / 5.0) / (1.0 + z2 / 5.0);
        assert_eq!(wilson(0, 5), [0.0, hi]);
        assert!(
            (hi - 0.434_482).abs() < 1e-6,
            "0 of 5 is 0 to about 43%: {hi}"
        );
        // k = n mirrors it.
        let one = wilson(1, 1);
        assert_eq!(one[1], 1.0);
        assert!(
            (one[0] - (1.0 - (z2 / (1.0 + z2)))).abs() < 1e-12,
            "{one:?}"
        );
        assert!((one[0] - 0.206_549).abs() < 1e-6, "1 of 1 is 21% to 100%");
        // 5 of 10: centre 0.5, half-width z/(1+z^2/10) * sqrt(0.025 + z^2/400).
        let half = Z95 / (1.0 + z2 / 10.0) * (0.025 + z2 / 400.0).sqrt();
        let w = wilson(5, 10);
        assert!(close(w[0], 0.5 - half) && close(w[1], 0.5 + half), "{w:?}");
        assert!((w[0] - 0.236_593).abs() < 1e-6 && (w[1] - 0.763_407).abs() < 1e-6);
        let r = rate(0, 1).unwrap();
        assert_eq!((r.k, r.n, r.rate), (0, 1, 0.0));
        assert!(
            r.ci95[1] > 0.79,
            "one failure leaves a wide interval: {r:?}"
        );
        assert_eq!(rate(0, 0), None);
    }

    #[test]
    fn permutation_p_values_by_hand() {
        // Three pairs all +1: of the 8 sign flips only all-plus and
        // all-minus reach |sum| 3, so p = 2/8.
        assert_eq!(permutation_p(&[1.0, 1.0, 1.0], 1), (0.25, true));
        // {1, -1}: every flip has |sum| 0 or 2; |observed| is 0: p = 1.
        assert_eq!(permutation_p(&[1.0, -1.0], 1), (1.0, true));
        // {2, 1}: sums 3, 1, -1, -3; |sum| >= 3 twice of 4.
        assert_eq!(permutation_p(&[2.0, 1.0], 1), (0.5, true));
        // Beyond the exact limit: random flips, reproducible, never 0.
        let many = vec![1.0; 20];
        let (p, exact) = permutation_p(&many, 9);
        assert!(!exact && p > 0.0 && p < 0.001, "{p}");
        assert_eq!(permutation_p(&many, 9), (p, false));
        let d = paired(&[1.0, 1.0, 1.0], 4).unwrap();
        assert_eq!((d.n, d.mean, d.p_value), (3, 1.0, 0.25));
        assert_eq!(d.ci95, Some([1.0, 1.0]));
    }
}
