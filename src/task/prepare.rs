//! `mlab prepare`: make a task's data by running `script/prepare.py`.
//!
//! prepare.py runs with the task Python, cwd `script/`, its output streamed
//! through. On success the `prepared` marker is written; on failure no marker
//! is left and the error names the step that failed (the last line that
//! prepare.py printed starting with `==> `) and, for a missing package, the
//! requirements file and the command that installs it.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{bail, Context, Result};

use super::{discover, Layout, Locations, Task, PREPARED_MARKER};
use crate::{paths, python, ui};

/// Lines of output kept to explain a failure.
const TAIL_LINES: usize = 40;

/// What prepare.py printed, as far as a failure report needs it.
#[derive(Default)]
struct Transcript {
    tail: VecDeque<String>,
    step: Option<String>,
}

impl Transcript {
    fn push(&mut self, line: &str) {
        if let Some(step) = line.strip_prefix("==> ") {
            self.step = Some(step.trim().to_string());
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_string());
    }
}

/// What `mlab prepare` prepares, and how (one field per flag).
#[derive(Debug, Clone, Default)]
pub struct PrepareConfig {
    /// Tasks to prepare.
    pub tasks: Vec<String>,
    /// Every task that can be prepared on this machine.
    pub all: bool,
    /// Prepare again even when the task is already marked prepared.
    pub force: bool,
    /// Python interpreter for prepare.py (None: the usual lookup).
    pub python: Option<PathBuf>,
    /// The user accepts the Kaggle competition rules of these tasks.
    pub accept_rules: bool,
    /// Folder of archives downloaded elsewhere (prepare.py's --data-dir).
    pub data_dir: Option<PathBuf>,
}

pub fn run(locations: &Locations, args: &PrepareConfig) -> Result<ExitCode> {
    let root = discover::benchmarks_root(locations)?;
    let tasks: Vec<Task> = if args.all {
        let (tasks, broken) = discover::all_tasks(&root)?;
        for (path, err) in &broken {
            ui::warn(format!("skipping {}: {err:#}", path.display()));
        }
        tasks
    } else {
        args.tasks
            .iter()
            .map(|n| discover::find_task(&root, n))
            .collect::<Result<_>>()?
    };
    let py = python::resolve(args.python.as_deref());
    let mut failed = Vec::new();
    for task in &tasks {
        if args.all {
            let r = &task.spec.requires;
            if r.kaggle.is_some() || r.internet {
                ui::info(format!(
                    "{}: skipped by --all (needs {}); name it to prepare it",
                    task.name(),
                    if r.kaggle.is_some() {
                        "Kaggle"
                    } else {
                        "the internet"
                    }
                ));
                continue;
            }
        }
        if !task.needs_prepare() {
            ui::info(format!(
                "{}: nothing to prepare (no prepare.py)",
                task.name()
            ));
            continue;
        }
        if task.is_prepared() && !args.force {
            ui::info(format!(
                "{}: already prepared (use --force to prepare again)",
                task.name()
            ));
            continue;
        }
        ui::info(format!(
            "{}: preparing with {} ({})",
            task.name(),
            py.path.display(),
            py.source
        ));
        match prepare_one(task, &py, args) {
            Ok(()) => ui::info(format!("{}: prepared", task.name())),
            Err(e) => {
                ui::error(&e.context(format!("preparing task {} failed", task.name())));
                failed.push(task.name().to_string());
            }
        }
    }
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        bail!(
            "{} task(s) failed to prepare: {}",
            failed.len(),
            failed.join(", ")
        )
    }
}

/// Kaggle credentials: `~/.kaggle/kaggle.json` (or `$KAGGLE_CONFIG_DIR`) or
/// both `KAGGLE_USERNAME` and `KAGGLE_KEY`.
pub fn kaggle_credentials_present() -> bool {
    let env_ok = ["KAGGLE_USERNAME", "KAGGLE_KEY"]
        .iter()
        .all(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()));
    let dir = std::env::var_os("KAGGLE_CONFIG_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| paths::home_dir().join(".kaggle"));
    env_ok || dir.join("kaggle.json").is_file()
}

