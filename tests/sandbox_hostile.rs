//! The hostile corpus: scripts an agent might write, each run the way the
//! agent's code runs (`mlab sandbox-exec`, the agent policy under bwrap).
//! Each must be contained, and the next command in the same workspace must
//! still work. The tests run as root here, so they check that confinement
//! does not rest on file permissions.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{mlab, output, text};

const ANSWER: &str = "ANSWER-7f3a9c";
const TRAIN: &str = "id,label\n1,cat\n2,dog\n";

/// A task (script/ with answers, env/ with data), another task, a run log
/// folder and a workspace, all in one temporary folder.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    ws: PathBuf,
    script: PathBuf,
    train_src: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let script = root.join("task/script");
        let env = root.join("task/env");
        for d in [
            &script,
            &env,
            &root.join("other/script"),
            &root.join("logs/env_log"),
            &root.join("ws"),
        ] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(script.join("answer.csv"), format!("id,label\n1,{ANSWER}\n")).unwrap();
        std::fs::write(root.join("other/script/answer.csv"), ANSWER).unwrap();
        std::fs::write(root.join("logs/env_log/trace.json"), ANSWER).unwrap();
        std::fs::write(env.join("train.csv"), TRAIN).unwrap();
        Fixture {
            ws: root.join("ws"),
            train_src: env.join("train.csv"),
            script,
            root,
            _dir: dir,
        }
    }

    /// `mlab sandbox-exec` with the agent policy of a run of this task.
    fn exec(&self) -> Command {
        let mut c = mlab();
        c.current_dir(&self.root)
            .args(["sandbox-exec", "--sandbox", "bwrap", "--workspace"])
            .arg(&self.ws)
            .arg("--read-only")
            .arg(format!("{}:train.csv", self.train_src.display()))
            .arg("--hide")
            .arg(&self.script)
            .arg("--hide")
            .arg(self.root.join("other"))
            .arg("--hide")
            .arg(self.root.join("logs"))
            .arg("--python")
            .arg(common::python());
        c
    }

    fn run(&self, extra: &[&str], script: &str) -> Output {
        let mut c = self.exec();
        c.args(extra).args(["--", "sh", "-c", script]);
        output(&mut c)
    }

    fn python(&self, extra: &[&str], code: &str) -> Output {
        let mut c = self.exec();
        c.args(extra).args(["--", "python", "-c", code]);
        output(&mut c)
    }

    /// The next command in the same workspace still runs normally.
    fn assert_next_command_works(&self) {
        let o = self.run(
            &[],
            "cat train.csv && echo alive > note.txt && cat note.txt",
        );
        assert!(
            o.status.success(),
            "next command failed: {}",
            text(&o.stderr)
        );
        assert_eq!(text(&o.stdout), format!("{TRAIN}alive\n"));
    }
}

fn all(o: &Output) -> String {
    format!("{}{}", text(&o.stdout), text(&o.stderr))
}

#[test]
fn answers_are_invisible_by_relative_and_absolute_path() {
    common::need_bwrap();
    let fx = Fixture::new();
    let abs = fx.script.join("answer.csv");
    let script = format!(
        "cat ../task/script/answer.csv; cat {}; cat {}; cat {}; ls -la {}; \
         grep -r {ANSWER} {} ; echo done",
        abs.display(),
        fx.root.join("other/script/answer.csv").display(),
        fx.root.join("logs/env_log/trace.json").display(),
        fx.script.display(),
        fx.root.display(),
    );
    let o = fx.run(&[], &script);
    let out = all(&o);
    assert!(out.contains("done"), "{out}");
    assert!(!out.contains(ANSWER), "answers leaked: {out}");
    // Seen from outside, the answers are still there.
    assert!(std::fs::read_to_string(&abs).unwrap().contains(ANSWER));
    fx.assert_next_command_works();
}

