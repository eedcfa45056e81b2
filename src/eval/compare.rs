//! `mlab eval --compare A B`: configuration B against configuration A on
//! the same tasks, run for run.
//!
//! Runs are paired within a task: by seed where every run of both has one
//! (runs sharing a seed pair in folder order), else in folder order; runs
//! left without a partner are counted, not used. Infrastructure failures
//! are left out, as in every rate. Per pair the difference (B minus A) is
//! taken of success at the paper's 10% threshold (1, 0 or -1) and of the
//! relative improvement over the task's baseline (pairs where both runs
//! have a final score). Each difference gets its mean, a paired bootstrap
//! interval (pairs resampled together) and a sign-flip permutation p-value;
//! per task and over every pair of every task.

use std::collections::BTreeMap;

use serde::Serialize;

use super::stats::{self, PairedDiff, Rate};
use super::summary::{baseline_for, BaselineSource, RunStats, TaskFacts};

/// The headline threshold (percent) the success difference is taken at.
pub const COMPARE_THRESHOLD: u32 = 10;

/// The comparison of B against A.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    /// Success at more than this percent over the baseline.
    pub threshold_pct: u32,
    pub tasks: Vec<TaskComparison>,
    /// Every pair of every task together.
    pub overall: Side,
}

/// One task's pairs.
#[derive(Debug, Clone, Serialize)]
pub struct TaskComparison {
    pub task: String,
    /// "seed" or "order".
    pub paired_by: &'static str,
    pub unpaired_a: usize,
    pub unpaired_b: usize,
    pub baseline: Option<f64>,
    pub baseline_source: BaselineSource,
    #[serde(flatten)]
    pub side: Side,
}

/// Success rates of both over the pairs, and the paired differences.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub pairs: usize,
    pub success_a: Option<Rate>,
    pub success_b: Option<Rate>,
    /// B's success minus A's, per pair.
    pub success_diff: Option<PairedDiff>,
    /// B's relative improvement minus A's, per pair with both scored.
    pub improvement_diff: Option<PairedDiff>,
}

/// One pair's contribution.
struct Pair {
    success: (bool, bool),
    improvement: Option<(f64, f64)>,
}

