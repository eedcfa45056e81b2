//! One role of a run: checks the budget before a call, hands the call to a
//! provider backend, then counts tokens and dollars, records the call and
//! writes its readable log. Every model `Models::new` returns is one
//! of these, so accounting cannot be skipped by any provider.
//!
//! Backends only talk to their provider (or file, or person); they know
//! nothing of budgets or records.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::cost::{estimate_usage, Budget, PriceTable};
use super::record::{append_text_log, RecordOut, Recorder, RequestOut};
use super::transport::{RetryNote, RetryPolicy};
use super::{
    anthropic, human, keys, openai, replay, scripted, Completion, LlmError, Model, Request,
    RoleName, Spec, ToolCall, Usage,
};

/// What a backend got back.
#[derive(Debug, Default, Clone)]
pub struct Reply {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    /// As reported by the provider (or recording); `None`: estimate it.
    pub usage: Option<Usage>,
}

/// A call's outcome and the retries it took (kept even when it failed).
pub struct Outcome {
    pub result: Result<Reply, LlmError>,
    pub retries: Vec<RetryNote>,
}

impl From<Result<Reply, LlmError>> for Outcome {
    fn from(result: Result<Reply, LlmError>) -> Outcome {
        Outcome {
            result,
            retries: Vec::new(),
        }
    }
}

/// How a backend's calls are priced.
pub enum Pricing<'a> {
    /// Scripted, replayed and human answers cost nothing.
    Free,
    /// A hosted provider's model: priced from the table, with a warning
    /// when the table does not know it.
    Listed(&'a str),
    /// A model on a server of the user's own: priced only if the table (or
    /// `--prices`) knows it, else free without complaint.
    Local(&'a str),
}

impl Pricing<'_> {
    /// A hosted provider's model: listed on the provider's public API,
    /// local on a server of the user's that speaks its protocol.
    pub fn hosted(public: bool, model: &str) -> Pricing<'_> {
        if public {
            Pricing::Listed(model)
        } else {
            Pricing::Local(model)
        }
    }
}

/// A provider, file or person that answers requests.
pub trait Backend: Send + Sync {
    /// The family, as recorded ("openai", "anthropic", ...).
    fn provider(&self) -> &'static str;
    /// How its calls are priced.
    fn pricing(&self) -> Pricing<'_>;
    fn call(&self, req: &Request, role: RoleName) -> Outcome;
}

/// What backends need from the command line.
pub struct Settings {
    pub policy: RetryPolicy,
    /// `--llm-base-url`.
    pub base_url: Option<String>,
    pub replay_lenient: bool,
    /// `seed` of OpenAI requests.
    pub seed: Option<u64>,
    /// Where the original's key files are looked for.
    pub key_dir: PathBuf,
}

pub fn build_backend(
    name: &str,
    spec: &Spec,
    settings: &Settings,
) -> anyhow::Result<Arc<dyn Backend>> {
    Ok(match spec {
        Spec::OpenAi { model, base_url } => {
            let base = base_url
                .clone()
                .or_else(|| settings.base_url.clone())
                .or_else(|| env_setting("OPENAI_BASE_URL"));
            let key = keys::openai(&settings.key_dir)?;
            Arc::new(
                openai::OpenAi::new(name, model, base.as_deref(), key, settings.policy.clone())?
                    .with_seed(settings.seed),
            )
        }
        Spec::Anthropic { model, base_url } => {
            let base = base_url
                .clone()
                .or_else(|| env_setting("ANTHROPIC_BASE_URL"));
            let key = keys::anthropic(&settings.key_dir)?;
            Arc::new(anthropic::Anthropic::new(
                name,
                model,
                base.as_deref(),
                key,
                settings.policy.clone(),
            )?)
        }
        Spec::Scripted(path) => Arc::new(scripted::Scripted::load(path)?),
        Spec::Replay(dir) => Arc::new(replay::Replay::load(dir, settings.replay_lenient)?),
        Spec::Human => Arc::new(human::Human::new()),
    })
}

/// An environment variable, unless unset or blank (a blank one is as if unset).
fn env_setting(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// What a run has spent: tokens, US dollars and calls.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub usage: Usage,
    pub cost: f64,
    /// Calls made (each one line of `llm_calls.jsonl`, failed ones too).
    pub calls: u64,
}

/// Shared by the roles of one run: prices, budget, totals and the record.
pub struct Account {
    prices: PriceTable,
    budget: Budget,
    recorder: Option<Recorder>,
    totals: Mutex<Totals>,
    warned_unpriced: Mutex<Vec<String>>,
}

impl Account {
    pub fn new(prices: PriceTable, budget: Budget, recorder: Option<Recorder>) -> Account {
        Account {
            prices,
            budget,
            recorder,
            totals: Mutex::new(Totals::default()),
            warned_unpriced: Mutex::new(Vec::new()),
        }
    }

