//! The agents `mlab run --agent NAME` can drive the environment with.
//!
//! One file per agent: `research` (the paper's research agent), `baseline`
//! (runs the starter script and submits), `simple` and `react` (the
//! original's lighter agents), `tools` (native tool calling), `external`
//! (a program of the user's, over the JSON-lines protocol of `protocol`)
//! and `program` (an outside agent, unmodified, behind the LLM gateway).
//! Shared parts: `prompt` (what the model is shown), `parse` (reading its
//! replies), `state` (what is remembered and saved each step), `summarize`
//! (long observations) and, here, the options, the person-readable
//! `main_log` and the start-up every model-driven agent shares.
//!
//! Also here: the `Agent` trait, and in `kind` the `--agent` values
//! (`AgentKind`), their checks and the factory (`make`); `action_list`
//! plays a fixed list of actions (`--agent actions`).
//!
//! Not here: what actions do (`env`), and how models are called (`llm`).

pub mod action_list;
pub mod baseline;
pub mod external;
pub mod kind;
pub mod parse;
pub mod program;
pub mod prompt;
pub mod protocol;
pub mod react;
pub mod research;
pub mod simple;
pub mod state;
pub mod summarize;
pub mod tools;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::env::catalog::ActionInfo;
use crate::env::{Environment, HarnessError};
use crate::llm::{
    Completion, LlmError, Message, ModelFailure, Models, Request, ToolChoice, ToolSpec,
};
use crate::ui;
use state::{AgentState, Entry, HistoryStep};

pub use kind::{check, make, AgentConfig, AgentKind, AgentSetup, CheckedAgent};

/// The Agent seam: something that drives an environment until it is done.
///
/// An agent calls `Environment::execute` as often as it likes and stops
/// when `is_final()` says so or when it decides to; an error from `execute`
/// (interruption, exhausted budget, a harness failure) must be passed up
/// unchanged, since the run's exit reason is read from it.
pub trait Agent {
    /// Drives `env`; returns the agent's final message.
    fn run(&mut self, env: &mut Environment) -> Result<String>;

    /// What the agent's model calls cost when they did not go through the
    /// run's `Models` (the `program` agent's gateway); None: read the
    /// models' totals.
    fn llm_totals(&self) -> Option<crate::llm::Totals> {
        None
    }
}

/// The agent flags of `mlab run` that the model-driven agents use.
#[derive(Debug, Clone)]
pub struct Options {
    pub agent_max_steps: u64,
    pub max_retries: u32,
    pub max_steps_in_context: usize,
    pub max_observation_steps_in_context: usize,
    pub retrieval: bool,
    pub add_to_prompt: Vec<String>,
    pub remove_from_prompt: Vec<String>,
    /// The research agent's response fields (`--valid-format-entires`);
    /// empty means all six.
    pub format_entries: Vec<String>,
    /// The earlier run's `agent_log` when resuming (`run::run` sets it
    /// from `RunConfig::resume`).
    pub resume_agent_log: Option<PathBuf>,
    /// `tool_choice` of requests that offer tools (`--tool-choice`).
    pub tool_choice: ToolChoice,
    /// The words shown to the model (`--prompts`; mlab's own by default).
    pub prompts: std::sync::Arc<crate::prompts::PromptSet>,
    /// `--agent program`'s settings.
    pub program: program::ProgramOptions,
}

/// The flags' defaults.
impl Default for Options {
    fn default() -> Options {
        Options {
            agent_max_steps: 50,
            max_retries: 5,
            max_steps_in_context: 3,
            max_observation_steps_in_context: 3,
            retrieval: false,
            add_to_prompt: Vec::new(),
            remove_from_prompt: Vec::new(),
            format_entries: Vec::new(),
            resume_agent_log: None,
            tool_choice: ToolChoice::Required,
            prompts: crate::prompts::default_set(),
            program: program::ProgramOptions::default(),
        }
    }
}

/// The thrown-away reply budget ran out: the model never gave a usable
/// reply within `--max-retries` tries. A model failure
/// (`ModelFailure::UnusableReply`): the run ends as `model_error`.
#[derive(Debug, thiserror::Error)]
#[error("no usable reply from the model in {tries} tries at agent step {step}; the last problem: {last}")]
pub struct FormatExhausted {
    pub tries: u32,
    pub step: usize,
    pub last: String,
}

