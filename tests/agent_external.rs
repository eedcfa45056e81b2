//! `--agent external`: the example agent in examples/ completes a run with
//! one model call served (and counted) by mlab, without seeing any key; a
//! misbehaving agent (hanging, bad JSON, unknown action, exiting early)
//! ends the run cleanly with the reason in run.json.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod agent_support;
mod common;

use std::time::{Duration, Instant};

use agent_support::{alive, calls, read_json, text, trace_actions, wait_for, Bench};
use serde_json::json;

fn example() -> String {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/external_agent.py");
    format!(
        "'{}' '{}'",
        agent_support::real_python().display(),
        script.display()
    )
}

#[test]
fn the_example_agent_completes_a_run_with_a_served_model_call() {
    let bench = Bench::toy();
    let llm = bench.script("llm.jsonl", &[json!("It printed that training is done.")]);
    let log = bench.log("logs");
    let out = bench
        .command(
            "external",
            &log,
            &["--agent-cmd", &example(), "--llm", &llm],
        )
        .env("OPENAI_API_KEY", "sk-not-for-agents")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        trace_actions(&log),
        ["List Files", "Execute Script", "Final Answer"]
    );
    let trace = read_json(&log.join("env_log/trace.json"));
    assert_eq!(
        trace["steps"][2]["action"]["args"]["final_answer"],
        "It printed that training is done."
    );
    assert!(trace["steps"][1]["observation"]
        .as_str()
        .unwrap()
        .contains("training done"));
    let c = calls(&log);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0]["role"], "main");
    assert!(c[0]["request"]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .contains("training done"));
    let run = read_json(&log.join("run.json"));
    assert_eq!(run["exit_reason"], "final_answer");
    assert_eq!(run["agent"], "external");
    assert!(run["tokens"]["input"].as_u64().unwrap() > 0);
    let main_log = std::fs::read_to_string(log.join("agent_log/main_log")).unwrap();
    assert!(
        main_log.contains("Agent note: example agent started; 16 actions offered"),
        "{main_log}"
    );
    assert!(log
        .join("env_log/traces/step_final_files/submission.csv")
        .exists());

    // Without a model and with two steps allowed, the same agent is cut
    // off by the step limit.
    let log = bench.log("logs_short");
    let out = bench.run(
        "external",
        &log,
        &["--agent-cmd", &example(), "--max-steps", "2"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(trace_actions(&log), ["List Files", "Execute Script"]);
    assert_eq!(read_json(&log.join("run.json"))["exit_reason"], "max_steps");
}

/// A Python agent from source text.
fn agent(bench: &Bench, name: &str, source: &str) -> String {
    let p = bench.path().join(name);
    std::fs::write(&p, source).unwrap();
    format!(
        "'{}' '{}'",
        agent_support::real_python().display(),
        p.display()
    )
}

#[test]
fn the_agent_gets_no_keys_and_its_llm_requests_fail_softly_without_a_model() {
    let bench = Bench::toy();
    let cmd = agent(
        &bench,
        "probe.py",
        r#"import json, os, sys
def send(m): print(json.dumps(m), flush=True)
def recv(): return json.loads(sys.stdin.readline())
start = recv()
send({"type": "llm", "messages": [{"role": "user", "content": "hi"}]})
reply = recv()
seen = ",".join(k for k in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY") if k in os.environ)
send({"type": "action", "name": "Write File", "args": {"file_name": "probe.txt",
      "content": "keys=[%s] llm=%s/%s llm_field=%s" % (seen, reply["type"], reply.get("kind"), start["llm"])}})
recv()
send({"type": "final", "answer": "probed"})
recv(); recv()
"#,
    );
    let log = bench.log("logs");
    let out = bench
        .command("external", &log, &["--agent-cmd", &cmd])
        .env("OPENAI_API_KEY", "sk-not-for-agents")
        .env("ANTHROPIC_API_KEY", "sk-ant-not-for-agents")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let probe =
        std::fs::read_to_string(log.join("env_log/traces/step_final_files/probe.txt")).unwrap();
    assert_eq!(probe, "keys=[] llm=llm_error/unavailable llm_field=None");
}

#[test]
fn a_hanging_agent_is_stopped_after_the_agent_timeout() {
    let bench = Bench::toy();
    let pidfile = bench.path().join("agent.pid");
    let cmd = agent(
        &bench,
        "hang.py",
        &format!(
            "import os, time\nopen({:?}, 'w').write(str(os.getpid()))\ntime.sleep(300)\n",
            pidfile.display().to_string()
        ),
    );
    let log = bench.log("logs");
    let started = Instant::now();
    let out = bench.run(
        "external",
        &log,
        &["--agent-cmd", &cmd, "--agent-timeout", "1"],
    );
    let took = started.elapsed();
    assert!(!out.status.success());
    assert!(took < Duration::from_secs(60), "took {took:?}");
    let run = read_json(&log.join("run.json"));
    assert_eq!(run["exit_reason"], "agent_error", "{run}");
    assert!(
        run["error"].as_str().unwrap().contains("--agent-timeout"),
        "{run}"
    );
    assert!(log.join("env_log/traces/step_final_files").is_dir());
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_for(5, || !alive(pid)),
        "the agent process {pid} is still running"
    );
}

#[test]
fn bad_json_unknown_actions_and_early_exits_end_the_run_as_agent_error() {
    let bench = Bench::toy();
    let cases = [
        ("echo 'hello there'; sleep 30", "not a protocol message"),
        (
            r#"echo '{"type": "action", "name": "Launch Rocket", "args": {}}'; sleep 30"#,
            "unknown action \"Launch Rocket\"",
        ),
        ("exit 3", "exited before the run was over (exit status: 3)"),
    ];
    for (i, (cmd, expect)) in cases.iter().enumerate() {
        let log = bench.log(&format!("logs{i}"));
        let out = bench.run("external", &log, &["--agent-cmd", cmd]);
        assert!(!out.status.success(), "{cmd}");
        let run = read_json(&log.join("run.json"));
        assert_eq!(run["exit_reason"], "agent_error", "{cmd}: {run}");
        let err = run["error"].as_str().unwrap();
        assert!(err.contains(expect), "{cmd}: {err}");
        assert!(log.join("env_log/traces/step_final_files").is_dir());
    }
}

#[test]
fn external_needs_a_command() {
    let bench = Bench::toy();
    let log = bench.log("logs");
    let out = bench.run("external", &log, &[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--agent-cmd"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !log.join("run.json").exists(),
        "nothing is created for a bad command line"
    );
}
