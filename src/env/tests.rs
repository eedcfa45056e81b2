//! Each action's success and error paths, the step bookkeeping and resume,
//! on an in-process environment over a toy task (scripts run with python3
//! under the `none` sandbox; LLM-backed actions use a scripted model).

use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::catalog::Action;
use super::testutil::{real_python, toy_task, Scripted};
use super::workspace::ReadOnlyMode;
use super::*;
use crate::llm::{LlmError, Models};
use crate::sandbox::NoSandbox;

struct Setup {
    dir: tempfile::TempDir,
    read_only: String,
    models: Option<Models>,
    max_steps: u64,
    exec_timeout: Option<Duration>,
    interactive: bool,
    resume: Option<ResumeFrom>,
    log_name: String,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            dir: tempfile::tempdir().unwrap(),
            read_only: "./train.csv\ndata/*\n".into(),
            models: None,
            max_steps: 50,
            exec_timeout: None,
            interactive: false,
            resume: None,
            log_name: "logs".into(),
        }
    }

    fn models(mut self, fast: Arc<Scripted>, edit: Arc<Scripted>) -> Setup {
        self.models = Some(Models {
            main: fast.clone(),
            fast,
            edit,
            edit_max_tokens: 4000,
            main_max_tokens: 2000,
        });
        self
    }

    fn start(&self) -> Environment {
        let task_root = self.dir.path().join("bench");
        std::fs::create_dir_all(&task_root).unwrap();
        let task = if task_root.join("toy").exists() {
            crate::task::Task::load(&task_root.join("toy")).unwrap()
        } else {
            toy_task(&task_root, &self.read_only)
        };
        Environment::start(EnvConfig {
            task,
            log_dir: self.log_dir(),
            work_dir: self.dir.path().join("work"),
            max_steps: self.max_steps,
            max_time: Duration::from_secs(600),
            exec_timeout: self.exec_timeout,
            device: "3".into(),
            python: real_python(),
            interactive: self.interactive,
            sandbox: Arc::new(NoSandbox),
            read_only_mode: ReadOnlyMode::Copy,
            mem_limit: None,
            models: self.models.clone(),
            interrupt: Arc::new(AtomicBool::new(false)),
            echo: false,
            resume: self.resume.clone(),
            prompts: crate::prompts::default_set(),
        })
        .unwrap()
    }

    fn log_dir(&self) -> PathBuf {
        self.dir.path().join(&self.log_name)
    }

    fn ws(&self) -> PathBuf {
        self.dir
            .path()
            .join("work")
            .canonicalize()
            .unwrap()
            .join("toy")
    }
}

fn act(env: &mut Environment, name: &str, args: Value) -> String {
    env.execute(Action::new(name, args)).unwrap()
}

fn assert_refused(obs: &str) {
    assert!(
        obs.starts_with("EnvError: "),
        "expected a refusal, got: {obs}"
    );
}

#[test]
fn list_files_shows_entries_like_ls_f_and_refuses_bad_folders() {
    let s = Setup::new();
    let mut env = s.start();
    let obs = act(&mut env, "List Files", json!({"dir_path": "."}));
    assert_eq!(obs, "backup/\ndata/\ntrain.csv\ntrain.py\n");
    let obs = act(&mut env, "List Files", json!({"dir_path": "data"}));
    assert_eq!(obs, "x.bin\n");
    assert_refused(&act(&mut env, "List Files", json!({"dir_path": "nope"})));
    assert_refused(&act(&mut env, "List Files", json!({"dir_path": ".."})));
}

#[test]
fn read_file_returns_text_and_explains_failures() {
    let s = Setup::new();
    let mut env = s.start();
    assert_eq!(
        act(&mut env, "Read File", json!({"file_name": "./train.py"})),
        "print('hi')\n"
    );
    // Read-only files can be read.
    assert_eq!(
        act(&mut env, "Read File", json!({"file_name": "train.csv"})),
        "a,b\n1,2\n"
    );
    let obs = act(&mut env, "Read File", json!({"file_name": "missing.txt"}));
    assert!(obs.contains("cannot read file missing.txt"), "{obs}");
    std::fs::write(s.ws().join("blob.bin"), [0xff, 0xfe, 0x00]).unwrap();
    let obs = act(&mut env, "Read File", json!({"file_name": "blob.bin"}));
    assert!(obs.contains("not a text file"), "{obs}");
    assert_refused(&act(&mut env, "Read File", json!({"file_name": "data"})));
    // Primitive calls are recorded as low-level steps.
    assert!(env
        .trace()
        .low_level_steps()
        .iter()
        .any(|s| s.action.name == "Read File"));
}

