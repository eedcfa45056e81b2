//! `--agent tools`: the research loop over the provider's native tool
//! calling (OpenAI `tools`, Anthropic `tool_use`).
//!
//! Every prompt action becomes a tool whose parameters are a JSON schema
//! with one required string property per usage key; tool names are the
//! action names with everything but letters, digits, `_` and `-` turned
//! into `_` (providers allow no spaces). The history is shown as text, as
//! for the research agent, so no provider-specific message kinds are
//! needed. A reply without a tool call is read in the text format
//! (`Action:` / `Action Input:`), so models and servers without tool
//! support still work. Long observations are summarised as for the
//! research agent.

use std::path::Path;

use anyhow::Result;
use serde_json::{json, Map, Value};

use super::parse::{
    action_name, check_keys, check_placeholders, parse_action_input, parse_entries,
};
use super::prompt::{self, INPUT_ERROR_PREFIX};
use super::state::HistoryStep;
use super::{entry, llm_failure, Core, FormatExhausted, Options};
use crate::agent::Agent;
use crate::env::catalog::{Action, ActionInfo, FINAL_ANSWER};
use crate::env::Environment;
use crate::llm::{Models, ToolSpec};
use crate::ui;

/// What the fallback text format must hold.
const TEXT_FIELDS: [&str; 2] = ["Action", "Action Input"];

pub struct ToolsAgent {
    core: Core,
    specs: Vec<ToolSpec>,
}

/// What the model asked for.
enum Decision {
    Act {
        info: &'static ActionInfo,
        args: Value,
        note: String,
        input: String,
    },
    BadInput {
        info: &'static ActionInfo,
        err: String,
        note: String,
        input: String,
    },
}

/// The tool name of an action: `Edit Script (AI)` is `Edit_Script_AI`.
pub fn tool_name(action: &str) -> String {
    let mut s = String::with_capacity(action.len());
    for c in action.chars() {
        if c.is_ascii_alphanumeric() || c == '-' {
            s.push(c);
        } else if !s.ends_with('_') {
            s.push('_');
        }
    }
    s.trim_matches('_').to_string()
}

/// The tool for an action: every usage key a required string.
pub fn tool_spec(info: &ActionInfo) -> ToolSpec {
    let mut props = Map::new();
    for arg in info.usage {
        props.insert(
            arg.key.to_string(),
            json!({ "type": "string", "description": arg.description }),
        );
    }
    let required: Vec<&str> = info.usage.iter().map(|a| a.key).collect();
    ToolSpec {
        name: tool_name(info.name),
        description: format!("{} Returns: {}", info.description, info.return_value),
        parameters: json!({
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": false,
        }),
    }
}

fn tools_prompt(tools: &[&ActionInfo], problem: &str) -> String {
    let list: String = tools
        .iter()
        .map(|t| {
            let keys: Vec<&str> = t.usage.iter().map(|a| a.key).collect();
            format!(
                "- {} (tool {}): input keys {}\n",
                t.name,
                tool_name(t.name),
                keys.join(", ")
            )
        })
        .collect();
    format!(
        "You are a careful research assistant. You act by calling the tools you are given, one call per reply. \
         Before each call, say in a sentence or two what you are doing and why.\n\n\
         Research Problem: {problem}\n\n\
         Keep to these instructions from start to finish:\n\
         - Make a plan first, measure the starting point (the baseline) before changing anything, and keep track of what you have confirmed.\n\
         - Treat a performance number as known only after you have run the code that gives it.\n\
         - Do not try to install any new packages or libraries.\n\
         - Call Final Answer once, and only when the goal is met and the result is saved where the problem asks.\n\n\
         The actions:\n{list}\n\
         If you cannot call a tool, reply in text instead, in this format:\n\
         Thought: what you are doing and why\n\
         Action: the action name\n\
         Action Input: a JSON object with exactly the action's input keys\n",
        problem = problem.trim_end()
    )
}

impl ToolsAgent {
    pub fn new(opts: Options, models: Models, agent_log: &Path) -> Result<ToolsAgent> {
        Ok(ToolsAgent {
            core: Core::new(opts, models, agent_log, "tools", &TEXT_FIELDS)?,
            specs: Vec::new(),
        })
    }

