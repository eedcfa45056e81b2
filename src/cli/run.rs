//! Flags of `mlab run`, following the original runner's (hyphenated) names.

use std::path::PathBuf;

use clap::Args;

use super::{LlmArgs, SandboxArgs};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Task to run (a folder name under the benchmarks folder).
    #[arg(long)]
    pub task: String,

    /// Folder for this run's logs (agent_log/, env_log/, run.json).
    #[arg(long, default_value = "./logs")]
    pub log_dir: PathBuf,

    /// Folder under which the workspace <work-dir>/<task> is made.
    #[arg(long, default_value = "./workspace")]
    pub work_dir: PathBuf,

    /// Maximum number of environment steps.
    #[arg(long, default_value_t = 50)]
    pub max_steps: u64,

    /// Maximum wall time of the run in seconds.
    #[arg(long, default_value_t = 18000.0)]
    pub max_time: f64,

    /// GPU index given to scripts as CUDA_VISIBLE_DEVICES.
    #[arg(long, default_value = "0")]
    pub device: String,

    /// Python interpreter for scripts (default: $MLAB_PYTHON, the install.sh
    /// venv, then python3).
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,

    /// Resume the run whose log folder this is (into --log-dir, which may be
    /// the same folder).
    #[arg(long, value_name = "LOG_DIR")]
    pub resume: Option<PathBuf>,

    /// Last step of the earlier run to keep (default: its last completed
    /// one); the workspace is restored from that step's snapshot.
    #[arg(long, value_name = "N")]
    pub resume_step: Option<u64>,

    /// Offer the Request Help action: the agent may ask you a question on
    /// the terminal and wait for your reply.
    #[arg(long)]
    pub interactive: bool,

    /// Agent: research, baseline, simple, react, tools, external, actions.
    /// The original class names are accepted too.
    #[arg(long, visible_alias = "agent-type", default_value = "research")]
    pub agent: String,

    /// For --agent actions: JSONL of {"name","args"} or a trace.json to replay.
    #[arg(long, value_name = "FILE")]
    pub actions: Option<PathBuf>,

    /// Per-command timeout of Execute Script in seconds (default: the run's
    /// remaining time).
    #[arg(long, value_name = "SECS")]
    pub exec_timeout: Option<f64>,

    /// Seed recorded with the run (and given to agents that sample).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    #[command(flatten)]
    pub llm: LlmArgs,

    #[command(flatten)]
    pub sandbox: SandboxArgs,
}
