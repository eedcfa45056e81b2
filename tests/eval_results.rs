//! What `mlab eval` writes and reports (issue 13): eval.json in the
//! original's layout, exact numbers, a cache that cannot serve a wrong
//! score, honest intervals, the baseline it used, paired comparisons and a
//! summary that fits a terminal.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use common::{mlab, output, text, write};
use serde_json::{json, Value};

/// Fails the test (never skips it) when the task Python is missing.
fn need_python() {
    common::need_python(&["json"]);
}

/// The score is the last token of submission.csv (parsed by Python, so
/// every digit counts).
const SUBMISSION_EVAL: &str = r#"
import os

def get_score(folder):
    with open(os.path.join(folder, "submission.csv")) as f:
        return float(f.read().split()[-1])
"#;

/// A task in mlab's layout.
fn mlab_task(bench: &Path, name: &str, direction: &str, extra: &str) {
    let t = bench.join(name);
    write(
        &t.join("task.toml"),
        &format!(
            "name = \"{name}\"\ndescription = \"toy\"\ncategory = \"tabular\"\nmetric = \"number\"\n\
             direction = \"{direction}\"\nsubmission = [\"submission.csv\"]\n{extra}"
        ),
    );
    write(&t.join("env/train.py"), "print('train')\n");
    write(&t.join("script/eval.py"), SUBMISSION_EVAL);
    write(&t.join("script/research_problem.txt"), "Make it big.\n");
}

/// An mlab run whose final snapshot submits `last` (None: no final
/// snapshot) after intermediate snapshots submitting `steps`.
fn mlab_run(dir: &Path, task: &str, config: &str, seed: u64, steps: &[&str], last: Option<&str>) {
    let agent = if config == "baseline" {
        "baseline"
    } else {
        "research"
    };
    let run_json = json!({
        "mlab_version": "0.1.0", "task": task, "agent": agent, "config": config,
        "llm": if agent == "baseline" { Value::Null } else { json!({"main": "m", "fast": "m", "edit": "m"}) },
        "seed": seed, "flags": {}, "sandbox": "none",
        "start_time": "2026-01-01T10:00:00Z", "end_time": "2026-01-01T10:01:30Z",
        "steps": steps.len(), "exit_reason": "final_answer", "error": null,
        "tokens": {"input": 1000, "output": 200}, "cost_usd": 0.02, "tampered": false
    });
    write(&dir.join("run.json"), &run_json.to_string());
    write(
        &dir.join("env_log/trace.json"),
        &json!({"steps": [{"action": {"name": "Final Answer", "args": {}}, "observation": "", "timestamp": 1.0}],
                "low_level_steps": [], "action_infos": {}, "task_description": "x"})
        .to_string(),
    );
    write(&dir.join("env_log/overall_time.txt"), "90.0");
    write(&dir.join("agent_log/main_log"), "Step 0:\n");
    for (i, s) in steps.iter().enumerate() {
        let snap = dir.join(format!("env_log/traces/step_{i}_files"));
        if *s == "none" {
            write(&snap.join("train.py"), "x\n");
        } else {
            write(&snap.join("submission.csv"), &format!("value\n{s}\n"));
        }
    }
    if let Some(s) = last {
        write(
            &dir.join("env_log/traces/step_final_files/submission.csv"),
            &format!("value\n{s}\n"),
        );
    }
}

/// `mlab eval` with unconfined graders from an unrelated folder.
fn eval(bench: &Path, logs: &Path, extra: &[&str]) -> Output {
    let elsewhere = tempfile::tempdir().unwrap();
    output(
        mlab()
            .current_dir(elsewhere.path())
            .arg("--benchmarks-dir")
            .arg(bench)
            .arg("eval")
            .arg("--log-folder")
            .arg(logs)
            .arg("--python")
            .arg(common::python())
            .args(["--sandbox", "none"])
            .args(extra),
    )
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "mlab eval failed\nstdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn read(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn key(logs: &Path, rel: &str) -> String {
    logs.join(rel)
        .join("env_log/trace.json")
        .display()
        .to_string()
}

