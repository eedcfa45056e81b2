//! Statistics per task and configuration (agent + models): the rows of the
//! summary table and of the `summary` array in the results JSON.
//!
//! Grouping and the choice of baseline live here; the arithmetic itself is
//! in `stats`. Runs that ended for an infrastructure reason (harness error,
//! LLM unreachable) say nothing about the agent: they are counted apart and
//! left out of every rate, as the original's analysis drops them. Every
//! other run without a final score counts as a failure.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::stats::{self, Estimate, THRESHOLDS};
use crate::task::Direction;

/// What the statistics need to know about one scored run.
#[derive(Debug, Clone)]
pub struct RunStats {
    pub task: String,
    pub agent: Option<String>,
    pub llm: Value,
    /// run.json `config` (the configuration's identity), when recorded.
    pub config: Option<String>,
    pub infra_failure: bool,
    /// The last step's score, when it could be scored.
    pub final_score: Option<f64>,
    /// The best score over every scored snapshot.
    pub best_score: Option<f64>,
}

/// What the statistics need to know about a task.
#[derive(Debug, Clone)]
pub struct TaskFacts {
    pub direction: Direction,
    /// `task.toml` `baseline`.
    pub baseline: Option<f64>,
}

/// A value per success threshold, keyed by the percentage.
#[derive(Debug, Clone, Serialize)]
pub struct ByThreshold {
    #[serde(rename = "5")]
    pub t5: Estimate,
    #[serde(rename = "10")]
    pub t10: Estimate,
    #[serde(rename = "15")]
    pub t15: Estimate,
    #[serde(rename = "20")]
    pub t20: Estimate,
    #[serde(rename = "30")]
    pub t30: Estimate,
}

impl ByThreshold {
    /// None when `f` has no estimate for some threshold.
    fn build(mut f: impl FnMut(u32) -> Option<Estimate>) -> Option<ByThreshold> {
        let [a, b, c, d, e] = THRESHOLDS;
        Some(ByThreshold {
            t5: f(a)?,
            t10: f(b)?,
            t15: f(c)?,
            t20: f(d)?,
            t30: f(e)?,
        })
    }
}

/// One row of the summary.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub task: String,
    /// Agent and models, as shown in the table.
    pub config: String,
    pub agent: Option<String>,
    pub llm: Value,
    pub direction: &'static str,
    /// Every run of this task and configuration.
    pub runs: usize,
    /// Runs ended by the harness or an unreachable LLM; not in any rate.
    pub infra_failures: usize,
    /// Runs the rates are over (`runs - infra_failures`).
    pub evaluated_runs: usize,
    /// Evaluated runs whose last step has no score (they count as failures).
    pub runs_without_final_score: usize,
    /// Mean baseline score, when known.
    pub baseline: Option<f64>,
    /// "baseline_runs" (the mean of this folder's baseline-agent runs),
    /// "task.toml" or "unknown".
    pub baseline_source: &'static str,
    /// How many baseline-agent runs the baseline is the mean of.
    pub baseline_runs: usize,
    /// Mean last-step score over runs that have one.
    pub final_score: Option<Estimate>,
    /// Share of evaluated runs whose last step beats the baseline by more
    /// than t% (the paper's success rate at t = 10).
    pub success_rate: Option<ByThreshold>,
    /// The same, with the best score at any step.
    pub success_rate_any_step: Option<ByThreshold>,
    /// Mean relative improvement (0.1 = 10%) over runs with a final score.
    pub average_improvement: Option<Estimate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub fn is_baseline_agent(agent: Option<&str>) -> bool {
    matches!(agent, Some("baseline") | Some("Agent"))
}

/// "research (gpt-4o)", "research (gpt-4o; fast gpt-4o-mini)", "baseline".
/// Models are named by their identity (provider and model name, never the
/// base URL: `openai:llama3@http://host:8000/v1` is `openai:llama3`).
pub fn config_label(agent: Option<&str>, llm: &Value) -> String {
    let agent = agent.unwrap_or("unknown agent");
    let ids: Vec<(&str, String)> = ["main", "fast", "edit"]
        .into_iter()
        .filter_map(|k| {
            let name = llm.get(k).and_then(Value::as_str)?;
            Some((k, crate::llm::model_identity(name)))
        })
        .collect();
    let role = |k: &str| ids.iter().find(|(r, _)| *r == k).map(|(_, id)| id.as_str());
    let Some(main) = role("main") else {
        return agent.to_string();
    };
    let mut label = format!("{agent} ({main}");
    for (name, key) in [("fast", "fast"), ("edit", "edit")] {
        if let Some(m) = role(key) {
            if m != main {
                label.push_str(&format!("; {name} {m}"));
            }
        }
    }
    label.push(')');
    label
}

