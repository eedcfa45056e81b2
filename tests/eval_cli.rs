//! `mlab eval` end to end, on log folders built here by hand: mlab's layout
//! and the original MLAgentBench's, with snapshots whose submissions are
//! known, scored by a toy task whose eval.py reads the number in
//! submission.csv. The toy eval.py also appends every folder it scores to
//! `script/calls.log`, which is how the cache tests see what was re-scored.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{mlab, output, text, write};
use mlab::testing::toy::ToyTask;
use serde_json::{json, Value};

/// The toy eval: the last token of submission.csv is the score, scaled by
/// the answer file that sits beside eval.py (found only when the worker
/// runs in the task's script folder). "boom" raises, "hang" sleeps.
const TOY_EVAL: &str = r#"
import os
import time

def get_score(folder):
    with open("calls.log", "a") as log:
        log.write("%s\t%d\n" % (folder, os.getpid()))
    print("eval.py chatter on stdout must not confuse mlab")
    with open(os.path.join(folder, "submission.csv")) as f:
        value = f.read().split()[-1]
    if value == "boom":
        raise ValueError("the submission says boom")
    if value == "hang":
        time.sleep(600)
    if value.startswith("slow:"):
        time.sleep(0.3)
        value = value[len("slow:"):]
    with open("answer.txt") as f:
        scale = float(f.read())
    return float(value) * scale
"#;

/// A benchmarks folder with `toy` (higher is better) and `toy-low` (lower
/// is better, declared baseline 10).
fn benchmarks() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let tasks = [("toy", "higher", None), ("toy-low", "lower", Some("10.0"))];
    for (name, direction, baseline) in tasks {
        let mut task = ToyTask::new()
            .named(name)
            .set("metric", "number")
            .set("direction", direction)
            .empty_env()
            .env("train.py", "print('train')\n")
            .no_read_only()
            .eval_py(TOY_EVAL)
            .script("answer.txt", "1\n")
            .research_problem("Make the number big.\n");
        if let Some(b) = baseline {
            task = task.set_raw("baseline", b);
        }
        task.write_in(dir.path());
    }
    dir
}

