//! `--agent baseline` on every offline task (in parallel, each in a
//! freshly prepared copy): runs the starter script unchanged, submits, and
//! leaves a final snapshot that the task's eval.py scores; no model, no
//! key, no model calls recorded. Runs under the default sandbox.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod agent_support;
mod common;

use agent_support::{read_json, text, trace_actions, Bench};

const TASKS: [&str; 5] = [
    "ames-housing",
    "titanic",
    "digits",
    "tweet-source",
    "vectorization",
];

fn baseline_run(task: &str) -> Result<(), String> {
    let mut bench = Bench::offline(task);
    // The sandbox a user gets by default (bwrap where it works).
    bench.sandbox = "auto";
    let log = bench.log("logs");
    let out = bench
        .command("baseline", &log, &[])
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(format!("{task}: mlab run failed:\n{}", text(&out.stderr)));
    }
    let script = toml_baseline_script(&bench).unwrap_or_else(|| "train.py".into());
    let trace = read_json(&log.join("env_log/trace.json"));
    let steps = trace["steps"].as_array().unwrap();
    let check = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(format!("{task}: {what}\n{trace:#}"))
        }
    };
    check(
        trace_actions(&log) == ["Execute Script", "Final Answer"],
        "wrong actions",
    )?;
    check(
        steps[0]["action"]["args"]["script_name"] == script.as_str(),
        "wrong script",
    )?;
    check(
        steps[0]["observation"]
            .as_str()
            .unwrap()
            .starts_with("The script was run."),
        "the script did not run cleanly",
    )?;
    let run = read_json(&log.join("run.json"));
    check(run["exit_reason"] == "final_answer", "exit reason")?;
    check(
        run["llm"].is_null() && run["agent"] == "baseline",
        "llm or agent in run.json",
    )?;
    check(
        !log.join("agent_log/llm_calls.jsonl").exists(),
        "a model was called",
    )?;
    let score = bench.score(&log.join("env_log/traces/step_final_files"));
    check(score.is_finite() && score > 0.0, &format!("score {score}"))?;
    eprintln!("{task}: baseline score {score}");
    Ok(())
}

fn toml_baseline_script(bench: &Bench) -> Option<String> {
    let t = std::fs::read_to_string(bench.task_dir().join("task.toml")).ok()?;
    t.lines()
        .find_map(|l| l.trim().strip_prefix("baseline_script"))
        .map(|rest| {
            rest.trim_start_matches([' ', '='])
                .trim()
                .trim_matches('"')
                .to_string()
        })
}

#[test]
fn baseline_runs_the_starter_and_submits_on_every_offline_task() {
    agent_support::need_stack();
    let handles: Vec<_> = TASKS
        .iter()
        .map(|t| std::thread::spawn(move || baseline_run(t)))
        .collect();
    let failures: Vec<String> = handles
        .into_iter()
        .filter_map(|h| h.join().unwrap().err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
