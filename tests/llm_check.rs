//! `mlab llm-check` end to end against mock providers on 127.0.0.1: the
//! reply, tokens and cost it prints, the errors and fixes it gives, keys
//! from the environment and from the original's key files, the human model
//! on stdin, and replaying a recorded run.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{mlab, output, text};
use mlab::testing::mock_server::{MockServer, Reply};

const KEY: &str = "sk-e2e-secret-8d2b6f0c44a1";

/// `mlab` with no provider settings inherited from the developer's shell.
fn clean_mlab(cwd: &Path) -> Command {
    let mut c = mlab();
    for var in [
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "RUST_LOG",
    ] {
        c.env_remove(var);
    }
    c.current_dir(cwd);
    c
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
fn check_against_an_openai_server_prints_reply_tokens_and_cost_and_records_the_call() {
    let server = MockServer::start();
    server.push(Reply::openai_text("ready", 20, 2));
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("run");
    let out = output(
        clean_mlab(dir.path())
            .env("OPENAI_API_KEY", KEY)
            .args(["llm-check", "--llm"])
            .arg(format!("openai:gpt-4o@{}/v1", server.url()))
            .arg("--log-dir")
            .arg(&logs),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("reply:   ready"), "{stdout}");
    assert!(stdout.contains("tokens:  20 input, 2 output"), "{stdout}");
    // gpt-4o list price: 20 * 2.5 + 2 * 10 per million.
    assert!(stdout.contains("cost:    $0.000070"), "{stdout}");
    assert!(stdout.contains("latency: "), "{stdout}");

    let seen = &server.requests()[0];
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    let body = seen.json();
    assert_eq!(body["model"], "gpt-4o");
    assert_eq!(body["messages"][0]["role"], "user");

    let record = std::fs::read_to_string(logs.join("agent_log/llm_calls.jsonl")).unwrap();
    let rec: serde_json::Value = serde_json::from_str(record.lines().next().unwrap()).unwrap();
    assert_eq!(rec["response"], "ready");
    assert_eq!(rec["role"], "main");
    assert!(logs.join("agent_log/llm_check_0.log").is_file());
    assert!(
        !all_text_under(&logs).contains(KEY),
        "the key reached the log folder"
    );
}

#[test]
fn check_against_an_anthropic_server_uses_its_base_url_and_headers() {
    let server = MockServer::start();
    server.push(Reply::anthropic_text("ready", 15, 1));
    let dir = tempfile::tempdir().unwrap();
    let out = output(
        clean_mlab(dir.path())
            .env("ANTHROPIC_API_KEY", KEY)
            .env("ANTHROPIC_BASE_URL", server.url())
            .args(["llm-check", "--llm", "claude-3-5-haiku-latest"]),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("reply:   ready"), "{stdout}");
    assert!(stdout.contains("tokens:  15 input, 1 output"), "{stdout}");
    let seen = &server.requests()[0];
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some(KEY));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(seen.json()["model"], "claude-3-5-haiku-latest");
}

#[test]
fn key_files_in_the_working_directory_are_used() {
    let server = MockServer::start();
    server.push(Reply::openai_text("ready", 5, 1));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("openai_api_key.txt"),
        format!("org-e2e:{KEY}\n"),
    )
    .unwrap();
    let out = output(
        clean_mlab(dir.path())
            .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
            .args(["llm-check", "--llm", "gpt-4o-mini"]),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let seen = &server.requests()[0];
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(seen.header("openai-organization"), Some("org-e2e"));
}

#[test]
fn a_missing_key_is_named_with_both_ways_to_give_it() {
    let dir = tempfile::tempdir().unwrap();
    for (model, var, file) in [
        ("gpt-4o", "OPENAI_API_KEY", "openai_api_key.txt"),
        (
            "claude-3-opus-20240229",
            "ANTHROPIC_API_KEY",
            "claude_api_key.txt",
        ),
    ] {
        let out = output(clean_mlab(dir.path()).args(["llm-check", "--llm", model]));
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(err.contains(var) && err.contains(file), "{err}");
    }
}