/// Folders `calls.log` says were scored, for task `name`.
fn calls(bench: &Path, name: &str) -> Vec<String> {
    std::fs::read_to_string(bench.join(name).join("script/calls.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('\t').next().unwrap_or_default().to_string())
        .collect()
}

/// Process ids of the workers that scored for task `name`.
fn worker_pids(bench: &Path, name: &str) -> std::collections::BTreeSet<String> {
    std::fs::read_to_string(bench.join(name).join("script/calls.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split('\t').nth(1).map(String::from))
        .collect()
}

/// One mlab run: `steps` are the submissions of step_0.. (None: no file),
/// `last` the final snapshot's (outer None: no final snapshot).
struct MlabRun<'a> {
    task: &'a str,
    agent: &'a str,
    llm: Value,
    exit_reason: &'a str,
    steps: Vec<Option<&'a str>>,
    last: Option<Option<&'a str>>,
}

impl MlabRun<'_> {
    fn new(task: &str) -> MlabRun<'_> {
        MlabRun {
            task,
            agent: "research",
            llm: json!({"main": "gpt-4o", "fast": "gpt-4o", "edit": "gpt-4o"}),
            exit_reason: "final_answer",
            steps: Vec::new(),
            last: Some(Some("0.5")),
        }
    }

    fn write(&self, dir: &Path) {
        let run_json = json!({
            "mlab_version": "0.1.0", "task": self.task, "agent": self.agent, "llm": self.llm,
            "seed": 3, "flags": {}, "sandbox": "none",
            "start_time": "2026-01-01T10:00:00Z", "end_time": "2026-01-01T10:01:30Z",
            "steps": self.steps.len(), "exit_reason": self.exit_reason, "error": null,
            "tokens": {"input": 100, "output": 20}, "cost_usd": 0.01, "tampered": false
        });
        write(&dir.join("run.json"), &run_json.to_string());
        let mut steps: Vec<Value> = (0..self.steps.len())
            .map(|_| json!({"action": {"name": "List Files", "args": {"dir_path": "."}}, "observation": "", "timestamp": 1.0}))
            .collect();
        if self.exit_reason == "final_answer" {
            steps.push(json!({"action": {"name": "Final Answer", "args": {"final_answer": "done"}}, "observation": "", "timestamp": 2.0}));
        }
        write(
            &dir.join("env_log/trace.json"),
            &json!({"steps": steps, "low_level_steps": [], "action_infos": {}, "task_description": "x"}).to_string(),
        );
        write(&dir.join("env_log/overall_time.txt"), "90.0");
        write(&dir.join("agent_log/main_log"), "Step 0:\n");
        for (i, s) in self.steps.iter().enumerate() {
            snapshot(&dir.join(format!("env_log/traces/step_{i}_files")), *s);
        }
        if let Some(s) = self.last {
            snapshot(&dir.join("env_log/traces/step_final_files"), s);
        }
    }
}

fn snapshot(dir: &Path, submission: Option<&str>) {
    write(&dir.join("train.py"), "print('train')\n");
    if let Some(s) = submission {
        write(&dir.join("submission.csv"), &format!("value\n{s}\n"));
    }
}

/// Runs `mlab eval` from a folder unrelated to the task, so the task's data
/// is found only if the worker sets its own working directory. The toy
/// eval.py counts its calls in a file beside it, which the bubblewrap
/// grader policy rightly makes read-only, so these tests of eval's own
/// logic run graders unconfined; `tests/eval_real_runs.rs` covers bwrap.
fn eval(bench: &Path, logs: &Path, extra: &[&str]) -> (Output, Value) {
    let elsewhere = tempfile::tempdir().unwrap();
    let out_file = elsewhere.path().join("results.json");
    let out = output(
        mlab()
            .current_dir(elsewhere.path())
            .arg("--benchmarks-dir")
            .arg(bench)
            .arg("eval")
            .arg("--log-folder")
            .arg(logs)
            .arg("--output-file")
            .arg(&out_file)
            .arg("--python")
            .arg(common::python())
            .args(["--sandbox", "none"])
            .args(extra),
    );
    let doc = common::eval_outputs(&out_file);
    (out, doc)
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "mlab eval failed\nstdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The results entry of the run in folder `rel` under `logs`.
fn entry<'a>(doc: &'a Value, logs: &Path, rel: &str) -> &'a Value {
    let key = logs
        .join(rel)
        .join("env_log/trace.json")
        .display()
        .to_string();
    doc["runs"].get(&key).unwrap_or_else(|| {
        panic!(
            "no entry {key} in {}",
            serde_json::to_string_pretty(&doc["runs"]).unwrap()
        )
    })
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn every_snapshot_gets_its_exact_score_from_any_working_directory() {
    common::need_python(&["json"]);
    let bench = benchmarks();
    let logs = tempfile::tempdir().unwrap();
    let mut r = MlabRun::new("toy");
    r.steps = vec![None, Some("0.25"), Some("0.75")];
    r.last = Some(Some("0.5"));
    r.write(&logs.path().join("exp/run-a"));
    let mut r = MlabRun::new("toy");
    r.last = Some(Some("0.125"));
    r.write(&logs.path().join("exp/deeper/run-b"));

    let (out, doc) = eval(bench.path(), logs.path(), &["--eval-intermediate"]);
    ok(&out);
    let a = entry(&doc, logs.path(), "exp/run-a");
    assert_eq!(f(&a["final_score"]), 0.5);
    // Step 0 had no submission: it is the worst value in the original's
    // `score` (the original appends 0, which would read as a score), null
    // in mlab's `step_scores`, and gets an error entry.
    assert_eq!(a["score"], json!([f64::MIN, 0.25, 0.75, 0.5]));
    assert_eq!(a["step_scores"], json!([null, 0.25, 0.75]));
    assert_eq!(a["graded_final_score"], json!(0.5));
    assert_eq!(a["score_steps"], json!([0, 1, 2]));
    assert_eq!(f(&a["best_score"]), 0.75);
    let errs = a["eval_errors"].as_array().unwrap();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0]["step"], json!(0));
    assert!(
        errs[0]["error"]
            .as_str()
            .unwrap()
            .contains("FileNotFoundError"),
        "{errs:?}"
    );
    let b = entry(&doc, logs.path(), "exp/deeper/run-b");
    assert_eq!(f(&b["final_score"]), 0.125);
    assert_eq!(b["eval_errors"], json!([]));

    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("exp/run-a") && stdout.contains("0.5"),
        "{stdout}"
    );
    assert!(stdout.contains("0.125"), "{stdout}");
}

