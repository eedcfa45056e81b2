//! The LLM gateway (`mlab::gateway`) against the mock provider, in all three
//! wire formats: bodies pass through byte-exact with only the key changed,
//! streams are relayed as they arrive and their end waits for `on_call`,
//! usage is recorded, budgets and the model allow-list refuse calls with a
//! clear error, and the in-sandbox forwarder (`mlab gateway-forward`)
//! relays TCP to the socket. The sandbox test (bubblewrap) shows that inside
//! only the gateway is reachable and the key is nowhere.
// A failed step panics with its message, which is how a test reports;
// clippy.toml allows this in #[test] functions only, so say it here for the
// helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mlab::gateway::{self, CallRecord, Gateway, GatewayConfig};
use mlab::testing::mock_server::{Gate, MockServer, Reply, Seen};
use serde_json::Value;

const OPENAI_FILE_KEY: &str = "sk-gw-test-openai-0123456789abcdef";
const ANTHROPIC_FILE_KEY: &str = "sk-ant-gw-test-0123456789abcdef";
const DUMMY: &str = "sk-dummy-agent-key-000";

struct Setup {
    mock: MockServer,
    gw: Option<Gateway>,
    dir: tempfile::TempDir,
    sock: PathBuf,
    calls: Arc<Mutex<Vec<CallRecord>>>,
}

impl Setup {
    /// A gateway for `gpt-4o` and `claude-3-5-haiku-latest`, both served by
    /// the mock, with key files holding test keys; `tweak` changes the
    /// configuration before start.
    fn new(tweak: impl FnOnce(&mut GatewayConfig)) -> Setup {
        Setup::with_on_call(tweak, Arc::new(|_: &CallRecord| {}))
    }

    fn with_on_call(
        tweak: impl FnOnce(&mut GatewayConfig),
        extra: Arc<dyn Fn(&CallRecord) + Send + Sync>,
    ) -> Setup {
        let mock = MockServer::start();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("openai_api_key.txt"), OPENAI_FILE_KEY).unwrap();
        std::fs::write(dir.path().join("claude_api_key.txt"), ANTHROPIC_FILE_KEY).unwrap();
        let llm = mlab::llm::Config {
            llm: Some(format!("openai:gpt-4o@{}/v1", mock.url())),
            fast_llm: Some(format!("anthropic:claude-3-5-haiku-latest@{}", mock.url())),
            ..mlab::llm::Config::default()
        };
        let sock = dir.path().join("gw.sock");
        let mut cfg = GatewayConfig::new(sock.clone(), llm, dir.path().join("logs")).unwrap();
        cfg.key_dir = dir.path().to_path_buf();
        tweak(&mut cfg);
        let sock = cfg.socket.clone();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let c = calls.clone();
        let gw = gateway::start(
            cfg,
            Arc::new(move |r: &CallRecord| {
                extra(r);
                c.lock().unwrap().push(r.clone());
            }),
        )
        .unwrap();
        Setup {
            mock,
            gw: Some(gw),
            dir,
            sock,
            calls,
        }
    }

    fn gw(&self) -> &Gateway {
        self.gw.as_ref().unwrap()
    }

    fn lines(&self) -> Vec<Value> {
        let p = self.dir.path().join("logs/agent_log/llm_calls.jsonl");
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// The key the gateway uses: the environment wins over key files.
fn real_key(var: &str, file_key: &str) -> String {
    std::env::var(var)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| file_key.to_string())
}

/// A reply as the client got it, body de-chunked.
#[derive(Debug)]
struct Got {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\
         content-length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    req
}

