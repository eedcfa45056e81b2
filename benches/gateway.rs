//! What the LLM gateway adds to a call, beyond the provider's own time.
//!
//! The mock provider answers at once. Three paths, interleaved in rounds so
//! machine noise hits them alike, each on one keep-alive connection:
//! - `direct`: client -> mock over TCP (the round trip any client pays);
//! - `gateway`: client -> gateway's unix socket -> mock (key swap, checks,
//!   the llm_calls.jsonl line, `on_call`);
//! - `forwarder`: client -> `gateway-forward`'s TCP port -> unix socket ->
//!   gateway -> mock (what an agent in the sandbox pays).
//!
//! Whole calls use a 7.6 K-character request (the research agent's first
//! prompt) and a short Chat Completions reply; streamed calls relay a reply
//! of 200 events sent as 200 chunks. Overhead per call = median(gateway) -
//! median(direct); per chunk = (median streamed(gateway) - median
//! streamed(direct)) / 200. Target: under 1 ms a call.
//!
//! Measured (2-core machine shared with other builds, load about 10):
//! 0.29-0.32 ms a whole call through the gateway, 0.36-0.38 ms through the
//! forwarder too; 15-24 us a streamed chunk.
//!
//! Run: `cargo bench --bench gateway`.
// A failed step panics with its message, which is how a bench reports;
// clippy.toml allows this in #[test] functions only, so say it here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlab::gateway::{self, CallRecord, GatewayConfig};
use mlab::testing::mock_server::{MockServer, Reply};

const ROUNDS: usize = 5;
const PER_ROUND: usize = 100;
const STREAM_PER_ROUND: usize = 20;
const EVENTS: usize = 200;

/// A keep-alive HTTP/1.1 client over any stream.
struct Client<S: Read + Write> {
    reader: BufReader<S>,
}

impl<S: Read + Write> Client<S> {
    fn new(s: S) -> Self {
        Client {
            reader: BufReader::new(s),
        }
    }

    /// Sends one POST and reads the whole reply; returns the body's length.
    fn post(&mut self, path: &str, body: &str) -> usize {
        let req = format!(
            "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer sk-dummy\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        self.reader.get_mut().write_all(req.as_bytes()).unwrap();
        let mut status = String::new();
        self.reader.read_line(&mut status).unwrap();
        assert!(status.contains(" 200 "), "{status}");
        let (mut len, mut chunked) = (0usize, false);
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            let l = line.to_ascii_lowercase();
            if let Some(v) = l.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if l.starts_with("transfer-encoding:") && l.contains("chunked") {
                chunked = true;
            }
        }
        if !chunked {
            let mut b = vec![0; len];
            self.reader.read_exact(&mut b).unwrap();
            return len;
        }
        let mut total = 0;
        loop {
            let mut size = String::new();
            self.reader.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            let mut b = vec![0; n + 2];
            self.reader.read_exact(&mut b).unwrap();
            if n == 0 {
                return total;
            }
            total += n;
        }
    }
}

fn median_us(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e6
}

fn time(n: usize, out: &mut Vec<Duration>, mut f: impl FnMut()) {
    for _ in 0..n {
        let t = Instant::now();
        f();
        out.push(t.elapsed());
    }
}

