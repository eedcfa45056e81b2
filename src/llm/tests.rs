//! The layer as a whole against mock providers on 127.0.0.1 speaking the real
//! wire formats: exact requests, every fault the transport must survive,
//! usage, cost, budgets, records, and the file-backed models.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::anthropic::Anthropic;
use super::cost::{Budget, PriceTable};
use super::keys::ApiKey;
use super::metered::{Account, Backend, Metered};
use super::openai::OpenAi;
use super::record::Recorder;
use super::*;
use crate::testing::mock_server::{MockServer, Reply};

const OPENAI_KEY: &str = "sk-test-openai-4f9c2e7a1b";
const ANTHROPIC_KEY: &str = "sk-ant-test-77d1e0c3aa";

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        retries: 4,
        timeout: Duration::from_secs(5),
        deadline: Duration::from_secs(30),
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(50),
        ..RetryPolicy::default()
    }
}

fn openai_at(server: &MockServer, model: &str, policy: RetryPolicy) -> Arc<dyn Backend> {
    Arc::new(
        OpenAi::new(
            model,
            model,
            Some(&format!("{}/v1", server.url())),
            Some(ApiKey::new(OPENAI_KEY, Some("org-test"))),
            policy,
        )
        .unwrap(),
    )
}

fn anthropic_at(server: &MockServer, model: &str, policy: RetryPolicy) -> Arc<dyn Backend> {
    Arc::new(
        Anthropic::new(
            model,
            model,
            Some(&server.url()),
            Some(ApiKey::new(ANTHROPIC_KEY, None)),
            policy,
        )
        .unwrap(),
    )
}

fn account(log_dir: Option<&Path>, budget: Budget) -> Arc<Account> {
    Arc::new(Account::new(
        PriceTable::builtin(),
        budget,
        log_dir.map(|d| Recorder::open(d).unwrap()),
    ))
}

fn metered(backend: Arc<dyn Backend>, log_dir: Option<&Path>) -> Metered {
    Metered::new(
        RoleName::Main,
        "model-under-test",
        backend,
        account(log_dir, Budget::default()),
    )
}

fn records(log_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log_dir.join("agent_log/llm_calls.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn anthropic_error(status: u16, kind: &str, message: &str) -> Reply {
    Reply::json(
        status,
        serde_json::json!({"type": "error", "error": {"type": kind, "message": message}})
            .to_string(),
    )
}

fn openai_error(status: u16, message: &str, code: Option<&str>) -> Reply {
    Reply::json(
        status,
        serde_json::json!({"error": {"message": message, "type": "invalid_request_error",
                                     "param": null, "code": code}})
        .to_string(),
    )
}

fn agent_request() -> Request {
    Request {
        messages: vec![
            Message::system("You are a research assistant."),
            Message::user("List the files."),
        ],
        stop: vec!["Observation:".into()],
        max_tokens: 2000,
        temperature: 0.5,
        tools: vec![ToolSpec {
            name: "List_Files".into(),
            description: "List files in a folder".into(),
            parameters: serde_json::json!({"type": "object",
                "properties": {"dir_path": {"type": "string"}}, "required": ["dir_path"]}),
        }],
        tool_choice: None,
        log_file: None,
    }
}

#[test]
fn openai_request_body_and_headers_are_exactly_the_wire_format() {
    let server = MockServer::start();
    server.push(Reply::openai_text("Action: List Files", 30, 5));
    let m = metered(openai_at(&server, "gpt-4o", fast_policy()), None);
    let c = m.complete(&agent_request()).unwrap();
    assert_eq!(c.text, "Action: List Files");

    let seen = &server.requests()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {OPENAI_KEY}").as_str())
    );
    assert_eq!(seen.header("openai-organization"), Some("org-test"));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(
        seen.json(),
        serde_json::json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "You are a research assistant."},
                {"role": "user", "content": "List the files."}
            ],
            "max_tokens": 2000,
            "temperature": 0.5,
            "stop": ["Observation:"],
            "tools": [{"type": "function", "function": {
                "name": "List_Files", "description": "List files in a folder",
                "parameters": {"type": "object", "properties": {"dir_path": {"type": "string"}},
                               "required": ["dir_path"]}}}]
        })
    );
}

