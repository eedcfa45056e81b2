//! Runs on disk: finding them in a log folder and reading what they were
//! (metadata, logs, snapshots).
//!
//! Two layouts are read. An mlab run is a folder holding `run.json` and
//! `env_log/`. A run of the original MLAgentBench is a folder holding
//! `env_log/trace.json` (what the original's eval walks for), with the
//! runner's redirected output in `<run>/log` and its parsed arguments
//! printed there as `Namespace(...)`. This module only reads; scoring and
//! statistics live elsewhere.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;
use walkdir::WalkDir;

use crate::run::record::{ExitReason, RunRecord};

/// Which program wrote the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunLayout {
    Mlab,
    Original,
}

/// A workspace snapshot: `step_N_files` (step `Some(N)`) or `step_final_files`.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub step: Option<u64>,
    pub dir: PathBuf,
}

/// Everything eval needs to know about one run.
#[derive(Debug, Clone)]
pub struct Run {
    pub dir: PathBuf,
    pub layout: RunLayout,
    /// `run.json` (mlab runs); None for the original's runs.
    pub record: Option<RunRecord>,
    /// The original runner's arguments from `<run>/log` (original runs).
    pub namespace: Vec<(String, String)>,
    /// Intermediate snapshots, by step.
    pub steps: Vec<Snapshot>,
    pub final_snapshot: Option<Snapshot>,
    /// Actions named in `env_log/trace.json` (empty when it is missing).
    pub trace_actions: Vec<String>,
    pub trace_readable: bool,
    /// Contents of `env_log/error.txt`.
    pub error_txt: Option<String>,
    /// Contents of `env_log/overall_time.txt`.
    pub overall_time: Option<String>,
    /// `<run>/log` and `agent_log/main_log` (empty when missing).
    pub log: String,
    pub main_log: String,
}

/// Folders under `root` (at any depth, `root` included) that hold a run.
/// A run folder is not searched further: its snapshots may hold anything.
pub fn discover(root: &Path) -> Result<Vec<(PathBuf, RunLayout)>> {
    let mut found = Vec::new();
    let mut walk = WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = walk.next() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                if e.depth() == 0 {
                    return Err(e).with_context(|| format!("could not read {}", root.display()));
                }
                crate::ui::warn(format!("skipping what could not be read: {e}"));
                continue;
            }
        };
        if !entry.file_type().is_dir() {
            continue;
        }
        let dir = entry.path();
        if entry.depth() > 0 && entry.file_name().to_string_lossy().starts_with('.') {
            walk.skip_current_dir();
            continue;
        }
        if !dir.join("env_log").is_dir() {
            continue;
        }
        if dir.join("run.json").is_file() {
            found.push((dir.to_path_buf(), RunLayout::Mlab));
        } else if dir.join("env_log/trace.json").is_file() {
            found.push((dir.to_path_buf(), RunLayout::Original));
        }
        walk.skip_current_dir();
    }
    Ok(found)
}

impl Run {
    /// Reads the run in `dir`. Missing pieces are left empty (a crashed
    /// run lacks some); only an unreadable `run.json` is an error.
    pub fn load(dir: &Path, layout: RunLayout) -> Result<Run> {
        let env_log = dir.join("env_log");
        let record = match layout {
            RunLayout::Mlab => Some(RunRecord::read(&dir.join("run.json"))?),
            RunLayout::Original => None,
        };
        let log = read_lossy(&dir.join("log"));
        let namespace = match layout {
            RunLayout::Original => parse_namespace(&log),
            RunLayout::Mlab => Vec::new(),
        };
        let (trace_actions, trace_readable) = read_trace_actions(&env_log.join("trace.json"));
        let (steps, final_snapshot) = list_snapshots(&env_log.join("traces"));
        Ok(Run {
            dir: dir.to_path_buf(),
            layout,
            record,
            namespace,
            steps,
            final_snapshot,
            trace_actions,
            trace_readable,
            error_txt: std::fs::read_to_string(env_log.join("error.txt")).ok(),
            overall_time: std::fs::read_to_string(env_log.join("overall_time.txt")).ok(),
            log,
            main_log: read_lossy(&dir.join("agent_log/main_log")),
        })
    }

    /// The task named in `run.json`.
    pub fn recorded_task(&self) -> Option<&str> {
        self.record
            .as_ref()
            .map(|r| r.task.as_str())
            .filter(|t| !t.is_empty())
    }

    /// How the run ended, as `run.json` says (None while it was running,
    /// and for the original's runs).
    pub fn exit_reason(&self) -> Option<ExitReason> {
        self.record.as_ref().and_then(|r| r.exit_reason)
    }

    /// A field of the original runner's arguments.
    pub fn arg(&self, key: &str) -> Option<&str> {
        self.namespace
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The agent, in mlab's names (the original's class names are mapped).
    pub fn agent(&self) -> Option<String> {
        match self.layout {
            RunLayout::Mlab => self
                .record
                .as_ref()
                .map(|r| r.agent.clone())
                .filter(|a| !a.is_empty()),
            RunLayout::Original => self.arg("agent_type").map(|a| agent_name(a).to_string()),
        }
    }

    /// The models as run.json's `llm` object ({"main","fast","edit"}).
    pub fn llm(&self) -> Value {
        match self.layout {
            RunLayout::Mlab => self
                .record
                .as_ref()
                .and_then(|r| r.llm.as_ref())
                .map_or(Value::Null, |m| serde_json::json!(m)),
            RunLayout::Original => {
                if self.namespace.is_empty() {
                    return Value::Null;
                }
                let get = |k: &str| {
                    self.arg(k)
                        .map(|v| Value::String(v.to_string()))
                        .unwrap_or(Value::Null)
                };
                serde_json::json!({
                    "main": get("llm_name"),
                    "fast": get("fast_llm_name"),
                    "edit": get("edit_script_llm_name"),
                })
            }
        }
    }