fn main() {
    let mock = MockServer::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("openai_api_key.txt"),
        "sk-bench-0123456789abcdef",
    )
    .unwrap();
    let llm = mlab::llm::Config {
        llm: Some(format!("openai:gpt-4o@{}/v1", mock.url())),
        ..mlab::llm::Config::default()
    };
    let sock = dir.path().join("gw.sock");
    let mut cfg = GatewayConfig::new(sock.clone(), llm, dir.path().join("logs")).unwrap();
    cfg.key_dir = dir.path().to_path_buf();
    let gw = gateway::start(cfg, Arc::new(|_: &CallRecord| {})).unwrap();

    // The forwarder, in-process on its own thread (the binary runs the same
    // function).
    let (tx, rx) = std::sync::mpsc::channel();
    let s2 = sock.clone();
    std::thread::spawn(move || {
        gateway::forward::forward(&s2, 0, |a| tx.send(a).unwrap()).unwrap();
    });
    let fwd_addr = rx.recv().unwrap();

    let prompt = "You are a helpful research assistant. Tools: List Files, Read File, \
                  Execute Script, Edit Script (AI), Final Answer. "
        .repeat(60);
    let body = serde_json::json!({
        "model": "gpt-4o", "max_tokens": 2000,
        "messages": [{"role": "user", "content": prompt}]
    })
    .to_string();
    let stream_body = serde_json::json!({
        "model": "gpt-4o", "stream": true,
        "messages": [{"role": "user", "content": "count"}]
    })
    .to_string();

    let mut events: Vec<String> = (0..EVENTS - 2)
        .map(|i| {
            format!("data: {{\"id\":\"c1\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok{i} \"}}}}]}}\n\n")
        })
        .collect();
    events.push("data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":198}}\n\n".into());
    events.push("data: [DONE]\n\n".into());
    let event_refs: Vec<&str> = events.iter().map(String::as_str).collect();

    let mut direct =
        Client::new(TcpStream::connect(mock.url().trim_start_matches("http://")).unwrap());
    direct.reader.get_ref().set_nodelay(true).unwrap();
    let mut via_gw = Client::new(UnixStream::connect(&sock).unwrap());
    let mut via_fwd = Client::new(TcpStream::connect(fwd_addr).unwrap());
    via_fwd.reader.get_ref().set_nodelay(true).unwrap();

    let whole = Reply::openai_text("Action: List Files", 1900, 20);
    let streamed = Reply::sse(&event_refs, None);
    let path = "/v1/chat/completions";

    // Warm up every path (connections, pools, page cache).
    mock.always(whole.clone());
    for _ in 0..20 {
        direct.post(path, &body);
        via_gw.post(path, &body);
        via_fwd.post(path, &body);
    }

    let (mut d, mut g, mut f) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ds, mut gs, mut fs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        mock.always(whole.clone());
        time(PER_ROUND, &mut d, || {
            direct.post(path, &body);
        });
        time(PER_ROUND, &mut g, || {
            via_gw.post(path, &body);
        });
        time(PER_ROUND, &mut f, || {
            via_fwd.post(path, &body);
        });
        mock.always(streamed.clone());
        time(STREAM_PER_ROUND, &mut ds, || {
            direct.post(path, &stream_body);
        });
        time(STREAM_PER_ROUND, &mut gs, || {
            via_gw.post(path, &stream_body);
        });
        time(STREAM_PER_ROUND, &mut fs, || {
            via_fwd.post(path, &stream_body);
        });
    }
    let (d, g, f) = (median_us(d), median_us(g), median_us(f));
    let (ds, gs, fs) = (median_us(ds), median_us(gs), median_us(fs));
    let calls = gw.totals().calls;
    println!(
        "gateway overhead ({} whole calls and {} streams of {EVENTS} events per path; medians)",
        ROUNDS * PER_ROUND,
        ROUNDS * STREAM_PER_ROUND
    );
    println!("  whole call, 7.6 K-char request:");
    println!("    direct to the provider        {d:9.1} us");
    println!(
        "    through the gateway           {g:9.1} us   overhead {:8.1} us",
        g - d
    );
    println!(
        "    through forwarder + gateway   {f:9.1} us   overhead {:8.1} us",
        f - d
    );
    println!("  streamed reply, {EVENTS} chunks:");
    println!("    direct to the provider        {ds:9.1} us");
    println!("    through the gateway           {gs:9.1} us   overhead {:8.1} us/stream, {:6.2} us/chunk", gs - ds, (gs - ds) / EVENTS as f64);
    println!("    through forwarder + gateway   {fs:9.1} us   overhead {:8.1} us/stream, {:6.2} us/chunk", fs - ds, (fs - ds) / EVENTS as f64);
    println!("  target: under 1000 us a call; {calls} calls recorded");
    gw.stop();
}
