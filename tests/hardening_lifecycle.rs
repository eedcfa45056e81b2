//! Hardening of the run's life cycle (issue 11, items 2, 3, 4, 8 and 9):
//! workspace content never turns a run into a harness error, agent code is
//! frozen between steps, a blocked action cannot hold the run past its time
//! limit or past Ctrl-C, a full log disk closes the run as an
//! infrastructure failure, and a torn last event line never blocks resume.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
mod env_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use env_support::{read_json, text, wait_for, Toy};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

fn events(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log.join("env_log/events.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn step_events(log: &Path) -> Vec<Value> {
    events(log)
        .into_iter()
        .filter(|e| e["event"] == "step")
        .collect()
}

// ---- item 2: what the workspace holds can never fail a snapshot ----

#[test]
fn entries_a_snapshot_cannot_store_are_skipped_and_listed_not_a_harness_error() {
    let toy = Toy::new();
    toy.env_file(
        "make_mess.py",
        "import os, socket\n\
         # Fits in the workspace, not under the longer snapshot folder.\n\
         deep = '/'.join(['p' * 200] * 20 + ['q' * 45])\n\
         os.makedirs(deep)\n\
         open(os.path.join('p' * 200, 'kept.txt'), 'w').write('kept')\n\
         os.mkfifo('fifo')\n\
         s = socket.socket(socket.AF_UNIX)\n\
         s.bind('sock')\n\
         open('plain.txt', 'w').write('plain')\n\
         print('mess made')\n",
    );
    let out = toy.run(
        &[
            json!({"name": "Execute Script", "args": {"script_name": "make_mess.py"}}),
            json!({"name": "Final Answer", "args": {"final_answer": "done"}}),
        ],
        &[],
    );
    let run = toy.run_json();
    assert_eq!(
        run["exit_reason"],
        "final_answer",
        "{run}\n{}",
        text(&out.stderr)
    );
    assert_eq!(run["infra_failure"], false);
    assert_eq!(run["infra_reason"], Value::Null);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        toy.observations()[0].contains("mess made"),
        "{:?}",
        toy.observations()
    );

    let steps = step_events(&toy.log());
    assert_eq!(steps.len(), 2);
    let skipped = steps[0]["skipped"].as_array().expect("a skipped list");
    let reason_of = |name: &str| {
        skipped
            .iter()
            .find(|s| s["path"].as_str().unwrap().ends_with(name))
            .map(|s| s["reason"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{name} is not listed as skipped: {skipped:?}"))
    };
    assert!(reason_of("fifo").contains("FIFO"));
    assert!(reason_of("sock").contains("socket"));
    let long = skipped
        .iter()
        .find(|s| s["path"].as_str().unwrap().starts_with(&"p".repeat(200)))
        .unwrap_or_else(|| panic!("the long path is not listed: {skipped:?}"));
    assert!(
        long["reason"].as_str().unwrap().contains("too long"),
        "{long}"
    );
    assert_eq!(steps[0]["skipped_total"], skipped.len() as u64);

    // Everything else is in the snapshots.
    for snap in ["step_0_files", "step_final_files"] {
        let dir = toy.log().join("env_log/traces").join(snap);
        assert_eq!(
            std::fs::read_to_string(dir.join("plain.txt")).unwrap(),
            "plain"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("p".repeat(200)).join("kept.txt")).unwrap(),
            "kept"
        );
    }
    let end = events(&toy.log())
        .into_iter()
        .find(|e| e["event"] == "end")
        .unwrap();
    assert!(end["skipped_total"].as_u64().unwrap() >= 3, "{end}");
}

#[test]
fn a_repl_thread_swapping_a_folder_and_a_link_cannot_fail_a_snapshot() {
    let toy = Toy::new();
    let start = "import threading, os\n\
                 os.makedirs('real/sub', exist_ok=True)\n\
                 open('real/sub/f.txt', 'w').write('x')\n\
                 def swap():\n    while True:\n        \
                 os.makedirs('flip/a/b', exist_ok=True)\n        \
                 open('flip/a/b/c.txt', 'w').write('c')\n        \
                 os.rename('flip', 'flop')\n        \
                 os.symlink('real', 'flip')\n        \
                 os.remove('flip')\n        \
                 os.rename('flop', 'flip')\n\
                 threading.Thread(target=swap, daemon=True).start()\n\
                 print('swapping')";
    let mut actions = vec![json!({"name": "Python REPL", "args": {"command": start}})];
    for _ in 0..20 {
        actions.push(json!({"name": "List Files", "args": {"dir_path": "."}}));
        actions.push(
            json!({"name": "Python REPL", "args": {"command": "import time; time.sleep(0.02)"}}),
        );
    }
    actions.push(json!({"name": "Final Answer", "args": {"final_answer": "done"}}));
    let out = toy.run(&actions, &[]);
    let run = toy.run_json();
    assert_eq!(
        run["exit_reason"],
        "final_answer",
        "{run}\n{}",
        text(&out.stderr)
    );
    assert_eq!(run["steps"], actions.len() as u64);
}

// ---- item 3: nothing the REPL left running runs between steps ----

/// A REPL thread keeps a counter file moving; across non-REPL steps (each
/// with a snapshot, one a script that takes a while) it must stay still,
/// and it must move again during a REPL call.
fn repl_is_frozen_between_steps(extra: &[&str]) {
    let toy = Toy::new();
    toy.env_file(
        "pause.py",
        "import time\ntime.sleep(0.5)\nprint('paused')\n",
    );
    let start = "import threading, time, os\n\
                 def count():\n    n = 0\n    while True:\n        n += 1\n        \
                 open('counter.tmp', 'w').write(str(n))\n        os.replace('counter.tmp', 'counter.txt')\n        \
                 time.sleep(0.002)\n\
                 threading.Thread(target=count, daemon=True).start()\n\
                 while not os.path.exists('counter.txt'):\n    time.sleep(0.001)\n\
                 print('counting')";
    // Waits (a handshake, no fixed time) until the counter has moved.
    let moves = "import time\nv = open('counter.txt').read()\n\
                 while open('counter.txt').read() == v:\n    time.sleep(0.001)\n\
                 print('moved from', v)";
    let read = json!({"name": "Read File", "args": {"file_name": "counter.txt"}});
    let out = toy.run(
        &[
            json!({"name": "Python REPL", "args": {"command": start}}),
            read.clone(),
            json!({"name": "Execute Script", "args": {"script_name": "pause.py"}}),
            read.clone(),
            json!({"name": "List Files", "args": {"dir_path": "."}}),
            read.clone(),
            json!({"name": "Python REPL", "args": {"command": moves}}),
            read.clone(),
            json!({"name": "Execute Script", "args": {"script_name": "pause.py"}}),
            read.clone(),
            json!({"name": "Final Answer", "args": {"final_answer": "done"}}),
        ],
        extra,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let obs = toy.observations();
    assert!(obs[0].contains("counting"), "{obs:?}");
    assert!(obs[2].contains("paused"), "{obs:?}");
    assert!(obs[6].contains("moved from"), "{obs:?}");
    let first = &obs[1];
    assert!(first.parse::<u64>().is_ok(), "{obs:?}");
    assert_eq!(&obs[3], first, "the counter moved during a script step");
    assert_eq!(&obs[5], first, "the counter moved between steps");
    assert_ne!(
        &obs[7], first,
        "the counter did not move during the REPL call"
    );
    assert_eq!(
        &obs[9], &obs[7],
        "the counter moved after the second REPL call"
    );
    // The snapshots agree: the step after the REPL call holds the value the
    // later steps read.
    let snap = |n: usize| {
        std::fs::read_to_string(
            toy.log()
                .join(format!("env_log/traces/step_{n}_files/counter.txt")),
        )
        .unwrap()
    };
    assert_eq!(&snap(1), first);
    assert_eq!(&snap(5), first);
    assert_eq!(&snap(9), &obs[7]);
}

#[test]
fn repl_threads_do_not_run_between_steps() {
    repl_is_frozen_between_steps(&[]);
}

#[test]
fn repl_threads_do_not_run_between_steps_under_bwrap() {
    common::need_bwrap();
    repl_is_frozen_between_steps(&["--sandbox", "bwrap"]);
}

#[test]
fn a_frozen_repl_is_killed_when_the_run_ends() {
    let toy = Toy::new();
    let marker = format!("mlab-frozen-child-{}", std::process::id());
    // A background process of the session, findable by its command line.
    let start = format!(
        "import subprocess, sys\n\
         p = subprocess.Popen([sys.executable, '-c', 'import time\\nwhile True: time.sleep(0.01)', '{marker}'])\n\
         open('child.txt', 'w').write(str(p.pid))\nprint('started')"
    );
    let out = toy.run(
        &[
            json!({"name": "Python REPL", "args": {"command": start}}),
            json!({"name": "List Files", "args": {"dir_path": "."}}),
            json!({"name": "Final Answer", "args": {"final_answer": "done"}}),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let obs = toy.observations();
    assert!(obs[0].contains("started"), "{obs:?}");
    let with_marker = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                String::from_utf8_lossy(&cmd).contains(&marker)
                    && common::alive(e.file_name().to_string_lossy().parse().unwrap_or(0))
            })
            .count()
    };
    // Waits on process death (SIGKILL is asynchronous), never on a fixed time.
    assert!(
        wait_for(30, || with_marker() == 0),
        "a process of the frozen session outlived the run"
    );
}

// ---- item 4: a blocked action cannot hold the run ----

/// A model server that takes connections and never answers: the model
/// call behind Understand File blocks (for the 600 s of `--llm-timeout`).
/// Returns the listener (keep it alive) and the flags that point the fast
/// model at it.
fn silent_model() -> (std::net::TcpListener, Vec<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let flags = vec![
        "--llm".to_string(),
        format!("openai:silent@http://127.0.0.1:{port}/v1"),
        "--llm-retries".into(),
        "0".into(),
    ];
    (listener, flags)
}

fn understand() -> Value {
    json!({"name": "Understand File", "args": {"file_name": "train.py", "things_to_look_for": "what it does"}})
}

/// Waits (up to 60 s) for the child to end; kills it when it does not.
fn wait_end(child: &mut std::process::Child) -> bool {
    let ended = wait_for(60, || child.try_wait().unwrap().is_some());
    if !ended {
        let _ = child.kill();
    }
    ended
}

#[test]
fn an_action_blocked_past_its_time_limit_is_abandoned() {
    let toy = Toy::new();
    let (listener, flags) = silent_model();
    let file = toy.actions(
        "a.jsonl",
        &[
            understand(),
            json!({"name": "Final Answer", "args": {"final_answer": "done"}}),
        ],
    );
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.extend(["--max-time", "3"]);
    let mut child = toy
        .command(&file, &toy.log(), &args)
        .env("OPENAI_API_KEY", "test")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Before the fix the run waits for the model for 600 s.
    let ended = wait_end(&mut child);
    let out = child.wait_with_output().unwrap();
    drop(listener);
    assert!(
        ended,
        "the run was held past its time limit by a blocked action"
    );
    let obs = toy.observations();
    assert!(
        obs[0].contains("did not finish within its time limit"),
        "{obs:?}\n{}",
        text(&out.stderr)
    );
    let run = toy.run_json();
    assert!(run["end_time"].is_string(), "{run}");
    assert!(run["exit_reason"].is_string(), "{run}");
}

#[test]
fn ctrl_c_ends_a_run_blocked_in_an_action_within_5_s_with_its_closing_files() {
    let toy = Toy::new();
    let (listener, flags) = silent_model();
    let file = toy.actions(
        "a.jsonl",
        &[
            json!({"name": "Write File", "args": {"file_name": "a.txt", "content": "1"}}),
            understand(),
            json!({"name": "Final Answer", "args": {"final_answer": "done"}}),
        ],
    );
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let log = toy.log();
    let mut child = toy
        .command(&file, &log, &args)
        .env("OPENAI_API_KEY", "test")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The handshake: the model call has connected and now waits.
    let (_conn, _) = listener.accept().unwrap();
    let sent = Instant::now();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let ended = wait_end(&mut child);
    let took = sent.elapsed();
    let out = child.wait_with_output().unwrap();
    assert!(ended, "Ctrl-C did not end the run");
    assert!(
        took < Duration::from_secs(5),
        "Ctrl-C took {took:?} to end the run"
    );
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let run = read_json(&log.join("run.json"));
    assert_eq!(run["exit_reason"], "interrupted", "{run}");
    assert!(run["end_time"].is_string(), "{run}");
    let fin = log.join("env_log/traces/step_final_files");
    assert_eq!(std::fs::read_to_string(fin.join("a.txt")).unwrap(), "1");
    assert!(log.join("env_log/error.txt").exists());
    assert!(log.join("env_log/overall_time.txt").exists());
    assert!(events(&log).iter().any(|e| e["event"] == "end"));
}

// ---- item 8: a full log disk ----

struct Tmpfs(std::path::PathBuf);
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Mounts a tmpfs of `size` at `dir`. Needs root; fails (never skips)
/// when it cannot mount.
fn mount_tmpfs(dir: &Path, size: &str) -> Tmpfs {
    std::fs::create_dir_all(dir).unwrap();
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .output()
        .expect("mount could not start");
    assert!(
        out.status.success(),
        "this test needs root to mount a tmpfs (run the tests as root, as .ci/run does): {}",
        text(&out.stderr)
    );
    Tmpfs(dir.to_path_buf())
}

#[test]
fn a_full_log_disk_closes_the_run_as_an_infrastructure_failure() {
    let toy = Toy::new();
    let disk = toy.path().join("disk");
    let _mount = mount_tmpfs(&disk, "20m");
    toy.env_file(
        "fill.py",
        "import os\nn = len([f for f in os.listdir('.') if f.startswith('big_')])\n\
         open('big_%d.bin' % n, 'wb').write(os.urandom(6 * 1024 * 1024))\nprint('wrote', n)\n",
    );
    let mut actions =
        vec![json!({"name": "Execute Script", "args": {"script_name": "fill.py"}}); 6];
    actions.push(json!({"name": "Final Answer", "args": {"final_answer": "done"}}));
    let file = toy.actions("a.jsonl", &actions);
    let log = disk.join("logs");
    // Log and work dir both on the small disk.
    let out = toy
        .command_in(&file, &log, Some(&disk.join("work")), &[])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out.stderr));

    let run = read_json(&log.join("run.json"));
    assert_eq!(run["exit_reason"], "disk_full", "{run}");
    assert_eq!(run["infra_failure"], true, "{run}");
    assert_eq!(run["infra_reason"], "log_disk_full", "{run}");
    let error = run["error"].as_str().unwrap();
    assert!(error.contains("full"), "{error}");
    let env_log = log.join("env_log");
    let error_txt = std::fs::read_to_string(env_log.join("error.txt")).unwrap();
    assert!(error_txt.contains("full"), "{error_txt}");
    let secs: f64 = std::fs::read_to_string(env_log.join("overall_time.txt"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(secs > 0.0);
    assert!(
        !log.join(".mlab-reserve").exists(),
        "the reserve is given back"
    );

    // Every step recorded as complete has a complete snapshot: all the
    // big files written up to that step, at full size.
    let steps = step_events(&log);
    assert!(steps.len() < 6, "the disk never filled: {}", steps.len());
    assert_eq!(run["steps"], steps.len() as u64);
    for (i, s) in steps.iter().enumerate() {
        let dir = env_log.join(s["snapshot"].as_str().unwrap());
        let obs = s["observation"].as_str().unwrap();
        let wrote = obs.contains(&format!("wrote {i}"));
        for k in 0..=i {
            let f = dir.join(format!("big_{k}.bin"));
            if k < i || wrote {
                let len = std::fs::metadata(&f)
                    .unwrap_or_else(|e| panic!("{} missing from step {i}: {e}", f.display()))
                    .len();
                assert_eq!(len, 6 * 1024 * 1024, "{} is cut short", f.display());
            }
        }
    }
    // The end is recorded too.
    let end = events(&log)
        .into_iter()
        .find(|e| e["event"] == "end")
        .expect("an end event");
    assert_eq!(end["exit_reason"], "disk_full");
}

// ---- item 9: a torn last line never blocks resume ----

#[test]
fn resume_skips_a_torn_last_line_cut_inside_a_utf8_character() {
    let toy = Toy::new();
    let file = toy.actions(
        "a.jsonl",
        &[
            json!({"name": "Write File", "args": {"file_name": "a.txt", "content": "1"}}),
            json!({"name": "Write File", "args": {"file_name": "b.txt", "content": "2"}}),
            json!({"name": "Final Answer", "args": {"final_answer": "done"}}),
        ],
    );
    let out = toy.command(&file, &toy.log(), &[]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A killed run's last line, cut after the first byte of "é".
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(toy.log().join("env_log/events.jsonl"))
        .unwrap();
    use std::io::Write;
    f.write_all(b"{\"event\":\"step\",\"index\":3,\"observation\":\"caf\xC3")
        .unwrap();
    drop(f);
    let log2 = toy.path().join("logs2");
    let out = toy
        .command(
            &file,
            &log2,
            &[
                "--resume",
                toy.log().to_str().unwrap(),
                "--resume-step",
                "1",
            ],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run = read_json(&log2.join("run.json"));
    assert_eq!(run["exit_reason"], "final_answer", "{run}");
    assert_eq!(
        std::fs::read_to_string(log2.join("env_log/traces/step_final_files/b.txt")).unwrap(),
        "2"
    );
}