#[test]
fn anthropic_request_body_and_headers_are_exactly_the_wire_format() {
    let server = MockServer::start();
    server.push(Reply::anthropic_text("Action: List Files", 30, 5));
    let m = metered(
        anthropic_at(&server, "claude-3-5-sonnet-20241022", fast_policy()),
        None,
    );
    let c = m.complete(&agent_request()).unwrap();
    assert_eq!(c.text, "Action: List Files");
    assert_eq!(c.usage.input_tokens, 30);

    let seen = &server.requests()[0];
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some(ANTHROPIC_KEY));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert!(seen.header("authorization").is_none());
    assert_eq!(
        seen.json(),
        serde_json::json!({
            "model": "claude-3-5-sonnet-20241022",
            "max_tokens": 2000,
            "system": "You are a research assistant.",
            "messages": [{"role": "user", "content": "List the files."}],
            "stop_sequences": ["Observation:"],
            "temperature": 0.5,
            "tools": [{"name": "List_Files", "description": "List files in a folder",
                "input_schema": {"type": "object", "properties": {"dir_path": {"type": "string"}},
                                 "required": ["dir_path"]}}]
        })
    );
}

#[test]
fn tool_calls_come_back_from_both_providers() {
    let server = MockServer::start();
    server.push(Reply::json(
        200,
        r#"{"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[
            {"id":"call_9","type":"function","function":{"name":"List_Files","arguments":"{\"dir_path\":\"data\"}"}}]},
            "finish_reason":"tool_calls"}],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}"#,
    ));
    server.push(Reply::json(
        200,
        r#"{"id":"msg_2","type":"message","role":"assistant","model":"claude-x","content":[
            {"type":"tool_use","id":"toolu_9","name":"List_Files","input":{"dir_path":"data"}}],
            "stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":9,"output_tokens":4}}"#,
    ));
    for backend in [
        openai_at(&server, "gpt-4o", fast_policy()),
        anthropic_at(&server, "claude-x", fast_policy()),
    ] {
        let c = metered(backend, None).complete(&agent_request()).unwrap();
        assert_eq!(c.tool_calls.len(), 1);
        assert_eq!(c.tool_calls[0].name, "List_Files");
        assert_eq!(
            c.tool_calls[0].arguments,
            serde_json::json!({"dir_path": "data"})
        );
        assert_eq!(c.retries, 0, "a tool call without text is a full answer");
    }
}

#[test]
fn rate_limit_waits_at_least_retry_after_then_succeeds() {
    let server = MockServer::start();
    server.push(
        openai_error(429, "Rate limit reached", Some("rate_limit_exceeded"))
            .header("retry-after", "1"),
    );
    server.push(Reply::openai_text("ok", 5, 1));
    let dir = tempfile::tempdir().unwrap();
    let m = metered(
        openai_at(&server, "gpt-4o", fast_policy()),
        Some(dir.path()),
    );
    let start = Instant::now();
    let c = m.complete(&Request::prompt("hi", 10)).unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
    assert_eq!((c.text.as_str(), c.retries), ("ok", 1));
    let rec = &records(dir.path())[0];
    assert_eq!(rec["retries"], 1);
    let note = &rec["retry_log"][0];
    assert_eq!(note["attempt"], 1);
    assert!(
        note["error"].as_str().unwrap().contains("HTTP 429"),
        "{note}"
    );
    assert!(note["wait_s"].as_f64().unwrap() >= 1.0);
}

#[test]
fn server_errors_and_overload_are_retried_until_success() {
    let server = MockServer::start();
    server.push(anthropic_error(500, "api_error", "Internal server error"));
    server.push(anthropic_error(529, "overloaded_error", "Overloaded"));
    server.push(Reply::json(503, "upstream unavailable"));
    server.push(Reply::anthropic_text("finally", 5, 1));
    let m = metered(anthropic_at(&server, "claude-x", fast_policy()), None);
    let c = m.complete(&Request::prompt("hi", 10)).unwrap();
    assert_eq!((c.text.as_str(), c.retries), ("finally", 3));
    assert_eq!(server.requests().len(), 4);
}

