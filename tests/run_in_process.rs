//! The engine through the library: `mlab::run::run` called in-process, from
//! several threads at once, with no command line involved.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
mod env_support;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use env_support::{read_json, real_python, Toy};
use mlab::agent::{AgentConfig, AgentKind, Options};
use mlab::run::record::ExitReason;
use mlab::run::RunConfig;
use mlab::sandbox::Kind;
use mlab::task::Locations;
use serde_json::json;

/// A run of the action list `actions` on the toy task, under `<toy>/<name>/`.
fn config(toy: &Toy, name: &str, actions: PathBuf) -> RunConfig {
    RunConfig {
        locations: Locations {
            benchmarks_dir: Some(toy.path().join("bench")),
        },
        task: "toy".into(),
        log_dir: toy.path().join(name).join("logs"),
        work_dir: Some(toy.path().join(name).join("work")),
        max_steps: 10,
        max_time: 300.0,
        device: "0".into(),
        python: Some(real_python()),
        resume: None,
        resume_step: None,
        interactive: false,
        exec_timeout: None,
        seed: 7,
        agent: AgentConfig {
            kind: AgentKind::Actions,
            actions: Some(actions),
            command: None,
            timeout: 600.0,
            options: Options::default(),
        },
        llm: Default::default(),
        sandbox: Kind::None,
        mem_limit: None,
        echo: false,
        interrupt: Arc::new(AtomicBool::new(false)),
        flags: serde_json::Value::Null,
        prompts: None,
    }
}

#[test]
fn two_runs_in_one_process_at_once_each_end_with_their_own_logs() {
    let toy = Toy::new();
    let file = toy.actions(
        "a.jsonl",
        &[
            json!({"name": "Execute Script", "args": {"script_name": "train.py"}}),
            json!({"name": "Final Answer", "args": {"final_answer": "done"}}),
        ],
    );
    let names = ["a", "b"];
    let handles: Vec<_> = names
        .iter()
        .map(|n| {
            let cfg = config(&toy, n, file.clone());
            std::thread::spawn(move || mlab::run::run(cfg))
        })
        .collect();
    for (n, h) in names.iter().zip(handles) {
        let outcome = h.join().unwrap().unwrap();
        assert_eq!(outcome.reason, ExitReason::FinalAnswer, "{n}: {outcome:?}");
        assert_eq!(outcome.log_dir, toy.path().join(n).join("logs"));
        let record = read_json(&outcome.log_dir.join("run.json"));
        assert_eq!(record["exit_reason"], "final_answer", "{n}: {record}");
        assert_eq!(record["steps"], outcome.steps, "{n}: {record}");
        assert_eq!(record["seed"], 7);
        assert_eq!(record["agent"], "actions");
        let ws = toy.path().join(n).join("work/toy");
        assert!(ws.join("submission.csv").is_file(), "{n}: no submission");
    }
}

#[test]
fn one_runs_stop_flag_stops_that_run_only() {
    let toy = Toy::new();
    let file = toy.actions(
        "a.jsonl",
        &[
            json!({"name": "List Files", "args": {"dir_path": "."}}),
            json!({"name": "Final Answer", "args": {"final_answer": "done"}}),
        ],
    );
    let stopped = config(&toy, "stopped", file.clone());
    stopped
        .interrupt
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let other = config(&toy, "other", file);
    let a = std::thread::spawn(move || mlab::run::run(stopped));
    let b = std::thread::spawn(move || mlab::run::run(other));
    let a = a.join().unwrap().unwrap();
    let b = b.join().unwrap().unwrap();
    assert_eq!(a.reason, ExitReason::Interrupted, "{a:?}");
    assert_eq!(b.reason, ExitReason::FinalAnswer, "{b:?}");
}
