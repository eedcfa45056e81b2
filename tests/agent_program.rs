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

use program_support::{ok, program_log, read_json, steps, ProgramBench, ANSWER, PROBLEM};

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