#[test]
fn a_reply_slower_than_the_timeout_is_abandoned_and_retried() {
    let server = MockServer::start();
    server.push(Reply::openai_text("too late", 5, 1).delayed(Duration::from_secs(3)));
    // Every later attempt is answered at once (even if a loaded machine
    // makes one of them miss the short timeout too).
    server.always(Reply::openai_text("in time", 5, 1));
    let dir = tempfile::tempdir().unwrap();
    let policy = RetryPolicy {
        timeout: Duration::from_millis(500),
        ..fast_policy()
    };
    let m = metered(openai_at(&server, "gpt-4o", policy), Some(dir.path()));
    let c = m.complete(&Request::prompt("hi", 10)).unwrap();
    assert_eq!(c.text, "in time");
    assert!(c.retries >= 1);
    let note = &records(dir.path())[0]["retry_log"][0]["error"];
    assert!(
        note.as_str().unwrap().contains("no complete reply within"),
        "{note}"
    );
}

#[test]
fn a_dropped_connection_is_retried() {
    let server = MockServer::start();
    server.push(Reply::Drop);
    server.push(Reply::openai_text("after the drop", 5, 1));
    let m = metered(openai_at(&server, "gpt-4o", fast_policy()), None);
    let c = m.complete(&Request::prompt("hi", 10)).unwrap();
    assert_eq!((c.text.as_str(), c.retries), ("after the drop", 1));
}

