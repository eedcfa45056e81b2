//! `mlab task new NAME --from-dir PATH`: a task folder skeleton made from a
//! folder of one's own (what `mlab run --dir` runs on), so that an ad-hoc
//! problem becomes a benchmark task in one step.
//!
//! The skeleton is complete enough that `mlab tasks` lists it, `mlab
//! prepare NAME` succeeds (its prepare.py does nothing yet) and `mlab run
//! --task NAME` runs; its eval.py raises a clear error until it is written.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{discover, Locations, ReadOnly};

/// What `mlab task new` is asked for.
#[derive(Debug, Clone, Default)]
pub struct NewConfig {
    /// The task's name (its folder name).
    pub name: String,
    /// The folder to copy into env/.
    pub from_dir: PathBuf,
    /// The research problem (None: a placeholder to fill in).
    pub problem: Option<String>,
    /// Patterns for read_only_files.txt.
    pub read_only: Vec<String>,
    /// Folder to create the task in (None: the benchmarks folder).
    pub out: Option<PathBuf>,
}

/// Placeholder research problem when none was given.
const PROBLEM_PLACEHOLDER: &str =
    "TODO: describe the research problem the agent is given: what to improve, which \
files to change, and what to write (e.g. submission.csv) so that script/eval.py can score it.\n";

/// Makes the skeleton; returns the new task folder.
pub fn create(locations: &Locations, cfg: &NewConfig) -> Result<PathBuf> {
    check_name(&cfg.name)?;
    if !cfg.from_dir.is_dir() {
        bail!(
            "--from-dir {} is not a folder; give the folder the task's agent should start with",
            cfg.from_dir.display()
        );
    }
    let from = cfg
        .from_dir
        .canonicalize()
        .with_context(|| format!("could not resolve --from-dir {}", cfg.from_dir.display()))?;
    ReadOnly::new(&cfg.read_only).context("--read-only")?;
    let parent = match &cfg.out {
        Some(o) => o.clone(),
        None => discover::benchmarks_root(locations)
            .context("pass --out DIR to create the task elsewhere")?,
    };
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("could not create {}", parent.display()))?;
    let task_dir = parent
        .canonicalize()
        .with_context(|| format!("could not resolve {}", parent.display()))?
        .join(&cfg.name);
    if task_dir.exists() {
        bail!(
            "{} already exists; choose another NAME or remove that folder first",
            task_dir.display()
        );
    }
    if task_dir.starts_with(&from) {
        bail!(
            "the new task {} would lie inside --from-dir {}; choose --out outside it",
            task_dir.display(),
            from.display()
        );
    }
    // Built beside its final place and renamed at the end, so a failure
    // never leaves half a task that `mlab tasks` would list.
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{}.new-", cfg.name))
        .tempdir_in(task_dir.parent().unwrap_or(Path::new(".")))
        .with_context(|| format!("could not write in {}", parent.display()))?;
    let root = staging.path();
    copy_tree(&from, &root.join("env"))
        .with_context(|| format!("could not copy {} into env/", from.display()))?;
    let script = root.join("script");
    std::fs::create_dir_all(&script)?;
    let problem = cfg
        .problem
        .clone()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| PROBLEM_PLACEHOLDER.to_string());
    let description = problem
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string();
    write(&root.join("task.toml"), &task_toml(&cfg.name, &description))?;
    write(&script.join("research_problem.txt"), &problem)?;
    let mut ro = String::from(
        "# Files (globs relative to env/) the agent may read but not change, one a line.\n",
    );
    for p in &cfg.read_only {
        ro.push_str(p);
        ro.push('\n');
    }
    write(&script.join("read_only_files.txt"), &ro)?;
    write(&script.join("eval.py"), &eval_template(&cfg.name))?;
    write(&script.join("prepare.py"), &prepare_template(&cfg.name))?;
    let staged = staging.keep();
    std::fs::rename(&staged, &task_dir).with_context(|| {
        format!(
            "could not move the new task into place at {} (it is left in {})",
            task_dir.display(),
            staged.display()
        )
    })?;
    Ok(task_dir)
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && !name.starts_with('_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        bail!(
            "'{name}' is not a usable task name: use letters, digits, '-' and '_' (not first), e.g. my-task"
        );
    }
    Ok(())
}

fn write(p: &Path, text: &str) -> Result<()> {
    std::fs::write(p, text).with_context(|| format!("could not write {}", p.display()))
}

