//! The research agent (`--agent research`, the original's ResearchAgent):
//! the paper's agent, with our own prompt text.
//!
//! Each step: build the prompt (opening prompt, in retrieval mode a summary
//! retrieved from the research log, then the last
//! `--max-steps-in-context` steps); ask the main model, stopping at
//! "Observation:", and read the six fields, retrying with a correction up
//! to `--max-retries` times; read the Action Input (an unreadable one is
//! shown to the model as the observation, without an environment step);
//! take the action; shorten a long observation with the fast model; in
//! retrieval mode add a summary of the step to the research log; save the
//! state. A model failure ends the run with the failure as its reason.

use anyhow::Result;
use serde_json::{json, Value};

use super::parse::{action_name, parse_action_input, parse_entries};
use super::prompt::{self, INPUT_ERROR_PREFIX, RESEARCH_FIELDS};
use super::state::HistoryStep;
use super::{entry, llm_failure, summarize, Core, FormatExhausted, Options};
use crate::agent::Agent;
use crate::env::catalog::{Action, ActionInfo, APPEND_SUMMARY, FINAL_ANSWER, RETRIEVAL};
use crate::env::Environment;
use crate::llm::Models;
use crate::ui;

pub struct ResearchAgent {
    core: Core,
}

/// A reply that passed the format checks.
pub struct Reply {
    /// Field values in the order of the fields.
    pub values: Vec<String>,
    pub action: &'static ActionInfo,
}

impl ResearchAgent {
    pub fn new(
        opts: Options,
        models: Models,
        agent_log: &std::path::Path,
    ) -> Result<ResearchAgent> {
        let fields = research_fields(&opts.format_entries)?;
        Ok(ResearchAgent {
            core: Core::new(opts, models, agent_log, "research", &fields)?,
        })
    }

    fn run_loop(&mut self, env: &mut Environment) -> Result<String> {
        let tools = self.core.prompt_actions(env);
        let initial = prompt::research_prompt(
            &self.core.opts.prompts,
            &tools,
            env.research_problem(),
            &self.core.fields,
        );
        self.core.start(env, initial, &tools)?;
        let max_steps = self.core.opts.agent_max_steps as usize;
        while !env.is_final() && self.core.state.curr_step < max_steps {
            let i = self.core.state.curr_step;
            let mut text = self.context(env, i)?;
            if env.is_final() {
                break;
            }
            let reply = ask_until_usable(&self.core, env, i, &mut text, true)?;
            self.take_step(env, i, reply)?;
        }
        Ok(if env.is_final() {
            "Finished because the environment reached its end".into()
        } else {
            "Finished because the agent reached its step limit".into()
        })
    }

    /// The prompt for agent step `i`.
    fn context(&mut self, env: &mut Environment, i: usize) -> Result<String> {
        let c = &self.core;
        let mut text = c.state.initial_prompt.clone();
        let window = c.opts.max_steps_in_context;
        if c.opts.retrieval && i > window {
            let plan = c
                .state
                .last_value("Research Plan and Status")
                .unwrap_or_default()
                .to_string();
            let summary = env.execute(Action::new(RETRIEVAL, json!({ "current_plan": plan })))?;
            text.push_str(&prompt::retrieval_context(
                &c.opts.prompts,
                &summary,
                window,
            ));
        } else if i <= window {
            text.push_str(&prompt::begin(&c.opts.prompts));
        }
        text.push_str(
            &c.state
                .history_text(window, c.opts.max_observation_steps_in_context),
        );
        Ok(text)
    }

