//! Statistics per task and configuration (agent + models): the rows of the
//! summary table and of `eval_summary.json`.
//!
//! Grouping and the choice of baseline live here; the arithmetic itself is
//! in `stats`. Runs that ended for an infrastructure reason (harness error,
//! LLM unreachable) say nothing about the agent: they are counted apart and
//! left out of every rate, as the original's analysis drops them. Every
//! other run without a final score counts as a failure.
//!
//! The baseline of a task is, in this order: `--baseline`, the mean final
//! score of the baseline agent's runs in the log folder, task.toml's
//! measured `baseline`, task.toml's `paper_baseline`. Each row names the
//! one it used. The baseline agent's runs are never judged against a
//! baseline made of themselves.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::stats::{self, Estimate, Rate, THRESHOLDS};
use crate::task::Direction;

/// What the statistics need to know about one scored run.
#[derive(Debug, Clone, Default)]
pub struct RunStats {
    pub task: String,
    /// The run's folder (relative to the log folder), to pair runs in order.
    pub folder: String,
    pub agent: Option<String>,
    pub llm: Value,
    /// run.json `config` (the configuration's identity), when recorded.
    pub config: Option<String>,
    pub seed: Option<u64>,
    pub infra_failure: bool,
    /// The last step's score, when it could be scored.
    pub final_score: Option<f64>,
    /// The best score over every scored snapshot.
    pub best_score: Option<f64>,
    /// run.json `cost_usd` (None for the original's runs).
    pub cost_usd: Option<f64>,
    /// Input plus output tokens, from run.json.
    pub tokens: Option<u64>,
    /// Wall time in seconds (overall_time.txt, else run.json's times).
    pub wall_time: Option<f64>,
}

impl RunStats {
    /// The configuration this run is grouped under.
    pub fn config_key(&self) -> String {
        self.config
            .clone()
            .unwrap_or_else(|| config_label(self.agent.as_deref(), &self.llm))
    }
}

/// What the statistics need to know about a task.
#[derive(Debug, Clone)]
pub struct TaskFacts {
    pub direction: Direction,
    /// `task.toml` `baseline` (measured).
    pub baseline: Option<f64>,
    /// `task.toml` `paper_baseline` (the original's fixed value).
    pub paper_baseline: Option<f64>,
}

/// Where a task's baseline came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineSource {
    /// `mlab eval --baseline`.
    Flag,
    /// The mean final score of the baseline agent's runs in the folder.
    BaselineRuns,
    /// task.toml `baseline`.
    TaskToml,
    /// task.toml `paper_baseline`.
    PaperBaseline,
    Unknown,
}

impl BaselineSource {
    /// How the summary names it.
    pub fn describe(self, runs: usize) -> String {
        match self {
            BaselineSource::Flag => "--baseline".into(),
            BaselineSource::BaselineRuns => format!("mean of {runs} baseline-agent run(s)"),
            BaselineSource::TaskToml => "task.toml baseline (measured)".into(),
            BaselineSource::PaperBaseline => "task.toml paper_baseline".into(),
            BaselineSource::Unknown => "none".into(),
        }
    }
}

/// A task's baseline, and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    pub value: Option<f64>,
    pub source: BaselineSource,
    /// How many baseline-agent runs `value` is the mean of (source
    /// `baseline_runs`).
    pub runs: usize,
}

/// A success rate per threshold, keyed by the percentage.
#[derive(Debug, Clone, Serialize)]
pub struct ByThreshold {
    #[serde(rename = "5")]
    pub t5: Rate,
    #[serde(rename = "10")]
    pub t10: Rate,
    #[serde(rename = "15")]
    pub t15: Rate,
    #[serde(rename = "20")]
    pub t20: Rate,
    #[serde(rename = "30")]
    pub t30: Rate,
}

