//! Flags of `mlab eval`, following the original's eval module where it has
//! the same flag (`--log-folder`, `--task`, `--output-file`,
//! `--eval-intermediate`).

use std::path::PathBuf;

use clap::Args;
use mlab::eval;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Folder holding runs, searched at any depth: mlab runs (run.json and
    /// env_log/) and MLAgentBench runs (env_log/trace.json).
    #[arg(long, value_name = "DIR")]
    pub log_folder: PathBuf,

    /// Task of the runs. mlab runs name their task in run.json, so for them
    /// this only selects: runs of other tasks are left out. MLAgentBench runs
    /// get this task (without it: the task in the run's `log`, then the
    /// folder name of <exp>/<task>/<run>).
    #[arg(long)]
    pub task: Option<String>,

    /// Write the results (per run, plus the summary) as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub output_file: Option<PathBuf>,

    /// Also score every intermediate step snapshot (env_log/traces/step_N_files).
    #[arg(long)]
    pub eval_intermediate: bool,

    /// Parallel scoring workers (default: the number of cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs: Option<u64>,

    /// Seconds one get_score call may take before its worker is stopped and
    /// the snapshot gets an error entry.
    #[arg(long, value_name = "SECS", default_value_t = 1800.0)]
    pub eval_timeout: f64,

    /// Neither read nor write the score cache (DIR/.mlab-eval-cache.jsonl),
    /// and score every snapshot even when its submission equals another's.
    #[arg(long)]
    pub no_cache: bool,

    /// Python interpreter for eval.py (default: $MLAB_PYTHON, then the venv
    /// made by install.sh, then python3).
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,

    /// How eval.py is confined: bubblewrap with the snapshot read-only, the
    /// answers visible and no network (auto/bwrap), or not at all (none).
    #[arg(long, value_enum, default_value_t = super::SandboxKind::Auto)]
    pub sandbox: super::SandboxKind,
}

impl From<&EvalArgs> for eval::Config {
    fn from(a: &EvalArgs) -> eval::Config {
        eval::Config {
            log_folder: a.log_folder.clone(),
            task: a.task.clone(),
            output_file: a.output_file.clone(),
            eval_intermediate: a.eval_intermediate,
            jobs: a.jobs,
            eval_timeout: a.eval_timeout,
            no_cache: a.no_cache,
            python: a.python.clone(),
            sandbox: a.sandbox.into(),
        }
    }
}
