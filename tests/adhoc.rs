//! Ad-hoc runs (issue 18): `mlab run --dir PATH --problem ...` on a folder
//! of one's own, `--eval-cmd` scores in `mlab eval`, Ctrl-\ instructions
//! with `--interactive`, and `mlab task new --from-dir`.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
mod env_support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use env_support::{read_json, real_python, text, tree, write};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A temp folder holding `proj/` (the person's folder: train.py and a data
/// file meant to be read-only) and room for logs and workspaces.
struct Proj {
    dir: tempfile::TempDir,
}

impl Proj {
    fn new() -> Proj {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("proj");
        write(
            &p.join("train.py"),
            "print('training')\nopen('out.txt', 'w').write('0.75\\n')\n",
        );
        write(&p.join("data/x.csv"), "x\n1\n");
        Proj { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn proj(&self) -> PathBuf {
        self.path().join("proj")
    }

    fn actions(&self, name: &str, actions: &[Value]) -> PathBuf {
        let p = self.path().join(name);
        let text: String = actions
            .iter()
            .map(|a| format!("{}\n", serde_json::to_string(a).unwrap()))
            .collect();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// `mlab run --dir proj --agent actions` into `logs/<name>`, unconfined
    /// unless `extra` names a sandbox.
    fn command(&self, name: &str, actions: &Path, extra: &[&str]) -> Command {
        let mut c = common::mlab();
        c.current_dir(self.path())
            .arg("run")
            .arg("--dir")
            .arg(self.proj())
            .args(["--agent", "actions", "--actions"])
            .arg(actions)
            .arg("--log-dir")
            .arg(self.log(name))
            .arg("--work-dir")
            .arg(self.path().join("work").join(name))
            .arg("--python")
            .arg(real_python())
            .args(extra)
            .stdin(Stdio::null());
        if !extra.contains(&"--sandbox") {
            c.args(["--sandbox", "none"]);
        }
        c
    }

    fn log(&self, name: &str) -> PathBuf {
        self.path().join("logs").join(name)
    }
}

fn finishing() -> Vec<Value> {
    vec![
        json!({"name": "Execute Script", "args": {"script_name": "train.py"}}),
        json!({"name": "Final Answer", "args": {"final_answer": "done"}}),
    ]
}

fn observations(log: &Path) -> Vec<String> {
    read_json(&log.join("env_log/trace.json"))["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["observation"].as_str().unwrap().to_string())
        .collect()
}

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[test]
fn an_adhoc_run_leaves_the_folder_unchanged_and_logs_like_a_task_run() {
    let p = Proj::new();
    let before = tree(&p.proj());
    let problem = "Make train.py print more.\nKeep data/ as it is.\n";
    let problem_file = p.path().join("problem.txt");
    write(&problem_file, problem);
    let actions = p.actions(
        "a.jsonl",
        &[
            json!({"name": "Execute Script", "args": {"script_name": "train.py"}}),
            json!({"name": "Write File", "args": {"file_name": "train.py", "content": "print('changed')\n"}}),
            json!({"name": "Write File", "args": {"file_name": "data/x.csv", "content": "overwritten\n"}}),
            json!({"name": "Append File", "args": {"file_name": "data/x.csv", "content": "more\n"}}),
            json!({"name": "Final Answer", "args": {"final_answer": "done"}}),
        ],
    );
    let problem_arg = problem_file.to_str().unwrap().to_string();
    let out = p
        .command(
            "a",
            &actions,
            &["--problem-file", &problem_arg, "--read-only", "data/*"],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    // The person's folder: byte for byte what it was.
    assert_eq!(tree(&p.proj()), before, "--dir must never be changed");

    // Logs laid out as for a task run.
    let log = p.log("a");
    let r = read_json(&log.join("run.json"));
    assert_eq!(r["task"], "adhoc:proj");
    assert_eq!(r["exit_reason"], "final_answer");
    assert_eq!(
        r["adhoc"]["dir"],
        p.proj().canonicalize().unwrap().display().to_string()
    );
    assert_eq!(r["adhoc"]["problem_sha256"], sha256(problem));
    assert_eq!(r["adhoc"]["read_only"], json!(["data/*"]));
    assert_eq!(
        std::fs::read_to_string(log.join("research_problem.txt")).unwrap(),
        problem
    );
    for f in [
        "env_log/trace.json",
        "env_log/events.jsonl",
        "env_log/overall_time.txt",
        "env_log/traces/step_0_files/train.py",
        "env_log/traces/step_final_files/train.py",
        "agent_log/main_log",
    ] {
        assert!(log.join(f).exists(), "{f} is missing");
    }
    // The workspace is <work-dir>/<folder name>, as <work-dir>/<task>.
    let ws = p.path().join("work/a/proj");
    assert_eq!(
        std::fs::read_to_string(ws.join("train.py")).unwrap(),
        "print('changed')\n"
    );
    assert!(ws.join("out.txt").exists(), "train.py ran in the workspace");
    // Read-only globs hold: both writes to data/x.csv were refused.
    let obs = observations(&log);
    assert!(obs[0].contains("training"), "{}", obs[0]);
    for i in [2, 3] {
        assert!(
            obs[i].contains("EnvError") && obs[i].contains("read-only"),
            "step {i}: {}",
            obs[i]
        );
    }
    assert_eq!(
        std::fs::read_to_string(log.join("env_log/traces/step_final_files/data/x.csv"))
            .unwrap_or_else(|_| std::fs::read_to_string(ws.join("data/x.csv")).unwrap()),
        "x\n1\n"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("data/x.csv")).unwrap(),
        "x\n1\n"
    );
}

#[test]
fn the_problem_can_be_fed_on_stdin() {
    let p = Proj::new();
    let actions = p.actions("a.jsonl", &finishing());
    let mut child = p
        .command("s", &actions, &["--problem", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Typed in: make it faster.\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log = p.log("s");
    assert_eq!(
        std::fs::read_to_string(log.join("research_problem.txt")).unwrap(),
        "Typed in: make it faster.\n"
    );
    let r = read_json(&log.join("run.json"));
    assert_eq!(
        r["adhoc"]["problem_sha256"],
        sha256("Typed in: make it faster.\n")
    );
    let trace = std::fs::read_to_string(log.join("env_log/trace.json")).unwrap();
    assert!(
        trace.contains("make it faster"),
        "the trace names the problem"
    );
}

#[test]
fn a_missing_or_empty_problem_and_misplaced_logs_are_clear_errors() {
    let p = Proj::new();
    let actions = p.actions("a.jsonl", &finishing());
    let out = p.command("m", &actions, &[]).output().unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("--problem"), "{err}");
    assert!(!p.log("m").exists(), "nothing is written before the checks");

    let mut c = p.command("e", &actions, &["--problem", "-"]);
    let out = c.output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("stdin"), "{}", text(&out.stderr));

    // --dir and --task exclude each other.
    let out = p
        .command("t", &actions, &["--problem", "x", "--task", "toy"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cannot be used with"),
        "{}",
        text(&out.stderr)
    );

    // Logs inside the copied folder are refused before anything is made.
    let mut c = common::mlab();
    let out = c
        .current_dir(p.proj())
        .args(["run", "--dir", ".", "--problem", "x", "--agent", "actions"])
        .arg("--actions")
        .arg(&actions)
        .args(["--sandbox", "none"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("--log-dir") && err.contains("inside --dir"),
        "{err}"
    );
    assert!(!p.proj().join("logs/run.json").exists());
}

fn eval(p: &Proj, extra: &[&str]) -> Output {
    let results = p.path().join("results.json");
    common::mlab()
        .arg("eval")
        .arg("--log-folder")
        .arg(p.path().join("logs"))
        .arg("--output-file")
        .arg(&results)
        .arg("--python")
        .arg(real_python())
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn an_eval_cmd_score_appears_in_mlab_eval_and_runs_without_one_have_no_grader() {
    let p = Proj::new();
    let actions = p.actions("a.jsonl", &finishing());
    // The command reads what train.py wrote in the snapshot.
    let out = p
        .command(
            "scored",
            &actions,
            &["--problem", "x", "--eval-cmd", "cat {snapshot}/out.txt"],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Without the placeholder the folder is the last argument.
    write(
        &p.proj().join("score.sh"),
        "echo scoring >&2\necho 'noise'\nwc -l < \"$1/data/x.csv\"\n",
    );
    let out = p
        .command(
            "scored2",
            &actions,
            &["--problem", "x", "--eval-cmd", "sh score.sh"],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = p
        .command("plain", &actions, &["--problem", "x"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = eval(&p, &["--sandbox", "none"]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "no grader is not an error: {stdout}\n{}",
        text(&out.stderr)
    );
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}: {stdout}"))
            .to_string()
    };
    assert!(row("scored").contains("0.75"), "{stdout}");
    assert!(row("scored2").contains(" 2 "), "{stdout}");
    assert!(row("plain").contains("no grader"), "{stdout}");
    let results = common::eval_outputs(&p.path().join("results.json"));
    let runs = results["runs"].as_object().unwrap();
    let by = |name: &str| {
        runs.iter()
            .find(|(k, _)| k.contains(&format!("/logs/{name}/")))
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(by("scored")["final_score"], 0.75);
    assert_eq!(by("scored2")["final_score"], 2.0);
    let plain = by("plain");
    assert_eq!(plain["final_score"], -1.0);
    assert!(
        plain["eval_errors"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("no grader"),
        "{plain}"
    );
    // Ad-hoc runs are in no success rate.
    assert!(
        results["summary"].as_array().unwrap().is_empty(),
        "{}",
        results["summary"]
    );
}

#[test]
fn an_eval_cmd_runs_under_the_grader_sandbox() {
    common::need_bwrap();
    let p = Proj::new();
    let actions = p.actions("a.jsonl", &finishing());
    // The command cannot write into the snapshot or the folder.
    let out = p
        .command(
            "ro",
            &actions,
            &[
                "--problem",
                "x",
                "--eval-cmd",
                "touch {snapshot}/new 2>/dev/null || touch made 2>/dev/null || echo 3",
            ],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = eval(&p, &["--sandbox", "bwrap", "--no-cache"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let row = stdout
        .lines()
        .find(|l| l.starts_with("ro "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(row.contains(" 3 "), "{stdout}");
    assert!(!p.proj().join("made").exists());
}

#[test]
fn ctrl_backslash_asks_for_an_instruction_recorded_as_a_human_step() {
    let p = Proj::new();
    // The first step waits for `go`, so the signal surely comes during it.
    write(
        &p.proj().join("wait.py"),
        "import os, time\nopen('started', 'w').close()\nfor _ in range(3000):\n    if os.path.exists('go'):\n        break\n    time.sleep(0.01)\nprint('waited')\n",
    );
    let actions = p.actions(
        "a.jsonl",
        &[
            json!({"name": "Execute Script", "args": {"script_name": "wait.py"}}),
            json!({"name": "List Files", "args": {"dir_path": "."}}),
            json!({"name": "Final Answer", "args": {"final_answer": "done"}}),
        ],
    );
    let mut child = p
        .command("i", &actions, &["--problem", "x", "--interactive"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    // stderr, line by line, to see when mlab took the signal.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(line);
        }
        all
    });
    let ws = p.path().join("work/i/proj");
    assert!(
        common::wait_for(60, || ws.join("started").exists()),
        "the first step never started"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGQUIT,
    )
    .unwrap();
    // Handshake: mlab says it will ask after this step.
    loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("mlab never acknowledged Ctrl-\\");
        if line.contains("instruction for the agent") {
            break;
        }
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"Use the smaller model.\nAnd be quick.\n\n")
        .unwrap();
    drop(stdin);
    std::fs::write(ws.join("go"), "").unwrap();
    let status = child.wait().unwrap();
    let err = reader.join().unwrap();
    assert!(status.success(), "{err}");

    let log = p.log("i");
    let trace = read_json(&log.join("env_log/trace.json"));
    let steps = trace["steps"].as_array().unwrap();
    let names: Vec<&str> = steps
        .iter()
        .map(|s| s["action"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Execute Script",
            "Human Instruction",
            "List Files",
            "Final Answer"
        ],
        "{err}"
    );
    assert_eq!(
        steps[1]["action"]["args"]["instruction"],
        "Use the smaller model.\nAnd be quick."
    );
    let events = std::fs::read_to_string(log.join("env_log/events.jsonl")).unwrap();
    assert!(events.contains("Human Instruction"), "{events}");
    assert!(log.join("env_log/traces/step_1_files").is_dir());
    // The agent got it with the observation of its action.
    let main_log = std::fs::read_to_string(log.join("agent_log/main_log")).unwrap();
    assert!(
        main_log.contains("[Human Instruction]") && main_log.contains("Use the smaller model."),
        "{main_log}"
    );
    // A human step is not one of the agent's.
    assert_eq!(
        read_json(&log.join("run.json"))["exit_reason"],
        "final_answer"
    );

    // Replaying the trace plays the agent's actions only.
    write(&p.proj().join("wait.py"), "print('waited')\n");
    let saved = p.path().join("trace_i.json");
    std::fs::copy(log.join("env_log/trace.json"), &saved).unwrap();
    let out = p
        .command("replay", &saved, &["--problem", "x"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let replayed: Vec<String> = read_json(&p.log("replay").join("env_log/trace.json"))["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(replayed, ["Execute Script", "List Files", "Final Answer"]);
}

#[test]
fn task_new_makes_a_task_that_lists_prepares_and_runs() {
    let p = Proj::new();
    let bench = p.path().join("bench");
    // The shared helpers sit beside the tasks, as in benchmarks/.
    common::copy_tree(
        &common::benchmarks_dir().join("_common"),
        &bench.join("_common"),
    );
    let problem = p.path().join("problem.txt");
    write(&problem, "Improve train.py.\n");
    let out = common::mlab()
        .args(["task", "new", "my-task", "--from-dir"])
        .arg(p.proj())
        .arg("--problem-file")
        .arg(&problem)
        .args(["--read-only", "data/*", "--out"])
        .arg(&bench)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = bench.join("my-task");
    for f in [
        "task.toml",
        "env/train.py",
        "env/data/x.csv",
        "script/eval.py",
        "script/prepare.py",
        "script/research_problem.txt",
        "script/read_only_files.txt",
    ] {
        assert!(t.join(f).exists(), "{f} is missing");
    }
    assert_eq!(
        std::fs::read_to_string(t.join("script/research_problem.txt")).unwrap(),
        "Improve train.py.\n"
    );
    let toml = std::fs::read_to_string(t.join("task.toml")).unwrap();
    assert!(
        toml.contains("TODO") && toml.contains("name = \"my-task\""),
        "{toml}"
    );

    // Listed, not yet prepared.
    let out = common::mlab()
        .arg("--benchmarks-dir")
        .arg(&bench)
        .args(["tasks", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "my-task")
        .unwrap_or_else(|| panic!("not listed: {list}"))
        .clone();
    assert_eq!(row["prepared"], false);

    let out = common::mlab()
        .arg("--benchmarks-dir")
        .arg(&bench)
        .args(["prepare", "my-task", "--python"])
        .arg(real_python())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(t.join("script/prepared").exists());

    // It runs, with its read-only file held.
    let actions = p.actions(
        "t.jsonl",
        &[
            json!({"name": "Write File", "args": {"file_name": "data/x.csv", "content": "no\n"}}),
            json!({"name": "Final Answer", "args": {"final_answer": "done"}}),
        ],
    );
    let log = p.path().join("logs/task");
    let out = common::mlab()
        .arg("--benchmarks-dir")
        .arg(&bench)
        .args([
            "run",
            "--task",
            "my-task",
            "--agent",
            "actions",
            "--actions",
        ])
        .arg(&actions)
        .arg("--log-dir")
        .arg(&log)
        .arg("--python")
        .arg(real_python())
        .args(["--sandbox", "none"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = read_json(&log.join("run.json"));
    assert_eq!(r["task"], "my-task");
    assert_eq!(r["exit_reason"], "final_answer");
    assert!(
        observations(&log)[0].contains("read-only"),
        "{:?}",
        observations(&log)
    );
    // Its eval.py says it is a template until written.
    let out = common::mlab()
        .arg("--benchmarks-dir")
        .arg(&bench)
        .arg("eval")
        .arg("--log-folder")
        .arg(&log)
        .args(["--sandbox", "none", "--no-cache", "--python"])
        .arg(real_python())
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(stdout.contains("still the template"), "{stdout}");
}

/// An intermediate snapshot the eval command cannot score is null in
/// mlab's keys and the worst value in the original's `score` list (ad-hoc
/// scores are higher-is-better), never 0.
#[test]
fn an_adhoc_step_the_eval_cmd_cannot_score_is_null_and_the_worst_value() {
    let p = Proj::new();
    // Step 1 has no out.txt yet; step 2 has it.
    let actions = p.actions(
        "a.jsonl",
        &[
            json!({"name": "List Files", "args": {"dir_path": "."}}),
            json!({"name": "Execute Script", "args": {"script_name": "train.py"}}),
            json!({"name": "Final Answer", "args": {"final_answer": "done"}}),
        ],
    );
    let out = p
        .command(
            "steps",
            &actions,
            &["--problem", "x", "--eval-cmd", "cat {snapshot}/out.txt"],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = eval(&p, &["--sandbox", "none", "--eval-intermediate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let results = common::eval_outputs(&p.path().join("results.json"));
    let (_, run) = results["runs"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.contains("/logs/steps/"))
        .unwrap();
    assert_eq!(run["step_scores"][0], Value::Null, "{run}");
    assert_eq!(run["score"][0], json!(f64::MIN), "{run}");
    assert_eq!(run["step_scores"][1], json!(0.75), "{run}");
    assert_eq!(run["final_score"], json!(0.75), "{run}");
}
