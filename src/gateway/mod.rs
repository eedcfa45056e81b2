//! The LLM gateway: how a program mlab did not write (aider, Codex CLI, Claude
//! Code, mini-swe-agent, ...) reaches a model from inside the sandbox without
//! ever holding the API key.
//!
//! mlab serves HTTP/1.1 on a unix socket ([`start`]); the socket is bound into
//! the sandbox, where `mlab gateway-forward` ([`forward::forward`]) listens on
//! 127.0.0.1 in the sandbox's own network namespace and relays each TCP
//! connection to the socket. The program is pointed at it with ordinary
//! settings (`OPENAI_BASE_URL=http://127.0.0.1:PORT/v1`,
//! `ANTHROPIC_BASE_URL=http://127.0.0.1:PORT`, a dummy key).
//!
//! # Routes
//!
//! | route | wire format |
//! | --- | --- |
//! | `POST /v1/chat/completions` | OpenAI Chat Completions ([`Wire::OpenAiChat`]) |
//! | `POST /v1/responses` | OpenAI Responses ([`Wire::OpenAiResponses`]) |
//! | `POST /v1/messages` | Anthropic Messages ([`Wire::Anthropic`]) |
//! | `POST /v1/messages/count_tokens` | Anthropic token counting: forwarded, free, not a call (no record, no `on_call`) |
//! | `GET /v1/models` | the allowed models, listed by the gateway itself |
//!
//! The `/v1` prefix may be left out. Anything else gets a 404 JSON error, in
//! Anthropic's shape when the request carries `anthropic-version` or
//! `x-api-key`, else in OpenAI's.
//!
//! # Forwarding
//!
//! A call goes to the provider of its wire family: the base URL of an
//! `openai:<model>@<url>` / `anthropic:<model>@<url>` spelling of that model
//! in the [`crate::llm::Config`], else (OpenAI) `--llm-base-url`, else
//! `$OPENAI_BASE_URL` / `$ANTHROPIC_BASE_URL`, else the public API. The real
//! key comes from mlab's key lookup (environment, then the original's key
//! files in [`GatewayConfig::key_dir`]) and is sent as `Authorization: Bearer`
//! (OpenAI, with `OpenAI-Organization` when known) or `x-api-key` (Anthropic,
//! with the client's `anthropic-version`, else `2023-06-01`). The client's own
//! key headers (`authorization`, `x-api-key`, `api-key`, organisation and
//! project) are dropped, as are hop-by-hop headers and `accept-encoding` (so
//! the provider answers uncompressed and the gateway can read usage).
//!
//! Request and reply bodies pass through byte-exact, with one exception: a
//! reply that contains the real key (a provider echoing it in an error) has
//! it replaced by `<hidden key>`. The gateway does not retry: the client's
//! SDK does. A provider that cannot be reached gets the client a 502 in its
//! wire format.
//!
//! # Streaming
//!
//! A reply whose content type is `text/event-stream` is relayed event by
//! event as the events arrive (an event is forwarded once its closing blank
//! line has arrived), while the gateway reads each event on the side for the
//! reply's text, tool calls and usage. The terminal event (`data: [DONE]` for
//! Chat Completions, `response.completed` / `.incomplete` / `.failed` for
//! Responses, `message_stop` for Anthropic) and anything after it are held
//! back until the upstream stream has ended and the call is recorded and
//! `on_call` has returned, so the client cannot move on before its step is
//! closed. Usage of a stream: Chat Completions, the chunk with `usage`
//! (present only when the client asked for `stream_options.include_usage`;
//! the gateway never changes the request, so without it the tokens are
//! *estimated* from the text, about four characters a token, and the record
//! says `"estimated": true`); Responses, `response.completed`'s
//! `response.usage`; Anthropic, `message_start`'s usage updated by
//! `message_delta`'s.
//!
//! # Metering
//!
//! Every call, refused ones too, is one line of
//! `<log_dir>/agent_log/llm_calls.jsonl` in the record format of mlab's own
//! agents (`llm::record::RecordOut`: time, role `main`, model, provider,
//! request messages as text, response text, tool calls, usage, latency, cost,
//! error), plus a `gateway` object: `index`, `wire`, `streamed`, `status`,
//! `refused` and the client's request body (`body`, as JSON). Budgets
//! ([`GatewayConfig::max_cost`], [`GatewayConfig::max_total_tokens`]) are
//! checked before each call: once spent, calls get HTTP 402 with an error
//! naming the flag (OpenAI `insufficient_quota`, Anthropic `billing_error`)
//! and [`Gateway::budget_spent`] is true, so the run can end with its budget
//! exit reason. A model not in [`GatewayConfig::allowed_models`] gets HTTP 403
//! listing the allowed ones.
//!
//! # API (stable: the `program` agent builds on it)
//!
//! ```text
//! let cfg = GatewayConfig::new(socket, llm_config, log_dir)?;   // defaults from --llm etc.
//! let gw = gateway::start(cfg, Arc::new(|call: &CallRecord| { /* snapshot */ }))?;
//! gw.totals(); gw.budget_spent(); gw.stop();
//! // inside the sandbox: `mlab gateway-forward --socket S --port P`, and
//! // the program's environment from gateway::client_env(P).
//! ```
//!
//! `on_call` runs once per call (refused calls included, with
//! [`CallRecord::refused`] set), one at a time, in [`CallRecord::index`]
//! order, after the call's line is written and before the client receives
//! the end of its reply.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use serde::Serialize;