    fn run_loop(&mut self, env: &mut Environment) -> Result<String> {
        let tools = self.core.prompt_actions(env);
        self.specs = tools.iter().map(|t| tool_spec(t)).collect();
        let initial = tools_prompt(&tools, env.research_problem());
        self.core.start(env, initial, &tools)?;
        let max_steps = self.core.opts.agent_max_steps as usize;
        let window = self.core.opts.max_steps_in_context;
        while !env.is_final() && self.core.state.curr_step < max_steps {
            let i = self.core.state.curr_step;
            let mut text = self.core.state.initial_prompt.clone();
            if i <= window {
                text.push_str(&prompt::begin(&self.core.opts.prompts));
            }
            text.push_str(
                &self
                    .core
                    .state
                    .history_text(window, self.core.opts.max_observation_steps_in_context),
            );
            let decision = self.decide(env, i, &mut text)?;
            self.take(env, i, decision)?;
        }
        Ok(if env.is_final() {
            "Finished because the environment reached its end".into()
        } else {
            "Finished because the agent reached its step limit".into()
        })
    }

    /// Asks until the reply names a known action, with a correction after
    /// each unusable reply.
    fn decide(&self, env: &Environment, i: usize, text: &mut String) -> Result<Decision> {
        let mut last = String::new();
        for _ in 0..self.core.opts.max_retries {
            let c = self
                .core
                .ask(i, text, &self.specs)
                .map_err(|e| llm_failure(e, &format!("the main model failed at agent step {i}")))?;
            let read = match c.tool_calls.first() {
                Some(call) => {
                    if c.tool_calls.len() > 1 {
                        ui::warn(format!(
                            "agent step {i}: the model called {} tools at once; only the first is taken",
                            c.tool_calls.len()
                        ));
                    }
                    from_call(env, &call.name, &call.arguments, c.text.trim())
                }
                None => from_text(env, &c.text),
            };
            match read {
                Ok(d) => return Ok(d),
                Err(why) => {
                    ui::warn(format!("agent step {i}: unusable reply: {why}"));
                    let shown = if c.tool_calls.is_empty() {
                        c.text.clone()
                    } else {
                        let calls: Vec<String> = c
                            .tool_calls
                            .iter()
                            .map(|t| format!("tool call {} {}", t.name, t.arguments))
                            .collect();
                        format!("{}\n{}", c.text.trim(), calls.join("\n"))
                    };
                    self.core.log_rejected(i, &shown, &why)?;
                    text.push_str(&format!(
                        "\n\nYour last reply could not be used: {why}. Call exactly one of the tools, or reply with Action: and Action Input: lines.\n\n"
                    ));
                    last = why;
                }
            }
        }
        Err(FormatExhausted {
            tries: self.core.opts.max_retries,
            step: i,
            last,
        }
        .into_error())
    }

    fn take(&mut self, env: &mut Environment, i: usize, d: Decision) -> Result<()> {
        let (info, note, input, observation) = match d {
            Decision::BadInput {
                info,
                err,
                note,
                input,
            } => (
                info,
                note,
                input,
                prompt::input_error(&self.core.opts.prompts, &err, info),
            ),
            Decision::Act {
                info,
                args,
                note,
                input,
            } => {
                ui::info(format!("step {}: {}", env.steps_taken(), info.name));
                let full = env.execute(Action::new(info.name, args))?;
                let action_text = format!("Action: {}\nAction Input: {input}", info.name);
                let kept = self
                    .core
                    .keep_observation(i, &action_text, &full)
                    .map_err(|e| {
                        llm_failure(e, "the fast model could not summarise a long observation")
                    })?;
                (info, note, input, kept)
            }
        };
        let step = HistoryStep {
            step_idx: env.steps_taken(),
            action: vec![
                entry("Thought", &note),
                entry("Action", info.name),
                entry("Action Input", &input),
            ],
            observation,
        };
        self.core.log_step(i, &step.printed(), &step.observation)?;
        let history = &mut self.core.state.history_steps;
        if !step.observation.starts_with(INPUT_ERROR_PREFIX) {
            history.retain(|h| !h.observation.starts_with(INPUT_ERROR_PREFIX));
        }
        history.push(step);
        self.core.state.curr_step += 1;
        self.core.save(env)
    }
}

