//! Which agent drives a run (`AgentKind`, the `--agent` values), the checks
//! each needs before anything is created, and the factory (`make`).
//!
//! `check` reads and checks everything an agent is made from once (the
//! action list included) and hands back a [`CheckedAgent`], from which
//! `make` builds the agent without looking again.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Result};

use super::{action_list, Agent, Options};
use crate::env::catalog::Action;
use crate::llm::Models;
use crate::task::Task;

/// The agents a run can drive (`--agent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AgentKind {
    /// The paper's research agent (the original's `ResearchAgent`).
    #[default]
    Research,
    /// Runs the starter script and submits (the original's `Agent`).
    Baseline,
    /// The original's `SimpleActionAgent`.
    Simple,
    /// The original's `ReasoningActionAgent`.
    React,
    /// Native tool calling.
    Tools,
    /// A program of the user's, over the JSON-lines protocol.
    External,
    /// Plays a fixed list of actions (`--actions FILE`), no model.
    Actions,
    /// An outside agent, unmodified, run as one program in the sandbox
    /// behind mlab's LLM gateway (`--agent-cmd`).
    Program,
}

impl AgentKind {
    /// Every kind, in the order `--help` lists them.
    pub const ALL: [AgentKind; 8] = [
        AgentKind::Research,
        AgentKind::Baseline,
        AgentKind::Simple,
        AgentKind::React,
        AgentKind::Tools,
        AgentKind::External,
        AgentKind::Actions,
        AgentKind::Program,
    ];

    /// The name `--agent` takes and run.json records.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::Research => "research",
            AgentKind::Baseline => "baseline",
            AgentKind::Simple => "simple",
            AgentKind::React => "react",
            AgentKind::Tools => "tools",
            AgentKind::External => "external",
            AgentKind::Actions => "actions",
            AgentKind::Program => "program",
        }
    }

    /// The original MLAgentBench's class name for this agent, accepted by
    /// `--agent` too.
    pub fn original_name(self) -> Option<&'static str> {
        match self {
            AgentKind::Research => Some("ResearchAgent"),
            AgentKind::Baseline => Some("Agent"),
            AgentKind::Simple => Some("SimpleActionAgent"),
            AgentKind::React => Some("ReasoningActionAgent"),
            _ => None,
        }
    }

    /// Whether the agent cannot work without `--llm`.
    pub fn needs_model(self) -> bool {
        matches!(
            self,
            AgentKind::Research | AgentKind::Simple | AgentKind::React | AgentKind::Tools
        )
    }
}

/// run.json records the kind by the name `--agent` takes.
impl serde::Serialize for AgentKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for AgentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Ours, then the original's class names.
impl FromStr for AgentKind {
    type Err = anyhow::Error;

    fn from_str(name: &str) -> Result<AgentKind> {
        if let Some(k) = AgentKind::ALL
            .into_iter()
            .find(|k| k.as_str() == name || k.original_name() == Some(name))
        {
            return Ok(k);
        }
        let known: Vec<&str> = AgentKind::ALL.iter().map(|k| k.as_str()).collect();
        bail!(
            "unknown agent '{name}'; choose one of: {} (the original's class names ResearchAgent, Agent, SimpleActionAgent and ReasoningActionAgent work too)",
            known.join(", ")
        )
    }
}

/// The agent of a run and what it is made from (the agent flags of
/// `mlab run`).
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub kind: AgentKind,
    /// For `actions`: JSONL of `{"name","args"}` or a trace.json to replay.
    pub actions: Option<PathBuf>,
    /// For `external` and `program`: the command that starts the agent
    /// (`sh -c`).
    pub command: Option<String>,
    /// For `external`: seconds to wait for each message of the agent.
    pub timeout: f64,
    /// The model-driven agents' options.
    pub options: Options,
}

/// An agent whose configuration passed [`check`]: what [`make`] needs,
/// already read.
pub struct CheckedAgent {
    kind: AgentKind,
    options: Options,
    timeout: f64,
    build: Build,
}

/// What `make` builds: one variant per kind, with what it was checked to
/// have.
enum Build {
    Research,
    Baseline,
    Simple,
    React,
    Tools,
    External(String),
    Program(String),
    Actions(Vec<Action>),
}

impl CheckedAgent {
    pub fn kind(&self) -> AgentKind {
        self.kind
    }
}

