//! The LLM layer: one `Model` trait for every provider, plus the three model
//! roles of the original (main, fast, edit).
//!
//! This file fixes the interface the rest of mlab codes against and builds
//! the three roles from its configuration (`Models::new`, from `Config`). Beside it:
//! the providers (`openai`, `anthropic`, `scripted`, `replay`, `human`), the
//! HTTP transport with its retries (`transport`), API keys (`keys`), model
//! names (`spec`), prices, usage and budgets (`cost`), the per-call records
//! (`record`) and the wrapper that ties them together for one role
//! (`metered`). `check` is the `mlab llm-check` subcommand.
//!
//! Not here: prompts, response parsing of agents, anything that knows what an
//! action is. Callers stay plain synchronous code: `Model::complete` blocks,
//! and the one tokio runtime that drives HTTP is private to this module.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

pub(crate) mod anthropic;
pub mod check;
mod config;
pub(crate) mod cost;
mod human;
pub(crate) mod keys;
mod metered;
pub(crate) mod openai;
pub(crate) mod record;
mod replay;
mod scripted;
mod spec;
#[cfg(test)]
mod tests;
pub(crate) mod transport;

use cost::PriceTable;
// For the sandbox, which strips these from every child's environment.
pub use config::Config;
pub use keys::secret_env_vars;
pub use metered::Totals;
pub use spec::{model_identity, Spec};
pub use transport::RetryPolicy;

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

    #[cfg(test)] // the agents send their instructions as a user message
    pub fn system(text: impl Into<String>) -> Message {
        Message {
            role: Role::System,
            content: text.into(),
        }
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
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

/// Whether a request that offers tools requires the model to call one
/// (`--tool-choice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolChoice {
    /// The model may answer in text instead.
    Auto,
    /// The model must call a tool (OpenAI `"required"`, Anthropic `{"type":"any"}`).
    Required,
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
    /// Sent only with tools; a server that rejects the field is asked
    /// again without it (and not sent it again).
    pub tool_choice: Option<ToolChoice>,
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
            tool_choice: None,
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
    /// The model answered, but not usefully: an empty reply, a refusal, a
    /// content filter, or replies that stayed unusable after the agent's
    /// format corrections. The configuration's failure, not the harness's:
    /// the run ends `model_error` and eval counts it against the
    /// configuration.
    #[error("the model failed ({}): {detail}", kind.as_str())]
    Model { kind: ModelFailure, detail: String },
    /// Anything else (bad configuration, I/O).
    #[error("{0}")]
    Other(String),
}

/// How a model failed at the task (see `LlmError::Model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFailure {
    /// No text and no tool call (after one immediate retry), or all its
    /// tokens spent before writing any text.
    EmptyReply,
    /// The model declined to answer (OpenAI's `refusal`, Anthropic's
    /// `stop_reason: refusal`).
    Refusal,
    /// The provider's content filter stopped the reply.
    ContentFilter,
    /// Replies stayed unusable after the agent's format-correction retries.
    UnusableReply,
}

impl ModelFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelFailure::EmptyReply => "empty_reply",
            ModelFailure::Refusal => "refusal",
            ModelFailure::ContentFilter => "content_filter",
            ModelFailure::UnusableReply => "unusable_reply",
        }
    }

    pub fn parse(kind: &str) -> Option<ModelFailure> {
        [
            ModelFailure::EmptyReply,
            ModelFailure::Refusal,
            ModelFailure::ContentFilter,
            ModelFailure::UnusableReply,
        ]
        .into_iter()
        .find(|k| k.as_str() == kind)
    }
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }

    /// Adds another call's tokens; the sum is an estimate if either part is.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.estimated |= other.estimated;
    }
}

impl LlmError {
    /// A short stable name of the kind of failure, as recorded in
    /// `llm_calls.jsonl` (`error_kind`) and reproduced by `replay:`.
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::PromptTooLong(_) => "prompt_too_long",
            LlmError::Budget(_) => "budget",
            LlmError::Refused(_) => "refused",
            LlmError::Unreachable { .. } => "unreachable",
            LlmError::Script(_) => "script",
            LlmError::Model { kind, .. } => kind.as_str(),
            LlmError::Other(_) => "other",
        }
    }

    /// A failure of the model at the task (it answered, but empty, refused,
    /// filtered, unusable, or it was given more than it can read), as
    /// opposed to a fault of the transport, the provider or mlab. The run
    /// ends `model_error` and counts against the configuration.
    pub fn is_model_failure(&self) -> bool {
        matches!(self, LlmError::Model { .. } | LlmError::PromptTooLong(_))
    }

    /// The message without the kind's own wording (what `replay:` needs to
    /// rebuild the same error).
    pub fn detail(&self) -> &str {
        match self {
            LlmError::PromptTooLong(m)
            | LlmError::Budget(m)
            | LlmError::Refused(m)
            | LlmError::Script(m)
            | LlmError::Other(m) => m,
            LlmError::Model { detail, .. } => detail,
            LlmError::Unreachable { last, .. } => last,
        }
    }
}

