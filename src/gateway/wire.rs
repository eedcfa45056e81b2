//! What the gateway reads from the three wire formats: the request's
//! messages as text, the reply's text, tool calls and usage (whole or
//! streamed), and the errors it writes itself in each format.

use serde_json::{json, Value};

use super::Wire;
use crate::llm::{Message, Role, ToolCall, Usage};

/// An error body in the wire format.
pub fn error_body(wire: Wire, status: u16, kind: &str, message: &str) -> Vec<u8> {
    let v = match wire {
        Wire::Anthropic => json!({
            "type": "error",
            "error": {"type": anthropic_type(status, kind), "message": message}
        }),
        _ => json!({
            "error": {"message": message, "type": openai_type(status, kind), "param": null,
                      "code": kind}
        }),
    };
    v.to_string().into_bytes()
}

fn anthropic_type(status: u16, kind: &str) -> &'static str {
    match (status, kind) {
        (402, _) => "billing_error",
        (403, _) => "permission_error",
        (404, _) => "not_found_error",
        (413, _) => "request_too_large",
        (400..=499, _) => "invalid_request_error",
        _ => "api_error",
    }
}

fn openai_type(status: u16, kind: &str) -> &'static str {
    match (status, kind) {
        (402, _) => "insufficient_quota",
        (400..=499, _) => "invalid_request_error",
        _ => "server_error",
    }
}

