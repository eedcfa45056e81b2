//! Hardening of the sandbox (issue 11, items 6, 7, 10 and the grader
//! warning of item 11): the file system agent code and graders see is an
//! allow-list, a task Python under /tmp or behind a symlink runs, a Python
//! that cannot start stops a run or an eval at its start, graders find
//! tasks through install.sh's link, and an import failure is reported with
//! its detail.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{mlab, output, read_json, real_python, text, write};
use mlab::testing::scripted::jsonl;
use mlab::testing::toy::ToyTask;
use serde_json::{json, Value};

fn all(o: &Output) -> String {
    format!("{}{}", text(&o.stdout), text(&o.stderr))
}

/// A scratch folder outside /tmp (the sandbox's private /tmp would hide
/// anything in /tmp for a reason that is not the allow-list): under the
/// build folder, or /var/tmp when the checkout itself is in /tmp.
fn scratch_outside_tmp() -> tempfile::TempDir {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let base = if target.starts_with("/tmp") {
        PathBuf::from("/var/tmp")
    } else {
        target
    };
    std::fs::create_dir_all(&base).unwrap();
    tempfile::tempdir_in(&base).unwrap()
}

/// The toy task (`mlab::testing::toy`) with a train.py that only prints,
/// no data/, and an eval.py that scores the number in submission.csv times
/// script/answer.txt, written into `dir`.
fn toy_task(dir: &Path) {
    ToyTask::new()
        .env("train.py", "print('training')\n")
        .without_env("data/x.csv")
        .read_only("./train.csv\n")
        .script("answer.txt", "2\n")
        .eval_py(
            "import os\n\
             def get_score(folder):\n\
             \x20   with open(os.path.join(folder, 'submission.csv')) as f:\n\
             \x20       value = float(f.read().split()[-1])\n\
             \x20   with open('answer.txt') as f:\n\
             \x20       return value * float(f.read())\n",
        )
        .write_at(dir);
}

/// Writes `actions` as JSONL at `file`.
fn actions(file: &Path, actions: &[Value]) {
    write(file, &jsonl(actions));
}

/// `mlab run` of the toy task in `root/bench` with `--agent actions` under
/// bwrap, started from `cwd`.
fn run_toy(root: &Path, cwd: &Path, log: &Path, python: &Path, acts: &[Value]) -> Output {
    let file = root.join("actions.jsonl");
    actions(&file, acts);
    output(
        mlab()
            .current_dir(cwd)
            .arg("--benchmarks-dir")
            .arg(root.join("bench"))
            .args(["run", "--task", "toy", "--agent", "actions", "--actions"])
            .arg(&file)
            .arg("--log-dir")
            .arg(log)
            .arg("--work-dir")
            .arg(root.join("work"))
            .arg("--python")
            .arg(python)
            .args(["--sandbox", "bwrap"])
            .stdin(std::process::Stdio::null()),
    )
}

