//! The Agent seam: something that drives an environment until it is done.
//!
//! An agent calls `Environment::execute` as often as it likes and stops
//! when `is_final()` says so or when it decides to; an error from `execute`
//! (interruption, exhausted budget, a harness failure) must be passed up
//! unchanged, since the run's exit reason is read from it. This file also
//! maps `--agent` names to agents. `actions` is the only one in this
//! build; the others are known by name and say they are not yet available.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::cli::RunArgs;
use crate::env::Environment;
use crate::llm::Models;

pub trait Agent {
    /// Drives `env`; returns the agent's final message.
    fn run(&mut self, env: &mut Environment) -> Result<String>;
}

/// What an agent is made from.
pub struct AgentSetup<'a> {
    pub args: &'a RunArgs,
    /// `<log-dir>/agent_log`.
    pub agent_log: PathBuf,
    #[allow(dead_code)] // for the LLM-backed agents
    pub models: Option<Models>,
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
    if name != "actions" {
        bail!(
            "agent '{name}' is not yet available in this build; use --agent actions --actions FILE to run a fixed list of actions"
        );
    }
    if args.actions.is_none() {
        bail!("--agent actions needs --actions FILE (JSONL of {{\"name\", \"args\"}} objects, or a trace.json to replay)");
    }
    Ok(name)
}

pub fn make(setup: AgentSetup) -> Result<Box<dyn Agent>> {
    match check(setup.args)? {
        "actions" => {
            let file = setup.args.actions.as_ref().expect("checked");
            Ok(Box::new(super::actions::ActionsAgent::load(
                file,
                &setup.agent_log,
            )?))
        }
        other => bail!("agent '{other}' is not yet available in this build"),
    }
}
