//! The gateway's HTTP side: routing, the checks before a call, forwarding
//! (whole or streamed), and closing each call (record, `on_call`).

use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use serde_json::Value;

use super::wire::{self, ReplyInfo, StreamReader};
use super::{CallRecord, Shared, Wire};
use crate::llm::cost::estimate_usage;
use crate::llm::record::{RecordOut, RequestOut};
use crate::llm::{Message, RoleName, Usage};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, BoxError>;

/// The largest request body accepted (a long conversation with images).
const MAX_REQUEST: usize = 64 << 20;

pub async fn serve(
    listener: std::os::unix::net::UnixListener,
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = match tokio::net::UnixListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("the gateway cannot use its socket: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let sh = shared.clone();
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req| handle(sh.clone(), req));
                        if let Err(e) = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                            .await
                        {
                            tracing::debug!("gateway connection ended: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("the gateway could not accept a connection: {e}");
                    // Out of file descriptors, say: do not spin.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}

async fn handle(sh: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    Ok(route(sh, req).await)
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn json_response(status: u16, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The path without its query and without a leading `/v1`.
fn endpoint(path: &str) -> &str {
    let path = path.split('?').next().unwrap_or(path);
    let path = path.trim_end_matches('/');
    match path.strip_prefix("/v1") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => path,
    }
}

fn speaks_anthropic(headers: &HeaderMap) -> bool {
    headers.contains_key("anthropic-version") || headers.contains_key("x-api-key")
}

async fn route(sh: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    // Anthropic's token counting is free and no model call: forwarded
    // (allow-list and key as for calls), but neither metered nor a step.
    let mut metered = true;
    let wire = match (req.method(), endpoint(req.uri().path())) {
        (&Method::POST, "/chat/completions") => Wire::OpenAiChat,
        (&Method::POST, "/responses") => Wire::OpenAiResponses,
        (&Method::POST, "/messages") => Wire::Anthropic,
        (&Method::POST, "/messages/count_tokens") => {
            metered = false;
            Wire::Anthropic
        }
        (&Method::GET, "/models") => return models(&sh, speaks_anthropic(req.headers())),
        (method, _) => {
            let wire = if speaks_anthropic(req.headers()) {
                Wire::Anthropic
            } else {
                Wire::OpenAiChat
            };
            let msg = format!(
                "the mlab gateway has no route {method} {}: it serves POST /v1/chat/completions, \
                 POST /v1/responses, POST /v1/messages (and /v1/messages/count_tokens) and \
                 GET /v1/models",
                req.uri().path()
            );
            return json_response(404, wire::error_body(wire, 404, "not_found", &msg));
        }
    };
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_REQUEST).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let msg = format!(
                "the mlab gateway could not read the request body (at most {} MiB): {e}",
                MAX_REQUEST >> 20
            );
            let call = Call::new(wire, Value::Null, started);
            return refuse(&sh, call, 413, "refused", msg).await;
        }
    };
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut call = Call::new(wire, json, started);
    call.metered = metered;
    if !call.request.is_object() {
        let msg = "the mlab gateway expects a JSON object as the request body".to_string();
        return refuse(&sh, call, 400, "refused", msg).await;
    }
    if call.model.is_empty() {
        let msg = "the request names no model: set \"model\"".to_string();
        return refuse(&sh, call, 400, "refused", msg).await;
    }
    if !sh.allowed.is_empty() && !sh.allowed.contains(&call.model) {
        let msg = format!(
            "model '{}' is not allowed in this run; allowed: {} (mlab run --llm / --fast-llm \
             choose them)",
            call.model,
            sh.allowed.join(", ")
        );
        return refuse(&sh, call, 403, "refused", msg).await;
    }
    let spent = sh.book().totals;
    if let Err(e) = sh.budget.check(&spent.usage, spent.cost) {
        sh.budget_refused.store(true, Ordering::SeqCst);
        let msg = format!("mlab gateway: {e}; no more model calls in this run");
        return refuse(&sh, call, 402, "budget", msg).await;
    }
    let upstream = match sh.upstream(wire, &call.model) {
        Ok(up) => up.clone(),
        Err(why) => {
            let msg = format!("the mlab gateway cannot forward this call: {why}");
            return refuse(&sh, call, 502, "other", msg).await;
        }
    };
    forward(sh, call, parts, body, upstream).await
}

fn models(sh: &Shared, anthropic: bool) -> Response<Body> {
    let body = if anthropic {
        serde_json::json!({
            "data": sh.allowed.iter().map(|m| serde_json::json!({
                "type": "model", "id": m, "display_name": m,
                "created_at": "1970-01-01T00:00:00Z"})).collect::<Vec<_>>(),
            "has_more": false,
            "first_id": sh.allowed.first(),
            "last_id": sh.allowed.last(),
        })
    } else {
        serde_json::json!({
            "object": "list",
            "data": sh.allowed.iter().map(|m| serde_json::json!({
                "id": m, "object": "model", "created": 0, "owned_by": "mlab-gateway"}))
                .collect::<Vec<_>>(),
        })
    };
    json_response(200, body.to_string().into_bytes())
}

/// One call in progress.
struct Call {
    wire: Wire,
    model: String,
    request: Value,
    started: Instant,
    /// The provider's public API: priced with a warning when unknown.
    public: bool,
    /// A model call (recorded, counted, a step); false for token counting.
    metered: bool,
}

impl Call {
    fn new(wire: Wire, request: Value, started: Instant) -> Call {
        Call {
            wire,
            model: request["model"].as_str().unwrap_or("").to_string(),
            request,
            started,
            public: false,
            metered: true,
        }
    }
}

/// How a call ended.
struct Done {
    status: u16,
    streamed: bool,
    info: ReplyInfo,
    /// The gateway's own refusal.
    refused: Option<String>,
    /// `llm_calls.jsonl`'s `error_kind` of a failure.
    error_kind: Option<&'static str>,
}

/// The gateway's own refusal (budget, allow-list, a bad request): recorded
/// as refused, answered in the caller's wire format.
async fn refuse(
    sh: &Arc<Shared>,
    call: Call,
    status: u16,
    kind: &'static str,
    msg: String,
) -> Response<Body> {
    error_reply(sh, call, status, kind, kind, true, msg).await
}

/// Closes a call that got no reply from the provider and answers it with
/// an error body of `code` in the caller's wire format; `refused` says
/// whether the gateway itself said no.
async fn error_reply(
    sh: &Arc<Shared>,
    call: Call,
    status: u16,
    error_kind: &'static str,
    code: &str,
    refused: bool,
    msg: String,
) -> Response<Body> {
    let wire = call.wire;
    let done = Done {
        status,
        streamed: false,
        info: ReplyInfo {
            error: Some(msg.clone()),
            ..ReplyInfo::default()
        },
        refused: refused.then(|| msg.clone()),
        error_kind: Some(error_kind),
    };
    close(sh, call, done).await;
    json_response(status, wire::error_body(wire, status, code, &msg))
}

/// Request headers never forwarded: the client's (dummy) credentials,
/// hop-by-hop headers, and compression (so the gateway can read the reply).
const DROP_REQUEST: &[&str] = &[
    "authorization",
    "x-api-key",
    "api-key",
    "openai-organization",
    "openai-project",
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "accept-encoding",
];

const DROP_REPLY: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "trailer",
    "upgrade",
    "content-length",
];

