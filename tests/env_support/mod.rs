//! Helpers for the environment and `mlab run` end-to-end tests: a toy task
//! in a temp folder and ways to run `mlab run --agent actions` on it.
// Each test crate that includes this module uses only some of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mlab::testing::scripted;
use serde_json::Value;

// The test crate declares `mod common;` beside this module.
pub(crate) use crate::common;
// Re-exported so the tests keep one import line; each test crate uses only
// some of them.
#[allow(unused_imports)]
pub use common::{alive, read_json, real_python, text, wait_for, write};
#[allow(unused_imports)]
pub use mlab::testing::toy::ToyTask;

pub struct Toy {
    pub dir: tempfile::TempDir,
}

impl Toy {
    /// The default toy task (`mlab::testing::toy`) in `bench/toy`:
    /// train.py, a read-only train.csv and data/x.csv (read-only through
    /// `data/*`).
    pub fn new() -> Toy {
        Toy::with(ToyTask::new())
    }

    /// `task` in `bench/`.
    pub fn with(task: ToyTask) -> Toy {
        let dir = tempfile::tempdir().unwrap();
        task.write_in(&dir.path().join("bench"));
        Toy { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn env_file(&self, rel: &str, text: &str) {
        write(&self.path().join("bench/toy/env").join(rel), text);
    }

    pub fn log(&self) -> PathBuf {
        self.path().join("logs")
    }

    pub fn ws(&self) -> PathBuf {
        self.path().join("work/toy")
    }

    /// Writes `actions` as JSONL and returns the file.
    pub fn actions(&self, name: &str, actions: &[Value]) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, scripted::jsonl(actions)).unwrap();
        p
    }

    /// Writes a scripted model's replies and returns its `--llm` spec.
    pub fn script(&self, name: &str, replies: &[Value]) -> String {
        scripted::write(&self.path().join(name), replies)
    }

    /// `mlab run` on the toy task with an actions file, not yet started
    /// (`--sandbox none` unless `extra` names a sandbox).
    pub fn command(&self, actions: &Path, log: &Path, extra: &[&str]) -> Command {
        self.command_in(actions, log, Some(&self.path().join("work")), extra)
    }

    /// [`Toy::command`] with the work dir given (`None`: no `--work-dir`,
    /// so mlab picks its default).
    pub fn command_in(
        &self,
        actions: &Path,
        log: &Path,
        work: Option<&Path>,
        extra: &[&str],
    ) -> Command {
        let mut c = common::mlab();
        c.arg("--benchmarks-dir")
            .arg(self.path().join("bench"))
            .args(["run", "--task", "toy", "--agent", "actions"])
            .arg("--actions")
            .arg(actions)
            .arg("--log-dir")
            .arg(log);
        if let Some(w) = work {
            c.arg("--work-dir").arg(w);
        }
        c.arg("--python")
            .arg(real_python())
            .args(extra)
            .stdin(std::process::Stdio::null());
        // Unconfined unless the test asks for a sandbox.
        if !extra.contains(&"--sandbox") {
            c.args(["--sandbox", "none"]);
        }
        c
    }

    pub fn run(&self, actions: &[Value], extra: &[&str]) -> Output {
        let file = self.actions("actions.jsonl", actions);
        self.command(&file, &self.log(), extra).output().unwrap()
    }

    pub fn trace(&self) -> Value {
        read_json(&self.log().join("env_log/trace.json"))
    }

    pub fn run_json(&self) -> Value {
        read_json(&self.log().join("run.json"))
    }

    /// Observations of the trace, in order.
    pub fn observations(&self) -> Vec<String> {
        self.trace()["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["observation"].as_str().unwrap().to_string())
            .collect()
    }
}

/// Every file under `dir` with its content, for "nothing changed" checks.
pub fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .follow_links(false)
    {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
        if e.file_type().is_file() {
            out.push((rel, std::fs::read(e.path()).unwrap()));
        } else {
            out.push((rel, Vec::new()));
        }
    }
    out
}