#[test]
fn invalid_json_and_empty_content_are_retried() {
    let server = MockServer::start();
    server.push(Reply::json(200, "{\"choices\": [ this is not json"));
    server.push(Reply::openai_text("", 5, 0));
    server.push(Reply::openai_text("content at last", 5, 3));
    let dir = tempfile::tempdir().unwrap();
    let m = metered(
        openai_at(&server, "gpt-4o", fast_policy()),
        Some(dir.path()),
    );
    let c = m.complete(&Request::prompt("hi", 10)).unwrap();
    assert_eq!((c.text.as_str(), c.retries), ("content at last", 2));
    let rec = &records(dir.path())[0];
    let errors: Vec<&str> = rec["retry_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["error"].as_str().unwrap())
        .collect();
    assert!(errors[0].contains("not valid JSON"), "{errors:?}");
    assert!(errors[1].contains("no content"), "{errors:?}");

    // Anthropic: an empty content list is retried too.
    let server = MockServer::start();
    server.push(Reply::json(
        200,
        r#"{"id":"m","type":"message","role":"assistant","content":[],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":0}}"#,
    ));
    server.push(Reply::anthropic_text("there", 3, 1));
    let c = metered(anthropic_at(&server, "claude-x", fast_policy()), None)
        .complete(&Request::prompt("hi", 10))
        .unwrap();
    assert_eq!((c.text.as_str(), c.retries), ("there", 1));
}

#[test]
fn context_length_errors_become_prompt_too_long_without_retrying() {
    let server = MockServer::start();
    server.push(openai_error(
        400,
        "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
        Some("context_length_exceeded"),
    ));
    server.push(anthropic_error(
        400,
        "invalid_request_error",
        "prompt is too long: 210000 tokens > 200000 maximum",
    ));
    let e = metered(openai_at(&server, "gpt-4", fast_policy()), None)
        .complete(&Request::prompt("long", 10))
        .unwrap_err();
    assert!(
        matches!(&e, LlmError::PromptTooLong(m) if m.contains("8192")),
        "{e}"
    );
    let e = metered(anthropic_at(&server, "claude-x", fast_policy()), None)
        .complete(&Request::prompt("long", 10))
        .unwrap_err();
    assert!(
        matches!(&e, LlmError::PromptTooLong(m) if m.contains("200000")),
        "{e}"
    );
    assert_eq!(
        server.requests().len(),
        2,
        "context errors must not be retried"
    );
}

#[test]
fn other_client_errors_are_refused_at_once_with_the_server_message() {
    let server = MockServer::start();
    server.push(openai_error(
        404,
        "The model `gpt-9` does not exist",
        Some("model_not_found"),
    ));
    server.always(Reply::openai_text("must not be reached", 1, 1));
    let e = metered(openai_at(&server, "gpt-9", fast_policy()), None)
        .complete(&Request::prompt("hi", 10))
        .unwrap_err();
    match &e {
        LlmError::Refused(m) => {
            assert!(m.contains("HTTP 404"), "{m}");
            assert!(m.contains("The model `gpt-9` does not exist"), "{m}");
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn retries_run_out_into_unreachable_with_the_last_error() {
    let server = MockServer::start();
    server.always(openai_error(500, "The server had an error", None));
    let policy = RetryPolicy {
        retries: 2,
        ..fast_policy()
    };
    let dir = tempfile::tempdir().unwrap();
    let e = metered(openai_at(&server, "gpt-4o", policy), Some(dir.path()))
        .complete(&Request::prompt("hi", 10))
        .unwrap_err();
    match &e {
        LlmError::Unreachable { attempts, last } => {
            assert_eq!(*attempts, 3);
            assert!(
                last.contains("HTTP 500") && last.contains("The server had an error"),
                "{last}"
            );
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert_eq!(server.requests().len(), 3);
    let rec = &records(dir.path())[0];
    assert_eq!(rec["error_kind"], "unreachable");
    assert_eq!(rec["retries"], 2);
    assert!(rec["response"].is_null());
}

#[test]
fn the_deadline_ends_retries_early() {
    let server = MockServer::start();
    server.always(Reply::json(503, "busy").header("retry-after", "5"));
    let policy = RetryPolicy {
        deadline: Duration::from_secs(2),
        ..fast_policy()
    };
    let start = Instant::now();
    let e = metered(openai_at(&server, "gpt-4o", policy), None)
        .complete(&Request::prompt("hi", 10))
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "waited past the deadline"
    );
    assert!(
        matches!(&e, LlmError::Unreachable { last, .. } if last.contains("deadline")),
        "{e}"
    );
}

#[test]
fn usage_cost_and_latency_are_recorded_per_call_and_in_totals() {
    let server = MockServer::start();
    server.push(Reply::openai_text("first", 1000, 500));
    server.push(Reply::openai_text("second", 2000, 100));
    let dir = tempfile::tempdir().unwrap();
    let acct = account(Some(dir.path()), Budget::default());
    let backend = openai_at(&server, "gpt-4o-2024-08-06", fast_policy());
    let main = Metered::new(
        RoleName::Main,
        "gpt-4o-2024-08-06",
        backend.clone(),
        acct.clone(),
    );
    let fast = Metered::new(RoleName::Fast, "gpt-4o-2024-08-06", backend, acct);
    let c1 = main.complete(&Request::prompt("a", 10)).unwrap();
    let c2 = fast.complete(&Request::prompt("b", 10)).unwrap();
    // gpt-4o: $2.50 in, $10 out per million.
    assert!((c1.cost_usd - 0.0075).abs() < 1e-12, "{}", c1.cost_usd);
    assert!((c2.cost_usd - 0.006).abs() < 1e-12, "{}", c2.cost_usd);
    assert!(!c1.usage.estimated);

    let models = Models {
        main: Arc::new(main),
        fast: Arc::new(fast),
        edit: Arc::new(Metered::new(
            RoleName::Edit,
            "x",
            openai_at(&server, "gpt-4o", fast_policy()),
            account(None, Budget::default()),
        )),
        edit_max_tokens: 4000,
        main_max_tokens: 2000,
    };
    let (usage, cost) = models.totals();
    assert_eq!((usage.input_tokens, usage.output_tokens), (3000, 600));
    assert!((cost - 0.0135).abs() < 1e-12);

    let recs = records(dir.path());
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0]["role"], "main");
    assert_eq!(recs[1]["role"], "fast");
    assert_eq!(recs[0]["model"], "gpt-4o-2024-08-06");
    assert_eq!(recs[0]["provider"], "openai");
    assert_eq!(recs[0]["response"], "first");
    assert_eq!(recs[0]["request"]["messages"][0]["content"], "a");
    assert_eq!(recs[0]["request"]["max_tokens"], 10);
    assert_eq!(
        recs[0]["usage"],
        serde_json::json!({"input_tokens": 1000, "output_tokens": 500, "estimated": false})
    );
    assert!((recs[0]["cost_usd"].as_f64().unwrap() - 0.0075).abs() < 1e-12);
    assert!(recs[0]["latency_s"].as_f64().unwrap() > 0.0);
    assert!(recs[0]["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn missing_usage_is_estimated_and_marked_so() {
    let server = MockServer::start();
    server.push(Reply::json(
        200,
        r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"12345678"},"finish_reason":"stop"}]}"#,
    ));
    let c = metered(openai_at(&server, "llama3", fast_policy()), None)
        .complete(&Request::prompt("abcdefghijkl", 10))
        .unwrap();
    assert_eq!(
        c.usage,
        Usage {
            input_tokens: 3,
            output_tokens: 2,
            estimated: true
        }
    );
    assert_eq!(
        c.cost_usd, 0.0,
        "a local model unknown to the price table is free"
    );
}

#[test]
fn a_budget_stops_the_next_call_before_it_is_sent() {
    let server = MockServer::start();
    server.always(Reply::openai_text("spent", 120, 30));
    let budgets = [
        Budget {
            max_cost: None,
            max_total_tokens: Some(100),
        },
        Budget {
            // One call of gpt-4o at 120 in / 30 out costs $0.0006.
            max_cost: Some(0.0005),
            max_total_tokens: None,
        },
    ];
    for budget in budgets {
        let before = server.requests().len();
        let m = Metered::new(
            RoleName::Main,
            "gpt-4o",
            openai_at(&server, "gpt-4o", fast_policy()),
            account(None, budget),
        );
        m.complete(&Request::prompt("one", 10)).unwrap();
        let e = m.complete(&Request::prompt("two", 10)).unwrap_err();
        assert!(matches!(e, LlmError::Budget(_)), "{e}");
        assert_eq!(
            server.requests().len(),
            before + 1,
            "the stopped call reached the server"
        );
    }
}

#[test]
fn the_readable_call_log_is_written_where_the_caller_asks() {
    let server = MockServer::start();
    server.push(Reply::anthropic_text("I will list files.", 11, 6));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("env_log/tool_logs/step_0_tool_log.log");
    let mut req = Request::prompt("What next?", 300);
    req.log_file = Some(log.clone());
    metered(anthropic_at(&server, "claude-x", fast_policy()), None)
        .complete(&req)
        .unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("\n\nHuman: What next? \n\nAssistant:"),
        "{text}"
    );
    assert!(
        text.contains("===================model-under-test response (300)=====================")
    );
    assert!(text.contains("I will list files."));
    assert!(text.contains("Number of prompt tokens: 11\nNumber of sampled tokens: 6\n"));
}