/// Compares config `b` with config `a` (as `RunStats::config_key` names
/// them). Fails with the configurations there are when either has no run.
pub fn compare(
    runs: &[RunStats],
    tasks: &BTreeMap<String, TaskFacts>,
    flag: &BTreeMap<Option<String>, f64>,
    a: &str,
    b: &str,
) -> anyhow::Result<Comparison> {
    let configs: std::collections::BTreeSet<String> =
        runs.iter().map(RunStats::config_key).collect();
    for wanted in [a, b] {
        if !configs.contains(wanted) {
            anyhow::bail!(
                "--compare: no runs of configuration {wanted:?}; the configurations here are: {}",
                configs
                    .iter()
                    .map(|c| format!("{c:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let mut out = Vec::new();
    let mut all_pairs = Vec::new();
    for (task, facts) in tasks {
        let side = |name: &str| -> Vec<&RunStats> {
            let mut v: Vec<&RunStats> = runs
                .iter()
                .filter(|r| &r.task == task && !r.infra_failure && r.config_key() == name)
                .collect();
            v.sort_by(|x, y| x.folder.cmp(&y.folder));
            v
        };
        let (ra, rb) = (side(a), side(b));
        if ra.is_empty() || rb.is_empty() {
            continue;
        }
        let base = baseline_for(task, runs, facts, flag);
        let by_seed = ra.iter().chain(&rb).all(|r| r.seed.is_some());
        let matched = if by_seed {
            pair_by_seed(&ra, &rb)
        } else {
            ra.iter().copied().zip(rb.iter().copied()).collect()
        };
        let judge = |r: &RunStats| {
            let ok = base.value.is_some_and(|bv| {
                stats::succeeds(r.final_score, bv, facts.direction, COMPARE_THRESHOLD)
            });
            let imp = base
                .value
                .zip(r.final_score)
                .and_then(|(bv, s)| stats::improvement(s, bv, facts.direction));
            (ok, imp)
        };
        let pairs: Vec<Pair> = matched
            .iter()
            .map(|(x, y)| {
                let (sa, ia) = judge(x);
                let (sb, ib) = judge(y);
                Pair {
                    success: (sa, sb),
                    improvement: ia.zip(ib),
                }
            })
            .collect();
        let seed = stats::seed_for(&format!("compare\0{task}\0{a}\0{b}"));
        let usable = base.value.is_some_and(|v| v != 0.0 && v.is_finite());
        out.push(TaskComparison {
            task: task.clone(),
            paired_by: if by_seed { "seed" } else { "order" },
            unpaired_a: ra.len() - matched.len(),
            unpaired_b: rb.len() - matched.len(),
            baseline: base.value,
            baseline_source: base.source,
            side: summarise(&pairs, usable, seed),
        });
        if usable {
            all_pairs.extend(pairs);
        }
    }
    let seed = stats::seed_for(&format!("compare\0\0{a}\0{b}"));
    Ok(Comparison {
        a: a.to_string(),
        b: b.to_string(),
        threshold_pct: COMPARE_THRESHOLD,
        tasks: out,
        overall: summarise(&all_pairs, true, seed),
    })
}

/// Pairs runs with equal seeds, in folder order within a seed.
fn pair_by_seed<'r>(a: &[&'r RunStats], b: &[&'r RunStats]) -> Vec<(&'r RunStats, &'r RunStats)> {
    let mut free: Vec<Option<&RunStats>> = b.iter().copied().map(Some).collect();
    let mut out = Vec::new();
    for x in a {
        if let Some(slot) = free
            .iter_mut()
            .find(|s| s.is_some_and(|y| y.seed == x.seed))
        {
            if let Some(y) = slot.take() {
                out.push((*x, y));
            }
        }
    }
    out
}

fn summarise(pairs: &[Pair], baseline_usable: bool, seed: u64) -> Side {
    if !baseline_usable {
        return Side {
            pairs: pairs.len(),
            success_a: None,
            success_b: None,
            success_diff: None,
            improvement_diff: None,
        };
    }
    let n = pairs.len();
    let ka = pairs.iter().filter(|p| p.success.0).count();
    let kb = pairs.iter().filter(|p| p.success.1).count();
    let diffs: Vec<f64> = pairs
        .iter()
        .map(|p| f64::from(u8::from(p.success.1)) - f64::from(u8::from(p.success.0)))
        .collect();
    let imps: Vec<f64> = pairs
        .iter()
        .filter_map(|p| p.improvement.map(|(ia, ib)| ib - ia))
        .collect();
    Side {
        pairs: n,
        success_a: stats::rate(ka, n),
        success_b: stats::rate(kb, n),
        success_diff: stats::paired(&diffs, seed),
        improvement_diff: stats::paired(&imps, seed ^ 0x1b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::Direction;

    fn run(config: &str, folder: &str, seed: Option<u64>, fin: Option<f64>) -> RunStats {
        RunStats {
            task: "toy".into(),
            folder: folder.into(),
            agent: Some("research".into()),
            config: Some(config.into()),
            seed,
            final_score: fin,
            best_score: fin,
            ..RunStats::default()
        }
    }

    fn facts() -> BTreeMap<String, TaskFacts> {
        BTreeMap::from([(
            "toy".to_string(),
            TaskFacts {
                direction: Direction::Higher,
                baseline: Some(0.5),
                paper_baseline: None,
            },
        )])
    }

    #[test]
    fn pairs_by_seed_and_differences_by_hand() {
        // Baseline 0.5 (task.toml). Seeds pair a1-b1 (seed 1), a2-b2 (2),
        // a3-b3 (3); b4 has no partner.
        let runs = vec![
            run("A", "a1", Some(1), Some(0.5)),  // fail, imp 0
            run("A", "a2", Some(2), Some(0.6)),  // success, imp 0.2
            run("A", "a3", Some(3), None),       // fail, no imp
            run("B", "b3", Some(3), Some(0.7)),  // success, imp 0.4
            run("B", "b2", Some(2), Some(0.6)),  // success, imp 0.2
            run("B", "b1", Some(1), Some(0.65)), // success, imp 0.3
            run("B", "b4", Some(4), Some(0.9)),
        ];
        let c = compare(&runs, &facts(), &BTreeMap::new(), "A", "B").unwrap();
        let t = &c.tasks[0];
        assert_eq!((t.paired_by, t.unpaired_a, t.unpaired_b), ("seed", 0, 1));
        assert_eq!(t.side.pairs, 3);
        assert_eq!(t.side.success_a.as_ref().unwrap().k, 1);
        assert_eq!(t.side.success_b.as_ref().unwrap().k, 3);
        // Success differences 1, 0, 1: mean 2/3; sign flips reaching |2|
        // are the two with both ones the same sign, whatever the 0: 4 of 8.
        let s = t.side.success_diff.as_ref().unwrap();
        assert!((s.mean - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!((s.p_value, s.exact), (0.5, true));
        // Improvement differences over pairs with both scored: 0.3 and 0.
        let i = t.side.improvement_diff.as_ref().unwrap();
        assert_eq!(i.n, 2);
        assert!((i.mean - 0.15).abs() < 1e-9, "{i:?}");
        assert_eq!(c.overall.pairs, 3);
    }

    #[test]
    fn runs_without_seeds_pair_in_folder_order_and_unknown_configs_are_named() {
        let runs = vec![
            run("A", "x2", None, Some(0.5)),
            run("A", "x1", None, Some(0.5)),
            run("B", "y1", None, Some(0.9)),
        ];
        let c = compare(&runs, &facts(), &BTreeMap::new(), "A", "B").unwrap();
        assert_eq!(c.tasks[0].paired_by, "order");
        assert_eq!((c.tasks[0].side.pairs, c.tasks[0].unpaired_a), (1, 1));
        assert_eq!(c.tasks[0].side.success_diff.as_ref().unwrap().ci95, None);
        let e = compare(&runs, &facts(), &BTreeMap::new(), "A", "C").unwrap_err();
        assert!(e.to_string().contains("\"B\""), "{e}");
    }
}
