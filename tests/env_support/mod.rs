//! Helpers for the environment and `mlab run` end-to-end tests: a toy task
//! in a temp folder and ways to run `mlab run --agent actions` on it.
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

pub struct Toy {
    pub dir: tempfile::TempDir,
}

impl Toy {
    /// `bench/toy` with train.py, a read-only train.csv and data/x.csv
    /// (read-only through `data/*`).
    pub fn new() -> Toy {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("bench/toy");
        write(
            &t.join("task.toml"),
            "name = \"toy\"\ndescription = \"toy\"\ncategory = \"tabular\"\nmetric = \"m\"\ndirection = \"higher\"\nsubmission = [\"submission.csv\"]\n",
        );
        write(
            &t.join("env/train.py"),
            "print('training')\nopen('submission.csv', 'w').write('id\\n1\\n')\n",
        );
        write(&t.join("env/train.csv"), "a,b\n1,2\n");
        write(&t.join("env/data/x.csv"), "x\n");
        write(
            &t.join("script/read_only_files.txt"),
            "./train.csv\ndata/*\n",
        );
        write(
            &t.join("script/research_problem.txt"),
            "Make a submission.\n",
        );
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
        let text: String = actions
            .iter()
            .map(|a| format!("{}\n", serde_json::to_string(a).unwrap()))
            .collect();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// `mlab run` on the toy task with an actions file, not yet started
    /// (`--sandbox none` unless `extra` names a sandbox).
    pub fn command(&self, actions: &Path, log: &Path, extra: &[&str]) -> Command {
        let mut c = common::mlab();
        c.arg("--benchmarks-dir")
            .arg(self.path().join("bench"))
            .args(["run", "--task", "toy", "--agent", "actions"])
            .arg("--actions")
            .arg(actions)
            .arg("--log-dir")
            .arg(log)
            .arg("--work-dir")
            .arg(self.path().join("work"))
            .arg("--python")
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
