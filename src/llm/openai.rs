//! OpenAI Chat Completions (`POST {base}/chat/completions`), which is also
//! what vLLM, ollama, llama.cpp, LiteLLM and most local servers speak.
//!
//! Reasoning models (o1, o3, o4, gpt-5) take `max_completion_tokens` and no
//! `temperature` or `stop`; their stop sequences are applied to the text
//! afterwards. OpenAI accepts at most four stop sequences; the rest are
//! applied the same way.

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde::{Deserialize, Serialize};

use super::keys::{self, ApiKey};
use super::metered::{Backend, Outcome, Pricing, Reply};
use super::transport::{self, Fault, HttpReply, RetryPolicy};
use super::{
    truncate_at_stop, LlmError, Message, ModelFailure, Request, RoleName, ToolCall, ToolChoice,
    ToolSpec, Usage,
};

pub const PUBLIC_BASE: &str = "https://api.openai.com/v1";

pub struct OpenAi {
    model: String,
    url: String,
    headers: HeaderMap,
    policy: RetryPolicy,
    /// The public API (priced, key required) rather than a server of the user's.
    public: bool,
    reasoning: bool,
    /// For log messages.
    label: String,
    /// The server rejected `tool_choice` once; it is no longer sent.
    no_tool_choice: std::sync::atomic::AtomicBool,
    /// Sent as `seed` (the run's `--seed`): the API's best-effort
    /// deterministic sampling.
    seed: Option<u64>,
}

impl OpenAi {
    pub fn new(
        name: &str,
        model: &str,
        base: Option<&str>,
        key: Option<ApiKey>,
        policy: RetryPolicy,
    ) -> anyhow::Result<OpenAi> {
        let (base, host) = transport::base_url(base.unwrap_or(PUBLIC_BASE))?;
        let public = host == "api.openai.com";
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        match &key {
            Some(key) => {
                let mut auth = HeaderValue::from_str(&format!("Bearer {}", key.secret()))
                    .map_err(|_| anyhow::anyhow!("the OpenAI API key holds characters a header cannot carry; check it for stray quotes or spaces"))?;
                auth.set_sensitive(true);
                headers.insert(AUTHORIZATION, auth);
                if let Some(org) = key.org() {
                    let mut v = HeaderValue::from_str(org).map_err(|_| {
                        anyhow::anyhow!(
                            "the OpenAI organisation in openai_api_key.txt is not valid"
                        )
                    })?;
                    v.set_sensitive(true);
                    headers.insert("openai-organization", v);
                }
            }
            // A local server usually needs no key; the public API always does.
            None if public => return Err(keys::missing_openai()),
            None => {}
        }
        let bare = model.rsplit('/').next().unwrap_or(model);
        let reasoning = ["o1", "o3", "o4", "gpt-5"]
            .iter()
            .any(|p| bare.starts_with(p));
        Ok(OpenAi {
            model: model.to_string(),
            url: format!("{base}/chat/completions"),
            headers,
            policy,
            public,
            reasoning,
            label: name.to_string(),
            no_tool_choice: Default::default(),
            seed: None,
        })
    }

    /// Sends `seed` with every request (when given).
    pub fn with_seed(mut self, seed: Option<u64>) -> OpenAi {
        self.seed = seed;
        self
    }

    /// The JSON body of a request.
    #[cfg(test)]
    pub fn body(&self, req: &Request) -> Vec<u8> {
        self.body_with(req, transport::sends_tool_choice(req, &self.no_tool_choice))
    }

    /// The body, with `tool_choice` when `choice` (decided once per call by
    /// [`transport::sends_tool_choice`]).
    #[expect(
        clippy::expect_used,
        reason = "the body holds only strings, numbers and JSON values, which always serialise"
    )]
    fn body_with(&self, req: &Request, choice: bool) -> Vec<u8> {
        let tool_choice = req.tool_choice.filter(|_| choice).map(|c| match c {
            ToolChoice::Auto => "auto",
            ToolChoice::Required => "required",
        });
        let stop: &[String] = if self.reasoning {
            &[]
        } else {
            &req.stop[..req.stop.len().min(4)]
        };
        let body = Body {
            model: &self.model,
            messages: &req.messages,
            max_tokens: (!self.reasoning).then_some(req.max_tokens),
            max_completion_tokens: self.reasoning.then_some(req.max_tokens),
            temperature: (!self.reasoning).then_some(req.temperature),
            stop,
            tools: req.tools.iter().map(WireTool::from).collect(),
            tool_choice,
            seed: self.seed,
        };
        serde_json::to_vec(&body).expect("a request body always serializes")
    }
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: &'a [Message],
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a serde_json::Value,
}

