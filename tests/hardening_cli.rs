//! Issue 11, items 5 and 11: runs never share a workspace, and the command
//! line says what happened (an exhausted actions list, a byte-order mark,
//! actions that need a model, a closed pipe, colour only at a terminal).
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
mod env_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use env_support::{alive, read_json, real_python, text, wait_for, write, Toy};
use serde_json::{json, Value};

/// A script that says it started (with its pid) and then waits for a file
/// `go` in the workspace, or for its parent to go away.
const HOLD: &str = r#"
import os, time
parent = os.getppid()
open('started.tmp', 'w').write(str(os.getpid()))
os.rename('started.tmp', 'started')
while not os.path.exists('go') and os.getppid() == parent:
    time.sleep(0.02)
"#;

fn toy_with_hold() -> Toy {
    let toy = Toy::new();
    toy.env_file("hold.py", HOLD);
    toy
}

/// Write File submission.csv with `tag`, wait in hold.py, Final Answer.
fn holding_actions(toy: &Toy, name: &str, tag: &str) -> PathBuf {
    toy.actions(
        name,
        &[
            json!({"name": "Write File", "args": {"file_name": "submission.csv", "content": tag}}),
            json!({"name": "Execute Script", "args": {"script_name": "hold.py"}}),
            json!({"name": "Final Answer", "args": {"final_answer": "done"}}),
        ],
    )
}