fn all_text_under(dir: &Path) -> String {
    let mut all = String::new();
    for e in walkdir::WalkDir::new(dir) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            all.push_str(&String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()));
        }
    }
    all
}

#[test]
fn no_key_text_reaches_the_log_folder_or_errors() {
    const KEY: &str = "sk-proj-leakcheck-5c1d9e0f7a";
    let server = MockServer::start();
    // A server echoing the key in full and masked, then a prompt that holds it.
    server.push(openai_error(
        401,
        &format!("Incorrect API key provided: {KEY}. Or sk-proj-***********f7a."),
        Some("invalid_api_key"),
    ));
    server.push(Reply::openai_text(
        &format!("I see {KEY} in the file"),
        5,
        5,
    ));
    let dir = tempfile::tempdir().unwrap();
    let backend: Arc<dyn Backend> = Arc::new(
        OpenAi::new(
            "gpt-4o",
            "gpt-4o",
            Some(&format!("{}/v1", server.url())),
            Some(ApiKey::new(KEY, None)),
            fast_policy(),
        )
        .unwrap(),
    );
    let m = metered(backend, Some(dir.path()));
    let e = m.complete(&Request::prompt("hi", 10)).unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(KEY) && !shown.contains("***"), "{shown}");
    let mut req = Request::prompt(format!("The file holds {KEY}"), 10);
    req.log_file = Some(dir.path().join("agent_log/step_0_log.log"));
    m.complete(&req).unwrap();
    assert_eq!(
        server.requests()[1].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    let logs = all_text_under(dir.path());
    assert!(
        logs.contains("Incorrect API key provided"),
        "the error was not recorded"
    );
    assert!(
        !logs.contains(KEY),
        "the key reached the log folder:\n{logs}"
    );
    assert!(
        !logs.contains("leakcheck"),
        "part of the key reached the log folder"
    );
}