impl<'a> From<&'a ToolSpec> for WireTool<'a> {
    fn from(t: &'a ToolSpec) -> Self {
        WireTool {
            kind: "function",
            function: WireFunction {
                name: &t.name,
                description: &t.description,
                parameters: &t.parameters,
            },
        }
    }
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
    /// Some compatible servers report errors inside a 200 reply.
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Choice {
    message: Option<ResponseMessage>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ResponseMessage {
    content: Option<String>,
    refusal: Option<String>,
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Deserialize)]
struct WireToolCall {
    id: Option<String>,
    function: WireCalled,
}

#[derive(Deserialize)]
struct WireCalled {
    name: String,
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

/// Makes a `Reply` of a 2xx body, or says why not.
fn interpret(reply: &HttpReply, stop: &[String]) -> Result<Reply, Fault> {
    let resp: Response = transport::parse_reply(reply)?;
    if let (Some(_), true) = (&resp.error, resp.choices.is_empty()) {
        let message = transport::server_message(&reply.body);
        if transport::is_context_length(&message) {
            return Err(Fault::Fail(LlmError::PromptTooLong(keys::redact(&message))));
        }
        return Err(Fault::Retry {
            what: format!("the server reported an error: {message}"),
            after: None,
        });
    }
    let Some(choice) = resp.choices.into_iter().next() else {
        return Err(Fault::Retry {
            what: "the reply had no choices".into(),
            after: None,
        });
    };
    let message = choice.message.unwrap_or(ResponseMessage {
        content: None,
        refusal: None,
        tool_calls: None,
    });
    let finish = choice.finish_reason.as_deref().unwrap_or_default();
    let content = message.content.unwrap_or_default();
    if content.trim().is_empty() && message.tool_calls.as_ref().is_none_or(|c| c.is_empty()) {
        // The model's own "no": a refusal, or the provider's content filter.
        if let Some(why) = message.refusal.filter(|r| !r.trim().is_empty()) {
            return Err(Fault::Fail(transport::model_failure(
                ModelFailure::Refusal,
                format!("the model refused: {}", why.trim()),
            )));
        }
        if finish == "content_filter" {
            return Err(Fault::Fail(transport::model_failure(
                ModelFailure::ContentFilter,
                "the provider's content filter stopped the reply (finish_reason content_filter)"
                    .into(),
            )));
        }
    }
    let mut text = content;
    truncate_at_stop(&mut text, stop);
    let tool_calls: Vec<ToolCall> = message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let raw = c.function.arguments.unwrap_or_default();
            let arguments = if raw.trim().is_empty() {
                serde_json::Value::Object(Default::default())
            } else {
                // Models sometimes emit broken JSON; keep the text for the agent.
                serde_json::from_str(&raw).unwrap_or(serde_json::Value::String(raw))
            };
            ToolCall {
                id: c.id.unwrap_or_else(|| format!("call_{i}")),
                name: c.function.name,
                arguments,
            }
        })
        .collect();
    if text.trim().is_empty() && tool_calls.is_empty() {
        let out_of_tokens = finish == "length";
        return Err(transport::empty_reply(
            out_of_tokens,
            " (reasoning models think first)",
        ));
    }
    let usage = resp.usage.and_then(|u| {
        Some(Usage {
            input_tokens: u.prompt_tokens?,
            output_tokens: u.completion_tokens?,
            estimated: false,
        })
    });
    Ok(Reply {
        text,
        tool_calls,
        usage,
    })
}

impl Backend for OpenAi {
    fn provider(&self) -> &'static str {
        "openai"
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