#[test]
fn write_and_append_create_files_and_refuse_read_only_ones() {
    let s = Setup::new();
    let mut env = s.start();
    let obs = act(
        &mut env,
        "Write File",
        json!({"file_name": "out/sub/a.txt", "content": "one\n"}),
    );
    assert!(obs.contains("was written"), "{obs}");
    act(
        &mut env,
        "Append File",
        json!({"file_name": "out/sub/a.txt", "content": "two\n"}),
    );
    assert_eq!(
        std::fs::read_to_string(s.ws().join("out/sub/a.txt")).unwrap(),
        "one\ntwo\n"
    );
    for spelling in [
        "train.csv",
        "./train.csv",
        "data/../train.csv",
        "data/x.bin",
        "data/new.bin",
    ] {
        let obs = act(
            &mut env,
            "Write File",
            json!({"file_name": spelling, "content": "x"}),
        );
        assert!(obs.contains("read-only"), "{spelling}: {obs}");
        let obs = act(
            &mut env,
            "Append File",
            json!({"file_name": spelling, "content": "x"}),
        );
        assert!(obs.contains("read-only"), "{spelling}: {obs}");
    }
    assert_eq!(
        std::fs::read_to_string(s.ws().join("train.csv")).unwrap(),
        "a,b\n1,2\n"
    );
    assert_refused(&act(
        &mut env,
        "Write File",
        json!({"file_name": "data", "content": "x"}),
    ));
    // A hard link to a read-only copy does not carry a write to it.
    std::fs::hard_link(s.ws().join("train.csv"), s.ws().join("alias.csv")).unwrap();
    let obs = act(
        &mut env,
        "Write File",
        json!({"file_name": "alias.csv", "content": "x"}),
    );
    assert!(obs.contains("was written"), "{obs}");
    let obs = act(
        &mut env,
        "Append File",
        json!({"file_name": "train.py", "content": ""}),
    );
    assert!(obs.contains("appended"), "{obs}");
    std::fs::hard_link(s.ws().join("train.csv"), s.ws().join("alias2.csv")).unwrap();
    let obs = act(
        &mut env,
        "Append File",
        json!({"file_name": "alias2.csv", "content": "x"}),
    );
    assert!(obs.contains("hard links"), "{obs}");
    assert_eq!(
        std::fs::read_to_string(s.ws().join("train.csv")).unwrap(),
        "a,b\n1,2\n"
    );
    let obs = act(&mut env, "Write File", json!({"file_name": "a.txt"}));
    assert!(
        obs.starts_with("EnvError: The input for Write File"),
        "{obs}"
    );
}

#[test]
fn copy_file_copies_and_protects_its_destination() {
    let s = Setup::new();
    let mut env = s.start();
    let obs = act(
        &mut env,
        "Copy File",
        json!({"source": "train.py", "destination": "v2/train.py"}),
    );
    assert!(obs.contains("was copied"), "{obs}");
    assert_eq!(
        std::fs::read_to_string(s.ws().join("v2/train.py")).unwrap(),
        "print('hi')\n"
    );
    // A copy of a read-only file is an ordinary, writable file.
    act(
        &mut env,
        "Copy File",
        json!({"source": "train.csv", "destination": "mine.csv"}),
    );
    let obs = act(
        &mut env,
        "Write File",
        json!({"file_name": "mine.csv", "content": "x"}),
    );
    assert!(obs.contains("was written"), "{obs}");
    let obs = act(
        &mut env,
        "Copy File",
        json!({"source": "train.py", "destination": "./train.csv"}),
    );
    assert!(obs.contains("read-only"), "{obs}");
    let obs = act(
        &mut env,
        "Copy File",
        json!({"source": "nope.py", "destination": "x.py"}),
    );
    assert!(obs.contains("does not exist"), "{obs}");
    assert_refused(&act(
        &mut env,
        "Copy File",
        json!({"source": "train.py", "destination": "train.py"}),
    ));
}