#[test]
fn home_files_and_key_files_are_invisible() {
    common::need_bwrap();
    let fx = Fixture::new();
    let home = fx.root.join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::create_dir_all(home.join(".kaggle")).unwrap();
    std::fs::write(home.join(".ssh/id_rsa"), "PRIVATE-KEY-1").unwrap();
    std::fs::write(home.join(".kaggle/kaggle.json"), "KAGGLE-KEY-2").unwrap();
    std::fs::write(home.join("notes.txt"), "HOME-NOTE-3").unwrap();
    // The original runner read keys from files in its working directory.
    std::fs::write(fx.root.join("openai_api_key.txt"), "org:OPENAI-KEY-4").unwrap();
    let mut c = fx.exec();
    c.env("HOME", &home).args([
        "--",
        "sh",
        "-c",
        &format!(
            "cat {h}/.ssh/id_rsa {h}/.kaggle/kaggle.json {h}/notes.txt {k}; ls -la {h}; \
             cat ../openai_api_key.txt; echo done",
            h = home.display(),
            k = fx.root.join("openai_api_key.txt").display()
        ),
    ]);
    let o = output(&mut c);
    let out = all(&o);
    assert!(out.contains("done"), "{out}");
    for secret in [
        "PRIVATE-KEY-1",
        "KAGGLE-KEY-2",
        "HOME-NOTE-3",
        "OPENAI-KEY-4",
    ] {
        assert!(!out.contains(secret), "{secret} leaked: {out}");
    }
    fx.assert_next_command_works();
}

#[test]
fn the_network_is_unreachable_even_a_server_on_local_loopback() {
    common::need_bwrap();
    let fx = Fixture::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicUsize::new(0));
    let (a, s) = (accepted.clone(), stop.clone());
    let server = std::thread::spawn(move || {
        while s.load(Ordering::SeqCst) == 0 {
            if listener.accept().is_ok() {
                a.fetch_add(1, Ordering::SeqCst);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    // pypi.org is reachable from this machine, so it would connect if the
    // network namespace were missing.
    let code = format!(
        "import socket\n\
         for host, port in [('127.0.0.1', {port}), ('pypi.org', 443), ('1.1.1.1', 53)]:\n\
         \x20   try:\n\
         \x20       socket.create_connection((host, port), timeout=5)\n\
         \x20       print('CONNECTED', host)\n\
         \x20   except OSError as e:\n\
         \x20       print('blocked', host, e)\n\
         print('interfaces', [n for _, n in socket.if_nameindex()])\n"
    );
    let o = fx.python(&[], &code);
    stop.store(1, Ordering::SeqCst);
    server.join().unwrap();
    let out = all(&o);
    assert!(!out.contains("CONNECTED"), "{out}");
    assert_eq!(out.matches("blocked").count(), 3, "{out}");
    assert!(out.contains("interfaces ['lo']"), "{out}");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "the outside server was reached"
    );
    fx.assert_next_command_works();
}

#[test]
fn writes_outside_the_workspace_leave_no_trace() {
    common::need_bwrap();
    let fx = Fixture::new();
    let beside = fx.root.join("escaped.txt");
    let script = format!(
        "echo x > {}; echo x > ../escaped2.txt; echo x > /etc/mlab-escaped; \
         echo x > /usr/mlab-escaped; echo x > /tmp/mlab-escaped; echo inside > ok.txt; echo done",
        beside.display()
    );
    let o = fx.run(&[], &script);
    assert!(all(&o).contains("done"), "{}", all(&o));
    for p in [
        beside,
        fx.root.join("escaped2.txt"),
        PathBuf::from("/etc/mlab-escaped"),
        PathBuf::from("/usr/mlab-escaped"),
    ] {
        assert!(!p.exists(), "{} was written", p.display());
    }
    assert_eq!(
        std::fs::read_to_string(fx.ws.join("ok.txt")).unwrap(),
        "inside\n"
    );
    fx.assert_next_command_works();
}

#[test]
fn read_only_files_stay_unchanged_and_the_tamper_check_is_clean() {
    common::need_bwrap();
    let fx = Fixture::new();
    let report = fx.root.join("tamper.json");
    let script = "echo hacked > train.csv; echo more >> train.csv; rm -f train.csv; \
                  mv train.csv moved.csv; chmod 777 train.csv; truncate -s 0 train.csv; \
                  python -c \"open('train.csv', 'w').write('x')\"; cat train.csv";
    let mut c = fx.exec();
    c.arg("--tamper-report")
        .arg(&report)
        .args(["--", "sh", "-c", script]);
    let o = output(&mut c);
    // Inside, the file still reads as the task's data.
    assert!(text(&o.stdout).ends_with(TRAIN), "{}", all(&o));
    assert_eq!(std::fs::read_to_string(&fx.train_src).unwrap(), TRAIN);
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["checked"], 1);
    assert!(!fx.ws.join("moved.csv").exists());
    fx.assert_next_command_works();
}

#[test]
fn a_fork_bomb_is_bounded_by_the_process_limit() {
    common::need_bwrap();
    let fx = Fixture::new();
    // A bounded loop, not a real bomb: whatever happens it starts at most
    // 200 processes, each gone within seconds.
    let code = "import os, time\n\
                ok = failed = 0\n\
                for _ in range(200):\n\
                \x20   try:\n\
                \x20       pid = os.fork()\n\
                \x20   except OSError:\n\
                \x20       failed += 1\n\
                \x20       continue\n\
                \x20   if pid == 0:\n\
                \x20       time.sleep(3)\n\
                \x20       os._exit(0)\n\
                \x20   ok += 1\n\
                print('forked', ok, 'failed', failed)\n";
    let o = fx.python(&["--max-procs", "24"], code);
    let out = text(&o.stdout);
    let nums: Vec<u32> = out
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(nums.len(), 2, "{}", all(&o));
    assert!(nums[0] < 24, "{out}");
    assert!(nums[1] > 0, "{out}");
    // The breach is named, so an agent's observation says which limit it hit.
    assert!(text(&o.stderr).contains("its process limit"), "{}", all(&o));
    fx.assert_next_command_works();
}

#[test]
fn an_infinite_loop_is_stopped_by_the_timeout() {
    common::need_bwrap();
    let fx = Fixture::new();
    let mark = common::marker("timeout");
    let o = fx.run(
        &["--timeout", "1"],
        &format!("(: {mark}; sleep 1.5; echo late > late.txt) & while :; do :; done"),
    );
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("time limit of 1 s"), "{}", all(&o));
    // The whole namespace went, the sleeping child with it: once no process
    // of the command is left, nothing can write late.txt any more.
    assert!(
        common::wait_for(30, || common::processes_with(&mark).is_empty()),
        "a child outlived the timeout: {:?}",
        common::processes_with(&mark)
    );
    assert!(
        !fx.ws.join("late.txt").exists(),
        "a child outlived the timeout"
    );
    fx.assert_next_command_works();
}