fn find_action(env: &Environment, name: &str) -> Option<&'static ActionInfo> {
    env.action_infos()
        .iter()
        .copied()
        .find(|a| tool_name(a.name) == name || a.name == name)
}

/// Reads a native tool call.
fn from_call(
    env: &Environment,
    name: &str,
    arguments: &Value,
    note: &str,
) -> Result<Decision, String> {
    let info =
        find_action(env, name).ok_or_else(|| format!("there is no tool named \"{name}\""))?;
    let keys: Vec<&str> = info.usage.iter().map(|a| a.key).collect();
    let (input, parsed) = match arguments {
        Value::Object(m) => (
            arguments.to_string(),
            check_keys(m, &keys, info.name)
                .and_then(|_| check_placeholders(m, info))
                .map(|_| m.clone()),
        ),
        Value::Null => {
            let m = Map::new();
            (
                "{}".to_string(),
                check_keys(&m, &keys, info.name).map(|_| m),
            )
        }
        Value::String(s) => (s.clone(), parse_action_input(s, info)),
        other => (
            other.to_string(),
            Err(format!(
                "the arguments are not a JSON object; {} takes the keys {}",
                info.name,
                keys.join(", ")
            )),
        ),
    };
    Ok(decision(info, parsed, note.to_string(), input))
}

/// Reads a reply in the text format.
fn from_text(env: &Environment, text: &str) -> Result<Decision, String> {
    let values = parse_entries(text, &TEXT_FIELDS)
        .map_err(|e| format!("it called no tool, and as text: {e}"))?;
    let names: Vec<&'static str> = env.action_infos().iter().map(|a| a.name).collect();
    let name = action_name(&values[0], &names)
        .or_else(|| find_action(env, values[0].trim()).map(|a| a.name))
        .ok_or_else(|| format!("\"{}\" is not one of the actions", values[0].trim()))?;
    let info = find_action(env, name).ok_or("the action is not available")?;
    let note = parse_entries(text, &["Thought", "Action", "Action Input"])
        .map(|v| v[0].clone())
        .unwrap_or_default();
    let parsed = parse_action_input(&values[1], info);
    Ok(decision(info, parsed, note, values[1].clone()))
}

fn decision(
    info: &'static ActionInfo,
    parsed: Result<Map<String, Value>, String>,
    note: String,
    input: String,
) -> Decision {
    match parsed {
        Ok(map) => Decision::Act {
            info,
            args: Value::Object(map),
            note,
            input,
        },
        // A Final Answer is taken whatever its input looks like.
        Err(_) if info.name == FINAL_ANSWER => Decision::Act {
            info,
            args: json!({ "final_answer": input }),
            note,
            input,
        },
        Err(err) => Decision::BadInput {
            info,
            err,
            note,
            input,
        },
    }
}

impl Agent for ToolsAgent {
    fn run(&mut self, env: &mut Environment) -> Result<String> {
        let ended = self.run_loop(env);
        self.core.finish(env, ended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::catalog::{enabled, lookup};

    #[test]
    fn tool_names_are_what_providers_accept_and_unique() {
        assert_eq!(tool_name("Edit Script (AI)"), "Edit_Script_AI");
        assert_eq!(tool_name("List Files"), "List_Files");
        let names: std::collections::BTreeSet<String> =
            enabled(true).iter().map(|a| tool_name(a.name)).collect();
        assert_eq!(names.len(), 17);
        assert!(names.iter().all(|n| n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')));
    }

    #[test]
    fn a_tool_has_one_required_string_per_usage_key() {
        let s = tool_spec(lookup("Inspect Script Lines").unwrap());
        assert_eq!(s.name, "Inspect_Script_Lines");
        let req: Vec<&str> = s.parameters["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(req, ["script_name", "start_line_number", "end_line_number"]);
        for k in req {
            assert_eq!(s.parameters["properties"][k]["type"], "string");
        }
    }
}