#[test]
fn execute_script_returns_output_or_errors_and_sees_only_a_clean_environment() {
    let s = Setup::new();
    let mut env = s.start();
    act(
        &mut env,
        "Write File",
        json!({"file_name": "envdump.py", "content": "import os, json\nprint(json.dumps(dict(os.environ)))\n"}),
    );
    let obs = act(
        &mut env,
        "Execute Script",
        json!({"script_name": "envdump.py"}),
    );
    let body = obs.lines().nth(1).unwrap();
    let seen: serde_json::Map<String, Value> = serde_json::from_str(body).unwrap();
    // A whitelist: locale, time zone and thread counts may pass through;
    // nothing else of the test process (CARGO_*, keys) does.
    let allowed = [
        "CUDA_VISIBLE_DEVICES",
        "HOME",
        "PATH",
        "PYTHONUNBUFFERED",
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
        "TZ",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
    ];
    for k in seen.keys() {
        assert!(allowed.contains(&k.as_str()), "the script saw {k}");
    }
    for k in ["CUDA_VISIBLE_DEVICES", "HOME", "PATH", "PYTHONUNBUFFERED"] {
        assert!(seen.contains_key(k), "the script lacks {k}");
    }
    assert_eq!(seen["CUDA_VISIBLE_DEVICES"], "3");
    assert_eq!(seen["HOME"], s.ws().display().to_string());

    act(
        &mut env,
        "Write File",
        json!({"file_name": "bad.py", "content": "print('partial')\nraise ValueError('boom')\n"}),
    );
    let obs = act(&mut env, "Execute Script", json!({"script_name": "bad.py"}));
    assert!(obs.contains("ValueError: boom"), "{obs}");
    assert!(
        !obs.contains("partial"),
        "stderr only when the script failed: {obs}"
    );
    let obs = act(
        &mut env,
        "Execute Script",
        json!({"script_name": "missing.py"}),
    );
    assert!(obs.contains("does not exist"), "{obs}");
    // Direct primitive calls are low-level steps too.
    let low = env.trace().low_level_steps();
    let runs: Vec<_> = low
        .iter()
        .filter(|s| s.action.name == "Execute Script")
        .collect();
    assert_eq!(
        runs.len(),
        2,
        "two scripts ran; the refusal is not recorded"
    );
    assert_eq!(runs[1].action.args, json!({"script_name": "bad.py"}));
    // Output went to the run's log with prefixes.
    let log = std::fs::read_to_string(s.log_dir().join("log")).unwrap();
    assert!(log.contains("STDOUT: partial\n"), "{log}");
    assert!(log.contains("STDERR: ValueError: boom\n"), "{log}");
}

#[test]
fn long_script_output_is_cut_in_the_middle_with_a_marker() {
    let s = Setup::new();
    let mut env = s.start();
    act(
        &mut env,
        "Write File",
        json!({"file_name": "chatty.py", "content": "for i in range(100000):\n    print('line', i)\n"}),
    );
    let obs = act(
        &mut env,
        "Execute Script",
        json!({"script_name": "chatty.py"}),
    );
    assert!(obs.len() < 25_000, "{}", obs.len());
    assert!(obs.contains("line 0\n"));
    assert!(obs.ends_with("line 99999\n"), "{}", &obs[obs.len() - 100..]);
    assert!(obs.contains("of output cut here"));
}

