//! Flags of `mlab run`, following the original runner's (hyphenated) names.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use mlab::agent::{AgentConfig, AgentKind, Options};
use mlab::run::record::ExitReason;
use mlab::run::{self, signals, RunConfig};
use mlab::task::adhoc::AdHocConfig;
use mlab::task::Locations;
use mlab::ui;

use super::{GlobalArgs, LlmArgs, SandboxArgs};

/// Serialized (by field name) into run.json's `flags`: every flag is
/// recorded without a list to keep up to date.
#[derive(Debug, Args, serde::Serialize)]
pub struct RunArgs {
    /// Task to run (a folder name under the benchmarks folder). Or, instead,
    /// a folder of your own: --dir PATH.
    /// A comma list (a,b) makes a study (docs/studies.md).
    #[arg(long, required_unless_present_any = ["dir", "plan"], conflicts_with = "dir")]
    pub task: Option<String>,

    // Ad-hoc runs (issue 18): a folder and problem of one's own.
    /// Run on this folder of your own instead of a --task: it is copied
    /// into a fresh workspace (the folder itself is never changed). Needs
    /// the problem: --problem TEXT, --problem-file FILE or --problem -.
    /// The run's task is named adhoc:<folder name>; `mlab eval` lists it
    /// as "no grader" unless --eval-cmd is given.
    #[arg(long, value_name = "PATH")]
    #[serde(serialize_with = "super::llm::path_text")]
    pub dir: Option<PathBuf>,