fn observations(log: &Path) -> Vec<String> {
    read_json(&log.join("env_log/trace.json"))["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["observation"].as_str().unwrap().to_string())
        .collect()
}

/// The top-level names a Python's own folders add to the sandbox: the
/// first component of its prefixes, executable and sys.path entries.
fn python_tops(python: &Path) -> BTreeSet<String> {
    let code = "import os, sys, json\n\
                d = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,\n\
                     os.path.realpath(sys.executable)] + [p for p in sys.path if os.path.isabs(p)]\n\
                print(json.dumps(sorted({os.path.realpath(p) for p in d} | set(d))))";
    let o = output(Command::new(python).args(["-I", "-c", code]));
    let dirs: Vec<String> = serde_json::from_slice(&o.stdout).unwrap();
    dirs.iter()
        .filter_map(|d| Path::new(d).components().nth(1))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect()
}

/// What the sandbox may show at the top level besides the Python's and
/// the workspace's own first folders.
fn system_tops() -> BTreeSet<String> {
    let mut s: BTreeSet<String> = [
        "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc",
    ]
    .iter()
    .filter(|d| Path::new("/").join(d).symlink_metadata().is_ok())
    .map(|d| d.to_string())
    .collect();
    for d in ["dev", "proc", "sys", "tmp"] {
        s.insert(d.to_string());
    }
    s
}

/// Prints, as JSON, what the sandbox shows at the top level and which of
/// `paths` exist inside.
fn probe_script(paths: &[PathBuf]) -> String {
    let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    format!(
        "import json, os\n\
         paths = {list:?}\n\
         print('PROBE' + json.dumps({{'top': sorted(os.listdir('/')),\n\
         \x20   'seen': [p for p in paths if os.path.lexists(p)]}}))\n"
    )
}

fn probe_result(out: &str) -> Value {
    let line = out
        .lines()
        .find_map(|l| l.split_once("PROBE").map(|(_, r)| r.to_string()))
        .unwrap_or_else(|| panic!("no probe output in {out}"));
    serde_json::from_str(&line).unwrap()
}

/// Host paths agent code or graders must never see, made for the test
/// where they do not exist.
fn must_be_invisible(root: &Path, cwd: &Path) -> Vec<PathBuf> {
    let mut v = vec![
        cwd.join("openai_api_key.txt"),
        cwd.join("notes.txt"),
        root.join("runs/other/env_log/trace.json"),
        root.join("runs/other"),
        root.join("bench/toy/script/answer.txt"),
    ];
    for p in ["/mnt", "/srv", "/home", "/var", "/run", "/boot", "/media"] {
        v.push(PathBuf::from(p));
    }
    v
}

#[test]
fn agent_code_sees_only_the_allow_list_at_the_top_level() {
    common::need_bwrap();
    let scratch = scratch_outside_tmp();
    let root = scratch.path().canonicalize().unwrap();
    toy_task(&root.join("bench/toy"));
    let cwd = root.join("cwd");
    write(&cwd.join("openai_api_key.txt"), "sk-secret\n");
    write(&cwd.join("notes.txt"), "private\n");
    // Another run's log folder beside this run's.
    write(&root.join("runs/other/env_log/trace.json"), "{}");
    let log = root.join("runs/this");
    let python = real_python();
    let mut hidden = must_be_invisible(&root, &cwd);
    hidden.push(log.clone());
    write(&root.join("bench/toy/env/probe.py"), &probe_script(&hidden));
    let o = run_toy(
        &root,
        &cwd,
        &log,
        &python,
        &[
            json!({"name": "Execute Script", "args": {"script_name": "probe.py"}}),
            json!({"name": "Final Answer", "args": {"final_answer": "x"}}),
        ],
    );
    assert!(o.status.success(), "{}", all(&o));
    let r = probe_result(&observations(&log)[0]);
    let seen: Vec<String> = serde_json::from_value(r["seen"].clone()).unwrap();
    // The Python's own folders may lie under /home, /var or /opt; those
    // are allowed, and only they.
    let py_tops = python_tops(&python);
    let seen: Vec<&String> = seen
        .iter()
        .filter(|p| {
            let top = Path::new(p.as_str()).components().nth(1);
            let top = top.map(|c| c.as_os_str().to_string_lossy().into_owned());
            !(Path::new(p.as_str()).parent() == Some(Path::new("/"))
                && top.is_some_and(|t| py_tops.contains(&t)))
        })
        .collect();
    assert!(seen.is_empty(), "agent code saw {seen:?}");
    let top: BTreeSet<String> = serde_json::from_value(r["top"].clone()).unwrap();
    let mut allowed = system_tops();
    allowed.extend(py_tops);
    // The workspace's first folder (the build folder's).
    allowed.extend(
        root.components()
            .nth(1)
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    let extra: Vec<&String> = top.difference(&allowed).collect();
    assert!(
        extra.is_empty(),
        "not on the allow-list: {extra:?} in {top:?}"
    );
    for needed in ["usr", "etc", "dev", "proc", "tmp"] {
        assert!(top.contains(needed), "{needed} missing from {top:?}");
    }
}

#[test]
fn a_grader_sees_only_the_allow_list_and_its_task() {
    common::need_bwrap();
    let scratch = scratch_outside_tmp();
    let root = scratch.path().canonicalize().unwrap();
    toy_task(&root.join("bench/toy"));
    toy_task(&root.join("bench/other"));
    let cwd = root.join("cwd");
    write(&cwd.join("openai_api_key.txt"), "sk-secret\n");
    write(&cwd.join("notes.txt"), "private\n");
    write(&root.join("runs/other/env_log/trace.json"), "{}");
    let snap = root.join("runs/this/env_log/traces/step_final_files");
    write(&snap.join("submission.csv"), "value\n1\n");
    let task = root.join("bench/toy");
    let mut hidden = must_be_invisible(&root, &cwd);
    hidden.retain(|p| !p.starts_with(&task));
    hidden.push(root.join("bench/other/script/answer.txt"));
    let python = real_python();
    let o = output(
        mlab()
            .current_dir(&cwd)
            .args(["sandbox-exec", "--sandbox", "bwrap", "--grader"])
            .arg(&snap)
            .arg(task.join("script"))
            .arg(task.join("env"))
            .arg("--python")
            .arg(&python)
            .args(["--", "python", "-c"])
            .arg(format!(
                "{}\nprint('ANSWER', open('answer.txt').read().strip())\n\
                 print('SNAP', open({:?}).read().split()[-1])",
                probe_script(&hidden),
                snap.join("submission.csv").display().to_string()
            )),
    );
    let out = all(&o);
    assert!(o.status.success(), "{out}");
    // The grader reads its own answers and the snapshot.
    assert!(out.contains("ANSWER 2") && out.contains("SNAP 1"), "{out}");
    let r = probe_result(&out);
    let py_tops = python_tops(&python);
    let seen: Vec<String> = serde_json::from_value(r["seen"].clone()).unwrap();
    let seen: Vec<&String> = seen
        .iter()
        .filter(|p| {
            let path = Path::new(p.as_str());
            !(path.parent() == Some(Path::new("/"))
                && py_tops.contains(&path.file_name().unwrap().to_string_lossy().into_owned()))
        })
        .collect();
    assert!(seen.is_empty(), "the grader saw {seen:?}");
    let top: BTreeSet<String> = serde_json::from_value(r["top"].clone()).unwrap();
    let mut allowed = system_tops();
    allowed.extend(py_tops);
    allowed.extend(
        root.components()
            .nth(1)
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    let extra: Vec<&String> = top.difference(&allowed).collect();
    assert!(
        extra.is_empty(),
        "not on the allow-list: {extra:?} in {top:?}"
    );
}

/// A venv made under a temporary folder from the task Python.
fn venv_in(dir: &Path) -> PathBuf {
    let venv = dir.join("venv");
    let o = output(
        Command::new(real_python())
            .args(["-m", "venv", "--without-pip"])
            .arg(&venv),
    );
    assert!(o.status.success(), "{}", all(&o));
    venv
}

#[test]
fn a_venv_under_tmp_runs_agent_scripts_in_the_sandbox() {
    common::need_bwrap();
    let tmp = tempfile::Builder::new()
        .prefix("mlab-venv-")
        .tempdir_in("/tmp")
        .unwrap();
    let venv = venv_in(tmp.path());
    let scratch = scratch_outside_tmp();
    let root = scratch.path().canonicalize().unwrap();
    toy_task(&root.join("bench/toy"));
    write(
        &root.join("bench/toy/env/where.py"),
        "import sys\nprint('PREFIX', sys.prefix)\n",
    );
    let log = root.join("log");
    let o = run_toy(
        &root,
        &root,
        &log,
        &venv.join("bin/python"),
        &[
            json!({"name": "Execute Script", "args": {"script_name": "where.py"}}),
            json!({"name": "Final Answer", "args": {"final_answer": "x"}}),
        ],
    );
    assert!(o.status.success(), "{}", all(&o));
    let obs = observations(&log);
    assert!(
        obs[0].contains(&format!("PREFIX {}", venv.display())),
        "{}",
        obs[0]
    );
}

#[test]
fn a_venv_named_through_a_symlink_runs_in_the_sandbox() {
    common::need_bwrap();
    let tmp = tempfile::tempdir().unwrap();
    let venv = venv_in(tmp.path());
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&venv, &link).unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    let o = output(
        mlab()
            .args(["sandbox-exec", "--sandbox", "bwrap", "--workspace"])
            .arg(&ws)
            .arg("--python")
            .arg(link.join("bin/python"))
            .arg("--")
            .arg(link.join("bin/python"))
            .args(["-c", "import sys; print('PREFIX', sys.prefix)"]),
    );
    assert!(o.status.success(), "{}", all(&o));
    assert!(text(&o.stdout).contains("PREFIX"), "{}", all(&o));
}

/// A `python` that starts outside the sandbox but not inside: a script
/// that runs the real interpreter through a link in a folder the sandbox
/// does not show.
fn python_that_fails_inside(root: &Path) -> PathBuf {
    let elsewhere = root.join("elsewhere/python-real");
    std::fs::create_dir_all(elsewhere.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(real_python(), &elsewhere).unwrap();
    let wrapper = root.join("wrapper/bin/python");
    write(
        &wrapper,
        &format!("#!/bin/sh\nexec {} \"$@\"\n", elsewhere.display()),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = output(Command::new(&wrapper).args(["-c", "print('ok')"]));
    assert_eq!(text(&o.stdout).trim(), "ok", "{}", all(&o));
    wrapper
}

#[test]
fn a_python_that_cannot_start_in_the_sandbox_stops_the_run_before_any_step() {
    common::need_bwrap();
    let scratch = scratch_outside_tmp();
    let root = scratch.path().canonicalize().unwrap();
    toy_task(&root.join("bench/toy"));
    let python = python_that_fails_inside(&root);
    let log = root.join("log");
    let o = run_toy(
        &root,
        &root,
        &log,
        &python,
        &[
            json!({"name": "Execute Script", "args": {"script_name": "train.py"}}),
            json!({"name": "Final Answer", "args": {"final_answer": "x"}}),
        ],
    );
    let err = text(&o.stderr);
    assert!(!o.status.success(), "the run went on: {}", all(&o));
    assert!(
        err.contains("cannot start inside the 'bwrap' sandbox") && err.contains("--python"),
        "{err}"
    );
    assert!(err.contains(&python.display().to_string()), "{err}");
    assert!(
        !log.join("env_log/trace.json").exists(),
        "a step was taken: {err}"
    );
}

/// A finished mlab run of `task` with one final snapshot holding `value`.
fn fake_run(dir: &Path, task: &str, value: &str) {
    let run_json = json!({
        "mlab_version": "0.1.0", "task": task, "agent": "actions",
        "llm": {"main": "none", "fast": "none", "edit": "none"},
        "seed": 0, "flags": {}, "sandbox": "bwrap",
        "start_time": "2026-01-01T10:00:00Z", "end_time": "2026-01-01T10:01:30Z",
        "steps": 0, "exit_reason": "final_answer", "error": null,
        "tokens": {"input": 0, "output": 0}, "cost_usd": 0.0, "tampered": false
    });
    write(&dir.join("run.json"), &run_json.to_string());
    let steps = json!([{"action": {"name": "Final Answer", "args": {"final_answer": "done"}},
                        "observation": "", "timestamp": 2.0}]);
    write(
        &dir.join("env_log/trace.json"),
        &json!({"steps": steps, "low_level_steps": [], "action_infos": {}, "task_description": "x"})
            .to_string(),
    );
    write(&dir.join("env_log/overall_time.txt"), "90.0");
    write(&dir.join("agent_log/main_log"), "Step 0:\n");
    write(
        &dir.join("env_log/traces/step_final_files/submission.csv"),
        &format!("value\n{value}\n"),
    );
}

/// `mlab eval` of `logs` from `cwd`, with `MLAB_HOME` and `HOME` as given
/// and no --benchmarks-dir: tasks come from `$MLAB_HOME/benchmarks`.
fn eval_installed(home: &Path, cwd: &Path, logs: &Path, python: &Path) -> (Output, Value) {
    let out_file = cwd.join("results.json");
    let o = output(
        mlab()
            .current_dir(cwd)
            .env("MLAB_HOME", home.join("mlab"))
            .env("HOME", home)
            .env_remove("XDG_DATA_HOME")
            .env_remove("MLAB_PYTHON")
            .arg("eval")
            .arg("--log-folder")
            .arg(logs)
            .arg("--output-file")
            .arg(&out_file)
            .arg("--python")
            .arg(python)
            .args(["--sandbox", "bwrap"]),
    );
    let doc = common::eval_outputs(&out_file);
    (o, doc)
}

/// A checkout copy with the toy task, linked into `home/mlab/benchmarks`
/// as install.sh links the real one.
fn installed_home(root: &Path) -> PathBuf {
    toy_task(&root.join("checkout/benchmarks/toy"));
    let home = root.join("home");
    std::fs::create_dir_all(home.join("mlab")).unwrap();
    std::os::unix::fs::symlink(
        root.join("checkout/benchmarks"),
        home.join("mlab/benchmarks"),
    )
    .unwrap();
    home
}

#[test]
fn eval_outside_the_checkout_scores_tasks_found_through_the_install_link() {
    common::need_bwrap();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let home = installed_home(&root);
    let logs = root.join("logs");
    fake_run(&logs.join("r1"), "toy", "0.25");
    let cwd = root.join("elsewhere");
    std::fs::create_dir_all(&cwd).unwrap();
    let (o, doc) = eval_installed(&home, &cwd, &logs, &real_python());
    assert!(o.status.success(), "{}", all(&o));
    let key = logs.join("r1/env_log/trace.json").display().to_string();
    let entry = &doc["runs"][&key];
    assert_eq!(
        entry["final_score"].as_f64(),
        Some(0.5),
        "{}\n{doc:#}",
        all(&o)
    );
    assert!(
        !text(&o.stderr).contains("no snapshot could be scored"),
        "{}",
        all(&o)
    );
}

#[test]
fn eval_refuses_a_python_that_cannot_start_in_the_grader_sandbox() {
    common::need_bwrap();
    let scratch = scratch_outside_tmp();
    let root = scratch.path().canonicalize().unwrap();
    let home = installed_home(&root);
    let logs = root.join("logs");
    fake_run(&logs.join("r1"), "toy", "0.25");
    let python = python_that_fails_inside(&root);
    let (o, _) = eval_installed(&home, &root, &logs, &python);
    let err = text(&o.stderr);
    assert!(!o.status.success(), "{}", all(&o));
    assert!(
        err.contains("cannot start inside the 'bwrap' sandbox"),
        "{err}"
    );
    assert!(
        !root.join("results.json").exists(),
        "eval went on to grade: {err}"
    );
}

#[test]
fn grader_import_failure_warning_prints_the_error_not_an_empty_detail() {
    common::need_bwrap();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let home = installed_home(&root);
    write(
        &root.join("checkout/benchmarks/toy/script/eval.py"),
        "raise RuntimeError('grader-setup-broke-7c1')\n",
    );
    let logs = root.join("logs");
    fake_run(&logs.join("r1"), "toy", "0.25");
    let (o, _) = eval_installed(&home, &root, &logs, &real_python());
    let err = text(&o.stderr);
    let warning = err
        .lines()
        .find(|l| l.contains("no snapshot could be scored"))
        .unwrap_or_else(|| panic!("no warning in {err}"));
    assert!(!warning.contains("failed:;"), "{warning}");
    assert!(
        warning.contains("RuntimeError: grader-setup-broke-7c1"),
        "{warning}"
    );
    // The cause is eval.py, not the task's Python.
    assert!(!warning.contains("check the task's Python"), "{warning}");
    assert!(warning.contains("eval.py"), "{warning}");
}