#[test]
fn output_keys_and_types_match_the_originals_schema() {
    common::need_python(&["json"]);
    let bench = benchmarks();
    let logs = tempfile::tempdir().unwrap();
    let mut r = MlabRun::new("toy");
    r.steps = vec![Some("0.3")];
    r.write(&logs.path().join("run"));
    let (out, doc) = eval(bench.path(), logs.path(), &["--eval-intermediate"]);
    ok(&out);
    let runs = doc["runs"].as_object().unwrap();
    assert_eq!(runs.len(), 1);
    let (key, e) = runs.iter().next().unwrap();
    let obj = e.as_object().unwrap();
    let original = [
        "path",
        "summary",
        "rubric_questions",
        "score",
        "score_steps",
        "submitted_final_answer",
        "final_score",
        "total_time",
        "error",
        "extra",
    ];
    let ours = [
        "task",
        "agent",
        "llm",
        "seed",
        "steps",
        "tokens",
        "cost_usd",
        "exit_reason",
        "tampered",
        "best_score",
        "step_scores",
        "graded_final_score",
        "eval_errors",
    ];
    let mut expected: Vec<&str> = original.iter().chain(ours.iter()).copied().collect();
    let mut got: Vec<&str> = obj.keys().map(String::as_str).collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);

    assert_eq!(
        &e["path"], key,
        "results are keyed by path, as the original's"
    );
    assert!(key.ends_with("run/env_log/trace.json"), "{key}");
    assert_eq!(e["summary"], json!(""));
    assert_eq!(e["rubric_questions"], json!({}));
    assert!(e["score"].as_array().unwrap().iter().all(Value::is_f64));
    assert!(e["score_steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(Value::is_u64));
    assert_eq!(e["submitted_final_answer"], json!(true));
    assert!(e["final_score"].is_f64() && e["total_time"].is_f64());
    assert_eq!(f(&e["total_time"]), 90.0);
    assert_eq!(e["error"], json!(""));
    let mut extra: Vec<&str> = e["extra"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    extra.sort();
    assert_eq!(
        extra,
        [
            "connection_error",
            "error",
            "json_error",
            "long_prompt_error",
            "oom_error"
        ]
    );
    assert!(e["extra"]
        .as_object()
        .unwrap()
        .values()
        .all(|v| v == &json!(false)));
    // Ours, from run.json.
    assert_eq!(e["task"], json!("toy"));
    assert_eq!(e["agent"], json!("research"));
    assert_eq!(e["llm"]["main"], json!("gpt-4o"));
    assert_eq!(e["seed"], json!(3));
    assert_eq!(e["steps"], json!(1));
    assert_eq!(e["tokens"], json!({"input": 100, "output": 20}));
    assert_eq!(e["cost_usd"], json!(0.01));
    assert_eq!(e["exit_reason"], json!("final_answer"));
    assert_eq!(e["tampered"], json!(false));
    assert!(doc["summary"].is_array());
}

#[test]
fn original_mlagentbench_layout_is_read() {
    common::need_python(&["json"]);
    let bench = benchmarks();
    let logs = tempfile::tempdir().unwrap();
    // final_exp_logs/<exp>/<task>/<run>/ as the original's scripts lay out.
    let make = |rel: &str, namespace: Option<&str>, last: &str, finished: bool| {
        let run = logs.path().join(rel);
        let steps = json!({"steps": [
            {"action": {"name": "Execute Script", "args": {"script_name": "train.py"}}, "observation": "ok", "timestamp": 1.0},
            {"action": {"name": "Final Answer", "args": {"final_answer": "done"}}, "observation": "", "timestamp": 2.0}
        ], "low_level_steps": [], "action_infos": {}, "task_description": "x"});
        write(&run.join("env_log/trace.json"), &steps.to_string());
        snapshot(&run.join("env_log/traces/step_0_files"), Some("0.2"));
        snapshot(&run.join("env_log/traces/step_final_files"), Some(last));
        if finished {
            write(&run.join("env_log/overall_time.txt"), "123.5");
        } else {
            write(&run.join("env_log/error.txt"), "Traceback: something broke");
        }
        write(
            &run.join("agent_log/main_log"),
            "JSONDecodeError\n".repeat(3).as_str(),
        );
        if let Some(ns) = namespace {
            write(&run.join("log"), &format!("{ns}\nCUDA out of memory\n"));
        }
    };
    make(
        "final_exp_logs/no_retrieval/other-name/1690000001",
        Some("Namespace(task='toy', log_dir='x', agent_type='ResearchAgent', llm_name='claude-v1', fast_llm_name='claude-v1', edit_script_llm_name='claude-2')"),
        "0.6",
        true,
    );
    make(
        "final_exp_logs/sanity_check/toy/1690000002",
        None,
        "0.4",
        false,
    );
    make(
        "final_exp_logs/sanity_check/no-such-task/1690000003",
        None,
        "0.4",
        true,
    );

    let (out, doc) = eval(bench.path(), logs.path(), &["--eval-intermediate"]);
    ok(&out);
    let a = entry(
        &doc,
        logs.path(),
        "final_exp_logs/no_retrieval/other-name/1690000001",
    );
    assert_eq!(
        a["task"],
        json!("toy"),
        "the task comes from the runner's arguments in `log`"
    );
    assert_eq!(f(&a["final_score"]), 0.6);
    assert_eq!(a["score"], json!([0.2, 0.6]));
    assert_eq!(a["agent"], json!("research"));
    assert_eq!(
        a["llm"],
        json!({"main": "claude-v1", "fast": "claude-v1", "edit": "claude-2"})
    );
    assert_eq!(a["submitted_final_answer"], json!(true));
    assert_eq!(f(&a["total_time"]), 123.5);
    assert_eq!(a["steps"], json!(2));
    assert_eq!(a["extra"]["oom_error"], json!(true));
    assert_eq!(a["extra"]["json_error"], json!(true));
    assert_eq!(a["extra"]["error"], json!(false));

    let b = entry(
        &doc,
        logs.path(),
        "final_exp_logs/sanity_check/toy/1690000002",
    );
    assert_eq!(
        b["task"],
        json!("toy"),
        "the task comes from the folder name"
    );
    assert_eq!(f(&b["final_score"]), 0.4);
    assert_eq!(b["error"], json!("Traceback: something broke"));
    assert_eq!(b["extra"]["error"], json!(true));
    assert_eq!(f(&b["total_time"]), 0.0);

    let c = entry(
        &doc,
        logs.path(),
        "final_exp_logs/sanity_check/no-such-task/1690000003",
    );
    assert_eq!(f(&c["final_score"]), -1.0);
    let why = c["eval_errors"][0]["error"].as_str().unwrap();
    assert!(why.contains("--task"), "{why}");

    // With --task every original run is scored as that task.
    let (out, doc) = eval(bench.path(), logs.path(), &["--task", "toy"]);
    ok(&out);
    let c = entry(
        &doc,
        logs.path(),
        "final_exp_logs/sanity_check/no-such-task/1690000003",
    );
    assert_eq!(f(&c["final_score"]), 0.4);
}

#[test]
fn run_without_final_snapshot_scores_minus_one_and_fails() {
    common::need_python(&["json"]);
    let bench = benchmarks();
    let logs = tempfile::tempdir().unwrap();
    let mut r = MlabRun::new("toy-low");
    r.exit_reason = "agent_error";
    r.steps = vec![Some("5")];
    r.last = None;
    r.write(&logs.path().join("crashed"));
    let mut r = MlabRun::new("toy-low");
    r.last = Some(Some("8"));
    r.write(&logs.path().join("good"));

    let (out, doc) = eval(bench.path(), logs.path(), &[]);
    ok(&out);
    let c = entry(&doc, logs.path(), "crashed");
    assert_eq!(f(&c["final_score"]), -1.0);
    assert_eq!(c["score"], json!([]));
    assert_eq!(c["best_score"], Value::Null);
    assert_eq!(c["submitted_final_answer"], json!(false));
    assert!(c["eval_errors"][0]["error"]
        .as_str()
        .unwrap()
        .contains("no final snapshot"));
    // Against the declared baseline 10 (lower is better), 8 is a success
    // and the crashed run a failure: 1 of 2.
    let g = &doc["summary"][0];
    assert_eq!(g["baseline_source"], json!("task_toml"));
    assert_eq!(g["runs_without_final_score"], json!(1));
    assert_eq!(f(&g["success_rate"]["10"]["rate"]), 0.5);
    assert_eq!(g["success_rate"]["10"]["k"], json!(1));
}

#[test]
fn a_raising_eval_gives_an_error_entry_and_the_rest_is_scored() {
    common::need_python(&["json"]);
    let bench = benchmarks();
    let logs = tempfile::tempdir().unwrap();
    let mut r = MlabRun::new("toy");
    r.last = Some(Some("boom"));
    r.write(&logs.path().join("a"));
    let mut r = MlabRun::new("toy");
    r.last = Some(Some("0.9"));
    r.write(&logs.path().join("b"));
    let (out, doc) = eval(bench.path(), logs.path(), &["--jobs", "1"]);
    ok(&out);
    let a = entry(&doc, logs.path(), "a");
    assert_eq!(f(&a["final_score"]), -1.0);
    let err = a["eval_errors"][0]["error"].as_str().unwrap();
    assert!(
        err.contains("ValueError: the submission says boom"),
        "{err}"
    );
    assert!(
        err.contains("Traceback"),
        "the traceback's last lines are kept: {err}"
    );
    assert_eq!(f(&entry(&doc, logs.path(), "b")["final_score"]), 0.9);
    assert!(text(&out.stdout).contains("the submission says boom"));
}

#[test]
fn a_hanging_eval_is_stopped_and_its_worker_restarted() {
    common::need_python(&["json"]);
    let bench = benchmarks();
    let logs = tempfile::tempdir().unwrap();
    for (name, value) in [("a", "hang"), ("b", "0.5"), ("c", "0.7")] {
        let mut r = MlabRun::new("toy");
        r.last = Some(Some(value));
        r.write(&logs.path().join(name));
    }
    let started = std::time::Instant::now();
    let (out, doc) = eval(
        bench.path(),
        logs.path(),
        &["--jobs", "1", "--eval-timeout", "2"],
    );
    ok(&out);
    assert!(
        started.elapsed().as_secs() < 60,
        "the hang was not cut short"
    );
    let a = entry(&doc, logs.path(), "a");
    let err = a["eval_errors"][0]["error"].as_str().unwrap();
    assert!(err.contains("did not finish within 2 s"), "{err}");
    assert_eq!(f(&entry(&doc, logs.path(), "b")["final_score"]), 0.5);
    assert_eq!(f(&entry(&doc, logs.path(), "c")["final_score"]), 0.7);
}

#[test]
fn unchanged_snapshots_are_scored_once_across_runs_and_invocations() {
    common::need_python(&["json"]);
    let bench = benchmarks();
    let logs = tempfile::tempdir().unwrap();
    for name in ["r1", "r2", "r3"] {
        let mut r = MlabRun::new("toy");
        r.steps = vec![Some("0.1"), Some("0.1"), Some("0.2")];
        r.last = Some(Some("0.2"));
        r.write(&logs.path().join(name));
    }
    let (out, doc) = eval(bench.path(), logs.path(), &["--eval-intermediate"]);
    ok(&out);
    // 12 snapshots, 2 distinct submissions.
    assert_eq!(calls(bench.path(), "toy").len(), 2);
    assert_eq!(
        entry(&doc, logs.path(), "r3")["score"],
        json!([0.1, 0.1, 0.2, 0.2])
    );

    // A second invocation scores nothing, even with a torn line in the cache.
    let cache = logs.path().join(".mlab-eval-cache.jsonl");
    assert!(cache.is_file());
    let mut bytes = std::fs::read(&cache).unwrap();
    bytes.extend_from_slice(b"{\"key\":\"abc\",\"sc");
    std::fs::write(&cache, bytes).unwrap();
    let (out, doc) = eval(bench.path(), logs.path(), &["--eval-intermediate"]);
    ok(&out);
    assert_eq!(
        calls(bench.path(), "toy").len(),
        2,
        "cached snapshots were scored again"
    );
    assert_eq!(
        entry(&doc, logs.path(), "r1")["score"],
        json!([0.1, 0.1, 0.2, 0.2])
    );

    // A changed snapshot is scored; the others still are not.
    snapshot(
        &logs.path().join("r2/env_log/traces/step_final_files"),
        Some("0.3"),
    );
    let (out, doc) = eval(bench.path(), logs.path(), &["--eval-intermediate"]);
    ok(&out);
    let seen = calls(bench.path(), "toy");
    assert_eq!(seen.len(), 3);
    assert!(
        seen[2].ends_with("r2/env_log/traces/step_final_files"),
        "{seen:?}"
    );
    assert_eq!(f(&entry(&doc, logs.path(), "r2")["final_score"]), 0.3);

    // A changed eval.py invalidates every entry of its task.
    let eval_py = bench.path().join("toy/script/eval.py");
    write(&eval_py, &format!("{TOY_EVAL}\n# changed\n"));
    let (out, _) = eval(bench.path(), logs.path(), &[]);
    ok(&out);
    assert_eq!(
        calls(bench.path(), "toy").len(),
        5,
        "2 distinct final snapshots"
    );

    // --no-cache scores every snapshot.
    let (out, _) = eval(
        bench.path(),
        logs.path(),
        &["--eval-intermediate", "--no-cache"],
    );
    ok(&out);
    assert_eq!(calls(bench.path(), "toy").len(), 5 + 12);
}

#[test]
fn summary_success_rates_match_a_hand_computed_example() {
    common::need_python(&["json"]);
    let bench = benchmarks();
    let logs = tempfile::tempdir().unwrap();
    let base = |name: &str, v: &str| {
        let mut r = MlabRun::new("toy");
        r.agent = "baseline";
        r.llm = Value::Null;
        r.last = Some(Some(v));
        r.write(&logs.path().join(name));
    };
    // Baseline mean (0.4 + 0.5 + 0.6) / 3 = 0.5.
    base("b1", "0.4");
    base("b2", "0.5");
    base("b3", "0.6");
    // Research: +20%, +12%, +8% (but +40% at step 0), no final snapshot,
    // and an LLM outage that is counted apart.
    let agent = |name: &str, step0: &str, last: Option<&str>, exit: &str| {
        let mut r = MlabRun::new("toy");
        r.exit_reason = exit;
        r.steps = vec![Some(step0)];
        r.last = last.map(Some);
        r.write(&logs.path().join(name));
    };
    agent("a1", "0.1", Some("0.6"), "final_answer");
    agent("a2", "0.1", Some("0.56"), "final_answer");
    agent("a3", "0.7", Some("0.54"), "max_steps");
    agent("a4", "0.1", None, "agent_error");
    agent("a5", "0.1", Some("0.9"), "llm_error");
    // Lower is better, declared baseline 10: 8 is +20%, 9.5 is +5%, 12 is -20%.
    for (name, v) in [("l1", "8"), ("l2", "9.5"), ("l3", "12")] {
        let mut r = MlabRun::new("toy-low");
        r.last = Some(Some(v));
        r.write(&logs.path().join(name));
    }

    let (out, doc) = eval(bench.path(), logs.path(), &["--eval-intermediate"]);
    ok(&out);
    let groups = doc["summary"].as_array().unwrap();
    assert_eq!(groups.len(), 3, "{groups:?}");
    let find = |task: &str, config: &str| {
        groups
            .iter()
            .find(|g| g["task"] == json!(task) && g["config"] == json!(config))
            .unwrap_or_else(|| panic!("no group {task}/{config} in {groups:?}"))
    };
    let b = find("toy", "baseline");
    assert!((f(&b["baseline"]) - 0.5).abs() < 1e-12);
    assert_eq!(b["baseline_source"], json!("baseline_runs"));
    assert_eq!(b["baseline_runs"], json!(3));

    let r = find("toy", "research (gpt-4o)");
    assert_eq!(r["runs"], json!(5));
    assert_eq!(r["infra_failures"], json!(1));
    assert_eq!(r["evaluated_runs"], json!(4));
    assert_eq!(r["runs_without_final_score"], json!(1));
    let rate = |g: &Value, k: &str, t: &str| f(&g[k][t]["rate"]);
    assert_eq!(rate(r, "success_rate", "10"), 0.5);
    assert_eq!(rate(r, "success_rate", "5"), 0.75);
    assert_eq!(rate(r, "success_rate", "15"), 0.25);
    assert_eq!(rate(r, "success_rate", "30"), 0.0);
    assert_eq!(
        rate(r, "success_rate_any_step", "30"),
        0.25,
        "a3 reached 0.7 at step 0"
    );
    let imp = &r["average_improvement"];
    assert!(
        (f(&imp["mean"]) - (0.2 + 0.12 + 0.08) / 3.0).abs() < 1e-9,
        "{imp}"
    );
    assert_eq!(imp["n"], json!(3));
    let ci = imp["ci95"].as_array().unwrap();
    assert!(f(&ci[0]) <= f(&imp["mean"]) && f(&imp["mean"]) <= f(&ci[1]));

    let l = find("toy-low", "research (gpt-4o)");
    assert_eq!(l["direction"], json!("lower"));
    assert!((rate(l, "success_rate", "10") - 1.0 / 3.0).abs() < 1e-12);
    assert!(
        (rate(l, "success_rate", "5") - 1.0 / 3.0).abs() < 1e-12,
        "5% is not more than 5%"
    );

    // Intervals are seeded: a second (cached) invocation prints the same.
    let (out2, doc2) = eval(bench.path(), logs.path(), &["--eval-intermediate"]);
    ok(&out2);
    assert_eq!(doc["summary"], doc2["summary"]);
    assert_eq!(text(&out.stdout), text(&out2.stdout));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("success >10%") && stdout.contains("50% ["),
        "{stdout}"
    );
}

#[test]
fn an_eval_py_that_cannot_be_imported_fails_each_snapshot_with_the_reason() {
    common::need_python(&["json"]);
    let bench = benchmarks();
    write(
        &bench.path().join("toy/script/eval.py"),
        "import no_such_module_here\n",
    );
    let logs = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        MlabRun::new("toy").write(&logs.path().join(name));
    }
    let (out, doc) = eval(bench.path(), logs.path(), &[]);
    ok(&out);
    for name in ["a", "b"] {
        let err = entry(&doc, logs.path(), name)["eval_errors"][0]["error"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            err.contains("No module named 'no_such_module_here'"),
            "{err}"
        );
    }
    assert!(
        !logs.path().join(".mlab-eval-cache.jsonl").exists(),
        "errors are not cached"
    );
}