/// One language model.
pub trait Model: Send + Sync {
    /// Name as the user gave it (for logs and run.json).
    fn name(&self) -> &str;

    fn complete(&self, req: &Request) -> Result<Completion, LlmError>;

    /// Tokens and US dollars spent so far by every role that shares this
    /// model's account (the models of one `Models::new`); `None` for a
    /// model that keeps no account.
    fn spent(&self) -> Option<(Usage, f64)> {
        None
    }

    /// Calls made so far by every role sharing this model's account.
    fn calls_made(&self) -> Option<u64> {
        None
    }

    /// Adds an earlier part of the run's spending to the shared account.
    fn carry(&self, _earlier: &Totals) {}

    /// The model's name when it is priced but its price is unknown.
    fn unknown_price(&self) -> Option<String> {
        None
    }

    /// Where the shared account records calls, if anywhere.
    fn recorder_path(&self) -> Option<PathBuf> {
        None
    }
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

/// Which of the three roles a call plays (recorded with every call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    Main,
    Fast,
    Edit,
}

impl RoleName {
    pub fn as_str(self) -> &'static str {
        match self {
            RoleName::Main => "main",
            RoleName::Fast => "fast",
            RoleName::Edit => "edit",
        }
    }
}

impl Models {
    /// Builds the three roles from `args`. `log_dir` is the run's
    /// log folder: when given, every call appends one line to
    /// `<log_dir>/agent_log/llm_calls.jsonl`.
    ///
    /// Roles naming the same model share one instance, so a scripted or
    /// replayed model hands out its answers in call order whichever role asks,
    /// and all roles share one account of tokens, cost and budget.
    pub fn new(args: &Config, log_dir: Option<&Path>) -> anyhow::Result<Models> {
        let main_name = match args.llm.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => anyhow::bail!(
                "no model chosen: pass --llm <MODEL>, e.g. --llm gpt-4o, --llm claude-3-5-sonnet-latest, \
                 --llm openai:<model>@http://localhost:8000/v1 for a local server, or --llm scripted:<file>"
            ),
        };
        let fast_name = args.fast_llm.clone().unwrap_or_else(|| main_name.clone());
        let edit_name = args
            .edit_script_llm
            .clone()
            .unwrap_or_else(|| main_name.clone());

        let prices = match &args.prices {
            Some(path) => PriceTable::builtin().with_overrides(path)?,
            None => PriceTable::builtin(),
        };
        let recorder = match log_dir {
            Some(dir) => Some(record::Recorder::open(dir)?),
            None => None,
        };
        let account = Arc::new(metered::Account::new(
            prices,
            cost::Budget {
                max_cost: args.max_cost,
                max_total_tokens: args.max_total_tokens,
            },
            recorder,
        ));
        if let Some(max) = args.max_cost {
            anyhow::ensure!(
                max.is_finite() && max >= 0.0,
                "--max-cost must be a number of US dollars >= 0, not {max}"
            );
        }
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let settings = metered::Settings {
            policy: RetryPolicy::new(args)?,
            base_url: args.llm_base_url.clone(),
            replay_lenient: args.replay_lenient,
            seed: args.seed,
            key_dir: cwd,
        };

