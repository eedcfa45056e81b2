//! Studies through the local queue, measured on the real binary (each run
//! is a child `mlab run-one`, as `mlab run --runs N` starts it).
//!
//! Printed figures:
//! 1. 32 runs at once of a scripted research agent on the offline toy task
//!    (`STEPS` List Files steps each): mlab's own peak RSS per run (VmHWM
//!    of each run-one process, sampled while it runs) and its CPU seconds
//!    per step (the run-one process's own utime + stime, read from
//!    /proc/<pid>/stat before it is reaped, so the Python it starts is
//!    not counted; start-up included). Targets: under 15 MB per run, under
//!    2 ms of CPU per step.
//! 2. Packing: 16 GPU runs of uneven known lengths (train.py sleeps a time
//!    set per seed) on devices 0,1,2,3, one run per device: the makespan
//!    against the ideal schedule's lower bound max(longest, total / 4) and
//!    against LPT (longest first) over the measured run times. The queue
//!    starts runs in plan order (run lengths are unknown in general); the
//!    figure is printed for the seeds in a shuffled order of lengths and
//!    for them sorted longest first. Target: within 10% of the ideal.
//!
//!    Then the queue's own ordering: 8 GPU tasks of uneven lengths whose
//!    seed 0 finished earlier in the folder, extended by 2 seeds each; the
//!    queue starts the 16 new runs longest first by its estimate (the mean
//!    length of the finished runs of the same task and configuration),
//!    against the same runs with nothing finished (plan order).
//!
//! Run: `cargo bench --bench study`.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use mlab::study::plan::{self, ConfigSpec, PlanSpec, TaskSpec};
use mlab::study::queue::{self, Active, Ended, Observer, QueueConfig, Totals};
use mlab::testing::scripted::{self, research_reply};
use mlab::testing::toy::ToyTask;
use serde_json::json;

const STEPS: usize = 30;
const RUNS: usize = 32;

struct Quiet;

