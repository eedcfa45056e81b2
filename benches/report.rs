//! How fast `mlab report` is on a large, realistic log folder, and how fast
//! a long run's page opens in a browser.
//!
//! 1. 100 runs x 50 steps: 5 tasks x 10 configurations x 2 seeds, each run
//!    with trace.json, a snapshot per step in mlab's layout (hard links
//!    into one content store; train.py changes every 5th step, a 2 MB data
//!    file never does), llm_calls.jsonl with a 6 KB prompt per step, and
//!    eval.json / eval_summary.json written directly (so no Python runs).
//!    Prints the wall time and peak RSS of `mlab report` (target < 5 s).
//! 2. One run of 500 steps: the time headless Chromium takes to show the
//!    run page's first steps (target < 1 s), measured in the page from
//!    navigation start to the first page of steps inserted
//!    (`data-shown-ms`), and the whole `chromium --dump-dom` for reference.
//!
//! Run with `cargo bench --bench report`. Set MLAB_REPORT_BENCH_KEEP=DIR to
//! keep the report folders for looking at.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::json;

const TASKS: usize = 5;
const CONFIGS: usize = 10;
const SEEDS: usize = 2;
const STEPS: usize = 50;

fn write(p: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

/// A content-addressed store file (hard-linked into snapshots).
fn stored(store: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = store.join(name);
    if !p.exists() {
        write(&p, bytes);
    }
    p
}

fn model(c: usize) -> String {
    format!("openai:model-{c}-with-a-long-name")
}

fn config(c: usize) -> String {
    mlab::eval::config_label(Some("research"), &json!({"main": model(c)}))
}

fn train_py(version: usize) -> String {
    let mut s = String::from(
        "import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n\n",
    );
    for i in 0..120 {
        s.push_str(&format!("FEATURE_{i} = {}\n", (i * 7 + version) % 13));
    }
    s.push_str(&format!(
        "EPOCHS = {}\nprint('accuracy', 0.{})\n",
        version + 1,
        50 + version
    ));
    s
}

/// One run of `steps` steps in mlab's layout.
fn make_run(dir: &Path, store: &Path, task: &str, c: usize, seed: usize, steps: usize) -> f64 {
    let t0 = 1_700_000_000.0 + (seed * 1000) as f64;
    let data = stored(store, "data", &vec![b'x'; 2 << 20]);
    let mut trace_steps = Vec::new();
    let mut calls = String::new();
    let prompt = "You are a careful research assistant. ".repeat(160);
    for i in 0..steps {
        let ts = t0 + i as f64 * 10.0;
        let (name, args) = if i % 5 == 4 {
            (
                "Edit Script (AI)",
                json!({"script_name": "train.py", "edit_instruction": format!("change step {i}"), "save_name": "train.py"}),
            )
        } else {
            ("Execute Script", json!({"script_name": "train.py"}))
        };
        trace_steps.push(json!({
            "action": {"name": name, "args": args},
            "observation": format!("epoch 1 loss 0.5\n{}accuracy 0.{}\n", "progress line\n".repeat(20), 50 + i),
            "timestamp": ts,
        }));
        let reply = format!(
            "Reflection: step {i} went fine.\nResearch Plan and Status: 1. baseline 2. **improve**\nFact Check: confirmed.\nThought: try step {i}\nAction: {name}\nAction Input: {}",
            args
        );
        let time = chrono::DateTime::from_timestamp((ts - 5.0) as i64, 0)
            .unwrap()
            .to_rfc3339();
        calls.push_str(
            &json!({
                "time": time, "role": "main", "model": model(c), "provider": "openai",
                "request": {"messages": [{"role": "user", "content": format!("{prompt} step {i}")}], "stop": [], "max_tokens": 2000, "temperature": 0.5},
                "response": reply, "usage": {"input_tokens": 1500, "output_tokens": 120, "estimated": false},
                "latency_s": 2.0, "retries": 0, "cost_usd": 0.01, "error": null, "error_kind": null, "error_detail": null
            })
            .to_string(),
        );
        calls.push('\n');
        let snap = dir.join(format!("env_log/traces/step_{i}_files"));
        std::fs::create_dir_all(snap.join("data")).unwrap();
        let version = i / 5;
        let train = stored(
            store,
            &format!("train-{version}"),
            train_py(version).as_bytes(),
        );
        std::fs::hard_link(train, snap.join("train.py")).unwrap();
        std::fs::hard_link(&data, snap.join("data/train.csv")).unwrap();
        let sub = stored(
            store,
            &format!("sub-{task}-{c}-{seed}-{version}"),
            format!("id,y\n1,0.{}\n", 50 + version).as_bytes(),
        );
        std::fs::hard_link(sub, snap.join("submission.csv")).unwrap();
    }
    write(
        &dir.join("env_log/trace.json"),
        serde_json::to_string_pretty(&json!({"steps": trace_steps, "low_level_steps": [], "action_infos": {}, "task_description": "x"})).unwrap(),
    );
    write(&dir.join("agent_log/llm_calls.jsonl"), calls);
    write(
        &dir.join("run.json"),
        json!({"task": task, "agent": "research", "config": config(c), "llm": {"main": model(c)},
               "seed": seed, "steps": steps, "exit_reason": "final_answer", "cost_usd": 0.01 * steps as f64,
               "tokens": {"input": 1500 * steps, "output": 120 * steps}})
        .to_string(),
    );
    0.5 + (c as f64) * 0.02 + seed as f64 * 0.01
}

/// eval.json entries and eval_summary.json rows, as eval writes them.
fn write_eval(log: &Path, runs: &[(PathBuf, String, usize, usize, f64)], steps: usize) {
    let mut entries = serde_json::Map::new();
    for (dir, task, c, _seed, score) in runs {
        let scores: Vec<f64> = (0..steps)
            .step_by(5)
            .map(|s| 0.5 + s as f64 / 1000.0)
            .collect();
        entries.insert(
            dir.join("env_log/trace.json").display().to_string(),
            json!({
                "path": dir.join("env_log/trace.json").display().to_string(),
                "summary": "", "rubric_questions": {}, "score": scores.iter().chain([score]).collect::<Vec<_>>(),
                "score_steps": (0..steps).step_by(5).collect::<Vec<_>>(), "submitted_final_answer": true,
                "final_score": score, "total_time": 600.0, "error": "",
                "extra": {"oom_error": false, "connection_error": false, "error": false, "json_error": false, "long_prompt_error": false},
                "task": task, "agent": "research", "llm": {"main": model(*c)}, "seed": 0, "steps": steps,
                "tokens": {"input": 1500 * steps, "output": 120 * steps}, "cost_usd": 0.01 * steps as f64,
                "exit_reason": "final_answer", "tampered": false, "best_score": score,
                "step_scores": scores, "graded_final_score": score, "eval_errors": []
            }),
        );
    }
    write(
        &log.join("eval.json"),
        serde_json::to_string_pretty(&entries).unwrap(),
    );
    let mut rows = Vec::new();
    let mut tasks: Vec<&String> = runs.iter().map(|r| &r.1).collect();
    tasks.dedup();
    for task in tasks {
        for c in 0..CONFIGS {
            let members: Vec<_> = runs.iter().filter(|r| &r.1 == task && r.2 == c).collect();
            if members.is_empty() {
                continue;
            }
            let n = members.len();
            let k = members.iter().filter(|r| r.4 > 0.55).count();
            let rate = |k: usize| json!({"k": k, "n": n, "rate": k as f64 / n as f64, "ci95": mlab::eval::wilson(k, n)});
            let by =
                json!({"5": rate(k), "10": rate(k), "15": rate(k), "20": rate(k), "30": rate(k)});
            let imp: Vec<f64> = members.iter().map(|r| (r.4 - 0.5) / 0.5).collect();
            let mean = imp.iter().sum::<f64>() / n as f64;
            rows.push(json!({
                "task": task, "config": config(c), "agent": "research", "llm": {"main": model(c)},
                "direction": "higher", "runs": n, "infra_failures": 0, "evaluated_runs": n,
                "runs_without_final_score": 0, "baseline": 0.5, "baseline_source": "task_toml", "baseline_runs": 0,
                "final_score": {"mean": 0.5, "ci95": null, "n": n},
                "success_rate": by, "success_rate_any_step": by,
                "average_improvement": {"mean": mean, "ci95": mlab::eval::bootstrap_ci(&imp, 7), "n": n},
                "cost_usd": {"total": 0.5 * n as f64, "mean": 0.5, "n": n},
                "tokens": {"total": (1620 * steps * n) as f64, "mean": (1620 * steps) as f64, "n": n},
                "wall_time_s": {"total": 600.0 * n as f64, "mean": 600.0, "n": n},
            }));
        }
    }
    write(
        &log.join("eval_summary.json"),
        serde_json::to_string_pretty(&json!({"mlab_version": "bench", "log_folder": log.display().to_string(),
            "eval_intermediate": true, "runs": runs.len(), "snapshots": 0, "method": {}, "summary": rows}))
        .unwrap(),
    );
}

/// `mlab report` as a child: wall time, and its peak RSS in MB.
fn report(log: &Path) -> (f64, f64) {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_mlab"))
        .args(["report", "--log-folder"])
        .arg(log)
        .output()
        .unwrap();
    let wall = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "mlab report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("running eval first"),
        "the bench's eval files must count as current"
    );
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    (wall, usage.max_rss() as f64 / 1024.0)
}