/// Sends one request and reads the whole reply.
fn send(
    stream: impl Read + Write,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Got {
    let mut stream = stream;
    stream
        .write_all(request(method, path, headers, body).as_bytes())
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_reply(&raw)
}

fn call(sock: &Path, path: &str, headers: &[(&str, &str)], body: &str) -> Got {
    send(
        UnixStream::connect(sock).unwrap(),
        "POST",
        path,
        headers,
        body,
    )
}

fn parse_reply(raw: &[u8]) -> Got {
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[head_end..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Got {
        status: status.parse().unwrap(),
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(
            std::str::from_utf8(&raw[..eol])
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap();
        raw = &raw[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// What reached the provider carries the real key and nothing of the dummy.
fn assert_only_the_real_key(seen: &Seen, anthropic: bool) {
    for (n, v) in &seen.headers {
        assert!(
            !v.contains(DUMMY),
            "the dummy key reached the provider in {n}"
        );
    }
    if anthropic {
        assert_eq!(
            seen.header("x-api-key").unwrap(),
            real_key("ANTHROPIC_API_KEY", ANTHROPIC_FILE_KEY)
        );
        assert!(seen.header("authorization").is_none());
        assert!(seen.header("anthropic-version").is_some());
    } else {
        assert_eq!(
            seen.header("authorization").unwrap(),
            format!("Bearer {}", real_key("OPENAI_API_KEY", OPENAI_FILE_KEY))
        );
        assert!(seen.header("x-api-key").is_none());
    }
}

/// One case per wire format: route, the client's headers, a request body
/// with odd spacing and non-ASCII text, and the provider's path.
struct Case {
    path: &'static str,
    upstream_path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    anthropic: bool,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            path: "/v1/chat/completions",
            upstream_path: "/v1/chat/completions",
            headers: vec![
                ("authorization", "Bearer sk-dummy-agent-key-000"),
                ("content-type", "application/json"),
                ("x-custom-client", "aider/1"),
            ],
            anthropic: false,
        },
        Case {
            path: "/v1/responses",
            upstream_path: "/v1/responses",
            headers: vec![
                ("authorization", "Bearer sk-dummy-agent-key-000"),
                ("content-type", "application/json"),
                ("x-custom-client", "codex/1"),
            ],
            anthropic: false,
        },
        Case {
            path: "/v1/messages",
            upstream_path: "/v1/messages",
            headers: vec![
                ("x-api-key", "sk-dummy-agent-key-000"),
                ("anthropic-version", "2023-06-01"),
                ("content-type", "application/json"),
                ("x-custom-client", "claude-code/1"),
            ],
            anthropic: true,
        },
    ]
}

fn body_for(case: &Case, stream: bool) -> String {
    let model = if case.anthropic {
        "claude-3-5-haiku-latest"
    } else {
        "gpt-4o"
    };
    let messages = if case.path == "/v1/responses" {
        r#""input":  "Grüße — what is 2+2?""#
    } else {
        r#""messages": [ {"role":"user","content":"Grüße — what is 2+2?"} ]"#
    };
    let extra = if stream { r#", "stream": true"# } else { "" };
    format!("{{\"model\":\"{model}\",  {messages}, \"max_tokens\": 50, \"temperature\": 0.50{extra}}}\n")
}

/// A whole reply with the given usage, spaced oddly (byte-exactness shows).
fn whole_reply(case: &Case) -> String {
    match case.path {
        "/v1/chat/completions" => r#"{"id":"c1", "object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"4 — vier"},"finish_reason":"stop"}],  "usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}, "x": 1.50}"#.into(),
        "/v1/responses" => r#"{"id":"r1","object":"response","status":"completed","output":[{"type":"message","role":"assistant","content":[{"type":"output_text","text":"4 — vier"}]}], "usage":{"input_tokens":12,"output_tokens":3,"total_tokens":15}}"#.into(),
        _ => r#"{"id":"m1","type":"message","role":"assistant","content":[{"type":"text","text":"4 — vier"}],"stop_reason":"end_turn","usage":{"input_tokens":12,"output_tokens":3}}"#.into(),
    }
}

/// A stream's events with usage 12 in / 3 out; the last one is terminal.
fn stream_events(case: &Case) -> Vec<&'static str> {
    match case.path {
        "/v1/chat/completions" => vec![
            "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"4 \"}}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"— vier\"}}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3,\"total_tokens\":15}}\n\n",
            "data: [DONE]\n\n",
        ],
        "/v1/responses" => vec![
            "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r1\"}}\n\n",
            "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"4 — vier\"}\n\n",
            "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"r1\",\"output\":[{\"type\":\"message\",\"content\":[{\"type\":\"output_text\",\"text\":\"4 — vier\"}]}],\"usage\":{\"input_tokens\":12,\"output_tokens\":3}}}\n\n",
        ],
        _ => vec![
            "event: message_start\r\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m1\",\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\r\n\r\n",
            "event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"4 — vier\"}}\r\n\r\n",
            "event: message_delta\r\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":3}}\r\n\r\n",
            "event: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n",
        ],
    }
}

fn assert_usage_line(line: &Value, wire: &str, streamed: bool) {
    assert_eq!(line["usage"]["input_tokens"], 12, "{line}");
    assert_eq!(line["usage"]["output_tokens"], 3, "{line}");
    assert_eq!(line["usage"]["estimated"], false, "{line}");
    assert_eq!(line["response"], "4 — vier", "{line}");
    assert_eq!(line["gateway"]["wire"], wire, "{line}");
    assert_eq!(line["gateway"]["streamed"], streamed, "{line}");
    assert_eq!(line["gateway"]["status"], 200, "{line}");
    assert!(line["cost_usd"].as_f64().unwrap() > 0.0, "{line}");
    assert_eq!(
        line["request"]["messages"][0]["content"],
        "Grüße — what is 2+2?"
    );
    // mlab's own readers take the line: replay's and the totals'.
    assert!(line["time"].is_string() && line["latency_s"].is_number());
}

#[test]
fn non_streamed_calls_pass_through_byte_exact_with_only_the_key_changed_and_usage_recorded() {
    let s = Setup::new(|_| {});
    for (i, case) in cases().iter().enumerate() {
        let reply = whole_reply(case);
        s.mock
            .push(Reply::json(200, reply.clone()).header("x-request-id", "req-42"));
        let body = body_for(case, false);
        let got = call(&s.sock, case.path, &case.headers, &body);
        assert_eq!(got.status, 200, "{}", got.text());
        assert_eq!(
            got.text(),
            reply,
            "{}: the reply changed on the way",
            case.path
        );
        assert_eq!(got.header("x-request-id"), Some("req-42"));
        let seen = &s.mock.requests()[i];
        assert_eq!(seen.path, case.upstream_path);
        assert_eq!(
            seen.body, body,
            "{}: the request changed on the way",
            case.path
        );
        let custom = case.headers.iter().find(|(n, _)| *n == "x-custom-client");
        assert_eq!(seen.header("x-custom-client"), custom.map(|(_, v)| *v));
        assert_only_the_real_key(seen, case.anthropic);
        let lines = s.lines();
        assert_eq!(lines.len(), i + 1);
        let wire = ["openai-chat", "openai-responses", "anthropic"][i];
        assert_usage_line(&lines[i], wire, false);
        assert_eq!(lines[i]["gateway"]["index"], i);
    }
    let calls = s.calls.lock().unwrap();
    assert_eq!(calls.len(), 3);
    assert!(calls
        .iter()
        .all(|c| c.reply_summary == "4 — vier" && c.usage.total() == 15));
    assert_eq!(s.gw().totals().usage.total(), 45);
    assert_eq!(s.gw().totals().calls, 3);
}

#[test]
fn streamed_calls_pass_through_byte_exact_and_record_usage_in_all_three_formats() {
    let s = Setup::new(|_| {});
    for (i, case) in cases().iter().enumerate() {
        let events = stream_events(case);
        s.mock.push(Reply::sse(&events, None));
        let body = body_for(case, true);
        let got = call(&s.sock, case.path, &case.headers, &body);
        assert_eq!(got.status, 200, "{}", got.text());
        assert_eq!(got.header("content-type"), Some("text/event-stream"));
        assert_eq!(
            got.text(),
            events.concat(),
            "{}: the stream changed on the way",
            case.path
        );
        let seen = &s.mock.requests()[i];
        assert_eq!(seen.body, body);
        assert_only_the_real_key(seen, case.anthropic);
        let line = &s.lines()[i];
        assert_usage_line(
            line,
            ["openai-chat", "openai-responses", "anthropic"][i],
            true,
        );
    }
    assert!(s.calls.lock().unwrap().iter().all(|c| c.streamed));
}

#[test]
fn a_stream_is_relayed_as_it_arrives_and_its_end_waits_for_on_call() {
    let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let c = closed.clone();
    let s = Setup::with_on_call(
        |_| {},
        Arc::new(move |_: &CallRecord| c.store(true, std::sync::atomic::Ordering::SeqCst)),
    );
    let case = &cases()[0];
    let events = stream_events(case);
    let gate = Gate::new();
    s.mock.push(Reply::sse(&events, Some(gate.clone())));
    let mut stream = UnixStream::connect(&s.sock).unwrap();
    // A guard against a hang, not a timing assertion.
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    stream
        .write_all(request("POST", case.path, &case.headers, &body_for(case, true)).as_bytes())
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut got = String::new();
    // The first event arrives while the provider still holds the rest.
    while !got.contains("\"content\":\"4 \"") {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .expect("the first event did not arrive before the rest of the stream: buffered?");
        assert!(n > 0, "the stream ended early: {got}");
        got.push_str(&line);
    }
    assert!(!got.contains("vier"), "{got}");
    assert!(!closed.load(std::sync::atomic::Ordering::SeqCst));
    gate.open(events.len() as u64);
    while !got.contains("[DONE]") {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "no [DONE]: {got}");
        got.push_str(&line);
    }
    assert!(
        closed.load(std::sync::atomic::Ordering::SeqCst),
        "the client saw the end of the stream before on_call ran"
    );
    assert!(got.contains("vier"));
}

#[test]
fn a_chat_stream_without_usage_is_recorded_with_estimated_tokens() {
    let s = Setup::new(|_| {});
    let case = &cases()[0];
    let events = stream_events(case);
    let without_usage = [events[0], events[1], events[3]];
    s.mock.push(Reply::sse(&without_usage, None));
    let got = call(&s.sock, case.path, &case.headers, &body_for(case, true));
    assert_eq!(got.text(), without_usage.concat());
    let line = &s.lines()[0];
    assert_eq!(line["usage"]["estimated"], true, "{line}");
    assert!(
        line["usage"]["output_tokens"].as_u64().unwrap() > 0,
        "{line}"
    );
    assert_eq!(line["response"], "4 — vier");
}

#[test]
fn a_spent_token_budget_refuses_the_next_call_with_an_error_naming_the_flag() {
    let s = Setup::new(|c| c.max_total_tokens = Some(15));
    let case = &cases()[0];
    s.mock.always(Reply::json(200, whole_reply(case)));
    let body = body_for(case, false);
    assert!(!s.gw().budget_spent());
    assert_eq!(call(&s.sock, case.path, &case.headers, &body).status, 200);
    assert!(s.gw().budget_spent(), "15 tokens used of 15");
    let refused = call(&s.sock, case.path, &case.headers, &body);
    assert_eq!(refused.status, 402, "{}", refused.text());
    let msg = refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("--max-total-tokens"), "{msg}");
    assert_eq!(refused.json()["error"]["type"], "insufficient_quota");
    assert_eq!(
        s.mock.requests().len(),
        1,
        "a refused call reached the provider"
    );
    let lines = s.lines();
    assert_eq!(lines.len(), 2, "the refused call is recorded too");
    assert_eq!(lines[1]["error_kind"], "budget");
    assert!(lines[1]["gateway"]["refused"]
        .as_str()
        .unwrap()
        .contains("--max-total-tokens"));
    assert!(s.calls.lock().unwrap()[1].refused.is_some());
}

