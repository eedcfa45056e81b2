//! Where each run of a study stands, read from disk only (run.json and the
//! workspace lock), so that it is the same whoever ran the runs: the local
//! queue, Slurm, or a person by hand.
//!
//! `mlab status` merges this with what a scheduler knows
//! ([`rows`] takes an optional map index -> external state, filled in by
//! the Slurm executor from squeue/sacct).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::plan::{Plan, PlannedRun};
use crate::run::record::{ExitReason, RunRecord};

/// A run's state on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Never started (no run.json).
    Pending,
    /// A process holds its workspace lock now.
    Running,
    /// Closed, for a reason that is the run's own (final answer, limits,
    /// the agent's or model's failure).
    Finished,
    /// Started but not closed (killed), or closed as interrupted.
    Interrupted,
    /// Closed by a failure outside the agent (run.json `infra_failure`).
    InfraFailed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Running => "running",
            State::Finished => "finished",
            State::Interrupted => "interrupted",
            State::InfraFailed => "infra_failed",
        }
    }
}

/// The workspace lock of a run that names no --work-dir: the default work
/// dir `<log_dir>.workspace` holds `.<task>.lock`.
pub fn lock_path(run: &PlannedRun) -> Option<PathBuf> {
    let work = crate::env::workspace::default_work_dir(&run.log_dir).ok()?;
    Some(work.join(format!(".{}.lock", run.task)))
}

/// Whether a process holds the lock file at `path` now.
pub fn lock_held(path: &Path) -> bool {
    use rustix::fs::{flock, FlockOperation};
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    match flock(&file, FlockOperation::NonBlockingLockShared) {
        Ok(()) => {
            let _ = flock(&file, FlockOperation::Unlock);
            false
        }
        Err(e) => e == rustix::io::Errno::WOULDBLOCK,
    }
}

/// The pid written in a run's workspace lock (the process holding it, when
/// it is held).
pub fn lock_holder_pid(run: &PlannedRun) -> Option<String> {
    let text = std::fs::read_to_string(lock_path(run)?).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("pid="))
        .map(|p| p.trim().to_string())
}

/// The state of one run of a plan, with its run.json when there is one.
pub fn state_of(run: &PlannedRun) -> (State, Option<RunRecord>) {
    let record = RunRecord::read(&run.log_dir.join("run.json")).ok();
    if lock_path(run).is_some_and(|p| lock_held(&p)) {
        return (State::Running, record);
    }
    let state = match &record {
        None => {
            if run.log_dir.join("run.json").exists() {
                // Unreadable: cut off while written, so not closed.
                State::Interrupted
            } else {
                State::Pending
            }
        }
        Some(r) => classify(r),
    };
    (state, record)
}

/// A run.json's state, when no process holds the run.
pub fn classify(r: &RunRecord) -> State {
    match (&r.end_time, r.exit_reason) {
        (None, _) | (_, None) => State::Interrupted,
        (Some(_), Some(ExitReason::Interrupted)) => State::Interrupted,
        (Some(_), Some(_)) if r.infra_failure == Some(true) => State::InfraFailed,
        _ => State::Finished,
    }
}

/// One line of `mlab status`.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub index: usize,
    pub id: String,
    pub state: State,
    /// What the scheduler says of the run (Slurm's PENDING, RUNNING, ...),
    /// when it knows it.
    pub external: Option<String>,
    pub steps: Option<usize>,
    pub exit_reason: Option<String>,
    /// The final score, where `mlab eval` wrote one into eval.json.
    pub score: Option<f64>,
    pub cost_usd: Option<f64>,
    pub device: Option<String>,
}