fn main() {
    let root = tempfile::tempdir().unwrap();
    let store = root.path().join("store");

    // 1. 100 runs x 50 steps.
    let log = root.path().join("logs");
    let t = Instant::now();
    let mut runs = Vec::new();
    for ti in 0..TASKS {
        let task = format!("task-{ti}-with-a-fairly-long-name");
        for c in 0..CONFIGS {
            for seed in 0..SEEDS {
                let dir = log
                    .join(&task)
                    .join(format!("config-{c}"))
                    .join(format!("seed-{seed}"));
                let score = make_run(&dir, &store, &task, c, seed, STEPS);
                runs.push((dir, task.clone(), c, seed, score));
            }
        }
    }
    write_eval(&log, &runs, STEPS);
    println!(
        "report bench: built {} runs x {STEPS} steps in {:.1} s ({:.0} MB of llm_calls)",
        runs.len(),
        t.elapsed().as_secs_f64(),
        runs.iter()
            .map(|r| std::fs::metadata(r.0.join("agent_log/llm_calls.jsonl"))
                .unwrap()
                .size())
            .sum::<u64>() as f64
            / 1e6
    );
    let (wall, rss) = report(&log);
    let files = walkdir::WalkDir::new(log.join("report"))
        .into_iter()
        .count();
    println!(
        "  mlab report, {} runs x {STEPS} steps: {wall:.2} s wall, peak RSS {rss:.0} MB, {files} files written (target < 5 s)",
        runs.len()
    );

    // 2. One run of 500 steps in a browser.
    let long = root.path().join("long");
    let dir = long.join("run");
    let score = make_run(&dir, &store, "task-0", 0, 0, 500);
    write_eval(&long, &[(dir, "task-0".into(), 0, 0, score)], 500);
    let (wall, _) = report(&long);
    println!("  mlab report, 1 run x 500 steps: {wall:.2} s wall");
    if let Some(keep) = std::env::var_os("MLAB_REPORT_BENCH_KEEP") {
        let keep = PathBuf::from(keep);
        let _ = std::fs::remove_dir_all(&keep);
        std::fs::create_dir_all(&keep).unwrap();
        Command::new("cp")
            .arg("-r")
            .arg(log.join("report"))
            .arg(keep.join("big"))
            .status()
            .unwrap();
        Command::new("cp")
            .arg("-r")
            .arg(long.join("report"))
            .arg(keep.join("long"))
            .status()
            .unwrap();
    }
    let Some(chrome) = mlab::testing::browser::chromium() else {
        println!("  chromium: not installed (./install.sh --browser); page load not measured");
        return;
    };
    let page = long.join("report/runs/1.html");
    let mut shown = Vec::new();
    let mut walls = Vec::new();
    for _ in 0..3 {
        let profile = tempfile::tempdir().unwrap();
        let dom_file = root.path().join("dom.html");
        let t = Instant::now();
        let status = mlab::testing::browser::headless(&chrome, profile.path())
            .arg("--dump-dom")
            .arg(format!("file://{}", page.display()))
            .stdout(std::fs::File::create(&dom_file).unwrap())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        walls.push(t.elapsed().as_secs_f64());
        assert!(status.success());
        let dom = std::fs::read_to_string(&dom_file).unwrap();
        let ms: f64 = dom
            .split("data-shown-ms=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("the steps were not shown: {}", &dom[..dom.len().min(2000)]));
        assert!(dom.contains("id=\"step-49\""), "first page incomplete");
        shown.push(ms / 1000.0);
    }
    let best = |v: &[f64]| v.iter().cloned().fold(f64::INFINITY, f64::min);
    println!(
        "  chromium, 500-step run page: first 50 steps shown {:.3} s after navigation (best of 3; {:?}) (target < 1 s); \
         whole headless chromium --dump-dom {:.2} s including browser start",
        best(&shown),
        shown.iter().map(|s| format!("{s:.3}")).collect::<Vec<_>>(),
        best(&walls)
    );
}
