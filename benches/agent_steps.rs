//! What the research agent's loop costs per step, measured on the real
//! binary: `mlab run --agent research` for 30 steps against an instant mock
//! OpenAI-compatible server on 127.0.0.1 (TCP_NODELAY on both ends, or the
//! mock's own stall would hide everything).
//!
//! Printed figures:
//! - per step: the time between two consecutive model requests as the mock
//!   sees them (reply parsing, the action, snapshot, trace.json and
//!   events.jsonl, agent state, main_log, the next prompt, the llm_calls
//!   record), minus the mock's own round trip measured with a bare
//!   keep-alive client; target under 2 ms;
//! - start-up: process start to the first request;
//! - whole run per step, start-up and exit included;
//! - peak RSS of mlab (VmHWM from /proc, polled while it runs); target
//!   under 15 MB.
//!
//! Run: `cargo bench --bench agent_steps`.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mlab::testing::toy::ToyTask;

const STEPS: usize = 30;
const RUNS: usize = 5;

/// A research-format reply asking for List Files.
fn reply_body() -> String {
    let text = "Reflection: The listing shows the files.\n\
                Research Plan and Status: 1. Look at the files. 2. Measure the baseline.\n\
                Fact Check: none.\n\
                Thought: List the files again.\n\
                Action: List Files\n\
                Action Input: {\"dir_path\": \".\"}";
    let body = format!(
        "{{\"id\":\"c\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"mock\",\
         \"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",\"content\":{}}},\"finish_reason\":\"stop\"}}],\
         \"usage\":{{\"prompt_tokens\":2000,\"completion_tokens\":60,\"total_tokens\":2060}}}}",
        json_string(text)
    );
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The mock: answers every request at once and notes when each arrived.
struct Mock {
    port: u16,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

fn start_mock() -> Mock {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let seen = arrivals.clone();
    let reply = Arc::new(reply_body());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let seen = seen.clone();
            let reply = reply.clone();
            std::thread::spawn(move || serve(stream, &seen, &reply));
        }
    });
    Mock { port, arrivals }
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Instant>>, reply: &str) {
    stream.set_nodelay(true).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                if n.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        seen.lock().unwrap().push(Instant::now());
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// Median round trip of a bare keep-alive client posting `size` bytes.
fn mock_round_trip(port: u16, size: usize) -> Duration {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nodelay(true).unwrap();
    let body = "x".repeat(size);
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut times = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        s.write_all(req.as_bytes()).unwrap();
        let mut len = 0usize;
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some(v) = h.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut b = vec![0u8; len];
        reader.read_exact(&mut b).unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The toy task (`mlab::testing::toy`) in `root/bench/toy`, with a
/// train.py that prints and a data.csv, every file writable.
fn toy_task(root: &Path) {
    ToyTask::new()
        .empty_env()
        .env("train.py", "print('hi')\n")
        .env("data.csv", "a,b\n1,2\n")
        .no_read_only()
        .research_problem("Improve the toy model.\n")
        .write_in(&root.join("bench"));
}

struct RunFigures {
    intervals: Vec<Duration>,
    startup: Duration,
    wall: Duration,
    peak_kb: u64,
}

fn one_run(mock: &Mock, root: &Path, n: usize) -> RunFigures {
    mock.arrivals.lock().unwrap().clear();
    let log = root.join(format!("logs{n}"));
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlab"))
        .arg("--benchmarks-dir")
        .arg(root.join("bench"))
        .args([
            "run",
            "--task",
            "toy",
            "--agent",
            "research",
            "--sandbox",
            "none",
        ])
        .arg("--llm")
        .arg(format!("openai:mock@http://127.0.0.1:{}/v1", mock.port))
        .args(["--max-steps", &STEPS.to_string(), "--llm-retries", "0"])
        .arg("--log-dir")
        .arg(&log)
        .arg("--work-dir")
        .arg(root.join(format!("work{n}")))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env_remove("OPENAI_API_KEY")
        .spawn()
        .unwrap();
    let pid = child.id();
    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let peak = peak.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                if let Some(kb) = vm_hwm_kb(pid) {
                    peak.fetch_max(kb, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let status = child.wait().unwrap();
    let wall = started.elapsed();
    done.store(true, Ordering::SeqCst);
    poller.join().unwrap();
    assert!(status.success(), "mlab failed; see {}", log.display());
    let arrivals = mock.arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), STEPS, "one model call per step");
    let steps = std::fs::read_to_string(log.join("env_log/trace.json")).unwrap();
    assert!(steps.matches("\"List Files\"").count() >= STEPS);
    RunFigures {
        intervals: arrivals.windows(2).map(|w| w[1] - w[0]).collect(),
        startup: arrivals[0] - started,
        wall,
        peak_kb: peak.load(Ordering::SeqCst),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    toy_task(dir.path());
    let mock = start_mock();
    // A request of the size of the research agent's (about 12 KB of JSON).
    let rtt = mock_round_trip(mock.port, 12_000);
    let mut intervals = Vec::new();
    let mut startups = Vec::new();
    let mut walls = Vec::new();
    let mut peaks = Vec::new();
    for n in 0..RUNS {
        let f = one_run(&mock, dir.path(), n);
        intervals.extend(f.intervals);
        startups.push(f.startup);
        walls.push(f.wall);
        peaks.push(f.peak_kb);
    }
    intervals.sort();
    let median = intervals[intervals.len() / 2];
    let p90 = intervals[intervals.len() * 9 / 10];
    let mean = intervals.iter().sum::<Duration>() / intervals.len() as u32;
    startups.sort();
    walls.sort();
    let peak = *peaks.iter().max().unwrap();
    println!("agent_steps: {RUNS} runs of {STEPS} research-agent steps against an instant mock (127.0.0.1, TCP_NODELAY)");
    println!(
        "  mock round trip (bare client, 12 KB request): {:.3} ms",
        ms(rtt)
    );
    println!(
        "  between model requests: median {:.3} ms, mean {:.3} ms, p90 {:.3} ms",
        ms(median),
        ms(mean),
        ms(p90)
    );
    println!(
        "  per step minus the mock round trip: median {:.3} ms, mean {:.3} ms (target < 2 ms)",
        ms(median.saturating_sub(rtt)),
        ms(mean.saturating_sub(rtt))
    );
    println!(
        "  start-up to the first request: median {:.1} ms",
        ms(startups[startups.len() / 2])
    );
    println!(
        "  whole run per step, start-up and exit included: median {:.3} ms",
        ms(walls[walls.len() / 2]) / STEPS as f64
    );
    println!(
        "  peak RSS of mlab (VmHWM): {:.1} MB (max over runs; {:?} kB each) (target < 15 MB)",
        peak as f64 / 1024.0,
        peaks
    );
}
