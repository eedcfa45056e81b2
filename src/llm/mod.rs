//! The LLM layer: one `Model` trait for every provider, plus the three model
//! roles of the original (main, fast, edit).
//!
//! This file fixes the interface the rest of mlab codes against; the
//! providers (openai, anthropic, scripted, replay, human), retries,
//! recording, usage, cost and budgets live beside it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn user(text: impl Into<String>) -> Message {
        Message {
            role: Role::User,
            content: text.into(),
        }
    }

    pub fn system(text: impl Into<String>) -> Message {
        Message {
            role: Role::System,
            content: text.into(),
        }
    }
}

/// A tool the model may call (native tool calling); `parameters` is a JSON
/// schema object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// A tool call the model made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: serde_json::Value,
}

/// One call to a model.
#[derive(Debug, Clone)]
pub struct Request {
    /// A plain prompt is one user message.
    pub messages: Vec<Message>,
    pub stop: Vec<String>,
    pub max_tokens: u32,
    pub temperature: f32,
    /// Tools offered for native tool calling (empty: plain text).
    pub tools: Vec<ToolSpec>,
    /// Where to write the original's human-readable per-call log
    /// (prompt / response / tokens sections), if anywhere.
    pub log_file: Option<PathBuf>,
}

impl Request {
    pub fn prompt(text: impl Into<String>, max_tokens: u32) -> Request {
        Request {
            messages: vec![Message::user(text)],
            stop: Vec::new(),
            max_tokens,
            temperature: 0.5,
            tools: Vec::new(),
            log_file: None,
        }
    }
}

/// Tokens used by one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// True when the provider reported none and these are estimates.
    pub estimated: bool,
}

/// What came back.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    pub latency: Duration,
    pub retries: u32,
    pub cost_usd: f64,
}

/// Failures a caller may need to tell apart.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The prompt does not fit the model's context window.
    #[error("prompt too long for the model: {0}")]
    PromptTooLong(String),
    /// A budget (--max-cost, --max-total-tokens) would be exceeded.
    #[error("budget exhausted: {0}")]
    Budget(String),
    /// The provider refused the request (4xx other than rate limits).
    #[error("the model provider refused the request: {0}")]
    Refused(String),
    /// Retries ran out on transient faults.
    #[error("the model could not be reached after {attempts} attempts: {last}")]
    Unreachable { attempts: u32, last: String },
    /// A scripted or replayed model has no answer for this call.
    #[error("{0}")]
    Script(String),
    /// Anything else (bad configuration, I/O).
    #[error("{0}")]
    Other(String),
}

/// One language model.
pub trait Model: Send + Sync {
    /// Name as the user gave it (for logs and run.json).
    fn name(&self) -> &str;

    fn complete(&self, req: &Request) -> Result<Completion, LlmError>;
}

/// The three roles of the original.
#[derive(Clone)]
pub struct Models {
    /// The agent's own replies.
    pub main: Arc<dyn Model>,
    /// Summaries and Understand File.
    pub fast: Arc<dyn Model>,
    /// Edit Script (AI) and Edit Script Segment (AI).
    pub edit: Arc<dyn Model>,
    /// Max tokens of an edit reply.
    pub edit_max_tokens: u32,
    /// Max tokens of a main reply.
    pub main_max_tokens: u32,
}