#[test]
fn a_folder_without_runs_is_a_clear_error() {
    let bench = benchmarks();
    let logs = tempfile::tempdir().unwrap();
    write(&logs.path().join("notes.txt"), "nothing here");
    let (out, _) = eval(bench.path(), logs.path(), &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("no runs found") && err.contains("run.json"),
        "{err}"
    );
    let missing: PathBuf = logs.path().join("nope");
    let (out, _) = eval(bench.path(), &missing, &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("is not a folder"));
}

#[test]
fn task_flag_selects_among_mlab_runs() {
    common::need_python(&["json"]);
    let bench = benchmarks();
    let logs = tempfile::tempdir().unwrap();
    MlabRun::new("toy").write(&logs.path().join("a"));
    MlabRun::new("toy-low").write(&logs.path().join("b"));
    let (out, doc) = eval(bench.path(), logs.path(), &["--task", "toy-low"]);
    ok(&out);
    let runs = doc["runs"].as_object().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(entry(&doc, logs.path(), "b")["task"], json!("toy-low"));
    let (out, _) = eval(bench.path(), logs.path(), &["--task", "nothing"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("the runs there are of"));
}

#[test]
fn slow_snapshots_are_spread_over_several_workers() {
    common::need_python(&["json"]);
    let bench = benchmarks();
    let logs = tempfile::tempdir().unwrap();
    let values: Vec<String> = (0..8).map(|i| format!("slow:0.{i}")).collect();
    for (i, v) in values.iter().enumerate() {
        let mut r = MlabRun::new("toy");
        r.last = Some(Some(v));
        r.write(&logs.path().join(format!("r{i}")));
    }
    let (out, doc) = eval(bench.path(), logs.path(), &["--jobs", "3"]);
    ok(&out);
    for i in 0..8 {
        let e = entry(&doc, logs.path(), &format!("r{i}"));
        assert_eq!(
            f(&e["final_score"]),
            format!("0.{i}").parse::<f64>().unwrap()
        );
    }
    assert_eq!(calls(bench.path(), "toy").len(), 8);
    let pids = worker_pids(bench.path(), "toy");
    assert!(
        pids.len() > 1,
        "every snapshot went to one worker: {pids:?}"
    );
    assert!(pids.len() <= 3, "more workers than --jobs: {pids:?}");
}
