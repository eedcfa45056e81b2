//! The command line: its definitions, and the front end that turns them
//! into the library's configuration types, calls the engine and prints.
//!
//! Every subcommand's arguments are declared here with clap's derive API;
//! this is the only code that knows clap. Families of flags that several
//! subcommands share (LLM choice, sandbox policy) live in their own file and
//! are flattened in, with their conversion to the engine's types beside
//! them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use mlab::doctor::{self, Level};
use mlab::task::{self, Locations};
use mlab::ui;

mod eval;
mod gateway;
mod llm;
mod prompts;
mod report;
mod run;
mod sandbox;
mod slurm;
mod study;

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
    /// Make tasks: `mlab task new NAME --from-dir PATH`.
    #[command(subcommand)]
    Task(TaskCommand),
    /// Check this machine: Python, task packages, sandbox, GPUs, keys, Slurm.
    Doctor(DoctorArgs),
    /// Run an agent on a task in a sandboxed workspace.
    Run(Box<RunArgs>),
    /// Run one run of a study's plan.json (as the queue and Slurm jobs do):
    /// skipped when finished, resumed when interrupted.
    RunOne(study::RunOneArgs),
    /// Where each run of a study stands: counts and a table.
    Status(study::StatusArgs),
    /// Score the runs in a log folder with each task's script/eval.py.
    Eval(EvalArgs),
    /// Tables, plots and a static HTML viewer of every run and step (runs
    /// `mlab eval` first when its results are missing or stale).
    Report(report::ReportArgs),
    /// Send one tiny request to a model and print what came back.
    LlmCheck(LlmCheckArgs),
    /// Prompt sets: import the original's words, export mlab's.
    Prompts(prompts::PromptsArgs),
    /// Run one command the way the agent's code runs (sandbox, limits).
    #[command(hide = true)]
    SandboxExec(Box<SandboxExecArgs>),
    /// Relay 127.0.0.1:PORT to the LLM gateway's unix socket (started by
    /// mlab inside the sandbox of `--agent program`).
    #[command(hide = true)]
    GatewayForward(gateway::GatewayForwardArgs),
}

#[derive(Debug, Args)]
pub struct TasksArgs {
    /// Print JSON (one array of task objects) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Turn a folder of your own (what `mlab run --dir` runs on) into a task
    /// folder skeleton: task.toml with the fields to fill in, env/ (a copy
    /// of the folder), script/ with eval.py and prepare.py templates, the
    /// research problem and read_only_files.txt.
    New(TaskNewArgs),
}

#[derive(Debug, Args)]
pub struct TaskNewArgs {
    /// The task's name (its folder name): letters, digits, '-' and '_'.
    #[arg(value_name = "NAME")]
    pub name: String,

    /// The folder the task's agent starts with (copied into env/).
    #[arg(long, value_name = "PATH")]
    pub from_dir: PathBuf,

    /// The research problem, as text; `-` reads it from stdin. Without it
    /// (or --problem-file), research_problem.txt holds a placeholder.
    #[arg(long, value_name = "TEXT", conflicts_with = "problem_file")]
    pub problem: Option<String>,

    /// The research problem, from a file.
    #[arg(long, value_name = "FILE")]
    pub problem_file: Option<PathBuf>,

    /// Files (glob relative to the folder; repeatable) the agent may not
    /// change: written to script/read_only_files.txt.
    #[arg(long = "read-only", value_name = "GLOB")]
    pub read_only: Vec<String>,

    /// Folder to create the task in (default: the benchmarks folder).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
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

    /// Also check Slurm for real: sbatch, squeue and sinfo on PATH and a
    /// cluster that answers with a usable node (what `--executor slurm` needs).
    #[arg(long)]
    pub slurm: bool,
}

impl From<&GlobalArgs> for Locations {
    fn from(g: &GlobalArgs) -> Locations {
        Locations {
            benchmarks_dir: g.benchmarks_dir.clone(),
        }
    }
}

impl From<&PrepareArgs> for task::prepare::PrepareConfig {
    fn from(a: &PrepareArgs) -> task::prepare::PrepareConfig {
        task::prepare::PrepareConfig {
            tasks: a.tasks.clone(),
            all: a.all,
            force: a.force,
            python: a.python.clone(),
            accept_rules: a.accept_rules,
            data_dir: a.data_dir.clone(),
        }
    }
}

/// Runs one subcommand.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let global = cli.global;
    let locations = Locations::from(&global);
    match cli.command {
        Command::Tasks(args) => task::list::run(&locations, args.json),
        Command::Prepare(args) => task::prepare::run(&locations, &(&args).into()),
        Command::Task(TaskCommand::New(args)) => task_new(&locations, &args),
        Command::Doctor(args) => print_doctor(&locations, &args),
        Command::Run(args) => run::run(&global, &args),
        Command::RunOne(args) => study::run_one(&global, &args),
        Command::Status(args) => study::status(&args),
        Command::Eval(args) => run_eval(&global, &args),
        Command::Report(args) => report::run(&global, &args),
        Command::LlmCheck(args) => mlab::llm::check::run(&(&args).into()),
        Command::Prompts(args) => prompts::run(&args),
        Command::SandboxExec(args) => mlab::sandbox::exec::run(&(*args).into()),
        Command::GatewayForward(args) => gateway::run(&args),
    }
}

/// `mlab task new`: makes the skeleton and says what to do next.
fn task_new(locations: &Locations, args: &TaskNewArgs) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    let problem = match (&args.problem, &args.problem_file) {
        (Some(p), _) if p == "-" => Some(run::read_problem_from_stdin()?),
        (Some(p), _) => Some(p.clone()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("could not read --problem-file {}", f.display()))?,
        ),
        (None, None) => None,
    };
    let dir = task::new::create(
        locations,
        &task::new::NewConfig {
            name: args.name.clone(),
            from_dir: args.from_dir.clone(),
            problem,
            read_only: args.read_only.clone(),
            out: args.out.clone(),
        },
    )?;
    ui::info(format!(
        "made the task {} in {}\n  next: fill in the TODOs of task.toml, write script/eval.py (and script/prepare.py), then `mlab prepare {}` and `mlab run --task {}`",
        args.name,
        dir.display(),
        args.name,
        args.name
    ));
    Ok(ExitCode::SUCCESS)
}

/// `mlab doctor`: one line per check (or JSON); fails when one failed.
fn print_doctor(locations: &Locations, args: &DoctorArgs) -> anyhow::Result<ExitCode> {
    let checks = doctor::collect(locations, args.python.as_deref(), args.slurm);
    if args.json {
        ui::write_stdout(format_args!("{}\n", serde_json::to_string_pretty(&checks)?));
    } else {
        for c in &checks {
            let tag = match c.level {
                Level::Ok => "ok  ",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
            };
            let mut line = format!("[{tag}] {:<12} {}", c.name, c.detail);
            if let Some(h) = &c.hint {
                line.push_str(&format!("\n       {:<12} -> {h}", ""));
            }
            ui::write_stdout(format_args!("{line}\n"));
        }
    }
    Ok(if checks.iter().any(|c| c.level == Level::Fail) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