impl ByThreshold {
    /// None when `f` has no rate for some threshold.
    fn build(mut f: impl FnMut(u32) -> Option<Rate>) -> Option<ByThreshold> {
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

/// A total and the mean per run, over the runs that record it.
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    pub total: f64,
    pub mean: f64,
    /// Runs that recorded it.
    pub n: usize,
}

impl Usage {
    fn of(xs: impl Iterator<Item = f64>) -> Option<Usage> {
        let xs: Vec<f64> = xs.collect();
        let total: f64 = xs.iter().sum();
        stats::mean(&xs).map(|mean| Usage {
            total,
            mean,
            n: xs.len(),
        })
    }
}

/// One row of the summary.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub task: String,
    /// Agent and models (run.json `config`), as shown in the table.
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
    /// The baseline value the rates are measured against, when known.
    pub baseline: Option<f64>,
    /// "flag", "baseline_runs", "task_toml", "paper_baseline" or "unknown".
    pub baseline_source: BaselineSource,
    /// How many baseline-agent runs the baseline is the mean of.
    pub baseline_runs: usize,
    /// Mean last-step score over runs that have one, with a bootstrap
    /// interval from two runs on.
    pub final_score: Option<Estimate>,
    /// k of the evaluated runs whose last step beats the baseline by more
    /// than t%, with the Wilson interval (the paper's success rate at t = 10).
    pub success_rate: Option<ByThreshold>,
    /// The same, with the best score at any step.
    pub success_rate_any_step: Option<ByThreshold>,
    /// Mean relative improvement (0.1 = 10%) over runs with a final score.
    pub average_improvement: Option<Estimate>,
    /// run.json `cost_usd`.
    pub cost_usd: Option<Usage>,
    /// run.json tokens (input + output).
    pub tokens: Option<Usage>,
    /// Wall time in seconds.
    pub wall_time_s: Option<Usage>,
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
/// `flag` is `--baseline` per task (a `None` key applies to every task).
pub fn summarize(
    runs: &[RunStats],
    tasks: &BTreeMap<String, TaskFacts>,
    flag: &BTreeMap<Option<String>, f64>,
) -> Vec<Group> {
    let mut groups: BTreeMap<(String, bool, String), Vec<&RunStats>> = BTreeMap::new();
    for r in runs {
        let not_baseline = !is_baseline_agent(r.agent.as_deref());
        groups
            .entry((r.task.clone(), not_baseline, r.config_key()))
            .or_default()
            .push(r);
    }
    let mut out = Vec::new();
    for ((task, not_baseline, config), members) in groups {
        let Some(facts) = tasks.get(&task) else {
            continue;
        };
        let base = baseline_for(&task, runs, facts, flag);
        let mut g = group(&task, config, &members, facts.direction, &base);
        if !not_baseline && base.source == BaselineSource::BaselineRuns {
            // Judged against its own mean, the baseline agent would succeed
            // by noise alone.
            g.success_rate = None;
            g.success_rate_any_step = None;
            g.average_improvement = None;
            g.note =
                Some("these runs are the baseline, so they are not judged against it".to_string());
        }
        out.push(g);
    }
    out
}

/// `--baseline` for the task, else the mean final score of its
/// baseline-agent runs, else task.toml's `baseline`, then `paper_baseline`.
pub fn baseline_for(
    task: &str,
    runs: &[RunStats],
    facts: &TaskFacts,
    flag: &BTreeMap<Option<String>, f64>,
) -> Baseline {
    let found = |value: f64, source| Baseline {
        value: Some(value),
        source,
        runs: 0,
    };
    if let Some(v) = flag
        .get(&Some(task.to_string()))
        .or_else(|| flag.get(&None))
    {
        return found(*v, BaselineSource::Flag);
    }
    let scores: Vec<f64> = runs
        .iter()
        .filter(|r| r.task == task && is_baseline_agent(r.agent.as_deref()) && !r.infra_failure)
        .filter_map(|r| r.final_score)
        .collect();
    if let Some(m) = stats::mean(&scores) {
        return Baseline {
            value: Some(m),
            source: BaselineSource::BaselineRuns,
            runs: scores.len(),
        };
    }
    if let Some(b) = facts.baseline {
        return found(b, BaselineSource::TaskToml);
    }
    if let Some(b) = facts.paper_baseline {
        return found(b, BaselineSource::PaperBaseline);
    }
    Baseline {
        value: None,
        source: BaselineSource::Unknown,
        runs: 0,
    }
}

/// Whether `r` beats `baseline` by more than t% at its last step (`pick`).
fn hits(
    evaluated: &[&RunStats],
    pick: fn(&RunStats) -> Option<f64>,
    baseline: f64,
    direction: Direction,
    t: u32,
) -> usize {
    evaluated
        .iter()
        .filter(|r| stats::succeeds(pick(r), baseline, direction, t))
        .count()
}

fn group(
    task: &str,
    config: String,
    members: &[&RunStats],
    direction: Direction,
    base: &Baseline,
) -> Group {
    let seed = stats::seed_for(&format!("{task}\0{config}"));
    let evaluated: Vec<&RunStats> = members
        .iter()
        .copied()
        .filter(|r| !r.infra_failure)
        .collect();
    let finals: Vec<f64> = evaluated.iter().filter_map(|r| r.final_score).collect();
    let mut note = None;
    let usable = match base.value {
        Some(b) if b == 0.0 || !b.is_finite() => {
            note = Some("the baseline is 0, so relative improvement is undefined".to_string());
            None
        }
        Some(_) if evaluated.is_empty() => None,
        other => other,
    };
    if base.value.is_none() {
        note = Some(
            "no baseline: run the baseline agent on this task, pass --baseline, or set \
             `baseline` in task.toml"
                .to_string(),
        );
    }
    let rates = |pick: fn(&RunStats) -> Option<f64>| {
        usable.and_then(|b| {
            ByThreshold::build(|t| {
                stats::rate(hits(&evaluated, pick, b, direction, t), evaluated.len())
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
        baseline: base.value,
        baseline_source: base.source,
        baseline_runs: base.runs,
        final_score: stats::estimate(&finals, seed ^ 0xf1),
        success_rate,
        success_rate_any_step,
        average_improvement,
        cost_usd: Usage::of(members.iter().filter_map(|r| r.cost_usd)),
        tokens: Usage::of(members.iter().filter_map(|r| r.tokens.map(|t| t as f64))),
        wall_time_s: Usage::of(members.iter().filter_map(|r| r.wall_time)),
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
            infra_failure: infra,
            final_score: fin,
            best_score: best,
            ..RunStats::default()
        }
    }

    fn facts(direction: Direction, baseline: Option<f64>) -> BTreeMap<String, TaskFacts> {
        BTreeMap::from([(
            "toy".to_string(),
            TaskFacts {
                direction,
                baseline,
                paper_baseline: Some(0.25),
            },
        )])
    }

    fn no_flag() -> BTreeMap<Option<String>, f64> {
        BTreeMap::new()
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
        let g = summarize(&runs, &facts(Direction::Higher, Some(0.1)), &no_flag());
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].config, "baseline");
        let r = &g[1];
        assert_eq!(r.config, "research (m1; edit m2)");
        assert_eq!(r.baseline, Some(0.5));
        assert_eq!(
            (r.baseline_source, r.baseline_runs),
            (BaselineSource::BaselineRuns, 2)
        );
        assert_eq!((r.runs, r.infra_failures, r.evaluated_runs), (4, 1, 3));
        assert_eq!(r.runs_without_final_score, 1);
        let s = r.success_rate.as_ref().unwrap();
        assert_eq!((s.t10.k, s.t10.n), (1, 3));
        assert_eq!((s.t5.k, s.t5.n), (1, 3));
        assert_eq!(s.t10.ci95, stats::wilson(1, 3));
        let any = r.success_rate_any_step.as_ref().unwrap();
        assert_eq!(any.t10.k, 2);
        assert_eq!(any.t20.k, 1, "0.6 is not more than 20%");
        let imp = r.average_improvement.as_ref().unwrap();
        assert!((imp.mean - (0.2 + 0.04) / 2.0).abs() < 1e-12);
        assert_eq!(imp.n, 2);
    }

    #[test]
    fn baseline_agent_is_never_a_success_against_its_own_runs() {
        let runs = vec![
            run("baseline", Some(0.4), Some(0.4), false),
            run("baseline", Some(0.6), Some(0.6), false),
        ];
        let g = summarize(&runs, &facts(Direction::Higher, Some(0.1)), &no_flag());
        assert_eq!(g[0].baseline_source, BaselineSource::BaselineRuns);
        assert!(g[0].success_rate.is_none() && g[0].average_improvement.is_none());
        assert!(g[0].note.as_deref().unwrap().contains("are the baseline"));
        // Against a baseline from elsewhere it is judged like any agent.
        let flag = BTreeMap::from([(None, 0.5)]);
        let g = summarize(&runs, &facts(Direction::Higher, Some(0.1)), &flag);
        assert_eq!(g[0].baseline_source, BaselineSource::Flag);
        assert_eq!(g[0].success_rate.as_ref().unwrap().t10.k, 1);
    }

    #[test]
    fn baseline_order_is_flag_runs_task_toml_paper() {
        let runs = vec![
            run("baseline", Some(0.4), Some(0.4), false),
            run("research", Some(0.7), Some(0.7), false),
        ];
        let facts_both = facts(Direction::Higher, Some(0.3));
        let pick = |runs: &[RunStats], f: &BTreeMap<Option<String>, f64>, facts| {
            let b = baseline_for("toy", runs, facts, f);
            (b.value, b.source)
        };
        let per_task = BTreeMap::from([(Some("toy".to_string()), 0.9), (None, 0.1)]);
        assert_eq!(
            pick(&runs, &per_task, &facts_both["toy"]),
            (Some(0.9), BaselineSource::Flag),
            "a value for the task beats one for every task"
        );
        assert_eq!(
            pick(&runs, &no_flag(), &facts_both["toy"]),
            (Some(0.4), BaselineSource::BaselineRuns)
        );
        assert_eq!(
            pick(&runs[1..], &no_flag(), &facts_both["toy"]),
            (Some(0.3), BaselineSource::TaskToml)
        );
        let paper_only = facts(Direction::Higher, None);
        assert_eq!(
            pick(&runs[1..], &no_flag(), &paper_only["toy"]),
            (Some(0.25), BaselineSource::PaperBaseline)
        );
    }

    #[test]
    fn declared_baseline_is_the_fallback_and_lower_wins_when_asked() {
        let runs = vec![
            run("research", Some(8.0), Some(8.0), false),
            run("research", Some(11.0), Some(7.0), false),
        ];
        let g = summarize(&runs, &facts(Direction::Lower, Some(10.0)), &no_flag());
        assert_eq!(g[0].baseline_source, BaselineSource::TaskToml);
        let s = g[0].success_rate.as_ref().unwrap();
        assert_eq!((s.t10.k, s.t10.n), (1, 2));
        let any = g[0].success_rate_any_step.as_ref().unwrap();
        assert_eq!(any.t10.k, 2);
        assert!(
            (g[0].average_improvement.as_ref().unwrap().mean - (0.2 - 0.1) / 2.0).abs() < 1e-12
        );
    }

    #[test]
    fn unknown_baseline_gives_no_success_rate() {
        let runs = vec![run("research", Some(0.7), Some(0.7), false)];
        let mut f = facts(Direction::Higher, None);
        f.get_mut("toy").unwrap().paper_baseline = None;
        let g = summarize(&runs, &f, &no_flag());
        assert_eq!(g[0].baseline_source, BaselineSource::Unknown);
        assert!(g[0].success_rate.is_none() && g[0].average_improvement.is_none());
        assert!(g[0].note.as_deref().unwrap().contains("baseline"));
        let fs = g[0].final_score.as_ref().unwrap();
        assert_eq!((fs.mean, fs.ci95), (0.7, None));
    }
}