#[test]
#[ignore = "needs a writable cgroup memory controller, which ./install.sh cannot set up; .ci/run runs it (--include-ignored)"]
fn allocating_past_the_memory_limit_is_reported_as_such() {
    common::need_bwrap();
    let doctor = output(mlab().args(["doctor", "--json"]));
    let memory = text(&doctor.stdout).contains("memory limits via");
    common::need(
        "a writable cgroup memory controller (mlab doctor: \"memory limits via\")",
        memory,
    );
    let fx = Fixture::new();
    let o = fx.python(
        &["--mem-limit", "150M"],
        "b = bytearray(400 * 2**20)\nprint('survived', len(b))",
    );
    assert!(!o.status.success());
    assert!(!text(&o.stdout).contains("survived"), "{}", all(&o));
    assert!(
        text(&o.stderr).contains("memory limit of 157286400 bytes"),
        "{}",
        all(&o)
    );
    // Under the limit is fine.
    let o = fx.python(
        &["--mem-limit", "150M"],
        "b = bytearray(20 * 2**20)\nprint('ok')",
    );
    assert_eq!(text(&o.stdout), "ok\n", "{}", all(&o));
    fx.assert_next_command_works();
}

#[test]
fn printing_a_gigabyte_is_cut_at_the_output_limit() {
    common::need_bwrap();
    let fx = Fixture::new();
    let mut c = fx.exec();
    c.args(["--max-output", "1M", "--", "head", "-c", "1G", "/dev/zero"]);
    let o = output(&mut c);
    assert!(
        o.stdout.len() <= 1 << 20,
        "{} bytes came through",
        o.stdout.len()
    );
    assert!(
        text(&o.stderr).contains("output limit"),
        "{}",
        text(&o.stderr)
    );
    fx.assert_next_command_works();
}

