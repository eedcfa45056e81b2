//! The toy task that tests and benchmarks run on: a few tiny files in
//! `env/`, a research problem, no data to prepare. One builder, so every
//! test starts from the same task and says only what it changes: a file in
//! `env/` or `script/` (eval.py, read_only_files.txt, an answer file), a
//! field of task.toml.
//!
//! ```text
//! let dir = ToyTask::new()
//!     .env("train.py", "print('hi')\n")
//!     .eval_py(EVAL)
//!     .set("direction", "lower")
//!     .write_in(&bench);          // bench/toy
//! ```
//!
//! The default task (what `ToyTask::new()` writes under `toy/`):
//! - task.toml: `name = "toy"`, `description = "toy"`, `category =
//!   "tabular"`, `metric = "m"`, `direction = "higher"`, `submission =
//!   ["submission.csv"]`;
//! - `env/train.py` prints `training` and writes submission.csv;
//!   `env/train.csv`; `env/data/x.csv`;
//! - `script/read_only_files.txt`: `./train.csv` and `data/*`;
//! - `script/research_problem.txt`: `Make a submission.`;
//! - no eval.py and no prepare.py.

// Test support: a failure here should stop the test that uses it, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A toy task to write into a benchmarks folder; see the module doc for
/// what it holds unless told otherwise.
#[derive(Debug, Clone)]
pub struct ToyTask {
    /// task.toml's fields in order, each value a TOML literal.
    fields: Vec<(String, String)>,
    /// Files relative to the task folder (`env/...`, `script/...`).
    files: BTreeMap<PathBuf, Vec<u8>>,
}

impl Default for ToyTask {
    fn default() -> Self {
        Self::new()
    }
}

/// `s` as a TOML basic string.
fn quoted(s: &str) -> String {
    // A JSON string literal is a valid TOML basic string.
    serde_json::to_string(s).unwrap()
}

