//! `mlab run` as a command: run.json, replaying a trace, and the errors
//! that stop a run before anything is created or overwritten.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
mod env_support;

use env_support::{read_json, text, Toy};
use mlab::testing::scripted::with_usage;
use serde_json::json;

#[test]
fn run_json_records_what_the_run_was_and_how_it_ended() {
    let toy = Toy::new();
    let out = toy.run(
        &[
            json!({"name": "Execute Script", "args": {"script_name": "train.py"}}),
            json!({"name": "Final Answer", "args": {"final_answer": "done"}}),
        ],
        &["--device", "2", "--seed", "7"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = toy.run_json();
    for key in [
        "mlab_version",
        "task",
        "agent",
        "llm",
        "seed",
        "flags",
        "sandbox",
        "start_time",
        "end_time",
        "steps",
        "exit_reason",
        "error",
        "tokens",
        "cost_usd",
        "tampered",
    ] {
        assert!(r.get(key).is_some(), "run.json lacks {key}: {r}");
    }
    assert_eq!(r["task"], "toy");
    assert_eq!(r["agent"], "actions");
    assert_eq!(r["sandbox"], "none");
    assert_eq!(r["seed"], 7);
    assert_eq!(r["steps"], 2);
    assert_eq!(r["exit_reason"], "final_answer");
    assert_eq!(r["error"], serde_json::Value::Null);
    assert_eq!(r["llm"], serde_json::Value::Null);
    assert_eq!(r["flags"]["device"], "2");
    assert_eq!(r["flags"]["max_steps"], 50);
    assert_eq!(r["flags"]["max_time"], 18000.0);
    assert_eq!(r["tampered"], false);
    assert!(chrono::DateTime::parse_from_rfc3339(r["end_time"].as_str().unwrap()).is_ok());
    // The original's other files are there too.
    let env_log = toy.log().join("env_log");
    assert!(env_log.join("overall_time.txt").exists());
    assert!(!env_log.join("error.txt").exists());
    assert!(toy.log().join("agent_log/main_log").exists());
    let log = std::fs::read_to_string(toy.log().join("log")).unwrap();
    assert!(log.contains("STDOUT: training"), "{log}");
}

#[test]
fn a_trace_json_replays_the_same_actions() {
    let toy = Toy::new();
    let out = toy.run(
        &[
            json!({"name": "List Files", "args": {"dir_path": "."}}),
            json!({"name": "Execute Script", "args": {"script_name": "train.py"}}),
            json!({"name": "Final Answer", "args": "done"}),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first = toy.trace();
    let saved = toy.path().join("first_trace.json");
    std::fs::copy(toy.log().join("env_log/trace.json"), &saved).unwrap();
    let log2 = toy.path().join("logs2");
    let out = toy.command(&saved, &log2, &[]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let second = read_json(&log2.join("env_log/trace.json"));
    let strip = |t: &serde_json::Value| -> Vec<(serde_json::Value, serde_json::Value)> {
        t["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["action"].clone(), s["observation"].clone()))
            .collect()
    };
    assert_eq!(strip(&first), strip(&second));
}

#[test]
fn an_existing_run_is_never_overwritten() {
    let toy = Toy::new();
    let actions = [json!({"name": "Final Answer", "args": {"final_answer": "x"}})];
    assert!(toy.run(&actions, &[]).status.success());
    let before = std::fs::read(toy.log().join("env_log/trace.json")).unwrap();
    let out = toy.run(&actions, &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("already holds a run") && err.contains("--resume"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(toy.log().join("env_log/trace.json")).unwrap(),
        before
    );
}

#[test]
fn bad_input_is_refused_before_any_workspace_is_made() {
    let toy = Toy::new();
    let ws = toy.ws();
    let run = |args: &[&str], actions: &str| {
        let file = toy.path().join("bad.jsonl");
        std::fs::write(&file, actions).unwrap();
        let mut c = env_support::common::mlab();
        c.arg("--benchmarks-dir")
            .arg(toy.path().join("bench"))
            .args(["run", "--task", "toy", "--log-dir"])
            .arg(toy.log())
            .arg("--work-dir")
            .arg(toy.path().join("work"))
            .args(args);
        let out = c.output().unwrap();
        assert!(!out.status.success());
        text(&out.stderr)
    };
    let ok = "{\"name\": \"List Files\", \"args\": {\"dir_path\": \".\"}}\n";
    let file = toy.path().join("bad.jsonl");
    let f = file.to_str().unwrap();

    let err = run(&["--agent", "wizard", "--actions", f], ok);
    assert!(err.contains("unknown agent 'wizard'"), "{err}");
    let err = run(&["--sandbox", "none"], ok);
    assert!(err.contains("--agent research needs a model"), "{err}");
    let err = run(&["--agent", "actions", "--sandbox", "none"], ok);
    assert!(err.contains("needs --actions FILE"), "{err}");
    let err = run(
        &["--agent", "actions", "--actions", f, "--sandbox", "none"],
        "{\"name\": \"List Files\"}\n{oops\n",
    );
    assert!(err.contains("line 2"), "{err}");
    let err = run(
        &[
            "--agent",
            "actions",
            "--actions",
            f,
            "--sandbox",
            "none",
            "--llm",
            "nosuchprovider:x",
        ],
        ok,
    );
    assert!(err.contains("cannot use model"), "{err}");
    let err = run(
        &[
            "--agent",
            "actions",
            "--actions",
            f,
            "--sandbox",
            "none",
            "--resume-step",
            "2",
        ],
        ok,
    );
    assert!(err.contains("--resume-step needs --resume"), "{err}");
    let err = run(
        &[
            "--agent",
            "actions",
            "--actions",
            f,
            "--sandbox",
            "none",
            "--resume",
            "/nonexistent/run",
        ],
        ok,
    );
    assert!(err.contains("no env_log/events.jsonl"), "{err}");
    assert!(!ws.exists(), "a workspace was made despite bad input");
    assert!(
        !toy.log().join("run.json").exists(),
        "run.json was written despite bad input"
    );

    // An unprepared task names the command that prepares it.
    env_support::write(
        &toy.path().join("bench/toy/script/prepare.py"),
        "print('==> x')\n",
    );
    let err = run(
        &["--agent", "actions", "--actions", f, "--sandbox", "none"],
        ok,
    );
    assert!(err.contains("mlab prepare toy"), "{err}");
    assert!(!ws.exists());
}

#[test]
fn llm_backed_actions_use_the_models_of_the_run() {
    let toy = Toy::new();
    let model = toy.script(
        "replies.jsonl",
        &[
            with_usage("it prints training", 100, 5),
            with_usage("```python\nprint('edited')\n```", 50, 7),
        ],
    );
    let out = toy.run(
        &[
            json!({"name": "Understand File", "args": {"file_name": "train.py", "things_to_look_for": "output"}}),
            json!({"name": "Edit Script (AI)", "args": {"script_name": "train.py", "edit_instruction": "print edited", "save_name": "train.py"}}),
            json!({"name": "Final Answer", "args": {"final_answer": "x"}}),
        ],
        &["--llm", &model],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let obs = toy.observations();
    assert_eq!(obs[0], "it prints training");
    assert!(obs[1].contains("+print('edited')"), "{}", obs[1]);
    assert_eq!(
        std::fs::read_to_string(toy.ws().join("train.py")).unwrap(),
        "print('edited')\n"
    );
    // The transcripts of the tools' calls, as the original's tool_logs.
    let tool_logs = toy.log().join("env_log/tool_logs");
    assert!(tool_logs.join("step_0_tool_log.log_0").exists());
    assert!(tool_logs.join("step_1_tool_log.log").exists());
    let r = toy.run_json();
    assert_eq!(r["llm"]["fast"], model.as_str());
    assert_eq!(r["tokens"]["input"], 150);
    assert_eq!(r["tokens"]["output"], 12);
}

#[test]
fn an_exhausted_token_budget_ends_the_run_with_its_final_snapshot() {
    let toy = Toy::new();
    let model = toy.script("replies.jsonl", &vec![with_usage("fine", 100, 5); 3]);
    let understand = json!({"name": "Understand File", "args": {"file_name": "train.py", "things_to_look_for": "x"}});
    let out = toy.run(
        &[
            understand.clone(),
            understand,
            json!({"name": "List Files", "args": {"dir_path": "."}}),
        ],
        &["--llm", &model, "--max-total-tokens", "50"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = toy.run_json();
    assert_eq!(r["exit_reason"], "budget");
    assert_eq!(r["steps"], 2);
    let obs = toy.observations();
    assert!(
        obs[1].starts_with("LLMError: budget exhausted"),
        "{}",
        obs[1]
    );
    assert!(toy
        .log()
        .join("env_log/traces/step_final_files/train.py")
        .exists());
}
