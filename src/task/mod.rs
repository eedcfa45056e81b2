//! Task: one benchmark problem, a folder `benchmarks/<task>/` holding
//! `task.toml`, `env/` (what the agent starts with) and `script/` (hidden:
//! prepare.py, eval.py, the research problem, the read-only file list and
//! the answers).
//!
//! Folders in the original MLAgentBench layout (`scripts/`, no `task.toml`)
//! load too: missing fields get defaults, and `Task::defaulted` names them.

pub mod adhoc;
pub mod discover;
pub mod list;
pub mod new;
pub mod prepare;

pub use discover::Locations;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

/// File name of the marker that `prepare` writes on success (as the original).
pub const PREPARED_MARKER: &str = "prepared";

/// The hidden answers prepare.py writes in `script/` (the Python side's
/// `mlab_eval.ANSWER_FILE`), and the name the offline tasks used before.
pub const ANSWER_FILE: &str = "answer.csv";
const OLD_ANSWER_FILE: &str = "answers.csv";

/// Whether a larger score is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Higher,
    Lower,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Higher => "higher",
            Direction::Lower => "lower",
        }
    }
}

/// What a task needs from the machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requires {
    #[serde(default)]
    pub gpu: bool,
    #[serde(default)]
    pub internet: bool,
    /// Kaggle competition slug whose data prepare downloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kaggle: Option<String>,
    /// The task's own requirements file, relative to the task folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<String>,
}

/// The contents of `task.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    pub name: String,
    pub description: String,
    pub category: String,
    /// Display name of the metric.
    pub metric: String,
    pub direction: Direction,
    /// Files (relative to the workspace) that eval.py reads.
    pub submission: Vec<String>,
    /// Measured mean final score of the baseline agent; never guessed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// The original repository's fixed baseline value, for reference only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper_baseline: Option<f64>,
    /// Where `paper_baseline` comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper_baseline_source: Option<String>,
    /// Script the baseline agent runs (default `train.py`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_script: Option<String>,
    #[serde(default)]
    pub requires: Requires,
}

/// Which layout the folder uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `task.toml` + `script/`.
    Mlab,
    /// The original MLAgentBench layout: `scripts/`, no `task.toml`.
    Original,
}

#[derive(Debug, Clone)]
pub struct Task {
    pub spec: TaskSpec,
    pub dir: PathBuf,
    pub layout: Layout,
    /// Fields of `task.toml` that were missing and got defaults.
    pub defaulted: Vec<&'static str>,
    /// Set for an ad-hoc task (`mlab run --dir`): `dir` is the person's
    /// own folder, used as env/, and the problem and read-only patterns
    /// come from here instead of script/.
    pub adhoc: Option<adhoc::Source>,
}

/// Tasks that the original's plot.py treats as lower-is-better (by folder name).
const ORIGINAL_LOWER_IS_BETTER: &[&str] = &[
    "amp-parkinsons-disease-progression-prediction",
    "parkinsons-disease",
    "feedback",
    "babylm",
    "llama-inference",
    "house-price",
    "vectorization",
];

impl Task {
    /// Loads the task in `dir` (either layout).
    pub fn load(dir: &Path) -> Result<Task> {
        let folder_name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let toml_path = dir.join("task.toml");
        if toml_path.is_file() {
            let text = std::fs::read_to_string(&toml_path)
                .with_context(|| format!("could not read {}", toml_path.display()))?;
            let spec: TaskSpec = toml::from_str(&text).with_context(|| {
                format!(
                    "{} is not a valid task.toml (see README.md, 'Task format')",
                    toml_path.display()
                )
            })?;
            if spec.name != folder_name {
                bail!(
                    "{}: name = \"{}\" but the folder is called \"{}\"; make them equal",
                    toml_path.display(),
                    spec.name,
                    folder_name
                );
            }
            if spec.submission.is_empty() {
                bail!(
                    "{}: `submission` is empty; list the files eval.py reads",
                    toml_path.display()
                );
            }
            let task = Task {
                spec,
                dir: dir.to_path_buf(),
                layout: Layout::Mlab,
                defaulted: Vec::new(),
                adhoc: None,
            };
            task.check_folders()?;
            return Ok(task);
        }
        if dir.join("scripts").is_dir() && dir.join("env").is_dir() {
            return Ok(Self::load_original(dir, folder_name));
        }
        bail!(
            "{} is not a task folder: it needs task.toml, env/ and script/ (or the original layout: env/ and scripts/)",
            dir.display()
        )
    }

