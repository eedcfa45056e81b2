//! Ad-hoc tasks: `mlab run --dir PATH --problem TEXT` runs an agent on a
//! person's own folder and problem, without a task folder.
//!
//! The folder becomes an in-memory [`Task`] whose `env/` is the folder
//! itself (copied into the workspace, never changed), with no `script/`,
//! no prepare.py and no eval.py. Everything else (sandbox, limits, logs,
//! snapshots, resume, replay) is the same as for a benchmark task. The
//! run's task is named `adhoc:<folder name>`; run.json records the folder,
//! the problem's SHA-256 and the optional `--eval-cmd` ([`Record`]), and
//! the problem itself is saved as `<log-dir>/research_problem.txt`, so
//! that `--resume` and `mlab eval` know it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Direction, Layout, ReadOnly, Requires, Task, TaskSpec};

/// Prefix of an ad-hoc run's task name in run.json.
pub const PREFIX: &str = "adhoc:";

/// The problem of an ad-hoc run, saved in its log folder.
pub const PROBLEM_FILE: &str = "research_problem.txt";

/// What an ad-hoc task has instead of `script/`.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub problem: String,
    /// Glob patterns (workspace-relative) of files the agent may not change.
    pub read_only: Vec<String>,
}

/// An ad-hoc run as the caller asks for it (`mlab run --dir`).
#[derive(Debug, Clone, Default)]
pub struct AdHocConfig {
    /// The person's folder; copied, never changed.
    pub dir: PathBuf,
    /// The research problem. None only when resuming: the earlier run's
    /// saved problem is used.
    pub problem: Option<String>,
    /// `--read-only GLOB` patterns (empty when resuming: the earlier run's).
    pub read_only: Vec<String>,
    /// A command that prints a score for a snapshot folder (`mlab eval`
    /// runs it); see [`eval_argv`].
    pub eval_cmd: Option<String>,
}

/// run.json's `adhoc` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Record {
    /// The folder the workspace was copied from.
    pub dir: String,
    /// SHA-256 of the problem (the text is in research_problem.txt).
    pub problem_sha256: String,
    pub read_only: Vec<String>,
    pub eval_cmd: Option<String>,
}

/// Whether a recorded task name is an ad-hoc run's.
pub fn is_adhoc(task: &str) -> bool {
    task.starts_with(PREFIX)
}

/// Hex SHA-256 of the problem text.
pub fn problem_sha256(problem: &str) -> String {
    hex::encode(Sha256::digest(problem.as_bytes()))
}

/// The in-memory task for `dir` and `problem`.
pub fn task(dir: &Path, problem: &str, read_only: &[String]) -> Result<Task> {
    if !dir.is_dir() {
        bail!(
            "--dir {} is not a folder; give the folder the agent should work on",
            dir.display()
        );
    }
    let dir = dir
        .canonicalize()
        .with_context(|| format!("could not resolve --dir {}", dir.display()))?;
    if problem.trim().is_empty() {
        bail!("the research problem is empty; pass --problem TEXT, --problem-file FILE or --problem - (type it in)");
    }
    // Fails on a bad glob before anything is written.
    ReadOnly::new(read_only).context("--read-only")?;
    let folder = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into());
    let description = problem
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string();
    Ok(Task {
        spec: TaskSpec {
            name: format!("{PREFIX}{folder}"),
            description,
            category: "adhoc".into(),
            metric: "score".into(),
            direction: Direction::Higher,
            submission: Vec::new(),
            baseline: None,
            paper_baseline: None,
            paper_baseline_source: None,
            baseline_script: None,
            requires: Requires::default(),
        },
        dir,
        layout: Layout::Mlab,
        defaulted: Vec::new(),
        adhoc: Some(Source {
            problem: problem.to_string(),
            read_only: read_only.to_vec(),
        }),
    })
}

/// The task of an ad-hoc run, with what a resumed run takes from the
/// earlier one (`resume`: its log folder): the saved problem when none is
/// given, and its read-only patterns and eval command when none are. The
/// returned config is the one run.json records.
pub fn resolve(cfg: &AdHocConfig, resume: Option<&Path>) -> Result<(Task, AdHocConfig)> {
    let mut cfg = cfg.clone();
    if let Some(earlier) = resume {
        if let Ok(r) = crate::run::record::RunRecord::read(&earlier.join("run.json")) {
            if let Some(a) = r.adhoc {
                if cfg.read_only.is_empty() {
                    cfg.read_only = a.read_only;
                }
                if cfg.eval_cmd.is_none() {
                    cfg.eval_cmd = a.eval_cmd;
                }
            }
        }
    }
    let problem = match (&cfg.problem, resume) {
        (Some(p), _) => p.clone(),
        (None, Some(earlier)) => {
            let p = earlier.join(PROBLEM_FILE);
            std::fs::read_to_string(&p).with_context(|| {
                format!(
                    "could not read the problem of the run to resume ({}); pass --problem TEXT or --problem-file FILE",
                    p.display()
                )
            })?
        }
        (None, None) => bail!(
            "--dir needs a research problem: pass --problem TEXT, --problem-file FILE, or --problem - to type it in (or read it from stdin)"
        ),
    };
    cfg.problem = Some(problem.clone());
    let task = task(&cfg.dir, &problem, &cfg.read_only)?;
    Ok((task, cfg))
}

