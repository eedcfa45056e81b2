//! Helpers for the environment's unit tests: a toy task in a temp folder,
//! its workspace, and a scripted model double.

use std::path::Path;
use std::sync::Mutex;

use crate::llm::{Completion, LlmError, Model, Request};
use crate::task::Task;

use super::workspace::{ReadOnlyMode, Workspace};

/// A task `toy` under `dir`: train.py, train.csv and data/x.bin in env/,
/// the given read_only_files.txt.
pub fn toy_task(dir: &Path, read_only: &str) -> Task {
    let t = dir.join("toy");
    std::fs::create_dir_all(t.join("env/data")).unwrap();
    std::fs::create_dir_all(t.join("script")).unwrap();
    std::fs::write(
        t.join("task.toml"),
        "name = \"toy\"\ndescription = \"d\"\ncategory = \"c\"\nmetric = \"m\"\ndirection = \"higher\"\nsubmission = [\"submission.csv\"]\n",
    )
    .unwrap();
    std::fs::write(t.join("env/train.py"), "print('hi')\n").unwrap();
    std::fs::write(t.join("env/train.csv"), "a,b\n1,2\n").unwrap();
    std::fs::write(t.join("env/data/x.bin"), "xx").unwrap();
    std::fs::write(t.join("script/read_only_files.txt"), read_only).unwrap();
    std::fs::write(t.join("script/research_problem.txt"), "Do it.\n").unwrap();
    // Prepared data is old by the time a run starts.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for f in ["env/train.py", "env/train.csv", "env/data/x.bin"] {
        let f = std::fs::File::options()
            .write(true)
            .open(t.join(f))
            .unwrap();
        f.set_modified(old).unwrap();
    }
    Task::load(&t).unwrap()
}

/// The toy task's workspace under a fresh temp folder.
pub fn toy_workspace(read_only: &str) -> (tempfile::TempDir, Workspace) {
    let dir = tempfile::tempdir().unwrap();
    let task = toy_task(dir.path(), read_only);
    let ws = Workspace::create(
        &task,
        &dir.path().join("work"),
        ReadOnlyMode::Copy,
        None,
        &dir.path().join("logs"),
    )
    .unwrap();
    (dir, ws)
}

/// A model that answers from a list, in order, and records the prompts.
pub struct Scripted {
    pub replies: Mutex<Vec<Result<String, LlmError>>>,
    pub prompts: Mutex<Vec<Request>>,
}

impl Scripted {
    pub fn new(replies: Vec<Result<String, LlmError>>) -> Scripted {
        let mut replies = replies;
        replies.reverse();
        Scripted {
            replies: Mutex::new(replies),
            prompts: Mutex::new(Vec::new()),
        }
    }

    pub fn ok(replies: &[&str]) -> Scripted {
        Scripted::new(replies.iter().map(|r| Ok(r.to_string())).collect())
    }

    pub fn prompt_texts(&self) -> Vec<String> {
        self.prompts
            .lock()
            .unwrap()
            .iter()
            .map(|r| {
                r.messages
                    .iter()
                    .map(|m| m.content.clone())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect()
    }
}

impl Model for Scripted {
    fn name(&self) -> &str {
        "scripted-test"
    }

    fn complete(&self, req: &Request) -> Result<Completion, LlmError> {
        self.prompts.lock().unwrap().push(req.clone());
        match self.replies.lock().unwrap().pop() {
            Some(Ok(text)) => Ok(Completion {
                text,
                ..Completion::default()
            }),
            Some(Err(e)) => Err(e),
            None => Err(LlmError::Script(
                "the scripted test model has no more replies".into(),
            )),
        }
    }
}

/// The interpreter python3 really is (not a pyenv shim, which adds its own
/// environment variables).
pub fn real_python() -> std::path::PathBuf {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    std::path::PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}