use crate::llm::cost::{Budget, PriceTable};
use crate::llm::keys::ApiKey;
use crate::llm::record::Recorder;
use crate::llm::{Config, Spec, ToolCall, Totals, Usage};

pub mod forward;
mod server;
mod wire;

/// The key a client in the sandbox is given: any text would do, the
/// gateway drops it.
pub const DUMMY_KEY: &str = "sk-mlab-gateway-dummy-key";

/// The environment that points the usual SDKs (OpenAI, Anthropic, LiteLLM)
/// at a forwarder listening on 127.0.0.1:`port`, with the dummy key.
pub fn client_env(port: u16) -> Vec<(&'static str, String)> {
    let base = format!("http://127.0.0.1:{port}");
    vec![
        ("OPENAI_BASE_URL", format!("{base}/v1")),
        ("OPENAI_API_BASE", format!("{base}/v1")),
        ("OPENAI_API_KEY", DUMMY_KEY.to_string()),
        ("ANTHROPIC_BASE_URL", base),
        ("ANTHROPIC_API_KEY", DUMMY_KEY.to_string()),
    ]
}

/// The three wire formats the gateway speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Wire {
    /// `POST /v1/chat/completions`
    #[serde(rename = "openai-chat")]
    OpenAiChat,
    /// `POST /v1/responses`
    #[serde(rename = "openai-responses")]
    OpenAiResponses,
    /// `POST /v1/messages`
    #[serde(rename = "anthropic")]
    Anthropic,
}

impl Wire {
    pub fn as_str(self) -> &'static str {
        match self {
            Wire::OpenAiChat => "openai-chat",
            Wire::OpenAiResponses => "openai-responses",
            Wire::Anthropic => "anthropic",
        }
    }

    /// The provider family, as `llm_calls.jsonl` records it.
    pub fn provider(self) -> &'static str {
        match self {
            Wire::OpenAiChat | Wire::OpenAiResponses => "openai",
            Wire::Anthropic => "anthropic",
        }
    }
}

/// What the gateway needs. [`GatewayConfig::new`] fills it from the run's
/// LLM flags; change fields afterwards as needed.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Where to listen (a stale socket there is replaced; any other file is
    /// an error).
    pub socket: PathBuf,
    /// The run's LLM configuration: the providers' base URLs, `--prices`,
    /// `--llm-timeout` (the longest wait for the next byte of a reply).
    pub llm: Config,
    /// Model names (as the client sends them in `model`) the gateway
    /// forwards; empty: any model.
    pub allowed_models: Vec<String>,
    /// `--max-cost`, US dollars.
    pub max_cost: Option<f64>,
    /// `--max-total-tokens`.
    pub max_total_tokens: Option<u64>,
    /// The run's log folder: calls go to `<log_dir>/agent_log/llm_calls.jsonl`.
    pub log_dir: PathBuf,
    /// Where the original's key files are looked for (default: the current
    /// directory).
    pub key_dir: PathBuf,
    /// What earlier parts of a resumed run spent (counts toward budgets and
    /// totals; indices continue after its calls).
    pub spent_before: Totals,
}