#[test]
fn python_repl_keeps_state_in_a_separate_process_and_is_stopped_at_its_timeout() {
    let mut s = Setup::new();
    s.exec_timeout = Some(Duration::from_secs(2));
    let mut env = s.start();
    assert_eq!(
        act(&mut env, "Python REPL", json!({"command": "x = 41"})),
        ""
    );
    assert_eq!(
        act(&mut env, "Python REPL", json!({"command": "x + 1"})),
        "42\n"
    );
    let obs = act(
        &mut env,
        "Python REPL",
        json!({"command": "import os; print(os.getpid(), os.getcwd())"}),
    );
    let mut parts = obs.split_whitespace();
    let pid: u32 = parts.next().unwrap().parse().unwrap();
    assert_ne!(pid, std::process::id(), "the REPL must not run inside mlab");
    assert_eq!(parts.next().unwrap(), s.ws().display().to_string());
    let obs = act(&mut env, "Python REPL", json!({"command": "1/0"}));
    assert!(obs.contains("ZeroDivisionError"), "{obs}");
    let obs = act(
        &mut env,
        "Python REPL",
        json!({"command": "while True:\n    pass"}),
    );
    assert!(obs.contains("time limit"), "{obs}");
    let obs = act(&mut env, "Python REPL", json!({"command": "x"}));
    assert!(
        obs.contains("NameError"),
        "a fresh session after the timeout: {obs}"
    );
}

#[test]
fn final_answer_ends_the_run_and_later_actions_are_not_executed() {
    let s = Setup::new();
    let mut env = s.start();
    assert!(!env.is_final());
    assert_eq!(
        act(&mut env, "Final Answer", Value::String("done".into())),
        "end"
    );
    assert!(env.is_final());
    let obs = act(
        &mut env,
        "Write File",
        json!({"file_name": "late.txt", "content": "x"}),
    );
    assert_eq!(obs, SHUT_DOWN);
    assert!(!s.ws().join("late.txt").exists());
}

#[test]
fn step_limit_shuts_the_environment_down() {
    let mut s = Setup::new();
    s.max_steps = 2;
    let mut env = s.start();
    act(&mut env, "List Files", json!({"dir_path": "."}));
    assert!(!env.is_final());
    act(&mut env, "List Files", json!({"dir_path": "."}));
    assert!(env.is_final());
    assert_eq!(
        act(&mut env, "List Files", json!({"dir_path": "."})),
        SHUT_DOWN
    );
}

#[test]
fn unknown_actions_and_malformed_inputs_are_explained() {
    let s = Setup::new();
    let mut env = s.start();
    let obs = act(&mut env, "Fly", json!({}));
    assert!(obs.starts_with("Invalid action: Fly."), "{obs}");
    assert!(
        obs.contains("List Files") && !obs.contains("Request Help"),
        "{obs}"
    );
    // Request Help is not offered without --interactive.
    let obs = act(&mut env, "Request Help", json!({"request": "?"}));
    assert!(obs.starts_with("Invalid action"), "{obs}");
    let obs = act(
        &mut env,
        "List Files",
        Value::String("{dir_path: .}".into()),
    );
    assert!(obs.starts_with("The input for List Files"), "{obs}");
    assert!(obs.contains("\"dir_path\""), "{obs}");
}

#[test]
fn interactive_runs_offer_request_help() {
    let mut s = Setup::new();
    s.interactive = true;
    let env = s.start();
    assert!(env.action_infos().iter().any(|a| a.name == "Request Help"));
}

#[test]
fn inspect_script_lines_shows_a_range_and_limits_it() {
    let s = Setup::new();
    let mut env = s.start();
    let text: String = (1..=150).map(|i| format!("l{i}\n")).collect();
    std::fs::write(s.ws().join("long.py"), text).unwrap();
    let obs = act(
        &mut env,
        "Inspect Script Lines",
        json!({"script_name": "long.py", "start_line_number": "3", "end_line_number": 5}),
    );
    assert!(obs.ends_with("\n\nl3\nl4\nl5"), "{obs}");
    assert!(obs.contains("151 lines"), "{obs}");
    let obs = act(
        &mut env,
        "Inspect Script Lines",
        json!({"script_name": "long.py", "start_line_number": 1, "end_line_number": 150}),
    );
    assert!(obs.contains("limited to 100"), "{obs}");
    let obs = act(
        &mut env,
        "Inspect Script Lines",
        json!({"script_name": "long.py", "start_line_number": "one", "end_line_number": 2}),
    );
    assert!(obs.contains("whole number"), "{obs}");
    assert_refused(&act(
        &mut env,
        "Inspect Script Lines",
        json!({"script_name": "nope.py", "start_line_number": 1, "end_line_number": 2}),
    ));
}

