//! Anthropic Messages API (`POST {base}/v1/messages`, `x-api-key`,
//! `anthropic-version`). System messages become the top-level `system`
//! field; tools are sent as `{name, description, input_schema}` and
//! `tool_use` blocks come back as tool calls.

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use serde::{Deserialize, Serialize};

use super::keys::{self, ApiKey};
use super::metered::{Backend, Outcome, Pricing, Reply};
use super::transport::{self, Fault, HttpReply, RetryPolicy};
use super::{
    truncate_at_stop, ModelFailure, Request, Role, RoleName, ToolCall, ToolChoice, ToolSpec, Usage,
};

pub const PUBLIC_BASE: &str = "https://api.anthropic.com";
pub const API_VERSION: &str = "2023-06-01";

pub struct Anthropic {
    model: String,
    url: String,
    headers: HeaderMap,
    policy: RetryPolicy,
    public: bool,
    label: String,
    /// The server rejected `tool_choice` once; it is no longer sent.
    no_tool_choice: std::sync::atomic::AtomicBool,
}

impl Anthropic {
    pub fn new(
        name: &str,
        model: &str,
        base: Option<&str>,
        key: Option<ApiKey>,
        policy: RetryPolicy,
    ) -> anyhow::Result<Anthropic> {
        let (base, host) = transport::base_url(base.unwrap_or(PUBLIC_BASE))?;
        let public = host == "api.anthropic.com";
        // The SDK's base URL leaves out /v1; accept it either way.
        let base = if base.ends_with("/v1") {
            base
        } else {
            format!("{base}/v1")
        };
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert("anthropic-version", HeaderValue::from_static(API_VERSION));
        match &key {
            Some(key) => {
                let mut v = HeaderValue::from_str(key.secret()).map_err(|_| {
                    anyhow::anyhow!("the Anthropic API key holds characters a header cannot carry; check it for stray quotes or spaces")
                })?;
                v.set_sensitive(true);
                headers.insert("x-api-key", v);
            }
            None if public => return Err(keys::missing_anthropic()),
            None => {}
        }
        Ok(Anthropic {
            model: model.to_string(),
            url: format!("{base}/messages"),
            headers,
            policy,
            public,
            label: name.to_string(),
            no_tool_choice: Default::default(),
        })
    }

    #[cfg(test)]
    pub fn body(&self, req: &Request) -> Vec<u8> {
        self.body_with(req, transport::sends_tool_choice(req, &self.no_tool_choice))
    }

    /// The body, with `tool_choice` (`{"type":"any"}` for required) when
    /// `choice` (decided once per call by [`transport::sends_tool_choice`]).
    #[expect(
        clippy::expect_used,
        reason = "the body holds only strings, numbers and JSON values, which always serialise"
    )]
    fn body_with(&self, req: &Request, choice: bool) -> Vec<u8> {
        let tool_choice = req.tool_choice.filter(|_| choice).map(|c| WireChoice {
            kind: match c {
                ToolChoice::Auto => "auto",
                ToolChoice::Required => "any",
            },
        });
        let system: Vec<&str> = req
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
            .collect();
        let mut messages: Vec<WireMessage> = req
            .messages
            .iter()
            .filter(|m| m.role != Role::System)
            .map(|m| WireMessage {
                role: m.role.as_str(),
                content: &m.content,
            })
            .collect();
        let system = system.join("\n\n");
        // The API needs at least one message; a system-only request asks it as a user.
        let system = if messages.is_empty() {
            messages.push(WireMessage {
                role: "user",
                content: &system,
            });
            None
        } else {
            Some(system).filter(|s| !s.is_empty())
        };
        let body = Body {
            model: &self.model,
            max_tokens: req.max_tokens,
            system: system.as_deref(),
            messages,
            stop_sequences: &req.stop,
            // Anthropic's range is 0..=1 (OpenAI's goes to 2).
            temperature: req.temperature.clamp(0.0, 1.0),
            tools: req.tools.iter().map(WireTool::from).collect(),
            tool_choice,
        };
        serde_json::to_vec(&body).expect("a request body always serializes")
    }
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'a str>,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop_sequences: &'a [String],
    temperature: f32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<WireChoice>,
}

#[derive(Serialize)]
struct WireChoice {
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'a str,
    content: &'a str,
}