impl FormatExhausted {
    /// As the model failure that ends the run.
    pub fn into_error(self) -> anyhow::Error {
        anyhow::Error::new(LlmError::Model {
            kind: ModelFailure::UnusableReply,
            detail: self.to_string(),
        })
    }
}

/// `agent_log/main_log`, the person-readable account of a run.
pub struct Journal {
    dir: PathBuf,
    main: File,
}

impl Journal {
    pub fn open(agent_log: &Path) -> Result<Journal> {
        std::fs::create_dir_all(agent_log)
            .with_context(|| format!("could not create {}", agent_log.display()))?;
        let path = agent_log.join("main_log");
        let main = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("could not open {}", path.display()))?;
        Ok(Journal {
            dir: agent_log.to_path_buf(),
            main,
        })
    }

    /// Appends to main_log; a failure is mlab's, not the agent's.
    pub fn write(&self, text: &str) -> Result<()> {
        (&self.main)
            .write_all(text.as_bytes())
            .map_err(|e| HarnessError(format!("could not write agent_log/main_log: {e}")).into())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The readable log of the main model's calls at agent step `i`.
    pub fn call_log(&self, i: usize) -> PathBuf {
        self.dir.join(format!("step_{i}_log.log"))
    }
}

/// What every model-driven agent (research, simple, react, tools) holds.
pub struct Core {
    pub opts: Options,
    pub models: Models,
    pub journal: Journal,
    pub state: AgentState,
    pub fields: Vec<&'static str>,
}

impl Core {
    pub fn new(
        opts: Options,
        models: Models,
        agent_log: &Path,
        agent: &str,
        fields: &[&'static str],
    ) -> Result<Core> {
        Ok(Core {
            opts,
            models,
            journal: Journal::open(agent_log)?,
            state: AgentState {
                agent: agent.to_string(),
                valid_format_entries: fields.iter().map(|f| f.to_string()).collect(),
                ..Default::default()
            },
            fields: fields.to_vec(),
        })
    }

    /// The actions the prompt lists for this run.
    pub fn prompt_actions(&self, env: &Environment) -> Vec<&'static ActionInfo> {
        prompt::prompt_actions(
            env.action_infos(),
            self.opts.retrieval,
            &self.opts.add_to_prompt,
            &self.opts.remove_from_prompt,
        )
    }

    /// Sets up the opening prompt, or the saved state when resuming, and
    /// starts main_log.
    pub fn start(
        &mut self,
        env: &Environment,
        initial_prompt: String,
        tools: &[&ActionInfo],
    ) -> Result<()> {
        self.state.initial_prompt = initial_prompt;
        self.state.prompt_tools = tools.iter().map(|t| t.name.to_string()).collect();
        let names = format!("{:?}", self.state.prompt_tools);
        self.journal
            .write(&format!("Enabled Tools in Prompt:{names}\n"))?;
        if let Some(old) = self.opts.resume_agent_log.clone() {
            self.resume(env, &old)?;
        }
        let banner = if env.steps_taken() > 0 {
            format!(
                "================================ Resumed after environment step {} (agent step {}) ================================\n",
                env.steps_taken() - 1,
                self.state.curr_step
            )
        } else {
            "================================ Start ================================\n".to_string()
        };
        let prompt = self.state.initial_prompt.clone();
        self.journal.write(&format!("{banner}{prompt}\n\n"))
    }

    fn resume(&mut self, env: &Environment, old_agent_log: &Path) -> Result<()> {
        let last = env.steps_taken().saturating_sub(1);
        if same_dir(old_agent_log, self.journal.dir()) {
            state::set_aside_later(old_agent_log, last)?;
        }
        match state::find_saved(old_agent_log, last)? {
            Some((steps, path, saved)) if saved.agent == self.state.agent => {
                if steps < env.steps_taken() {
                    ui::warn(format!(
                        "the newest agent state, {}, was saved after {steps} environment steps, not {}; the agent's memory misses the steps in between",
                        path.display(),
                        env.steps_taken()
                    ));
                }
                self.journal
                    .write(&format!("Agent state restored from {}\n", path.display()))?;
                self.state = saved;
            }
            Some((_, path, saved)) => {
                ui::warn(format!(
                    "{} was saved by the '{}' agent, not '{}'; starting from the trace instead",
                    path.display(),
                    saved.agent,
                    self.state.agent
                ));
                self.history_from_trace(env);
            }
            None => {
                ui::warn(format!(
                    "no saved agent state in {}; the agent starts from the steps in the trace",
                    old_agent_log.display()
                ));
                self.history_from_trace(env);
            }
        }
        Ok(())
    }

