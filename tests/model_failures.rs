//! How mlab classifies what a real model does, against mock providers on
//! 127.0.0.1: a model's failure (empty reply, refusal, content filter, a
//! prompt too long, replies that stay unusable) ends the run `model_error`
//! and counts against the configuration in eval; a transport fault
//! (refused connection, timeout, 429, 5xx) is retried and then ends the run
//! `llm_error`, an infrastructure failure. Also: rejected replies in
//! main_log, totals and budgets over a resumed run, one configuration
//! through two base URLs, the usage placeholder refused, `tool_choice`
//! sent and dropped for a server that rejects it, llm-check's instruction
//! test, and `--max-cost` with an unknown price.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod agent_support;
mod common;

use std::path::Path;
use std::process::Output;

use agent_support::{calls, read_json, research_reply, text, trace_actions, write, Bench};
use mlab::testing::mock_server::{MockServer, Reply};
use serde_json::{json, Value};

fn list(marker: &str) -> Value {
    research_reply(marker, "List Files", json!({"dir_path": "."}))
}

fn final_answer(marker: &str) -> Value {
    research_reply(marker, "Final Answer", json!({"final_answer": "done"}))
}

/// A Chat Completions reply with this message and finish reason.
fn openai_message(message: Value, finish: &str) -> Reply {
    Reply::json(
        200,
        json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": 1700000000u64,
            "model": "mock",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 0, "total_tokens": 10}
        })
        .to_string(),
    )
}

fn llm_at(server: &MockServer, model: &str) -> String {
    format!("openai:{model}@{}/v1", server.url())
}

/// A research run against `llm` with fast retries (a retried fault takes
/// milliseconds, not minutes).
fn research(bench: &Bench, log: &Path, llm: &str, extra: &[&str]) -> Output {
    let mut args = vec!["--llm", llm, "--llm-retries", "2", "--llm-backoff", "0.01"];
    args.extend_from_slice(extra);
    bench
        .command("research", log, &args)
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_BASE_URL")
        .output()
        .unwrap()
}

fn run_json(log: &Path) -> Value {
    read_json(&log.join("run.json"))
}

fn main_log(log: &Path) -> String {
    std::fs::read_to_string(log.join("agent_log/main_log")).unwrap_or_default()
}

#[test]
fn an_empty_reply_is_asked_again_once_at_once_then_ends_the_run_as_model_error() {
    let bench = Bench::toy();
    let server = MockServer::start();
    server.always(Reply::openai_text("", 10, 0));
    let log = bench.log("logs");
    let out = research(&bench, &log, &llm_at(&server, "tiny"), &[]);
    assert!(!out.status.success());
    let run = run_json(&log);
    assert_eq!(run["exit_reason"], "model_error", "{run}");
    let err = run["error"].as_str().unwrap();
    assert!(err.contains("empty_reply"), "{err}");
    assert_eq!(
        server.requests().len(),
        2,
        "an empty reply is asked again once, not retried like a network fault"
    );
    let retry_log = &calls(&log)[0]["retry_log"];
    assert_eq!(retry_log[0]["wait_s"], json!(0.0), "{retry_log}");
    assert!(main_log(&log).contains("empty_reply"), "{}", main_log(&log));
}

