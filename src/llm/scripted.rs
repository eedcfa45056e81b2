//! `scripted:<file>`: answers read in order from a JSONL file, for tests,
//! demos and reproducible agent runs without any server.
//!
//! Each non-blank line is a JSON string (the reply text) or an object:
//! `{"text": "...", "tool_calls": [{"id"?, "name", "arguments"}],
//!   "usage": {"input_tokens", "output_tokens"},
//!   "error": "prompt_too_long" | "refused" | "unreachable" | "empty_reply" |
//!            "refusal" | "content_filter" | "unusable_reply", "message": "..."}`.
//! `error` makes that call fail with the given typed error, so agents'
//! handling of failures can be tested (the last four are model failures,
//! `LlmError::Model`). Every role naming the same file draws
//! from one queue, in call order.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Deserialize;

use super::metered::{Backend, Outcome, Pricing, Reply};
use super::{LlmError, ModelFailure, Request, RoleName, ToolCall, Usage};

#[derive(Debug, Clone)]
enum Entry {
    Reply(Reply),
    Fail { kind: String, message: String },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Line {
    Text(String),
    Object(Object),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Object {
    #[serde(default)]
    text: String,
    #[serde(default)]
    tool_calls: Vec<ScriptedCall>,
    usage: Option<ScriptedUsage>,
    error: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptedCall {
    id: Option<String>,
    name: String,
    #[serde(default)]
    arguments: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptedUsage {
    input_tokens: u64,
    output_tokens: u64,
}

pub struct Scripted {
    path: PathBuf,
    entries: Vec<Entry>,
    next: Mutex<usize>,
}

impl Scripted {
    pub fn load(path: &Path) -> anyhow::Result<Scripted> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read the script {}: {e} (scripted:<file> needs a JSONL file of replies)",
                path.display()
            )
        })?;
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let parsed: Line = serde_json::from_str(line).map_err(|e| {
                anyhow::anyhow!(
                    "{} line {}: not a reply ({e}); write a JSON string, or an object with \
                     \"text\" and optionally \"tool_calls\", \"usage\" or \"error\"",
                    path.display(),
                    i + 1
                )
            })?;
            entries.push(match parsed {
                Line::Text(text) => Entry::Reply(Reply {
                    text,
                    tool_calls: Vec::new(),
                    usage: None,
                }),
                Line::Object(o) => match o.error {
                    Some(kind) => {
                        anyhow::ensure!(
                            matches!(kind.as_str(), "prompt_too_long" | "refused" | "unreachable")
                                || ModelFailure::parse(&kind).is_some(),
                            "{} line {}: error must be prompt_too_long, refused, unreachable, \
                             empty_reply, refusal, content_filter or unusable_reply, not '{kind}'",
                            path.display(),
                            i + 1
                        );
                        Entry::Fail {
                            kind,
                            message: o.message.unwrap_or_else(|| "scripted failure".into()),
                        }
                    }
                    None => Entry::Reply(Reply {
                        text: o.text,
                        tool_calls: o
                            .tool_calls
                            .into_iter()
                            .enumerate()
                            .map(|(n, c)| ToolCall {
                                id: c.id.unwrap_or_else(|| format!("call_{}_{n}", i + 1)),
                                name: c.name,
                                arguments: c.arguments,
                            })
                            .collect(),
                        usage: o.usage.map(|u| Usage {
                            input_tokens: u.input_tokens,
                            output_tokens: u.output_tokens,
                            estimated: false,
                        }),
                    }),
                },
            });
        }
        Ok(Scripted {
            path: path.to_path_buf(),
            entries,
            next: Mutex::new(0),
        })
    }
}

/// Rebuilds the typed error a script (or recording) names.
pub fn scripted_error(kind: &str, message: String) -> LlmError {
    match kind {
        "prompt_too_long" => LlmError::PromptTooLong(message),
        "refused" => LlmError::Refused(message),
        "unreachable" => LlmError::Unreachable {
            attempts: 1,
            last: message,
        },
        "budget" => LlmError::Budget(message),
        "script" => LlmError::Script(message),
        other => match ModelFailure::parse(other) {
            Some(kind) => LlmError::Model {
                kind,
                detail: message,
            },
            None => LlmError::Other(message),
        },
    }
}

impl Backend for Scripted {
    fn provider(&self) -> &'static str {
        "scripted"
    }

    fn pricing(&self) -> Pricing<'_> {
        Pricing::Free
    }

    fn call(&self, _req: &Request, _role: RoleName) -> Outcome {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = self.entries.get(*next) else {
            return Outcome::from(Err(LlmError::Script(format!(
                "the scripted model {} has no reply left for call {}: all {} were used; \
                 add lines to the file",
                self.path.display(),
                *next + 1,
                self.entries.len()
            ))));
        };
        *next += 1;
        Outcome::from(match entry.clone() {
            Entry::Reply(r) => Ok(r),
            Entry::Fail { kind, message } => Err(scripted_error(&kind, message)),
        })
    }
}