fn forward_headers(from: &HeaderMap, drop: &[&str]) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in from {
        if !drop.contains(&name.as_str()) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

async fn forward(
    sh: Arc<Shared>,
    mut call: Call,
    parts: hyper::http::request::Parts,
    body: Bytes,
    up: super::Upstream,
) -> Response<Body> {
    call.public = up.public;
    let wire = call.wire;
    let path = endpoint(parts.uri.path());
    let query = parts
        .uri
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let url = format!("{}{path}{query}", up.base);
    let mut headers = forward_headers(&parts.headers, DROP_REQUEST);
    if let Some(key) = &up.key {
        let secret = |v: String| {
            HeaderValue::from_str(&v).map(|mut v| {
                v.set_sensitive(true);
                v
            })
        };
        let set = match wire {
            Wire::Anthropic => secret(key.secret().to_string())
                .map(|v| headers.insert(HeaderName::from_static("x-api-key"), v)),
            _ => secret(format!("Bearer {}", key.secret()))
                .map(|v| headers.insert(hyper::header::AUTHORIZATION, v)),
        };
        if set.is_err() {
            let msg = "the API key holds characters a header cannot carry; check it for stray \
                       quotes or spaces"
                .to_string();
            return refuse(&sh, call, 502, "other", msg).await;
        }
        if let (Some(org), Wire::OpenAiChat | Wire::OpenAiResponses) = (key.org(), wire) {
            if let Ok(v) = secret(org.to_string()) {
                headers.insert(HeaderName::from_static("openai-organization"), v);
            }
        }
    }
    if wire == Wire::Anthropic && !headers.contains_key("anthropic-version") {
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(crate::llm::anthropic::API_VERSION),
        );
    }
    let sent = sh
        .client
        .post(&url)
        .headers(headers)
        .body(body)
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => {
            let msg = format!(
                "the mlab gateway could not reach the provider at {url}: {}",
                error_chain(&e)
            );
            return fail(&sh, call, 502, msg).await;
        }
    };
    let status = resp.status();
    let reply_headers = forward_headers(resp.headers(), DROP_REPLY);
    let is_stream = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
    let body = if is_stream {
        stream(sh, call, resp)
    } else {
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                let msg = format!(
                    "the provider's reply from {url} broke off: {}",
                    error_chain(&e)
                );
                return fail(&sh, call, 502, msg).await;
            }
        };
        let bytes = match sh.hide_keys(&bytes) {
            Cow::Borrowed(_) => bytes,
            Cow::Owned(clean) => Bytes::from(clean),
        };
        let info = if status.is_success() {
            wire::read_reply(wire, &bytes)
        } else {
            ReplyInfo {
                error: Some(crate::llm::transport::server_message(&bytes)),
                ..ReplyInfo::default()
            }
        };
        let done = Done {
            status: status.as_u16(),
            streamed: false,
            error_kind: (!status.is_success()).then(|| failure_kind(status.as_u16())),
            info,
            refused: None,
        };
        close(&sh, call, done).await;
        full(bytes)
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    *r.headers_mut() = reply_headers;
    r
}

