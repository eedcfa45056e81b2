//! Helpers for the agent tests: a toy task in a temp folder (no data to
//! prepare), prepared copies of the offline tasks, scripted replies in the
//! research format, and readers for what a run leaves behind.
// Each test crate that includes this module uses only some of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

// The test crate declares `mod common;` beside this module.
pub(crate) use crate::common;
// Re-exported so the tests keep one import line; each test crate uses only
// some of them.
#[allow(unused_imports)]
pub use common::{alive, read_json, real_python, text, wait_for, write};
use mlab::testing::scripted;
#[allow(unused_imports)]
pub use mlab::testing::scripted::research_reply;
use mlab::testing::toy::ToyTask;

/// A benchmarks folder with one task and room for logs and workspaces.
pub struct Bench {
    pub dir: tempfile::TempDir,
    pub task: String,
    pub python: PathBuf,
    /// `--sandbox` value (default `none`: most tests are about agents).
    pub sandbox: &'static str,
}

impl Bench {
    /// `bench/toy`: the toy task (`mlab::testing::toy`) with train.py
    /// printing `training done`, a read-only data.csv in place of train.csv
    /// and data/; no prepare step.
    pub fn toy() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        ToyTask::new()
            .empty_env()
            .env(
                "train.py",
                "print('training done')\nopen('submission.csv', 'w').write('id\\n1\\n')\n",
            )
            .env("data.csv", "a,b\n1,2\n")
            .read_only("./data.csv\n")
            .research_problem("Make a submission for the toy task.\n")
            .write_in(&dir.path().join("bench"));
        Bench {
            dir,
            task: "toy".into(),
            python: real_python(),
            sandbox: "none",
        }
    }

    /// A clean copy of the offline task `name`, prepared with `mlab prepare`.
    pub fn offline(name: &str) -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let task = common::copy_task(name, &dir.path().join("bench"));
        // Data a manual run left in the checkout must not make a test pass.
        if let Ok(ignore) = std::fs::read_to_string(task.join(".gitignore")) {
            for line in ignore.lines().map(str::trim) {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let p = task.join(line.trim_end_matches('/'));
                if p.is_dir() {
                    let _ = std::fs::remove_dir_all(&p);
                } else {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
        let out = common::mlab()
            .arg("--benchmarks-dir")
            .arg(dir.path().join("bench"))
            .args(["prepare", name, "--python"])
            .arg(common::python())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mlab prepare {name} failed:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        Bench {
            dir,
            task: name.into(),
            python: real_python(),
            sandbox: "none",
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn task_dir(&self) -> PathBuf {
        self.path().join("bench").join(&self.task)
    }

    pub fn env_file(&self, rel: &str, text: &str) {
        write(&self.task_dir().join("env").join(rel), text);
    }

    /// Writes a scripted model's replies (one JSON value per line) and
    /// returns its `--llm` spec.
    pub fn script(&self, name: &str, replies: &[Value]) -> String {
        scripted::write(&self.path().join(name), replies)
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    /// `mlab run` on the task with `--agent agent`, not yet started.
    pub fn command(&self, agent: &str, log: &Path, extra: &[&str]) -> Command {
        let mut c = common::mlab();
        c.arg("--benchmarks-dir")
            .arg(self.path().join("bench"))
            .args([
                "run",
                "--task",
                &self.task,
                "--agent",
                agent,
                "--sandbox",
                "none",
            ])
            .arg("--log-dir")
            .arg(log)
            .arg("--work-dir")
            .arg(self.path().join("work"))
            .arg("--python")
            .arg(&self.python)
            .args(extra)
            .stdin(std::process::Stdio::null());
        c
    }

    pub fn run(&self, agent: &str, log: &Path, extra: &[&str]) -> Output {
        self.command(agent, log, extra).output().unwrap()
    }

    /// Scores a snapshot folder with the task's script/eval.py.
    pub fn score(&self, folder: &Path) -> f64 {
        let code = "import sys; sys.path.insert(0, sys.argv[1]); import eval; print(eval.get_score(sys.argv[2]))";
        let out = Command::new(common::python())
            .args(["-c", code])
            .arg(self.task_dir().join("script"))
            .arg(folder)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "eval.py failed: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
            .trim()
            .lines()
            .last()
            .unwrap()
            .parse()
            .unwrap()
    }
}

/// The lines of `<log>/agent_log/llm_calls.jsonl` (one definition, in
/// tests/common).
pub use crate::common::calls;

/// The prompts (joined message texts) of the calls of one role, in order.
pub fn prompts(log: &Path, role: &str) -> Vec<String> {
    calls(log)
        .iter()
        .filter(|c| c["role"] == role)
        .map(|c| {
            c["request"]["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["content"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

/// Action names of the trace's steps.
pub fn trace_actions(log: &Path) -> Vec<String> {
    read_json(&log.join("env_log/trace.json"))["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"]["name"].as_str().unwrap().to_string())
        .collect()
}

pub fn trace_observations(log: &Path) -> Vec<String> {
    read_json(&log.join("env_log/trace.json"))["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["observation"].as_str().unwrap().to_string())
        .collect()
}

/// Fails the test unless the task Python has the offline tasks' stack.
pub fn need_stack() {
    common::need_python(common::STACK);
}
