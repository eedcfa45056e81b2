//! Real outside agents through `--agent program`, offline: mini-swe-agent,
//! aider, Codex CLI and Claude Code, as `./install.sh --outside-agents` installs them,
//! each run on the toy task in the bubblewrap sandbox against a scripted
//! upstream that answers in the format that agent expects (Chat
//! Completions with tool calls for mini-swe-agent, streamed Chat
//! Completions for aider, streamed Responses with a function call for
//! Codex, streamed Anthropic Messages with a tool use for Claude Code).
//! Each writes a submission that `mlab eval` scores, with its calls
//! recorded as steps. The recipes are those of docs/outside-agents.md.
// A failed step panics with its message, which is how a test reports;
// clippy.toml allows this in #[test] functions only, so say it here for the
// helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
mod program_support;

use std::path::{Path, PathBuf};

use mlab::testing::mock_server::MockServer;
use program_support::{calls, ok, program_log, read_json, steps, ProgramBench};
use serde_json::json;

/// The agents venv, failing the test when it lacks the agent's command.
fn agents_venv(command: &str) -> PathBuf {
    let venv = mlab::agent::program::default_agents_venv();
    common::need(
        &format!(
            "the outside agents in {} (`{command}` missing): run ./install.sh --outside-agents",
            venv.display()
        ),
        venv.join("bin").join(command).is_file(),
    );
    venv
}

/// Runs the outside agent `cmd` (its log folder named `name`) on the toy task
/// under bubblewrap against `llm`, with the real key `key` (variable, value)
/// in mlab's environment; checks the run ended with a final answer and
/// returns its log folder.
fn run_agent(bench: &ProgramBench, name: &str, cmd: &str, llm: &str, key: (&str, &str)) -> PathBuf {
    let log = bench.log(name);
    let out = bench
        .command(&log, "bwrap", cmd, &["--llm", llm, "--max-time", "300"])
        .env(key.0, key.1)
        .output()
        .unwrap();
    ok(&out);
    let run = read_json(&log.join("run.json"));
    assert_eq!(
        run["exit_reason"],
        "final_answer",
        "{run}\n{}",
        program_log(&log)
    );
    log
}

/// Checks that each model call of the run at `log` is an `LLM Call` step in
/// the wire formats `wires`, and that `mlab eval` scores its submission 42.
fn assert_calls_and_score(bench: &ProgramBench, log: &Path, wires: &[&str]) {
    let s = steps(log);
    let seen: Vec<&str> = s
        .iter()
        .filter(|s| s["action"]["name"] == "LLM Call")
        .map(|s| s["action"]["args"]["wire_format"].as_str().unwrap())
        .collect();
    assert_eq!(seen, wires, "{s:?}");
    let entry = bench.eval(log);
    assert_eq!(
        entry["final_score"].as_f64(),
        Some(42.0),
        "{entry}\n{}",
        program_log(log)
    );
}

/// The mini-swe-agent recipe of docs/outside-agents.md.
const MINI: &str = r#"MSWEA_CONFIGURED=true MSWEA_COST_TRACKING=ignore_errors mini -y --exit-immediately -m "openai/$MLAB_MODEL" -t "$MLAB_PROBLEM Write the predictions to submission.csv in the current folder." -o "$HOME/trajectory.json""#;

/// The aider recipe of docs/outside-agents.md.
const AIDER: &str = r#"aider --model "openai/$MLAB_MODEL" --message "$MLAB_PROBLEM Write submission.csv." --yes-always --no-git --no-check-update --analytics-disable --no-show-model-warnings --no-auto-lint --no-pretty --no-fancy-input --edit-format whole"#;

#[test]
#[ignore = "needs outside agents: ./install.sh --outside-agents"]
fn mini_swe_agent_writes_a_submission_through_the_gateway_that_eval_scores() {
    common::need_bwrap();
    agents_venv("mini");
    let bench = ProgramBench::new();
    let upstream = MockServer::start();
    // Its bash tool: look, write the submission with the task's Python,
    // then the command that ends its run.
    upstream
        .push(program_support::openai_tool_call(
            "bash",
            &json!({"command": "ls && cat research_problem.txt"}),
            "call_1",
        ))
        .push(program_support::openai_tool_call(
            "bash",
            &json!({"command": "python -c \"open('submission.csv','w').write('value\\n42\\n')\""}),
            "call_2",
        ))
        .always(program_support::openai_tool_call(
            "bash",
            &json!({"command": "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"}),
            "call_3",
        ));
    let llm = format!("openai:mock-model@{}/v1", upstream.url());
    let log = run_agent(
        &bench,
        "mini",
        MINI,
        &llm,
        ("OPENAI_API_KEY", "sk-real-key-for-mini"),
    );
    let seen = upstream.requests();
    assert_eq!(seen.len(), 3, "{}", program_log(&log));
    let first = seen[0].json();
    assert_eq!(first["model"], "mock-model");
    assert!(first["messages"]
        .to_string()
        .contains("Write the number 42"));
    // The observation of its first command went back to the model.
    assert!(
        seen[1].body.contains("research_problem.txt"),
        "{}",
        seen[1].body
    );
    let s = steps(&log);
    let llm_steps = s
        .iter()
        .filter(|s| s["action"]["name"] == "LLM Call")
        .count();
    assert_eq!(llm_steps, 3, "{s:?}");
    assert_eq!(calls(&log).len(), 3);
    assert_eq!(bench.eval(&log)["final_score"].as_f64(), Some(42.0));
}