fn run_python(code: &str, args: &[&Path]) -> Output {
    output(
        std::process::Command::new(common::python())
            .arg("-c")
            .arg(code)
            .args(args),
    )
}

#[test]
fn eval_json_is_the_originals_layout_and_its_analysis_reads_it() {
    need_python();
    let bench = tempfile::tempdir().unwrap();
    mlab_task(bench.path(), "toy", "higher", "");
    let logs = tempfile::tempdir().unwrap();
    mlab_run(
        &logs.path().join("exp/a"),
        "toy",
        "research (m)",
        1,
        &["0.25", "none"],
        Some("0.5"),
    );
    mlab_run(
        &logs.path().join("exp/b"),
        "toy",
        "research (m)",
        2,
        &["0.75"],
        Some("0.125"),
    );
    let out = eval(bench.path(), logs.path(), &["--eval-intermediate"]);
    ok(&out);

    // Written by default, beside the summary, readable by everyone.
    let results = logs.path().join("eval.json");
    let summary = logs.path().join("eval_summary.json");
    for f in [&results, &summary] {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{}", f.display());
    }
    let doc = read(&results);
    let top: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(
        top,
        [&key(logs.path(), "exp/a"), &key(logs.path(), "exp/b")]
    );
    assert!(read(&summary)["summary"].is_array());

    // The original's analysis loop: every top-level entry is one run, and
    // its numbers are what eval.py gives for each snapshot.
    let analysis = r#"
import importlib.util, json, os, sys
spec = importlib.util.spec_from_file_location("task_eval", sys.argv[2])
task_eval = importlib.util.module_from_spec(spec)
spec.loader.exec_module(task_eval)
with open(sys.argv[1]) as f:
    results = json.load(f)
for path, d in results.items():
    run = path.split("/env_log")[0]
    final_score = d["final_score"]
    assert final_score == task_eval.get_score(os.path.join(run, "env_log/traces/step_final_files")), path
    scores, steps, extra = d["score"], d["score_steps"], d["extra"]
    assert len(scores) == len(steps) + 1 and scores[-1] == final_score, path
    for score, step in zip(scores, steps):
        folder = os.path.join(run, "env_log/traces/step_%d_files" % step)
        try:
            expected = task_eval.get_score(folder)
        except Exception:
            expected = -1.7976931348623157e308
        assert score == expected, (path, step, score, expected)
    assert set(extra) == {"oom_error", "connection_error", "error", "json_error", "long_prompt_error"}
    assert d["path"] == path and d["submitted_final_answer"] is True and d["total_time"] == 90.0
print("read", len(results))
"#;
    let eval_py = bench.path().join("toy/script/eval.py");
    let o = run_python(analysis, &[&results, &eval_py]);
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), "read 2");

    // --output-file chooses; the summary goes beside it.
    let other = tempfile::tempdir().unwrap();
    let chosen = other.path().join("mine.json");
    let out = eval(
        bench.path(),
        logs.path(),
        &["--output-file", chosen.to_str().unwrap()],
    );
    ok(&out);
    assert!(read(&chosen).get(key(logs.path(), "exp/a")).is_some());
    assert!(other.path().join("eval_summary.json").is_file());
}

#[test]
fn scores_keep_every_digit_from_eval_py_to_the_files() {
    need_python();
    let bench = tempfile::tempdir().unwrap();
    mlab_task(bench.path(), "toy", "higher", "");
    let logs = tempfile::tempdir().unwrap();
    // Each loses its last digit through a parser without exact round-trip.
    let values = [
        "0.046271324157714844",
        "0.8973214285714286",
        "0.30000000000000004",
    ];
    for (i, v) in values.iter().enumerate() {
        mlab_run(
            &logs.path().join(format!("r{i}")),
            "toy",
            "research (m)",
            1,
            &[],
            Some(v),
        );
    }
    for pass in ["scored", "cached"] {
        let out = eval(bench.path(), logs.path(), &[]);
        ok(&out);
        let raw = std::fs::read_to_string(logs.path().join("eval.json")).unwrap();
        let doc: Value = serde_json::from_str(&raw).unwrap();
        for (i, v) in values.iter().enumerate() {
            let e = &doc[key(logs.path(), &format!("r{i}"))];
            assert_eq!(e["final_score"].to_string(), *v, "{pass}");
            assert_eq!(
                e["final_score"].as_f64().unwrap(),
                v.parse::<f64>().unwrap()
            );
            assert!(
                raw.contains(&format!("\"final_score\": {v}")),
                "{pass}: {raw}"
            );
        }
    }
}

