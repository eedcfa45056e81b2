//! Helpers for the `--agent program` tests (tests/agent_program.rs and
//! tests/outside_agents.rs): a toy task whose eval.py scores the number at
//! the end of submission.csv, `mlab run --agent program` on it, `mlab
//! eval` of a run, and scripted upstream replies in the wire formats the
//! agents expect.
// Each test crate that includes this module uses only some of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

pub(crate) use crate::common;
pub use common::{read_json, text};
use mlab::testing::mock_server::Reply;
use mlab::testing::toy::ToyTask;

/// The toy eval: the last token of submission.csv, a number, is the score.
pub const EVAL: &str = r#"
import os

def get_score(folder):
    with open(os.path.join(folder, "submission.csv")) as f:
        return float(f.read().split()[-1])
"#;

/// What the answers file holds; no program may read it.
pub const ANSWER: &str = "the-hidden-answer-7f3a";

pub const PROBLEM: &str = "Write the number 42 as the last line of submission.csv (it's \"easy\").";

/// A benchmarks folder with the toy task, and room for logs and work.
pub struct ProgramBench {
    pub dir: tempfile::TempDir,
}

impl Default for ProgramBench {
    fn default() -> Self {
        Self::new()
    }
}

impl ProgramBench {
    pub fn new() -> ProgramBench {
        let dir = tempfile::tempdir().unwrap();
        ToyTask::new()
            .set("metric", "number")
            .empty_env()
            .env("train.py", "print('train')\n")
            .env("data.csv", "a,b\n1,2\n")
            .read_only("./data.csv\n")
            .eval_py(EVAL)
            .script("answer.txt", ANSWER)
            .research_problem(&format!("{PROBLEM}\n"))
            .write_in(&dir.path().join("bench"));
        ProgramBench { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `<tmp>/runs/<name>`: each run's log folder under its own root, so
    /// that `mlab eval` of one run sees only it.
    pub fn log(&self, name: &str) -> PathBuf {
        self.path().join("runs").join(name).join("run")
    }

    pub fn answer_file(&self) -> PathBuf {
        self.path().join("bench/toy/script/answer.txt")
    }

    /// `mlab run --agent program --agent-cmd CMD` under `sandbox`, not yet
    /// started.
    pub fn command(&self, log: &Path, sandbox: &str, cmd: &str, extra: &[&str]) -> Command {
        let mut c = common::mlab();
        c.arg("--benchmarks-dir")
            .arg(self.path().join("bench"))
            .args([
                "run",
                "--task",
                "toy",
                "--agent",
                "program",
                "--sandbox",
                sandbox,
            ])
            .arg("--agent-cmd")
            .arg(cmd)
            .arg("--log-dir")
            .arg(log)
            .arg("--work-dir")
            .arg(self.path().join("work"))
            .arg("--python")
            .arg(common::real_python())
            .args(extra)
            .stdin(std::process::Stdio::null());
        c
    }

    pub fn run(&self, log: &Path, sandbox: &str, cmd: &str, extra: &[&str]) -> Output {
        self.command(log, sandbox, cmd, extra).output().unwrap()
    }

    /// `mlab eval` of the run in `log`: its eval.json entry.
    pub fn eval(&self, log: &Path) -> Value {
        self.eval_with(log, &[])
    }

    /// [`ProgramBench::eval`] with more flags.
    pub fn eval_with(&self, log: &Path, extra: &[&str]) -> Value {
        let root = log.parent().unwrap();
        let out_file = self.path().join(format!(
            "eval-{}.json",
            root.file_name().unwrap().to_string_lossy()
        ));
        let out = common::mlab()
            .arg("--benchmarks-dir")
            .arg(self.path().join("bench"))
            .arg("eval")
            .arg("--log-folder")
            .arg(root)
            .arg("--output-file")
            .arg(&out_file)
            .arg("--python")
            .arg(common::python())
            .args(["--sandbox", "none"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mlab eval failed\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let doc = common::eval_outputs(&out_file);
        let key = log.join("env_log/trace.json").display().to_string();
        doc["runs"][&key].clone()
    }
}

/// Fails with both streams unless the run succeeded.
pub fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "mlab run failed\nstdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The run's trace steps.
pub fn steps(log: &Path) -> Vec<Value> {
    read_json(&log.join("env_log/trace.json"))["steps"]
        .as_array()
        .unwrap()
        .clone()
}

/// The lines of `<log>/agent_log/llm_calls.jsonl` (one definition, in
/// tests/common).
pub use crate::common::calls;

/// `agent_log/program.log`.
pub fn program_log(log: &Path) -> String {
    std::fs::read_to_string(log.join("agent_log/program.log")).unwrap_or_default()
}

/// A Chat Completions reply that calls the function `name` with `args`.
pub fn openai_tool_call(name: &str, args: &Value, id: &str) -> Reply {
    Reply::json(
        200,
        json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": 1700000000u64,
            "model": "mock",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Running a command.",
                "tool_calls": [{"id": id, "type": "function",
                                "function": {"name": name, "arguments": args.to_string()}}]},
                "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
        })
        .to_string(),
    )
}

/// A streamed Chat Completions reply of `text`, in two chunks, with usage.
pub fn openai_stream(text: &str) -> Reply {
    let mid = text
        .char_indices()
        .nth(text.chars().count() / 2)
        .map_or(0, |(i, _)| i);
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1700000000u64,
               "model": "mock", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut body = String::new();
    for piece in [&text[..mid], &text[mid..]] {
        let c = chunk(json!({"role": "assistant", "content": piece}), Value::Null);
        body.push_str(&format!("data: {c}\n\n"));
    }
    let mut last = chunk(json!({}), json!("stop"));
    last["usage"] = json!({"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120});
    body.push_str(&format!("data: {last}\n\ndata: [DONE]\n\n"));
    Reply::Respond {
        status: 200,
        headers: vec![("content-type".into(), "text/event-stream".into())],
        body,
        delay: std::time::Duration::ZERO,
    }
}

/// A streamed Responses reply whose output is `item` (a `function_call` or
/// a `message`), with usage, as Codex CLI reads it.
pub fn responses_stream(item: Value, n: usize) -> Reply {
    let id = format!("resp_{n}");
    let event = |t: &str, mut d: Value| {
        d["type"] = json!(t);
        format!("event: {t}\ndata: {d}\n\n")
    };
    let mut body = String::new();
    body.push_str(&event(
        "response.created",
        json!({"response": {"id": id, "object": "response", "status": "in_progress", "output": []}}),
    ));
    body.push_str(&event(
        "response.output_item.added",
        json!({"output_index": 0, "item": item}),
    ));
    body.push_str(&event(
        "response.output_item.done",
        json!({"output_index": 0, "item": item}),
    ));
    body.push_str(&event(
        "response.completed",
        json!({"response": {"id": id, "object": "response", "status": "completed", "output": [item],
               "usage": {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120,
                         "input_tokens_details": {"cached_tokens": 0},
                         "output_tokens_details": {"reasoning_tokens": 0}}}}),
    ));
    Reply::Respond {
        status: 200,
        headers: vec![("content-type".into(), "text/event-stream".into())],
        body,
        delay: std::time::Duration::ZERO,
    }
}

/// A streamed Anthropic Messages reply: a `tool_use` of `tool` with
/// `input`, or (None) the text "Done.", with usage.
pub fn anthropic_stream(tool: Option<(&str, Value)>, n: usize) -> Reply {
    let event = |t: &str, mut d: Value| {
        d["type"] = json!(t);
        format!("event: {t}\ndata: {d}\n\n")
    };
    let (block, delta, stop) = match tool {
        Some((name, input)) => (
            json!({"type": "tool_use", "id": format!("toolu_{n}"), "name": name, "input": {}}),
            json!({"type": "input_json_delta", "partial_json": input.to_string()}),
            "tool_use",
        ),
        None => (
            json!({"type": "text", "text": ""}),
            json!({"type": "text_delta", "text": "Done."}),
            "end_turn",
        ),
    };
    let mut body = event(
        "message_start",
        json!({"message": {"id": format!("msg_{n}"), "type": "message", "role": "assistant",
                           "model": "mock-model", "content": [], "stop_reason": null,
                           "stop_sequence": null, "usage": {"input_tokens": 100, "output_tokens": 1}}}),
    );
    body.push_str(&event(
        "content_block_start",
        json!({"index": 0, "content_block": block}),
    ));
    body.push_str(&event(
        "content_block_delta",
        json!({"index": 0, "delta": delta}),
    ));
    body.push_str(&event("content_block_stop", json!({"index": 0})));
    body.push_str(&event(
        "message_delta",
        json!({"delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 20}}),
    ));
    body.push_str(&event("message_stop", json!({})));
    Reply::Respond {
        status: 200,
        headers: vec![("content-type".into(), "text/event-stream".into())],
        body,
        delay: std::time::Duration::ZERO,
    }
}
