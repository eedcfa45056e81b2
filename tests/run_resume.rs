//! Crash safety end to end: a run killed with SIGKILL is resumed and its
//! trace extended; a run stopped with Ctrl-C (SIGINT) still takes its
//! final snapshot and kills what it was running.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
mod env_support;

use env_support::{alive, read_json, text, wait_for, Toy};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

fn sleeper(toy: &Toy) {
    toy.env_file(
        "sleeper.py",
        "import os, time\nopen('pids.txt', 'w').write(str(os.getpid()))\nprint('sleeping', flush=True)\ntime.sleep(1000)\n",
    );
}

fn completed_steps(toy: &Toy, log: &std::path::Path) -> usize {
    let _ = toy;
    std::fs::read_to_string(log.join("env_log/events.jsonl"))
        .map(|t| {
            t.lines()
                .filter(|l| l.contains("\"event\":\"step\""))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_run_killed_with_sigkill_resumes_and_extends_its_trace() {
    let toy = Toy::new();
    sleeper(&toy);
    let actions = [
        json!({"name": "Write File", "args": {"file_name": "a.txt", "content": "1"}}),
        json!({"name": "Write File", "args": {"file_name": "b.txt", "content": "2"}}),
        json!({"name": "Execute Script", "args": {"script_name": "sleeper.py"}}),
        json!({"name": "Write File", "args": {"file_name": "c.txt", "content": "3"}}),
        json!({"name": "Final Answer", "args": {"final_answer": "done"}}),
    ];
    let file = toy.actions("a.jsonl", &actions);
    let log = toy.log();
    let mut child = toy.command(&file, &log, &[]).spawn().unwrap();
    let pids = toy.ws().join("pids.txt");
    assert!(
        // The pid must be whole, not just the file created.
        wait_for(30, || completed_steps(&toy, &log) == 2
            && std::fs::read_to_string(&pids)
                .is_ok_and(|t| t.trim().parse::<i32>().is_ok())),
        "the run did not reach its sleeping step"
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    // Nothing was there to clean up after SIGKILL: the script lives on.
    let script: i32 = std::fs::read_to_string(&pids)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = killpg(Pid::from_raw(script), Signal::SIGKILL);
    let old = toy.trace();
    assert_eq!(old["steps"].as_array().unwrap().len(), 2);
    assert!(!log.join("env_log/traces/step_final_files").exists());
    let old_run = read_json(&log.join("run.json"));
    assert_eq!(
        old_run["exit_reason"],
        Value::Null,
        "the killed run never closed"
    );

    // Resume in the same log folder, from the last completed step; the
    // actions agent carries on with the third action.
    let out = toy
        .command(
            &file,
            &log,
            &["--resume", log.to_str().unwrap(), "--exec-timeout", "1"],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let new = toy.trace();
    let steps = new["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 5);
    assert_eq!(
        steps[..2],
        old["steps"].as_array().unwrap()[..],
        "the old steps are kept as they were"
    );
    assert_eq!(steps[2]["action"]["name"], "Execute Script");
    assert!(steps[2]["observation"]
        .as_str()
        .unwrap()
        .contains("stopped after 1 s"));
    assert_eq!(steps[4]["observation"], "end");
    let fin = log.join("env_log/traces/step_final_files");
    for (f, c) in [("a.txt", "1"), ("b.txt", "2"), ("c.txt", "3")] {
        assert_eq!(std::fs::read_to_string(fin.join(f)).unwrap(), c);
    }
    let run = read_json(&log.join("run.json"));
    assert_eq!(run["exit_reason"], "final_answer");
    assert_eq!(run["steps"], 5);
    assert_eq!(run["flags"]["resume"], log.to_str().unwrap());
    // The killed run's own record is kept beside the new one.
    let kept: Vec<_> = std::fs::read_dir(&log)
        .unwrap()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("run.") && n.ends_with(".json") && n != "run.json"
        })
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        read_json(&kept[0].path())["start_time"],
        old_run["start_time"]
    );
    // The event log was only appended to: both starts are in it.
    let events = std::fs::read_to_string(log.join("env_log/events.jsonl")).unwrap();
    assert_eq!(events.matches("\"event\":\"start\"").count(), 2);
    assert_eq!(events.matches("\"event\":\"resume\"").count(), 1);
}

#[test]
fn ctrl_c_stops_the_script_and_still_takes_the_final_snapshot() {
    let toy = Toy::new();
    sleeper(&toy);
    let file = toy.actions(
        "a.jsonl",
        &[
            json!({"name": "Write File", "args": {"file_name": "a.txt", "content": "1"}}),
            json!({"name": "Execute Script", "args": {"script_name": "sleeper.py"}}),
            json!({"name": "Write File", "args": {"file_name": "never.txt", "content": "x"}}),
        ],
    );
    let log = toy.log();
    let child = toy
        .command(&file, &log, &[])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pids = toy.ws().join("pids.txt");
    // The script wrote its pid: it is running, inside the step.
    let written = || {
        std::fs::read_to_string(&pids)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
    };
    assert!(
        wait_for(30, || written().is_some()),
        "the script did not start"
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let script: i32 = std::fs::read_to_string(&pids)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(wait_for(5, || !alive(script)), "the script survived Ctrl-C");
    let run = read_json(&log.join("run.json"));
    assert_eq!(run["exit_reason"], "interrupted");
    let steps = toy.trace()["steps"].as_array().unwrap().clone();
    assert_eq!(
        steps.len(),
        2,
        "the interrupted step is recorded, no later one runs"
    );
    assert!(steps[1]["observation"]
        .as_str()
        .unwrap()
        .contains("interrupted"));
    let fin = log.join("env_log/traces/step_final_files");
    assert_eq!(std::fs::read_to_string(fin.join("a.txt")).unwrap(), "1");
    assert!(!toy.ws().join("never.txt").exists());
    assert!(log.join("env_log/error.txt").exists());
    assert!(log.join("env_log/overall_time.txt").exists());
}