// ---- models built from the command line ----

/// The configuration the front end makes of these `mlab run` flags (the
/// few the tests below use).
fn args(flags: &[&str]) -> Config {
    let mut c = Config::default();
    let mut it = flags.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("the flag takes a value").to_string();
        match *flag {
            "--llm" => c.llm = Some(value()),
            "--edit-script-max-tokens" => c.edit_script_max_tokens = value().parse().unwrap(),
            "--prices" => c.prices = Some(value().into()),
            "--replay-lenient" => c.replay_lenient = true,
            other => panic!("the test helper does not know {other}"),
        }
    }
    c
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_missing_llm_flag_is_an_error_naming_it() {
    let e = Models::new(&args(&[]), None).err().unwrap().to_string();
    assert!(e.contains("--llm"), "{e}");
}

#[test]
fn roles_default_to_the_main_model_and_max_tokens_come_from_flags() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.jsonl");
    write(&script, "\"a\"\n\"b\"\n\"c\"\n");
    let spec = format!("scripted:{}", script.display());
    let m = Models::new(
        &args(&["--llm", &spec, "--edit-script-max-tokens", "1234"]),
        None,
    )
    .unwrap();
    assert_eq!(m.fast.name(), spec);
    assert_eq!(m.edit.name(), spec);
    assert_eq!((m.main_max_tokens, m.edit_max_tokens), (2000, 1234));
    // One script shared by the roles: answers go out in call order.
    assert_eq!(m.fast.complete(&Request::prompt("x", 1)).unwrap().text, "a");
    assert_eq!(m.main.complete(&Request::prompt("x", 1)).unwrap().text, "b");
    assert_eq!(m.edit.complete(&Request::prompt("x", 1)).unwrap().text, "c");
}

#[test]
fn scripted_model_gives_texts_tool_calls_errors_and_then_a_clear_end() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("replies.jsonl");
    write(
        &script,
        r#""plain text"

{"text": "with a tool", "tool_calls": [{"name": "List_Files", "arguments": {"dir_path": "."}}], "usage": {"input_tokens": 7, "output_tokens": 2}}
{"error": "prompt_too_long", "message": "scripted overflow"}
"#,
    );
    let m = Models::new(
        &args(&["--llm", &format!("scripted:{}", script.display())]),
        None,
    )
    .unwrap();
    let c = m.main.complete(&Request::prompt("q", 1)).unwrap();
    assert_eq!(c.text, "plain text");
    assert!(c.usage.estimated);
    assert_eq!(c.cost_usd, 0.0);
    let c = m.main.complete(&Request::prompt("q", 1)).unwrap();
    assert_eq!(c.tool_calls[0].name, "List_Files");
    assert_eq!(c.tool_calls[0].arguments["dir_path"], ".");
    assert_eq!(c.usage.input_tokens, 7);
    assert!(!c.usage.estimated);
    let e = m.main.complete(&Request::prompt("q", 1)).unwrap_err();
    assert!(
        matches!(&e, LlmError::PromptTooLong(m) if m == "scripted overflow"),
        "{e}"
    );
    let e = m
        .main
        .complete(&Request::prompt("q", 1))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no reply left") && e.contains("replies.jsonl") && e.contains("all 3"),
        "{e}"
    );

    write(&script, "\"ok\"\n{\"txt\": \"typo\"}\n");
    let e = Models::new(
        &args(&["--llm", &format!("scripted:{}", script.display())]),
        None,
    )
    .err()
    .unwrap();
    assert!(format!("{e:#}").contains("line 2"), "{e:#}");
}

