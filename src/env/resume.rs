//! Resume: pick up an earlier run after step N (by default its last
//! completed step).
//!
//! The steps come from the old run's `events.jsonl` (a log from the
//! original MLAgentBench, which has none, falls back to its `trace.json`);
//! the workspace is rebuilt from the prepared task plus the old run's
//! `step_N_files`. Resuming into a new log folder copies the kept steps
//! and their snapshots there (deduplicated), so the new folder stands on
//! its own. Resuming into the same folder appends a resume point to
//! `events.jsonl` and moves snapshots of dropped steps to
//! `env_log/discarded/<time>/`; nothing already written is deleted.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::events::{self, RecordedStep};
use super::snapshot::Store;
use super::trace::Step;
use super::ResumeFrom;

/// What is kept of the earlier run.
#[derive(Debug)]
pub struct Prefix {
    pub from_log_dir: PathBuf,
    /// The last kept step.
    pub step: usize,
    /// Steps 0..=step with their low-level steps.
    pub steps: Vec<RecordedStep>,
    /// The old run's snapshot after `step`.
    pub snapshot: PathBuf,
    /// Resuming into the log folder being resumed.
    pub same_dir: bool,
}

pub fn load(r: &ResumeFrom, new_log_dir: &Path) -> Result<Prefix> {
    let old_env = r.log_dir.join("env_log");
    let events_path = old_env.join("events.jsonl");
    let trace_path = old_env.join("trace.json");
    let all = if events_path.is_file() {
        events::read_steps(&events_path)?
    } else if trace_path.is_file() {
        from_trace_json(&trace_path)?
    } else {
        bail!(
            "--resume {}: no env_log/events.jsonl or env_log/trace.json there; give the log folder of an earlier run",
            r.log_dir.display()
        );
    };
    if all.is_empty() {
        bail!(
            "--resume {}: that run completed no step, so there is nothing to resume; start a new run instead",
            r.log_dir.display()
        );
    }
    let step = r.step.unwrap_or(all.len() - 1);
    if step >= all.len() {
        bail!(
            "--resume-step {step}: the run in {} has steps 0 to {} only",
            r.log_dir.display(),
            all.len() - 1
        );
    }
    let snapshot = old_env.join("traces").join(format!("step_{step}_files"));
    if !snapshot.is_dir() {
        bail!(
            "--resume-step {step}: the snapshot {} is missing, so the workspace cannot be restored; pick another step",
            snapshot.display()
        );
    }
    let same_dir = match (r.log_dir.canonicalize(), new_log_dir.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let mut steps = all;
    steps.truncate(step + 1);
    Ok(Prefix {
        from_log_dir: r.log_dir.clone(),
        step,
        steps,
        snapshot,
        same_dir,
    })
}

/// Steps of an original MLAgentBench trace.json; low-level steps are
/// assigned to the step whose time they precede (as the original's resume
/// kept those older than the resume step).
fn from_trace_json(path: &Path) -> Result<Vec<RecordedStep>> {
    #[derive(serde::Deserialize)]
    struct T {
        steps: Vec<Step>,
        #[serde(default)]
        low_level_steps: Vec<Step>,
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read {}", path.display()))?;
    let t: T = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a trace.json", path.display()))?;
    let mut low = t.low_level_steps.into_iter().peekable();
    Ok(t.steps
        .into_iter()
        .map(|step| {
            let mut mine = Vec::new();
            while let Some(l) = low.next_if(|l| l.timestamp <= step.timestamp) {
                mine.push(l);
            }
            RecordedStep {
                step,
                low_level: mine,
            }
        })
        .collect())
}

/// Puts the kept steps' snapshots in place in the new log folder.
pub fn carry_snapshots(p: &Prefix, env_log: &Path, store: &mut Store) -> Result<()> {
    let traces = env_log.join("traces");
    if p.same_dir {
        let stale = stale_snapshots(&traces, p.step)?;
        if stale.is_empty() {
            return Ok(());
        }
        let dest = env_log
            .join("discarded")
            .join(chrono::Local::now().format("%Y-%m-%d_%H-%M-%S").to_string());
        std::fs::create_dir_all(&dest)?;
        for name in stale {
            std::fs::rename(traces.join(&name), dest.join(&name))
                .with_context(|| format!("could not move {name} aside"))?;
        }
        return Ok(());
    }
    let old = p.from_log_dir.join("env_log/traces");
    for k in 0..=p.step {
        let name = format!("step_{k}_files");
        let dir = old.join(&name);
        if dir.is_dir() {
            store
                .import(&dir, &name)
                .with_context(|| format!("could not copy the snapshot {}", dir.display()))?;
        }
    }
    Ok(())
}

/// Snapshot folders in `traces` for steps after `step`, and the final one.
fn stale_snapshots(traces: &Path, step: usize) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(traces) else {
        return Ok(out);
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let later = name
            .strip_prefix("step_")
            .and_then(|r| r.strip_suffix("_files"))
            .map(|n| n == "final" || n.parse::<usize>().is_ok_and(|n| n > step))
            .unwrap_or(false);
        if later {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}
