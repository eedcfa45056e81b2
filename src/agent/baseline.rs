//! `--agent baseline` (the original's base `Agent`): runs the task's
//! starter script unchanged and submits. No model. Its scores are the
//! baseline the success rate is measured against.

use anyhow::Result;
use serde_json::json;

use super::Journal;
use crate::agent::Agent;
use crate::env::catalog::{Action, EXECUTE_SCRIPT, FINAL_ANSWER};
use crate::env::Environment;
use crate::ui;

pub struct BaselineAgent {
    script: String,
    journal: Journal,
}

impl BaselineAgent {
    pub fn new(script: &str, agent_log: &std::path::Path) -> Result<BaselineAgent> {
        Ok(BaselineAgent {
            script: script.to_string(),
            journal: Journal::open(agent_log)?,
        })
    }
}

impl Agent for BaselineAgent {
    fn run(&mut self, env: &mut Environment) -> Result<String> {
        self.journal.write(&format!(
            "Baseline agent: runs {} unchanged, then submits.\nResearch problem: {}\n\n",
            self.script,
            env.research_problem().trim_end()
        ))?;
        let actions = [
            Action::new(EXECUTE_SCRIPT, json!({ "script_name": self.script })),
            Action::new(
                FINAL_ANSWER,
                json!({ "final_answer": format!("Ran {} unchanged.", self.script) }),
            ),
        ];
        // On resume, the steps already taken are not repeated.
        for action in actions.into_iter().skip(env.steps_taken()) {
            if env.is_final() {
                break;
            }
            let index = env.steps_taken();
            ui::info(format!("step {index}: {}", action.name));
            let input = action.args.to_string();
            let name = action.name.clone();
            let observation = env.execute(action)?;
            self.journal.write(&format!(
                "Step {index}:\nAction: {name}\nAction Input: {input}\nObservation:\n```\n{observation}\n```\n\n"
            ))?;
        }
        Ok("Finished: the starter script ran and the result was submitted".into())
    }
}
