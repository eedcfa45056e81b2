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
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::catalog::Action;
use super::snapshot::Skipped;
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
        /// Workspace entries the snapshot left out, and why (the first
        /// `snapshot::MAX_SKIPPED_LISTED`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        skipped: Vec<Skipped>,
        /// How many entries were left out in all.
        #[serde(default, skip_serializing_if = "is_zero")]
        skipped_total: u64,
    },
    /// Steps after `from_step` (in this file) no longer count.
    Resume { time: String, from_step: usize },
    End {
        time: String,
        exit_reason: super::ExitReason,
        #[serde(default)]
        error: Option<String>,
        steps: usize,
        /// What the final snapshot left out, as for a step.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        skipped: Vec<Skipped>,
        #[serde(default, skip_serializing_if = "is_zero")]
        skipped_total: u64,
    },
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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
    /// A torn last line left by a killed run is closed with a newline, so
    /// that the next event starts a line of its own.
    pub fn open(path: &Path) -> Result<EventLog> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .with_context(|| format!("could not open {}", path.display()))?;
        if ends_torn(&mut file)? {
            file.write_all(b"\n")
                .with_context(|| format!("could not append to {}", path.display()))?;
        }
        Ok(EventLog { file })
    }

    /// Appends one event as one line, in a single write so that a crash
    /// leaves either the whole line or a torn last line.
    pub fn append(&mut self, event: &Event) -> Result<()> {
        let mut line = serde_json::to_vec(event).context("could not encode an event")?;
        line.push(b'\n');
        let before = self.file.metadata().map(|m| m.len()).ok();
        if let Err(e) = self.file.write_all(&line) {
            // A part written before the disk filled up is taken back, so a
            // retry (or the next event) starts a clean line.
            if let Some(len) = before {
                let _ = self.file.set_len(len);
            }
            return Err(anyhow::Error::new(e).context("could not append to events.jsonl"));
        }
        Ok(())
    }
}

/// True when the file is not empty and does not end with a newline.
fn ends_torn(file: &mut File) -> Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// The completed steps recorded in `path`, with resume points applied.
///
/// The file is read as bytes and split on newlines: a run killed in the
/// middle of a write can leave a last line that is cut anywhere, even
/// inside a UTF-8 character, and such a line is skipped whatever it holds.
/// Only a line that ends with its newline counts as written.
pub fn read_steps(path: &Path) -> Result<Vec<RecordedStep>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
    let mut steps: Vec<RecordedStep> = Vec::new();
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    // After the last newline: empty for a complete file, else a torn line.
    let count = lines.len();
    for (i, &line) in lines.iter().enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let event: Event = match serde_json::from_slice(line) {
            Ok(e) => e,
            // A torn last line from a killed run.
            Err(_) if i + 1 == count => break,
            // A torn line that a resumed run closed with a newline before
            // appending its own start: also left over from a killed run.
            Err(_) if next_is_start(&lines[i + 1..]) => continue,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "{} line {} is not a valid event; the file is damaged (only a cut-off last line is skipped)",
                        path.display(),
                        i + 1
                    )
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

/// Whether the first non-blank line of `rest` is a `start` event.
fn next_is_start(rest: &[&[u8]]) -> bool {
    rest.iter()
        .find(|l| !l.iter().all(u8::is_ascii_whitespace))
        .and_then(|l| serde_json::from_slice::<Event>(l).ok())
        .is_some_and(|e| matches!(e, Event::Start { .. }))
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
            skipped: vec![],
            skipped_total: 0,
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
    fn a_torn_last_line_cut_inside_a_utf8_character_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("events.jsonl");
        let mut log = EventLog::open(&p).unwrap();
        log.append(&step(0)).unwrap();
        drop(log);
        // A line whose observation holds "é" (0xC3 0xA9), cut after 0xC3.
        let mut torn = serde_json::to_vec(&Event::Step {
            index: 1,
            action: Action::new("List Files", serde_json::json!({"dir_path": "."})),
            observation: "café".into(),
            timestamp: 1.0,
            low_level_steps: vec![],
            snapshot: "traces/step_1_files".into(),
            skipped: vec![],
            skipped_total: 0,
        })
        .unwrap();
        let cut = torn.iter().position(|&b| b == 0xC3).unwrap() + 1;
        torn.truncate(cut);
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&torn).unwrap();
        drop(f);
        let steps = read_steps(&p).unwrap();
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].step.observation, "obs 0");
    }

    #[test]
    fn a_torn_line_closed_by_a_resumed_run_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("events.jsonl");
        let mut log = EventLog::open(&p).unwrap();
        log.append(&step(0)).unwrap();
        drop(log);
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"event\":\"step\",\"index\":1,\"obs\xC3")
            .unwrap();
        drop(f);
        // The resumed run opens the log again and appends its own lines.
        let mut log = EventLog::open(&p).unwrap();
        log.append(&Event::Start {
            time: "t".into(),
            task: "toy".into(),
            workspace: "w".into(),
            resumed_from: None,
        })
        .unwrap();
        log.append(&Event::Resume {
            time: "t".into(),
            from_step: 0,
        })
        .unwrap();
        log.append(&step(1)).unwrap();
        drop(log);
        let steps = read_steps(&p).unwrap();
        assert_eq!(steps.len(), 2);
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