fn scripted(replies: &[&str]) -> Arc<Scripted> {
    Arc::new(Scripted::ok(replies))
}

#[test]
fn understand_file_asks_the_fast_model_per_block_and_merges() {
    let fast = scripted(&["it prints hi"]);
    let s = Setup::new().models(fast.clone(), scripted(&[]));
    let mut env = s.start();
    let obs = act(
        &mut env,
        "Understand File",
        json!({"file_name": "train.py", "things_to_look_for": "what it prints"}),
    );
    assert_eq!(obs, "it prints hi");
    let p = &fast.prompt_texts()[0];
    assert!(
        p.contains("print('hi')") && p.contains("what it prints"),
        "{p}"
    );
    assert!(env
        .trace()
        .low_level_steps()
        .iter()
        .any(|s| s.action.name == "Read File"));

    let fast = scripted(&["part one", "part two", "part three", "merged"]);
    let s = Setup::new().models(fast.clone(), scripted(&[]));
    let mut env = s.start();
    // 7 characters a line: 1428 lines fit in a block of under 10,000.
    let big: String = (0..3000).map(|i| format!("v{i:05}\n")).collect();
    std::fs::write(s.ws().join("big.py"), big).unwrap();
    let obs = act(
        &mut env,
        "Understand File",
        json!({"file_name": "big.py", "things_to_look_for": "values"}),
    );
    assert_eq!(obs, "merged");
    let prompts = fast.prompt_texts();
    assert_eq!(prompts.len(), 4);
    assert!(
        prompts[1].contains("from line 1429 (character 1) to line 2856 (character 7)"),
        "{}",
        &prompts[1][..120]
    );
    assert!(
        prompts[3].contains("Segment 1:\npart one")
            && prompts[3].contains("Segment 3:\npart three")
    );
    let log = fast.prompts.lock().unwrap()[0].log_file.clone().unwrap();
    assert!(log.ends_with("step_0_tool_log.log_0"), "{}", log.display());
}

#[test]
fn llm_actions_without_a_model_say_how_to_get_one() {
    let s = Setup::new();
    let mut env = s.start();
    let obs = act(
        &mut env,
        "Understand File",
        json!({"file_name": "train.py", "things_to_look_for": "x"}),
    );
    assert!(
        obs.starts_with("EnvError:") && obs.contains("--llm"),
        "{obs}"
    );
}

#[test]
fn llm_failures_become_observations_and_a_budget_ends_the_run() {
    let fast = Arc::new(Scripted::new(vec![
        Err(LlmError::PromptTooLong("big".into())),
        Err(LlmError::Refused("no".into())),
        Err(LlmError::Budget("spent".into())),
    ]));
    let s = Setup::new().models(fast, scripted(&[]));
    let mut env = s.start();
    let args = json!({"file_name": "train.py", "things_to_look_for": "x"});
    assert_eq!(
        act(&mut env, "Understand File", args.clone()),
        "EnvError: too long input for the tool"
    );
    let obs = act(&mut env, "Understand File", args.clone());
    assert!(obs.starts_with("LLMError: "), "{obs}");
    let err = env
        .execute(Action::new("Understand File", args))
        .unwrap_err();
    assert!(matches!(
        err.downcast_ref::<LlmError>(),
        Some(LlmError::Budget(_))
    ));
    assert_eq!(
        env.steps_taken(),
        3,
        "the step is recorded before the run ends"
    );
}

