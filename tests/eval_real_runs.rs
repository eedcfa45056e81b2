//! `mlab eval` on log folders made by real runs of an offline task (the
//! baseline agent and a scripted `actions` agent), with graders confined by
//! bubblewrap: exact scores against eval.py called directly, the baseline
//! taken from the baseline runs, and a grader that cannot write snapshots.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::path::{Path, PathBuf};

use common::{mlab, output, text};
use serde_json::Value;

fn need_stack_and_bwrap() {
    common::need_python(common::STACK);
    common::need_bwrap();
}

/// A benchmarks folder holding a fresh copy of `digits`, prepared.
fn prepared_digits(root: &Path) -> PathBuf {
    let bench = root.join("bench");
    common::copy_task("digits", &bench);
    let out = output(
        mlab()
            .arg("--benchmarks-dir")
            .arg(&bench)
            .args(["prepare", "digits", "--force", "--python"])
            .arg(common::python()),
    );
    assert!(
        out.status.success(),
        "prepare failed: {}",
        text(&out.stderr)
    );
    bench
}

fn run(bench: &Path, root: &Path, name: &str, extra: &[&str]) {
    let out = output(
        mlab()
            .current_dir(root)
            .arg("--benchmarks-dir")
            .arg(bench)
            .args(["run", "--task", "digits", "--python"])
            .arg(common::python())
            .arg("--log-dir")
            .arg(root.join("logs").join(name))
            .arg("--work-dir")
            .arg(root.join("ws").join(name))
            .args(extra),
    );
    assert!(
        out.status.success(),
        "run {name} failed: {}",
        text(&out.stderr)
    );
}

