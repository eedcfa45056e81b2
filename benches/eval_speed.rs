//! How fast `mlab eval --eval-intermediate` scores a realistic log folder:
//! 20 runs x 50 steps (plus each final snapshot), where 90% of the step
//! snapshots repeat the previous step's submission. The toy task's eval.py
//! imports pandas when the task Python has it, as the real tasks do, and
//! scores 1,000 predictions against an answer file.
//!
//! Prints: cold (empty cache), warm (full cache), and the cache disabled
//! with --jobs 1 and with the default jobs; plus, for reference, the
//! original's way (one Python process calling get_score on every snapshot
//! in turn). Run with `cargo bench --bench eval_speed`.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mlab::testing::toy::ToyTask;

/// The task Python, as mlab finds it.
fn python() -> PathBuf {
    mlab::python::resolve(None).path
}

/// Whether the task Python can import all of `modules`.
fn python_has(modules: &[&str]) -> bool {
    let code = modules
        .iter()
        .map(|m| format!("import {m}"))
        .collect::<Vec<_>>()
        .join("; ");
    Command::new(python())
        .args(["-c", &code])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

const RUNS: usize = 20;
const STEPS: usize = 50;
const ROWS: usize = 1000;

const EVAL_PANDAS: &str = r#"
import os
import pandas as pd

ANSWERS = pd.read_csv("answer.csv")

def get_score(folder):
    sub = pd.read_csv(os.path.join(folder, "submission.csv"))
    merged = ANSWERS.merge(sub, on="id", how="left", suffixes=("", "_pred"))
    return float((merged["label"] == merged["label_pred"]).mean())
"#;

const EVAL_STDLIB: &str = r#"
import csv
import os

with open("answer.csv") as f:
    ANSWERS = {r["id"]: r["label"] for r in csv.DictReader(f)}

def get_score(folder):
    with open(os.path.join(folder, "submission.csv")) as f:
        sub = {r["id"]: r["label"] for r in csv.DictReader(f)}
    return sum(sub.get(k) == v for k, v in ANSWERS.items()) / len(ANSWERS)
"#;

fn submission(run: usize, version: usize) -> String {
    let mut s = String::from("id,label\n");
    for i in 0..ROWS {
        // Each (run, version) gets its own predictions (a hash of all three).
        let mut z = (i as u64) << 32 ^ (run as u64) << 16 ^ version as u64;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let label = (z ^ (z >> 31)).is_multiple_of(3);
        s.push_str(&format!("{i},{}\n", u8::from(label)));
    }
    s
}

/// Returns (benchmarks dir, log folder, number of snapshots).
fn build(root: &Path, pandas: bool) -> (PathBuf, PathBuf, usize) {
    let bench = root.join("benchmarks");
    let mut answers = String::from("id,label\n");
    for i in 0..ROWS {
        answers.push_str(&format!("{i},{}\n", u8::from(i % 3 == 0)));
    }
    ToyTask::new()
        .named("speedtoy")
        .set("description", "d")
        .set("metric", "accuracy")
        .empty_env()
        .env("train.py", "print('train')\n")
        .no_read_only()
        .without("script/research_problem.txt")
        .eval_py(if pandas { EVAL_PANDAS } else { EVAL_STDLIB })
        .script("answer.csv", answers)
        .write_in(&bench);

    let logs = root.join("logs");
    let mut snapshots = 0;
    for r in 0..RUNS {
        let run = logs.join(format!("run-{r:02}"));
        write(
            &run.join("run.json"),
            &format!(
                "{{\"task\":\"speedtoy\",\"agent\":\"research\",\"llm\":{{\"main\":\"m\",\"fast\":\"m\",\"edit\":\"m\"}},\
                 \"seed\":{r},\"steps\":{STEPS},\"exit_reason\":\"final_answer\",\"error\":null}}"
            ),
        );
        write(&run.join("env_log/trace.json"), "{\"steps\":[]}");
        write(&run.join("env_log/overall_time.txt"), "60");
        write(&run.join("agent_log/main_log"), "");
        // The submission changes at every 10th step: 90% are unchanged.
        for s in 0..STEPS {
            let snap = run.join(format!("env_log/traces/step_{s}_files"));
            write(&snap.join("submission.csv"), &submission(r, s / 10));
            write(&snap.join("train.py"), "print('train')\n");
            snapshots += 1;
        }
        let last = run.join("env_log/traces/step_final_files");
        write(
            &last.join("submission.csv"),
            &submission(r, (STEPS - 1) / 10),
        );
        snapshots += 1;
    }
    (bench, logs, snapshots)
}

fn eval(bench: &Path, logs: &Path, py: &Path, extra: &[&str]) -> Duration {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_mlab"))
        .arg("--benchmarks-dir")
        .arg(bench)
        .args(["eval", "--eval-intermediate", "--log-folder"])
        .arg(logs)
        .arg("--python")
        .arg(py)
        .args(extra)
        .output()
        .expect("mlab could not start");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "mlab eval failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// The original's approach: import eval.py once, call get_score on every
/// snapshot in one process (its own start-up and import included).
fn original_style(bench: &Path, logs: &Path, py: &Path) -> Duration {
    let code = r#"
import importlib.util, os, sys
script = sys.argv[1]
os.chdir(os.path.dirname(script))
spec = importlib.util.spec_from_file_location("ev", script)
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
for run in sorted(os.listdir(sys.argv[2])):
    if not run.startswith("run-"):
        continue
    traces = os.path.join(sys.argv[2], run, "env_log", "traces")
    for snap in sorted(os.listdir(traces)):
        m.get_score(os.path.join(traces, snap))
"#;
    let start = Instant::now();
    let out = Command::new(py)
        .args(["-c", code])
        .arg(bench.join("speedtoy/script/eval.py"))
        .arg(logs)
        .output()
        .expect("python could not start");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let py = python();
    let pandas = python_has(&["pandas"]);
    let dir = tempfile::tempdir().unwrap();
    let (bench, logs, snapshots) = build(dir.path(), pandas);
    let cache = logs.join(".mlab-eval-cache.jsonl");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "eval_speed: {RUNS} runs x {STEPS} steps + final = {snapshots} snapshots, 90% unchanged; \
         eval.py {}; {cores} core(s); python {}",
        if pandas {
            "imports pandas"
        } else {
            "stdlib only (pandas missing)"
        },
        py.display()
    );

    let cold: Vec<Duration> = (0..3)
        .map(|_| {
            let _ = std::fs::remove_file(&cache);
            eval(&bench, &logs, &py, &[])
        })
        .collect();
    let warm: Vec<Duration> = (0..5).map(|_| eval(&bench, &logs, &py, &[])).collect();
    let no_cache_1 = eval(&bench, &logs, &py, &["--no-cache", "--jobs", "1"]);
    let no_cache_n = eval(&bench, &logs, &py, &["--no-cache"]);
    let original = median((0..2).map(|_| original_style(&bench, &logs, &py)).collect());

    let per = |d: Duration| d.as_secs_f64() * 1000.0 / snapshots as f64;
    println!(
        "  cold, empty cache (default jobs)   {:>8}  (median of 3; min {})",
        ms(median(cold.clone())),
        ms(*cold.iter().min().unwrap())
    );
    println!(
        "  warm, full cache                   {:>8}  (median of 5; min {})",
        ms(median(warm.clone())),
        ms(*warm.iter().min().unwrap())
    );
    println!(
        "  --no-cache --jobs 1                {:>8}  ({:.2} ms per snapshot)",
        ms(no_cache_1),
        per(no_cache_1)
    );
    println!(
        "  --no-cache, default jobs           {:>8}  ({:.2} ms per snapshot)",
        ms(no_cache_n),
        per(no_cache_n)
    );
    println!(
        "  original style, one process        {:>8}  ({:.2} ms per snapshot)",
        ms(original),
        per(original)
    );
    println!(
        "  distinct submissions scored cold: {}",
        std::fs::read_to_string(&cache).map_or(0, |t| t.lines().count())
    );
    println!(
        "  the original measured 2.3 s / 310 snapshots = {:.2} ms per snapshot; at that rate this folder takes {:.1} s",
        2300.0 / 310.0,
        2.3 / 310.0 * snapshots as f64
    );
}
