//! What each action does, one file per family. `dispatch` is the only entry:
//! the environment has already checked the name and that the arguments are
//! a JSON object; each action reads its own keys.
//!
//! High-level actions reach files through the same primitives as the agent
//! (`files::read_text`, `files::write_text`, ...), so every path goes
//! through confinement and every primitive call is recorded as a
//! low-level step, as in the original.

pub mod control;
pub mod edit;
pub mod exec;
pub mod files;
pub mod repl;
pub mod research_log;
pub mod understand;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

use super::catalog::{self, ActionInfo, Family};
use super::trace::{now, Step};
use super::workspace::Workspace;
use crate::llm::{LlmError, Models, Request};

pub use exec::ExecSetup;

/// Why an action produced no normal result.
#[derive(Debug)]
pub enum ActionError {
    /// A refusal or failure the agent can act on. `io` marks a failure of
    /// the file system (such failures are recorded as low-level steps, as
    /// the original recorded OSErrors).
    Env {
        msg: String,
        io: bool,
    },
    /// Missing arguments: the agent is shown the action's usage.
    Invalid,
    /// The input was too long for the model behind the action.
    TooLong,
    Llm(LlmError),
}

impl ActionError {
    pub fn env(msg: impl Into<String>) -> ActionError {
        ActionError::Env {
            msg: msg.into(),
            io: false,
        }
    }

    pub fn io(msg: impl Into<String>) -> ActionError {
        ActionError::Env {
            msg: msg.into(),
            io: true,
        }
    }
}

impl From<super::confine::Refusal> for ActionError {
    fn from(r: super::confine::Refusal) -> Self {
        ActionError::env(r.0)
    }
}

/// What an action may use while it runs.
pub struct Ctx<'a> {
    pub ws: &'a Workspace,
    /// Index of the step being taken.
    pub step: usize,
    /// `env_log/tool_logs/step_N_tool_log.log`, for LLM transcripts.
    pub tool_log: PathBuf,
    pub low_level: &'a mut Vec<Step>,
    pub models: Option<&'a Models>,
    pub research_problem: &'a str,
    pub exec: &'a ExecSetup,
    /// Time a command may run in this step.
    pub timeout: Option<Duration>,
    pub repl: &'a mut Option<repl::Repl>,
    pub interactive: bool,
}

impl Ctx<'_> {
    /// Records a primitive call made during this step.
    pub fn record(&mut self, name: &str, args: Value, observation: &str) {
        self.low_level.push(Step {
            action: catalog::Action::new(name, args),
            observation: observation.to_string(),
            timestamp: now(),
        });
    }
}

/// Runs `info` with `args` (a JSON object). A primitive called directly is
/// recorded as a low-level step too, as the original did (the file
/// primitives record themselves, also when high-level actions use them).
pub fn dispatch(
    info: &ActionInfo,
    args: &Map<String, Value>,
    ctx: &mut Ctx,
) -> Result<String, ActionError> {
    let result = run(info, args, ctx);
    if info.is_primitive && info.family != Family::Files {
        let kept: Map<String, Value> = info
            .usage
            .iter()
            .filter_map(|a| args.get(a.key).map(|v| (a.key.to_string(), v.clone())))
            .collect();
        match &result {
            Ok(obs) => ctx.record(info.name, Value::Object(kept), obs),
            Err(ActionError::Env { msg, io: true }) => {
                ctx.record(info.name, Value::Object(kept), &format!("EnvError: {msg}"))
            }
            Err(_) => {}
        }
    }
    result
}

fn run(info: &ActionInfo, args: &Map<String, Value>, ctx: &mut Ctx) -> Result<String, ActionError> {
    match info.family {
        Family::Files => files::dispatch(info.name, args, ctx),
        Family::Exec => exec::execute_script(args, ctx),
        Family::Repl => repl::python_repl(args, ctx),
        Family::Control => control::dispatch(info.name, args, ctx),
        Family::Understand => understand::understand_file(args, ctx),
        Family::Edit => edit::dispatch(info.name, args, ctx),
        Family::ResearchLog => research_log::dispatch(info.name, args, ctx),
    }
}

/// A text argument. Numbers and booleans are taken as their text; a
/// missing key (or a list/object) makes the whole input invalid.
pub fn text_arg(args: &Map<String, Value>, key: &str) -> Result<String, ActionError> {
    match args.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(v.to_string()),
        _ => Err(ActionError::Invalid),
    }
}

/// A whole-number argument, given as a number or as a string of digits.
pub fn int_arg(args: &Map<String, Value>, key: &str) -> Result<i64, ActionError> {
    let bad = |v: &Value| ActionError::env(format!("{key} must be a whole number, not {v}"));
    match args.get(key) {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .ok_or_else(|| bad(&args[key])),
        Some(v @ Value::String(s)) => s.trim().parse().map_err(|_| bad(v)),
        Some(v) => Err(bad(v)),
        None => Err(ActionError::Invalid),
    }
}

/// Which model an LLM-backed action uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Summaries, Understand File, Reflection, Retrieval.
    Fast,
    /// Edit Script (AI) and Edit Script Segment (AI).
    Edit,
}

/// Max tokens of a fast-model reply.
pub const FAST_MAX_TOKENS: u32 = 2000;

/// Sends `prompt` to the model of `role`; the transcript goes to `log_file`.
pub fn complete(
    ctx: &Ctx,
    action: &str,
    role: Role,
    prompt: String,
    log_file: PathBuf,
) -> Result<String, ActionError> {
    let Some(models) = ctx.models else {
        return Err(ActionError::env(format!(
            "{action} needs a language model, and this run has none; start the run with --llm MODEL"
        )));
    };
    let (model, mut req) = match role {
        Role::Fast => {
            let mut r = Request::prompt(prompt, FAST_MAX_TOKENS);
            r.temperature = 0.01;
            (&models.fast, r)
        }
        Role::Edit => {
            let mut r = Request::prompt(prompt, models.edit_max_tokens);
            r.stop = vec!["Observation:".into()];
            (&models.edit, r)
        }
    };
    req.log_file = Some(log_file);
    match model.complete(&req) {
        Ok(c) => Ok(c.text),
        Err(LlmError::PromptTooLong(_)) => Err(ActionError::TooLong),
        Err(e) => Err(ActionError::Llm(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_and_int_args_accept_lenient_spellings() {
        let args = json!({"a": "x", "n": 3, "s": " 12 ", "f": 2.0, "b": "2.5", "l": [1]});
        let args = args.as_object().unwrap();
        assert_eq!(text_arg(args, "a").unwrap(), "x");
        assert_eq!(text_arg(args, "n").unwrap(), "3");
        assert!(matches!(
            text_arg(args, "missing"),
            Err(ActionError::Invalid)
        ));
        assert!(matches!(text_arg(args, "l"), Err(ActionError::Invalid)));
        assert_eq!(int_arg(args, "n").unwrap(), 3);
        assert_eq!(int_arg(args, "s").unwrap(), 12);
        assert_eq!(int_arg(args, "f").unwrap(), 2);
        assert!(matches!(int_arg(args, "b"), Err(ActionError::Env { .. })));
        assert!(matches!(int_arg(args, "zz"), Err(ActionError::Invalid)));
    }
}