fn prepare_one(task: &Task, py: &python::Python, args: &PrepareConfig) -> Result<()> {
    let script_dir = task.script_dir();
    let marker = script_dir.join(PREPARED_MARKER);
    // With --data-dir the archive may already be on disk; prepare.py itself
    // asks for consent and credentials only if it must download after all.
    let kaggle = task
        .spec
        .requires
        .kaggle
        .as_ref()
        .filter(|_| args.data_dir.is_none());
    if let Some(slug) = kaggle {
        if !kaggle_credentials_present() {
            bail!(
                "this task downloads the Kaggle competition '{slug}' and no Kaggle credentials \
                 were found: put your API token in ~/.kaggle/kaggle.json or set KAGGLE_USERNAME \
                 and KAGGLE_KEY (or use --data-dir with files downloaded elsewhere)"
            );
        }
        if !args.accept_rules {
            bail!(
                "this task downloads the Kaggle competition '{slug}': read its rules at \
                 https://www.kaggle.com/competitions/{slug}/rules, join the competition, then \
                 run again with --accept-rules"
            );
        }
    }
    // A stale marker must not survive a failed re-run.
    if marker.exists() {
        std::fs::remove_file(&marker)
            .with_context(|| format!("could not remove {}", marker.display()))?;
    }
    let mut cmd = Command::new(&py.path);
    cmd.arg("-u").arg("prepare.py").current_dir(&script_dir);
    if task.layout == Layout::Mlab {
        if let Some(d) = &args.data_dir {
            let abs = std::path::absolute(d)
                .with_context(|| format!("bad --data-dir {}", d.display()))?;
            cmd.arg("--data-dir").arg(abs);
        }
        if args.accept_rules {
            cmd.arg("--accept-rules");
        }
    }
    cmd.env("PYTHONUNBUFFERED", "1");
    if args.accept_rules {
        cmd.env("MLAB_ACCEPT_RULES", "1");
    }
    // The original's Kaggle scripts ask for consent on stdin: answer for the
    // user only when they gave consent by flag, never block on input.
    cmd.stdin(if args.accept_rules && task.layout == Layout::Original {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        anyhow::anyhow!(
            "could not start {} ({}): {e}. Install Python 3 or pass --python",
            py.path.display(),
            py.source
        )
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"y\n");
    }
    let transcript = Arc::new(Mutex::new(Transcript::default()));
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        bail!("prepare.py started without its output pipes");
    };
    let out = echo_lines(stdout, false, transcript.clone());
    let err = echo_lines(stderr, true, transcript.clone());
    let status = child.wait().context("waiting for prepare.py")?;
    let _ = out.join();
    let _ = err.join();
    if status.success() {
        std::fs::write(&marker, "success\n")
            .with_context(|| format!("could not write {}", marker.display()))?;
        return Ok(());
    }
    // A poisoned lock still holds every line pushed before the panic.
    let t = transcript.lock().unwrap_or_else(PoisonError::into_inner);
    let all: String = t.tail.iter().map(|l| format!("{l}\n")).collect();
    let step = t
        .step
        .as_deref()
        .map(|s| format!(" during step '{s}'"))
        .unwrap_or_default();
    let code = status
        .code()
        .map(|c| format!("exit code {c}"))
        .unwrap_or_else(|| "a signal".to_string());
    if let Some(module) = python::missing_module(&all) {
        let reqs = task
            .requirements_file()
            .filter(|p| p.is_file())
            .unwrap_or_else(|| Path::new("benchmarks/requirements.txt").to_path_buf());
        bail!(
            "prepare.py failed{step}: Python module '{module}' is missing from {}. Install the \
             task's packages with: {} -m pip install -r {} (or ./install.sh --tasks all)",
            py.path.display(),
            py.path.display(),
            reqs.display()
        );
    }
    let last: Vec<&str> = t.tail.iter().rev().take(5).map(String::as_str).collect();
    let last: Vec<&str> = last.into_iter().rev().collect();
    bail!(
        "prepare.py ended with {code}{step}; no marker written. Last lines:\n    {}",
        last.join("\n    ")
    )
}

/// Copies each line of a child's pipe to our stdout or stderr and keeps it
/// in the transcript.
fn echo_lines<R: std::io::Read + Send + 'static>(
    pipe: R,
    to_stderr: bool,
    transcript: Arc<Mutex<Transcript>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let reader = BufReader::new(pipe);
        for line in reader.split(b'\n') {
            let Ok(bytes) = line else { break };
            let text = String::from_utf8_lossy(&bytes);
            if to_stderr {
                eprintln!("{text}");
            } else {
                crate::ui::outln!("{text}");
            }
            transcript
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(&text);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_remembers_the_last_step_and_bounded_tail() {
        let mut t = Transcript::default();
        t.push("==> download");
        for i in 0..100 {
            t.push(&format!("line {i}"));
        }
        t.push("==> split");
        assert_eq!(t.step.as_deref(), Some("split"));
        assert_eq!(t.tail.len(), TAIL_LINES);
    }
}