#[test]
fn background_processes_are_gone_after_the_command() {
    common::need_bwrap();
    let fx = Fixture::new();
    let mark = common::marker("background");
    let o = fx.run(
        &[],
        &format!(
            "(: {mark}; sleep 1; echo late > late1.txt) & \
             setsid sh -c ': {mark}; sleep 1; echo late > late2.txt' & \
             nohup sh -c ': {mark}; sleep 1; echo late > late3.txt' >/dev/null 2>&1 & \
             echo started"
        ),
    );
    assert_eq!(text(&o.stdout), "started\n", "{}", all(&o));
    // Wait for their death, not for a while: once none is left, none can
    // write its file any more.
    assert!(
        common::wait_for(30, || common::processes_with(&mark).is_empty()),
        "background processes survived the command: {:?}",
        common::processes_with(&mark)
    );
    for f in ["late1.txt", "late2.txt", "late3.txt"] {
        assert!(
            !fx.ws.join(f).exists(),
            "{f}: a background process survived"
        );
    }
    fx.assert_next_command_works();
}

#[test]
fn the_environment_holds_no_keys_and_no_run_ids() {
    common::need_bwrap();
    let fx = Fixture::new();
    let mut c = fx.exec();
    c.env("OPENAI_API_KEY", "sk-OPENAI-SECRET")
        .env("ANTHROPIC_API_KEY", "ANTHROPIC-SECRET")
        .env("AWS_SECRET_ACCESS_KEY", "AWS-SECRET")
        .env("MLAB_RUN_ID", "RUN-ID-1234")
        .env("MLAB_LOG_DIR", "/logs/RUN-ID-1234")
        .args([
            "--",
            "sh",
            "-c",
            "env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'",
        ]);
    let o = output(&mut c);
    let out = all(&o);
    assert!(o.status.success(), "{out}");
    for leak in ["SECRET", "RUN-ID-1234", "MLAB_", "API_KEY"] {
        assert!(!out.contains(leak), "{leak} leaked: {out}");
    }
    assert!(out.contains(&format!("HOME={}", fx.ws.display())), "{out}");
    assert!(out.contains("PYTHONUNBUFFERED=1"), "{out}");
    fx.assert_next_command_works();
}

#[test]
fn the_task_python_works_inside_with_its_packages() {
    common::need_bwrap();
    common::need_python(&["numpy"]);
    let fx = Fixture::new();
    let o = fx.python(
        &[],
        "import numpy, os\nprint(numpy.arange(4).sum(), os.getcwd() == os.environ['HOME'])",
    );
    assert_eq!(text(&o.stdout), "6 True\n", "{}", all(&o));
}

#[test]
fn the_private_tmp_is_writable_and_not_the_hosts() {
    common::need_bwrap();
    // A workspace outside /tmp, so that nothing is bound inside the private
    // /tmp (JAX and compilers write their scratch files there). The build
    // folder may itself be under /tmp (CI clones there): then /var/tmp.
    let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let base = if base.starts_with("/tmp") {
        std::path::Path::new("/var/tmp")
    } else {
        base
    };
    let ws = tempfile::tempdir_in(base).unwrap();
    let name = format!("mlab-private-{}", std::process::id());
    let o = output(
        mlab()
            .args(["sandbox-exec", "--sandbox", "bwrap", "--workspace"])
            .arg(ws.path())
            .args([
                "--",
                "sh",
                "-c",
                &format!("echo scratch > /tmp/{name} && cat /tmp/{name} && ls /tmp | wc -l"),
            ]),
    );
    assert_eq!(text(&o.stdout), "scratch\n1\n", "{}", all(&o));
    assert!(!std::path::Path::new("/tmp").join(&name).exists());
}