impl Observer for Quiet {
    fn started(&mut self, _: &plan::PlannedRun, _: Option<&str>, _: u32) {}
    fn tick(&mut self, _: &[Active<'_>], _: &Totals) {}
    fn ended(&mut self, run: &plan::PlannedRun, e: &Ended, _: &Totals) {
        if e.code != Some(0) {
            let log = std::fs::read_to_string(run.log_dir.join("run-one.log")).unwrap_or_default();
            panic!("run {} failed ({:?}):\n{log}", run.id, e.code);
        }
    }
    fn note(&mut self, text: &str) {
        println!("note: {text}");
    }
}

fn python() -> PathBuf {
    let venv = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".local/share/mlab/venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// Runs a plan of `seeds` runs of the toy task in `root` through the queue.
fn study(
    root: &Path,
    gpu: bool,
    seeds: Vec<u64>,
    replies: &[serde_json::Value],
    devices: &[&str],
    jobs: usize,
) -> queue::Summary {
    study_of(root, &["toy"], gpu, seeds, replies, devices, jobs)
}

/// [`study`] over the tasks `tasks` (folders in `root/bench`).
fn study_of(
    root: &Path,
    tasks: &[&str],
    gpu: bool,
    seeds: Vec<u64>,
    replies: &[serde_json::Value],
    devices: &[&str],
    jobs: usize,
) -> queue::Summary {
    let model = scripted::write(&root.join("model.jsonl"), replies);
    let spec = PlanSpec {
        exp_dir: root.join("exp"),
        global_args: vec![
            "--benchmarks-dir".into(),
            root.join("bench").display().to_string(),
        ],
        tasks: tasks
            .iter()
            .map(|t| TaskSpec {
                name: t.to_string(),
                gpu,
            })
            .collect(),
        configs: vec![ConfigSpec {
            name: "research (scripted)".into(),
            agent: "research".into(),
            llm: Some(model.clone()),
            args: vec!["--agent=research".into(), format!("--llm={model}")],
        }],
        seeds,
        common_args: vec![
            "--sandbox=none".into(),
            format!("--python={}", python().display()),
            format!("--max-steps={}", STEPS + 5),
        ],
    };
    let plan = plan::build(&spec).unwrap().write().unwrap();
    let cfg = QueueConfig {
        exe: PathBuf::from(env!("CARGO_BIN_EXE_mlab")),
        jobs,
        devices: devices.iter().map(|d| d.to_string()).collect(),
        runs_per_device: 1,
        retry_infra: 0,
        max_cost: None,
        stop: Arc::new(AtomicBool::new(false)),
        abort: Arc::new(AtomicBool::new(false)),
    };
    queue::run(&plan, &plan.path(), &cfg, &mut Quiet).unwrap()
}

/// This process's own CPU seconds (user + system) so far: the queue's,
/// while it runs the study.
fn own_cpu() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    let u = getrusage(UsageWho::RUSAGE_SELF).unwrap();
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    secs(u.user_time()) + secs(u.system_time())
}

/// The 32 runs of `steps` steps each: (steps, mlab CPU seconds, peak RSS
/// per run in MB, mean and max, wall seconds, the queue's own CPU seconds).
fn overhead_of(steps: usize) -> (usize, f64, f64, f64, f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    ToyTask::new().write_in(&dir.path().join("bench"));
    let mut replies: Vec<_> = (0..steps - 1)
        .map(|i| research_reply(&format!("s{i}"), "List Files", json!({"dir_path": "."})))
        .collect();
    replies.push(research_reply(
        "end",
        "Final Answer",
        json!({"final_answer": "done"}),
    ));
    let queue_cpu = own_cpu();
    let s = study(
        dir.path(),
        false,
        (0..RUNS as u64).collect(),
        &replies,
        &[],
        RUNS,
    );
    let queue_cpu = own_cpu() - queue_cpu;
    assert_eq!(s.ended.len(), RUNS);
    let done: usize = s.ended.iter().map(|e| e.steps).sum();
    let cpu: f64 = s.ended.iter().map(|e| e.cpu_seconds).sum();
    let rss: Vec<f64> = s
        .ended
        .iter()
        .map(|e| e.peak_rss_kb as f64 / 1024.0)
        .collect();
    let mean = rss.iter().sum::<f64>() / rss.len() as f64;
    let max = rss.iter().cloned().fold(0.0, f64::max);
    (done, cpu, mean, max, s.wall.as_secs_f64(), queue_cpu)
}

fn overhead() {
    let (steps, cpu, mean, max, wall, queue_cpu) = overhead_of(STEPS);
    println!("{RUNS} runs at once, {STEPS} steps each ({steps} steps), wall {wall:.1} s");
    println!(
        "  the queue's own CPU (mlab run, progress reading included): {:.2} s, {:.2} ms per step of the runs",
        queue_cpu,
        queue_cpu / steps as f64 * 1000.0
    );
    println!("  peak RSS of mlab per run: mean {mean:.1} MB, max {max:.1} MB (target < 15 MB)");
    println!(
        "  mlab CPU per step, start-up included: {:.2} ms",
        cpu / steps as f64 * 1000.0
    );
    // The same with 2 steps a run: the difference is what the steps cost.
    let (short_steps, short_cpu, ..) = overhead_of(2);
    println!(
        "  mlab CPU per run for start-up and close (2-step runs): {:.0} ms",
        (short_cpu - (cpu - short_cpu) / (steps - short_steps) as f64 * short_steps as f64)
            / RUNS as f64
            * 1000.0
    );
    println!(
        "  mlab CPU per step, start-up excluded: {:.2} ms (target < 2 ms)",
        (cpu - short_cpu) / (steps - short_steps) as f64 * 1000.0
    );
}

/// The makespan of LPT (longest first onto the least loaded machine).
fn lpt(mut jobs: Vec<f64>, m: usize) -> f64 {
    jobs.sort_by(|a, b| b.total_cmp(a));
    let mut load = vec![0.0f64; m];
    for j in jobs {
        let i = (0..m).min_by(|&a, &b| load[a].total_cmp(&load[b])).unwrap();
        load[i] += j;
    }
    load.into_iter().fold(0.0, f64::max)
}

fn packing(label: &str, lengths: &[f64]) {
    let dir = tempfile::tempdir().unwrap();
    let table: Vec<String> = lengths.iter().map(|l| format!("{l}")).collect();
    let train = format!(
        "import os, re, time\n\
         seed = int(re.search(r'/(\\d+)\\.workspace/', os.getcwd() + '/').group(1))\n\
         time.sleep([{}][seed])\n",
        table.join(", ")
    );
    ToyTask::new()
        .env("train.py", train)
        .set_raw("requires", "{ gpu = true }")
        .write_in(&dir.path().join("bench"));
    let replies = [
        research_reply("run", "Execute Script", json!({"script_name": "train.py"})),
        research_reply("end", "Final Answer", json!({"final_answer": "done"})),
    ];
    let s = study(
        dir.path(),
        true,
        (0..lengths.len() as u64).collect(),
        &replies,
        &["0", "1", "2", "3"],
        16,
    );
    let walls: Vec<f64> = s.ended.iter().map(|e| e.wall.as_secs_f64()).collect();
    let total: f64 = walls.iter().sum();
    let longest = walls.iter().cloned().fold(0.0, f64::max);
    let bound = longest.max(total / 4.0);
    let makespan = s.ended.iter().map(|e| e.ended_at).fold(0.0, f64::max);
    let best = lpt(walls.clone(), 4);
    println!(
        "packing, {label}: makespan {makespan:.2} s; ideal lower bound {bound:.2} s ({:+.1}%), LPT {best:.2} s ({:+.1}%)",
        (makespan / bound - 1.0) * 100.0,
        (makespan / best - 1.0) * 100.0
    );
}

/// Packing with lengths the queue estimates: 8 GPU tasks of uneven
/// lengths (in a shuffled order), seed 0 of each made first (a study's
/// earlier part), then the study extended to seeds 0-2: the 16 new runs
/// start longest first by their task's finished run. Against the same 16
/// runs in a folder with nothing finished (plan order).
fn packing_estimated(lengths: &[f64]) {
    let replies = [
        research_reply("run", "Execute Script", json!({"script_name": "train.py"})),
        research_reply("end", "Final Answer", json!({"final_answer": "done"})),
    ];
    let names: Vec<String> = (0..lengths.len()).map(|i| format!("t{i}")).collect();
    let tasks: Vec<&str> = names.iter().map(String::as_str).collect();
    let setup = |root: &Path| {
        for (name, secs) in names.iter().zip(lengths) {
            ToyTask::new()
                .named(name)
                .env("train.py", format!("import time\ntime.sleep({secs})\n"))
                .set_raw("requires", "{ gpu = true }")
                .write_in(&root.join("bench"));
        }
    };
    let devices = ["0", "1", "2", "3"];
    let report = |label: &str, s: &queue::Summary| {
        let walls: Vec<f64> = s.ended.iter().map(|e| e.wall.as_secs_f64()).collect();
        let total: f64 = walls.iter().sum();
        let longest = walls.iter().cloned().fold(0.0, f64::max);
        let bound = longest.max(total / 4.0);
        let makespan = s.ended.iter().map(|e| e.ended_at).fold(0.0, f64::max);
        println!(
            "packing, {label}: makespan {makespan:.2} s; ideal lower bound {bound:.2} s ({:+.1}%), LPT {:.2} s",
            (makespan / bound - 1.0) * 100.0,
            lpt(walls, 4)
        );
    };
    let known = tempfile::tempdir().unwrap();
    setup(known.path());
    study_of(known.path(), &tasks, true, vec![0], &replies, &devices, 16);
    let s = study_of(
        known.path(),
        &tasks,
        true,
        vec![0, 1, 2],
        &replies,
        &devices,
        16,
    );
    assert_eq!(s.ended.len(), 2 * lengths.len());
    report(
        "8 tasks x 2 new seeds, longest first by the finished seed 0",
        &s,
    );
    let fresh = tempfile::tempdir().unwrap();
    setup(fresh.path());
    let s = study_of(
        fresh.path(),
        &tasks,
        true,
        vec![1, 2],
        &replies,
        &devices,
        16,
    );
    report("the same 16 runs with nothing finished (plan order)", &s);
}

fn main() {
    overhead();
    // 16 uneven lengths (seconds of train.py), in a shuffled order.
    let shuffled = [
        0.6, 2.4, 0.3, 1.2, 3.0, 0.9, 0.3, 1.8, 0.6, 2.1, 0.3, 1.5, 0.9, 2.7, 0.6, 1.2,
    ];
    packing("lengths in plan order (shuffled)", &shuffled);
    let mut sorted = shuffled.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    packing("lengths longest first", &sorted);
    packing_estimated(&[0.6, 2.4, 0.3, 1.2, 3.0, 0.9, 1.8, 2.1]);
}