    fn totals(&self) -> Totals {
        *self.totals.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds what earlier parts of the run spent (a resumed run), so that
    /// totals and budgets cover the whole run.
    pub fn carry(&self, earlier: &Totals) {
        let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        totals.usage.add(&earlier.usage);
        totals.cost += earlier.cost;
        totals.calls += earlier.calls;
    }

    pub fn recorder(&self) -> Option<&Recorder> {
        self.recorder.as_ref()
    }

    /// The price of `backend`'s model, when it is priced at all: `None`
    /// for free backends, `Some(None)` for a model the table does not know.
    pub fn price_of(&self, backend: &dyn Backend) -> Option<Option<super::cost::Price>> {
        match backend.pricing() {
            Pricing::Free => None,
            Pricing::Listed(m) | Pricing::Local(m) => Some(self.prices.lookup(m)),
        }
    }

    fn cost_of(&self, backend: &dyn Backend, usage: &Usage) -> f64 {
        let (model, warn) = match backend.pricing() {
            Pricing::Free => return 0.0,
            Pricing::Listed(m) => (m, true),
            Pricing::Local(m) => (m, false),
        };
        match self.prices.lookup(model) {
            Some(price) => price.cost(usage),
            None if !warn => 0.0,
            None => {
                let mut warned = self
                    .warned_unpriced
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if !warned.iter().any(|m| m == model) {
                    tracing::warn!(
                        "no price known for model '{model}': its calls count as $0; \
                         give its price with --prices <file.toml>"
                    );
                    warned.push(model.to_string());
                }
                0.0
            }
        }
    }
}

/// One role: a backend plus the shared account.
pub struct Metered {
    role: RoleName,
    name: String,
    backend: Arc<dyn Backend>,
    account: Arc<Account>,
}

impl Metered {
    pub fn new(
        role: RoleName,
        name: &str,
        backend: Arc<dyn Backend>,
        account: Arc<Account>,
    ) -> Metered {
        Metered {
            role,
            name: name.to_string(),
            backend,
            account,
        }
    }

    fn record(&self, req: &Request, outcome: &Outcome, usage: Usage, latency: f64, cost: f64) {
        let Some(recorder) = &self.account.recorder else {
            return;
        };
        let (response, tool_calls, error) = match &outcome.result {
            Ok(r) => (Some(r.text.as_str()), r.tool_calls.as_slice(), None),
            Err(e) => (None, &[][..], Some(e)),
        };
        let rec = RecordOut {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            role: self.role,
            model: &self.name,
            provider: self.backend.provider(),
            request: RequestOut {
                messages: &req.messages,
                stop: &req.stop,
                max_tokens: req.max_tokens,
                temperature: req.temperature,
                tools: &req.tools,
                tool_choice: req.tool_choice.filter(|_| !req.tools.is_empty()),
            },
            response,
            tool_calls,
            usage,
            latency_s: latency,
            retries: outcome.retries.len() as u32,
            retry_log: &outcome.retries,
            cost_usd: cost,
            error: error.map(|e| e.to_string()),
            error_kind: error.map(|e| e.kind()),
            error_detail: error.map(|e| e.detail()),
        };
        if let Err(e) = recorder.append(&rec) {
            // Losing a record must not end a five-hour run; say so loudly.
            tracing::error!("could not append to {}: {e}", recorder.path().display());
        }
    }
}

impl Model for Metered {
    fn name(&self) -> &str {
        &self.name
    }

    fn complete(&self, req: &Request) -> Result<Completion, LlmError> {
        let before = self.account.totals();
        self.account.budget.check(&before.usage, before.cost)?;
        self.check_prompt_fits_cost_cap(req, before.cost)?;

        let start = Instant::now();
        let outcome = self.backend.call(req, self.role);
        let latency = start.elapsed();

        let (usage, cost) = match &outcome.result {
            Ok(reply) => {
                let usage = reply
                    .usage
                    .unwrap_or_else(|| estimate_usage(&req.messages, &reply.text));
                (usage, self.account.cost_of(self.backend.as_ref(), &usage))
            }
            Err(_) => (Usage::default(), 0.0),
        };
        {
            let mut totals = self
                .account
                .totals
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if outcome.result.is_ok() {
                totals.usage.add(&usage);
                totals.cost += cost;
            }
            totals.calls += 1;
        }
        self.record(req, &outcome, usage, latency.as_secs_f64(), cost);

        let retries = outcome.retries.len() as u32;
        let reply = outcome.result?;
        if let Some(path) = &req.log_file {
            if let Err(e) = append_text_log(
                path,
                &self.name,
                req.max_tokens,
                &req.messages,
                &reply.text,
                &usage,
            ) {
                tracing::error!("could not write the call log {}: {e}", path.display());
            }
        }
        Ok(Completion {
            text: reply.text,
            tool_calls: reply.tool_calls,
            usage,
            latency,
            retries,
            cost_usd: cost,
        })
    }

    fn spent(&self) -> Option<(Usage, f64)> {
        let t = self.account.totals();
        Some((t.usage, t.cost))
    }

    fn calls_made(&self) -> Option<u64> {
        Some(self.account.totals().calls)
    }

    fn carry(&self, earlier: &Totals) {
        self.account.carry(earlier);
    }

    fn unknown_price(&self) -> Option<String> {
        match self.account.price_of(self.backend.as_ref()) {
            Some(None) => Some(self.model_name().to_string()),
            _ => None,
        }
    }

    fn recorder_path(&self) -> Option<PathBuf> {
        self.account.recorder().map(|r| r.path().to_path_buf())
    }
}

impl Metered {
    /// The provider's name of the model (what is priced).
    fn model_name(&self) -> &str {
        match self.backend.pricing() {
            Pricing::Listed(m) | Pricing::Local(m) => m,
            Pricing::Free => &self.name,
        }
    }

    /// With `--max-cost`, a call whose prompt alone would pass the cap is
    /// not sent: the prompt's tokens are estimated and priced first.
    fn check_prompt_fits_cost_cap(&self, req: &Request, spent: f64) -> Result<(), LlmError> {
        let Some(max) = self.account.budget.max_cost else {
            return Ok(());
        };
        let Some(Some(price)) = self.account.price_of(self.backend.as_ref()) else {
            return Ok(());
        };
        let prompt = estimate_usage(&req.messages, "");
        let cost = price.cost(&prompt);
        if spent + cost > max {
            return Err(LlmError::Budget(format!(
                "${spent:.4} spent and this call's prompt alone (about {} tokens) costs about \
                 ${cost:.4}, past --max-cost ${max:.4}; the call was not sent",
                prompt.input_tokens
            )));
        }
        Ok(())
    }
}