    /// run.json `config`: the configuration's identity (agent, provider
    /// and model names, or `--config-name`), for runs that record one.
    pub fn config(&self) -> Option<String> {
        self.record
            .as_ref()
            .map(|r| r.config.trim())
            .filter(|c| !c.is_empty())
            .map(String::from)
    }

    /// Whether the agent submitted: a "Final Answer" step in the trace (as
    /// the original), or mlab's own exit reason when the trace is unreadable.
    pub fn submitted_final_answer(&self) -> bool {
        self.trace_actions.iter().any(|a| a == "Final Answer")
            || (!self.trace_readable && self.exit_reason() == Some(ExitReason::FinalAnswer))
    }

    /// The run's folder name and its two parents: `<exp>/<task>/<run>`.
    pub fn folder_task_name(&self) -> Option<String> {
        self.dir
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
    }
}

/// The original's agent class names in mlab's vocabulary.
pub fn agent_name(original: &str) -> &str {
    match original {
        "Agent" => "baseline",
        "ResearchAgent" => "research",
        "SimpleActionAgent" => "simple",
        "ReasoningActionAgent" => "react",
        "LangChainAgent" => "langchain",
        "AutoGPTAgent" => "autogpt",
        other => other,
    }
}

fn read_lossy(p: &Path) -> String {
    std::fs::read(p)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn read_trace_actions(p: &Path) -> (Vec<String>, bool) {
    #[derive(serde::Deserialize)]
    struct Trace {
        #[serde(default)]
        steps: Vec<TraceStep>,
    }
    #[derive(serde::Deserialize)]
    struct TraceStep {
        action: TraceAction,
    }
    #[derive(serde::Deserialize)]
    struct TraceAction {
        #[serde(default)]
        name: String,
    }
    let Ok(text) = std::fs::read(p) else {
        return (Vec::new(), false);
    };
    match serde_json::from_slice::<Trace>(&text) {
        Ok(t) => (t.steps.into_iter().map(|s| s.action.name).collect(), true),
        Err(_) => (Vec::new(), false),
    }
}

fn list_snapshots(traces: &Path) -> (Vec<Snapshot>, Option<Snapshot>) {
    let mut steps = Vec::new();
    let mut last = None;
    let Ok(entries) = std::fs::read_dir(traces) else {
        return (steps, last);
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        if name == "step_final_files" {
            last = Some(Snapshot { step: None, dir });
        } else if let Some(n) = name
            .strip_prefix("step_")
            .and_then(|r| r.strip_suffix("_files"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            steps.push(Snapshot { step: Some(n), dir });
        }
    }
    steps.sort_by_key(|s| s.step);
    (steps, last)
}

/// Reads `key=value` pairs from the first `Namespace(...)` line that the
/// original runner printed. Values keep their text; quotes are removed.
pub fn parse_namespace(log: &str) -> Vec<(String, String)> {
    let Some(line) = log
        .lines()
        .find(|l| l.trim_start().starts_with("Namespace("))
    else {
        return Vec::new();
    };
    let body = line.trim_start().trim_start_matches("Namespace(");
    let chars: Vec<char> = body.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && (chars[i] == ' ' || chars[i] == ',') {
            i += 1;
        }
        let start = i;
        while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        if i >= chars.len() || chars[i] != '=' || start == i {
            break;
        }
        let key: String = chars[start..i].iter().collect();
        i += 1;
        let mut value = String::new();
        if i < chars.len() && (chars[i] == '\'' || chars[i] == '"') {
            let quote = chars[i];
            i += 1;
            while i < chars.len() && chars[i] != quote {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                value.push(chars[i]);
                i += 1;
            }
            i += 1;
        } else {
            // Unquoted: numbers, None, booleans, lists. Lists may hold commas.
            let mut depth = 0i32;
            while i < chars.len() {
                let c = chars[i];
                if depth == 0 && (c == ',' || c == ')') {
                    break;
                }
                match c {
                    '[' | '(' | '{' => depth += 1,
                    ']' | ')' | '}' => depth -= 1,
                    _ => {}
                }
                value.push(c);
                i += 1;
            }
        }
        out.push((key, value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_line_of_the_original_runner_is_parsed() {
        let log = "some noise\nNamespace(task='cifar10', log_dir='final_exp_logs/x/cifar10/1', \
                   max_steps=50, actions_remove_from_prompt=['a', 'b'], resume=None, \
                   agent_type='ResearchAgent', llm_name=\"claude-v1\")\nmore\n";
        let ns = parse_namespace(log);
        let get = |k: &str| ns.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
        assert_eq!(get("task"), Some("cifar10"));
        assert_eq!(get("max_steps"), Some("50"));
        assert_eq!(get("actions_remove_from_prompt"), Some("['a', 'b']"));
        assert_eq!(get("resume"), Some("None"));
        assert_eq!(get("agent_type"), Some("ResearchAgent"));
        assert_eq!(get("llm_name"), Some("claude-v1"));
        assert!(parse_namespace("no args here").is_empty());
    }

    #[test]
    fn snapshots_are_listed_by_step_number() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "step_10_files",
            "step_2_files",
            "step_final_files",
            "step_x_files",
        ] {
            std::fs::create_dir_all(dir.path().join(name)).unwrap();
        }
        std::fs::write(dir.path().join("step_3_files"), "a file, not a snapshot").unwrap();
        let (steps, last) = list_snapshots(dir.path());
        let ns: Vec<_> = steps.iter().map(|s| s.step.unwrap()).collect();
        assert_eq!(ns, vec![2, 10]);
        assert!(last.is_some());
    }
}
