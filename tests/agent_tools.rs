//! `--agent tools` against a mock OpenAI server on 127.0.0.1: the prompt's
//! actions go out as JSON-schema tools, `tool_calls` come back as actions
//! (arguments repaired when they are almost JSON), an unknown tool gets a
//! correction, and a reply without a tool call is read as text.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod agent_support;
mod common;

use agent_support::{read_json, text, trace_actions, Bench};
use mlab::testing::mock_server::{MockServer, Reply};
use serde_json::{json, Value};

fn tool_call(name: &str, arguments: &str) -> Reply {
    Reply::json(
        200,
        json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": 1700000000u64, "model": "mock",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Let me look around first.",
                "tool_calls": [{"id": "call_1", "type": "function",
                                "function": {"name": name, "arguments": arguments}}]}}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 20, "total_tokens": 1020}
        })
        .to_string(),
    )
}

#[test]
fn tools_agent_acts_through_native_tool_calls_and_falls_back_to_text() {
    let bench = Bench::toy();
    let server = MockServer::start();
    server
        .push(tool_call("List_Files", r#"{"dir_path": "."}"#))
        .push(tool_call("Fly_Away", r#"{"speed": "fast"}"#))
        // A trailing comma: not JSON, repaired by the agent's sanitising pass.
        .push(tool_call("Execute_Script", r#"{"script_name": "train.py",}"#))
        .push(Reply::openai_text(
            "Thought: the submission exists now.\nAction: Final Answer\nAction Input: {\"final_answer\": \"submitted\"}",
            900,
            30,
        ));
    let log = bench.log("logs");
    let llm = format!("openai:mock-model@{}/v1", server.url());
    let out = bench
        .command("tools", &log, &["--llm", &llm, "--llm-retries", "0"])
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        trace_actions(&log),
        ["List Files", "Execute Script", "Final Answer"]
    );

    let reqs = server.requests();
    assert_eq!(reqs.len(), 4);
    let first = reqs[0].json();
    let tools = first["tools"].as_array().unwrap();
    let names: Vec<&str> = tools
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "List_Files",
            "Copy_File",
            "Undo_Edit_Script",
            "Execute_Script",
            "Final_Answer",
            "Understand_File",
            "Inspect_Script_Lines",
            "Edit_Script_AI"
        ]
    );
    for t in tools {
        assert_eq!(t["type"], "function");
        let params = &t["function"]["parameters"];
        let props = params["properties"].as_object().unwrap();
        let required: Vec<&str> = params["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(props.len(), required.len(), "{t}");
        for k in &required {
            assert_eq!(props[*k]["type"], "string", "{t}");
        }
    }
    let edit = tools
        .iter()
        .find(|t| t["function"]["name"] == "Edit_Script_AI")
        .unwrap();
    assert_eq!(
        edit["function"]["parameters"]["required"],
        json!(["script_name", "edit_instruction", "save_name"])
    );

    let prompt = |i: usize| -> String {
        reqs[i].json()["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    // The first step and its observation are in the next prompt.
    assert!(prompt(1).contains("Action: List Files"), "{}", prompt(1));
    assert!(prompt(1).contains("train.py"));
    assert!(prompt(1).contains("Let me look around first."));
    // The unknown tool was answered with a correction, not an action.
    assert!(
        prompt(2).contains("no tool named \"Fly_Away\""),
        "{}",
        prompt(2)
    );
    assert!(prompt(3).contains("training done"), "{}", prompt(3));

    let run = read_json(&log.join("run.json"));
    assert_eq!(run["exit_reason"], "final_answer");
    assert_eq!(run["tokens"]["input"], 3900);
    let calls = agent_support::calls(&log);
    assert_eq!(calls[0]["tool_calls"][0]["name"], "List_Files");
    assert_eq!(
        calls[2]["tool_calls"][0]["arguments"],
        Value::String(r#"{"script_name": "train.py",}"#.into())
    );
}

#[test]
fn simple_and_react_agents_run_the_original_formats() {
    let bench = Bench::toy();
    // simple: Action and Action Input only; unreadable input goes to the
    // environment as text, which answers with the usage.
    let simple = bench.script(
        "simple.jsonl",
        &[
            json!("Action: List Files\nAction Input: the top folder"),
            json!("Action: Execute Script\nAction Input: {\"script_name\": \"train.py\"}"),
            json!("Action: Final Answer\nAction Input: {\"final_answer\": \"done\"}"),
        ],
    );
    let log = bench.log("logs_simple");
    let out = bench.run("SimpleActionAgent", &log, &["--llm", &simple]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        trace_actions(&log),
        ["List Files", "Execute Script", "Final Answer"]
    );
    let trace = read_json(&log.join("env_log/trace.json"));
    assert_eq!(trace["steps"][0]["action"]["args"], "the top folder");
    assert!(trace["steps"][0]["observation"]
        .as_str()
        .unwrap()
        .contains("\"dir_path\""));
    let p = agent_support::prompts(&log, "main");
    assert!(
        p[0].contains("\nAction: ") && !p[0].contains("\nThought: "),
        "{}",
        p[0]
    );
    assert!(!p[0].contains("Research Plan and Status"));

    // react: a Thought first; a reply without one is asked again as it was.
    let react = bench.script(
        "react.jsonl",
        &[
            json!("Action: List Files\nAction Input: {\"dir_path\": \".\"}"),
            json!("Thought: look first\nAction: List Files\nAction Input: {\"dir_path\": \".\"}"),
            json!(
                "Thought: finish\nAction: Final Answer\nAction Input: {\"final_answer\": \"done\"}"
            ),
        ],
    );
    let log = bench.log("logs_react");
    let out = bench.run("react", &log, &["--llm", &react]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(trace_actions(&log), ["List Files", "Final Answer"]);
    let p = agent_support::prompts(&log, "main");
    assert_eq!(p.len(), 3);
    assert_eq!(
        p[0], p[1],
        "the original's light agents retry without a hint"
    );
    assert!(p[2].contains("Thought: look first"));
    assert_eq!(read_json(&log.join("run.json"))["agent"], "react");
}

#[test]
fn model_driven_agents_need_a_model_and_name_it_in_the_error() {
    let bench = Bench::toy();
    for agent in ["research", "tools", "simple", "react"] {
        let log = bench.log(agent);
        let out = bench.run(agent, &log, &[]);
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(
            err.contains("--llm") && err.contains("human"),
            "{agent}: {err}"
        );
        assert!(
            !log.exists(),
            "{agent}: nothing is created for a bad command line"
        );
    }
    let out = bench.run(
        "research",
        &bench.log("x"),
        &["--llm", "human", "--actions-add-to-prompt", "Teleport"],
    );
    assert!(
        text(&out.stderr).contains("'Teleport' is not an action"),
        "{}",
        text(&out.stderr)
    );
}
