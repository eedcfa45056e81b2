//! What the LLM layer is built from: which models play the three roles and
//! how they are called. The front end fills it from `--llm` and friends;
//! in-process callers start from [`Config::default`] (the flags' defaults).

use std::path::PathBuf;

/// The LLM layer's configuration (one field per `mlab run` LLM flag).
#[derive(Debug, Clone)]
pub struct Config {
    /// Main model (`--llm`): `gpt-*`, `claude-*`, `openai:<model>[@<url>]`, ...
    pub llm: Option<String>,
    /// Model for summaries and Understand File (default: the main model).
    pub fast_llm: Option<String>,
    /// Model for Edit Script (AI) (default: the main model).
    pub edit_script_llm: Option<String>,
    /// Max tokens of an Edit Script reply.
    pub edit_script_max_tokens: u32,
    /// Max tokens of a main-model reply.
    pub llm_max_tokens: u32,
    /// Base URL of an OpenAI-compatible server.
    pub llm_base_url: Option<String>,
    /// Retries of a failed call.
    pub llm_retries: u32,
    /// Seconds before one HTTP attempt is abandoned and retried.
    pub llm_timeout: f64,
    /// Seconds one call may take in all, retries and waits included.
    pub llm_deadline: f64,
    /// Seconds of the first wait between retries.
    pub llm_backoff: f64,
    /// With `replay:<dir>`, warn instead of failing on a differing prompt.
    pub replay_lenient: bool,
    /// Budget in US dollars.
    pub max_cost: Option<f64>,
    /// Budget in tokens.
    pub max_total_tokens: Option<u64>,
    /// TOML price table overriding the built-in prices.
    pub prices: Option<PathBuf>,
    /// The configuration's name, which eval groups runs by.
    pub config_name: Option<String>,
    /// The run's seed: sent as `seed` to APIs that take one (OpenAI chat
    /// completions), and the seed of the retry jitter. None: unseeded.
    pub seed: Option<u64>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            llm: None,
            fast_llm: None,
            edit_script_llm: None,
            edit_script_max_tokens: 4000,
            llm_max_tokens: 2000,
            llm_base_url: None,
            llm_retries: 8,
            llm_timeout: 600.0,
            llm_deadline: 3600.0,
            llm_backoff: 1.0,
            replay_lenient: false,
            max_cost: None,
            max_total_tokens: None,
            prices: None,
            config_name: None,
            seed: None,
        }
    }
}
