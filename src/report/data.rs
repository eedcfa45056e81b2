//! The eval results as the report reads them back: eval.json (one entry per
//! run) and eval_summary.json (one row per task and configuration), plus
//! what each run's folder says about its configuration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::Value;

use crate::eval;

/// A success rate as eval_summary.json holds it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct RateIn {
    pub k: usize,
    pub n: usize,
    pub rate: f64,
    pub ci95: [f64; 2],
}

/// A mean with its interval as eval_summary.json holds it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct EstimateIn {
    pub mean: f64,
    #[serde(default)]
    pub ci95: Option<[f64; 2]>,
    pub n: usize,
}

/// A total and mean per run.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct UsageIn {
    pub total: f64,
    pub mean: f64,
    pub n: usize,
}

/// One row of eval_summary.json's `summary`.
#[derive(Debug, Clone, Deserialize)]
pub struct GroupIn {
    pub task: String,
    pub config: String,
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub direction: String,
    pub runs: usize,
    #[serde(default)]
    pub infra_failures: usize,
    #[serde(default)]
    pub evaluated_runs: usize,
    #[serde(default)]
    pub baseline: Option<f64>,
    #[serde(default)]
    pub baseline_source: String,
    #[serde(default)]
    pub baseline_runs: usize,
    #[serde(default)]
    pub final_score: Option<EstimateIn>,
    #[serde(default)]
    pub success_rate: Option<BTreeMap<String, RateIn>>,
    #[serde(default)]
    pub average_improvement: Option<EstimateIn>,
    #[serde(default)]
    pub cost_usd: Option<UsageIn>,
    #[serde(default)]
    pub tokens: Option<UsageIn>,
    #[serde(default)]
    pub wall_time_s: Option<UsageIn>,
    #[serde(default)]
    pub note: Option<String>,
}

impl GroupIn {
    /// The success rate at 10%, the paper's headline.
    pub fn success10(&self) -> Option<&RateIn> {
        self.success_rate.as_ref().and_then(|m| m.get("10"))
    }

    pub fn lower_is_better(&self) -> bool {
        self.direction == "lower"
    }
}

#[derive(Debug, Deserialize)]
struct SummaryIn {
    #[serde(default)]
    log_folder: String,
    summary: Vec<GroupIn>,
}

/// One entry of eval.json (the keys the report uses).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct RunIn {
    pub path: String,
    pub score: Vec<f64>,
    pub score_steps: Vec<u64>,
    pub final_score: f64,
    pub total_time: f64,
    pub submitted_final_answer: bool,
    pub error: String,
    pub extra: Value,
    pub task: Option<String>,
    pub agent: Option<String>,
    pub llm: Value,
    pub steps: Value,
    pub tokens: Value,
    pub cost_usd: Value,
    pub exit_reason: Value,
    pub best_score: Option<f64>,
    pub step_scores: Vec<Option<f64>>,
    pub graded_final_score: Option<f64>,
    pub eval_errors: Vec<Value>,
}

impl RunIn {
    pub fn steps(&self) -> Option<u64> {
        self.steps.as_u64()
    }

    /// Input plus output tokens.
    pub fn total_tokens(&self) -> Option<u64> {
        let t = &self.tokens;
        match (t.get("input"), t.get("output")) {
            (Some(i), Some(o)) => Some(i.as_u64()? + o.as_u64()?),
            _ => t.as_u64(),
        }
    }

    pub fn exit(&self) -> String {
        match &self.exit_reason {
            Value::String(s) => s.clone(),
            _ if self.extra.get("error").and_then(Value::as_bool) == Some(true) => "error".into(),
            _ if self.submitted_final_answer => "final_answer".into(),
            _ => "ended".into(),
        }
    }

    /// The models, "main" first, as "gpt-4o" or "gpt-4o, fast gpt-4o-mini".
    pub fn models(&self) -> String {
        let mut parts = Vec::new();
        for key in ["main", "fast", "edit"] {
            if let Some(m) = self.llm.get(key).and_then(Value::as_str) {
                let id = crate::llm::model_identity(m);
                if key == "main" {
                    parts.push(id);
                } else if !parts.contains(&id) {
                    parts.push(format!("{key} {id}"));
                }
            }
        }
        if parts.is_empty() {
            "-".into()
        } else {
            parts.join(", ")
        }
    }
}

/// One run: its entry, its folder and its configuration.
#[derive(Debug, Clone)]
pub struct RunData {
    /// Its number in the report (runs/<id>.html), in folder order.
    pub id: usize,
    /// The run's folder on disk.
    pub dir: PathBuf,
    /// The folder relative to the log folder.
    pub folder: String,
    /// The configuration it is grouped under (as in the summary).
    pub config: String,
    pub result: RunIn,
}

impl RunData {
    pub fn task(&self) -> &str {
        self.result.task.as_deref().unwrap_or("?")
    }
}