        let mut backends: HashMap<String, Arc<dyn metered::Backend>> = HashMap::new();
        let mut role = |role: RoleName, name: &str| -> anyhow::Result<Arc<dyn Model>> {
            let name = name.trim();
            let backend = match backends.get(name) {
                Some(b) => b.clone(),
                None => {
                    let spec = Spec::parse(name).with_context(|| {
                        format!("cannot use model '{name}' ({})", flag_of(role))
                    })?;
                    let b = metered::build_backend(name, &spec, &settings).with_context(|| {
                        format!("cannot use model '{name}' ({})", flag_of(role))
                    })?;
                    backends.insert(name.to_string(), b.clone());
                    b
                }
            };
            Ok(Arc::new(metered::Metered::new(
                role,
                name,
                backend,
                account.clone(),
            )))
        };
        let main = role(RoleName::Main, &main_name)?;
        let fast = role(RoleName::Fast, &fast_name)?;
        let edit = role(RoleName::Edit, &edit_name)?;
        if args.max_cost.is_some() {
            // A cap that cannot be enforced must not be silently ignored.
            for (flag, m) in [
                ("--llm", &main),
                ("--fast-llm", &fast),
                ("--edit-script-llm", &edit),
            ] {
                if let Some(model) = m.unknown_price() {
                    anyhow::bail!(
                        "--max-cost cannot be enforced: no price is known for model '{model}' \
                         ({flag} {}); give its price with --prices <file.toml>, one line per model: \
                         \"{model}\" = {{ input = 0.5, output = 1.5 }} (USD per million tokens; \
                         0 for a free local model), or leave out --max-cost",
                        m.name()
                    );
                }
            }
        }
        Ok(Models {
            main,
            fast,
            edit,
            edit_max_tokens: args.edit_script_max_tokens,
            main_max_tokens: args.llm_max_tokens,
        })
    }

    /// Calls made so far by all three roles together.
    pub fn calls(&self) -> u64 {
        [&self.main, &self.fast, &self.edit]
            .iter()
            .find_map(|m| m.calls_made())
            .unwrap_or_default()
    }

    /// Counts the earlier parts of a resumed run: the calls recorded in
    /// `earlier` (the log folder being resumed) are carried into this run's
    /// `llm_calls.jsonl` when it is another folder, and the tokens, dollars
    /// and calls of every record there are added to the account, so that
    /// run.json's totals and the budgets cover the whole run.
    pub fn carry_over(&self, earlier: &Path) -> anyhow::Result<Totals> {
        let Some(path) = [&self.main, &self.fast, &self.edit]
            .iter()
            .find_map(|m| m.recorder_path())
        else {
            return Ok(Totals::default());
        };
        let old = earlier.join("agent_log").join("llm_calls.jsonl");
        if old.is_file() && !same_file(&old, &path) {
            let text =
                std::fs::read(&old).with_context(|| format!("cannot read {}", old.display()))?;
            let mut text = text;
            if !text.is_empty() && !text.ends_with(b"\n") {
                // A line torn by a crash: keep it, but on its own line.
                text.push(b'\n');
            }
            use std::io::Write as _;
            std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(&text))
                .with_context(|| {
                    format!("cannot carry {} into {}", old.display(), path.display())
                })?;
        }
        let earlier_totals = if path.is_file() {
            record::sum_records(&path)?
        } else {
            Totals::default()
        };
        self.main.carry(&earlier_totals);
        Ok(earlier_totals)
    }

    /// Tokens and US dollars spent so far by all three roles together.
    pub fn totals(&self) -> (Usage, f64) {
        [&self.main, &self.fast, &self.edit]
            .iter()
            .find_map(|m| m.spent())
            .unwrap_or_default()
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// A configuration's identity, as run.json `config` records it and eval
/// groups by: `--config-name` when given; for a replay, the replay of the
/// configuration of the run it replays; else the agent and each role's
/// provider and model name (never a base URL, port or key):
/// `research (openai:llama3)`, `research (gpt-4o; fast gpt-4o-mini)`.
pub fn config_identity(agent: &str, args: &Config) -> String {
    if let Some(name) = args.config_name.as_deref().map(str::trim) {
        if !name.is_empty() {
            return name.to_string();
        }
    }
    let Some(main) = args.llm.as_deref().map(str::trim).filter(|m| !m.is_empty()) else {
        return agent.to_string();
    };
    if let Ok(Spec::Replay(dir)) = Spec::parse(main) {
        return format!("replay of {}", spec::run_identity(&dir));
    }
    let main_id = spec::model_identity(main);
    let mut label = format!("{agent} ({main_id}");
    for (what, name) in [("fast", &args.fast_llm), ("edit", &args.edit_script_llm)] {
        if let Some(id) = name.as_deref().map(spec::model_identity) {
            if id != main_id {
                label.push_str(&format!("; {what} {id}"));
            }
        }
    }
    label.push(')');
    label
}

fn flag_of(role: RoleName) -> &'static str {
    match role {
        RoleName::Main => "--llm",
        RoleName::Fast => "--fast-llm",
        RoleName::Edit => "--edit-script-llm",
    }
}

/// Cuts `text` before the first stop sequence. Servers already stop there;
/// this covers models that accept no `stop` (OpenAI's reasoning models) and
/// the sequences past a server's limit.
fn truncate_at_stop(text: &mut String, stop: &[String]) {
    if let Some(at) = stop
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min()
    {
        text.truncate(at);
    }
}