#[test]
fn a_refusal_prints_the_server_message_and_the_fix_without_the_key() {
    let server = MockServer::start();
    server.push(Reply::json(
        401,
        format!(
            r#"{{"error":{{"message":"Incorrect API key provided: {KEY}.","type":"invalid_request_error","code":"invalid_api_key"}}}}"#
        ),
    ));
    let dir = tempfile::tempdir().unwrap();
    let out = output(
        clean_mlab(dir.path())
            .env("OPENAI_API_KEY", KEY)
            .args(["llm-check", "--llm"])
            .arg(format!("openai:gpt-4o@{}/v1", server.url())),
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("HTTP 401: Incorrect API key provided"),
        "{err}"
    );
    assert!(
        err.contains("fix:") && err.contains("OPENAI_API_KEY"),
        "{err}"
    );
    assert!(
        !err.contains(KEY) && !text(&out.stdout).contains(KEY),
        "{err}"
    );
    assert_eq!(server.requests().len(), 1, "a 401 must not be retried");
}

#[test]
fn an_unreachable_server_fails_fast_with_what_to_check() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens there.
    let out = output(clean_mlab(dir.path()).args([
        "llm-check",
        "--llm",
        "openai:llama3@http://127.0.0.1:1/v1",
        "--llm-backoff",
        "0.01",
    ]));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("could not be reached after 3 attempts"),
        "{err}"
    );
    assert!(err.contains("fix:") && err.contains("base URL"), "{err}");
}

#[test]
fn without_llm_the_error_names_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out = output(clean_mlab(dir.path()).args(["llm-check"]));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--llm <MODEL>"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_human_model_shows_the_prompt_and_reads_the_reply_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = clean_mlab(dir.path())
        .args(["llm-check", "--llm", "human", "--lenient"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"ready\nand a second line\n.\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("reply:   ready\n         and a second line"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("Reply with the single word"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("cost:    $0.000000"));
}

#[test]
fn a_recorded_run_replays_without_a_server_and_a_changed_prompt_is_caught() {
    let server = MockServer::start();
    server.push(Reply::openai_text("recorded answer", 9, 2));
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run1");
    let first = output(
        clean_mlab(dir.path())
            .args(["llm-check", "--lenient", "--llm"])
            .arg(format!("openai:llama3@{}/v1", server.url()))
            .arg("--log-dir")
            .arg(&run),
    );
    assert!(first.status.success(), "{}", text(&first.stderr));

    let replay = format!("replay:{}", run.display());
    let again = output(clean_mlab(dir.path()).args(["llm-check", "--lenient", "--llm", &replay]));
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(text(&again.stdout).contains("reply:   recorded answer"));
    assert_eq!(
        server.requests().len(),
        1,
        "replay must not call the server"
    );

    // Change the recorded prompt: strict replay refuses, lenient warns.
    let calls = run.join("agent_log/llm_calls.jsonl");
    let recorded = std::fs::read_to_string(&calls).unwrap();
    std::fs::write(
        &calls,
        recorded.replace("connection check", "connexion check"),
    )
    .unwrap();
    let strict = output(clean_mlab(dir.path()).args(["llm-check", "--llm", &replay]));
    assert!(!strict.status.success());
    let err = text(&strict.stderr);
    assert!(
        err.contains("differs from the recording") && err.contains("--replay-lenient"),
        "{err}"
    );
    let lenient = output(clean_mlab(dir.path()).args([
        "llm-check",
        "--lenient",
        "--llm",
        &replay,
        "--replay-lenient",
    ]));
    assert!(lenient.status.success(), "{}", text(&lenient.stderr));
    assert!(text(&lenient.stdout).contains("reply:   recorded answer"));
    assert!(text(&lenient.stderr).contains("differs from the recording"));
}
