//! The `actions` agent: runs a fixed list of actions, no model involved.
//!
//! The list is a JSONL file of `{"name": ..., "args": ...}` objects (blank
//! lines and lines starting with `#` are skipped), or a `trace.json` of an
//! earlier run (mlab's or the original's), whose steps are replayed. Used
//! by tests, by people reproducing a trajectory, and by the baseline agent.
//! On resume, the actions already in the kept trace are skipped, so the
//! same file carries on where the run stopped.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::agent::Agent;
use crate::env::action::Action;
use crate::env::Environment;
use crate::ui;

pub struct ActionsAgent {
    actions: Vec<Action>,
    main_log: PathBuf,
}

impl ActionsAgent {
    pub fn load(file: &Path, agent_log: &Path) -> Result<ActionsAgent> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("could not read --actions {}", file.display()))?;
        let actions = parse(&text).with_context(|| format!("--actions {}", file.display()))?;
        Ok(ActionsAgent {
            actions,
            main_log: agent_log.join("main_log"),
        })
    }
}

/// Parses a trace.json or JSONL list of actions.
pub fn parse(text: &str) -> Result<Vec<Action>> {
    if let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(text) {
        if let Some(steps) = obj.get("steps").and_then(Value::as_array) {
            return steps
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    serde_json::from_value::<Action>(s["action"].clone()).with_context(|| {
                        format!("step {i} of the trace has no valid action {{\"name\", \"args\"}}")
                    })
                })
                .collect();
        }
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let example = r#"{"name": "List Files", "args": {"dir_path": "."}}"#;
        let v: Value = serde_json::from_str(line).with_context(|| {
            format!(
                "line {} is not JSON; each line must look like {example}",
                i + 1
            )
        })?;
        let Some(name) = v.get("name").and_then(Value::as_str) else {
            bail!(
                "line {} has no \"name\"; each line must look like {example}",
                i + 1
            );
        };
        let args = v
            .get("args")
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default()));
        out.push(Action::new(name, args));
    }
    if out.is_empty() {
        bail!("the file holds no actions");
    }
    Ok(out)
}

impl Agent for ActionsAgent {
    fn run(&mut self, env: &mut Environment) -> Result<String> {
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.main_log)
            .with_context(|| format!("could not open {}", self.main_log.display()))?;
        let names: Vec<&str> = env.action_infos().iter().map(|a| a.name).collect();
        writeln!(log, "Actions available: {names:?}")?;
        writeln!(
            log,
            "Research problem: {}",
            env.research_problem().trim_end()
        )?;
        writeln!(
            log,
            "Running {} actions from the list.\n",
            self.actions.len()
        )?;
        let skip = env.steps_taken();
        if skip > 0 {
            writeln!(
                log,
                "Resumed after {skip} steps; skipping the actions they took.\n"
            )?;
        }
        let mut done = 0usize;
        for action in self.actions.iter().skip(skip) {
            if env.is_final() {
                break;
            }
            let index = env.steps_taken();
            ui::info(format!("step {index}: {}", action.name));
            let args = serde_json::to_string(&action.args).unwrap_or_default();
            let result = env.execute(action.clone());
            let obs = match &result {
                Ok(o) => o.as_str(),
                Err(_) => "(the run ended during this step)",
            };
            writeln!(
                log,
                "Step {index}:\nAction: {}\nAction Input: {args}\nObservation:\n```\n{obs}\n```\n",
                action.name
            )?;
            result?;
            done += 1;
        }
        Ok(format!("ran {done} actions from the list"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_and_trace_json_both_parse() {
        let jsonl = "# comment\n{\"name\": \"List Files\", \"args\": {\"dir_path\": \".\"}}\n\n{\"name\": \"Final Answer\", \"args\": \"done\"}\n";
        let a = parse(jsonl).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].args, Value::String("done".into()));
        let trace = r#"{"steps": [{"action": {"name": "Execute Script", "args": {"script_name": "train.py"}}, "observation": "x", "timestamp": 1.0}], "low_level_steps": []}"#;
        let t = parse(trace).unwrap();
        assert_eq!(t[0].name, "Execute Script");
    }

    #[test]
    fn bad_lines_name_their_number() {
        let err = format!("{:#}", parse("{\"name\": \"A\"}\nnot json\n").unwrap_err());
        assert!(err.contains("line 2"), "{err}");
        let err = format!("{:#}", parse("{\"args\": {}}\n").unwrap_err());
        assert!(err.contains("no \"name\""), "{err}");
    }
}
