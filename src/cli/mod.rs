//! Command-line definitions, and nothing else.
//!
//! Every subcommand's arguments are declared here with clap's derive API. Code
//! below `main` receives these typed structs; no module parses raw strings
//! from `std::env::args`. Families of flags that several subcommands share
//! (LLM choice, sandbox policy) live in their own file and are flattened in.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod eval;
mod llm;
mod run;
mod sandbox;

pub use eval::{run_eval, EvalArgs};
pub use llm::{LlmArgs, LlmCheckArgs};
pub use run::RunArgs;
pub use sandbox::{SandboxArgs, SandboxExecArgs, SandboxKind};

/// mlab: run, score and compare LLM research agents on ML tasks.
#[derive(Debug, Parser)]
#[command(name = "mlab", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand understands.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Folder holding the task folders (default: $MLAB_BENCHMARKS, then
    /// ./benchmarks, then the folder installed by install.sh).
    #[arg(long, global = true, value_name = "DIR")]
    pub benchmarks_dir: Option<PathBuf>,

    /// More log output (repeat for even more). RUST_LOG overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the tasks, whether their data is prepared, and what they need.
    Tasks(TasksArgs),
    /// Make a task's data by running its script/prepare.py.
    Prepare(PrepareArgs),
    /// Check this machine: Python, task packages, sandbox, GPUs, keys, Slurm.
    Doctor(DoctorArgs),
    /// Run an agent on a task in a sandboxed workspace.
    Run(Box<RunArgs>),
    /// Score the runs in a log folder with each task's script/eval.py.
    Eval(EvalArgs),
    /// Build a report (tables and plots) from eval results.
    Report(ReportArgs),
    /// Send one tiny request to a model and print what came back.
    LlmCheck(LlmCheckArgs),
    /// Run one command the way the agent's code runs (sandbox, limits).
    #[command(hide = true)]
    SandboxExec(Box<SandboxExecArgs>),
}

#[derive(Debug, Args)]
pub struct TasksArgs {
    /// Print JSON (one array of task objects) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// Tasks to prepare.
    #[arg(value_name = "TASK", required_unless_present = "all")]
    pub tasks: Vec<String>,

    /// Prepare every task that can be prepared on this machine (tasks that need
    /// Kaggle or the internet are skipped unless named).
    #[arg(long, conflicts_with = "tasks")]
    pub all: bool,

    /// Prepare again even when the task is already marked prepared.
    #[arg(long)]
    pub force: bool,

    /// Python interpreter for prepare.py (default: $MLAB_PYTHON, then the
    /// venv made by install.sh, then python3).
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,

    /// You accept the Kaggle competition rules of the tasks you prepare.
    #[arg(long)]
    pub accept_rules: bool,

    /// Folder of archives downloaded elsewhere; passed to prepare.py as
    /// --data-dir (default: $MLAB_DATA_CACHE).
    #[arg(long, value_name = "DIR", env = "MLAB_DATA_CACHE")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Python interpreter to check (default as for `prepare`).
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,

    /// Print JSON instead of lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Results file written by `mlab eval`.
    #[arg(long, value_name = "FILE")]
    pub results: Option<PathBuf>,
}