impl GatewayConfig {
    /// Defaults from the LLM flags: the allowed models are the wire names
    /// of `--llm`, `--fast-llm` and `--edit-script-llm`; the budgets are
    /// `--max-cost` and `--max-total-tokens`; keys are looked for in the
    /// current directory.
    pub fn new(socket: PathBuf, llm: Config, log_dir: PathBuf) -> anyhow::Result<GatewayConfig> {
        let allowed_models = default_allowed_models(&llm)?;
        let key_dir = std::env::current_dir().context("cannot read the current directory")?;
        Ok(GatewayConfig {
            socket,
            allowed_models,
            max_cost: llm.max_cost,
            max_total_tokens: llm.max_total_tokens,
            llm,
            log_dir,
            key_dir,
            spent_before: Totals::default(),
        })
    }
}

/// The model names a client would send for `--llm`, `--fast-llm` and
/// `--edit-script-llm` (`openai:llama3@http://...` is `llama3`).
pub fn default_allowed_models(llm: &Config) -> anyhow::Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for name in [&llm.llm, &llm.fast_llm, &llm.edit_script_llm]
        .into_iter()
        .flatten()
    {
        let model = match Spec::parse(name)
            .with_context(|| format!("the gateway cannot serve model '{name}'"))?
        {
            Spec::OpenAi { model, .. } | Spec::Anthropic { model, .. } => model,
            _ => anyhow::bail!(
                "the gateway forwards to a model provider; '{name}' is not one: \
                 use gpt-*, claude-*, openai:<model>[@<url>] or anthropic:<model>[@<url>]"
            ),
        };
        if !out.contains(&model) {
            out.push(model);
        }
    }
    anyhow::ensure!(
        !out.is_empty(),
        "no model chosen for the gateway: pass --llm <MODEL>, e.g. --llm gpt-4o"
    );
    Ok(out)
}

/// One call through the gateway, as `on_call` sees it.
#[derive(Debug, Clone)]
pub struct CallRecord {
    /// 0-based, in the order calls completed (and were written); continues
    /// after [`GatewayConfig::spent_before`]'s calls.
    pub index: usize,
    pub wire: Wire,
    /// The `model` of the request ("" when it had none).
    pub model: String,
    /// The client's request body (`null` when it was not JSON).
    pub request: serde_json::Value,
    /// The reply's text and tool calls as one text (for a trace
    /// observation); for a failure, the error.
    pub reply_summary: String,
    /// The reply's text alone.
    pub reply_text: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    pub cost_usd: f64,
    pub streamed: bool,
    /// The HTTP status the client got.
    pub status: u16,
    /// Why the gateway refused the call itself (budget, model not allowed,
    /// bad request, no upstream); `None` when it was forwarded.
    pub refused: Option<String>,
    /// The error of a call that failed (refused, or the provider's error).
    pub error: Option<String>,
    pub latency_s: f64,
}

/// Called once per call, before the client gets the end of its reply.
pub type OnCall = Arc<dyn Fn(&CallRecord) + Send + Sync>;

/// A provider the gateway forwards to.
#[derive(Debug, Clone)]
struct Upstream {
    /// Without a trailing slash; ends in `/v1` for Anthropic.
    base: String,
    key: Option<ApiKey>,
    /// The provider's public API (priced, key required).
    public: bool,
}

struct Book {
    totals: Totals,
    next_index: usize,
}