fn failure_kind(status: u16) -> &'static str {
    match status {
        429 | 500..=599 => "unreachable",
        _ => "refused",
    }
}

/// A provider that could not be reached or broke off: 502 to the client.
async fn fail(sh: &Arc<Shared>, call: Call, status: u16, msg: String) -> Response<Body> {
    error_reply(
        sh,
        call,
        status,
        "unreachable",
        "upstream_error",
        false,
        msg,
    )
    .await
}

/// Relays a server-sent event stream event by event, holding the terminal
/// event (and anything after it) until the call is closed.
fn stream(sh: Arc<Shared>, call: Call, mut resp: reqwest::Response) -> Body {
    let (mut tx, body) = http_body_util::channel::Channel::<Bytes, BoxError>::new(32);
    let status = resp.status().as_u16();
    tokio::spawn(async move {
        let mut reader = StreamReader::new(call.wire);
        // Bytes not yet forwarded: an incomplete event, or the terminal
        // event and what follows it.
        let mut buf: Vec<u8> = Vec::new();
        let mut client_gone = false;
        let mut broke = None;
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    buf.extend_from_slice(&chunk);
                    if reader.finished {
                        continue;
                    }
                    let mut ready = 0;
                    while let Some(len) = wire::event_end(&buf[ready..]) {
                        if reader.event(&buf[ready..ready + len]) {
                            break;
                        }
                        ready += len;
                    }
                    if ready > 0 {
                        if !client_gone {
                            let out = Bytes::from(sh.hide_keys(&buf[..ready]).into_owned());
                            client_gone = tx.send_data(out).await.is_err();
                        }
                        buf.drain(..ready);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    broke = Some(format!(
                        "the provider's stream broke off: {}",
                        error_chain(&e)
                    ));
                    break;
                }
            }
        }
        let mut info = reader.finish();
        if broke.is_some() {
            info.error = broke.clone();
        }
        let ok = (200..300).contains(&status) && info.error.is_none();
        let done = Done {
            status,
            streamed: true,
            error_kind: (!ok).then(|| {
                failure_kind(if broke.is_some() || (200..300).contains(&status) {
                    502
                } else {
                    status
                })
            }),
            info,
            refused: None,
        };
        close(&sh, call, done).await;
        if !client_gone && !buf.is_empty() {
            let out = Bytes::from(sh.hide_keys(&buf).into_owned());
            client_gone = tx.send_data(out).await.is_err();
        }
        if let (Some(why), false) = (broke, client_gone) {
            tx.abort(why.into());
        }
    });
    body.boxed()
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let s = cause.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = cause.source();
    }
    text
}

/// `llm_calls.jsonl`'s line: mlab's record, plus the gateway's own part.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    record: RecordOut<'a>,
    gateway: GatewayPart<'a>,
}

#[derive(Serialize)]
struct GatewayPart<'a> {
    index: usize,
    wire: Wire,
    streamed: bool,
    status: u16,
    refused: Option<&'a str>,
    /// The client's request body.
    body: &'a Value,
}