#[derive(Serialize)]
struct WireTool<'a> {
    name: &'a str,
    description: &'a str,
    input_schema: &'a serde_json::Value,
}

impl<'a> From<&'a ToolSpec> for WireTool<'a> {
    fn from(t: &'a ToolSpec) -> Self {
        WireTool {
            name: &t.name,
            description: &t.description,
            input_schema: &t.parameters,
        }
    }
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    content: Vec<Block>,
    stop_reason: Option<String>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: serde_json::Value,
    },
    /// Thinking and any block type added later.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

fn interpret(reply: &HttpReply, stop: &[String]) -> Result<Reply, Fault> {
    let resp: Response = transport::parse_reply(reply)?;
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for block in resp.content {
        match block {
            Block::Text { text: t } => text.push_str(&t),
            Block::ToolUse { id, name, input } => tool_calls.push(ToolCall {
                id,
                name,
                arguments: input,
            }),
            Block::Other => {}
        }
    }
    truncate_at_stop(&mut text, stop);
    if text.trim().is_empty()
        && tool_calls.is_empty()
        && resp.stop_reason.as_deref() == Some("refusal")
    {
        return Err(Fault::Fail(transport::model_failure(
            ModelFailure::Refusal,
            "the model refused (stop_reason refusal)".into(),
        )));
    }
    if text.trim().is_empty() && tool_calls.is_empty() {
        let out_of_tokens = resp.stop_reason.as_deref() == Some("max_tokens");
        return Err(transport::empty_reply(out_of_tokens, ""));
    }
    let usage = resp.usage.and_then(|u| {
        Some(Usage {
            input_tokens: u.input_tokens?
                + u.cache_creation_input_tokens.unwrap_or(0)
                + u.cache_read_input_tokens.unwrap_or(0),
            output_tokens: u.output_tokens?,
            estimated: false,
        })
    });
    Ok(Reply {
        text,
        tool_calls,
        usage,
    })
}

impl Backend for Anthropic {
    fn provider(&self) -> &'static str {
        "anthropic"
    }

    fn pricing(&self) -> Pricing<'_> {
        Pricing::hosted(self.public, &self.model)
    }

    fn call(&self, req: &Request, _role: RoleName) -> Outcome {
        transport::with_tool_choice_fallback(&self.label, req, &self.no_tool_choice, |choice| {
            transport::post_json(
                &self.policy,
                &self.label,
                &self.url,
                &self.headers,
                self.body_with(req, choice),
                |reply| interpret(reply, &req.stop),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Message;

    fn backend() -> Anthropic {
        Anthropic::new(
            "claude-x",
            "claude-x",
            Some("http://127.0.0.1:9"),
            None,
            RetryPolicy::default(),
        )
        .unwrap()
    }

    #[test]
    fn system_messages_move_to_the_system_field() {
        let mut req = Request::prompt("hi", 50);
        req.messages.insert(0, Message::system("be brief"));
        req.temperature = 1.5;
        let body: serde_json::Value = serde_json::from_slice(&backend().body(&req)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"model": "claude-x", "max_tokens": 50, "system": "be brief",
                "messages": [{"role": "user", "content": "hi"}], "temperature": 1.0})
        );
        assert_eq!(backend().url, "http://127.0.0.1:9/v1/messages");
    }

    #[test]
    fn text_and_tool_use_blocks_are_read_and_unknown_blocks_skipped() {
        let body = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x",
            "content":[{"type":"thinking","thinking":"hmm","signature":"s"},{"type":"text","text":"Let me look."},
            {"type":"tool_use","id":"toolu_1","name":"List_Files","input":{"dir_path":"."}}],
            "stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":20,"output_tokens":9}}"#;
        let r = interpret(
            &HttpReply {
                status: 200,
                retry_after: None,
                body: body.as_bytes().to_vec(),
            },
            &[],
        )
        .ok()
        .unwrap();
        assert_eq!(r.text, "Let me look.");
        assert_eq!(r.tool_calls[0].id, "toolu_1");
        assert_eq!(r.tool_calls[0].arguments["dir_path"], ".");
        assert_eq!(r.usage.unwrap().output_tokens, 9);
    }

    #[test]
    fn the_public_api_needs_a_key() {
        let err = Anthropic::new("claude-x", "claude-x", None, None, RetryPolicy::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("ANTHROPIC_API_KEY") && err.contains("claude_api_key.txt"),
            "{err}"
        );
    }
}