/// The summary rows, by task, the baseline agent first, then by config.
pub fn summarize(runs: &[RunStats], tasks: &BTreeMap<String, TaskFacts>) -> Vec<Group> {
    let mut groups: BTreeMap<(String, bool, String), Vec<&RunStats>> = BTreeMap::new();
    for r in runs {
        let config = r
            .config
            .clone()
            .unwrap_or_else(|| config_label(r.agent.as_deref(), &r.llm));
        let not_baseline = !is_baseline_agent(r.agent.as_deref());
        groups
            .entry((r.task.clone(), not_baseline, config))
            .or_default()
            .push(r);
    }
    let mut out = Vec::new();
    for ((task, _, config), members) in groups {
        let Some(facts) = tasks.get(&task) else {
            continue;
        };
        let (baseline, source, n) = baseline_for(&task, runs, facts);
        let mut g = group(&task, config, &members, facts.direction, baseline, source);
        g.baseline_runs = n;
        out.push(g);
    }
    out
}

/// Mean final score of the baseline agent's runs of `task`, else the
/// task's declared baseline, else unknown.
fn baseline_for(
    task: &str,
    runs: &[RunStats],
    facts: &TaskFacts,
) -> (Option<f64>, &'static str, usize) {
    let scores: Vec<f64> = runs
        .iter()
        .filter(|r| r.task == task && is_baseline_agent(r.agent.as_deref()) && !r.infra_failure)
        .filter_map(|r| r.final_score)
        .collect();
    if let Some(m) = stats::mean(&scores) {
        return (Some(m), "baseline_runs", scores.len());
    }
    match facts.baseline {
        Some(b) => (Some(b), "task.toml", 0),
        None => (None, "unknown", 0),
    }
}