/// The request's conversation as plain messages (what `llm_calls.jsonl`'s
/// `request.messages` holds for mlab's own agents).
pub fn request_messages(wire: Wire, body: &Value) -> Vec<Message> {
    let mut out = Vec::new();
    let mut push = |role: Role, content: String| out.push(Message { role, content });
    match wire {
        Wire::OpenAiChat => {
            for m in body["messages"].as_array().into_iter().flatten() {
                let role = m["role"].as_str().unwrap_or("user");
                let mut text = content_text(&m["content"]);
                for tc in m["tool_calls"].as_array().into_iter().flatten() {
                    push_line(
                        &mut text,
                        &format!(
                            "[tool call {}({})]",
                            tc["function"]["name"].as_str().unwrap_or(""),
                            tc["function"]["arguments"].as_str().unwrap_or("")
                        ),
                    );
                }
                if role == "tool" {
                    text = format!("[tool result] {text}");
                }
                push(role_of(role), text);
            }
        }
        Wire::OpenAiResponses => {
            if let Some(i) = body["instructions"].as_str() {
                push(Role::System, i.to_string());
            }
            match &body["input"] {
                Value::String(s) => push(Role::User, s.clone()),
                Value::Array(items) => {
                    for it in items {
                        match it["type"].as_str() {
                            Some("function_call") => push(
                                Role::Assistant,
                                format!(
                                    "[tool call {}({})]",
                                    it["name"].as_str().unwrap_or(""),
                                    it["arguments"].as_str().unwrap_or("")
                                ),
                            ),
                            Some("function_call_output") => push(
                                Role::User,
                                format!("[tool result] {}", content_text(&it["output"])),
                            ),
                            _ if it.get("role").is_some() => push(
                                role_of(it["role"].as_str().unwrap_or("user")),
                                content_text(&it["content"]),
                            ),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Wire::Anthropic => {
            let system = content_text(&body["system"]);
            if !system.is_empty() {
                push(Role::System, system);
            }
            for m in body["messages"].as_array().into_iter().flatten() {
                push(
                    role_of(m["role"].as_str().unwrap_or("user")),
                    content_text(&m["content"]),
                );
            }
        }
    }
    out
}

fn role_of(role: &str) -> Role {
    match role {
        "system" | "developer" => Role::System,
        "assistant" => Role::Assistant,
        _ => Role::User,
    }
}

fn push_line(text: &mut String, line: &str) {
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(line);
}

/// The text of a content field in any of the three formats: a string, or a
/// list of parts (text parts give their text; tool uses and results are
/// shown in brackets; images as `[image]`).
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => {
            let mut text = String::new();
            for p in parts {
                let line = match p["type"].as_str() {
                    Some("tool_use") => format!(
                        "[tool call {}({})]",
                        p["name"].as_str().unwrap_or(""),
                        p["input"]
                    ),
                    Some("tool_result") => {
                        format!("[tool result] {}", content_text(&p["content"]))
                    }
                    Some("image") | Some("image_url") | Some("input_image") => "[image]".into(),
                    _ => match p["text"].as_str() {
                        Some(t) => t.to_string(),
                        None => continue,
                    },
                };
                push_line(&mut text, &line);
            }
            text
        }
        _ => String::new(),
    }
}

/// What a reply said and cost.
#[derive(Debug, Default, Clone)]
pub struct ReplyInfo {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    /// As the provider reported it; `None`: not reported.
    pub usage: Option<Usage>,
    /// An error the reply carried (an error event in a stream).
    pub error: Option<String>,
}

impl ReplyInfo {
    /// Text and tool calls as one text.
    pub fn summary(&self) -> String {
        let mut s = self.text.clone();
        for tc in &self.tool_calls {
            push_line(
                &mut s,
                &format!("[tool call {}({})]", tc.name, tc.arguments),
            );
        }
        s
    }
}

fn tool_call(id: &Value, name: &Value, arguments: &Value) -> ToolCall {
    let arguments = match arguments {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
        other => other.clone(),
    };
    ToolCall {
        id: id.as_str().unwrap_or("").to_string(),
        name: name.as_str().unwrap_or("").to_string(),
        arguments,
    }
}

/// Reads a whole (non-streamed) success body.
pub fn read_reply(wire: Wire, body: &[u8]) -> ReplyInfo {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return ReplyInfo::default();
    };
    match wire {
        Wire::OpenAiChat => {
            let msg = &v["choices"][0]["message"];
            ReplyInfo {
                text: content_text(&msg["content"]),
                tool_calls: msg["tool_calls"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|tc| {
                        tool_call(
                            &tc["id"],
                            &tc["function"]["name"],
                            &tc["function"]["arguments"],
                        )
                    })
                    .collect(),
                usage: chat_usage(&v["usage"]),
                error: None,
            }
        }
        Wire::OpenAiResponses => responses_reply(&v),
        Wire::Anthropic => {
            let mut info = ReplyInfo::default();
            for block in v["content"].as_array().into_iter().flatten() {
                match block["type"].as_str() {
                    Some("text") => push_line(&mut info.text, block["text"].as_str().unwrap_or("")),
                    Some("tool_use") => info.tool_calls.push(tool_call(
                        &block["id"],
                        &block["name"],
                        &block["input"],
                    )),
                    _ => {}
                }
            }
            info.usage = anthropic_usage(&v["usage"], None);
            info
        }
    }
}

/// A Responses API `response` object.
fn responses_reply(v: &Value) -> ReplyInfo {
    let mut info = ReplyInfo::default();
    for item in v["output"].as_array().into_iter().flatten() {
        match item["type"].as_str() {
            Some("message") => {
                for c in item["content"].as_array().into_iter().flatten() {
                    if let Some(t) = c["text"].as_str() {
                        info.text.push_str(t);
                    } else if let Some(r) = c["refusal"].as_str() {
                        info.text.push_str(r);
                    }
                }
            }
            Some("function_call") => info.tool_calls.push(tool_call(
                &item["call_id"],
                &item["name"],
                &item["arguments"],
            )),
            _ => {}
        }
    }
    let u = &v["usage"];
    if let (Some(i), Some(o)) = (u["input_tokens"].as_u64(), u["output_tokens"].as_u64()) {
        info.usage = Some(Usage {
            input_tokens: i,
            output_tokens: o,
            estimated: false,
        });
    }
    if let Some(msg) = v["error"]["message"].as_str() {
        info.error = Some(msg.to_string());
    }
    info
}

fn chat_usage(u: &Value) -> Option<Usage> {
    Some(Usage {
        input_tokens: u["prompt_tokens"].as_u64()?,
        output_tokens: u["completion_tokens"].as_u64()?,
        estimated: false,
    })
}

/// Anthropic usage; cache reads and writes count as input (as mlab's own
/// Anthropic backend counts them).
fn anthropic_usage(u: &Value, before: Option<Usage>) -> Option<Usage> {
    let input = u["input_tokens"].as_u64().map(|i| {
        i + u["cache_creation_input_tokens"].as_u64().unwrap_or(0)
            + u["cache_read_input_tokens"].as_u64().unwrap_or(0)
    });
    let output = u["output_tokens"].as_u64();
    if input.is_none() && output.is_none() {
        return before;
    }
    let base = before.unwrap_or_default();
    Some(Usage {
        input_tokens: input.unwrap_or(base.input_tokens),
        output_tokens: output.unwrap_or(base.output_tokens),
        estimated: false,
    })
}

/// Reads a stream's events as they pass, and knows its terminal event.
#[derive(Debug)]
pub struct StreamReader {
    wire: Wire,
    info: ReplyInfo,
    /// Chat tool calls by `index`: id, name, arguments so far.
    chat_tools: Vec<(u64, String, String, String)>,
    /// Anthropic tool uses by block index: id, name, input JSON so far.
    blocks: Vec<(u64, String, String, String)>,
    pub finished: bool,
}

impl StreamReader {
    pub fn new(wire: Wire) -> StreamReader {
        StreamReader {
            wire,
            info: ReplyInfo::default(),
            chat_tools: Vec::new(),
            blocks: Vec::new(),
            finished: false,
        }
    }

    /// Reads one event (its bytes, closing blank line included); true when
    /// it is the stream's terminal event.
    pub fn event(&mut self, raw: &[u8]) -> bool {
        let text = String::from_utf8_lossy(raw);
        let mut name = None;
        let mut data = String::new();
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                name = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        if data.is_empty() {
            return false;
        }
        if self.wire == Wire::OpenAiChat && data.trim() == "[DONE]" {
            self.finished = true;
            return true;
        }
        let Ok(v) = serde_json::from_str::<Value>(&data) else {
            return false;
        };
        let kind = v["type"]
            .as_str()
            .map(str::to_string)
            .or(name)
            .unwrap_or_default();
        match self.wire {
            Wire::OpenAiChat => self.chat_event(&v),
            Wire::OpenAiResponses => self.responses_event(&kind, &v),
            Wire::Anthropic => self.anthropic_event(&kind, &v),
        }
        self.finished
    }

    fn chat_event(&mut self, v: &Value) {
        if let Some(msg) = v["error"]["message"].as_str() {
            self.info.error = Some(msg.to_string());
        }
        if let Some(u) = chat_usage(&v["usage"]) {
            self.info.usage = Some(u);
        }
        let delta = &v["choices"][0]["delta"];
        if let Some(t) = delta["content"].as_str() {
            self.info.text.push_str(t);
        }
        for tc in delta["tool_calls"].as_array().into_iter().flatten() {
            let index = tc["index"].as_u64().unwrap_or(0);
            let slot = match self.chat_tools.iter().position(|t| t.0 == index) {
                Some(i) => i,
                None => {
                    self.chat_tools
                        .push((index, String::new(), String::new(), String::new()));
                    self.chat_tools.len() - 1
                }
            };
            let t = &mut self.chat_tools[slot];
            if let Some(id) = tc["id"].as_str() {
                t.1.push_str(id);
            }
            if let Some(n) = tc["function"]["name"].as_str() {
                t.2.push_str(n);
            }
            if let Some(a) = tc["function"]["arguments"].as_str() {
                t.3.push_str(a);
            }
        }
    }

    fn responses_event(&mut self, kind: &str, v: &Value) {
        match kind {
            "response.output_text.delta" => {
                if let Some(d) = v["delta"].as_str() {
                    self.info.text.push_str(d);
                }
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                let full = responses_reply(&v["response"]);
                if !full.text.is_empty() || !full.tool_calls.is_empty() {
                    self.info.text = full.text;
                    self.info.tool_calls = full.tool_calls;
                }
                self.info.usage = full.usage.or(self.info.usage);
                if full.error.is_some() {
                    self.info.error = full.error;
                }
                self.finished = true;
            }
            "error" => {
                self.info.error = Some(
                    v["message"]
                        .as_str()
                        .or(v["error"]["message"].as_str())
                        .unwrap_or("error event")
                        .to_string(),
                );
            }
            _ => {}
        }
    }

    fn anthropic_event(&mut self, kind: &str, v: &Value) {
        match kind {
            "message_start" => {
                self.info.usage = anthropic_usage(&v["message"]["usage"], self.info.usage)
            }
            "message_delta" => self.info.usage = anthropic_usage(&v["usage"], self.info.usage),
            "content_block_start" => {
                let b = &v["content_block"];
                if b["type"] == "tool_use" {
                    self.blocks.push((
                        v["index"].as_u64().unwrap_or(0),
                        b["id"].as_str().unwrap_or("").to_string(),
                        b["name"].as_str().unwrap_or("").to_string(),
                        String::new(),
                    ));
                } else if let Some(t) = b["text"].as_str() {
                    self.info.text.push_str(t);
                }
            }
            "content_block_delta" => {
                let d = &v["delta"];
                match d["type"].as_str() {
                    Some("text_delta") => self.info.text.push_str(d["text"].as_str().unwrap_or("")),
                    Some("input_json_delta") => {
                        let index = v["index"].as_u64().unwrap_or(0);
                        if let Some(b) = self.blocks.iter_mut().find(|b| b.0 == index) {
                            b.3.push_str(d["partial_json"].as_str().unwrap_or(""));
                        }
                    }
                    _ => {}
                }
            }
            "message_stop" => self.finished = true,
            "error" => {
                self.info.error = Some(
                    v["error"]["message"]
                        .as_str()
                        .unwrap_or("error event")
                        .to_string(),
                )
            }
            _ => {}
        }
    }

    /// What the stream said.
    pub fn finish(mut self) -> ReplyInfo {
        for (_, id, name, args) in self.chat_tools.drain(..).chain(self.blocks.drain(..)) {
            let args = if args.is_empty() { "{}".into() } else { args };
            self.info.tool_calls.push(tool_call(
                &Value::String(id),
                &Value::String(name),
                &Value::String(args),
            ));
        }
        self.info
    }
}

/// The end of the first complete server-sent event in `buf` (just past its
/// blank line), if one is complete.
pub fn event_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 1 < buf.len() {
        if buf[i] == b'\n' {
            if buf[i + 1] == b'\n' {
                return Some(i + 2);
            }
            if buf[i + 1] == b'\r' && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

/// The `max_tokens` a request asked for (0 when none).
pub fn max_tokens(body: &Value) -> u32 {
    ["max_tokens", "max_completion_tokens", "max_output_tokens"]
        .iter()
        .find_map(|k| body[*k].as_u64())
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

/// The `temperature` a request asked for (the APIs' default 1 when none).
pub fn temperature(body: &Value) -> f32 {
    body["temperature"].as_f64().unwrap_or(1.0) as f32
}

/// The stop sequences of a request.
pub fn stop(body: &Value) -> Vec<String> {
    match (&body["stop"], &body["stop_sequences"]) {
        (Value::String(s), _) => vec![s.clone()],
        (Value::Array(a), _) | (_, Value::Array(a)) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_end_finds_lf_and_crlf_boundaries_and_waits_for_incomplete_ones() {
        assert_eq!(event_end(b"data: 1\n\ndata: 2"), Some(9));
        assert_eq!(event_end(b"data: 1\r\n\r\nx"), Some(11));
        assert_eq!(event_end(b"data: 1\n"), None);
        assert_eq!(event_end(b"data: 1\r\n\r"), None);
    }

    #[test]
    fn chat_stream_gives_text_tool_calls_usage_and_done() {
        let mut r = StreamReader::new(Wire::OpenAiChat);
        assert!(!r.event(b"data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"));
        assert!(!r.event(b"data: {\"choices\":[{\"delta\":{\"content\":\"lo\",\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":\"ls\",\"arguments\":\"{\\\"a\\\"\"}}]}}]}\n\n"));
        assert!(!r.event(b"data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":1}\"}}]}}]}\n\n"));
        assert!(!r.event(
            b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}\n\n"
        ));
        assert!(r.event(b"data: [DONE]\n\n"));
        let info = r.finish();
        assert_eq!(info.text, "Hello");
        assert_eq!(info.tool_calls[0].name, "ls");
        assert_eq!(info.tool_calls[0].arguments, json!({"a": 1}));
        assert_eq!(info.usage.unwrap().total(), 10);
    }

    #[test]
    fn anthropic_stream_usage_is_message_start_updated_by_message_delta() {
        let mut r = StreamReader::new(Wire::Anthropic);
        r.event(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":11,\"cache_read_input_tokens\":4,\"output_tokens\":1}}}\n\n");
        r.event(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n");
        r.event(b"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":9}}\n\n");
        assert!(r.event(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
        let info = r.finish();
        assert_eq!(info.text, "Hi");
        let u = info.usage.unwrap();
        assert_eq!((u.input_tokens, u.output_tokens), (15, 9));
    }

    #[test]
    fn request_messages_flatten_all_three_formats() {
        let chat = json!({"messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "ls", "arguments": "{}"}}]},
            {"role": "tool", "content": "a.txt"}]});
        let m = request_messages(Wire::OpenAiChat, &chat);
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].role, Role::System);
        assert_eq!(m[1].content, "hi");
        assert_eq!(m[2].content, "[tool call ls({})]");
        assert_eq!(m[3].content, "[tool result] a.txt");
        let resp = json!({"instructions": "sys", "input": "go"});
        assert_eq!(request_messages(Wire::OpenAiResponses, &resp).len(), 2);
        let ant = json!({"system": [{"type": "text", "text": "sys"}],
                         "messages": [{"role": "user", "content": "q"}]});
        let m = request_messages(Wire::Anthropic, &ant);
        assert_eq!((m[0].role, m[0].content.as_str()), (Role::System, "sys"));
    }
}