/// Refuses a log folder or work folder inside the folder being copied:
/// the copy would take in the run's own logs (and every earlier run's).
pub fn check_outside(task: &Task, log_dir: &Path, work_dir: &Path) -> Result<()> {
    let dir = &task.dir;
    for (flag, p) in [("--log-dir", log_dir), ("--work-dir", work_dir)] {
        let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        // Resolve what exists of it, so a link into the folder is caught too.
        let real = abs.canonicalize().unwrap_or(abs);
        if real.starts_with(dir) {
            bail!(
                "{flag} {} lies inside --dir {}, which is copied into the workspace; choose a {flag} outside it (e.g. {flag} ../mlab-logs)",
                p.display(),
                dir.display()
            );
        }
    }
    Ok(())
}

/// What run.json records of an ad-hoc run.
pub fn record(task: &Task, cfg: &AdHocConfig) -> Record {
    let problem = task
        .adhoc
        .as_ref()
        .map(|a| a.problem.as_str())
        .unwrap_or_default();
    Record {
        dir: task.dir.display().to_string(),
        problem_sha256: problem_sha256(problem),
        read_only: cfg.read_only.clone(),
        eval_cmd: cfg.eval_cmd.clone(),
    }
}

/// The argv (`sh -c ...`) that runs an `--eval-cmd` on `snapshot`: every
/// `{snapshot}` in the command becomes the folder (quoted for the shell);
/// a command without the placeholder gets the folder as its last argument.
pub fn eval_argv(cmd: &str, snapshot: &Path) -> Vec<String> {
    let quoted = crate::sandbox::shell_quote(&snapshot.to_string_lossy());
    let script = if cmd.contains("{snapshot}") {
        cmd.replace("{snapshot}", &quoted)
    } else {
        format!("{cmd} {quoted}")
    };
    vec!["sh".into(), "-c".into(), script]
}

/// The score an `--eval-cmd` printed: its last non-empty line of stdout,
/// read as a number.
pub fn parse_score(stdout: &str) -> Result<f64> {
    let Some(last) = stdout.lines().rev().find(|l| !l.trim().is_empty()) else {
        bail!("the eval command printed nothing; it must print the score as its last line");
    };
    let score: f64 = last.trim().parse().with_context(|| {
        format!(
            "the eval command's last line '{}' is not a number; it must print the score as its last line",
            last.trim()
        )
    })?;
    if !score.is_finite() {
        bail!("the eval command printed {score}, not a finite score");
    }
    Ok(score)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adhoc_task_uses_the_folder_as_env_and_its_own_problem() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("proj");
        std::fs::create_dir_all(p.join("script")).unwrap();
        // A script/ folder of the person's own is not taken for a task's.
        std::fs::write(p.join("script/prepare.py"), "").unwrap();
        std::fs::write(p.join("script/research_problem.txt"), "not this").unwrap();
        let t = task(&p, "\nMake it fast.\nMore.", &["data/*".into()]).unwrap();
        assert_eq!(t.name(), "adhoc:proj");
        assert_eq!(t.env_dir(), p.canonicalize().unwrap());
        assert_eq!(t.hidden_root(), p.canonicalize().unwrap());
        assert_eq!(t.research_problem().unwrap(), "\nMake it fast.\nMore.");
        assert_eq!(t.spec.description, "Make it fast.");
        assert!(t.is_prepared() && !t.needs_prepare());
        assert!(t.read_only_matcher().unwrap().matches("data/x.csv"));
        assert!(!t.read_only_matcher().unwrap().matches("train.py"));
    }

    #[test]
    fn an_adhoc_task_refuses_what_it_cannot_use() {
        let d = tempfile::tempdir().unwrap();
        let e = format!("{:#}", task(&d.path().join("nope"), "x", &[]).unwrap_err());
        assert!(e.contains("is not a folder"), "{e}");
        let e = format!("{:#}", task(d.path(), "  \n", &[]).unwrap_err());
        assert!(e.contains("problem is empty"), "{e}");
        let e = format!("{:#}", task(d.path(), "x", &["../up".into()]).unwrap_err());
        assert!(e.contains("leaves the workspace"), "{e}");
        let cfg = AdHocConfig {
            dir: d.path().to_path_buf(),
            ..AdHocConfig::default()
        };
        let e = format!("{:#}", resolve(&cfg, None).unwrap_err());
        assert!(e.contains("--problem"), "{e}");
    }

    #[test]
    fn logs_inside_the_copied_folder_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let t = task(d.path(), "x", &[]).unwrap();
        let e = check_outside(&t, &d.path().join("logs"), &d.path().join("../w")).unwrap_err();
        assert!(format!("{e:#}").contains("--log-dir"), "{e:#}");
        let other = tempfile::tempdir().unwrap();
        check_outside(&t, &other.path().join("l"), &other.path().join("w")).unwrap();
    }

    #[test]
    fn eval_commands_get_the_snapshot_quoted() {
        let s = Path::new("/tmp/it's here");
        assert_eq!(
            eval_argv("python score.py {snapshot}/out.csv", s)[2],
            "python score.py '/tmp/it'\\''s here'/out.csv"
        );
        assert_eq!(eval_argv("./score", s)[2], "./score '/tmp/it'\\''s here'");
        assert_eq!(parse_score("loading\n0.75\n\n").unwrap(), 0.75);
        assert!(parse_score("score: high\n").is_err());
        assert!(parse_score("").is_err());
    }
}