#[test]
fn a_spent_cost_budget_refuses_an_anthropic_call_in_anthropic_s_error_format() {
    // 12 in + 3 out at claude-3-5-haiku's $0.80 / $4 per million.
    let s = Setup::new(|c| c.max_cost = Some(0.000_01));
    let case = &cases()[2];
    s.mock.always(Reply::json(200, whole_reply(case)));
    let body = body_for(case, false);
    assert_eq!(call(&s.sock, case.path, &case.headers, &body).status, 200);
    let refused = call(&s.sock, case.path, &case.headers, &body);
    assert_eq!(refused.status, 402);
    let v = refused.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "billing_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--max-cost"),
        "{v}"
    );
    assert!(s.gw().budget_spent());
}

#[test]
fn a_model_not_on_the_allow_list_is_refused_with_the_allowed_ones() {
    let s = Setup::new(|_| {});
    let case = &cases()[0];
    let body = body_for(case, false).replace("gpt-4o", "gpt-4-32k");
    let got = call(&s.sock, case.path, &case.headers, &body);
    assert_eq!(got.status, 403, "{}", got.text());
    let msg = got.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("gpt-4-32k")
            && msg.contains("gpt-4o")
            && msg.contains("claude-3-5-haiku-latest"),
        "{msg}"
    );
    assert!(
        s.mock.requests().is_empty(),
        "the refused call reached the provider"
    );
    let lines = s.lines();
    assert_eq!(lines[0]["error_kind"], "refused");
    assert_eq!(lines[0]["gateway"]["status"], 403);
}