    /// The research problem for --dir, as text; `-` reads it from stdin
    /// (with a prompt when stdin is a terminal; end it with Ctrl-D).
    #[arg(
        long,
        value_name = "TEXT",
        requires = "dir",
        conflicts_with = "problem_file"
    )]
    pub problem: Option<String>,

    /// The research problem for --dir, from a file.
    #[arg(long, value_name = "FILE", requires = "dir")]
    #[serde(serialize_with = "super::llm::path_text")]
    pub problem_file: Option<PathBuf>,

    /// For --dir: files (glob, relative to the folder; repeatable) the agent
    /// may read but not change, as a task's read_only_files.txt.
    #[arg(long = "read-only", value_name = "GLOB", requires = "dir")]
    pub read_only: Vec<String>,

    /// For --dir: a command that prints a score (its last line of output) for
    /// a snapshot folder, given as its last argument or wherever the command
    /// says {snapshot}. Recorded in run.json; `mlab eval` runs it (sandboxed
    /// like eval.py, in this folder, read-only) and shows the score.
    #[arg(long, value_name = "CMD", requires = "dir")]
    pub eval_cmd: Option<String>,

    /// Folder for this run's logs (agent_log/, env_log/, run.json).
    #[arg(long, default_value = "./logs")]
    #[serde(serialize_with = "one_path_text")]
    pub log_dir: PathBuf,

    /// Folder under which the workspace <work-dir>/<task> is made (default:
    /// <log-dir>.workspace, beside the log folder, so every run gets its
    /// own). A workspace is locked while its run lasts: a second run on it
    /// is refused, naming the run that holds it.
    #[arg(long, value_name = "DIR")]
    #[serde(serialize_with = "super::llm::path_text")]
    pub work_dir: Option<PathBuf>,

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
    #[serde(serialize_with = "super::llm::path_text")]
    pub python: Option<PathBuf>,

    /// Resume the run whose log folder this is (into --log-dir, which may be
    /// the same folder).
    #[arg(long, value_name = "LOG_DIR")]
    #[serde(serialize_with = "super::llm::path_text")]
    pub resume: Option<PathBuf>,

    /// Last step of the earlier run to keep (default: its last completed
    /// one); the workspace is restored from that step's snapshot.
    #[arg(long, value_name = "N")]
    pub resume_step: Option<u64>,

    /// Offer the Request Help action: the agent may ask you a question on
    /// the terminal and wait for your reply. Also makes Ctrl-\ (SIGQUIT)
    /// ask for an instruction: when the current step ends, type it (an
    /// empty line ends it); the agent gets it with its next observation,
    /// and the trace records it as a "Human Instruction" step.
    #[arg(long)]
    pub interactive: bool,

    /// Agent: research, baseline, simple, react, tools, external, actions
    /// (plays the list of --actions FILE). The original class names are
    /// accepted too. A comma list makes a study.
    #[arg(long, visible_alias = "agent-type", default_value = "research", value_parser = parse_agent, value_delimiter = ',')]
    #[serde(serialize_with = "first_agent")]
    pub agent: Vec<AgentKind>,

    /// For --agent actions: JSONL of {"name","args"} or a trace.json to replay.
    #[arg(long, value_name = "FILE")]
    #[serde(serialize_with = "super::llm::path_text")]
    pub actions: Option<PathBuf>,

    /// Per-command timeout of Execute Script in seconds (default: the run's
    /// remaining time).
    #[arg(long, value_name = "SECS")]
    pub exec_timeout: Option<f64>,

    /// Seed, recorded in run.json. Sent as `seed` to OpenAI-compatible chat
    /// APIs (best-effort repeatable sampling; Anthropic's API takes none) and
    /// seeds mlab's retry waits. Agents themselves draw nothing at random.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    #[command(flatten)]
    #[serde(flatten)]
    pub llm: LlmArgs,

    #[command(flatten)]
    #[serde(flatten)]
    pub sandbox: SandboxArgs,

    /// For --agent external: the command that starts your agent (run with
    /// `sh -c`; it speaks JSON lines on stdin/stdout, see
    /// docs/agent-protocol.md). For --agent program: the outside agent's
    /// command, run in the sandbox with the workspace as its folder;
    /// `{problem}` becomes the research problem, shell-quoted (see
    /// docs/outside-agents.md).
    #[arg(long, value_name = "COMMAND")]
    pub agent_cmd: Option<String>,

    /// For --agent program: a model the program may ask the gateway for
    /// besides --llm's (repeatable).
    #[arg(long = "allow-model", value_name = "MODEL")]
    pub allow_model: Vec<String>,

    /// For --agent program: a venv of outside agents shown read-only inside
    /// the sandbox, its bin/ on PATH (default: the one `./install.sh
    /// --outside-agents` makes, when present).
    #[arg(long, value_name = "DIR")]
    #[serde(serialize_with = "super::llm::path_text")]
    pub agents_venv: Option<PathBuf>,

    /// For --agent external: seconds to wait for each message of the agent
    /// before it is stopped.
    #[arg(long, default_value_t = 600.0, value_name = "SECS")]
    pub agent_timeout: f64,

    /// Maximum number of agent iterations (each asks the model once, plus
    /// format retries).
    #[arg(long, default_value_t = 50)]
    pub agent_max_steps: u64,

    /// Tries per step to get a reply in the expected format.
    #[arg(long, default_value_t = 5)]
    pub max_retries: u32,

    /// Earlier steps shown to the model in each prompt.
    #[arg(long, default_value_t = 3)]
    pub max_steps_in_context: usize,

    /// Of those steps, how many show their observation (older ones show
    /// "<Done>").
    #[arg(long, default_value_t = 3)]
    pub max_observation_steps_in_context: usize,

    /// Research agent: keep a research log of step summaries and show the
    /// model a retrieved summary of it (costs extra steps and fast-model
    /// calls).
    #[arg(long)]
    pub retrieval: bool,

    /// Actions to list in the prompt besides the default ones.
    #[arg(long, value_name = "ACTION", num_args = 1..)]
    pub actions_add_to_prompt: Vec<String>,

    /// Actions to leave out of the prompt (they can still be called).
    #[arg(long, value_name = "ACTION", num_args = 1..)]
    pub actions_remove_from_prompt: Vec<String>,

    /// The research agent's response fields, in order (the original's
    /// flag, typo included): a subset of Reflection, "Research Plan and
    /// Status", "Fact Check", Thought, Action, "Action Input" that keeps
    /// Action and ends with Action Input.
    #[arg(
        long = "valid-format-entires",
        visible_alias = "valid-format-entries",
        value_name = "FIELD",
        num_args = 1..
    )]
    pub valid_format_entires: Vec<String>,

    /// Folder of a prompt set to run with instead of mlab's own words (the
    /// files of src/prompts/default, all of them; `mlab prompts
    /// import-original` writes the paper's). run.json records its name and
    /// hash.
    #[arg(long, value_name = "DIR")]
    #[serde(serialize_with = "super::llm::path_text")]
    pub prompts: Option<PathBuf>,

    #[command(flatten)]
    #[serde(skip)]
    pub original: OriginalOnlyArgs,

    #[command(flatten)]
    #[serde(skip)]
    pub study: super::study::StudyArgs,
}

/// run.json records the agent of the run (a study's runs have one each).
fn first_agent<S: serde::Serializer>(a: &[AgentKind], s: S) -> Result<S::Ok, S::Error> {
    use serde::Serialize;
    a.first().copied().unwrap_or_default().serialize(s)
}