/// Scores a folder by importing the task's eval.py directly (no mlab).
fn direct_score(bench: &Path, folder: &Path) -> f64 {
    let code = format!(
        "import sys; sys.path.insert(0, {:?}); import os; os.chdir({:?}); import eval as e; print(e.get_score({:?}))",
        bench.join("digits/script").display().to_string(),
        bench.join("digits/script").display().to_string(),
        folder.display().to_string()
    );
    let out = output(std::process::Command::new(common::python()).args(["-c", &code]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().parse().unwrap()
}

fn eval(bench: &Path, logs: &Path, extra: &[&str]) -> Value {
    let out_file = logs.join("results.json");
    let out = output(
        mlab()
            .arg("--benchmarks-dir")
            .arg(bench)
            .arg("eval")
            .arg("--log-folder")
            .arg(logs)
            .arg("--output-file")
            .arg(&out_file)
            .arg("--python")
            .arg(common::python())
            .args(extra),
    );
    assert!(
        out.status.success(),
        "eval failed\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    common::eval_outputs(&out_file)
}

fn entry<'a>(doc: &'a Value, logs: &Path, name: &str) -> &'a Value {
    let key = logs
        .join(name)
        .join("env_log/trace.json")
        .display()
        .to_string();
    &doc["runs"][key]
}

#[test]
fn real_runs_are_scored_exactly_and_judged_against_their_baseline_runs() {
    need_stack_and_bwrap();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let bench = prepared_digits(root);
    run(&bench, root, "base-1", &["--agent", "baseline"]);
    run(&bench, root, "base-2", &["--agent", "baseline"]);

    // A scripted agent that submits "always class 0": about 10% accuracy.
    let test_csv = std::fs::read_to_string(bench.join("digits/env/test.csv")).unwrap();
    let id_col = test_csv
        .lines()
        .next()
        .unwrap()
        .split(',')
        .position(|c| c == "id")
        .unwrap();
    let mut sub = String::from("id,0,1,2,3,4,5,6,7,8,9\n");
    for line in test_csv.lines().skip(1) {
        let id = line.split(',').nth(id_col).unwrap();
        sub.push_str(&format!("{id},1,0,0,0,0,0,0,0,0,0\n"));
    }
    let actions = root.join("actions.jsonl");
    let lines = [
        serde_json::json!({"name": "Write File", "args": {"file_name": "submission.csv", "content": sub}}),
        serde_json::json!({"name": "Final Answer", "args": {"final_answer": "class 0 everywhere"}}),
    ];
    std::fs::write(
        &actions,
        lines
            .iter()
            .map(|l| l.to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();
    run(
        &bench,
        root,
        "zeros",
        &["--agent", "actions", "--actions", actions.to_str().unwrap()],
    );

    let logs = root.join("logs");
    let doc = eval(&bench, &logs, &[]);
    for name in ["base-1", "base-2", "zeros"] {
        let e = entry(&doc, &logs, name);
        let snap = logs.join(name).join("env_log/traces/step_final_files");
        let expected = direct_score(&bench, &snap);
        let got = e["final_score"]
            .as_f64()
            .unwrap_or_else(|| panic!("{name}: {e}"));
        // Same eval.py, same files: equal up to float summation order.
        assert!(
            (got - expected).abs() < 1e-12,
            "{name}: {got} vs {expected}"
        );
        assert_eq!(e["submitted_final_answer"], Value::Bool(true), "{name}");
        assert_eq!(e["task"], "digits");
        assert_eq!(e["tampered"], Value::Bool(false), "{name}");
    }
    let base = entry(&doc, &logs, "base-1")["final_score"]
        .as_f64()
        .unwrap();
    assert!((0.5..=1.0).contains(&base), "baseline accuracy {base}");
    let zeros = entry(&doc, &logs, "zeros")["final_score"].as_f64().unwrap();
    assert!(zeros < 0.3, "class-0 submission scored {zeros}");

    let summary = doc["summary"].as_array().unwrap();
    let actions_row = summary
        .iter()
        .find(|g| g["agent"] == "actions")
        .unwrap_or_else(|| panic!("no actions row in {summary:?}"));
    assert_eq!(actions_row["baseline_source"], "baseline_runs");
    assert_eq!(actions_row["baseline_runs"], 2);
    assert!((actions_row["baseline"].as_f64().unwrap() - base).abs() < 1e-9);
    assert_eq!(
        actions_row["success_rate"]["10"]["rate"].as_f64(),
        Some(0.0)
    );
    let improvement = actions_row["average_improvement"]["mean"].as_f64().unwrap();
    let hand = (zeros - base) / base.abs();
    assert!((improvement - hand).abs() < 1e-9, "{improvement} vs {hand}");
}

#[test]
fn graders_under_bwrap_cannot_write_the_snapshot_they_score() {
    need_stack_and_bwrap();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let bench = prepared_digits(root);
    // An eval.py that scores 1.0 when it manages to change the snapshot
    // or reach the network, and 0.5 when both are refused.
    std::fs::write(
        bench.join("digits/script/eval.py"),
        "import os, socket\n\
         def get_score(folder):\n\
         \x20   wrote = reached = False\n\
         \x20   try:\n\
         \x20       open(os.path.join(folder, 'tampered.txt'), 'w').write('x')\n\
         \x20       wrote = True\n\
         \x20   except OSError:\n\
         \x20       pass\n\
         \x20   try:\n\
         \x20       socket.create_connection(('pypi.org', 443), timeout=3).close()\n\
         \x20       reached = True\n\
         \x20   except OSError:\n\
         \x20       pass\n\
         \x20   return 1.0 if (wrote or reached) else 0.5\n",
    )
    .unwrap();
    run(&bench, root, "base", &["--agent", "baseline"]);
    let logs = root.join("logs");
    let doc = eval(&bench, &logs, &["--no-cache"]);
    assert_eq!(
        entry(&doc, &logs, "base")["final_score"].as_f64(),
        Some(0.5)
    );
    assert!(!logs
        .join("base/env_log/traces/step_final_files/tampered.txt")
        .exists());
    // Unconfined, the same eval.py can write: the test above can fail.
    let doc = eval(&bench, &logs, &["--no-cache", "--sandbox", "none"]);
    assert_eq!(
        entry(&doc, &logs, "base")["final_score"].as_f64(),
        Some(1.0)
    );
}
