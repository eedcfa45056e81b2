//! `--agent program`: an outside program run in the sandbox behind the LLM
//! gateway. A tiny shell or Python "agent" stands in for aider and the
//! others (tests/outside_agents.rs runs the real ones): it gets the problem
//! three ways, calls the model through `OPENAI_BASE_URL` /
//! `ANTHROPIC_BASE_URL` in the three wire formats, never sees the key, and
//! writes a submission that `mlab eval` scores. Each call is a step with a
//! snapshot; the time limit, the step limit and the budget stop it.
// A failed step panics with its message, which is how a test reports;
// clippy.toml allows this in #[test] functions only, so say it here for the
// helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
mod program_support;

use mlab::testing::mock_server::{MockServer, Reply};
use program_support::{calls, ok, program_log, read_json, steps, ProgramBench, ANSWER, PROBLEM};
use serde_json::json;

/// A shell "agent" that looks around, writes what it saw to seen.txt and a
/// submission with the number 42, and exits 0.
const LOOK_AROUND: &str = r#"
{
  echo arg={problem}
  echo "env=$MLAB_PROBLEM"
  echo "file=$(cat research_problem.txt)"
  echo "home=$HOME"
  touch "$HOME/.agent-config" && echo "home-writable=yes"
  cat data.csv >/dev/null && echo "data-readable=yes"
  echo changed > data.csv 2>/dev/null && echo "data-writable=yes"
  cat ANSWER_FILE 2>/dev/null && echo "answer-readable=yes"
  echo "cwd=$(pwd)"
} > seen.txt
printf 'value\n42\n' > submission.csv
"#;

fn look_around(bench: &ProgramBench) -> String {
    LOOK_AROUND.replace("ANSWER_FILE", &bench.answer_file().display().to_string())
}

fn seen(log: &std::path::Path) -> String {
    std::fs::read_to_string(log.join("env_log/traces/step_final_files/seen.txt")).unwrap()
}

#[test]
fn a_program_gets_the_problem_three_ways_and_its_exit_is_a_final_answer_that_eval_scores() {
    common::need_bwrap();
    let bench = ProgramBench::new();
    let log = bench.log("look");
    let out = bench.run(&log, "bwrap", &look_around(&bench), &[]);
    ok(&out);
    let seen = seen(&log);
    assert!(seen.contains(&format!("arg={PROBLEM}\n")), "{seen}");
    assert!(seen.contains(&format!("env={PROBLEM}\n")), "{seen}");
    assert!(seen.contains(&format!("file={PROBLEM}\n")), "{seen}");
    assert!(seen.contains("home-writable=yes"), "{seen}");
    assert!(seen.contains("data-readable=yes"), "{seen}");
    assert!(!seen.contains("data-writable=yes"), "{seen}");
    assert!(!seen.contains("answer-readable=yes"), "{seen}");
    assert!(!seen.contains(ANSWER), "{seen}");
    // HOME is a folder of its own, kept in the log, not the workspace.
    assert!(log.join("agent_log/home/.agent-config").exists(), "{seen}");
    let run = read_json(&log.join("run.json"));
    assert_eq!(run["agent"], "program");
    assert_eq!(run["exit_reason"], "final_answer", "{run}");
    let s = steps(&log);
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0]["action"]["name"], "Final Answer");
    let entry = bench.eval(&log);
    assert_eq!(entry["final_score"].as_f64(), Some(42.0), "{entry}");
    assert_eq!(entry["submitted_final_answer"], true, "{entry}");
}

#[test]
fn a_program_that_fails_ends_the_run_as_agent_error_with_its_output_kept() {
    let bench = ProgramBench::new();
    let log = bench.log("fails");
    let out = bench.run(
        &log,
        "none",
        "echo 'something broke inside' >&2; exit 3",
        &[],
    );
    assert!(!out.status.success());
    let run = read_json(&log.join("run.json"));
    assert_eq!(run["exit_reason"], "agent_error", "{run}");
    let err = run["error"].as_str().unwrap();
    assert!(err.contains("exit status: 3"), "{err}");
    assert!(err.contains("something broke inside"), "{err}");
    assert!(program_log(&log).contains("something broke inside"));
    assert!(log.join("env_log/traces/step_final_files").is_dir());
}

#[test]
fn max_time_stops_a_program_that_loops_and_its_children() {
    common::need_bwrap();
    let bench = ProgramBench::new();
    let log = bench.log("loops");
    let marker = common::marker("program-loop");
    let cmd = format!(
        "printf 'value\\n7\\n' > submission.csv; sh -c 'while true; do sleep 0.1; done' {marker} & sh -c 'while true; do sleep 0.1; done' {marker}"
    );
    let out = bench.run(&log, "bwrap", &cmd, &["--max-time", "3"]);
    ok(&out);
    let run = read_json(&log.join("run.json"));
    assert_eq!(run["exit_reason"], "max_time", "{run}");
    assert!(
        common::processes_with(&marker).is_empty(),
        "the program's processes outlived the run"
    );
    assert!(log
        .join("env_log/traces/step_final_files/submission.csv")
        .exists());
    assert_eq!(bench.eval(&log)["final_score"].as_f64(), Some(7.0));
}