/// Closes a call: counts it, writes its line and runs `on_call`, one call
/// at a time, off the async threads.
async fn close(sh: &Arc<Shared>, call: Call, done: Done) {
    if !call.metered {
        return;
    }
    let sh = sh.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || sh.close(call, done)).await {
        tracing::error!("the gateway's on_call failed: {e}");
    }
}

impl Shared {
    fn close(&self, call: Call, done: Done) {
        let latency_s = call.started.elapsed().as_secs_f64();
        let messages: Vec<Message> = wire::request_messages(call.wire, &call.request);
        let answered = (200..300).contains(&done.status) && done.refused.is_none();
        let usage = if answered {
            done.info
                .usage
                .unwrap_or_else(|| estimate_usage(&messages, &done.info.text))
        } else {
            Usage::default()
        };
        let cost_usd = if usage.total() == 0 {
            0.0
        } else {
            match self.prices.lookup(&call.model) {
                Some(p) => p.cost(&usage),
                None => {
                    if call.public {
                        tracing::warn!(
                            "no price known for model '{}': its calls count as $0; give its \
                             price with --prices <file.toml>",
                            call.model
                        );
                    }
                    0.0
                }
            }
        };
        // A stream may fail after a 200 (an error event, a broken
        // connection): its text and tokens count, and so does its error.
        let error = done.info.error.clone();
        let stop = wire::stop(&call.request);
        // One call closes at a time, so lines and `on_call` follow the
        // index order; the book itself is held only for the sums (budget
        // checks, and `on_call` itself, may read it meanwhile).
        let order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        let index = {
            let mut book = self.book();
            let index = book.next_index;
            book.next_index += 1;
            book.totals.usage.add(&usage);
            book.totals.cost += cost_usd;
            book.totals.calls += 1;
            index
        };
        let line = Line {
            record: RecordOut {
                time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                role: RoleName::Main,
                model: &call.model,
                provider: call.wire.provider(),
                request: RequestOut {
                    messages: &messages,
                    stop: &stop,
                    max_tokens: wire::max_tokens(&call.request),
                    temperature: wire::temperature(&call.request),
                    tools: &[],
                    tool_choice: None,
                },
                response: answered.then_some(done.info.text.as_str()),
                tool_calls: &done.info.tool_calls,
                usage,
                latency_s,
                retries: 0,
                retry_log: &[],
                cost_usd,
                error: error.clone(),
                error_kind: error.as_ref().map(|_| done.error_kind.unwrap_or("other")),
                error_detail: error.as_deref(),
            },
            gateway: GatewayPart {
                index,
                wire: call.wire,
                streamed: done.streamed,
                status: done.status,
                refused: done.refused.as_deref(),
                body: &call.request,
            },
        };
        if let Err(e) = append_line(&self.recorder, &line) {
            tracing::error!(
                "the gateway could not write {}: {e}",
                self.recorder.path().display()
            );
        }
        let reply_summary = match (&error, answered) {
            (Some(e), false) => format!("error (HTTP {}): {e}", done.status),
            (Some(e), true) => format!("{}\n[error: {e}]", done.info.summary()),
            (None, _) => done.info.summary(),
        };
        let rec = CallRecord {
            index,
            wire: call.wire,
            model: call.model,
            request: call.request,
            reply_summary,
            reply_text: done.info.text,
            tool_calls: done.info.tool_calls,
            usage,
            cost_usd,
            streamed: done.streamed,
            status: done.status,
            refused: done.refused,
            error,
            latency_s,
        };
        (self.on_call)(&rec);
        drop(order);
    }

    /// `bytes` with every key the gateway holds replaced.
    fn hide_keys<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let mut out = Cow::Borrowed(bytes);
        for key in self.secrets() {
            let k = key.as_bytes();
            if k.len() >= 8 && out.windows(k.len()).any(|w| w == k) {
                out = Cow::Owned(replace(&out, k, b"<hidden key>"));
            }
        }
        out
    }

    fn secrets(&self) -> impl Iterator<Item = &str> {
        self.model_upstreams
            .iter()
            .map(|(_, _, u)| u)
            .chain(self.openai.as_ref().ok())
            .chain(self.anthropic.as_ref().ok())
            .filter_map(|u| u.key.as_ref().map(|k| k.secret()))
    }
}

fn replace(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// Appends one line through `Recorder::append` (one write, keys scrubbed).
fn append_line(recorder: &crate::llm::record::Recorder, line: &Line<'_>) -> std::io::Result<()> {
    recorder.append(line)
}
