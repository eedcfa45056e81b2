//! The lighter agents of the original: `--agent simple`
//! (SimpleActionAgent: Action and Action Input) and, through `react`,
//! `--agent react` (ReasoningActionAgent: Thought first).
//!
//! As the original: the opening prompt, "Now begin", the last
//! `--max-steps-in-context` steps with their full observations; unusable
//! replies are asked again without a correction; an unreadable Action Input
//! goes to the environment as raw text, which answers with the action's
//! usage. No summaries, no research log.

use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use super::parse::parse_action_input;
use super::prompt;
use super::research::ask_until_usable;
use super::state::HistoryStep;
use super::{entry, Core, Options};
use crate::agent::Agent;
use crate::env::catalog::Action;
use crate::env::Environment;
use crate::llm::Models;
use crate::ui;

/// The fields of `--agent simple`.
pub const SIMPLE_FIELDS: [&str; 2] = ["Action", "Action Input"];

pub struct LiteAgent {
    core: Core,
}

impl LiteAgent {
    pub fn new(
        opts: Options,
        models: Models,
        agent_log: &Path,
        name: &str,
        fields: &[&'static str],
    ) -> Result<LiteAgent> {
        Ok(LiteAgent {
            core: Core::new(opts, models, agent_log, name, fields)?,
        })
    }

    pub fn simple(opts: Options, models: Models, agent_log: &Path) -> Result<LiteAgent> {
        LiteAgent::new(opts, models, agent_log, "simple", &SIMPLE_FIELDS)
    }

    fn run_loop(&mut self, env: &mut Environment) -> Result<String> {
        let tools = self.core.prompt_actions(env);
        let initial = prompt::base_prompt(
            &self.core.opts.prompts,
            &tools,
            env.research_problem(),
            &self.core.fields,
        );
        self.core.start(env, initial, &tools)?;
        let max_steps = self.core.opts.agent_max_steps as usize;
        let window = self.core.opts.max_steps_in_context;
        while !env.is_final() && self.core.state.curr_step < max_steps {
            let i = self.core.state.curr_step;
            let mut text = self.core.state.initial_prompt.clone();
            text.push_str(&prompt::begin(&self.core.opts.prompts));
            text.push_str(&self.core.state.history_text(window, window));
            let reply = ask_until_usable(&self.core, env, i, &mut text, false)?;
            let fields = self.core.fields.clone();
            let raw = reply.values[fields.len() - 1].clone();
            let args = match parse_action_input(&raw, reply.action) {
                Ok(map) => Value::Object(map),
                Err(_) => Value::String(raw.clone()),
            };
            ui::info(format!("step {}: {}", env.steps_taken(), reply.action.name));
            let observation = env.execute(Action::new(reply.action.name, args))?;
            let step = HistoryStep {
                step_idx: env.steps_taken(),
                action: fields
                    .iter()
                    .zip(&reply.values)
                    .map(|(f, v)| entry(f, v))
                    .collect(),
                observation,
            };
            self.core.log_step(i, &step.printed(), &step.observation)?;
            self.core.state.history_steps.push(step);
            self.core.state.curr_step += 1;
            self.core.save(env)?;
        }
        Ok("Finished successfully".into())
    }
}

impl Agent for LiteAgent {
    fn run(&mut self, env: &mut Environment) -> Result<String> {
        let ended = self.run_loop(env);
        self.core.finish(env, ended)
    }
}
