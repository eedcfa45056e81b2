//! `env_log/events.jsonl`: the append-only record of a run, one JSON object
//! per line, written (one `write` call) after each step's snapshot is in
//! place. It is the source of truth for resume: a step that has its line
//! here is complete, with its snapshot on disk. A run killed mid-write
//! leaves at most one torn last line, which readers skip.
//!
//! Lines are never rewritten. Resuming a run in its own log folder appends
//! a `resume` line that drops the steps after the resume point, instead of
//! truncating the file.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::action::Action;
use super::trace::Step;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Start {
        time: String,
        task: String,
        workspace: String,
        #[serde(default)]
        resumed_from: Option<ResumedFrom>,
    },
    Step {
        index: usize,
        action: Action,
        observation: String,
        timestamp: f64,
        #[serde(default)]
        low_level_steps: Vec<Step>,
        /// The snapshot folder, relative to env_log/.
        snapshot: String,
    },
    /// Steps after `from_step` (in this file) no longer count.
    Resume { time: String, from_step: usize },
    End {
        time: String,
        exit_reason: String,
        #[serde(default)]
        error: Option<String>,
        steps: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumedFrom {
    pub log_dir: String,
    pub step: usize,
}

/// A step as recorded: the step and the low-level steps made during it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedStep {
    pub step: Step,
    pub low_level: Vec<Step>,
}

pub struct EventLog {
    file: File,
}

impl EventLog {
    /// Opens `path` for appending (creating it).
    pub fn open(path: &Path) -> Result<EventLog> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("could not open {}", path.display()))?;
        Ok(EventLog { file })
    }

    /// Appends one event as one line, in a single write so that a crash
    /// leaves either the whole line or a torn last line.
    pub fn append(&mut self, event: &Event) -> Result<()> {
        let mut line = serde_json::to_vec(event).context("could not encode an event")?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .context("could not append to events.jsonl")?;
        Ok(())
    }
}

/// The completed steps recorded in `path`, with resume points applied.
pub fn read_steps(path: &Path) -> Result<Vec<RecordedStep>> {
    let f = File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let mut steps: Vec<RecordedStep> = Vec::new();
    let lines: Vec<String> = BufReader::new(f)
        .lines()
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("could not read {}", path.display()))?;
    let count = lines.len();
    for (i, line) in lines.into_iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let event: Event = match serde_json::from_str(&line) {
            Ok(e) => e,
            // A torn last line from a killed run.
            Err(_) if i + 1 == count => break,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("{} line {} is not a valid event", path.display(), i + 1)
                })
            }
        };
        match event {
            Event::Step {
                index,
                action,
                observation,
                timestamp,
                low_level_steps,
                ..
            } => {
                steps.truncate(index);
                if steps.len() != index {
                    anyhow::bail!(
                        "{} line {}: step {index} follows step {}; the file is damaged",
                        path.display(),
                        i + 1,
                        steps.len() as i64 - 1
                    );
                }
                steps.push(RecordedStep {
                    step: Step {
                        action,
                        observation,
                        timestamp,
                    },
                    low_level: low_level_steps,
                });
            }
            Event::Resume { from_step, .. } => steps.truncate(from_step + 1),
            Event::Start { .. } | Event::End { .. } => {}
        }
    }
    Ok(steps)
}

/// The end event of the log, if the run ended cleanly.
#[cfg(test)]
pub fn read_end(path: &Path) -> Option<Event> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Event>(l).ok())
        .find(|e| matches!(e, Event::End { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(i: usize) -> Event {
        Event::Step {
            index: i,
            action: Action::new("List Files", serde_json::json!({"dir_path": "."})),
            observation: format!("obs {i}"),
            timestamp: i as f64,
            low_level_steps: vec![],
            snapshot: format!("traces/step_{i}_files"),
        }
    }

    #[test]
    fn torn_last_line_is_skipped_and_resume_drops_later_steps() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("events.jsonl");
        let mut log = EventLog::open(&p).unwrap();
        for i in 0..4 {
            log.append(&step(i)).unwrap();
        }
        log.append(&Event::Resume {
            time: "t".into(),
            from_step: 1,
        })
        .unwrap();
        log.append(&step(2)).unwrap();
        drop(log);
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"event\":\"step\",\"index\":3,\"act")
            .unwrap();
        let steps = read_steps(&p).unwrap();
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[2].step.observation, "obs 2");
        assert_eq!(steps[1].step.observation, "obs 1");
    }

    #[test]
    fn a_damaged_middle_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("events.jsonl");
        std::fs::write(
            &p,
            "{not json}\n{\"event\":\"resume\",\"time\":\"t\",\"from_step\":0}\n",
        )
        .unwrap();
        assert!(read_steps(&p).is_err());
    }
}
