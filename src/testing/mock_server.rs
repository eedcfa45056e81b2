//! A small HTTP/1.1 server on 127.0.0.1 that plays a model provider in tests
//! and benchmarks: it records every request and answers from a queue of
//! scripted replies, including faults a real server has (slow replies,
//! dropped connections). Standard library only, so tests add no crates.
//!
//! Used by the unit tests, `tests/llm_*.rs` and `benches/llm_overhead.rs`
//! through the library (`mlab::testing::mock_server`); mlab itself never starts
//! one.

// Test support: a failure here should stop the test that uses it, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("the request body is not JSON")
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
        delay: Duration,
    },
    /// Read the request, then close the connection without a word.
    Drop,
    /// A `transfer-encoding: chunked` reply sent one chunk at a time (one
    /// write each); before each chunk after the first it waits for the gate
    /// to let it through, when there is one (a streaming test's handshake).
    Chunked {
        status: u16,
        headers: Vec<(String, String)>,
        chunks: Vec<String>,
        gate: Option<Arc<Gate>>,
    },
}

/// A counting gate a [`Reply::Chunked`] waits at between chunks.
#[derive(Debug, Default)]
pub struct Gate {
    permits: Mutex<u64>,
    changed: std::sync::Condvar,
}

impl Gate {
    pub fn new() -> Arc<Gate> {
        Arc::new(Gate::default())
    }

    /// Lets `n` more chunks through.
    pub fn open(&self, n: u64) {
        *self.permits.lock().unwrap() += n;
        self.changed.notify_all();
    }

    fn pass(&self) {
        let mut p = self.permits.lock().unwrap();
        while *p == 0 {
            p = self.changed.wait(p).unwrap();
        }
        *p -= 1;
    }
}

impl Reply {
    pub fn json(status: u16, body: impl Into<String>) -> Reply {
        Reply::Respond {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Respond { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }

    pub fn delayed(mut self, by: Duration) -> Reply {
        if let Reply::Respond { delay, .. } = &mut self {
            *delay = by;
        }
        self
    }

    /// A Chat Completions success.
    pub fn openai_text(text: &str, prompt_tokens: u64, completion_tokens: u64) -> Reply {
        Reply::json(
            200,
            serde_json::json!({
                "id": "chatcmpl-mock", "object": "chat.completion", "created": 1700000000u64,
                "model": "mock",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "logprobs": null, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}
            })
            .to_string(),
        )
    }

    /// A server-sent event stream (`text/event-stream`), chunked, one
    /// chunk per element of `chunks`.
    pub fn sse(chunks: &[&str], gate: Option<Arc<Gate>>) -> Reply {
        Reply::Chunked {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            chunks: chunks.iter().map(|c| c.to_string()).collect(),
            gate,
        }
    }

    /// A Messages API success.
    pub fn anthropic_text(text: &str, input_tokens: u64, output_tokens: u64) -> Reply {
        Reply::json(
            200,
            serde_json::json!({
                "id": "msg_mock", "type": "message", "role": "assistant", "model": "mock",
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn", "stop_sequence": null,
                "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens}
            })
            .to_string(),
        )
    }
}

#[derive(Default)]
struct State {
    queue: VecDeque<Reply>,
    fallback: Option<Reply>,
    seen: Vec<Seen>,
}

/// The running server; it lives until the process ends.
#[derive(Clone)]
pub struct MockServer {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl MockServer {
    pub fn start() -> MockServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let st = st.clone();
                std::thread::spawn(move || serve(stream, st));
            }
        });
        MockServer { port, state }
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn push(&self, reply: Reply) -> &Self {
        self.state.lock().unwrap().queue.push_back(reply);
        self
    }

    /// The answer once the queue is empty (default: a 500 saying so).
    pub fn always(&self, reply: Reply) -> &Self {
        self.state.lock().unwrap().fallback = Some(reply);
        self
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

fn serve(stream: TcpStream, state: Arc<Mutex<State>>) {
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream.try_clone().expect("cannot clone the socket"));
    let mut writer = stream;
    // Keep-alive: answer requests on this connection until the client leaves.
    loop {
        let Some(seen) = read_request(&mut reader) else {
            return;
        };
        let reply = {
            let mut s = state.lock().unwrap();
            s.seen.push(seen);
            s.queue
                .pop_front()
                .or_else(|| s.fallback.clone())
                .unwrap_or_else(|| {
                    Reply::json(
                        500,
                        r#"{"error":{"message":"mock server: no reply queued"}}"#,
                    )
                })
        };
        match reply {
            Reply::Drop => {
                let _ = writer.shutdown(std::net::Shutdown::Both);
                return;
            }
            Reply::Chunked {
                status,
                headers,
                chunks,
                gate,
            } => {
                let mut out = format!("HTTP/1.1 {status} Mock\r\ntransfer-encoding: chunked\r\n");
                for (n, v) in headers {
                    out.push_str(&format!("{n}: {v}\r\n"));
                }
                out.push_str("\r\n");
                if writer.write_all(out.as_bytes()).is_err() {
                    return;
                }
                for (i, chunk) in chunks.iter().enumerate() {
                    if i > 0 {
                        if let Some(g) = &gate {
                            g.pass();
                        }
                    }
                    let frame = format!("{:x}\r\n{chunk}\r\n", chunk.len());
                    if writer.write_all(frame.as_bytes()).is_err() {
                        return;
                    }
                }
                if writer.write_all(b"0\r\n\r\n").is_err() {
                    return;
                }
            }
            Reply::Respond {
                status,
                headers,
                body,
                delay,
            } => {
                if !delay.is_zero() {
                    std::thread::sleep(delay);
                }
                let mut out = format!(
                    "HTTP/1.1 {status} Mock\r\ncontent-length: {}\r\n",
                    body.len()
                );
                for (n, v) in headers {
                    out.push_str(&format!("{n}: {v}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&body);
                if writer.write_all(out.as_bytes()).is_err() {
                    return;
                }
            }
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Seen> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some(Seen {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