/// Every run's row; `external` is what a scheduler knows by run index
/// (None for the local queue).
pub fn rows(plan: &Plan, external: Option<&BTreeMap<usize, String>>) -> Vec<Row> {
    let scores = scores(&plan.exp_dir);
    plan.runs
        .iter()
        .map(|run| {
            let (state, record) = state_of(run);
            Row {
                index: run.index,
                id: run.id.clone(),
                state,
                external: external.and_then(|m| m.get(&run.index).cloned()),
                steps: record.as_ref().map(|r| {
                    if r.end_time.is_none() {
                        steps_so_far(&run.log_dir).unwrap_or(r.steps)
                    } else {
                        r.steps
                    }
                }),
                exit_reason: record
                    .as_ref()
                    .and_then(|r| r.exit_reason)
                    .map(|e| e.as_str().to_string()),
                score: scores
                    .get(&crate::env::workspace::absolute(&run.log_dir))
                    .copied(),
                cost_usd: record.as_ref().map(|r| r.cost_usd),
                device: record
                    .as_ref()
                    .and_then(|r| r.flags.get("device"))
                    .and_then(|d| d.as_str())
                    .map(String::from),
            }
        })
        .collect()
}

/// Counts by state, in the order of [`State`].
pub fn counts(rows: &[Row]) -> Vec<(State, usize)> {
    [
        State::Finished,
        State::Running,
        State::Interrupted,
        State::InfraFailed,
        State::Pending,
    ]
    .into_iter()
    .map(|s| (s, rows.iter().filter(|r| r.state == s).count()))
    .collect()
}

/// Steps recorded so far in a run's events.jsonl.
pub fn steps_so_far(log_dir: &Path) -> Option<usize> {
    crate::env::events::read_steps(&log_dir.join("env_log/events.jsonl"))
        .ok()
        .map(|s| s.len())
}

/// Final scores by run log folder, from an eval.json `mlab eval` wrote in
/// the experiment folder (the original's layout: one entry per trace path,
/// with `final_score`). Missing or unreadable: none.
fn scores(exp_dir: &Path) -> BTreeMap<PathBuf, f64> {
    let mut out = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(exp_dir.join("eval.json")) else {
        return out;
    };
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(&text)
    else {
        return out;
    };
    for (trace, entry) in map {
        // mlab's graded_final_score (null when grading failed) over the
        // original's final_score (-1 then).
        let score = match entry.get("graded_final_score") {
            Some(g) => g.as_f64(),
            None => entry.get("final_score").and_then(|s| s.as_f64()),
        };
        let Some(score) = score else {
            continue;
        };
        // <log_dir>/env_log/trace.json
        let p = PathBuf::from(&trace);
        if let Some(log) = p.parent().and_then(Path::parent) {
            out.insert(crate::env::workspace::absolute(log), score);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(end: bool, reason: Option<ExitReason>) -> RunRecord {
        let mut r = RunRecord::default();
        if end {
            if let Some(reason) = reason {
                r.set_end(reason, None);
            } else {
                r.end_time = Some("t".into());
            }
        }
        r
    }

    #[test]
    fn a_run_json_tells_finished_interrupted_and_infra_failed_apart() {
        assert_eq!(classify(&record(false, None)), State::Interrupted);
        assert_eq!(
            classify(&record(true, Some(ExitReason::Interrupted))),
            State::Interrupted
        );
        assert_eq!(
            classify(&record(true, Some(ExitReason::FinalAnswer))),
            State::Finished
        );
        assert_eq!(
            classify(&record(true, Some(ExitReason::LlmError))),
            State::InfraFailed
        );
        assert_eq!(
            classify(&record(true, Some(ExitReason::ModelError))),
            State::Finished
        );
    }

    #[test]
    fn a_held_lock_reads_as_held_and_a_released_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".t.lock");
        std::fs::write(&p, "").unwrap();
        assert!(!lock_held(&p));
        let f = std::fs::File::open(&p).unwrap();
        rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
        assert!(lock_held(&p));
        drop(f);
        assert!(!lock_held(&p));
        assert!(!lock_held(&dir.path().join("missing")));
    }
}
