//! Studies: many runs (tasks x configurations x seeds) from one command.
//!
//! - [`lock`]: one study command per experiment folder at a time.
//! - [`plan`]: the cross product, its stable ids and folders, plan.json.
//! - [`status`]: each run's state, read from disk (run.json, the
//!   workspace lock).
//! - [`queue`]: the local executor: each run is a child process `mlab
//!   run-one plan.json --index N`, at most `jobs` at once, GPU runs each
//!   holding a device.
//! - [`slurm`]: the Slurm executor: the runs as one sbatch job array, and
//!   what squeue/sacct say of them.
//! - [`progress`]: what a run is doing, read from its log folder as it
//!   grows (steps, last action, tokens, cost), for live progress lines.
//!
//! A run is made by `mlab run-one`, whoever starts it (the local queue, a
//! Slurm array job, a person); [`how_to_start`] decides whether it starts
//! afresh, resumes from its last step or has nothing left to do.

pub mod lock;
pub mod plan;
pub mod progress;
pub mod queue;
pub mod slurm;
pub mod status;

use anyhow::{bail, Context, Result};

use plan::PlannedRun;
use status::State;

/// How `mlab run-one` takes up a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// It already ended for a reason of its own: nothing to do.
    AlreadyFinished,
    /// Never started (or started without completing a step): a new run.
    Fresh,
    /// Interrupted, killed or ended by an infrastructure failure after at
    /// least one step: resume it into its own log folder from its last
    /// completed step.
    Resume,
}

/// Decides how to take up `run`. A run whose earlier attempt completed no
/// step has its `env_log` kept as `env_log.abandoned-<time>` (nothing is
/// lost) and starts afresh; a run another process holds now is refused.
pub fn how_to_start(run: &PlannedRun) -> Result<Start> {
    let (state, _) = status::state_of(run);
    match state {
        State::Finished => Ok(Start::AlreadyFinished),
        State::Pending => Ok(Start::Fresh),
        State::Running => bail!(
            "run {} is running now in another process (its workspace lock {} is held); wait for it, or stop that process first",
            run.id,
            status::lock_path(run).unwrap_or_default().display()
        ),
        State::Interrupted | State::InfraFailed => {
            let env_log = run.log_dir.join("env_log");
            if status::steps_so_far(&run.log_dir).unwrap_or(0) > 0 {
                return Ok(Start::Resume);
            }
            if env_log.exists() {
                let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
                let kept = run.log_dir.join(format!("env_log.abandoned-{stamp}"));
                std::fs::rename(&env_log, &kept).with_context(|| {
                    format!(
                        "could not move aside {} (a start that completed no step)",
                        env_log.display()
                    )
                })?;
            }
            Ok(Start::Fresh)
        }
    }
}

/// The `mlab run` arguments that take up `run` as `start` says (the plan's
/// own, plus `--resume <log dir>` to resume in place), with the device.
pub fn run_args(
    plan: &plan::Plan,
    run: &PlannedRun,
    start: &Start,
    device: Option<&str>,
) -> Vec<String> {
    let mut argv = plan.command_line(run, device);
    if *start == Start::Resume {
        argv.push("--resume".into());
        argv.push(run.log_dir.display().to_string());
    }
    argv
}