#[test]
fn edit_script_saves_backs_up_and_returns_a_diff_then_undo_restores() {
    let edit = scripted(&["Here you go:\n```python\nprint('hello')\n```\n"]);
    let s = Setup::new().models(scripted(&[]), edit.clone());
    let mut env = s.start();
    let obs = act(
        &mut env,
        "Edit Script (AI)",
        json!({"script_name": "train.py", "edit_instruction": "say hello", "save_name": "train.py"}),
    );
    assert!(obs.contains("-print('hi')\n+print('hello')"), "{obs}");
    assert_eq!(
        std::fs::read_to_string(s.ws().join("train.py")).unwrap(),
        "print('hello')\n"
    );
    let req = &edit.prompts.lock().unwrap()[0];
    assert_eq!(req.max_tokens, 4000);
    assert!(req.messages[0].content.contains("say hello"));
    let backups: Vec<_> = std::fs::read_dir(s.ws().join("backup")).unwrap().collect();
    assert_eq!(backups.len(), 1);

    let obs = act(
        &mut env,
        "Undo Edit Script",
        json!({"script_name": "./train.py"}),
    );
    assert!(obs.contains("print('hi')"), "{obs}");
    assert_eq!(
        std::fs::read_to_string(s.ws().join("train.py")).unwrap(),
        "print('hi')\n"
    );
    let obs = act(
        &mut env,
        "Undo Edit Script",
        json!({"script_name": "train.py"}),
    );
    assert!(obs.starts_with("There is no change to undo"), "{obs}");
}

#[test]
fn edit_script_refusals_cost_no_model_call_and_bad_replies_change_nothing() {
    let edit = scripted(&["I would rather not."]);
    let s = Setup::new().models(scripted(&[]), edit.clone());
    let mut env = s.start();
    for save in [
        "train.csv",
        "./train.csv",
        "data/../train.csv",
        "../escape.py",
    ] {
        let obs = act(
            &mut env,
            "Edit Script (AI)",
            json!({"script_name": "train.py", "edit_instruction": "x", "save_name": save}),
        );
        assert_refused(&obs);
    }
    assert!(edit.prompts.lock().unwrap().is_empty());
    let obs = act(
        &mut env,
        "Edit Script (AI)",
        json!({"script_name": "train.py", "edit_instruction": "x", "save_name": "train.py"}),
    );
    assert!(
        obs.contains("did not reply with a ```python block"),
        "{obs}"
    );
    assert_eq!(
        std::fs::read_to_string(s.ws().join("train.py")).unwrap(),
        "print('hi')\n"
    );
}

#[test]
fn edit_script_creates_a_missing_script() {
    let edit = scripted(&["```python\nimport os\n```"]);
    let s = Setup::new().models(scripted(&[]), edit);
    let mut env = s.start();
    let obs = act(
        &mut env,
        "Edit Script (AI)",
        json!({"script_name": "new.py", "edit_instruction": "import os", "save_name": "new.py"}),
    );
    assert!(obs.contains("+import os"), "{obs}");
}

#[test]
fn edit_script_segment_diff_compares_whole_scripts() {
    let edit = scripted(&["```python\nL4\nL5\n```"]);
    let s = Setup::new().models(scripted(&[]), edit.clone());
    let mut env = s.start();
    let text: String = (1..=10).map(|i| format!("l{i}\n")).collect();
    std::fs::write(s.ws().join("s.py"), &text).unwrap();
    let obs = act(
        &mut env,
        "Edit Script Segment (AI)",
        json!({"script_name": "s.py", "start_line_number": 4, "end_line_number": 5,
               "edit_instruction": "upper-case", "save_name": "s2.py"}),
    );
    let want: String = (1..=10)
        .map(|i| {
            if i == 4 || i == 5 {
                format!("L{i}\n")
            } else {
                format!("l{i}\n")
            }
        })
        .collect();
    assert_eq!(std::fs::read_to_string(s.ws().join("s2.py")).unwrap(), want);
    assert!(obs.contains("-l4\n-l5\n+L4\n+L5\n"), "{obs}");
    // Like with like: unchanged lines are context, never "added".
    assert!(!obs.contains("+l1\n") && !obs.contains("+l10"), "{obs}");
    assert!(obs.contains(" l3\n") && obs.contains(" l6\n"), "{obs}");
    let prompt = &edit.prompt_texts()[0];
    assert!(
        prompt.contains("l4\nl5") && !prompt.contains("l6"),
        "{prompt}"
    );
}