    fn load_original(dir: &Path, name: String) -> Task {
        let problem =
            std::fs::read_to_string(dir.join("scripts/research_problem.txt")).unwrap_or_default();
        let description = problem
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string();
        let direction = if ORIGINAL_LOWER_IS_BETTER.contains(&name.as_str()) {
            Direction::Lower
        } else {
            Direction::Higher
        };
        let reqs = dir.join("scripts/requirements.txt");
        Task {
            spec: TaskSpec {
                name,
                description,
                category: "unknown".into(),
                metric: "score".into(),
                direction,
                submission: vec!["submission.csv".into()],
                baseline: None,
                paper_baseline: None,
                paper_baseline_source: None,
                baseline_script: None,
                requires: Requires {
                    python: reqs
                        .is_file()
                        .then(|| "scripts/requirements.txt".to_string()),
                    ..Requires::default()
                },
            },
            dir: dir.to_path_buf(),
            layout: Layout::Original,
            defaulted: vec![
                "description",
                "category",
                "metric",
                "direction",
                "submission",
                "requires",
            ],
            adhoc: None,
        }
    }

    fn check_folders(&self) -> Result<()> {
        for sub in ["env", "script"] {
            if !self.dir.join(sub).is_dir() {
                bail!(
                    "task {}: missing folder {}/ in {}",
                    self.name(),
                    sub,
                    self.dir.display()
                );
            }
        }
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// What the agent sees at the start (an ad-hoc task's own folder).
    pub fn env_dir(&self) -> PathBuf {
        if self.adhoc.is_some() {
            return self.dir.clone();
        }
        self.dir.join("env")
    }

    /// The folder that agent code must not see besides the log folder: the
    /// whole benchmarks folder (this task's answers and every other task),
    /// or an ad-hoc task's own folder (the workspace holds its copy).
    pub fn hidden_root(&self) -> PathBuf {
        if self.adhoc.is_some() {
            return self.dir.clone();
        }
        self.dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.dir.clone())
    }

    /// Hidden files: `script/` (or the original's `scripts/`).
    pub fn script_dir(&self) -> PathBuf {
        match self.layout {
            Layout::Mlab => self.dir.join("script"),
            Layout::Original => self.dir.join("scripts"),
        }
    }

    /// Whether `mlab prepare` succeeded (its marker is there), or there is
    /// nothing to prepare.
    ///
    /// A task prepared before its answers were named [`ANSWER_FILE`] (it has
    /// only the old `answers.csv`) is not: its eval.py would not find them,
    /// so `mlab prepare` makes them again.
    pub fn is_prepared(&self) -> bool {
        if self.adhoc.is_some() {
            return true;
        }
        let script = self.script_dir();
        let stale = script.join(OLD_ANSWER_FILE).exists() && !script.join(ANSWER_FILE).exists();
        (script.join(PREPARED_MARKER).exists() && !stale) || !self.needs_prepare()
    }

    /// A task without prepare.py has nothing to prepare.
    pub fn needs_prepare(&self) -> bool {
        if self.adhoc.is_some() {
            return false;
        }
        self.script_dir().join("prepare.py").is_file()
    }

    /// The research problem the agent is given.
    pub fn research_problem(&self) -> Result<String> {
        if let Some(a) = &self.adhoc {
            return Ok(a.problem.clone());
        }
        let p = self.script_dir().join("research_problem.txt");
        std::fs::read_to_string(&p)
            .with_context(|| format!("task {}: could not read {}", self.name(), p.display()))
    }

    /// Script the baseline agent runs.
    pub fn baseline_script(&self) -> &str {
        self.spec.baseline_script.as_deref().unwrap_or("train.py")
    }

    /// The requirements file of the task, if it declares one.
    pub fn requirements_file(&self) -> Option<PathBuf> {
        self.spec.requires.python.as_ref().map(|p| self.dir.join(p))
    }

    /// Patterns from `read_only_files.txt` (empty when the file is absent).
    pub fn read_only_patterns(&self) -> Result<Vec<String>> {
        if let Some(a) = &self.adhoc {
            return Ok(a.read_only.clone());
        }
        let p = self.script_dir().join("read_only_files.txt");
        if !p.exists() {
            return Ok(Vec::new());
        }
        let text = std::fs::read_to_string(&p)
            .with_context(|| format!("could not read {}", p.display()))?;
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect())
    }

    /// A matcher for workspace-relative paths that agents may not change.
    pub fn read_only_matcher(&self) -> Result<ReadOnly> {
        ReadOnly::new(&self.read_only_patterns()?)
    }
}

/// Matches workspace-relative paths against the read-only patterns.
///
/// Both patterns and paths are normalised first, so `train.csv`,
/// `./train.csv` and `data/../train.csv` are the same file.
#[derive(Debug, Clone)]
pub struct ReadOnly {
    set: GlobSet,
}

