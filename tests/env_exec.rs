//! Execute Script end to end: the per-command timeout kills the script and
//! everything it started; a gigabyte of output leaves mlab's memory flat
//! and the observation bounded.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
mod env_support;

use std::time::{Duration, Instant};

use env_support::{alive, text, wait_for, Toy};
use serde_json::json;

#[test]
fn a_script_that_sleeps_forever_is_killed_at_the_timeout_with_its_children() {
    let toy = Toy::new();
    toy.env_file(
        "sleeper.py",
        "import os, subprocess, sys, time\n\
         child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(1000)'])\n\
         open('pids.txt', 'w').write(f'{os.getpid()} {child.pid}')\n\
         print('started', flush=True)\n\
         time.sleep(1000)\n",
    );
    let started = Instant::now();
    let out = toy.run(
        &[
            json!({"name": "Execute Script", "args": {"script_name": "sleeper.py"}}),
            json!({"name": "Final Answer", "args": {"final_answer": "x"}}),
        ],
        &["--exec-timeout", "2"],
    );
    let took = started.elapsed();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(took < Duration::from_secs(60), "took {took:?}");
    let obs = &toy.observations()[0];
    assert!(obs.contains("started"), "{obs}");
    assert!(obs.contains("stopped after 2 s"), "{obs}");
    let pids = std::fs::read_to_string(toy.ws().join("pids.txt")).unwrap();
    for pid in pids.split_whitespace() {
        let pid: i32 = pid.parse().unwrap();
        assert!(
            wait_for(5, || !alive(pid)),
            "process {pid} outlived the timeout"
        );
    }
    assert_eq!(toy.run_json()["exit_reason"], "final_answer");
}

#[test]
fn the_run_time_limit_bounds_a_script_when_no_exec_timeout_is_given() {
    let toy = Toy::new();
    toy.env_file("sleep.py", "import time\ntime.sleep(1000)\n");
    let out = toy.run(
        &[json!({"name": "Execute Script", "args": {"script_name": "sleep.py"}})],
        &["--max-time", "3"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let obs = &toy.observations()[0];
    assert!(obs.contains("time limit"), "{obs}");
    assert_eq!(toy.run_json()["exit_reason"], "max_time");
}

/// Peak resident memory of a process, from /proc (kB).
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn a_gigabyte_of_output_keeps_mlab_memory_bounded() {
    let toy = Toy::new();
    // 1 GiB in lines of 1 KiB.
    toy.env_file(
        "flood.py",
        "import sys\nline = 'x' * 1023 + '\\n'\nchunk = line * 1024\n\
         for _ in range(1024):\n    sys.stdout.write(chunk)\nprint('THE END')\n",
    );
    let file = toy.actions(
        "a.jsonl",
        &[json!({"name": "Execute Script", "args": {"script_name": "flood.py"}})],
    );
    let mut child = toy.command(&file, &toy.log(), &[]).spawn().unwrap();
    let pid = child.id();
    let mut peak = 0u64;
    let status = loop {
        if let Some(kb) = peak_rss_kb(pid) {
            peak = peak.max(kb);
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success());
    eprintln!("peak RSS of mlab while 1 GiB streamed through: {peak} kB");
    assert!(peak > 0, "could not read the RSS");
    assert!(peak < 100 * 1024, "mlab grew to {peak} kB");
    let obs = &toy.observations()[0];
    assert!(obs.len() < 25_000, "observation of {} bytes", obs.len());
    assert!(obs.contains("bytes of output cut here"), "{}", &obs[..200]);
    assert!(obs.ends_with("THE END\n"));
    // The log keeps a bounded echo plus the tail.
    let log = std::fs::metadata(toy.log().join("log")).unwrap().len();
    assert!(log < 80 * 1024 * 1024, "log of {log} bytes");
    let log_text = std::fs::read(toy.log().join("log")).unwrap();
    let end = String::from_utf8_lossy(&log_text[log_text.len() - 30_000..]).into_owned();
    assert!(
        end.contains("more bytes of output were not written"),
        "{end}"
    );
    assert!(
        end.contains("STDOUT: THE END\n"),
        "the end of the output is in the log"
    );
}