/// `--agent NAME`: ours or the original's class name.
fn parse_agent(name: &str) -> anyhow::Result<AgentKind> {
    match name {
        "LangChainAgent" => anyhow::bail!(
            "the original's LangChainAgent cannot run here: mlab does not include LangChain; use react (the original's ReasoningActionAgent) for a reason-then-act agent, or external with --agent-cmd to drive the run from your own LangChain program (docs/agent-protocol.md)"
        ),
        "AutoGPTAgent" => anyhow::bail!(
            "the original's AutoGPTAgent cannot run here: it needs the Auto-GPT program, which mlab does not include; run it as --agent external with --agent-cmd (docs/agent-protocol.md), or use research"
        ),
        _ => name.parse(),
    }
}

impl RunArgs {
    /// The engine's configuration of this run.
    pub fn config(
        &self,
        global: &GlobalArgs,
        interrupt: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> RunConfig {
        RunConfig {
            locations: Locations::from(global),
            task: self.task.clone().unwrap_or_default(),
            log_dir: self.log_dir.clone(),
            work_dir: self.work_dir.clone(),
            max_steps: self.max_steps,
            max_time: self.max_time,
            device: self.device.clone(),
            python: self.python.clone(),
            resume: self.resume.clone(),
            resume_step: self.resume_step,
            interactive: self.interactive,
            exec_timeout: self.exec_timeout,
            seed: self.seed,
            agent: AgentConfig {
                kind: self.agent.first().copied().unwrap_or_default(),
                actions: self.actions.clone(),
                command: self.agent_cmd.clone(),
                timeout: self.agent_timeout,
                options: Options {
                    agent_max_steps: self.agent_max_steps,
                    max_retries: self.max_retries,
                    max_steps_in_context: self.max_steps_in_context,
                    max_observation_steps_in_context: self.max_observation_steps_in_context,
                    retrieval: self.retrieval,
                    add_to_prompt: self.actions_add_to_prompt.clone(),
                    remove_from_prompt: self.actions_remove_from_prompt.clone(),
                    format_entries: self.valid_format_entires.clone(),
                    resume_agent_log: None,
                    tool_choice: self.llm.tool_choice.into(),
                    // Loaded from --prompts by the run (`RunConfig::prompts`).
                    prompts: mlab::prompts::default_set(),
                    program: mlab::agent::program::ProgramOptions {
                        allow_models: self.allow_model.clone(),
                        forwarder: None,
                        agents_venv: self.agents_venv.clone(),
                    },
                },
            },
            llm: self.llm.config(Some(self.seed)),
            sandbox: self.sandbox.sandbox.into(),
            mem_limit: self.sandbox.mem_limit,
            echo: global.verbose > 0,
            flags: self.recorded_flags(),
            prompts: self.prompts.clone(),
            interrupt,
            adhoc: None,
            instruction: None,
        }
    }

    /// The ad-hoc run of --dir, with its problem read (from the text, the
    /// file, or stdin for `-`).
    pub fn adhoc(&self) -> anyhow::Result<Option<AdHocConfig>> {
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        let problem = match (&self.problem, &self.problem_file) {
            (Some(p), _) if p == "-" => Some(read_problem_from_stdin()?),
            (Some(p), _) => Some(p.clone()),
            (None, Some(f)) => Some(
                std::fs::read_to_string(f)
                    .with_context(|| format!("could not read --problem-file {}", f.display()))?,
            ),
            (None, None) => None,
        };
        if problem.is_none() && self.resume.is_none() {
            anyhow::bail!(
                "--dir needs a research problem: pass --problem TEXT, --problem-file FILE, or --problem - to type it in (or read it from stdin)"
            );
        }
        Ok(Some(AdHocConfig {
            dir: dir.clone(),
            problem,
            read_only: self.read_only.clone(),
            eval_cmd: self.eval_cmd.clone(),
        }))
    }
}

/// `--problem -`: all of stdin, with a prompt when it is a terminal.
pub fn read_problem_from_stdin() -> anyhow::Result<String> {
    use std::io::{IsTerminal, Read};
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        ui::info("type the research problem; end it with Ctrl-D on an empty line");
    }
    let mut text = String::new();
    stdin
        .lock()
        .read_to_string(&mut text)
        .context("could not read the problem from stdin")?;
    if text.trim().is_empty() {
        anyhow::bail!("--problem -: stdin held no problem; type it in, or pipe it: echo 'Make it faster' | mlab run --dir PATH --problem -");
    }
    Ok(text)
}