impl ReadOnly {
    pub fn new(patterns: &[String]) -> Result<ReadOnly> {
        let mut builder = GlobSetBuilder::new();
        for raw in patterns {
            let Some(norm) = normalize_relative(raw) else {
                bail!("read-only pattern '{raw}' leaves the workspace");
            };
            let glob = Glob::new(&norm)
                .with_context(|| format!("read-only pattern '{raw}' is not a valid glob"))?;
            builder.add(glob);
        }
        Ok(ReadOnly {
            set: builder.build()?,
        })
    }

    /// True when the workspace-relative `path` is read-only. A path that
    /// cannot be normalised (it leaves the workspace) is not matched here;
    /// confinement refuses it separately.
    pub fn matches(&self, path: &str) -> bool {
        normalize_relative(path).is_some_and(|p| self.set.is_match(p))
    }
}

/// Lexically normalises a relative path: drops `.` and empty parts, resolves
/// `..` against earlier parts. `None` when the path is absolute or climbs
/// above its start.
pub fn normalize_relative(path: &str) -> Option<String> {
    if path.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, text: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn read_only_matches_every_spelling_of_a_file() {
        let ro = ReadOnly::new(&["./train.csv".into(), "data/*".into()]).unwrap();
        for p in [
            "train.csv",
            "./train.csv",
            "data/../train.csv",
            "x/../train.csv",
            "data/a.bin",
        ] {
            assert!(ro.matches(p), "{p} should be read-only");
        }
        for p in ["train.py", "test.csv", "data", "../train.csv"] {
            assert!(!ro.matches(p), "{p} should not be read-only");
        }
    }

    #[test]
    fn normalize_refuses_paths_that_leave() {
        assert_eq!(normalize_relative("a/./b/../c").as_deref(), Some("a/c"));
        assert_eq!(normalize_relative("../x"), None);
        assert_eq!(normalize_relative("/etc/passwd"), None);
    }

    #[test]
    fn task_toml_loads_and_validates() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("toy");
        write(
            &t.join("task.toml"),
            r#"name = "toy"
description = "d"
category = "tabular"
metric = "accuracy"
direction = "higher"
submission = ["submission.csv"]
[requires]
kaggle = "toy-comp"
"#,
        );
        std::fs::create_dir_all(t.join("env")).unwrap();
        std::fs::create_dir_all(t.join("script")).unwrap();
        let task = Task::load(&t).unwrap();
        assert_eq!(task.spec.direction, Direction::Higher);
        assert_eq!(task.spec.requires.kaggle.as_deref(), Some("toy-comp"));
        assert!(task.defaulted.is_empty());
        assert!(task.is_prepared(), "no prepare.py means nothing to prepare");

        write(&t.join("script/prepare.py"), "");
        assert!(!task.is_prepared());

        write(
            &t.join("task.toml"),
            "name = \"toy\"\ndirection = \"sideways\"\n",
        );
        let err = format!("{:#}", Task::load(&t).unwrap_err());
        assert!(err.contains("not a valid task.toml"), "{err}");
    }

    #[test]
    fn a_task_prepared_under_the_old_answer_name_is_prepared_again() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("toy");
        write(
            &t.join("task.toml"),
            "name = \"toy\"\ndescription = \"d\"\ncategory = \"c\"\nmetric = \"m\"\n\
             direction = \"higher\"\nsubmission = [\"submission.csv\"]\n",
        );
        write(&t.join("env/train.py"), "");
        write(&t.join("script/prepare.py"), "");
        write(&t.join("script/prepared"), "success\n");
        let task = Task::load(&t).unwrap();
        assert!(task.is_prepared());
        // What an older mlab left: the answers under their old name only.
        write(&t.join("script/answers.csv"), "id,label\n");
        assert!(
            !task.is_prepared(),
            "answers.csv without answer.csv must be prepared again"
        );
        write(&t.join("script/answer.csv"), "id,label\n");
        assert!(task.is_prepared());
    }

    #[test]
    fn original_layout_loads_with_defaults_named() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("house-price");
        write(&t.join("env/train.py"), "print(1)\n");
        write(
            &t.join("scripts/research_problem.txt"),
            "\nPredict the sale price.\nMore.\n",
        );
        write(&t.join("scripts/read_only_files.txt"), "./train.csv\n");
        let task = Task::load(&t).unwrap();
        assert_eq!(task.layout, Layout::Original);
        assert_eq!(task.spec.direction, Direction::Lower);
        assert_eq!(task.spec.description, "Predict the sale price.");
        assert!(task.defaulted.contains(&"metric"));
        assert!(task.read_only_matcher().unwrap().matches("train.csv"));
        assert_eq!(task.script_dir(), t.join("scripts"));
    }
}