impl ToyTask {
    /// The default toy task (see the module doc).
    pub fn new() -> ToyTask {
        let fields = [
            ("name", quoted("toy")),
            ("description", quoted("toy")),
            ("category", quoted("tabular")),
            ("metric", quoted("m")),
            ("direction", quoted("higher")),
            ("submission", "[\"submission.csv\"]".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        ToyTask {
            fields,
            files: BTreeMap::new(),
        }
        .env(
            "train.py",
            "print('training')\nopen('submission.csv', 'w').write('id\\n1\\n')\n",
        )
        .env("train.csv", "a,b\n1,2\n")
        .env("data/x.csv", "x\n")
        .read_only("./train.csv\ndata/*\n")
        .research_problem("Make a submission.\n")
    }

    /// The task's name (task.toml's `name` and the folder
    /// [`write_in`](Self::write_in) makes).
    pub fn name(&self) -> String {
        self.fields
            .iter()
            .find(|(k, _)| k == "name")
            .and_then(|(_, v)| serde_json::from_str(v).ok())
            .unwrap_or_default()
    }

    /// Sets task.toml's `name`.
    pub fn named(self, name: &str) -> ToyTask {
        self.set("name", name)
    }

    /// Sets a string field of task.toml (added after the others when new).
    pub fn set(self, key: &str, value: &str) -> ToyTask {
        self.set_raw(key, &quoted(value))
    }

    /// Sets a field of task.toml to a TOML literal as written (`10.0`,
    /// `["a.csv", "b.csv"]`), added after the others when new.
    pub fn set_raw(mut self, key: &str, literal: &str) -> ToyTask {
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = literal.to_string(),
            None => self.fields.push((key.to_string(), literal.to_string())),
        }
        self
    }

    /// Leaves a field out of task.toml.
    pub fn unset(mut self, key: &str) -> ToyTask {
        self.fields.retain(|(k, _)| k != key);
        self
    }

    /// Adds or replaces `env/<rel>`.
    pub fn env(self, rel: &str, text: impl AsRef<[u8]>) -> ToyTask {
        self.file(&format!("env/{rel}"), text)
    }

    /// Leaves `env/<rel>` out.
    pub fn without_env(self, rel: &str) -> ToyTask {
        self.without(&format!("env/{rel}"))
    }

    /// Leaves every file of `env/` out (to start from an empty one).
    pub fn empty_env(mut self) -> ToyTask {
        self.files.retain(|p, _| !p.starts_with("env"));
        self
    }

    /// Adds or replaces `script/<rel>` (the grader's side: eval.py, answer
    /// files, prepare.py).
    pub fn script(self, rel: &str, text: impl AsRef<[u8]>) -> ToyTask {
        self.file(&format!("script/{rel}"), text)
    }

    /// `script/eval.py`.
    pub fn eval_py(self, text: &str) -> ToyTask {
        self.script("eval.py", text)
    }

    /// `script/read_only_files.txt`.
    pub fn read_only(self, text: &str) -> ToyTask {
        self.script("read_only_files.txt", text)
    }

    /// No `script/read_only_files.txt`: every file is writable.
    pub fn no_read_only(self) -> ToyTask {
        self.without("script/read_only_files.txt")
    }

    /// `script/research_problem.txt`.
    pub fn research_problem(self, text: &str) -> ToyTask {
        self.script("research_problem.txt", text)
    }

    /// Adds or replaces any file, relative to the task folder.
    pub fn file(mut self, rel: &str, text: impl AsRef<[u8]>) -> ToyTask {
        self.files
            .insert(PathBuf::from(rel), text.as_ref().to_vec());
        self
    }

    /// Leaves a file out, relative to the task folder.
    pub fn without(mut self, rel: &str) -> ToyTask {
        self.files.remove(Path::new(rel));
        self
    }

    /// task.toml as written.
    pub fn toml(&self) -> String {
        self.fields
            .iter()
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect()
    }

    /// Writes the task into `benchmarks/<name>` and returns that folder.
    pub fn write_in(&self, benchmarks: &Path) -> PathBuf {
        let dir = benchmarks.join(self.name());
        self.write_at(&dir);
        dir
    }

    /// Writes the task's files into `dir`, whatever the task's name (a
    /// folder whose name differs from task.toml's is a case tests make).
    pub fn write_at(&self, dir: &Path) {
        write(&dir.join("task.toml"), self.toml().as_bytes());
        for (rel, text) in &self.files {
            write(&dir.join(rel), text);
        }
    }
}

fn write(p: &Path, bytes: &[u8]) {
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
    }
    std::fs::write(p, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", p.display()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_toy_task_loads_with_its_read_only_files() {
        let dir = tempfile::tempdir().unwrap();
        let t = ToyTask::new().write_in(dir.path());
        assert_eq!(t, dir.path().join("toy"));
        let task = crate::task::Task::load(&t).unwrap();
        assert_eq!(task.name(), "toy");
        assert!(t.join("env/train.py").is_file());
        assert!(t.join("env/data/x.csv").is_file());
        assert_eq!(
            std::fs::read_to_string(t.join("script/read_only_files.txt")).unwrap(),
            "./train.csv\ndata/*\n"
        );
    }

    #[test]
    fn overrides_replace_add_and_remove_what_they_name() {
        let dir = tempfile::tempdir().unwrap();
        let t = ToyTask::new()
            .named("toy-low")
            .set("direction", "lower")
            .set_raw("baseline", "10.0")
            .env("train.py", "print('x')\n")
            .without_env("data/x.csv")
            .no_read_only()
            .eval_py("def get_score(folder):\n    return 1\n")
            .write_in(dir.path());
        assert_eq!(t, dir.path().join("toy-low"));
        assert_eq!(
            std::fs::read_to_string(t.join("task.toml")).unwrap(),
            "name = \"toy-low\"\ndescription = \"toy\"\ncategory = \"tabular\"\nmetric = \"m\"\n\
             direction = \"lower\"\nsubmission = [\"submission.csv\"]\nbaseline = 10.0\n"
        );
        assert_eq!(
            std::fs::read_to_string(t.join("env/train.py")).unwrap(),
            "print('x')\n"
        );
        assert!(!t.join("env/data").exists());
        assert!(!t.join("script/read_only_files.txt").exists());
        assert!(t.join("script/eval.py").is_file());
        assert!(t.join("env/train.csv").is_file());
    }
}