    fn reply(body: &str) -> HttpReply {
        HttpReply {
            status: 200,
            retry_after: None,
            body: body.as_bytes().to_vec(),
        }
    }

    fn local(model: &str) -> OpenAi {
        OpenAi::new(
            model,
            model,
            Some("http://127.0.0.1:9/v1"),
            None,
            RetryPolicy::default(),
        )
        .unwrap()
    }

    #[test]
    fn reasoning_models_get_max_completion_tokens_and_no_temperature_or_stop() {
        let mut req = Request::prompt("hi", 300);
        req.stop = vec!["Observation:".into()];
        let body: serde_json::Value = serde_json::from_slice(&local("o3-mini").body(&req)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"model": "o3-mini", "messages": [{"role": "user", "content": "hi"}],
                               "max_completion_tokens": 300})
        );
    }

    #[test]
    fn the_run_seed_is_sent_as_seed_and_nothing_without_one() {
        let req = Request::prompt("hi", 10);
        let body: serde_json::Value =
            serde_json::from_slice(&local("llama").with_seed(Some(42)).body(&req)).unwrap();
        assert_eq!(body["seed"], 42);
        let body: serde_json::Value = serde_json::from_slice(&local("llama").body(&req)).unwrap();
        assert!(body.get("seed").is_none(), "{body}");
    }

    #[test]
    fn at_most_four_stop_sequences_are_sent_and_all_are_applied() {
        let mut req = Request::prompt("hi", 10);
        req.stop = (1..=5).map(|i| format!("S{i}")).collect();
        let body: serde_json::Value = serde_json::from_slice(&local("llama").body(&req)).unwrap();
        assert_eq!(body["stop"], serde_json::json!(["S1", "S2", "S3", "S4"]));
        let r = interpret(
            &reply(r#"{"choices":[{"message":{"content":"abc S5 def"},"finish_reason":"stop"}]}"#),
            &req.stop,
        )
        .ok()
        .unwrap();
        assert_eq!(r.text, "abc ");
        assert!(r.usage.is_none(), "no usage reported must stay None");
    }

    #[test]
    fn tool_calls_are_parsed_with_their_json_arguments() {
        let r = interpret(
            &reply(
                r#"{"choices":[{"message":{"content":null,"tool_calls":[{"id":"call_1","type":"function",
                "function":{"name":"List_Files","arguments":"{\"dir_path\":\".\"}"}}]},"finish_reason":"tool_calls"}],
                "usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"#,
            ),
            &[],
        )
        .ok()
        .unwrap();
        assert_eq!(r.text, "");
        assert_eq!(r.tool_calls[0].name, "List_Files");
        assert_eq!(r.tool_calls[0].arguments["dir_path"], ".");
        assert_eq!(r.usage.unwrap().input_tokens, 7);
    }

    #[test]
    fn reasoning_that_eats_all_tokens_fails_with_the_flag_to_raise() {
        let out = interpret(
            &reply(r#"{"choices":[{"message":{"content":""},"finish_reason":"length"}]}"#),
            &[],
        );
        match out {
            Err(Fault::Fail(LlmError::Model {
                kind: ModelFailure::EmptyReply,
                detail,
            })) => assert!(detail.contains("--llm-max-tokens"), "{detail}"),
            _ => panic!("expected a final error"),
        }
    }

    #[test]
    fn the_public_api_needs_a_key_and_local_servers_do_not() {
        let err = OpenAi::new("gpt-4o", "gpt-4o", None, None, RetryPolicy::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("OPENAI_API_KEY") && err.contains("openai_api_key.txt"),
            "{err}"
        );
        let l = local("llama3");
        assert_eq!(l.url, "http://127.0.0.1:9/v1/chat/completions");
        assert!(l.headers.get(AUTHORIZATION).is_none());
        let bare = OpenAi::new(
            "x",
            "x",
            Some("http://localhost:8000/"),
            None,
            RetryPolicy::default(),
        )
        .unwrap();
        assert_eq!(bare.url, "http://localhost:8000/v1/chat/completions");
    }
}