#[test]
fn a_failed_step_is_the_worst_value_and_never_a_success() {
    need_python();
    let bench = tempfile::tempdir().unwrap();
    mlab_task(bench.path(), "low", "lower", "baseline = 10.0\n");
    let logs = tempfile::tempdir().unwrap();
    // Step 0 cannot be scored; the final score 12 is worse than 10.
    mlab_run(
        &logs.path().join("r"),
        "low",
        "research (m)",
        1,
        &["none"],
        Some("12"),
    );
    let out = eval(bench.path(), logs.path(), &["--eval-intermediate"]);
    ok(&out);
    let e = &read(&logs.path().join("eval.json"))[key(logs.path(), "r")];
    assert_eq!(
        e["score"],
        json!([f64::MAX, 12.0]),
        "0 would be a perfect error"
    );
    assert_eq!(e["step_scores"], json!([null]));
    assert_eq!(e["best_score"], json!(12.0));
    let g = &read(&logs.path().join("eval_summary.json"))["summary"][0];
    assert_eq!(g["success_rate_any_step"]["5"]["k"], json!(0), "{g}");
}

/// A task in the original layout whose eval.py reads a checkpoint, not
/// submission.csv (as CLRS and babylm do).
#[test]
fn an_original_layout_task_reading_other_files_gets_no_stale_score() {
    need_python();
    let bench = tempfile::tempdir().unwrap();
    let t = bench.path().join("ckpt");
    write(&t.join("env/train.py"), "print('train')\n");
    write(&t.join("scripts/research_problem.txt"), "Train.\n");
    write(
        &t.join("scripts/eval.py"),
        "import os\n\ndef get_score(folder):\n    with open(os.path.join(folder, 'checkpoints/best.txt')) as f:\n        return float(f.read())\n",
    );
    let logs = tempfile::tempdir().unwrap();
    let make = |name: &str, v: &str| {
        let run = logs.path().join(format!("exp/ckpt/{name}"));
        write(&run.join("env_log/trace.json"), r#"{"steps": []}"#);
        write(&run.join("env_log/overall_time.txt"), "1.0");
        let snap = run.join("env_log/traces/step_final_files");
        write(&snap.join("submission.csv"), "the same in both runs\n");
        write(&snap.join("checkpoints/best.txt"), v);
    };
    make("1", "0.1");
    make("2", "0.9");
    for pass in ["first", "cached"] {
        let out = eval(bench.path(), logs.path(), &[]);
        ok(&out);
        let doc = read(&logs.path().join("eval.json"));
        assert_eq!(
            doc[key(logs.path(), "exp/ckpt/1")]["final_score"],
            json!(0.1),
            "{pass}"
        );
        assert_eq!(
            doc[key(logs.path(), "exp/ckpt/2")]["final_score"],
            json!(0.9),
            "{pass}"
        );
    }
}

#[test]
fn baseline_comes_from_the_flag_then_baseline_runs_then_task_toml_and_is_named() {
    need_python();
    let bench = tempfile::tempdir().unwrap();
    mlab_task(
        bench.path(),
        "toy",
        "higher",
        "baseline = 0.8\npaper_baseline = 0.3\n",
    );
    let logs = tempfile::tempdir().unwrap();
    mlab_run(
        &logs.path().join("a1"),
        "toy",
        "research (m)",
        1,
        &[],
        Some("0.9"),
    );
    let summary = |extra: &[&str]| {
        let out = eval(bench.path(), logs.path(), extra);
        ok(&out);
        (
            read(&logs.path().join("eval_summary.json"))["summary"].clone(),
            text(&out.stdout),
        )
    };
    let (s, stdout) = summary(&[]);
    assert_eq!(s[0]["baseline_source"], json!("task_toml"));
    assert!(
        stdout.contains("baseline of toy: 0.8 (task.toml baseline (measured))"),
        "{stdout}"
    );
    // 0.9 is +12.5% over 0.8: one success of one, honestly uncertain.
    assert_eq!(s[0]["success_rate"]["10"]["k"], json!(1));
    assert!(stdout.contains("1/1 100% [21-100%]"), "{stdout}");
    assert!(stdout.contains("(n=1, no interval)"), "{stdout}");

    mlab_run(
        &logs.path().join("b1"),
        "toy",
        "baseline",
        1,
        &[],
        Some("0.7"),
    );
    let (s, stdout) = summary(&[]);
    let base = s
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["config"] == "baseline")
        .unwrap();
    let agent = s
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["config"] != "baseline")
        .unwrap();
    assert_eq!(agent["baseline_source"], json!("baseline_runs"));
    assert_eq!(agent["baseline"], json!(0.7));
    assert_eq!(
        base["success_rate"],
        Value::Null,
        "never a success against itself"
    );
    assert!(
        stdout.contains("mean of 1 baseline-agent run(s)"),
        "{stdout}"
    );

    let (s, stdout) = summary(&["--baseline", "toy=0.85"]);
    assert_eq!(s[0]["baseline_source"], json!("flag"));
    assert_eq!(s[0]["baseline"], json!(0.85));
    assert!(
        stdout.contains("baseline of toy: 0.85 (--baseline)"),
        "{stdout}"
    );
}

