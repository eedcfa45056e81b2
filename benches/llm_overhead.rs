//! Per-call overhead of the LLM layer (request build, retry bookkeeping,
//! response parsing, usage and cost accounting, the llm_calls.jsonl record
//! and the readable per-call log) against an instant mock server on
//! 127.0.0.1. Prints microseconds; the target is under 1 ms per call.
//!
//! Three loops, interleaved in rounds so machine noise hits them alike:
//! - `raw`: a bare reqwest POST of an equal body to the same mock (the round
//!   trip any client pays);
//! - `layer`: `Models::main.complete` through the whole layer to the mock;
//! - `local`: the layer with a scripted model (no network at all).
//!
//! Overhead = layer - raw.
//!
//! Run: `cargo bench --bench llm_overhead`.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use mlab::llm::{Config, Message, Models, Request};
use mlab::testing::mock_server::{MockServer, Reply};
use mlab::testing::scripted;

/// The LLM configuration of `mlab run --llm SPEC`.
fn config(spec: &str) -> Config {
    Config {
        llm: Some(spec.to_string()),
        ..Config::default()
    }
}

const ROUNDS: usize = 5;
const PER_ROUND: usize = 400;

/// A prompt the size of the research agent's first one (about 7.6 K chars).
fn agent_request(log: &std::path::Path) -> Request {
    let body = "You are a helpful research assistant. Tools: List Files, Read File, \
                Execute Script, Edit Script (AI), Final Answer. "
        .repeat(60);
    Request {
        messages: vec![Message::user(body)],
        stop: vec!["Observation:".into()],
        max_tokens: 2000,
        temperature: 0.5,
        tools: Vec::new(),
        tool_choice: None,
        log_file: Some(log.to_path_buf()),
    }
}

fn stats(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = v.iter().map(|d| us(*d)).sum::<f64>() / v.len() as f64;
    (us(v[v.len() / 2]), mean, us(v[v.len() * 95 / 100]))
}

fn main() {
    let server = MockServer::start();
    let reply_text = "Reflection: fine.\nThought: list the files.\nAction: List Files\n\
                      Action Input: {\"dir_path\": \".\"}";
    server.always(Reply::openai_text(reply_text, 1900, 40));

    let dir = tempfile::tempdir().unwrap();
    let spec = format!("openai:gpt-4o@{}/v1", server.url());
    let models = Models::new(&config(&spec), Some(&dir.path().join("run"))).unwrap();
    let req = agent_request(&dir.path().join("run/agent_log/step_0_log.log"));

    let script = scripted::write(
        &dir.path().join("script.jsonl"),
        &vec![reply_text.into(); ROUNDS * PER_ROUND + 200],
    );
    let local = Models::new(&config(&script), Some(&dir.path().join("local"))).unwrap();
    let local_req = agent_request(&dir.path().join("local/agent_log/step_0_log.log"));

    // The baseline client: same body size, same mock, same kind of runtime.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let url = format!("{}/v1/chat/completions", server.url());
    let raw_body = serde_json::to_vec(&serde_json::json!({
        "model": "gpt-4o", "messages": [{"role": "user", "content": req.messages[0].content}],
        "max_tokens": 2000, "temperature": 0.5, "stop": ["Observation:"]
    }))
    .unwrap();
    let raw_call = || {
        rt.block_on(async {
            let r = client
                .post(&url)
                .header("content-type", "application/json")
                .body(raw_body.clone())
                .send()
                .await
                .unwrap();
            r.bytes().await.unwrap()
        })
    };

    for _ in 0..100 {
        raw_call();
        models.main.complete(&req).unwrap();
        local.main.complete(&local_req).unwrap();
    }
    let (mut raw, mut layer, mut scripted) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        for _ in 0..PER_ROUND {
            let t = Instant::now();
            std::hint::black_box(raw_call());
            raw.push(t.elapsed());
        }
        for _ in 0..PER_ROUND {
            let t = Instant::now();
            std::hint::black_box(models.main.complete(&req).unwrap());
            layer.push(t.elapsed());
        }
        for _ in 0..PER_ROUND {
            let t = Instant::now();
            std::hint::black_box(local.main.complete(&local_req).unwrap());
            scripted.push(t.elapsed());
        }
    }
    let (raw_med, raw_mean, raw_p95) = stats(raw);
    let (lay_med, lay_mean, lay_p95) = stats(layer);
    let (loc_med, loc_mean, loc_p95) = stats(scripted);
    println!(
        "llm layer per-call cost, {} calls each, prompt {} chars (microseconds)",
        ROUNDS * PER_ROUND,
        req.messages[0].content.len()
    );
    println!("  {:<44} {:>9} {:>9} {:>9}", "", "median", "mean", "p95");
    println!(
        "  {:<44} {raw_med:>9.1} {raw_mean:>9.1} {raw_p95:>9.1}",
        "raw reqwest round trip to the mock"
    );
    println!(
        "  {:<44} {lay_med:>9.1} {lay_mean:>9.1} {lay_p95:>9.1}",
        "layer call to the mock (openai, recorded)"
    );
    println!(
        "  {:<44} {loc_med:>9.1} {loc_mean:>9.1} {loc_p95:>9.1}",
        "layer call, scripted model (no network)"
    );
    println!(
        "overhead of the layer per call: {:.1} us median, {:.1} us mean (target < 1000 us)",
        lay_med - raw_med,
        lay_mean - raw_mean
    );
    let (usage, cost) = models.totals();
    println!(
        "accounted: {} input + {} output tokens, ${cost:.2}",
        usage.input_tokens, usage.output_tokens
    );
}