#[test]
fn unknown_routes_get_a_404_in_the_path_s_wire_format_and_models_lists_the_allowed_ones() {
    let s = Setup::new(|_| {});
    let got = send(
        UnixStream::connect(&s.sock).unwrap(),
        "POST",
        "/v1/embeddings",
        &[],
        "{}",
    );
    assert_eq!(got.status, 404);
    assert!(got.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("/v1/chat/completions"));
    let got = send(
        UnixStream::connect(&s.sock).unwrap(),
        "POST",
        "/v1/complete",
        &[("anthropic-version", "2023-06-01")],
        "{}",
    );
    assert_eq!(got.status, 404);
    assert_eq!(got.json()["type"], "error");
    let got = send(
        UnixStream::connect(&s.sock).unwrap(),
        "GET",
        "/v1/models",
        &[],
        "",
    );
    let list = got.json();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["gpt-4o", "claude-3-5-haiku-latest"]);
    assert!(s.mock.requests().is_empty());
}

#[test]
fn a_provider_that_cannot_be_reached_gives_a_502_that_says_so_and_is_recorded() {
    // A port nothing listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = Setup::new(|c| {
        c.llm.llm = Some(format!("openai:gpt-4o@http://127.0.0.1:{port}/v1"));
        c.llm.fast_llm = None;
        c.allowed_models = vec!["gpt-4o".into()];
    });
    // The setup's openai_api_key.txt gives the key; the gateway was built
    // from the changed configuration.
    let case = &cases()[0];
    let got = call(&s.sock, case.path, &case.headers, &body_for(case, false));
    assert_eq!(got.status, 502, "{}", got.text());
    assert!(got.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("could not reach"));
    assert_eq!(s.lines()[0]["error_kind"], "unreachable");
}