    fn take_step(&mut self, env: &mut Environment, i: usize, reply: Reply) -> Result<()> {
        let fields = self.core.fields.clone();
        let mut values = reply.values;
        let plan_at = fields.iter().position(|f| *f == "Research Plan and Status");
        if let Some(p) = plan_at {
            // The history keeps the plan without markdown emphasis.
            values[p] = values[p]
                .trim_matches('`')
                .replace("**", "")
                .trim()
                .to_string();
        }
        let entries: Vec<_> = fields
            .iter()
            .zip(&values)
            .map(|(f, v)| entry(f, v))
            .collect();
        let raw_input = &values[fields.len() - 1];
        let info = reply.action;
        let parsed = parse_action_input(raw_input, info);
        let mut step = HistoryStep {
            step_idx: 0,
            action: entries,
            observation: String::new(),
        };
        let printed = step.printed();
        let observation = match parsed {
            Err(err) if info.name != FINAL_ANSWER => {
                prompt::input_error(&self.core.opts.prompts, &err, info)
            }
            parsed => {
                let args = match parsed {
                    Ok(map) => Value::Object(map),
                    // A Final Answer is taken whatever its input looks like.
                    Err(_) => json!({ "final_answer": raw_input.trim() }),
                };
                ui::info(format!("step {}: {}", env.steps_taken(), info.name));
                let full = env.execute(Action::new(info.name, args))?;
                let action_text = format!("Action: {}\nAction Input: {}", info.name, raw_input);
                self.core
                    .keep_observation(i, &action_text, &full)
                    .map_err(|e| {
                        llm_failure(e, "the fast model could not summarise a long observation")
                    })?
            }
        };
        self.core.log_step(i, &printed, &observation)?;
        step.step_idx = env.steps_taken();
        step.observation = observation.clone();
        let is_input_error = observation.starts_with(INPUT_ERROR_PREFIX);
        let history = &mut self.core.state.history_steps;
        if !is_input_error {
            // Earlier unreadable inputs have served their purpose.
            history.retain(|h| !h.observation.starts_with(INPUT_ERROR_PREFIX));
        }
        history.push(step);

        if self.core.opts.retrieval && !is_input_error && !env.is_final() {
            let log = self
                .core
                .journal
                .dir()
                .join(format!("step_{i}_summary_log.log"));
            let summary = summarize::step_summary(
                &self.core.opts.prompts,
                &self.core.models,
                &printed,
                &observation,
                self.core.opts.max_retries,
                &log,
            )
            .map_err(|e| {
                llm_failure(
                    e,
                    "the fast model could not summarise the step for the research log",
                )
            })?;
            env.execute(Action::new(
                APPEND_SUMMARY,
                json!({ "content": format!("\n\nStep {i}:\n{summary}\n") }),
            ))?;
        }
        self.core.state.curr_step += 1;
        self.core.save(env)
    }
}

/// Asks the main model until a reply has every field and names a known
/// action, appending a correction to `text` after each unusable one (when
/// `hint`); `FormatExhausted` after `--max-retries` tries.
pub fn ask_until_usable(
    core: &Core,
    env: &Environment,
    i: usize,
    text: &mut String,
    hint: bool,
) -> Result<Reply> {
    let names: Vec<&'static str> = env.action_infos().iter().map(|a| a.name).collect();
    let mut last = String::new();
    for _ in 0..core.opts.max_retries {
        let completion = core
            .ask(i, text, &[])
            .map_err(|e| llm_failure(e, &format!("the main model failed at agent step {i}")))?;
        match check_reply(&completion.text, &core.fields, &names, env) {
            Ok(reply) => return Ok(reply),
            Err(why) => {
                ui::warn(format!("agent step {i}: unusable reply: {why}"));
                core.log_rejected(i, &completion.text, &why)?;
                if hint {
                    text.push_str(&prompt::correction(&core.opts.prompts, &why, &core.fields));
                }
                last = why;
            }
        }
    }
    Err(FormatExhausted {
        tries: core.opts.max_retries,
        step: i,
        last,
    }
    .into_error())
}

/// The response fields for `--valid-format-entires`: all six when none
/// are given, else the named ones in the given order. Each must be one of
/// the six (the prompt describes only those), Action must be there, and
/// Action Input must come last (it takes the rest of the reply).
pub fn research_fields(entries: &[String]) -> Result<Vec<&'static str>> {
    if entries.is_empty() {
        return Ok(RESEARCH_FIELDS.to_vec());
    }
    let mut fields = Vec::new();
    for e in entries {
        let Some(f) = RESEARCH_FIELDS.iter().find(|f| **f == e.trim()) else {
            anyhow::bail!(
                "--valid-format-entires: unknown field '{e}'; choose from {}",
                RESEARCH_FIELDS.map(|f| format!("\"{f}\"")).join(", ")
            );
        };
        if fields.contains(f) {
            anyhow::bail!("--valid-format-entires: '{f}' is named twice");
        }
        fields.push(*f);
    }
    if !fields.contains(&"Action") || fields.last() != Some(&"Action Input") {
        anyhow::bail!(
            "--valid-format-entires must include Action and end with \"Action Input\" (got: {})",
            fields.join(", ")
        );
    }
    Ok(fields)
}

/// Reads the fields of a reply and the action it names.
pub fn check_reply(
    text: &str,
    fields: &[&str],
    names: &[&'static str],
    env: &Environment,
) -> Result<Reply, String> {
    let values = parse_entries(text, fields)?;
    let action_at = fields
        .iter()
        .position(|f| *f == "Action")
        .ok_or("the fields have no Action")?;
    let Some(name) = action_name(&values[action_at], names) else {
        return Err(format!(
            "\"{}\" is not one of the actions ({})",
            values[action_at].lines().next().unwrap_or("").trim(),
            names.join(", ")
        ));
    };
    let action = env
        .action_infos()
        .iter()
        .copied()
        .find(|a| a.name == name)
        .ok_or("the action is not available")?;
    Ok(Reply { values, action })
}

impl Agent for ResearchAgent {
    fn run(&mut self, env: &mut Environment) -> Result<String> {
        let ended = self.run_loop(env);
        self.core.finish(env, ended)
    }
}
