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
use mlab::testing::mock_server::{MockServer, Reply};
use mlab::testing::scripted::research_reply;
use serde_json::{json, Value};

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
        adhoc: None,
        instruction: None,
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

/// A run of `kind` with the main model `llm` on the toy task, under
/// `<toy>/<name>/`.
fn agent_config(toy: &Toy, name: &str, kind: AgentKind, llm: Option<String>) -> RunConfig {
    let mut cfg = config(toy, name, PathBuf::new());
    cfg.agent.kind = kind;
    cfg.agent.actions = None;
    cfg.llm.llm = llm;
    cfg.llm.llm_retries = 0;
    cfg
}

/// `(action name, observation)` of every step of a run's trace.
fn steps(log: &std::path::Path) -> Vec<(String, String)> {
    read_json(&log.join("env_log/trace.json"))["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["action"]["name"].as_str().unwrap().to_string(),
                s["observation"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn llm_calls(log: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(log.join("agent_log/llm_calls.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn research_agent_in_process_acts_on_the_scripted_models_replies() {
    let toy = Toy::new();
    let llm = toy.script(
        "main.jsonl",
        &[
            research_reply("look around", "List Files", json!({"dir_path": "."})),
            research_reply(
                "train",
                "Execute Script",
                json!({"script_name": "train.py"}),
            ),
            research_reply(
                "submit",
                "Final Answer",
                json!({"final_answer": "submitted"}),
            ),
        ],
    );
    let cfg = agent_config(&toy, "research", AgentKind::Research, Some(llm));
    let outcome = mlab::run::run(cfg).unwrap();
    assert_eq!(outcome.reason, ExitReason::FinalAnswer, "{outcome:?}");
    assert_eq!(outcome.steps, 3, "{outcome:?}");

    let log = toy.path().join("research/logs");
    let steps = steps(&log);
    let names: Vec<&str> = steps.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["List Files", "Execute Script", "Final Answer"]);
    assert!(steps[0].1.contains("train.py"), "{:?}", steps[0]);
    assert!(steps[1].1.contains("training"), "{:?}", steps[1]);

    let record = read_json(&log.join("run.json"));
    assert_eq!(record["agent"], "research", "{record}");
    assert_eq!(record["exit_reason"], "final_answer", "{record}");
    assert_eq!(record["steps"], 3, "{record}");
    assert_eq!(record["llm_calls"], 3, "{record}");
    let calls = llm_calls(&log);
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert!(
        toy.path()
            .join("research/work/toy/submission.csv")
            .is_file(),
        "train.py did not run in the workspace"
    );
}

#[test]
fn action_list_agent_in_process_stops_at_max_steps_with_each_observation_traced() {
    let toy = Toy::new();
    let file = toy.actions(
        "a.jsonl",
        &[
            json!({"name": "Execute Script", "args": {"script_name": "train.py"}}),
            json!({"name": "List Files", "args": {"dir_path": "."}}),
            json!({"name": "Final Answer", "args": {"final_answer": "never reached"}}),
        ],
    );
    let mut cfg = config(&toy, "limited", file);
    cfg.max_steps = 2;
    let outcome = mlab::run::run(cfg).unwrap();
    assert_eq!(outcome.reason, ExitReason::MaxSteps, "{outcome:?}");
    assert_eq!(outcome.steps, 2, "{outcome:?}");
    let log = toy.path().join("limited/logs");
    let steps = steps(&log);
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(steps[0].0, "Execute Script");
    assert!(steps[0].1.contains("training"), "{:?}", steps[0]);
    assert_eq!(steps[1].0, "List Files");
    assert!(steps[1].1.contains("submission.csv"), "{:?}", steps[1]);
    let record = read_json(&log.join("run.json"));
    assert_eq!(record["exit_reason"], "max_steps", "{record}");
    assert_eq!(record["agent"], "actions", "{record}");
    assert_eq!(record["llm_calls"], 0, "{record}");
}

/// A Chat Completions reply that calls one tool.
fn tool_call(name: &str, arguments: &str) -> Reply {
    Reply::json(
        200,
        json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": 1700000000u64, "model": "mock",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": null,
                "tool_calls": [{"id": "call_1", "type": "function",
                                "function": {"name": name, "arguments": arguments}}]}}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 20, "total_tokens": 1020}
        })
        .to_string(),
    )
}

#[test]
fn tools_agent_in_process_calls_the_mock_server_and_records_usage() {
    let toy = Toy::new();
    let server = MockServer::start();
    server
        .push(tool_call(
            "Execute_Script",
            r#"{"script_name": "train.py"}"#,
        ))
        .push(tool_call(
            "Final_Answer",
            r#"{"final_answer": "submitted"}"#,
        ));
    let llm = format!("openai:mock-model@{}/v1", server.url());
    let cfg = agent_config(&toy, "tools", AgentKind::Tools, Some(llm.clone()));
    let outcome = mlab::run::run(cfg).unwrap();
    assert_eq!(outcome.reason, ExitReason::FinalAnswer, "{outcome:?}");

    let log = toy.path().join("tools/logs");
    let steps = steps(&log);
    let names: Vec<&str> = steps.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Execute Script", "Final Answer"]);
    assert!(steps[0].1.contains("training"), "{:?}", steps[0]);

    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert!(requests[0].json()["tools"].is_array());
    // The second request carries the tool's result back to the model.
    assert!(
        requests[1].body.contains("training"),
        "the observation did not reach the model: {}",
        requests[1].body
    );

    let record = read_json(&log.join("run.json"));
    assert_eq!(record["agent"], "tools", "{record}");
    assert_eq!(record["exit_reason"], "final_answer", "{record}");
    assert_eq!(record["llm"]["main"], llm, "{record}");
    assert_eq!(record["llm_calls"], 2, "{record}");
    assert_eq!(record["tokens"]["input"], 2000, "{record}");
    assert_eq!(record["tokens"]["output"], 40, "{record}");
}

#[test]
fn baseline_agent_in_process_runs_the_starter_and_submits() {
    let toy = Toy::new();
    let cfg = agent_config(&toy, "baseline", AgentKind::Baseline, None);
    let outcome = mlab::run::run(cfg).unwrap();
    assert_eq!(outcome.reason, ExitReason::FinalAnswer, "{outcome:?}");
    let log = toy.path().join("baseline/logs");
    let steps = steps(&log);
    assert_eq!(steps.first().map(|s| s.0.as_str()), Some("Execute Script"));
    assert_eq!(steps.last().map(|s| s.0.as_str()), Some("Final Answer"));
    let record = read_json(&log.join("run.json"));
    assert_eq!(record["agent"], "baseline", "{record}");
    assert_eq!(record["llm_calls"], 0, "{record}");
    assert!(toy
        .path()
        .join("baseline/work/toy/submission.csv")
        .is_file());
}
