//! Flags that choose and bound the language models (the LLM layer's options).

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use mlab::llm::check::CheckConfig;
use mlab::llm::{Config, ToolChoice};

/// `--tool-choice` values (mirrors `mlab::llm::ToolChoice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolChoiceArg {
    /// The model may answer in text instead.
    Auto,
    /// The model must call a tool (OpenAI `"required"`, Anthropic `{"type":"any"}`).
    Required,
}

impl From<ToolChoiceArg> for ToolChoice {
    fn from(c: ToolChoiceArg) -> ToolChoice {
        match c {
            ToolChoiceArg::Auto => ToolChoice::Auto,
            ToolChoiceArg::Required => ToolChoice::Required,
        }
    }
}

/// Which models play the three roles of the original, and how they are called.
/// Serialized (by field name) into run.json's `flags`.
#[derive(Debug, Args, Clone, serde::Serialize)]
pub struct LlmArgs {
    /// Main model: gpt-*, o1*/o3*/o4*, claude-*, openai:<model>[@<base-url>],
    /// anthropic:<model>, scripted:<file>, replay:<run log dir>, human.
    /// (`--llm-name`, the original runner's flag, works too.)
    #[arg(long, visible_alias = "llm-name", value_name = "MODEL")]
    pub llm: Option<String>,

    /// Model for summaries and Understand File (default: the main model).
    #[arg(long, visible_alias = "fast-llm-name", value_name = "MODEL")]
    pub fast_llm: Option<String>,

    /// Model for Edit Script (AI) (default: the main model).
    #[arg(long, visible_alias = "edit-script-llm-name", value_name = "MODEL")]
    pub edit_script_llm: Option<String>,

    /// Max tokens of an Edit Script reply.
    #[arg(
        long,
        visible_alias = "edit-script-llm-max-tokens",
        default_value_t = 4000
    )]
    pub edit_script_max_tokens: u32,

    /// Max tokens of a main-model reply.
    #[arg(long, default_value_t = 2000)]
    pub llm_max_tokens: u32,

    /// Base URL of an OpenAI-compatible server (default: $OPENAI_BASE_URL,
    /// then the public API).
    #[arg(long, value_name = "URL")]
    pub llm_base_url: Option<String>,

    /// Retries of a failed call (429, 5xx, timeouts, dropped connections).
    #[arg(long, default_value_t = 8)]
    pub llm_retries: u32,

    /// Seconds before one HTTP attempt is abandoned and retried.
    #[arg(long, default_value_t = 600.0)]
    pub llm_timeout: f64,

    /// Seconds one call may take in all, retries and waits included; past it
    /// the call fails even if retries are left.
    #[arg(long, default_value_t = 3600.0, value_name = "SECS")]
    pub llm_deadline: f64,

    /// Seconds of the first wait between retries; each later wait doubles
    /// (with jitter, at most 60 s, and never shorter than a Retry-After).
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub llm_backoff: f64,

    /// With replay:<dir>, warn instead of failing when a prompt differs from
    /// the recording.
    #[arg(long)]
    pub replay_lenient: bool,

    /// End the run before a call once this many US dollars were spent.
    #[arg(long, value_name = "USD")]
    pub max_cost: Option<f64>,

    /// End the run before a call once this many tokens were used.
    #[arg(long, value_name = "N")]
    pub max_total_tokens: Option<u64>,

    /// TOML price table overriding the built-in prices (USD per million
    /// input and output tokens per model).
    #[arg(long, value_name = "FILE")]
    #[serde(serialize_with = "path_text")]
    pub prices: Option<PathBuf>,

    /// The configuration's name, which `mlab eval` groups runs by (default:
    /// the agent and each model's provider and name, without base URL).
    #[arg(long, value_name = "NAME")]
    pub config_name: Option<String>,

    /// Whether the tools agent requires a tool call (`required`; Anthropic's
    /// `any`) or lets the model choose (`auto`). A server that rejects the
    /// field is asked again without it.
    #[arg(long, value_enum, default_value_t = ToolChoiceArg::Required)]
    pub tool_choice: ToolChoiceArg,
}

impl LlmArgs {
    /// The LLM layer's configuration; `seed` is the run's `--seed` (none
    /// outside a run). `--tool-choice` is the agents' (`agent::Options`).
    pub fn config(&self, seed: Option<u64>) -> Config {
        Config {
            llm: self.llm.clone(),
            fast_llm: self.fast_llm.clone(),
            edit_script_llm: self.edit_script_llm.clone(),
            edit_script_max_tokens: self.edit_script_max_tokens,
            llm_max_tokens: self.llm_max_tokens,
            llm_base_url: self.llm_base_url.clone(),
            llm_retries: self.llm_retries,
            llm_timeout: self.llm_timeout,
            llm_deadline: self.llm_deadline,
            llm_backoff: self.llm_backoff,
            replay_lenient: self.replay_lenient,
            max_cost: self.max_cost,
            max_total_tokens: self.max_total_tokens,
            prices: self.prices.clone(),
            config_name: self.config_name.clone(),
            seed,
        }
    }
}

#[derive(Debug, Args)]
pub struct LlmCheckArgs {
    #[command(flatten)]
    pub llm: LlmArgs,

    /// Also record the calls as a run would, under <DIR>/agent_log/
    /// (llm_calls.jsonl and a readable log per call).
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,

    /// Exit 0 even when a model answers but does not follow the one-line
    /// instruction (it is still reported as a warning).
    #[arg(long)]
    pub lenient: bool,
}

impl From<&LlmCheckArgs> for CheckConfig {
    fn from(a: &LlmCheckArgs) -> CheckConfig {
        CheckConfig {
            llm: a.llm.config(None),
            log_dir: a.log_dir.clone(),
            lenient: a.lenient,
        }
    }
}

/// A path as run.json records it: its text, lossily for a name that is not
/// UTF-8 (serde's own refuses those).
pub fn path_text<S: serde::Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => s.serialize_str(&p.to_string_lossy()),
        None => s.serialize_none(),
    }
}