#[test]
fn one_empty_reply_then_a_good_one_goes_on() {
    let bench = Bench::toy();
    let server = MockServer::start();
    server.push(Reply::openai_text("", 10, 0));
    server.push(Reply::openai_text(
        final_answer("after one empty").as_str().unwrap(),
        10,
        5,
    ));
    let log = bench.log("logs");
    let out = research(&bench, &log, &llm_at(&server, "tiny"), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(run_json(&log)["exit_reason"], "final_answer");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn refusals_content_filters_and_too_long_prompts_end_the_run_as_model_error() {
    let cases: Vec<(&str, Reply, &str)> = vec![
        (
            "refusal",
            openai_message(
                json!({"role": "assistant", "content": null, "refusal": "I can't help with that."}),
                "stop",
            ),
            "refusal",
        ),
        (
            "content_filter",
            openai_message(json!({"role": "assistant", "content": null}), "content_filter"),
            "content_filter",
        ),
        (
            "too_long",
            Reply::json(
                400,
                json!({"error": {"message": "This model's maximum context length is 2048 tokens",
                                 "type": "invalid_request_error", "code": "context_length_exceeded"}})
                .to_string(),
            ),
            "prompt too long",
        ),
    ];
    for (name, reply, expect) in cases {
        let bench = Bench::toy();
        let server = MockServer::start();
        server.always(reply);
        let log = bench.log(name);
        let out = research(&bench, &log, &llm_at(&server, "tiny"), &[]);
        assert!(!out.status.success(), "{name}");
        let run = run_json(&log);
        assert_eq!(run["exit_reason"], "model_error", "{name}: {run}");
        assert!(
            run["error"].as_str().unwrap().contains(expect),
            "{name}: {run}"
        );
        assert_eq!(
            server.requests().len(),
            1,
            "{name}: a model failure is not retried"
        );
    }

    // Anthropic's refusal.
    let bench = Bench::toy();
    let server = MockServer::start();
    server.always(Reply::json(
        200,
        json!({"id": "msg", "type": "message", "role": "assistant", "model": "mock",
               "content": [], "stop_reason": "refusal",
               "usage": {"input_tokens": 5, "output_tokens": 0}})
        .to_string(),
    ));
    let log = bench.log("anthropic");
    let out = research(
        &bench,
        &log,
        &format!("anthropic:tiny@{}", server.url()),
        &[],
    );
    assert!(!out.status.success());
    let run = run_json(&log);
    assert_eq!(run["exit_reason"], "model_error", "{run}");
    assert!(run["error"].as_str().unwrap().contains("refusal"), "{run}");
}

#[test]
fn transport_faults_are_retried_then_end_the_run_as_llm_error() {
    // Nothing listens on a port that was just closed.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let refused = format!("openai:tiny@http://127.0.0.1:{closed}/v1");
    let bench = Bench::toy();
    let log = bench.log("refused");
    let out = research(&bench, &log, &refused, &[]);
    assert!(!out.status.success());
    let run = run_json(&log);
    assert_eq!(run["exit_reason"], "llm_error", "{run}");
    assert!(
        run["error"].as_str().unwrap().contains("3 attempts"),
        "{run}"
    );

    let faults: Vec<(&str, Reply)> = vec![
        (
            "overloaded",
            Reply::json(503, r#"{"error":{"message":"overloaded"}}"#),
        ),
        (
            "rate_limited",
            Reply::json(429, r#"{"error":{"message":"slow down"}}"#),
        ),
        (
            "slow",
            Reply::openai_text("too late", 1, 1).delayed(std::time::Duration::from_secs(3)),
        ),
    ];
    for (name, reply) in faults {
        let bench = Bench::toy();
        let server = MockServer::start();
        server.always(reply);
        let log = bench.log(name);
        let out = research(
            &bench,
            &log,
            &llm_at(&server, "tiny"),
            &["--llm-timeout", "0.3"],
        );
        assert!(!out.status.success(), "{name}");
        let run = run_json(&log);
        assert_eq!(run["exit_reason"], "llm_error", "{name}: {run}");
        assert_eq!(
            server.requests().len(),
            3,
            "{name}: one try and two retries"
        );
    }
}

#[test]
fn replies_that_stay_unusable_end_as_model_error_and_main_log_shows_each_one() {
    let bench = Bench::toy();
    let main = bench.script(
        "main.jsonl",
        &[
            list("one good step"),
            json!("FIRST-BAD I would rather chat."),
            research_reply("SECOND-BAD", "Fly Away", json!({})),
            json!("THIRD-BAD still no format"),
        ],
    );
    let log = bench.log("logs");
    let out = bench.run("research", &log, &["--llm", &main, "--max-retries", "3"]);
    assert!(!out.status.success());
    let run = run_json(&log);
    assert_eq!(run["exit_reason"], "model_error", "{run}");
    let err = run["error"].as_str().unwrap();
    assert!(
        err.contains("unusable_reply") && err.contains("3 tries"),
        "{err}"
    );
    let log_text = main_log(&log);
    let at = |needle: &str| {
        log_text
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} not in main_log:\n{log_text}"))
    };
    assert!(at("FIRST-BAD") < at("SECOND-BAD") && at("SECOND-BAD") < at("THIRD-BAD"));
    assert_eq!(log_text.matches("unusable reply, rejected:").count(), 3);
    assert!(
        log_text.contains("\"Fly Away\" is not one of the actions"),
        "{log_text}"
    );
}

#[test]
fn eval_counts_model_errors_against_the_configuration_and_transport_faults_as_infra() {
    let bench = Bench::toy();
    write(
        &bench.task_dir().join("script/eval.py"),
        "def get_score(folder):\n    return 0.5\n",
    );
    let logs = bench.log("logs");
    // Two model failures and one transport failure, one model.
    let server = MockServer::start();
    server.always(Reply::openai_text("", 10, 0));
    for name in ["empty1", "empty2"] {
        research(&bench, &logs.join(name), &llm_at(&server, "tiny"), &[]);
    }
    let down = MockServer::start();
    down.always(Reply::json(503, r#"{"error":{"message":"down"}}"#));
    research(&bench, &logs.join("outage"), &llm_at(&down, "tiny"), &[]);
    for (name, reason) in [
        ("empty1", "model_error"),
        ("empty2", "model_error"),
        ("outage", "llm_error"),
    ] {
        assert_eq!(run_json(&logs.join(name))["exit_reason"], reason, "{name}");
    }

    let doc = eval(&bench, &logs);
    let groups = doc["summary"].as_array().unwrap();
    assert_eq!(
        groups.len(),
        1,
        "one model through two servers is one configuration: {groups:?}"
    );
    let g = &groups[0];
    assert_eq!(g["config"], "research (openai:tiny)", "{g}");
    assert_eq!(g["runs"], 3, "{g}");
    assert_eq!(
        g["infra_failures"], 1,
        "only the outage is infrastructure: {g}"
    );
    assert_eq!(g["evaluated_runs"], 2, "{g}");
}

fn eval(bench: &Bench, logs: &Path) -> Value {
    let out_file = bench.path().join("results.json");
    let out = common::mlab()
        .arg("--benchmarks-dir")
        .arg(bench.path().join("bench"))
        .arg("eval")
        .arg("--log-folder")
        .arg(logs)
        .arg("--output-file")
        .arg(&out_file)
        .arg("--python")
        .arg(&bench.python)
        .args(["--sandbox", "none"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mlab eval failed\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    common::eval_outputs(&out_file)
}

#[test]
fn one_model_through_two_base_urls_is_one_configuration_and_names_and_replays_are_labelled() {
    let bench = Bench::toy();
    let logs = bench.log("logs");
    let answer = final_answer("done").as_str().unwrap().to_string();
    let a = MockServer::start();
    a.always(Reply::openai_text(&answer, 10, 5));
    let b = MockServer::start();
    b.always(Reply::openai_text(&answer, 10, 5));
    for (name, server) in [("via_a", &a), ("via_b", &b)] {
        let out = research(&bench, &logs.join(name), &llm_at(server, "llama3"), &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let ca = run_json(&logs.join("via_a"))["config"].clone();
    assert_eq!(ca, "research (openai:llama3)");
    assert_eq!(run_json(&logs.join("via_b"))["config"], ca);

    // --config-name names one explicitly.
    let named = bench.log("named");
    let out = research(
        &bench,
        &named,
        &llm_at(&a, "llama3"),
        &["--config-name", "llama3-q4 on my laptop"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(run_json(&named)["config"], "llama3-q4 on my laptop");

    // A replay is the replay of the run it replays.
    let replayed = bench.log("replayed");
    let source = format!("replay:{}", logs.join("via_a").display());
    let out = bench.run("research", &replayed, &["--llm", &source]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        run_json(&replayed)["config"],
        "replay of research (openai:llama3)"
    );

    write(
        &bench.task_dir().join("script/eval.py"),
        "def get_score(folder):\n    return 0.5\n",
    );
    let doc = eval(&bench, &logs);
    let groups = doc["summary"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0]["runs"], 2);
    assert_eq!(groups[0]["config"], "research (openai:llama3)");
}

#[test]
fn a_resumed_run_counts_tokens_cost_calls_and_budget_over_both_parts() {
    let bench = Bench::toy();
    let costly = |marker: &str| {
        json!({"text": list(marker).as_str().unwrap(),
               "usage": {"input_tokens": 400, "output_tokens": 10}})
    };
    let first = bench.script("first.jsonl", &[costly("a"), costly("b")]);
    let log = bench.log("part1");
    let out = bench.run("research", &log, &["--llm", &first, "--max-steps", "2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let part1 = run_json(&log);
    assert_eq!(part1["tokens"]["input"], 800, "{part1}");
    assert_eq!(part1["llm_calls"], 2, "{part1}");

    // Into a new folder: the first part's calls come along, and run.json
    // covers both parts.
    let second = bench.script("second.jsonl", &[costly("c"), final_answer("end")]);
    let log2 = bench.log("part2");
    let out = bench.run(
        "research",
        &log2,
        &["--llm", &second, "--resume", log.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run = run_json(&log2);
    let recorded: u64 = calls(&log2)
        .iter()
        .map(|c| c["usage"]["input_tokens"].as_u64().unwrap())
        .sum();
    assert_eq!(run["tokens"]["input"].as_u64().unwrap(), recorded, "{run}");
    assert!(recorded >= 1200, "both parts: {recorded}");
    assert_eq!(run["llm_calls"], 4, "{run}");
    assert_eq!(calls(&log2).len(), 4);

    // In place, with a token budget that the first part has mostly spent:
    // it counts the whole run, so the second call of this part is not made.
    let third = bench.script("third.jsonl", &[costly("d"), costly("e"), costly("f")]);
    let out = bench.run(
        "research",
        &log,
        &[
            "--llm",
            &third,
            "--resume",
            log.to_str().unwrap(),
            "--max-total-tokens",
            "1000",
        ],
    );
    let run = run_json(&log);
    assert_eq!(run["exit_reason"], "budget", "{run}\n{}", text(&out.stderr));
    assert_eq!(run["tokens"]["input"], 1200, "{run}");
    assert_eq!(run["llm_calls"], 3, "{run}");
}

#[test]
fn a_copied_usage_placeholder_is_refused_with_a_correction_and_no_action() {
    let bench = Bench::toy();
    let placeholder = "Reflection: none.\nResearch Plan and Status: look.\nFact Check: none.\n\
                       Thought: list.\nAction: List Files\nAction Input: {\"dir_path\": \
                       \"[a folder path relative to the workspace; \\\".\\\" is the top folder]\"}";
    let main = bench.script("main.jsonl", &[json!(placeholder), final_answer("end")]);
    let log = bench.log("logs");
    let out = bench.run("research", &log, &["--llm", &main]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        trace_actions(&log),
        ["Final Answer"],
        "List Files must not run"
    );
    let log_text = main_log(&log);
    assert!(
        log_text.contains("placeholder") && log_text.contains("copied from the example"),
        "{log_text}"
    );
}

fn tool_call_reply() -> Reply {
    Reply::json(
        200,
        json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": 1700000000u64, "model": "mock",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Done.",
                "tool_calls": [{"id": "call_1", "type": "function",
                                "function": {"name": "Final_Answer",
                                             "arguments": "{\"final_answer\": \"done\"}"}}]}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105}
        })
        .to_string(),
    )
}

fn tools_run(bench: &Bench, log: &Path, llm: &str, extra: &[&str]) -> Output {
    let mut args = vec!["--llm", llm, "--llm-retries", "0"];
    args.extend_from_slice(extra);
    bench
        .command("tools", log, &args)
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .output()
        .unwrap()
}

#[test]
fn the_tools_agent_sends_tool_choice_in_each_wire_format() {
    let bench = Bench::toy();
    let server = MockServer::start();
    server.always(tool_call_reply());
    let out = tools_run(&bench, &bench.log("required"), &llm_at(&server, "m"), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = tools_run(
        &bench,
        &bench.log("auto"),
        &llm_at(&server, "m"),
        &["--tool-choice", "auto"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let seen = server.requests();
    assert_eq!(seen[0].json()["tool_choice"], "required");
    assert_eq!(seen[1].json()["tool_choice"], "auto");

    let anthropic = MockServer::start();
    anthropic.always(Reply::json(
        200,
        json!({"id": "msg", "type": "message", "role": "assistant", "model": "mock",
               "content": [{"type": "tool_use", "id": "tu_1", "name": "Final_Answer",
                            "input": {"final_answer": "done"}}],
               "stop_reason": "tool_use", "usage": {"input_tokens": 5, "output_tokens": 3}})
        .to_string(),
    ));
    let out = tools_run(
        &bench,
        &bench.log("anthropic"),
        &format!("anthropic:m@{}", anthropic.url()),
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        anthropic.requests()[0].json()["tool_choice"],
        json!({"type": "any"})
    );
}

#[test]
fn a_server_that_rejects_tool_choice_is_asked_again_without_it_and_not_sent_it_again() {
    let bench = Bench::toy();
    let server = MockServer::start();
    server.push(Reply::json(
        400,
        r#"{"error":{"message":"tool_choice 'required' is not supported by this server","type":"invalid_request_error"}}"#,
    ));
    let list_call = Reply::json(
        200,
        json!({
            "id": "c", "object": "chat.completion", "created": 1u64, "model": "mock",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": null,
                "tool_calls": [{"id": "call_1", "type": "function",
                                "function": {"name": "List_Files", "arguments": "{\"dir_path\": \".\"}"}}]}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105}
        })
        .to_string(),
    );
    server.push(list_call);
    server.always(tool_call_reply());
    let log = bench.log("logs");
    let out = tools_run(&bench, &log, &llm_at(&server, "m"), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(trace_actions(&log), ["List Files", "Final Answer"]);
    let seen = server.requests();
    assert_eq!(
        seen.len(),
        3,
        "one rejected call, its retry, and the next step"
    );
    assert_eq!(seen[0].json()["tool_choice"], "required");
    assert!(seen[1].json().get("tool_choice").is_none());
    assert!(
        seen[2].json().get("tool_choice").is_none(),
        "the rejection is remembered"
    );
    assert!(
        text(&out.stderr).contains("rejects tool_choice"),
        "{}",
        text(&out.stderr)
    );
}

fn llm_check(dir: &Path, args: &[&str]) -> Output {
    common::mlab()
        .current_dir(dir)
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .arg("llm-check")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn llm_check_warns_when_the_model_does_not_follow_the_one_word_instruction() {
    let dir = tempfile::tempdir().unwrap();
    let server = MockServer::start();
    let rambling: String = (1..=40)
        .map(|i| format!("line {i} of a long answer that ignores the instruction\n"))
        .collect();
    server.always(Reply::openai_text(&rambling, 10, 400));
    let llm = llm_at(&server, "tiny");
    let out = llm_check(dir.path(), &["--llm", &llm]);
    assert!(
        !out.status.success(),
        "not following the instruction fails the check"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("reachable, but did not follow a one-line instruction"),
        "{stderr}"
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("line 3 of"), "{stdout}");
    assert!(
        !stdout.contains("line 4 of"),
        "at most a few lines: {stdout}"
    );
    assert!(stdout.contains("(37 more lines)"), "{stdout}");

    let out = llm_check(dir.path(), &["--llm", &llm, "--lenient"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("did not follow"));

    let good = MockServer::start();
    good.always(Reply::openai_text("**Ready.**", 10, 2));
    let out = llm_check(dir.path(), &["--llm", &llm_at(&good, "tiny")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("followed the instruction"));
}

#[test]
fn a_cost_cap_with_an_unknown_price_is_refused_at_start_and_llm_check_says_so() {
    let bench = Bench::toy();
    let server = MockServer::start();
    server.always(Reply::openai_text(
        final_answer("x").as_str().unwrap(),
        10,
        5,
    ));
    let llm = llm_at(&server, "no-such-priced-model");
    let log = bench.log("logs");
    let out = research(&bench, &log, &llm, &["--max-cost", "0.001"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("--max-cost cannot be enforced") && err.contains("--prices"),
        "{err}"
    );
    assert!(server.requests().is_empty(), "refused before any call");

    // With a price it runs.
    let prices = bench.path().join("prices.toml");
    std::fs::write(
        &prices,
        "\"no-such-priced-model\" = { input = 1.0, output = 2.0 }\n",
    )
    .unwrap();
    let log = bench.log("priced");
    let out = research(
        &bench,
        &log,
        &llm,
        &["--max-cost", "1", "--prices", prices.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = llm_check(bench.path(), &["--llm", &llm]);
    assert!(
        text(&out.stdout).contains("cost:    unknown"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_call_whose_prompt_alone_passes_the_cost_cap_is_not_sent() {
    let bench = Bench::toy();
    let server = MockServer::start();
    server.always(Reply::openai_text(
        final_answer("x").as_str().unwrap(),
        10,
        5,
    ));
    let prices = bench.path().join("prices.toml");
    // $1000 per million input tokens: the research prompt (about 1,000
    // tokens) costs about $1, past a $0.10 cap.
    std::fs::write(&prices, "\"pricey\" = { input = 1000.0, output = 0.0 }\n").unwrap();
    let log = bench.log("logs");
    let out = research(
        &bench,
        &log,
        &llm_at(&server, "pricey"),
        &["--max-cost", "0.1", "--prices", prices.to_str().unwrap()],
    );
    let run = run_json(&log);
    assert_eq!(run["exit_reason"], "budget", "{run}\n{}", text(&out.stderr));
    assert!(run["error"].as_str().unwrap().contains("not sent"), "{run}");
    assert!(server.requests().is_empty(), "the call reached the server");
}
