//! Flags that choose how agent-caused code is confined, and the arguments of
//! `mlab sandbox-exec` (run one command the way the agent's code runs).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use mlab::sandbox::exec::ExecConfig;
use mlab::sandbox::{parse_size, Kind};

/// Value parser for `--mem-limit` and `--max-output`.
fn parse_size_arg(text: &str) -> Result<u64, String> {
    parse_size(text).map_err(|e| e.to_string())
}

/// `--sandbox` values (mirrors `mlab::sandbox::Kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxKind {
    /// bubblewrap when it exists and works; fail otherwise (never silently
    /// unconfined).
    #[default]
    Auto,
    /// bubblewrap namespaces.
    Bwrap,
    /// No confinement: the agent's code runs with your rights.
    None,
}

impl From<SandboxKind> for Kind {
    fn from(k: SandboxKind) -> Kind {
        match k {
            SandboxKind::Auto => Kind::Auto,
            SandboxKind::Bwrap => Kind::Bwrap,
            SandboxKind::None => Kind::None,
        }
    }
}

#[derive(Debug, Args, Clone, Default, serde::Serialize)]
pub struct SandboxArgs {
    /// How agent-caused code is confined.
    #[arg(long, value_enum, default_value_t = SandboxKind::Auto)]
    pub sandbox: SandboxKind,

    /// Memory limit per command, e.g. 8G or 512M (cgroup memory controller).
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    pub mem_limit: Option<u64>,
}

/// `mlab sandbox-exec`: one command under the agent's policy (or a
/// grader's), to see what the agent's code can see and do.
#[derive(Debug, Args)]
pub struct SandboxExecArgs {
    #[command(flatten)]
    pub sandbox: SandboxArgs,

    /// Working directory, read-write; $HOME inside.
    #[arg(long, value_name = "DIR", required_unless_present = "grader")]
    pub workspace: Option<PathBuf>,

    /// Bind SRC read-only, at the same path or at DEST (relative to the
    /// workspace). Repeatable.
    #[arg(long = "read-only", value_name = "SRC[:DEST]")]
    pub read_only: Vec<String>,

    /// Make PATH invisible inside (home and key files always are).
    /// Repeatable.
    #[arg(long, value_name = "PATH")]
    pub hide: Vec<PathBuf>,

    /// Task Python (interpreter or venv folder), made visible read-only.
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,

    /// CUDA_VISIBLE_DEVICES; also binds the GPU device nodes.
    #[arg(long)]
    pub device: Option<String>,

    /// Wall-clock limit in seconds.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,

    /// Maximum number of processes and threads.
    #[arg(long, value_name = "N")]
    pub max_procs: Option<u64>,

    /// Output limit, e.g. 1M.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    pub max_output: Option<u64>,

    /// Use the grader policy: SNAPSHOT, SCRIPT_DIR and TASK_ENV visible
    /// read-only, working directory SCRIPT_DIR.
    #[arg(long, num_args = 3, value_names = ["SNAPSHOT", "SCRIPT_DIR", "TASK_ENV"], conflicts_with_all = ["workspace", "read_only", "device"])]
    pub grader: Option<Vec<PathBuf>>,

    /// Hash the read-only files before and after; write the tamper report
    /// (JSON) here.
    #[arg(long, value_name = "FILE")]
    pub tamper_report: Option<PathBuf>,

    /// Pass this process's standard input to the command (for long-lived
    /// workers); otherwise the command reads nothing.
    #[arg(long)]
    pub stdin: bool,

    /// Run the command N times, discard its output and print the wall time
    /// per run as JSON (for measuring the sandbox's overhead).
    #[arg(long, value_name = "N", conflicts_with_all = ["stdin", "tamper_report"])]
    pub repeat: Option<u32>,

    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

impl From<SandboxExecArgs> for ExecConfig {
    fn from(a: SandboxExecArgs) -> ExecConfig {
        ExecConfig {
            sandbox: a.sandbox.sandbox.into(),
            mem_limit: a.sandbox.mem_limit,
            workspace: a.workspace,
            read_only: a.read_only,
            hide: a.hide,
            python: a.python,
            device: a.device,
            timeout: a.timeout,
            max_procs: a.max_procs,
            max_output: a.max_output,
            grader: a.grader,
            tamper_report: a.tamper_report,
            stdin: a.stdin,
            repeat: a.repeat,
            command: a.command,
        }
    }
}