/// `mlab run`: one run, a line on how it ended, and its exit code.
pub fn run(global: &GlobalArgs, args: &RunArgs) -> anyhow::Result<ExitCode> {
    args.original.refuse()?;
    if args.study.is_study(args) {
        return super::study::run_study(global, args);
    }
    // Signals first: every thread started later inherits the blocked mask.
    let instruction = if args.interactive {
        Some(signals::install_instruction_key()?)
    } else {
        None
    };
    let interrupt = signals::install()?;
    let mut config = args.config(global, interrupt);
    config.adhoc = args.adhoc()?;
    config.instruction = instruction;
    let line = super::study::run_line_for(
        &config.task,
        &config.log_dir,
        config.max_steps,
        config.interactive,
    );
    let outcome = run::run(config);
    drop(line);
    let outcome = outcome?;
    let summary = format!(
        "run ended: {} after {} steps; logs in {}",
        outcome.reason.as_str(),
        outcome.steps,
        outcome.log_dir.display()
    );
    match &outcome.error {
        Some(e) => ui::warn(format!("{summary}\n  {e}")),
        None => ui::info(summary),
    }
    Ok(match outcome.reason {
        ExitReason::Interrupted => ExitCode::from(130),
        r if r.is_normal() => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}

/// Flags of the original runner that mean nothing here; accepted so that
/// run.sh-style scripts get a sentence saying why and what to use rather
/// than "unexpected argument". (The original's other flags are accepted
/// under their own names or as aliases of mlab's.)
#[derive(Debug, Args, Default)]
pub struct OriginalOnlyArgs {
    /// The original's LangChain agent type (refused).
    #[arg(long, hide = true, value_name = "TYPE")]
    pub langchain_agent: Option<String>,
}

impl OriginalOnlyArgs {
    /// Fails, naming what to use instead, when one of these flags is given.
    pub fn refuse(&self) -> anyhow::Result<()> {
        if let Some(t) = &self.langchain_agent {
            anyhow::bail!(
                "--langchain-agent {t}: mlab has no LangChain agent (the original's LangChainAgent drives a LangChain executor that mlab does not include), so the flag cannot apply; use --agent react for a reason-then-act agent with the same tools, or --agent external --agent-cmd '...' to drive the run from your own LangChain program (docs/agent-protocol.md)"
            );
        }
        Ok(())
    }
}

fn one_path_text<S: serde::Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string_lossy())
}

impl RunArgs {
    /// Every flag by its long name, as run.json's `flags` records them.
    pub fn recorded_flags(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    #[test]
    fn run_json_flags_are_every_flag_by_its_long_name() {
        let cli =
            Cli::try_parse_from(["mlab", "run", "--task", "toy", "--log-dir", "logs/a"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not a run")
        };
        let flags = args.recorded_flags();
        let mut keys: Vec<&str> = flags
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        // The keys run.json has always had, plus llm_deadline and
        // llm_backoff, which the hand-kept list had missed.
        let mut expected = vec![
            "task",
            "log_dir",
            "work_dir",
            "max_steps",
            "max_time",
            "device",
            "python",
            "resume",
            "resume_step",
            "interactive",
            "agent",
            "actions",
            "exec_timeout",
            "seed",
            "llm",
            "fast_llm",
            "edit_script_llm",
            "edit_script_max_tokens",
            "llm_max_tokens",
            "llm_base_url",
            "llm_retries",
            "llm_timeout",
            "llm_deadline",
            "llm_backoff",
            "replay_lenient",
            "max_cost",
            "max_total_tokens",
            "prices",
            "config_name",
            "tool_choice",
            "sandbox",
            "mem_limit",
            "agent_cmd",
            "allow_model",
            "agents_venv",
            "agent_timeout",
            "agent_max_steps",
            "max_retries",
            "max_steps_in_context",
            "max_observation_steps_in_context",
            "retrieval",
            "actions_add_to_prompt",
            "actions_remove_from_prompt",
            "valid_format_entires",
            "dir",
            "problem",
            "problem_file",
            "read_only",
            "eval_cmd",
            "prompts",
        ];
        expected.sort();
        assert_eq!(keys, expected);
        assert_eq!(flags["log_dir"], "logs/a");
        assert_eq!(flags["sandbox"], "auto");
        assert_eq!(flags["work_dir"], serde_json::Value::Null);
        assert_eq!(flags["max_steps"], 50);
        assert_eq!(flags["actions_add_to_prompt"], serde_json::json!([]));
    }
}