#[test]
fn compare_pairs_two_configurations_by_task_and_seed() {
    need_python();
    let bench = tempfile::tempdir().unwrap();
    mlab_task(bench.path(), "toy", "higher", "baseline = 0.5\n");
    let logs = tempfile::tempdir().unwrap();
    // Seeds 1..4. A: 0.5, 0.6, 0.5, 0.5 (1 success); B: 0.6 on all (4).
    for (seed, a) in [(1, "0.5"), (2, "0.6"), (3, "0.5"), (4, "0.5")] {
        mlab_run(
            &logs.path().join(format!("a{seed}")),
            "toy",
            "A",
            seed,
            &[],
            Some(a),
        );
        mlab_run(
            &logs.path().join(format!("b{}", 5 - seed)),
            "toy",
            "B",
            seed,
            &[],
            Some("0.6"),
        );
    }
    let out = eval(bench.path(), logs.path(), &["--compare", "A", "B"]);
    ok(&out);
    let c = &read(&logs.path().join("eval_summary.json"))["comparison"];
    let t = &c["tasks"][0];
    assert_eq!(t["paired_by"], json!("seed"));
    assert_eq!(t["pairs"], json!(4));
    // Success differences 1, 0, 1, 1: mean 3/4; of the 16 sign flips the
    // sums reaching |3| are the 2 x 2 with the three ones alike: p = 4/16.
    assert_eq!(t["success_diff"]["mean"], json!(0.75));
    assert_eq!(t["success_diff"]["p_value"], json!(0.25));
    assert_eq!(t["success_diff"]["exact"], json!(true));
    // Improvement differences 0.2, 0, 0.2, 0.2.
    let imp = t["improvement_diff"]["mean"].as_f64().unwrap();
    assert!((imp - 0.15).abs() < 1e-9, "{imp}");
    assert_eq!(c["overall"]["pairs"], json!(4));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("+75% [") && stdout.contains("p=0.25"),
        "{stdout}"
    );

    let out = eval(bench.path(), logs.path(), &["--compare", "A", "C"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("the configurations here are"));
}