/// Checks the agent's configuration (`has_model`: whether the run names a
/// main model), before anything is created.
pub fn check(cfg: &AgentConfig, has_model: bool) -> Result<CheckedAgent> {
    let kind = cfg.kind;
    let build = match kind {
        AgentKind::Actions => {
            let Some(file) = &cfg.actions else {
                bail!(
                    "--agent actions needs --actions FILE (JSONL of {{\"name\", \"args\"}} objects, or a trace.json to replay)"
                )
            };
            // A bad list, or one whose actions need a model the run lacks,
            // is refused before anything is written.
            let list = action_list::read(file)?;
            action_list::check_models(&list, has_model)?;
            Build::Actions(list)
        }
        k if k.needs_model() && !has_model => bail!(
            "--agent {kind} needs a model: pass --llm MODEL (e.g. --llm gpt-4o, --llm claude-3-5-sonnet-latest, --llm openai:<model>@http://localhost:8000/v1, or --llm human to play the model yourself); --agent baseline needs none"
        ),
        AgentKind::External => match cfg.command.as_deref().filter(|c| !c.trim().is_empty()) {
            Some(c) => Build::External(c.to_string()),
            None => bail!(
                "--agent external needs --agent-cmd \"<command>\" that starts your agent (see docs/agent-protocol.md; examples/external_agent.py is a working example)"
            ),
        },
        AgentKind::Program => match cfg.command.as_deref().filter(|c| !c.trim().is_empty()) {
            Some(c) => Build::Program(c.to_string()),
            None => bail!(
                "--agent program needs --agent-cmd \"<command>\" that starts the outside agent in the workspace (see docs/outside-agents.md for aider, mini-swe-agent and others)"
            ),
        },
        AgentKind::Research => Build::Research,
        AgentKind::Baseline => Build::Baseline,
        AgentKind::Simple => Build::Simple,
        AgentKind::React => Build::React,
        AgentKind::Tools => Build::Tools,
    };
    if !(cfg.timeout > 0.0 && cfg.timeout.is_finite()) {
        bail!("--agent-timeout must be a positive number of seconds");
    }
    let opts = &cfg.options;
    if opts.max_retries == 0 {
        bail!("--max-retries must be at least 1");
    }
    super::research::research_fields(&opts.format_entries)?;
    super::prompt::check_action_names("--actions-add-to-prompt", &opts.add_to_prompt)?;
    super::prompt::check_action_names("--actions-remove-from-prompt", &opts.remove_from_prompt)?;
    Ok(CheckedAgent {
        kind,
        options: opts.clone(),
        timeout: cfg.timeout,
        build,
    })
}

/// What an agent is made from, besides its checked configuration.
pub struct AgentSetup<'a> {
    /// `<log-dir>/agent_log`.
    pub agent_log: PathBuf,
    pub models: Option<Models>,
    pub task: &'a Task,
    /// The run's step and time limits (told to an external agent).
    pub max_steps: u64,
    pub max_time: f64,
    /// Set when the user asked the run to stop (Ctrl-C).
    pub interrupt: Arc<AtomicBool>,
    /// The run's LLM flags (the `program` agent's gateway uses them).
    pub llm: crate::llm::Config,
    /// The run's log folder.
    pub log_dir: PathBuf,
}

pub fn make(agent: CheckedAgent, setup: AgentSetup) -> Result<Box<dyn Agent>> {
    let log = &setup.agent_log;
    let kind = agent.kind;
    let opts = agent.options;
    let models = || {
        setup
            .models
            .clone()
            .ok_or_else(|| anyhow::anyhow!("--agent {kind} needs --llm MODEL"))
    };
    Ok(match agent.build {
        Build::Actions(list) => Box::new(action_list::ActionListAgent::new(list, log)),
        Build::External(command) => Box::new(super::external::ExternalAgent::new(
            super::external::ExternalSetup {
                command: &command,
                timeout: agent.timeout,
                max_steps: setup.max_steps,
                max_time: setup.max_time,
                task: setup.task.name(),
                models: setup.models.clone(),
                agent_log: log,
                interrupt: setup.interrupt.clone(),
            },
        )?),
        Build::Program(command) => Box::new(super::program::ProgramAgent::new(
            super::program::ProgramSetup {
                command: &command,
                models: setup.models.clone(),
                llm: setup.llm.clone(),
                log_dir: &setup.log_dir,
                options: opts.program.clone(),
                agent_log: log,
                interrupt: setup.interrupt.clone(),
            },
        )?),
        Build::Baseline => Box::new(super::baseline::BaselineAgent::new(
            setup.task.baseline_script(),
            log,
        )?),
        Build::Research => Box::new(super::research::ResearchAgent::new(opts, models()?, log)?),
        Build::Simple => Box::new(super::simple::LiteAgent::simple(opts, models()?, log)?),
        Build::React => Box::new(super::react::new(opts, models()?, log)?),
        Build::Tools => Box::new(super::tools::ToolsAgent::new(opts, models()?, log)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_names_and_the_original_class_names_parse() {
        for k in AgentKind::ALL {
            assert_eq!(k.as_str().parse::<AgentKind>().unwrap(), k);
            if let Some(n) = k.original_name() {
                assert_eq!(n.parse::<AgentKind>().unwrap(), k);
            }
        }
        assert_eq!("Agent".parse::<AgentKind>().unwrap(), AgentKind::Baseline);
        let e = "wizard".parse::<AgentKind>().unwrap_err().to_string();
        assert!(
            e.contains("unknown agent 'wizard'") && e.contains("research"),
            "{e}"
        );
    }
}