/// Everything the report shows.
#[derive(Debug, Clone)]
pub struct Data {
    pub log_folder: PathBuf,
    pub groups: Vec<GroupIn>,
    pub runs: Vec<RunData>,
    /// Configurations in summary order, then any only runs name.
    pub configs: Vec<String>,
    /// Tasks in summary order.
    pub tasks: Vec<String>,
}

impl Data {
    /// Reads eval.json and eval_summary.json.
    pub fn load(log: &Path, eval_path: &Path, summary_path: &Path) -> Result<Data> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).with_context(|| {
                format!(
                    "could not read {}; run `mlab eval --log-folder` first",
                    p.display()
                )
            })
        };
        let entries: BTreeMap<String, RunIn> = serde_json::from_str(&read(eval_path)?)
            .with_context(|| {
                format!(
                    "{} is not eval.json as `mlab eval` writes it; delete it and run again",
                    eval_path.display()
                )
            })?;
        let summary: SummaryIn = serde_json::from_str(&read(summary_path)?).with_context(|| {
            format!(
                "{} is not eval_summary.json as `mlab eval` writes it; delete it and run again",
                summary_path.display()
            )
        })?;
        let recorded_root = PathBuf::from(&summary.log_folder);
        let mut runs: Vec<RunData> = entries
            .into_iter()
            .map(|(key, result)| {
                let dir = run_dir(log, &recorded_root, &key);
                let folder = dir
                    .strip_prefix(log)
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| dir.display().to_string());
                let folder = if folder.is_empty() {
                    ".".into()
                } else {
                    folder
                };
                let config = run_config(&dir)
                    .unwrap_or_else(|| eval::config_label(result.agent.as_deref(), &result.llm));
                RunData {
                    id: 0,
                    dir,
                    folder,
                    config,
                    result,
                }
            })
            .collect();
        runs.sort_by(|a, b| a.folder.cmp(&b.folder));
        for (i, r) in runs.iter_mut().enumerate() {
            r.id = i + 1;
        }
        let mut configs: Vec<String> = Vec::new();
        let mut tasks: Vec<String> = Vec::new();
        for g in &summary.summary {
            if !configs.contains(&g.config) {
                configs.push(g.config.clone());
            }
            if !tasks.contains(&g.task) {
                tasks.push(g.task.clone());
            }
        }
        for r in &runs {
            if !configs.contains(&r.config) {
                configs.push(r.config.clone());
            }
        }
        Ok(Data {
            log_folder: log.to_path_buf(),
            groups: summary.summary,
            runs,
            configs,
            tasks,
        })
    }

    /// The runs of one row of the summary.
    pub fn runs_of<'a>(&'a self, g: &'a GroupIn) -> impl Iterator<Item = &'a RunData> + 'a {
        self.runs
            .iter()
            .filter(move |r| r.config == g.config && r.result.task.as_deref() == Some(&g.task))
    }

    /// "C1", "C2", ...: a configuration's short name in plots.
    pub fn short(&self, config: &str) -> String {
        match self.configs.iter().position(|c| c == config) {
            Some(i) => format!("C{}", i + 1),
            None => "C?".into(),
        }
    }

    /// The summary row a run belongs to.
    pub fn group_of(&self, r: &RunData) -> Option<&GroupIn> {
        self.groups
            .iter()
            .find(|g| g.config == r.config && r.result.task.as_deref() == Some(&g.task))
    }

    /// A run's outcome for the run list: "infra failure" (left out of the
    /// rates), "baseline" (the runs the baseline is made of), "success" or
    /// "failure" at 10% as eval judges it, or "not scored".
    pub fn outcome(&self, r: &RunData) -> &'static str {
        let exit = r.result.exit();
        let infra = matches!(exit.as_str(), "llm_error" | "harness_error" | "disk_full")
            || (r.result.exit_reason.is_null()
                && r.result
                    .extra
                    .get("connection_error")
                    .and_then(Value::as_bool)
                    == Some(true));
        if infra {
            return "infra failure";
        }
        let Some(g) = self.group_of(r) else {
            return "not scored";
        };
        if g.success_rate.is_none() && eval::is_baseline_agent(r.result.agent.as_deref()) {
            return "baseline";
        }
        let (Some(base), Some(_)) = (g.baseline, g.success10()) else {
            return "not scored";
        };
        let direction = if g.lower_is_better() {
            crate::task::Direction::Lower
        } else {
            crate::task::Direction::Higher
        };
        if eval::succeeds(r.result.graded_final_score, base, direction, 10) {
            "success"
        } else {
            "failure"
        }
    }
}

/// The run folder of an eval.json key (its env_log/trace.json): as written
/// when it exists, else moved along with the log folder.
fn run_dir(log: &Path, recorded_root: &Path, key: &str) -> PathBuf {
    let trace = PathBuf::from(key);
    let dir = trace
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    if dir.is_dir() {
        return dir;
    }
    if let Ok(rel) = dir.strip_prefix(recorded_root) {
        return log.join(rel);
    }
    if dir.is_relative() {
        return log.join(dir);
    }
    dir
}

/// run.json `config`, the configuration eval groups an mlab run under.
fn run_config(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("run.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v.get("config")?.as_str().map(str::to_string)
}