/// `mlab run` on the toy task from the toy's folder, with no --work-dir
/// unless `extra` gives one.
fn run_cmd(toy: &Toy, actions: &Path, log: &str, extra: &[&str]) -> Command {
    // The log dir is relative to the toy's folder, the run's cwd.
    let mut c = toy.command_in(actions, Path::new(log), None, extra);
    c.current_dir(toy.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// A started run that is killed (SIGKILL) if the test fails before it
/// ends, so that no run or hold.py outlives a failed test (hold.py ends
/// when its parent goes).
struct Running(Option<Child>);

impl Running {
    fn start(mut cmd: Command) -> Running {
        Running(Some(cmd.spawn().unwrap()))
    }

    fn child(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }

    fn finish(mut self) -> Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits for hold.py to start in `ws` and returns its pid.
fn wait_started(ws: &Path, run: &mut Running) -> i32 {
    let started = ws.join("started");
    let ok = wait_for(120, || {
        started.exists() || run.child().try_wait().ok().flatten().is_some()
    });
    assert!(
        ok && started.exists(),
        "hold.py never started in {}",
        ws.display()
    );
    std::fs::read_to_string(&started)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_second_run_on_a_held_workspace_is_refused_naming_the_first() {
    let toy = toy_with_hold();
    let a = holding_actions(&toy, "a.jsonl", "id\nA\n");
    // Not holding: before the lock, this second run took the workspace over.
    let b = toy.actions(
        "b.jsonl",
        &[
            json!({"name": "Write File", "args": {"file_name": "submission.csv", "content": "id\nB\n"}}),
            json!({"name": "Final Answer", "args": {"final_answer": "done"}}),
        ],
    );
    let work = toy.path().join("shared-work");
    let w = work.to_str().unwrap();
    let ws = work.join("toy");

    let mut first = Running::start(run_cmd(&toy, &a, "logs1", &["--work-dir", w]));
    wait_started(&ws, &mut first);
    let first_pid = first.child().id();

    let second = run_cmd(&toy, &b, "logs2", &["--work-dir", w])
        .output()
        .unwrap();
    assert!(!second.status.success());
    let err = text(&second.stderr);
    let logs1 = toy.path().canonicalize().unwrap().join("logs1");
    assert!(
        err.contains("is in use by the run logging to")
            && err.contains(&logs1.display().to_string())
            && err.contains(&format!("pid {first_pid}"))
            && err.contains("--work-dir"),
        "{err}"
    );
    // The refused run wrote nothing and touched nothing of the first.
    assert!(!toy.path().join("logs2").exists(), "{err}");
    assert_eq!(
        std::fs::read_to_string(ws.join("submission.csv")).unwrap(),
        "id\nA\n"
    );

    std::fs::write(ws.join("go"), "").unwrap();
    let out = first.finish();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let logs1 = toy.path().join("logs1");
    assert_eq!(
        read_json(&logs1.join("run.json"))["exit_reason"],
        "final_answer"
    );
    assert_eq!(
        std::fs::read_to_string(logs1.join("env_log/traces/step_final_files/submission.csv"))
            .unwrap(),
        "id\nA\n"
    );

    // The lock went with the first run: the same work dir is free again.
    let fin = toy.actions("fin.jsonl", &[json!({"name": "Final Answer", "args": "x"})]);
    let third = run_cmd(&toy, &fin, "logs3", &["--work-dir", w])
        .output()
        .unwrap();
    assert!(third.status.success(), "{}", text(&third.stderr));
}

#[test]
fn a_killed_run_leaves_no_lock_that_blocks_the_next() {
    let toy = toy_with_hold();
    let a = holding_actions(&toy, "a.jsonl", "id\nA\n");
    let work = toy.path().join("work");
    let w = work.to_str().unwrap();
    let mut first = Running::start(run_cmd(&toy, &a, "logs1", &["--work-dir", w]));
    let script = wait_started(&work.join("toy"), &mut first);
    drop(first); // SIGKILL: no chance to clean up
                 // Let the orphaned script end so that it cannot outlive the test.
    std::fs::write(work.join("toy/go"), "").unwrap();
    assert!(wait_for(60, || !alive(script)), "hold.py kept running");

    let fin = toy.actions("fin.jsonl", &[json!({"name": "Final Answer", "args": "x"})]);
    let out = run_cmd(&toy, &fin, "logs2", &["--work-dir", w])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn runs_without_a_work_dir_get_their_own_workspace_beside_their_log_dir() {
    let toy = toy_with_hold();
    let a = holding_actions(&toy, "a.jsonl", "id\nA\n");
    let b = holding_actions(&toy, "b.jsonl", "id\nB\n");
    let ws_a = toy.path().join("runA.workspace/toy");
    let ws_b = toy.path().join("runB.workspace/toy");

    // Both are in their middle step at once.
    let mut run_a = Running::start(run_cmd(&toy, &a, "runA", &[]));
    wait_started(&ws_a, &mut run_a);
    let mut run_b = Running::start(run_cmd(&toy, &b, "runB", &[]));
    wait_started(&ws_b, &mut run_b);
    std::fs::write(ws_a.join("go"), "").unwrap();
    std::fs::write(ws_b.join("go"), "").unwrap();
    let (out_a, out_b) = (run_a.finish(), run_b.finish());
    assert!(out_a.status.success(), "{}", text(&out_a.stderr));
    assert!(out_b.status.success(), "{}", text(&out_b.stderr));

    for (log, ws, tag) in [("runA", &ws_a, "id\nA\n"), ("runB", &ws_b, "id\nB\n")] {
        let log = toy.path().join(log);
        let r = read_json(&log.join("run.json"));
        assert_eq!(r["exit_reason"], "final_answer");
        let recorded = PathBuf::from(r["flags"]["work_dir"].as_str().unwrap());
        assert_eq!(recorded.join("toy"), ws.canonicalize().unwrap());
        assert_eq!(
            std::fs::read_to_string(ws.join("submission.csv")).unwrap(),
            tag
        );
        assert_eq!(
            std::fs::read_to_string(log.join("env_log/traces/step_final_files/submission.csv"))
                .unwrap(),
            tag
        );
        // The workspace lies outside the log folder.
        assert!(!ws.starts_with(&log));
    }
    assert!(!toy.path().join("workspace").exists());
}

#[test]
fn an_exhausted_actions_file_ends_as_actions_exhausted_not_max_steps() {
    let toy = Toy::new();
    let out = toy.run(
        &[json!({"name": "List Files", "args": {"dir_path": "."}})],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = toy.run_json();
    assert_eq!(r["exit_reason"], "actions_exhausted");
    assert_eq!(r["steps"], 1);
    let error = r["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("ran out") && error.contains("Final Answer"),
        "{r}"
    );
    let err = text(&out.stderr);
    assert!(err.contains("actions_exhausted"), "{err}");
    assert!(toy
        .log()
        .join("env_log/traces/step_final_files/train.py")
        .exists());

    // A list that ends exactly at the step limit still ends as max_steps.
    let toy = Toy::new();
    let out = toy.run(
        &[json!({"name": "List Files", "args": {"dir_path": "."}})],
        &["--max-steps", "1"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(toy.run_json()["exit_reason"], "max_steps");
}

#[test]
fn a_byte_order_mark_before_the_actions_is_accepted() {
    let toy = Toy::new();
    let file = toy.path().join("bom.jsonl");
    std::fs::write(
        &file,
        "\u{feff}{\"name\": \"List Files\", \"args\": {\"dir_path\": \".\"}}\n{\"name\": \"Final Answer\", \"args\": \"x\"}\n",
    )
    .unwrap();
    let out = toy.command(&file, &toy.log(), &[]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(toy.run_json()["exit_reason"], "final_answer");
    assert_eq!(toy.run_json()["steps"], 2);
}

#[test]
fn replaying_llm_actions_without_a_model_is_refused_before_anything_is_written() {
    let toy = Toy::new();
    let trace = toy.path().join("trace.json");
    let step = |action: Value| json!({"action": action, "observation": "x", "timestamp": 1.0});
    let doc = json!({"steps": [
        step(json!({"name": "List Files", "args": {"dir_path": "."}})),
        step(json!({"name": "Edit Script (AI)", "args": {"script_name": "train.py", "edit_instruction": "x", "save_name": "train.py"}})),
        step(json!({"name": "Understand File", "args": {"file_name": "train.py", "things_to_look_for": "x"}})),
        step(json!({"name": "Final Answer", "args": "done"})),
    ], "low_level_steps": []});
    std::fs::write(&trace, doc.to_string()).unwrap();
    let out = toy.command(&trace, &toy.log(), &[]).output().unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("Edit Script (AI), Understand File")
            && err.contains("needs a language model")
            && err.contains("--llm MODEL")
            && err.contains("--edit-script-llm"),
        "{err}"
    );
    assert!(
        !toy.log().exists(),
        "the refused run wrote {}",
        toy.log().display()
    );
    assert!(!toy.ws().exists());
}

/// Runs `cmd` with a stdout whose reader is already gone, as in
/// `mlab ... | head` once head has exited.
fn with_closed_stdout(cmd: &mut Command) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    cmd.stdout(writer).stderr(Stdio::piped()).output().unwrap()
}

fn assert_quiet(out: &Output, what: &str) {
    let err = text(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "{what} panicked: {err}");
    assert!(out.status.success(), "{what}: {:?} {err}", out.status);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{what}: {err}"
    );
}

#[test]
fn a_closed_stdout_ends_tasks_and_eval_quietly() {
    common::need_python(&["json"]);
    let toy = Toy::new();
    write(
        &toy.path().join("bench/toy/script/eval.py"),
        "def get_score(folder):\n    return 1.0\n",
    );
    let bench = toy.path().join("bench");

    let out = with_closed_stdout(
        common::mlab()
            .arg("--benchmarks-dir")
            .arg(&bench)
            .arg("tasks"),
    );
    assert_quiet(&out, "mlab tasks");
    let out = with_closed_stdout(
        common::mlab()
            .arg("--benchmarks-dir")
            .arg(&bench)
            .args(["tasks", "--json"]),
    );
    assert_quiet(&out, "mlab tasks --json");

    let out = toy.run(&[json!({"name": "Final Answer", "args": "x"})], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let results = toy.path().join("results.json");
    let out = with_closed_stdout(
        common::mlab()
            .arg("--benchmarks-dir")
            .arg(&bench)
            .arg("eval")
            .arg("--log-folder")
            .arg(toy.log())
            .args(["--sandbox", "none", "--no-cache"])
            .arg("--python")
            .arg(real_python())
            .arg("--output-file")
            .arg(&results),
    );
    assert_quiet(&out, "mlab eval");
    // Eval still did the work that comes after printing.
    assert!(results.exists(), "{}", text(&out.stderr));
}

#[test]
fn log_lines_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let toy = Toy::new();
    let file = toy.actions(
        "a.jsonl",
        &[
            json!({"name": "List Files", "args": {"dir_path": "."}}),
            json!({"name": "Final Answer", "args": "x"}),
        ],
    );
    // `-vv` makes the environment log each step (a `tracing` event); the
    // test helper's NO_COLOR=1 is taken away, so only the pipe decides.
    let mut c = toy.command(&file, &toy.log(), &["-vv"]);
    c.env_remove("NO_COLOR");
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("DEBUG"), "no log line to check: {err}");
    assert!(!err.contains('\u{1b}'), "colour codes in a pipe: {err:?}");
}