#[test]
fn replay_returns_recorded_answers_and_rejects_a_changed_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.jsonl");
    write(
        &script,
        "\"main one\"\n\"fast one\"\n{\"error\":\"prompt_too_long\",\"message\":\"too big\"}\n\"main two\"\n",
    );
    let run1 = dir.path().join("run1");
    let m = Models::new(
        &args(&["--llm", &format!("scripted:{}", script.display())]),
        Some(&run1),
    )
    .unwrap();
    m.main.complete(&Request::prompt("p1", 5)).unwrap();
    m.fast.complete(&Request::prompt("f1", 5)).unwrap();
    m.main.complete(&Request::prompt("p2", 5)).unwrap_err();
    m.main.complete(&Request::prompt("p3", 5)).unwrap();

    let replay = format!("replay:{}", run1.display());
    let run2 = dir.path().join("run2");
    let r = Models::new(&args(&["--llm", &replay]), Some(&run2)).unwrap();
    // Roles replay their own calls, whatever the interleaving.
    assert_eq!(
        r.fast.complete(&Request::prompt("f1", 5)).unwrap().text,
        "fast one"
    );
    assert_eq!(
        r.main.complete(&Request::prompt("p1", 5)).unwrap().text,
        "main one"
    );
    let e = r.main.complete(&Request::prompt("p2", 5)).unwrap_err();
    assert!(
        matches!(&e, LlmError::PromptTooLong(m) if m == "too big"),
        "{e}"
    );
    assert_eq!(
        r.main.complete(&Request::prompt("p3", 5)).unwrap().text,
        "main two"
    );
    let e = r
        .main
        .complete(&Request::prompt("p4", 5))
        .unwrap_err()
        .to_string();
    assert!(e.contains("went further than the recording"), "{e}");
    assert_eq!(records(&run2).len(), 5, "the replayed run is recorded too");

    // A changed prompt: an error by default, a warning when lenient.
    let r = Models::new(&args(&["--llm", &replay]), None).unwrap();
    let e = r
        .main
        .complete(&Request::prompt("p1 changed", 5))
        .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, LlmError::Script(_)));
    assert!(
        text.contains("differs") && text.contains("--replay-lenient"),
        "{text}"
    );
    let r = Models::new(&args(&["--llm", &replay, "--replay-lenient"]), None).unwrap();
    assert_eq!(
        r.main
            .complete(&Request::prompt("p1 changed", 5))
            .unwrap()
            .text,
        "main one"
    );
}

#[test]
fn models_from_args_reach_a_local_openai_compatible_server() {
    let server = MockServer::start();
    server.push(Reply::openai_text("local says hi", 4, 3));
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("openai:llama3@{}/v1", server.url());
    let m = Models::new(&args(&["--llm", &spec]), Some(dir.path())).unwrap();
    let c = m.main.complete(&Request::prompt("hello", 20)).unwrap();
    assert_eq!(c.text, "local says hi");
    assert_eq!(c.cost_usd, 0.0);
    assert_eq!(server.requests()[0].json()["model"], "llama3");
    assert_eq!(records(dir.path())[0]["model"], spec.as_str());
}

#[test]
fn a_price_file_prices_a_local_model() {
    let server = MockServer::start();
    server.push(Reply::openai_text("priced", 1_000_000, 0));
    let dir = tempfile::tempdir().unwrap();
    let prices = dir.path().join("p.toml");
    write(&prices, "\"llama3\" = { input = 0.2, output = 0.4 }\n");
    let spec = format!("openai:llama3@{}/v1", server.url());
    let m = Models::new(
        &args(&["--llm", &spec, "--prices", prices.to_str().unwrap()]),
        None,
    )
    .unwrap();
    let c = m.main.complete(&Request::prompt("hello", 20)).unwrap();
    assert!((c.cost_usd - 0.2).abs() < 1e-12, "{}", c.cost_usd);
    assert!((m.totals().1 - 0.2).abs() < 1e-12);
}