#[test]
fn the_default_summary_fits_100_columns_and_wide_shows_more() {
    need_python();
    let bench = tempfile::tempdir().unwrap();
    let long_task = "a-task-with-a-rather-long-name-for-a-terminal";
    mlab_task(bench.path(), long_task, "higher", "baseline = 0.5\n");
    let logs = tempfile::tempdir().unwrap();
    let config =
        "research (anthropic:claude-3-5-haiku-latest; fast anthropic:claude-3-5-haiku-latest)";
    for i in 0..3 {
        mlab_run(
            &logs
                .path()
                .join(format!("some/deeply/nested/experiment/folder/run-{i}")),
            long_task,
            config,
            i,
            &[],
            Some(&format!("0.5{i}")),
        );
    }
    let out = eval(bench.path(), logs.path(), &[]);
    ok(&out);
    let stdout = text(&out.stdout);
    for line in stdout.lines() {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    for column in [
        "task",
        "config",
        "runs",
        "success >10%",
        "mean final",
        "cost",
        "tokens",
        "time",
    ] {
        assert!(stdout.contains(column), "{column}: {stdout}");
    }
    assert!(
        stdout.contains("$0.02") && stdout.contains("1.2k") && stdout.contains("1.5m"),
        "{stdout}"
    );
    assert!(!stdout.contains("http"), "{stdout}");
    let out = eval(bench.path(), logs.path(), &["--wide"]);
    ok(&out);
    let wide = text(&out.stdout);
    assert!(
        wide.contains(config) && wide.contains("avg improvement"),
        "{wide}"
    );
}

/// The interval arithmetic against scipy, in the task venv.
#[test]
fn intervals_and_p_values_agree_with_scipy() {
    common::need_python(&["scipy", "numpy"]);
    use mlab::eval::{bootstrap_ci, permutation_p, wilson};
    let cases = [(0usize, 5usize), (1, 1), (5, 10), (3, 8), (19, 20)];
    let diffs = [0.3, -0.1, 0.25, 0.4, 0.0, 0.15, -0.05, 0.2];
    let xs: Vec<f64> = (0..30).map(|i| ((i * 37) % 11) as f64 / 10.0).collect();
    let code = r#"
import json, sys
import numpy as np
from scipy import stats
cases, diffs, xs = json.loads(sys.argv[1])
out = {"wilson": [], "perm": None, "boot": None}
for k, n in cases:
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    out["wilson"].append([float(ci.low), float(ci.high)])
d = np.array(diffs)
res = stats.permutation_test((d,), lambda x, axis: np.mean(x, axis=axis),
    permutation_type="samples", alternative="two-sided", n_resamples=np.inf)
out["perm"] = float(res.pvalue)
b = stats.bootstrap((np.array(xs),), np.mean, method="percentile", n_resamples=20000,
    random_state=np.random.default_rng(1))
out["boot"] = [float(b.confidence_interval.low), float(b.confidence_interval.high)]
print(json.dumps(out))
"#;
    let arg = json!([cases, diffs, xs]).to_string();
    let o = output(
        std::process::Command::new(common::python())
            .arg("-c")
            .arg(code)
            .arg(&arg),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let sp: Value = serde_json::from_str(text(&o.stdout).trim()).unwrap();
    for (i, (k, n)) in cases.iter().enumerate() {
        let ours = wilson(*k, *n);
        let theirs = &sp["wilson"][i];
        for j in 0..2 {
            let t = theirs[j].as_f64().unwrap();
            assert!((ours[j] - t).abs() < 1e-12, "{k}/{n}: {ours:?} vs {theirs}");
        }
    }
    // One-sample sign flips: scipy enumerates all 2^8 exactly, as we do.
    let (p, exact) = permutation_p(&diffs, 1);
    assert!(exact);
    assert!(
        (p - sp["perm"].as_f64().unwrap()).abs() < 1e-12,
        "{p} vs {}",
        sp["perm"]
    );
    // Bootstraps draw differently; with 10,000 resamples the percentiles
    // agree to within a few hundredths.
    let ours = bootstrap_ci(&xs, 1).unwrap();
    for j in 0..2 {
        let t = sp["boot"][j].as_f64().unwrap();
        assert!((ours[j] - t).abs() < 0.03, "{ours:?} vs {}", sp["boot"]);
    }
}
