//! The Agent seam: something that drives an environment until it is done.
//!
//! An agent calls `Environment::execute` as often as it likes and stops
//! when `is_final()` says so or when it decides to; an error from `execute`
//! (interruption, exhausted budget, a harness failure) must be passed up
//! unchanged, since the run's exit reason is read from it. This file also
//! maps `--agent` names to agents (`actions` here in `run`, the others in
//! `crate::agent`) and checks the flags each needs before anything is
//! created.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use crate::agent::{self, Options};
use crate::cli::RunArgs;
use crate::env::Environment;
use crate::llm::Models;
use crate::task::Task;

pub trait Agent {
    /// Drives `env`; returns the agent's final message.
    fn run(&mut self, env: &mut Environment) -> Result<String>;
}

/// What an agent is made from.
pub struct AgentSetup<'a> {
    pub args: &'a RunArgs,
    /// `<log-dir>/agent_log`.
    pub agent_log: PathBuf,
    pub models: Option<Models>,
    pub task: &'a Task,
    /// Set when the user asked the run to stop (Ctrl-C).
    pub interrupt: Arc<AtomicBool>,
}

/// `--agent` values: ours, then the original's class names.
const NAMES: &[(&str, &str)] = &[
    ("actions", "actions"),
    ("research", "research"),
    ("baseline", "baseline"),
    ("simple", "simple"),
    ("react", "react"),
    ("tools", "tools"),
    ("external", "external"),
    ("ResearchAgent", "research"),
    ("Agent", "baseline"),
    ("SimpleActionAgent", "simple"),
    ("ReasoningActionAgent", "react"),
];

/// The canonical name for `--agent NAME`, or a clear error.
pub fn canonical(name: &str) -> Result<&'static str> {
    if let Some((_, c)) = NAMES.iter().find(|(n, _)| *n == name) {
        return Ok(c);
    }
    let known: Vec<&str> = NAMES.iter().take(7).map(|(n, _)| *n).collect();
    bail!(
        "unknown agent '{name}'; choose one of: {} (the original's class names ResearchAgent, Agent, SimpleActionAgent and ReasoningActionAgent work too)",
        known.join(", ")
    )
}

/// Checks `--agent` and the flags it needs, before anything is created.
pub fn check(args: &RunArgs) -> Result<&'static str> {
    let name = canonical(&args.agent)?;
    match name {
        "actions" if args.actions.is_none() => bail!(
            "--agent actions needs --actions FILE (JSONL of {{\"name\", \"args\"}} objects, or a trace.json to replay)"
        ),
        "research" | "simple" | "react" | "tools" if args.llm.llm.is_none() => bail!(
            "--agent {name} needs a model: pass --llm MODEL (e.g. --llm gpt-4o, --llm claude-3-5-sonnet-latest, --llm openai:<model>@http://localhost:8000/v1, or --llm human to play the model yourself); --agent baseline needs none"
        ),
        "external" if args.agent_cmd.as_deref().is_none_or(|c| c.trim().is_empty()) => bail!(
            "--agent external needs --agent-cmd \"<command>\" that starts your agent (see docs/agent-protocol.md; examples/external_agent.py is a working example)"
        ),
        "actions" => {
            // A bad list, or one whose actions need a model the run lacks,
            // is refused before anything is written.
            let file = args.actions.as_deref().context("--agent actions needs --actions FILE")?;
            let list = super::actions::read(file)?;
            super::actions::check_models(&list, args.llm.llm.is_some())?;
        }
        _ => {}
    }
    if !(args.agent_timeout > 0.0 && args.agent_timeout.is_finite()) {
        bail!("--agent-timeout must be a positive number of seconds");
    }
    if args.max_retries == 0 {
        bail!("--max-retries must be at least 1");
    }
    agent::research::research_fields(&args.valid_format_entires)?;
    agent::prompt::check_action_names("--actions-add-to-prompt", &args.actions_add_to_prompt)?;
    agent::prompt::check_action_names(
        "--actions-remove-from-prompt",
        &args.actions_remove_from_prompt,
    )?;
    Ok(name)
}

pub fn make(setup: AgentSetup) -> Result<Box<dyn Agent>> {
    let args = setup.args;
    let name = check(args)?;
    let log = &setup.agent_log;
    let opts = Options::from_args(args);
    let models = || {
        setup
            .models
            .clone()
            .ok_or_else(|| anyhow::anyhow!("--agent {name} needs --llm MODEL"))
    };
    Ok(match name {
        "actions" => {
            let file = args
                .actions
                .as_ref()
                .context("--agent actions needs --actions FILE")?;
            Box::new(super::actions::ActionsAgent::load(file, log)?)
        }
        "baseline" => Box::new(agent::baseline::BaselineAgent::new(
            setup.task.baseline_script(),
            log,
        )?),
        "research" => Box::new(agent::research::ResearchAgent::new(opts, models()?, log)?),
        "simple" => Box::new(agent::simple::LiteAgent::simple(opts, models()?, log)?),
        "react" => Box::new(agent::react::new(opts, models()?, log)?),
        "tools" => Box::new(agent::tools::ToolsAgent::new(opts, models()?, log)?),
        "external" => Box::new(agent::external::ExternalAgent::new(
            agent::external::ExternalSetup {
                command: args
                    .agent_cmd
                    .as_deref()
                    .context("--agent external needs --agent-cmd \"<command>\"")?,
                timeout: args.agent_timeout,
                max_steps: args.max_steps,
                max_time: args.max_time,
                task: setup.task.name(),
                models: setup.models.clone(),
                agent_log: log,
                interrupt: setup.interrupt.clone(),
            },
        )?),
        other => bail!("agent '{other}' is not known"),
    })
}
