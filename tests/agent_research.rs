//! The research agent end to end with scripted models: a run that improves
//! the digits submission through Edit Script (AI); recovery from malformed
//! replies and the typed end when retries or the model fail; the prompt's
//! window of the last three steps; summaries of long observations; resume
//! after SIGKILL from the saved agent state.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod agent_support;
mod common;

use agent_support::{
    calls, prompts, read_json, research_reply, text, trace_actions, trace_observations, wait_for,
    Bench,
};
use serde_json::{json, Value};

fn list(marker: &str) -> Value {
    research_reply(marker, "List Files", json!({"dir_path": "."}))
}

fn final_answer(marker: &str) -> Value {
    research_reply(marker, "Final Answer", json!({"final_answer": "done"}))
}

#[test]
fn research_agent_edits_train_py_with_the_edit_model_and_improves_the_score() {
    agent_support::need_stack();
    let bench = Bench::offline("digits");
    let original = std::fs::read_to_string(bench.task_dir().join("env/train.py")).unwrap();
    let improved = original
        .replace("EPOCHS = 5", "EPOCHS = 10")
        .replace("hidden_layer_sizes=(16,)", "hidden_layer_sizes=(64,)");
    assert_ne!(original, improved, "the starter changed; update this test");
    let main = bench.script(
        "main.jsonl",
        &[
            list("see what is there"),
            research_reply(
                "read the script",
                "Inspect Script Lines",
                json!({"script_name": "train.py", "start_line_number": "1", "end_line_number": "40"}),
            ),
            research_reply("measure the baseline", "Execute Script", json!({"script_name": "train.py"})),
            research_reply(
                "widen the network",
                "Edit Script (AI)",
                json!({"script_name": "train.py", "edit_instruction": "Use 64 hidden units and 10 epochs.", "save_name": "train.py"}),
            ),
            research_reply("measure again", "Execute Script", json!({"script_name": "train.py"})),
            final_answer("the score went up"),
        ],
    );
    let edit = bench.script(
        "edit.jsonl",
        &[Value::String(format!(
            "Here it is:\n```python\n{improved}```\n"
        ))],
    );
    let log = bench.log("logs");
    let out = bench.run(
        "research",
        &log,
        &["--llm", &main, "--edit-script-llm", &edit],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    assert_eq!(
        trace_actions(&log),
        [
            "List Files",
            "Inspect Script Lines",
            "Execute Script",
            "Edit Script (AI)",
            "Execute Script",
            "Final Answer"
        ]
    );
    let obs = trace_observations(&log);
    assert!(obs[1].contains("EPOCHS = 5"), "{}", obs[1]);
    assert!(
        obs[3].contains("+EPOCHS = 10"),
        "the diff is shown: {}",
        obs[3]
    );
    let env_log = log.join("env_log/traces");
    let before = bench.score(&env_log.join("step_2_files"));
    let after = bench.score(&env_log.join("step_final_files"));
    assert!(
        after > before + 0.05,
        "the submission did not improve: {before} -> {after}"
    );
    let run = read_json(&log.join("run.json"));
    assert_eq!(run["exit_reason"], "final_answer");
    assert_eq!(run["agent"], "research");
    assert!(run["tokens"]["input"].as_u64().unwrap() > 0, "{run}");
    // Who was asked what: six main calls and one edit call, each logged.
    let roles: Vec<String> = calls(&log)
        .iter()
        .map(|c| c["role"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(roles.iter().filter(|r| *r == "main").count(), 6);
    assert_eq!(roles.iter().filter(|r| *r == "edit").count(), 1);
    let main_calls: Vec<Value> = calls(&log)
        .into_iter()
        .filter(|c| c["role"] == "main")
        .collect();
    assert_eq!(main_calls[0]["request"]["stop"], json!(["Observation:"]));
    let agent_log = log.join("agent_log");
    let step0 = std::fs::read_to_string(agent_log.join("step_0_log.log")).unwrap();
    assert!(step0.contains("===================prompt====================="));
    let main_log = std::fs::read_to_string(agent_log.join("main_log")).unwrap();
    assert!(
        main_log.starts_with("Enabled Tools in Prompt:[\"List Files\", \"Copy File\""),
        "{main_log}"
    );
    for i in 0..6 {
        assert!(
            main_log.contains(&format!("Step {i}:\n")),
            "Step {i} missing"
        );
    }
    // The state after the last step: six steps remembered.
    let state = read_json(&agent_log.join("agent_5_6.json"));
    assert_eq!(state["history_steps"].as_array().unwrap().len(), 6);
    assert_eq!(state["curr_step"], 6);
}

#[test]
fn malformed_replies_are_corrected_within_the_retry_budget() {
    let bench = Bench::toy();
    let main = bench.script(
        "main.jsonl",
        &[
            // No Fact Check: retried with a correction.
            json!("Reflection: r\nResearch Plan and Status: p\nThought: t\nAction: List Files\nAction Input: {\"dir_path\": \".\"}"),
            // An action that does not exist: retried.
            research_reply("bad action", "Delete Everything", json!({"dir_path": "."})),
            // Input that is no JSON at all: shown as the observation.
            json!("Reflection: r\nResearch Plan and Status: p\nFact Check: f\nThought: bad input\nAction: List Files\nAction Input: the top folder please"),
            list("good step"),
            final_answer("finish"),
        ],
    );
    let log = bench.log("logs");
    let out = bench.run("research", &log, &["--llm", &main]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(trace_actions(&log), ["List Files", "Final Answer"]);
    let p = prompts(&log, "main");
    assert_eq!(p.len(), 5);
    assert!(
        p[1].contains("could not be used") && p[1].contains("no Fact Check entry"),
        "{}",
        p[1]
    );
    assert!(
        p[2].contains("\"Delete Everything\" is not one of the actions"),
        "{}",
        p[2]
    );
    // The unreadable input became the observation of an agent step that
    // took no environment step, and is dropped after a good step.
    assert!(p[3].contains("ActionInputParsingError"), "{}", p[3]);
    assert!(
        p[3].contains("\"dir_path\": ["),
        "the usage is shown: {}",
        p[3]
    );
    assert!(!p[4].contains("ActionInputParsingError"), "{}", p[4]);
    assert!(p[4].contains("good step"));
    assert_eq!(
        read_json(&log.join("run.json"))["exit_reason"],
        "final_answer"
    );
}

#[test]
fn a_spent_retry_budget_ends_the_run_as_model_error_with_a_final_snapshot() {
    let bench = Bench::toy();
    let bad = json!("I would rather not follow any format.");
    let main = bench.script(
        "main.jsonl",
        &[list("one good step"), bad.clone(), bad.clone(), bad],
    );
    let log = bench.log("logs");
    let out = bench.run("research", &log, &["--llm", &main, "--max-retries", "3"]);
    assert!(!out.status.success());
    let run = read_json(&log.join("run.json"));
    assert_eq!(run["exit_reason"], "model_error", "{run}");
    let err = run["error"].as_str().unwrap();
    assert!(
        err.contains("no usable reply") && err.contains("3 tries"),
        "{err}"
    );
    assert_eq!(
        prompts(&log, "main").len(),
        4,
        "one good call and three tries"
    );
    assert!(log
        .join("env_log/traces/step_final_files/train.py")
        .exists());
    assert!(std::fs::read_to_string(log.join("env_log/error.txt"))
        .unwrap()
        .contains("no usable reply"));
}

#[test]
fn a_model_failure_ends_the_run_as_llm_error_and_a_spent_budget_as_budget() {
    let bench = Bench::toy();
    let main = bench.script(
        "main.jsonl",
        &[
            list("first"),
            json!({"error": "refused", "message": "content policy"}),
        ],
    );
    let log = bench.log("logs");
    let out = bench.run("research", &log, &["--llm", &main]);
    assert!(!out.status.success());
    let run = read_json(&log.join("run.json"));
    assert_eq!(run["exit_reason"], "llm_error", "{run}");
    assert!(run["error"].as_str().unwrap().contains("content policy"));
    assert_eq!(run["steps"], 1);
    assert!(log.join("env_log/traces/step_final_files").is_dir());
    let main_log = std::fs::read_to_string(log.join("agent_log/main_log")).unwrap();
    assert!(main_log.contains("The agent stopped"), "{main_log}");
    assert!(log.join("agent_log/agent_0_1.json").exists());

    let costly = json!({"text": list("pricey").as_str().unwrap(), "usage": {"input_tokens": 900, "output_tokens": 10}});
    let main = bench.script("costly.jsonl", &[costly.clone(), costly]);
    let log = bench.log("logs_budget");
    let out = bench.run(
        "research",
        &log,
        &["--llm", &main, "--max-total-tokens", "500"],
    );
    let run = read_json(&log.join("run.json"));
    assert_eq!(run["exit_reason"], "budget", "{run}\n{}", text(&out.stderr));
    assert_eq!(run["tokens"]["input"], 900);
    assert!(log.join("env_log/traces/step_final_files").is_dir());
}

#[test]
fn the_prompt_holds_exactly_the_last_three_steps() {
    let bench = Bench::toy();
    let mut replies: Vec<Value> = (0..5).map(|i| list(&format!("MARK-{i}-"))).collect();
    replies.push(final_answer("MARK-5-"));
    let main = bench.script("main.jsonl", &replies);
    let log = bench.log("logs");
    let out = bench.run("research", &log, &["--llm", &main]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let p = prompts(&log, "main");
    assert_eq!(p.len(), 6);
    for (call, prompt) in p.iter().enumerate() {
        let shown: Vec<usize> = (0..6)
            .filter(|i| prompt.contains(&format!("MARK-{i}-")))
            .collect();
        let expect: Vec<usize> = (call.saturating_sub(3)..call).collect();
        assert_eq!(shown, expect, "call {call} shows the wrong steps");
        // Each shown step carries its observation.
        assert_eq!(
            prompt.matches("\nObservation:\n```\n").count(),
            expect.len()
        );
    }
    // The opening words for the first steps only.
    assert!(p[0].contains("Now begin."));
    assert!(!p[5].contains("Now begin."));
    let p2 = read_json(&log.join("agent_log/agent_4_5.json"));
    assert_eq!(p2["history_steps"].as_array().unwrap().len(), 5);
}

#[test]
fn long_observations_are_summarised_for_the_agent_but_kept_whole_in_the_trace() {
    let bench = Bench::toy();
    // 100 lines of 120 characters: 12,100 characters from Inspect Script Lines.
    let long: String = (0..100)
        .map(|i| format!("# line {i:03} {}\n", "x".repeat(110)))
        .collect();
    bench.env_file("long.py", &long);
    let main = bench.script(
        "main.jsonl",
        &[
            research_reply(
                "read it all",
                "Inspect Script Lines",
                json!({"script_name": "long.py", "start_line_number": 1, "end_line_number": 100}),
            ),
            final_answer("done"),
        ],
    );
    let fast = bench.script(
        "fast.jsonl",
        &[
            json!("[Observation]: first part SUMMARY-A"),
            json!("[Observation]: second part SUMMARY-B"),
            json!("Combined. [Observation]: SHORT-VERSION of the script"),
        ],
    );
    let log = bench.log("logs");
    let out = bench.run("research", &log, &["--llm", &main, "--fast-llm", &fast]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let f = prompts(&log, "fast");
    assert_eq!(f.len(), 3, "two blocks and one merge");
    assert!(
        f[0].contains("from character 0 to character 10000"),
        "{}",
        f[0]
    );
    assert!(f[0].contains("line 000") && !f[0].contains("line 099"));
    assert!(f[1].contains("line 099"));
    assert!(f[2].contains("SUMMARY-A") && f[2].contains("SUMMARY-B"));
    let p = prompts(&log, "main");
    assert!(
        p[1].contains("```\nSHORT-VERSION of the script\n```"),
        "{}",
        p[1]
    );
    assert!(!p[1].contains("line 050"));
    let obs = trace_observations(&log);
    assert!(obs[0].contains("line 000") && obs[0].contains("line 099"));
    assert!(obs[0].chars().count() > 12_000);
}

#[test]
fn a_research_run_killed_with_sigkill_resumes_from_its_saved_state() {
    use nix::sys::signal::{kill, killpg, Signal};
    use nix::unistd::Pid;

    let bench = Bench::toy();
    bench.env_file(
        "sleeper.py",
        "import os, time\nopen('pids.txt', 'w').write(str(os.getpid()))\ntime.sleep(1000)\n",
    );
    let first = bench.script(
        "first.jsonl",
        &[
            list("REMEMBER-THIS-STEP"),
            research_reply(
                "hang here",
                "Execute Script",
                json!({"script_name": "sleeper.py"}),
            ),
        ],
    );
    let log = bench.log("logs");
    let mut child = bench
        .command("research", &log, &["--llm", &first])
        .spawn()
        .unwrap();
    let pids = bench.path().join("work/toy/pids.txt");
    // Wait for the pid itself: the file exists a moment before it is written.
    let pid_written =
        || std::fs::read_to_string(&pids).is_ok_and(|s| s.trim().parse::<i32>().is_ok());
    assert!(
        wait_for(60, pid_written),
        "the run did not reach the sleeping step"
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    let script: i32 = std::fs::read_to_string(&pids)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = killpg(Pid::from_raw(script), Signal::SIGKILL);
    assert!(log.join("agent_log/agent_0_1.json").exists());
    assert!(!log.join("agent_log/agent_1_2.json").exists());

    let second = bench.script("second.jsonl", &[final_answer("after the crash")]);
    let out = bench.run(
        "research",
        &log,
        &["--llm", &second, "--resume", log.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(trace_actions(&log), ["List Files", "Final Answer"]);
    // The resumed agent remembered the step before the crash and went on
    // counting its own steps.
    let p = prompts(&log, "main");
    let resumed = p.last().unwrap();
    assert!(resumed.contains("REMEMBER-THIS-STEP"), "{resumed}");
    assert!(!resumed.contains("hang here"));
    let state = read_json(&log.join("agent_log/agent_1_2.json"));
    let history = state["history_steps"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert!(history[0]["action"]
        .to_string()
        .contains("REMEMBER-THIS-STEP"));
    let main_log = std::fs::read_to_string(log.join("agent_log/main_log")).unwrap();
    assert!(main_log.contains("Agent state restored from"), "{main_log}");
    assert!(log.join("agent_log/step_1_log.log").exists());
    assert_eq!(
        read_json(&log.join("run.json"))["exit_reason"],
        "final_answer"
    );
}

#[test]
fn retrieval_mode_keeps_a_research_log_and_shows_what_it_retrieves() {
    let bench = Bench::toy();
    let main = bench.script(
        "main.jsonl",
        &[
            list("first look"),
            list("second look"),
            final_answer("enough"),
        ],
    );
    let fast = bench.script(
        "fast.jsonl",
        &[
            json!("[Reasoning]: look\n[Action]: listed STEP-ZERO-NOTE\n[Observation]: train.py"),
            json!("[Reasoning]: again\n[Action]: listed STEP-ONE-NOTE\n[Observation]: train.py"),
            json!("RETRIEVED-SUMMARY: the files were listed twice."),
        ],
    );
    let log = bench.log("logs");
    let out = bench.run(
        "research",
        &log,
        &[
            "--llm",
            &main,
            "--fast-llm",
            &fast,
            "--retrieval",
            "--max-steps-in-context",
            "1",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        trace_actions(&log),
        [
            "List Files",
            "Append Summary to Research Log",
            "List Files",
            "Append Summary to Research Log",
            "Retrieval from Research Log",
            "Final Answer"
        ]
    );
    let research_log =
        std::fs::read_to_string(log.join("env_log/traces/step_final_files/research_log.log"))
            .unwrap();
    assert!(
        research_log.contains("Step 0:\n[Reasoning]: look"),
        "{research_log}"
    );
    assert!(research_log.contains("STEP-ONE-NOTE"));
    let p = prompts(&log, "main");
    assert!(
        p[0].contains("- Reflection:"),
        "retrieval mode lists Reflection"
    );
    assert!(!p[0].contains("- Retrieval from Research Log:"));
    assert!(p[2].contains("RETRIEVED-SUMMARY"), "{}", p[2]);
    // Only the last step is shown beside the summary.
    assert!(p[2].contains("second look") && !p[2].contains("first look"));
    let f = prompts(&log, "fast");
    assert!(
        f[0].contains("first look"),
        "the step summary reads the step: {}",
        f[0]
    );
    assert!(
        f[2].contains("STEP-ZERO-NOTE") && f[2].contains("1. Understand the task."),
        "{}",
        f[2]
    );
}

#[test]
fn valid_format_entires_narrows_the_fields_asked_for_and_read() {
    let bench = Bench::toy();
    // Replies with only the three chosen fields: acceptable only if the
    // override took effect (the default asks for all six and would retry).
    let main = bench.script(
        "main.jsonl",
        &[
            json!("Thought: look around\nAction: List Files\nAction Input: {\"dir_path\": \".\"}"),
            json!("Thought: done\nAction: Final Answer\nAction Input: {\"final_answer\": \"ok\"}"),
        ],
    );
    let log = bench.log("logs");
    let out = bench.run(
        "research",
        &log,
        &[
            "--llm",
            &main,
            "--max-retries",
            "1",
            "--valid-format-entires",
            "Thought",
            "Action",
            "Action Input",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run = read_json(&log.join("run.json"));
    assert_eq!(run["exit_reason"], "final_answer", "{run}");
    let p = prompts(&log, "main");
    assert_eq!(p.len(), 2, "no retries were needed");
    assert!(
        p[0].contains("Thought:") && !p[0].contains("Fact Check:"),
        "{}",
        p[0]
    );

    // A field the prompt cannot describe, or one without Action Input last,
    // is refused before the run starts.
    for bad in [
        &["Thought", "Action", "Plan"][..],
        &["Action Input", "Action"][..],
    ] {
        let log = bench.log(&format!("bad-{}", bad.len()));
        let mut args = vec!["--llm", &main, "--valid-format-entires"];
        args.extend_from_slice(bad);
        let out = bench.run("research", &log, &args);
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("--valid-format-entires"),
            "{}",
            text(&out.stderr)
        );
    }
}