/// The secret key mlab holds; the program must never see it.
const SECRET: &str = "sk-mlab-test-secret-0b1d";

/// A Python "agent": three calls, one per wire format, a fourth for a
/// model that is not allowed; after each it leaves a marker file. Then it
/// looks for the key (its prefix is spelt in two parts, so that its own
/// command line does not hold it) in every process's environment, in the
/// files it can reach and in the key file beside mlab, and writes the
/// first reply as the submission.
const THREE_FORMATS: &str = r#"
import glob, json, os, urllib.error, urllib.request
M = os.environ["MLAB_MODEL"]
def post(url, body, headers):
    h = {"content-type": "application/json"}
    h.update(headers)
    req = urllib.request.Request(url, json.dumps(body).encode(), h)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
oa = {"authorization": "Bearer " + os.environ["OPENAI_API_KEY"]}
s1, a = post(os.environ["OPENAI_BASE_URL"] + "/chat/completions",
             {"model": M, "messages": [{"role": "system", "content": "be brief"},
                                       {"role": "user", "content": "first question"}]}, oa)
open("after_call_1.txt", "w").write(str(s1))
s2, b = post(os.environ["OPENAI_BASE_URL"] + "/responses", {"model": M, "input": "second question"}, oa)
open("after_call_2.txt", "w").write(str(s2))
s3, c = post(os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages",
             {"model": M, "max_tokens": 50, "messages": [{"role": "user", "content": "third question"}]},
             {"x-api-key": os.environ["ANTHROPIC_API_KEY"], "anthropic-version": "2023-06-01"})
open("after_call_3.txt", "w").write(str(s3))
s4, d = post(os.environ["OPENAI_BASE_URL"] + "/chat/completions",
             {"model": "not-" + "allowed", "messages": [{"role": "user", "content": "x"}]}, oa)
prefix = "sk-mlab-" + "test-secret"
found = [k for k, v in os.environ.items() if prefix in v]
for p in glob.glob("/proc/*/environ"):
    try:
        if prefix.encode() in open(p, "rb").read():
            found.append(p)
    except OSError:
        pass
for top in [".", os.environ["HOME"], "/tmp", "/etc", KEY_DIR]:
    for root, dirs, files in os.walk(top):
        for f in files:
            try:
                if prefix.encode() in open(os.path.join(root, f), "rb").read():
                    found.append(os.path.join(root, f))
            except OSError:
                pass
open("keys_found.txt", "w").write(repr(found))
open("statuses.txt", "w").write("%d %d %d %d" % (s1, s2, s3, s4))
open("submission.csv", "w").write("value\n" + a["choices"][0]["message"]["content"] + "\n")
"#;

fn python_agent(source: &str) -> String {
    format!("python3 -c {}", mlab::sandbox::shell_quote(source))
}