/// State shared by the server's tasks.
struct Shared {
    allowed: Vec<String>,
    budget: Budget,
    prices: PriceTable,
    /// Per model with its own base URL, then the family defaults.
    model_upstreams: Vec<(String, Wire, Upstream)>,
    openai: Result<Upstream, String>,
    anthropic: Result<Upstream, String>,
    client: reqwest::Client,
    recorder: Recorder,
    on_call: OnCall,
    book: Mutex<Book>,
    /// Held while a call is closed (its line written, `on_call` run).
    order: Mutex<()>,
    budget_refused: AtomicBool,
}

/// The running gateway; [`Gateway::stop`] (or dropping it) ends it and
/// removes the socket.
pub struct Gateway {
    shared: Arc<Shared>,
    socket: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Gateway {
    /// Tokens, dollars and calls so far (earlier parts of the run included).
    pub fn totals(&self) -> Totals {
        self.shared.book().totals
    }

    /// True once a budget is reached (further calls are refused).
    pub fn budget_spent(&self) -> bool {
        let totals = self.totals();
        self.shared.budget_refused.load(Ordering::SeqCst)
            || self
                .shared
                .budget
                .check(&totals.usage, totals.cost)
                .is_err()
    }

    /// The socket it listens on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Stops accepting, ends the server's thread and removes the socket.
    /// Calls in flight are cut off.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

impl Shared {
    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Starts the gateway on its own thread and runtime; returns once it
/// listens on `cfg.socket`.
pub fn start(cfg: GatewayConfig, on_call: OnCall) -> anyhow::Result<Gateway> {
    if let Some(max) = cfg.max_cost {
        anyhow::ensure!(
            max.is_finite() && max >= 0.0,
            "--max-cost must be a number of US dollars >= 0, not {max}"
        );
    }
    let prices = match &cfg.llm.prices {
        Some(path) => PriceTable::builtin().with_overrides(path)?,
        None => PriceTable::builtin(),
    };
    let (model_upstreams, openai, anthropic) = upstreams(&cfg)?;
    if cfg.max_cost.is_some() {
        // A cap that cannot be enforced must not be silently ignored.
        for (model, wire, up) in &model_upstreams {
            if up.public && prices.lookup(model).is_none() {
                anyhow::bail!(
                    "--max-cost cannot be enforced: no price is known for model '{model}' \
                     ({} API); give its price with --prices <file.toml>, one line per model: \
                     \"{model}\" = {{ input = 0.5, output = 1.5 }} (USD per million tokens), \
                     or leave out --max-cost",
                    wire.provider()
                );
            }
        }
    }
    let client = reqwest::Client::builder()
        .user_agent(concat!("mlab-gateway/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(30))
        .read_timeout(std::time::Duration::from_secs_f64(
            cfg.llm.llm_timeout.max(1.0),
        ))
        .tcp_nodelay(true)
        .build()
        .context("the gateway could not build its HTTP client")?;
    let recorder = Recorder::open(&cfg.log_dir)?;
    let listener = bind(&cfg.socket)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("mlab-gateway")
        .enable_all()
        .build()
        .context(
            "the gateway could not start its tokio runtime; check the limits on threads \
             and memory (ulimit -u, ulimit -v)",
        )?;
    let shared = Arc::new(Shared {
        allowed: cfg.allowed_models.clone(),
        budget: Budget {
            max_cost: cfg.max_cost,
            max_total_tokens: cfg.max_total_tokens,
        },
        prices,
        model_upstreams,
        openai,
        anthropic,
        client,
        recorder,
        on_call,
        book: Mutex::new(Book {
            totals: cfg.spent_before,
            next_index: usize::try_from(cfg.spent_before.calls).unwrap_or(usize::MAX),
        }),
        order: Mutex::new(()),
        budget_refused: AtomicBool::new(false),
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sh = shared.clone();
    let thread = std::thread::Builder::new()
        .name("mlab-gateway".into())
        .spawn(move || {
            runtime.block_on(server::serve(listener, sh, rx));
            // Calls still streaming are cut off rather than waited for.
            runtime.shutdown_background();
        })
        .context("the gateway could not start its thread")?;
    Ok(Gateway {
        shared,
        socket: cfg.socket,
        shutdown: Some(tx),
        thread: Some(thread),
    })
}

fn bind(socket: &Path) -> anyhow::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::FileTypeExt as _;
    if let Ok(meta) = std::fs::symlink_metadata(socket) {
        anyhow::ensure!(
            meta.file_type().is_socket(),
            "cannot serve the gateway at {}: a file that is not a socket is there; \
             remove it or choose another path",
            socket.display()
        );
        std::fs::remove_file(socket)
            .with_context(|| format!("cannot remove the stale socket {}", socket.display()))?;
    }
    let listener = std::os::unix::net::UnixListener::bind(socket)
        .with_context(|| format!("cannot listen on the unix socket {}", socket.display()))?;
    listener
        .set_nonblocking(true)
        .context("cannot make the gateway's socket non-blocking")?;
    Ok(listener)
}

type Upstreams = (
    Vec<(String, Wire, Upstream)>,
    Result<Upstream, String>,
    Result<Upstream, String>,
);

/// The providers: one per model of the configuration, and a default per
/// family (whose failure, such as a missing key, is an error at start only
/// when a configured model needs it, else at the call).
fn upstreams(cfg: &GatewayConfig) -> anyhow::Result<Upstreams> {
    use crate::llm::{anthropic, keys, openai, transport};
    let env = |var: &str| std::env::var(var).ok().filter(|v| !v.trim().is_empty());
    let make = |wire: Wire, base: Option<String>| -> anyhow::Result<Upstream> {
        match wire {
            Wire::Anthropic => {
                let base = base
                    .or_else(|| env("ANTHROPIC_BASE_URL"))
                    .unwrap_or_else(|| anthropic::PUBLIC_BASE.to_string());
                let (base, host) = transport::base_url(&base)?;
                let base = if base.ends_with("/v1") {
                    base
                } else {
                    format!("{base}/v1")
                };
                let public = host == "api.anthropic.com";
                let key = keys::anthropic(&cfg.key_dir)?;
                if key.is_none() && public {
                    return Err(keys::missing_anthropic());
                }
                Ok(Upstream { base, key, public })
            }
            _ => {
                let base = base
                    .or_else(|| cfg.llm.llm_base_url.clone())
                    .or_else(|| env("OPENAI_BASE_URL"))
                    .unwrap_or_else(|| openai::PUBLIC_BASE.to_string());
                let (base, host) = transport::base_url(&base)?;
                let public = host == "api.openai.com";
                let key = keys::openai(&cfg.key_dir)?;
                if key.is_none() && public {
                    return Err(keys::missing_openai());
                }
                Ok(Upstream { base, key, public })
            }
        }
    };
    let mut per_model = Vec::new();
    for name in [&cfg.llm.llm, &cfg.llm.fast_llm, &cfg.llm.edit_script_llm]
        .into_iter()
        .flatten()
    {
        let (model, wire, base) = match Spec::parse(name) {
            Ok(Spec::OpenAi { model, base_url }) => (model, Wire::OpenAiChat, base_url),
            Ok(Spec::Anthropic { model, base_url }) => (model, Wire::Anthropic, base_url),
            _ => continue,
        };
        if per_model.iter().any(|(m, _, _)| *m == model) {
            continue;
        }
        let up = make(wire, base)
            .with_context(|| format!("the gateway cannot forward model '{name}'"))?;
        per_model.push((model, wire, up));
    }
    let openai = make(Wire::OpenAiChat, None).map_err(|e| format!("{e:#}"));
    let anthropic = make(Wire::Anthropic, None).map_err(|e| format!("{e:#}"));
    Ok((per_model, openai, anthropic))
}

impl Shared {
    /// The provider for `model` over `wire`.
    fn upstream(&self, wire: Wire, model: &str) -> Result<&Upstream, String> {
        let family = wire.provider();
        if let Some((_, _, up)) = self
            .model_upstreams
            .iter()
            .find(|(m, w, _)| m == model && w.provider() == family)
        {
            return Ok(up);
        }
        match wire {
            Wire::Anthropic => self.anthropic.as_ref().map_err(Clone::clone),
            _ => self.openai.as_ref().map_err(Clone::clone),
        }
    }
}