#[test]
fn undo_refuses_read_only_targets_even_with_a_planted_backup() {
    let s = Setup::new();
    let mut env = s.start();
    act(
        &mut env,
        "Write File",
        json!({"file_name": "backup/train.csv_2024-01-01_00-00-00", "content": "evil"}),
    );
    let obs = act(
        &mut env,
        "Undo Edit Script",
        json!({"script_name": "train.csv"}),
    );
    assert!(obs.contains("read-only"), "{obs}");
    assert_eq!(
        std::fs::read_to_string(s.ws().join("train.csv")).unwrap(),
        "a,b\n1,2\n"
    );
}

#[test]
fn research_log_actions_append_and_read_back() {
    let fast = scripted(&["think harder", "you tried X"]);
    let s = Setup::new().models(fast.clone(), scripted(&[]));
    let mut env = s.start();
    let obs = act(
        &mut env,
        "Reflection",
        json!({"things_to_reflect_on": "progress"}),
    );
    assert!(obs.contains("research_log.log"), "{obs}");
    assert!(fast.prompts.lock().unwrap().is_empty());
    act(
        &mut env,
        "Append Summary to Research Log",
        json!({"content": "tried X"}),
    );
    act(
        &mut env,
        "Append Summary to Research Log",
        json!({"content": "got 0.5"}),
    );
    assert_eq!(
        std::fs::read_to_string(s.ws().join("research_log.log")).unwrap(),
        "tried X\ngot 0.5\n"
    );
    assert_eq!(
        act(
            &mut env,
            "Reflection",
            json!({"things_to_reflect_on": "progress"})
        ),
        "Reflection: think harder"
    );
    assert_eq!(
        act(
            &mut env,
            "Retrieval from Research Log",
            json!({"current_plan": "do Y"})
        ),
        "you tried X"
    );
    let prompts = fast.prompt_texts();
    assert!(prompts[0].contains("tried X\ngot 0.5") && prompts[0].contains("Do it."));
    assert!(prompts[1].contains("do Y"));
}

#[test]
fn every_step_is_recorded_in_trace_events_and_snapshots() {
    let s = Setup::new();
    let mut env = s.start();
    act(
        &mut env,
        "Write File",
        json!({"file_name": "a.txt", "content": "1"}),
    );
    act(
        &mut env,
        "Write File",
        json!({"file_name": "a.txt", "content": "2"}),
    );
    let env_log = s.log_dir().join("env_log");
    let trace: Value =
        serde_json::from_str(&std::fs::read_to_string(env_log.join("trace.json")).unwrap())
            .unwrap();
    assert_eq!(trace["steps"].as_array().unwrap().len(), 2);
    assert_eq!(trace["task_description"], "Do it.\n");
    assert_eq!(trace["action_infos"].as_object().unwrap().len(), 16);
    assert_eq!(
        std::fs::read_to_string(env_log.join("traces/step_0_files/a.txt")).unwrap(),
        "1"
    );
    assert_eq!(
        std::fs::read_to_string(env_log.join("traces/step_1_files/a.txt")).unwrap(),
        "2"
    );
    let steps = events::read_steps(&env_log.join("events.jsonl")).unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[1].low_level[0].action.name, "Write File");
    env.finish(ExitReason::AgentError, Some("it broke"))
        .unwrap();
    assert!(env_log.join("traces/step_final_files/a.txt").exists());
    assert!(env_log.join("overall_time.txt").exists());
    assert_eq!(
        std::fs::read_to_string(env_log.join("error.txt")).unwrap(),
        "it broke\n"
    );
    let end = events::read_end(&env_log.join("events.jsonl")).unwrap();
    assert!(
        matches!(end, events::Event::End { ref exit_reason, .. } if *exit_reason == ExitReason::AgentError)
    );
}