#[test]
fn each_call_in_the_three_wire_formats_is_a_step_with_a_snapshot_and_the_key_stays_outside() {
    common::need_bwrap();
    let bench = ProgramBench::new();
    let upstream = MockServer::start();
    upstream
        .push(Reply::openai_text("42", 11, 3))
        .push(Reply::json(
            200,
            json!({"id": "resp_1", "object": "response", "status": "completed", "model": "mock-model",
                   "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                               "content": [{"type": "output_text", "text": "second answer", "annotations": []}]}],
                   "usage": {"input_tokens": 13, "output_tokens": 5, "total_tokens": 18}})
            .to_string(),
        ))
        .push(Reply::anthropic_text("third answer", 17, 7));
    // mlab's working folder holds the original's key file, as a user's
    // might; it must stay invisible too.
    let cwd = bench.path().join("mlab-cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::write(cwd.join("claude_api_key.txt"), SECRET).unwrap();
    let agent = python_agent(
        &THREE_FORMATS.replace("KEY_DIR", &format!("{:?}", cwd.display().to_string())),
    );
    let log = bench.log("three");
    let llm = format!("openai:mock-model@{}/v1", upstream.url());
    let out = bench
        .command(&log, "bwrap", &agent, &["--llm", &llm])
        .current_dir(&cwd)
        .env("OPENAI_API_KEY", SECRET)
        .env_remove("ANTHROPIC_API_KEY")
        .env("ANTHROPIC_BASE_URL", upstream.url())
        .output()
        .unwrap();
    ok(&out);
    let fin = log.join("env_log/traces/step_final_files");
    let read = |name: &str| std::fs::read_to_string(fin.join(name)).unwrap();
    assert_eq!(read("keys_found.txt"), "[]", "{}", program_log(&log));
    assert_eq!(read("statuses.txt"), "200 200 200 403");

    // Upstream got the real keys; the program sent only dummies.
    let seen = upstream.requests();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(
        seen[0].header("authorization"),
        Some(&*format!("Bearer {SECRET}"))
    );
    assert_eq!(seen[1].path, "/v1/responses");
    assert_eq!(seen[2].path, "/v1/messages");
    assert_eq!(seen[2].header("x-api-key"), Some(SECRET));

    // One step per call, refused included, then the exit as Final Answer.
    let s = steps(&log);
    let names: Vec<&str> = s
        .iter()
        .map(|s| s["action"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "LLM Call",
            "LLM Call",
            "LLM Call",
            "LLM Call",
            "Final Answer"
        ]
    );
    let wires: Vec<&str> = s[..4]
        .iter()
        .map(|s| s["action"]["args"]["wire_format"].as_str().unwrap())
        .collect();
    assert_eq!(
        wires,
        [
            "openai-chat",
            "openai-responses",
            "anthropic",
            "openai-chat"
        ]
    );
    assert_eq!(s[0]["action"]["args"]["messages"], 2);
    assert_eq!(
        s[0]["action"]["args"]["last_user_message"],
        "first question"
    );
    assert_eq!(
        s[1]["action"]["args"]["last_user_message"],
        "second question"
    );
    assert!(
        s[0]["observation"].as_str().unwrap().contains("42"),
        "{}",
        s[0]
    );
    assert!(s[2]["observation"]
        .as_str()
        .unwrap()
        .contains("third answer"));
    assert!(
        s[3]["observation"].as_str().unwrap().starts_with("Refused"),
        "{}",
        s[3]
    );
    // Each snapshot is the workspace as the program left it when it asked:
    // the marker of call N is written after its reply, so it is in the
    // snapshot of step N, not N-1.
    let traces = log.join("env_log/traces");
    assert!(!traces.join("step_0_files/after_call_1.txt").exists());
    assert!(traces.join("step_1_files/after_call_1.txt").exists());
    assert!(!traces.join("step_1_files/after_call_2.txt").exists());
    assert!(traces.join("step_2_files/after_call_2.txt").exists());
    assert!(traces.join("step_3_files/after_call_3.txt").exists());

    // llm_calls.jsonl has every call with its usage; run.json the totals.
    let c = calls(&log);
    assert_eq!(c.len(), 4, "{c:?}");
    let run = read_json(&log.join("run.json"));
    assert_eq!(run["exit_reason"], "final_answer", "{run}");
    assert_eq!(run["tokens"]["input"], 11 + 13 + 17, "{run}");
    assert_eq!(run["tokens"]["output"], 3 + 5 + 7, "{run}");
    assert_eq!(run["llm_calls"], 4, "{run}");
    // Nothing of the key in what the run wrote.
    for f in walk(&log) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SECRET),
            "the key is in {}",
            f.display()
        );
    }
    assert_eq!(bench.eval(&log)["final_score"].as_f64(), Some(42.0));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A Python "agent" that calls the model in a loop (streamed when asked)
/// and logs each status and error to its output, writing the submission
/// first; it never stops on its own.
const LOOP: &str = r#"
import json, os, sys, time, urllib.error, urllib.request
open("submission.csv", "w").write("value\n5\n")
stream = STREAM
n = 0
while True:
    n += 1
    body = {"model": os.environ["MLAB_MODEL"], "messages": [{"role": "user", "content": "call %d" % n}]}
    if stream:
        body["stream"] = True
    req = urllib.request.Request(os.environ["OPENAI_BASE_URL"] + "/chat/completions",
                                 json.dumps(body).encode(),
                                 {"content-type": "application/json",
                                  "authorization": "Bearer " + os.environ["OPENAI_API_KEY"]})
    try:
        with urllib.request.urlopen(req) as r:
            data = r.read().decode()
            print("call", n, "status", r.status, "body", data.replace("\n", "|"), flush=True)
    except urllib.error.HTTPError as e:
        print("call", n, "error", e.code, e.read().decode(), flush=True)
        time.sleep(0.2)
"#;

fn loop_agent(stream: bool) -> String {
    python_agent(&LOOP.replace("STREAM", if stream { "True" } else { "False" }))
}

