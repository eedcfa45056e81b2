//! What a model-driven agent remembers between steps, and how it is saved
//! and found again.
//!
//! After every step the state goes to
//! `agent_log/agent_<last env step>_<agent step>.json` (the original's
//! layout), so `--resume` can carry on from the newest state saved at or
//! before the step the environment resumes from. The prompt's view of the
//! history (the last few steps) is rendered here too, so every agent shows
//! its past the same way.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::env::trace::write_atomic;

/// One labelled field of a reply, as kept in the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    pub value: String,
}

/// One step the agent took: its reply's fields and what it observed (the
/// agent's copy, which may be a summary).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryStep {
    /// Number of environment steps taken once this step was done.
    pub step_idx: usize,
    pub action: Vec<Entry>,
    pub observation: String,
}

impl HistoryStep {
    /// The fields as `Name: value` lines.
    pub fn printed(&self) -> String {
        let mut s = String::new();
        for e in &self.action {
            s.push_str(&e.name);
            s.push_str(": ");
            s.push_str(&e.value);
            s.push('\n');
        }
        s
    }
}

/// Everything needed to continue an agent where it stopped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentState {
    pub agent: String,
    /// Agent iterations done.
    pub curr_step: usize,
    pub history_steps: Vec<HistoryStep>,
    pub initial_prompt: String,
    pub prompt_tools: Vec<String>,
    pub valid_format_entries: Vec<String>,
}

impl AgentState {
    /// The last `max_steps` steps as the prompt shows them; the oldest
    /// beyond `max_obs` show "<Done>" instead of their observation.
    pub fn history_text(&self, max_steps: usize, max_obs: usize) -> String {
        let start = self.history_steps.len().saturating_sub(max_steps);
        let shown = &self.history_steps[start..];
        let mut s = String::new();
        for (i, h) in shown.iter().enumerate() {
            let from_end = shown.len() - i;
            s.push_str("\n\nAssistant:\n");
            s.push_str(&h.printed());
            s.push_str("\nObservation:");
            if from_end > max_obs {
                s.push_str(" <Done>\n\n");
            } else {
                s.push_str("\n```\n");
                s.push_str(&h.observation);
                s.push_str("\n```\n\n");
            }
        }
        s
    }

    /// The value of the newest step's field `name`, if any.
    pub fn last_value(&self, name: &str) -> Option<&str> {
        self.history_steps
            .iter()
            .rev()
            .find_map(|h| h.action.iter().find(|e| e.name == name))
            .map(|e| e.value.as_str())
    }
}

/// Writes the state as `agent_<env_steps - 1>_<curr_step>.json`.
pub fn save(agent_log: &Path, env_steps: usize, state: &AgentState) -> Result<PathBuf> {
    let path = agent_log.join(format!(
        "agent_{}_{}.json",
        env_steps as i64 - 1,
        state.curr_step
    ));
    let text = serde_json::to_vec_pretty(state).context("could not encode the agent state")?;
    write_atomic(&path, &text)?;
    Ok(path)
}

/// The newest state in `agent_log` saved at env step `last_step` or before
/// (largest env step, then largest agent step), with the env step it was
/// saved at.
pub fn find_saved(
    agent_log: &Path,
    last_step: usize,
) -> Result<Option<(usize, PathBuf, AgentState)>> {
    let Ok(entries) = std::fs::read_dir(agent_log) else {
        return Ok(None);
    };
    let mut best: Option<(i64, usize, PathBuf)> = None;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(mid) = name
            .strip_prefix("agent_")
            .and_then(|r| r.strip_suffix(".json"))
        else {
            continue;
        };
        let Some((env, agent)) = mid.rsplit_once('_') else {
            continue;
        };
        let (Ok(env), Ok(agent)) = (env.parse::<i64>(), agent.parse::<usize>()) else {
            continue;
        };
        if env > last_step as i64 {
            continue;
        }
        if best
            .as_ref()
            .is_none_or(|(be, ba, _)| (env, agent) > (*be, *ba))
        {
            best = Some((env, agent, e.path()));
        }
    }
    let Some((env, _, path)) = best else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("could not read {}", path.display()))?;
    let state: AgentState = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not an agent state saved by mlab; move it away to resume without it",
            path.display()
        )
    })?;
    Ok(Some(((env + 1).max(0) as usize, path, state)))
}

/// Moves the states saved after env step `last_step` (a run resumed in its
/// own folder from an earlier step) to `agent_log/discarded/<time>/`, so
/// the resumed run neither finds nor overwrites them.
pub fn set_aside_later(agent_log: &Path, last_step: usize) -> Result<usize> {
    let Ok(entries) = std::fs::read_dir(agent_log) else {
        return Ok(0);
    };
    let mut later = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let env_step = name
            .strip_prefix("agent_")
            .and_then(|r| r.strip_suffix(".json"))
            .and_then(|m| m.rsplit_once('_'))
            .and_then(|(env, _)| env.parse::<i64>().ok());
        if env_step.is_some_and(|n| n > last_step as i64) {
            later.push(name);
        }
    }
    if later.is_empty() {
        return Ok(0);
    }
    let dest = agent_log
        .join("discarded")
        .join(chrono::Local::now().format("%Y-%m-%d_%H-%M-%S").to_string());
    std::fs::create_dir_all(&dest)
        .with_context(|| format!("could not create {}", dest.display()))?;
    for name in &later {
        std::fs::rename(agent_log.join(name), dest.join(name))
            .with_context(|| format!("could not move {name} aside"))?;
    }
    Ok(later.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(i: usize) -> HistoryStep {
        HistoryStep {
            step_idx: i + 1,
            action: vec![
                Entry {
                    name: "Thought".into(),
                    value: format!("thinking {i}"),
                },
                Entry {
                    name: "Action".into(),
                    value: "List Files".into(),
                },
            ],
            observation: format!("obs {i}"),
        }
    }

    #[test]
    fn history_shows_the_last_steps_and_hides_old_observations() {
        let state = AgentState {
            history_steps: (0..5).map(step).collect(),
            ..Default::default()
        };
        let t = state.history_text(3, 2);
        assert!(!t.contains("thinking 1"));
        for i in 2..5 {
            assert!(t.contains(&format!("thinking {i}")));
        }
        assert!(!t.contains("obs 2"), "{t}");
        assert!(t.contains("<Done>"));
        assert!(t.contains("```\nobs 4\n```"));
    }

    #[test]
    fn the_newest_state_at_or_before_a_step_is_found() {
        let dir = tempfile::tempdir().unwrap();
        for (env, agent) in [(0, 1), (2, 2), (2, 3), (5, 4)] {
            let s = AgentState {
                curr_step: agent,
                ..Default::default()
            };
            save(dir.path(), env + 1, &s).unwrap();
        }
        let (env_steps, path, s) = find_saved(dir.path(), 4).unwrap().unwrap();
        assert_eq!(s.curr_step, 3);
        assert_eq!(env_steps, 3);
        assert!(path.ends_with("agent_2_3.json"));
        assert!(find_saved(dir.path(), 9).unwrap().unwrap().2.curr_step == 4);
        let empty = tempfile::tempdir().unwrap();
        assert!(find_saved(empty.path(), 3).unwrap().is_none());
        // Resuming in place from step 2 moves the later state aside.
        assert_eq!(set_aside_later(dir.path(), 2).unwrap(), 1);
        assert!(!dir.path().join("agent_5_4.json").exists());
        assert_eq!(find_saved(dir.path(), 9).unwrap().unwrap().2.curr_step, 3);
    }
}