fn group(
    task: &str,
    config: String,
    members: &[&RunStats],
    direction: Direction,
    baseline: Option<f64>,
    baseline_source: &'static str,
) -> Group {
    let seed = stats::seed_for(&format!("{task}\0{config}"));
    let evaluated: Vec<&RunStats> = members
        .iter()
        .copied()
        .filter(|r| !r.infra_failure)
        .collect();
    let finals: Vec<f64> = evaluated.iter().filter_map(|r| r.final_score).collect();
    let mut note = None;
    let usable = match baseline {
        Some(b) if b == 0.0 || !b.is_finite() => {
            note = Some("the baseline is 0, so relative improvement is undefined".to_string());
            None
        }
        Some(_) if evaluated.is_empty() => None,
        other => other,
    };
    if baseline.is_none() {
        note = Some(
            "no baseline: run the baseline agent on this task, or set `baseline` in task.toml"
                .to_string(),
        );
    }
    let rates = |pick: fn(&RunStats) -> Option<f64>| {
        // Some only when runs were evaluated, so every rate has hits.
        usable.and_then(|b| {
            ByThreshold::build(|t| {
                let hits: Vec<bool> = evaluated
                    .iter()
                    .map(|r| stats::succeeds(pick(r), b, direction, t))
                    .collect();
                stats::rate(&hits, seed ^ u64::from(t))
            })
        })
    };
    let success_rate = rates(|r| r.final_score);
    let success_rate_any_step = rates(|r| r.best_score);
    let average_improvement = usable.and_then(|b| {
        let imps: Vec<f64> = finals
            .iter()
            .filter_map(|s| stats::improvement(*s, b, direction))
            .collect();
        stats::estimate(&imps, seed ^ 0xa11)
    });
    let first = members[0];
    Group {
        task: task.to_string(),
        config,
        agent: first.agent.clone(),
        llm: first.llm.clone(),
        direction: direction.as_str(),
        runs: members.len(),
        infra_failures: members.len() - evaluated.len(),
        evaluated_runs: evaluated.len(),
        runs_without_final_score: evaluated.len() - finals.len(),
        baseline,
        baseline_source,
        baseline_runs: 0,
        final_score: stats::estimate(&finals, seed ^ 0xf1),
        success_rate,
        success_rate_any_step,
        average_improvement,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(agent: &str, fin: Option<f64>, best: Option<f64>, infra: bool) -> RunStats {
        RunStats {
            task: "toy".into(),
            agent: Some(agent.into()),
            llm: if agent == "baseline" {
                Value::Null
            } else {
                json!({"main": "m1", "fast": "m1", "edit": "m2"})
            },
            config: None,
            infra_failure: infra,
            final_score: fin,
            best_score: best,
        }
    }

    fn facts(direction: Direction, baseline: Option<f64>) -> BTreeMap<String, TaskFacts> {
        BTreeMap::from([(
            "toy".to_string(),
            TaskFacts {
                direction,
                baseline,
            },
        )])
    }

    #[test]
    fn baseline_runs_set_the_bar_and_infra_failures_stay_out() {
        let runs = vec![
            run("baseline", Some(0.4), Some(0.4), false),
            run("baseline", Some(0.6), Some(0.6), false),
            run("baseline", None, None, true),
            // Baseline mean 0.5. Agent: +20%, +4% (but +30% at some step),
            // no final score, and one LLM outage that does not count.
            run("research", Some(0.6), Some(0.6), false),
            run("research", Some(0.52), Some(0.65), false),
            run("research", None, None, false),
            run("research", Some(0.9), Some(0.9), true),
        ];
        let g = summarize(&runs, &facts(Direction::Higher, Some(0.1)));
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].config, "baseline");
        let r = &g[1];
        assert_eq!(r.config, "research (m1; edit m2)");
        assert_eq!(r.baseline, Some(0.5));
        assert_eq!((r.baseline_source, r.baseline_runs), ("baseline_runs", 2));
        assert_eq!((r.runs, r.infra_failures, r.evaluated_runs), (4, 1, 3));
        assert_eq!(r.runs_without_final_score, 1);
        let s = r.success_rate.as_ref().unwrap();
        assert!((s.t10.mean - 1.0 / 3.0).abs() < 1e-12);
        assert!((s.t5.mean - 1.0 / 3.0).abs() < 1e-12);
        let any = r.success_rate_any_step.as_ref().unwrap();
        assert!((any.t10.mean - 2.0 / 3.0).abs() < 1e-12);
        assert!(
            (any.t20.mean - 1.0 / 3.0).abs() < 1e-12,
            "0.6 is not more than 20%"
        );
        let imp = r.average_improvement.as_ref().unwrap();
        assert!((imp.mean - (0.2 + 0.04) / 2.0).abs() < 1e-12);
        assert_eq!(imp.n, 2);
        // The baseline judged against its own mean: 0.6 is +20%.
        let b = g[0].success_rate.as_ref().unwrap();
        assert!((b.t10.mean - 0.5).abs() < 1e-12);
    }

    #[test]
    fn declared_baseline_is_the_fallback_and_lower_wins_when_asked() {
        let runs = vec![
            run("research", Some(8.0), Some(8.0), false),
            run("research", Some(11.0), Some(7.0), false),
        ];
        let g = summarize(&runs, &facts(Direction::Lower, Some(10.0)));
        assert_eq!(g[0].baseline_source, "task.toml");
        let s = g[0].success_rate.as_ref().unwrap();
        assert!((s.t10.mean - 0.5).abs() < 1e-12);
        let any = g[0].success_rate_any_step.as_ref().unwrap();
        assert!((any.t10.mean - 1.0).abs() < 1e-12);
        assert!(
            (g[0].average_improvement.as_ref().unwrap().mean - (0.2 - 0.1) / 2.0).abs() < 1e-12
        );
    }

    #[test]
    fn unknown_baseline_gives_no_success_rate() {
        let runs = vec![run("research", Some(0.7), Some(0.7), false)];
        let g = summarize(&runs, &facts(Direction::Higher, None));
        assert_eq!(g[0].baseline_source, "unknown");
        assert!(g[0].success_rate.is_none() && g[0].average_improvement.is_none());
        assert!(g[0].note.as_deref().unwrap().contains("baseline"));
        assert_eq!(g[0].final_score.as_ref().unwrap().mean, 0.7);
    }
}