#[test]
fn a_spent_budget_ends_the_run_as_budget_after_the_program_got_the_api_error() {
    common::need_bwrap();
    let bench = ProgramBench::new();
    let upstream = MockServer::start();
    upstream.always(Reply::openai_text("fine", 100, 20));
    let log = bench.log("budget");
    let llm = format!("openai:mock-model@{}/v1", upstream.url());
    let out = bench.run(
        &log,
        "bwrap",
        &loop_agent(false),
        &["--llm", &llm, "--max-total-tokens", "250"],
    );
    let run = read_json(&log.join("run.json"));
    assert_eq!(run["exit_reason"], "budget", "{run}\n{}", program_log(&log));
    ok(&out);
    // The budget is checked before each call: three calls of 120 tokens go
    // out (0, 120 and 240 spent before them), the fourth is refused.
    assert_eq!(upstream.requests().len(), 3, "{}", program_log(&log));
    let plog = program_log(&log);
    assert!(plog.contains("call 4 error 402"), "{plog}");
    assert!(plog.contains("max-total-tokens"), "{plog}");
    // Three calls and the refused one are steps; later refusals are not.
    let s = steps(&log);
    assert_eq!(s.len(), 4, "{s:?}");
    assert!(s[3]["observation"]
        .as_str()
        .unwrap()
        .starts_with("Refused (budget)"));
    // The submission was there from the first call on: every step scores.
    let entry = bench.eval_with(&log, &["--eval-intermediate"]);
    assert_eq!(entry["final_score"].as_f64(), Some(5.0), "{entry}");
    assert_eq!(entry["step_scores"], json!([5.0, 5.0, 5.0, 5.0]), "{entry}");
}

#[test]
fn max_steps_counts_model_calls_and_streamed_replies_pass_through_without_a_sandbox() {
    let bench = ProgramBench::new();
    let upstream = MockServer::start();
    upstream.always(program_support::openai_stream("streamed words"));
    let log = bench.log("steps");
    let llm = format!("openai:mock-model@{}/v1", upstream.url());
    let out = bench.run(
        &log,
        "none",
        &loop_agent(true),
        &["--llm", &llm, "--max-steps", "3"],
    );
    ok(&out);
    let run = read_json(&log.join("run.json"));
    assert_eq!(run["exit_reason"], "max_steps", "{run}");
    let s = steps(&log);
    assert_eq!(s.len(), 3, "{s:?}");
    assert!(s.iter().all(|s| s["action"]["name"] == "LLM Call"));
    assert_eq!(s[0]["action"]["args"]["stream"], true);
    assert!(s[0]["observation"]
        .as_str()
        .unwrap()
        .contains("streamed words"));
    let plog = program_log(&log);
    assert!(plog.contains("call 1 status 200"), "{plog}");
    assert!(plog.contains("data: [DONE]"), "{plog}");
    assert_eq!(calls(&log).len(), 3);
}

#[test]
fn a_resumed_program_run_continues_the_steps_and_the_budget_of_the_first_part() {
    let bench = ProgramBench::new();
    let upstream = MockServer::start();
    upstream.always(Reply::openai_text("fine", 100, 20));
    let first = bench.log("first");
    let llm = format!("openai:mock-model@{}/v1", upstream.url());
    ok(&bench.run(
        &first,
        "none",
        &loop_agent(false),
        &["--llm", &llm, "--max-steps", "2"],
    ));
    assert_eq!(steps(&first).len(), 2);
    // The second part may spend 500 tokens in all, checked before each
    // call: 240 are spent already, so three more calls go out (to 600)
    // and the fourth is refused, which ends the run.
    let second = bench.log("second");
    let out = bench.run(
        &second,
        "none",
        &loop_agent(false),
        &[
            "--llm",
            &llm,
            "--max-steps",
            "10",
            "--max-total-tokens",
            "500",
            "--resume",
            first.to_str().unwrap(),
        ],
    );
    ok(&out);
    let run = read_json(&second.join("run.json"));
    assert_eq!(
        run["exit_reason"],
        "budget",
        "{run}\n{}",
        program_log(&second)
    );
    let s = steps(&second);
    let names: Vec<&str> = s
        .iter()
        .map(|s| s["action"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["LLM Call"; 6], "{s:?}");
    assert_eq!(
        s[5]["observation"].as_str().unwrap().split(':').next(),
        Some("Refused (budget)")
    );
    // Totals cover both parts, as for mlab's own agents.
    assert_eq!(run["tokens"]["input"], 500, "{run}");
    assert!(calls(&second).len() >= 6);
    assert!(second
        .join("env_log/traces/step_5_files/submission.csv")
        .exists());
}

#[test]
fn a_model_the_gateway_cannot_serve_is_refused_before_the_run_starts() {
    let bench = ProgramBench::new();
    let log = bench.log("scripted");
    let script = bench.path().join("replies.jsonl");
    std::fs::write(&script, "\"hi\"\n").unwrap();
    let out = bench.run(
        &log,
        "none",
        "true",
        &["--llm", &format!("scripted:{}", script.display())],
    );
    assert!(!out.status.success());
    let err = program_support::text(&out.stderr);
    assert!(err.contains("LLM gateway"), "{err}");
    assert!(!log.join("env_log").exists(), "a run was started: {err}");
}