    /// Rebuilds a minimal memory (action and input only) from the trace.
    fn history_from_trace(&mut self, env: &Environment) {
        let steps = env.trace().steps();
        self.state.curr_step = steps.len();
        self.state.history_steps = steps
            .iter()
            .enumerate()
            .map(|(i, s)| HistoryStep {
                step_idx: i + 1,
                action: vec![
                    entry("Action", &s.action.name),
                    entry("Action Input", &s.action.args.to_string()),
                ],
                observation: clip(&s.observation, summarize::SUMMARY_THRESHOLD),
            })
            .collect();
    }

    /// Saves the state for this point of the run.
    pub fn save(&self, env: &Environment) -> Result<()> {
        state::save(self.journal.dir(), env.steps_taken(), &self.state)
            .map_err(|e| HarnessError(format!("{e:#}")))?;
        Ok(())
    }

    /// One call of the main model for agent step `i`.
    pub fn ask(&self, i: usize, prompt: &str, tools: &[ToolSpec]) -> Result<Completion, LlmError> {
        let req = Request {
            messages: vec![Message::user(prompt)],
            stop: vec!["Observation:".into()],
            max_tokens: self.models.main_max_tokens,
            temperature: 0.5,
            tools: tools.to_vec(),
            tool_choice: (!tools.is_empty()).then_some(self.opts.tool_choice),
            log_file: Some(self.journal.call_log(i)),
        };
        self.models.main.complete(&req)
    }

    /// The observation as the agent keeps it (summarised when long).
    pub fn keep_observation(
        &self,
        i: usize,
        action_text: &str,
        observation: &str,
    ) -> Result<String, LlmError> {
        let log = self
            .journal
            .dir()
            .join(format!("step_{i}_summarize_observation_log.log"));
        summarize::shorten_observation(
            &self.opts.prompts,
            &self.models,
            action_text,
            observation,
            &log,
        )
    }

    /// Records how the run ended in main_log: the final message, or the
    /// error (saving the state first), which is returned unchanged so the
    /// run's exit reason is read from it.
    pub fn finish(&mut self, env: &Environment, ended: Result<String>) -> Result<String> {
        match ended {
            Ok(msg) => {
                self.journal.write(&format!("\n{msg}\n"))?;
                Ok(msg)
            }
            Err(err) => {
                let _ = self
                    .journal
                    .write(&format!("\nThe agent stopped: {err:#}\n"));
                let _ = self.save(env);
                Err(err)
            }
        }
    }

    /// Records in main_log a reply that was thrown away and why, so that a
    /// person reading the run sees every rejected try in order (the reply
    /// is shortened to its start and end).
    pub fn log_rejected(&self, i: usize, reply: &str, why: &str) -> Result<()> {
        self.journal.write(&format!(
            "Step {i}: unusable reply, rejected: {why}\nRejected reply:\n```\n{}\n```\n\n",
            clip(reply.trim(), REJECTED_SHOWN)
        ))
    }

    /// Appends one finished step to main_log.
    pub fn log_step(&mut self, i: usize, printed: &str, observation: &str) -> Result<()> {
        self.journal.write(&format!(
            "Step {i}:\n{printed}\nObservation:\n```\n{observation}\n```\n\n"
        ))
    }
}

/// Characters of a rejected reply kept in main_log.
const REJECTED_SHOWN: usize = 600;

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

pub fn entry(name: &str, value: &str) -> Entry {
    Entry {
        name: name.to_string(),
        value: value.to_string(),
    }
}

/// At most `max` characters: the start and the end, with a note between.
pub fn clip(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_string();
    }
    let half = max / 2;
    let head: String = text.chars().take(half).collect();
    let tail: String = text.chars().skip(n - half).collect();
    format!(
        "{head}\n[... {} characters left out ...]\n{tail}",
        n - 2 * half
    )
}

/// Wraps an LLM failure so that the run ends as `llm_error` (or `budget`).
pub fn llm_failure(e: LlmError, what: &str) -> anyhow::Error {
    anyhow::Error::new(e).context(what.to_string())
}
