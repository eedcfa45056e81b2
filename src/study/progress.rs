//! What a run is doing, read from its log folder as it grows: the steps
//! in `env_log/events.jsonl` and the model calls in
//! `agent_log/llm_calls.jsonl`. Reading the logs (rather than a channel
//! from the run) works the same for a run in this process, a child
//! process, or a Slurm job on another node, and needs nothing from the
//! engine; each poll reads only what was appended since the last.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A run's progress so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Steps completed (a resumed run counts the steps it kept).
    pub steps: usize,
    /// The last step's action.
    pub last_action: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    /// The run closed (its end event), with this reason.
    pub ended: Option<String>,
}

/// Follows one run's log folder.
#[derive(Debug)]
pub struct Watch {
    events: Tail,
    calls: Tail,
    snapshot: Snapshot,
}

impl Watch {
    pub fn new(log_dir: &Path) -> Watch {
        Watch {
            events: Tail::new(log_dir.join("env_log/events.jsonl")),
            calls: Tail::new(log_dir.join("agent_log/llm_calls.jsonl")),
            snapshot: Snapshot::default(),
        }
    }

    /// Reads what was appended since the last poll; returns the progress.
    pub fn poll(&mut self) -> &Snapshot {
        #[derive(Deserialize)]
        struct Ev {
            #[serde(default)]
            event: String,
            #[serde(default)]
            index: Option<usize>,
            #[serde(default)]
            action: Option<serde_json::Value>,
            #[serde(default)]
            from_step: Option<usize>,
            #[serde(default)]
            exit_reason: Option<String>,
        }
        for line in self.events.lines() {
            let Ok(ev) = serde_json::from_str::<Ev>(&line) else {
                continue;
            };
            match ev.event.as_str() {
                "step" => {
                    self.snapshot.steps = ev.index.map_or(self.snapshot.steps + 1, |i| i + 1);
                    self.snapshot.last_action = ev
                        .action
                        .as_ref()
                        .and_then(|a| a.get("name"))
                        .and_then(|n| n.as_str())
                        .map(String::from);
                    self.snapshot.ended = None;
                }
                "resume" => {
                    if let Some(f) = ev.from_step {
                        self.snapshot.steps = f + 1;
                    }
                    self.snapshot.ended = None;
                }
                "end" => self.snapshot.ended = ev.exit_reason.or(Some("ended".into())),
                _ => {}
            }
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Usage {
            input_tokens: u64,
            output_tokens: u64,
        }
        #[derive(Deserialize)]
        struct Call {
            #[serde(default)]
            usage: Usage,
            #[serde(default)]
            cost_usd: f64,
        }
        for line in self.calls.lines() {
            if let Ok(c) = serde_json::from_str::<Call>(&line) {
                self.snapshot.input_tokens += c.usage.input_tokens;
                self.snapshot.output_tokens += c.usage.output_tokens;
                self.snapshot.cost_usd += c.cost_usd;
            }
        }
        &self.snapshot
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }
}

/// The complete lines appended to a file since the last call (a line not
/// yet ended by a newline waits for the next call). A file that shrank
/// (replaced) is read again from its start.
#[derive(Debug)]
struct Tail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl Tail {
    fn new(path: PathBuf) -> Tail {
        Tail {
            path,
            offset: 0,
            partial: Vec::new(),
        }
    }

    fn lines(&mut self) -> Vec<String> {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            self.offset = 0;
            self.partial.clear();
        }
        if len == self.offset || f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return Vec::new();
        }
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let Some(last) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        let rest = self.partial.split_off(last + 1);
        let done = std::mem::replace(&mut self.partial, rest);
        done.split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_watch_reads_steps_calls_and_the_end_as_they_are_appended() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("env_log")).unwrap();
        std::fs::create_dir_all(dir.path().join("agent_log")).unwrap();
        let mut w = Watch::new(dir.path());
        assert_eq!(w.poll(), &Snapshot::default());
        let mut ev = std::fs::File::create(dir.path().join("env_log/events.jsonl")).unwrap();
        let step = |i: usize, name: &str| {
            let e = crate::env::events::Event::Step {
                index: i,
                action: crate::env::catalog::Action {
                    name: name.into(),
                    args: serde_json::json!({}),
                },
                observation: "o".into(),
                timestamp: 0.0,
                low_level_steps: vec![],
                snapshot: format!("traces/step_{i}_files"),
                skipped: vec![],
                skipped_total: 0,
            };
            format!("{}\n", serde_json::to_string(&e).unwrap())
        };
        ev.write_all(step(0, "List Files").as_bytes()).unwrap();
        let half = step(1, "Execute Script");
        ev.write_all(&half.as_bytes()[..10]).unwrap();
        assert_eq!(w.poll().steps, 1);
        assert_eq!(w.snapshot().last_action.as_deref(), Some("List Files"));
        ev.write_all(&half.as_bytes()[10..]).unwrap();
        let mut calls =
            std::fs::File::create(dir.path().join("agent_log/llm_calls.jsonl")).unwrap();
        calls
            .write_all(b"{\"usage\":{\"input_tokens\":10,\"output_tokens\":2},\"cost_usd\":0.5}\n")
            .unwrap();
        let s = w.poll().clone();
        assert_eq!(s.steps, 2);
        assert_eq!(s.last_action.as_deref(), Some("Execute Script"));
        assert_eq!((s.input_tokens, s.output_tokens), (10, 2));
        assert_eq!(s.cost_usd, 0.5);
        let end = crate::env::events::Event::End {
            time: "t".into(),
            exit_reason: crate::env::ExitReason::FinalAnswer,
            error: None,
            steps: 2,
            skipped: vec![],
            skipped_total: 0,
        };
        writeln!(ev, "{}", serde_json::to_string(&end).unwrap()).unwrap();
        assert_eq!(w.poll().ended.as_deref(), Some("final_answer"));
    }
}
