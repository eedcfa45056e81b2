//! The action-list agent (`--agent actions`): plays a fixed list of
//! actions, no model involved.
//!
//! The list is a JSONL file of `{"name": ..., "args": ...}` objects (blank
//! lines and lines starting with `#` are skipped), or a `trace.json` of an
//! earlier run (mlab's or the original's), whose steps are replayed. Used
//! by tests, by people reproducing a trajectory, and by the baseline agent.
//! On resume, the actions already in the kept trace are skipped, so the
//! same file carries on where the run stopped. A list that runs out before
//! a Final Answer or a limit ends the run as `actions_exhausted`, so that
//! a truncated file is never mistaken for a run that hit its step limit.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::Agent;
use crate::env::catalog::Action;
use crate::env::Environment;
use crate::ui;

pub struct ActionListAgent {
    actions: Vec<Action>,
    main_log: PathBuf,
}

/// The list ran out before the run ended: no Final Answer, and no step or
/// time limit was reached. Read by `run::classify`.
#[derive(Debug)]
pub struct ActionsExhausted {
    pub done: usize,
    pub listed: usize,
}

impl std::fmt::Display for ActionsExhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the actions file ran out after its {} actions ({} taken in this run) without a Final Answer; end the list with {{\"name\": \"Final Answer\", \"args\": {{\"final_answer\": \"...\"}}}} if the run is meant to be scored as finished",
            self.listed, self.done
        )
    }
}

impl std::error::Error for ActionsExhausted {}

impl ActionListAgent {
    /// The agent that plays `actions` (as [`read`] returns them).
    pub fn new(actions: Vec<Action>, agent_log: &Path) -> ActionListAgent {
        ActionListAgent {
            actions,
            main_log: agent_log.join("main_log"),
        }
    }
}

/// Reads and parses `--actions FILE`.
pub fn read(file: &Path) -> Result<Vec<Action>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("could not read --actions {}", file.display()))?;
    parse(&text).with_context(|| format!("--actions {}", file.display()))
}

/// Refuses a list with actions that call a language model (Understand
/// File, Edit Script (AI), Reflection, ...) when the run has no model:
/// each would otherwise become an error observation in a run that still
/// ends as if all went well. `has_model` is true when `--llm` was given.
pub fn check_models(actions: &[Action], has_model: bool) -> Result<()> {
    if has_model {
        return Ok(());
    }
    let mut needing: Vec<&str> = Vec::new();
    let mut first = None;
    for (i, a) in actions.iter().enumerate() {
        if let Some(info) = crate::env::catalog::lookup(&a.name).filter(|i| i.uses_llm) {
            first.get_or_insert(i);
            if !needing.contains(&info.name) {
                needing.push(info.name);
            }
        }
    }
    let Some(first) = first else {
        return Ok(());
    };
    bail!(
        "the actions list uses {} (first at action {}), which needs a language model, and this run has none; pass --llm MODEL (it also serves as the edit model for Edit Script (AI) and the fast model for Understand File, Reflection and Retrieval unless --edit-script-llm or --fast-llm name others), e.g. --llm replay:<the recorded run's log dir> to replay its model answers",
        needing.join(", "),
        first + 1
    )
}

/// Parses a trace.json or JSONL list of actions. A UTF-8 byte-order mark
/// (as some Windows editors write) is skipped.
pub fn parse(text: &str) -> Result<Vec<Action>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(text) {
        if let Some(steps) = obj.get("steps").and_then(Value::as_array) {
            // The person's Human Instruction steps are not the agent's
            // actions: replaying the trace leaves them out.
            return steps
                .iter()
                .filter(|s| s["action"]["name"] != crate::env::catalog::HUMAN_INSTRUCTION)
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

impl Agent for ActionListAgent {
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
        // A resumed run's Human Instructions are not in the list.
        let skip = env.agent_steps_taken();
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
        if !env.is_final() {
            writeln!(log, "The list ran out after {done} actions in this run.")?;
            return Err(ActionsExhausted {
                done,
                listed: self.actions.len(),
            }
            .into());
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
    fn a_byte_order_mark_is_not_taken_for_bad_json() {
        let jsonl = "\u{feff}{\"name\": \"List Files\", \"args\": {\"dir_path\": \".\"}}\n";
        assert_eq!(parse(jsonl).unwrap()[0].name, "List Files");
        let trace = "\u{feff}{\"steps\": [{\"action\": {\"name\": \"List Files\", \"args\": {}}}]}";
        assert_eq!(parse(trace).unwrap()[0].name, "List Files");
    }

    #[test]
    fn llm_actions_without_a_model_are_refused_naming_the_flag() {
        let list = parse(concat!(
            "{\"name\": \"List Files\", \"args\": {}}\n",
            "{\"name\": \"Edit Script Segment (AI)\", \"args\": {}}\n",
            "{\"name\": \"Understand File\", \"args\": {}}\n",
        ))
        .unwrap();
        let err = format!("{:#}", check_models(&list, false).unwrap_err());
        assert!(
            err.contains("Edit Script Segment (AI), Understand File")
                && err.contains("action 2")
                && err.contains("--llm MODEL"),
            "{err}"
        );
        assert!(check_models(&list, true).is_ok());
        assert!(check_models(&list[..1], false).is_ok());
    }

    #[test]
    fn bad_lines_name_their_number() {
        let err = format!("{:#}", parse("{\"name\": \"A\"}\nnot json\n").unwrap_err());
        assert!(err.contains("line 2"), "{err}");
        let err = format!("{:#}", parse("{\"args\": {}}\n").unwrap_err());
        assert!(err.contains("no \"name\""), "{err}");
    }
}