/// Copies `src` to `dest`, keeping links as links.
fn copy_tree(src: &Path, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest)?;
    for entry in walkdir::WalkDir::new(src).follow_links(false).min_depth(1) {
        let entry = entry?;
        let to = dest.join(entry.path().strip_prefix(src)?);
        let ft = entry.file_type();
        if ft.is_dir() {
            std::fs::create_dir_all(&to)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &to)?;
        } else if ft.is_file() {
            std::fs::copy(entry.path(), &to)
                .with_context(|| format!("could not copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}

fn task_toml(name: &str, description: &str) -> String {
    let description = description.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        r#"# Made by `mlab task new`. Fill in the fields marked TODO (see README.md,
# "Task format"), write script/eval.py (and script/prepare.py if the task
# makes data), then measure the baseline.
name = "{name}"
# TODO: one line on what the task is.
description = "{description}"
# TODO: e.g. "tabular", "image classification", "nlp".
category = "TODO"
# TODO: the metric's display name, e.g. "accuracy".
metric = "score"
# TODO: "higher" or "lower": which scores are better.
direction = "higher"
# TODO: the files (relative to the workspace) that script/eval.py reads.
submission = ["submission.csv"]
# Measured mean final score of the baseline agent; leave it out until measured.
# baseline = 0.0

[requires]
gpu = false
internet = false
"#
    )
}

fn eval_template(name: &str) -> String {
    format!(
        r#""""Scores {name}: TODO say what get_score measures and what a valid
submission looks like.

get_score(folder) gets a snapshot of the agent's workspace and returns a
number (see task.toml for which direction is better). Raise
mlab_eval.SubmissionError (a ValueError) with a clear message when the
submission is missing or malformed. The hidden answers that prepare.py
writes are read with mlab_eval.read_answer(HERE).
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
try:
    import mlab_eval as me  # noqa: E402,F401  (the benchmarks' shared helpers)
except ImportError:  # a task made with --out outside the benchmarks folder
    me = None


def get_score(folder):
    """TODO: score `folder` (e.g. me.read_submission, me.match_answers, me.accuracy)."""
    raise NotImplementedError(
        "script/eval.py of task {name} is still the template made by `mlab task new`: "
        "write its get_score(folder) before scoring runs"
    )


if __name__ == "__main__":
    print(get_score(sys.argv[1] if len(sys.argv) > 1 else "."))
"#
    )
}

fn prepare_template(name: &str) -> String {
    format!(
        r#""""Makes the data of {name}. TODO: write what it makes.

`mlab task new` copied the folder into env/ as it was, so there is nothing
to make yet. A task that splits data writes the agent's files in env/ and
the hidden answers in script/answer.csv, with the helpers of
benchmarks/_common/mlab_prepare.py (see benchmarks/digits/script/prepare.py):

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "_common"))
    import mlab_prepare as mp
"""

import sys
from pathlib import Path


def main():
    name = Path(__file__).resolve().parents[1].name
    print(f"==> nothing to prepare for {{name}} yet (script/prepare.py is the template)", flush=True)


if __name__ == "__main__":
    main()
    sys.exit(0)
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_task_loads_and_refuses_to_overwrite() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("proj");
        std::fs::create_dir_all(src.join("data")).unwrap();
        std::fs::write(src.join("train.py"), "print(1)\n").unwrap();
        std::fs::write(src.join("data/a.csv"), "x\n").unwrap();
        let cfg = NewConfig {
            name: "my-task".into(),
            from_dir: src.clone(),
            problem: Some("Improve \"it\".\n".into()),
            read_only: vec!["data/*".into()],
            out: Some(d.path().join("bench")),
        };
        let dir = create(&Locations::default(), &cfg).unwrap();
        let t = crate::task::Task::load(&dir).unwrap();
        assert_eq!(t.name(), "my-task");
        assert_eq!(t.spec.description, "Improve \"it\".");
        assert_eq!(t.research_problem().unwrap(), "Improve \"it\".\n");
        assert!(t.read_only_matcher().unwrap().matches("data/a.csv"));
        assert!(t.env_dir().join("train.py").is_file());
        assert!(!t.is_prepared(), "its prepare.py has not run yet");
        let e = format!("{:#}", create(&Locations::default(), &cfg).unwrap_err());
        assert!(e.contains("already exists"), "{e}");
        let bad = NewConfig {
            name: "../x".into(),
            ..cfg
        };
        assert!(create(&Locations::default(), &bad).is_err());
    }
}
