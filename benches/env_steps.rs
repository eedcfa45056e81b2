//! What a step of the environment costs, trace and snapshot included.
//!
//! Runs `mlab run --agent actions` on a toy task with 50 cheap steps (List
//! Files and Inspect Script Lines, alternating), then again with a 200 MB
//! writable file in the workspace. A step's time is the gap between the
//! timestamps of consecutive steps in `events.jsonl`: it holds the previous
//! step's snapshot, event line and trace.json rewrite, plus this step's
//! action. Prints per-step times (mean, first 10 vs last 10, max) and the
//! disk used by `env_log/` against the unique bytes its snapshots hold.
//!
//! Run with `cargo bench --bench env_steps`. Nothing is asserted.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use mlab::testing::toy::ToyTask;
use sha2::{Digest, Sha256};

const STEPS: usize = 50;
const RUNS: usize = 3;
const MB: u64 = 1024 * 1024;

/// A toy task; with `big`, a 200 MB writable file in env/.
fn make_task(root: &Path, big: bool) {
    let script: String = (1..=60)
        .map(|i| format!("x_{i} = {i} * 2  # line {i}\n"))
        .collect();
    let t = ToyTask::new()
        .set("category", "c")
        .empty_env()
        .env("train.py", script)
        .env("train.csv", "a,b\n1,2\n")
        .env("data/readme.txt", "data\n")
        .read_only("./train.csv\n")
        .research_problem("Improve the model.\n")
        .write_in(&root.join("bench"));
    if big {
        let mut f =
            std::io::BufWriter::new(std::fs::File::create(t.join("env/model.bin")).unwrap());
        let block: Vec<u8> = (0..MB).map(|i| (i * 13 % 251) as u8).collect();
        for i in 0..200u64 {
            let mut b = block.clone();
            b[0] = i as u8;
            f.write_all(&b).unwrap();
        }
    }
    // Prepared data is old by the time a run starts.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for e in walkdir::WalkDir::new(t.join("env")).into_iter().flatten() {
        if e.file_type().is_file() {
            let f = std::fs::File::options().write(true).open(e.path()).unwrap();
            f.set_modified(old).unwrap();
        }
    }
}

fn actions_file(root: &Path) -> PathBuf {
    let p = root.join("actions.jsonl");
    let mut text = String::new();
    for i in 0..STEPS {
        let line = if i % 2 == 0 {
            serde_json::json!({"name": "List Files", "args": {"dir_path": "."}})
        } else {
            serde_json::json!({"name": "Inspect Script Lines",
                "args": {"script_name": "train.py", "start_line_number": 1, "end_line_number": 50}})
        };
        text.push_str(&format!("{line}\n"));
    }
    std::fs::write(&p, text).unwrap();
    p
}

struct RunResult {
    /// Seconds between consecutive steps.
    gaps: Vec<f64>,
    setup_s: f64,
    wall_s: f64,
    /// Disk under env_log/, and the part of it that is snapshots (traces/
    /// and store/).
    disk: u64,
    snap_disk: u64,
    snapshots: usize,
    unique: u64,
}

fn run_once(big: bool) -> RunResult {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    make_task(root, big);
    let actions = actions_file(root);
    let log = root.join("logs");
    let spawned = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_mlab"))
        .arg("--benchmarks-dir")
        .arg(root.join("bench"))
        .args([
            "run",
            "--task",
            "toy",
            "--agent",
            "actions",
            "--sandbox",
            "none",
        ])
        .arg("--actions")
        .arg(&actions)
        .arg("--log-dir")
        .arg(&log)
        .arg("--work-dir")
        .arg(root.join("work"))
        .output()
        .unwrap();
    let wall_s = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = std::fs::read_to_string(log.join("env_log/events.jsonl")).unwrap();
    let mut start_time = None;
    let mut stamps = Vec::new();
    for line in events.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        match v["event"].as_str() {
            Some("start") => {
                start_time = chrono::DateTime::parse_from_rfc3339(v["time"].as_str().unwrap()).ok()
            }
            Some("step") => stamps.push(v["timestamp"].as_f64().unwrap()),
            _ => {}
        }
    }
    assert_eq!(stamps.len(), STEPS);
    let gaps: Vec<f64> = stamps.windows(2).map(|w| w[1] - w[0]).collect();
    // From spawning mlab to its start event: process start, checks, the
    // workspace copy and hashing it into the store.
    let setup_s = start_time
        .map(|t| t.timestamp_micros() as f64 / 1e6 - spawned)
        .unwrap_or(f64::NAN);
    let env_log = log.join("env_log");
    RunResult {
        gaps,
        setup_s,
        wall_s,
        disk: disk_usage(&env_log),
        snap_disk: disk_usage_of(&[env_log.join("traces"), env_log.join("store")]),
        snapshots: std::fs::read_dir(env_log.join("traces")).unwrap().count(),
        unique: unique_bytes(&env_log.join("traces")),
    }
}