/// The Codex CLI recipe of docs/outside-agents.md.
const CODEX: &str = r#"codex exec --skip-git-repo-check --sandbox danger-full-access -c allow_login_shell=false -m "$MLAB_MODEL" -c model_provider=mlab -c "model_providers.mlab={name=\"mlab\",base_url=\"$OPENAI_BASE_URL\",env_key=\"OPENAI_API_KEY\",wire_api=\"responses\"}" "$MLAB_PROBLEM Write submission.csv in the current folder.""#;

#[test]
#[ignore = "needs outside agents: ./install.sh --outside-agents"]
fn codex_cli_writes_a_submission_over_the_responses_api_that_eval_scores() {
    common::need_bwrap();
    agents_venv("codex");
    let bench = ProgramBench::new();
    let upstream = MockServer::start();
    // Its exec_command tool writes the submission with the task's Python;
    // then a message ends its turn.
    upstream
        .push(program_support::responses_stream(
            json!({"type": "function_call", "id": "fc_1", "call_id": "call_1", "status": "completed",
                   "name": "exec_command",
                   "arguments": json!({"cmd": "python -c \"open('submission.csv','w').write('value\\n42\\n')\""}).to_string()}),
            1,
        ))
        .always(program_support::responses_stream(
            json!({"type": "message", "id": "msg_2", "role": "assistant", "status": "completed",
                   "content": [{"type": "output_text", "text": "Done.", "annotations": []}]}),
            2,
        ));
    let llm = format!("openai:mock-model@{}/v1", upstream.url());
    let log = run_agent(
        &bench,
        "codex",
        CODEX,
        &llm,
        ("OPENAI_API_KEY", "sk-real-key-for-codex"),
    );
    let seen = upstream.requests();
    assert_eq!(seen.len(), 2, "{}", program_log(&log));
    assert_eq!(seen[0].path, "/v1/responses");
    assert_eq!(seen[0].json()["model"], "mock-model");
    assert_eq!(
        seen[0].header("authorization"),
        Some("Bearer sk-real-key-for-codex")
    );
    // The command's result went back to the model.
    assert!(seen[1].body.contains("call_1"), "{}", seen[1].body);
    assert_calls_and_score(&bench, &log, &["openai-responses", "openai-responses"]);
}

/// The Claude Code recipe of docs/outside-agents.md.
const CLAUDE: &str = r#"IS_SANDBOX=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 claude -p "$MLAB_PROBLEM Write submission.csv in the current folder." --model "$MLAB_MODEL" --dangerously-skip-permissions"#;

#[test]
#[ignore = "needs outside agents: ./install.sh --outside-agents"]
fn claude_code_writes_a_submission_over_streamed_anthropic_messages_that_eval_scores() {
    common::need_bwrap();
    agents_venv("claude");
    let bench = ProgramBench::new();
    let upstream = MockServer::start();
    // Its Bash tool writes the submission with the task's Python; then a
    // text reply ends its turn.
    upstream
        .push(program_support::anthropic_stream(
            Some((
                "Bash",
                json!({"command": "python -c \"open('submission.csv','w').write('value\\n42\\n')\"",
                       "description": "Write the submission"}),
            )),
            1,
        ))
        .always(program_support::anthropic_stream(None, 2));
    let llm = format!("anthropic:mock-model@{}", upstream.url());
    let log = run_agent(
        &bench,
        "claude",
        CLAUDE,
        &llm,
        ("ANTHROPIC_API_KEY", "sk-ant-real-key-for-claude"),
    );
    let seen = upstream.requests();
    assert_eq!(seen.len(), 2, "{}", program_log(&log));
    assert!(seen[0].path.starts_with("/v1/messages"), "{}", seen[0].path);
    assert_eq!(seen[0].json()["model"], "mock-model");
    assert_eq!(seen[0].json()["stream"], true);
    assert_eq!(
        seen[0].header("x-api-key"),
        Some("sk-ant-real-key-for-claude")
    );
    // The command's result went back to the model.
    assert!(seen[1].body.contains("toolu_1"), "{}", seen[1].body);
    assert_calls_and_score(&bench, &log, &["anthropic", "anthropic"]);
}

#[test]
#[ignore = "needs outside agents: ./install.sh --outside-agents"]
fn aider_writes_a_submission_from_a_streamed_reply_that_eval_scores() {
    common::need_bwrap();
    agents_venv("aider");
    let bench = ProgramBench::new();
    let upstream = MockServer::start();
    upstream.always(program_support::openai_stream(
        "I will write the submission.\n\nsubmission.csv\n```\nvalue\n42\n```\n",
    ));
    let llm = format!("openai:mock-model@{}/v1", upstream.url());
    let log = run_agent(
        &bench,
        "aider",
        AIDER,
        &llm,
        ("OPENAI_API_KEY", "sk-real-key-for-aider"),
    );
    // One instruction, one reply that writes the file, no lint retries.
    let seen = upstream.requests();
    assert_eq!(seen.len(), 1, "{}", program_log(&log));
    let first = seen[0].json();
    assert_eq!(first["model"], "mock-model");
    assert_eq!(first["stream"], true);
    let s = steps(&log);
    assert_eq!(s[0]["action"]["name"], "LLM Call", "{s:?}");
    assert_eq!(s[0]["action"]["args"]["stream"], true);
    assert_eq!(bench.eval(&log)["final_score"].as_f64(), Some(42.0));
}