#[test]
fn keep_alive_connections_carry_several_calls() {
    let s = Setup::new(|_| {});
    let case = &cases()[0];
    s.mock.always(Reply::json(200, whole_reply(case)));
    let mut stream = UnixStream::connect(&s.sock).unwrap();
    let body = body_for(case, false);
    for _ in 0..3 {
        let req =
            request("POST", case.path, &case.headers, &body).replace("connection: close\r\n", "");
        stream.write_all(req.as_bytes()).unwrap();
        let mut reader = BufReader::new(&stream);
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut b = vec![0; len];
        reader.read_exact(&mut b).unwrap();
        assert_eq!(String::from_utf8(b).unwrap(), whole_reply(case));
    }
    assert_eq!(s.lines().len(), 3);
}

#[test]
fn the_forwarder_binary_relays_tcp_to_the_gateway_socket() {
    let s = Setup::new(|_| {});
    let case = &cases()[0];
    s.mock.push(Reply::json(200, whole_reply(case)));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = common::mlab()
        .args(["gateway-forward", "--socket"])
        .arg(&s.sock)
        .args(["--port", &port.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready, "ready\n");
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let got = send(
        tcp,
        "POST",
        case.path,
        &case.headers,
        &body_for(case, false),
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(got.text(), whole_reply(case));
    assert_only_the_real_key(&s.mock.requests()[0], false);
}

/// Inside the sandbox (bubblewrap, the agent policy): the forwarder makes
/// the gateway reachable at 127.0.0.1:PORT, a call through it works, the
/// real key is in no environment, /proc entry or visible file, and nothing
/// else is reachable (the mock provider's port on the host, an outside
/// address).
#[test]
#[ignore = "needs bubblewrap"]
fn inside_the_sandbox_only_the_gateway_is_reachable_and_the_key_is_nowhere() {
    common::need_bwrap();
    let key = real_key("OPENAI_API_KEY", OPENAI_FILE_KEY);
    let ws = tempfile::tempdir().unwrap();
    // The socket where the program agent puts it: in the workspace.
    let in_ws = ws.path().join("gw.sock");
    let s = Setup::new(|c| c.socket = in_ws.clone());
    let case = &cases()[0];
    s.mock.push(Reply::json(200, whole_reply(case)));
    let mlab_bin = PathBuf::from(env!("CARGO_BIN_EXE_mlab"));
    let script = format!(
        r#"
import os, socket, subprocess, sys, json, urllib.request
# Reversed and in hex, so that this file does not hold the key itself.
key = bytes.fromhex({key_hex:?}).decode()[::-1]
fwd = subprocess.Popen(["./mlab-bin", "gateway-forward", "--socket", "gw.sock", "--port", "8089"], stdout=subprocess.PIPE)
assert fwd.stdout.readline() == b"ready\n"
req = urllib.request.Request("http://127.0.0.1:8089/v1/chat/completions", data={body:?}.encode(),
    headers={{"authorization": "Bearer {DUMMY}", "content-type": "application/json"}})
reply = urllib.request.urlopen(req).read().decode()
print("REPLY", reply)
leaks = [k for k, v in os.environ.items() if key in v]
for pid in os.listdir("/proc"):
    if pid.isdigit():
        for f in ("environ", "cmdline"):
            try:
                if key.encode() in open(f"/proc/{{pid}}/{{f}}", "rb").read():
                    leaks.append(f"/proc/{{pid}}/{{f}}")
            except OSError:
                pass
for top in [os.getcwd(), "/tmp", {keydir:?}]:
    for root, dirs, files in os.walk(top):
        for f in files:
            p = os.path.join(root, f)
            try:
                if key.encode() in open(p, "rb").read():
                    leaks.append(p)
            except OSError:
                pass
print("LEAKS", json.dumps(leaks))
def reach(host, port):
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect((host, port))
        return "connected"
    except OSError as e:
        return type(e).__name__
print("MOCK", reach("127.0.0.1", {mock_port}))
print("OUTSIDE", reach("1.1.1.1", 80))
fwd.kill()
"#,
        body = body_for(case, false),
        key_hex = key
            .chars()
            .rev()
            .collect::<String>()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
        keydir = s.dir.path().display().to_string(),
        mock_port = s.mock.url().rsplit(':').next().unwrap(),
    );
    std::fs::write(ws.path().join("probe.py"), script).unwrap();
    let out = common::output(
        common::mlab()
            .env("OPENAI_API_KEY", &key)
            .args(["sandbox-exec", "--sandbox", "bwrap", "--workspace"])
            .arg(ws.path())
            .arg("--read-only")
            .arg(format!("{}:mlab-bin", mlab_bin.display()))
            .args(["--timeout", "120", "--", "python3", "probe.py"]),
    );
    let stdout = common::text(&out.stdout);
    let stderr = common::text(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains(&format!("REPLY {}", whole_reply(case))),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("LEAKS []"), "{stdout}");
    assert!(stdout.contains("MOCK ConnectionRefusedError"), "{stdout}");
    assert!(!stdout.contains("OUTSIDE connected"), "{stdout}");
    let seen = &s.mock.requests()[0];
    assert_only_the_real_key(seen, false);
}

#[test]
fn on_call_may_read_the_gateway_s_totals_while_the_client_waits() {
    let slot: Arc<std::sync::OnceLock<Gateway>> = Arc::new(std::sync::OnceLock::new());
    let seen_totals = Arc::new(Mutex::new(Vec::new()));
    let (sl, st) = (slot.clone(), seen_totals.clone());
    let mut s = Setup::with_on_call(
        |_| {},
        Arc::new(move |_: &CallRecord| {
            if let Some(gw) = sl.get() {
                st.lock().unwrap().push(gw.totals().calls);
            }
        }),
    );
    assert!(slot.set(s.gw.take().unwrap()).is_ok());
    let case = &cases()[0];
    s.mock.always(Reply::json(200, whole_reply(case)));
    for _ in 0..2 {
        let stream = UnixStream::connect(&s.sock).unwrap();
        // A guard against a deadlock, not a timing assertion.
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        let got = send(
            stream,
            "POST",
            case.path,
            &case.headers,
            &body_for(case, false),
        );
        assert_eq!(got.status, 200);
    }
    assert_eq!(*seen_totals.lock().unwrap(), [1, 2]);
}

#[test]
fn anthropic_token_counting_is_forwarded_with_the_key_but_is_not_a_call() {
    let s = Setup::new(|_| {});
    let case = &cases()[2];
    s.mock
        .push(Reply::json(200, r#"{"input_tokens": 14}"#).header("x-request-id", "req-ct"));
    let body = r#"{"model":"claude-3-5-haiku-latest","messages":[{"role":"user","content":"hi"}]}"#;
    let got = call(&s.sock, "/v1/messages/count_tokens", &case.headers, body);
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.text(), r#"{"input_tokens": 14}"#);
    let seen = &s.mock.requests()[0];
    assert_eq!(seen.path, "/v1/messages/count_tokens");
    assert_eq!(seen.body, body);
    assert_only_the_real_key(seen, true);
    assert!(
        s.lines().is_empty(),
        "token counting was recorded as a call"
    );
    assert!(s.calls.lock().unwrap().is_empty());
    assert_eq!(s.gw().totals().calls, 0);
}

#[test]
fn an_error_event_inside_a_streamed_reply_is_recorded_as_the_call_s_error() {
    let s = Setup::new(|_| {});
    let case = &cases()[2];
    let events = [
        stream_events(case)[0],
        stream_events(case)[1],
        "event: error\r\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\r\n\r\n",
    ];
    s.mock.push(Reply::sse(&events, None));
    let got = call(&s.sock, case.path, &case.headers, &body_for(case, true));
    assert_eq!(got.text(), events.concat());
    let line = &s.lines()[0];
    assert_eq!(line["error"], "Overloaded", "{line}");
    assert_eq!(line["error_kind"], "unreachable", "{line}");
    assert_eq!(line["response"], "4 — vier", "{line}");
    let calls = s.calls.lock().unwrap();
    assert!(
        calls[0].reply_summary.contains("Overloaded"),
        "{}",
        calls[0].reply_summary
    );
}