#[test]
fn an_interrupted_run_refuses_further_steps() {
    let s = Setup::new();
    let mut env = s.start();
    act(&mut env, "List Files", json!({"dir_path": "."}));
    env.interrupt.store(true, Ordering::SeqCst);
    let err = env
        .execute(Action::new("List Files", json!({"dir_path": "."})))
        .unwrap_err();
    assert!(err.downcast_ref::<Interrupted>().is_some());
    assert_eq!(env.steps_taken(), 1);
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn resume_restores_the_workspace_and_the_trace_prefix() {
    let s = Setup::new();
    let mut env = s.start();
    for i in 0..3 {
        act(
            &mut env,
            "Write File",
            json!({"file_name": "n.txt", "content": format!("{i}")}),
        );
    }
    drop(env); // as if killed: no finish
    let old_log = s.log_dir();

    // Into a new log folder, from step 1.
    let mut s2 = Setup::new();
    s2.dir = s.dir;
    s2.log_name = "logs2".into();
    s2.resume = Some(ResumeFrom {
        log_dir: old_log.clone(),
        step: Some(1),
    });
    let mut env = s2.start();
    assert_eq!(read(&s2.ws().join("n.txt")), "1");
    assert_eq!(
        read(&s2.ws().join("train.csv")),
        "a,b\n1,2\n",
        "read-only files are back"
    );
    assert_eq!(env.steps_taken(), 2);
    act(
        &mut env,
        "Write File",
        json!({"file_name": "n.txt", "content": "new"}),
    );
    let steps = events::read_steps(&s2.log_dir().join("env_log/events.jsonl")).unwrap();
    assert_eq!(steps.len(), 3);
    assert_eq!(steps[2].step.action.args["content"], "new");
    assert!(s2
        .log_dir()
        .join("env_log/traces/step_0_files/n.txt")
        .exists());
    assert_eq!(
        read(&s2.log_dir().join("env_log/traces/step_2_files/n.txt")),
        "new"
    );
    drop(env);

    // Into the same folder, from its last step: nothing is lost.
    let mut s3 = Setup::new();
    s3.dir = s2.dir;
    s3.resume = Some(ResumeFrom {
        log_dir: old_log.clone(),
        step: Some(0),
    });
    let mut env = s3.start();
    assert_eq!(read(&s3.ws().join("n.txt")), "0");
    act(&mut env, "List Files", json!({"dir_path": "."}));
    let steps = events::read_steps(&old_log.join("env_log/events.jsonl")).unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[1].step.action.name, "List Files");
    let discarded = old_log.join("env_log/discarded");
    let moved: Vec<_> = std::fs::read_dir(&discarded).unwrap().flatten().collect();
    assert_eq!(moved.len(), 1);
    assert!(moved[0].path().join("step_2_files/n.txt").exists());
}

#[test]
fn resume_beyond_the_last_step_is_refused() {
    let s = Setup::new();
    let mut env = s.start();
    act(&mut env, "List Files", json!({"dir_path": "."}));
    drop(env);
    let log = s.log_dir();
    let r = resume::load(
        &ResumeFrom {
            log_dir: log.clone(),
            step: Some(5),
        },
        &s.dir.path().join("other"),
    );
    let err = format!("{:#}", r.unwrap_err());
    assert!(err.contains("steps 0 to 0 only"), "{err}");
}

#[test]
fn a_changed_read_only_copy_is_reported_as_tampering() {
    let s = Setup::new();
    let mut env = s.start();
    act(
        &mut env,
        "Write File",
        json!({"file_name": "sneak.py", "content": "import os\nos.chmod('train.csv', 0o644)\nopen('train.csv', 'w').write('forged')\n"}),
    );
    act(
        &mut env,
        "Execute Script",
        json!({"script_name": "sneak.py"}),
    );
    env.finish(ExitReason::FinalAnswer, None).unwrap();
    assert_eq!(env.tampered(), Some(true));
    let report = read(&s.log_dir().join("env_log/tamper.json"));
    assert!(report.contains("train.csv"), "{report}");
    // The prepared original is untouched; only the private copy changed.
    let orig = s.dir.path().join("bench/toy/env/train.csv");
    assert_eq!(read(&orig), "a,b\n1,2\n");

    let s2 = Setup::new();
    let mut env = s2.start();
    act(&mut env, "List Files", json!({"dir_path": "."}));
    env.finish(ExitReason::FinalAnswer, None).unwrap();
    assert_eq!(env.tampered(), Some(false));
}