/// Blocks used under `dir`, each inode once (as `du`).
fn disk_usage(dir: &Path) -> u64 {
    disk_usage_of(&[dir.to_path_buf()])
}

fn disk_usage_of(dirs: &[PathBuf]) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0;
    for dir in dirs {
        for e in walkdir::WalkDir::new(dir).into_iter().flatten() {
            let m = e.metadata().unwrap();
            if seen.insert((m.dev(), m.ino())) {
                total += m.blocks() * 512;
            }
        }
    }
    total
}

/// Bytes of distinct file contents across all snapshots.
fn unique_bytes(traces: &Path) -> u64 {
    let mut by_inode: HashMap<(u64, u64), ()> = HashMap::new();
    let mut contents: HashMap<String, u64> = HashMap::new();
    for e in walkdir::WalkDir::new(traces).into_iter().flatten() {
        if !e.file_type().is_file() {
            continue;
        }
        let m = e.metadata().unwrap();
        // Hash each inode once; distinct inodes with equal content count once.
        if by_inode.insert((m.dev(), m.ino()), ()).is_some() {
            continue;
        }
        let mut f = std::fs::File::open(e.path()).unwrap();
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        contents.insert(hex::encode(h.finalize()), m.len());
    }
    contents.values().sum()
}

fn ms(s: f64) -> String {
    format!("{:.3} ms", s * 1000.0)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn report(label: &str, big: bool) {
    let runs: Vec<RunResult> = (0..RUNS).map(|_| run_once(big)).collect();
    println!("\n== {label} ({STEPS} steps, median of {RUNS} runs) ==");
    let per = |f: &dyn Fn(&RunResult) -> f64| median(runs.iter().map(f).collect());
    println!("time per step, mean       {}", ms(per(&|r| mean(&r.gaps))));
    println!(
        "  first 10 steps          {}",
        ms(per(&|r| mean(&r.gaps[..10])))
    );
    println!(
        "  last 10 steps           {}",
        ms(per(&|r| mean(&r.gaps[r.gaps.len() - 10..])))
    );
    println!(
        "  slowest step            {}",
        ms(per(&|r| r.gaps.iter().copied().fold(0.0, f64::max)))
    );
    println!("setup before step 0       {}", ms(per(&|r| r.setup_s)));
    println!("whole mlab process        {}", ms(per(&|r| r.wall_s)));
    let r = &runs[0];
    let mb = |b: u64| b as f64 / MB as f64;
    println!(
        "env_log/ on disk          {:.3} MB for {:.3} MB of unique snapshot bytes ({:.3}x)",
        mb(r.disk),
        mb(r.unique),
        r.disk as f64 / r.unique.max(1) as f64
    );
    println!(
        "  snapshots and store     {:.3} MB ({} snapshot folders; each folder costs a directory block)",
        mb(r.snap_disk),
        r.snapshots
    );
    println!(
        "  trace.json, events, logs {:.3} MB",
        mb(r.disk - r.snap_disk)
    );
}

fn main() {
    // Only `cargo bench` (which passes --bench) measures; a test build of
    // the benches (`cargo test --all-targets`) does nothing.
    if !std::env::args().any(|a| a == "--bench") {
        println!("env_steps: run with `cargo bench --bench env_steps`");
        return;
    }
    println!("mlab environment step benchmark (release build, --sandbox none)");
    report("cheap steps, small workspace", false);
    report("cheap steps, 200 MB writable file in the workspace", true);
}
