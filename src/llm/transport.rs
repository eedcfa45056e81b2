//! HTTP for the hosted providers: one private tokio runtime and client, and
//! the retry loop that survives a flaky API.
//!
//! Two kinds of failure are kept apart. Transport faults (408, 429, every
//! 5xx with Anthropic's 529 "overloaded", timeouts, refused or dropped
//! connections, and 2xx bodies that are not the provider's reply) are
//! retried: waits grow exponentially with jitter and are never shorter
//! than the server's `Retry-After`; a call stops after `retries` retries or
//! at its deadline, as `LlmError::Unreachable` (an infrastructure failure).
//! Model failures (an empty reply, a refusal, a content filter, a prompt
//! too long for the model) are the model's answer, not a fault: they are
//! final at once, except that an empty reply is asked again once, at once.
//! Any other 4xx fails at once with the server's own message.
//!
//! Not here: the wire format of each provider (their own modules) and the
//! records of calls (`record`).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rand::{Rng as _, SeedableRng as _};
use reqwest::header::HeaderMap;
use serde::Serialize;

use super::keys::redact;
use super::{Config, LlmError, ModelFailure};

/// How hard to try one call.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// Limit of one attempt (connect, send, read the whole reply).
    pub timeout: Duration,
    /// Limit of the whole call, waits included.
    pub deadline: Duration,
    /// First wait; each later one doubles.
    pub backoff_base: Duration,
    /// Longest wait chosen by backoff (a longer Retry-After is still honoured).
    pub backoff_max: Duration,
    /// Where the random part of each wait comes from.
    pub jitter: Jitter,
}

/// The random source of the retry waits: seeded from the run's `--seed`,
/// or from the operating system. Clones share one sequence.
#[derive(Debug, Clone)]
pub struct Jitter(std::sync::Arc<std::sync::Mutex<rand::rngs::StdRng>>);

impl Jitter {
    pub fn seeded(seed: u64) -> Jitter {
        Jitter(std::sync::Arc::new(std::sync::Mutex::new(
            rand::rngs::StdRng::seed_from_u64(seed),
        )))
    }

    /// A number in [0, 1).
    fn next(&self) -> f64 {
        let mut rng = self.0.lock().unwrap_or_else(|p| p.into_inner());
        rng.gen_range(0.0..1.0)
    }
}

impl Default for Jitter {
    fn default() -> Jitter {
        Jitter(std::sync::Arc::new(std::sync::Mutex::new(
            rand::rngs::StdRng::from_entropy(),
        )))
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 8,
            timeout: Duration::from_secs(600),
            deadline: Duration::from_secs(3600),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            jitter: Jitter::default(),
        }
    }
}

impl RetryPolicy {
    pub fn new(args: &Config) -> anyhow::Result<RetryPolicy> {
        let secs = |v: f64, flag: &str| -> anyhow::Result<Duration> {
            anyhow::ensure!(
                v.is_finite() && v >= 0.0,
                "{flag} must be a number of seconds >= 0, not {v}"
            );
            Ok(Duration::from_secs_f64(v))
        };
        let timeout = secs(args.llm_timeout, "--llm-timeout")?;
        anyhow::ensure!(!timeout.is_zero(), "--llm-timeout must be above 0 seconds");
        Ok(RetryPolicy {
            retries: args.llm_retries,
            timeout,
            deadline: secs(args.llm_deadline, "--llm-deadline")?,
            backoff_base: secs(args.llm_backoff, "--llm-backoff")?,
            backoff_max: Duration::from_secs(60),
            jitter: args.seed.map(Jitter::seeded).unwrap_or_default(),
        })
    }

    /// The wait before retry number `retry` (1-based): exponential with
    /// "equal jitter" (half fixed, half random) so that many runs hitting one
    /// rate limit do not retry in lockstep.
    fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .backoff_base
            .saturating_mul(1u32 << (retry.saturating_sub(1)).min(20));
        let capped = exp.min(self.backoff_max);
        capped.mul_f64(0.5 + 0.5 * self.jitter.next())
    }
}

/// One retry, as logged and recorded.
#[derive(Debug, Clone, Serialize)]
pub struct RetryNote {
    /// The attempt that failed (1 = the first).
    pub attempt: u32,
    pub error: String,
    /// Seconds waited before the next attempt.
    pub wait_s: f64,
}

/// A reply as it came off the wire.
pub struct HttpReply {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

/// What the provider module makes of a reply.
pub enum Fault {
    /// Worth another attempt.
    Retry {
        what: String,
        after: Option<Duration>,
    },
    /// Final.
    Fail(LlmError),
    /// An empty reply: asked again once, at once, without a wait; if that
    /// reply is empty too, the call fails with this error.
    EmptyOnce(LlmError),
}

pub fn runtime() -> Result<&'static tokio::runtime::Runtime, LlmError> {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RT.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("mlab-llm")
        .enable_all()
        .build()
        .map_err(|e| {
            LlmError::Other(format!(
                "the LLM layer could not start its tokio runtime ({e}); \
                 check the limits on threads and memory (ulimit -u, ulimit -v)"
            ))
        })?;
    // Two first callers may both build one; the loser's is dropped unused.
    Ok(RT.get_or_init(|| rt))
}

fn client() -> Result<&'static reqwest::Client, LlmError> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let c = reqwest::Client::builder()
        .user_agent(concat!("mlab/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .build()
        .map_err(|e| {
            LlmError::Other(format!(
                "the LLM layer could not build its HTTP client: {e}"
            ))
        })?;
    Ok(CLIENT.get_or_init(|| c))
}

/// POSTs `body` to `url` until `interpret` accepts a reply, retries run out
/// or the deadline passes. Non-2xx replies are classified here; 2xx ones go
/// to `interpret`. Returns the result and the retries it took.
pub fn post_json<T>(
    policy: &RetryPolicy,
    model: &str,
    url: &str,
    headers: &HeaderMap,
    body: Vec<u8>,
    interpret: impl Fn(&HttpReply) -> Result<T, Fault>,
) -> (Result<T, LlmError>, Vec<RetryNote>) {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return (Err(e), Vec::new()),
    };
    rt.block_on(async {
        let start = Instant::now();
        let mut notes: Vec<RetryNote> = Vec::new();
        let mut attempt: u32 = 0;
        let mut asked_again = false;
        loop {
            attempt += 1;
            let remaining = policy.deadline.saturating_sub(start.elapsed());
            let fault = if remaining.is_zero() {
                Fault::Retry {
                    what: "no time left before the deadline".into(),
                    after: None,
                }
            } else {
                match one_attempt(url, headers, &body, policy.timeout.min(remaining)).await {
                    Ok(reply) if (200..300).contains(&reply.status) => match interpret(&reply) {
                        Ok(v) => return (Ok(v), notes),
                        Err(f) => f,
                    },
                    Ok(reply) => classify_status(&reply),
                    Err(f) => f,
                }
            };
            let (what, after) = match fault {
                Fault::Fail(e) => return (Err(e), notes),
                Fault::EmptyOnce(e) if asked_again => return (Err(e), notes),
                Fault::EmptyOnce(e) => {
                    asked_again = true;
                    tracing::warn!("{model} gave an empty reply ({e}); asking once more");
                    notes.push(RetryNote {
                        attempt,
                        error: "the reply had no content; asked again at once".into(),
                        wait_s: 0.0,
                    });
                    continue;
                }
                Fault::Retry { what, after } => (redact(&what), after),
            };
            if attempt > policy.retries {
                return (
                    Err(LlmError::Unreachable {
                        attempts: attempt,
                        last: what,
                    }),
                    notes,
                );
            }
            let wait = policy.backoff(attempt).max(after.unwrap_or_default());
            if start.elapsed() + wait >= policy.deadline {
                let last = format!(
                    "{what} (the call's deadline of {:.0} s leaves no time to retry)",
                    policy.deadline.as_secs_f64()
                );
                return (
                    Err(LlmError::Unreachable {
                        attempts: attempt,
                        last,
                    }),
                    notes,
                );
            }
            tracing::warn!(
                "LLM call to {model} failed ({what}); retry {attempt}/{} in {:.2} s",
                policy.retries,
                wait.as_secs_f64()
            );
            notes.push(RetryNote {
                attempt,
                error: what,
                wait_s: wait.as_secs_f64(),
            });
            tokio::time::sleep(wait).await;
        }
    })
}

async fn one_attempt(
    url: &str,
    headers: &HeaderMap,
    body: &[u8],
    limit: Duration,
) -> Result<HttpReply, Fault> {
    let client = client().map_err(Fault::Fail)?;
    let send = async {
        let resp = client
            .post(url)
            .headers(headers.clone())
            .body(body.to_vec())
            .send()
            .await?;
        let status = resp.status().as_u16();
        let retry_after = retry_after(resp.headers());
        let body = resp.bytes().await?.to_vec();
        Ok::<_, reqwest::Error>(HttpReply {
            status,
            retry_after,
            body,
        })
    };
    match tokio::time::timeout(limit, send).await {
        Err(_) => Err(Fault::Retry {
            what: format!("no complete reply within {:.1} s", limit.as_secs_f64()),
            after: None,
        }),
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) if e.is_builder() => Err(Fault::Fail(LlmError::Other(format!(
            "cannot send to {url}: {}; check the base URL",
            error_chain(&e)
        )))),
        Ok(Err(e)) => Err(Fault::Retry {
            what: error_chain(&e),
            after: None,
        }),
    }
}

/// Checks a base URL; returns it without a trailing slash, with `/v1` added
/// when it has no path at all (`http://localhost:8000` means
/// `http://localhost:8000/v1`), and its host.
pub fn base_url(base: &str) -> anyhow::Result<(String, String)> {
    let base = base.trim().trim_end_matches('/');
    let url = reqwest::Url::parse(base).map_err(|e| {
        anyhow::anyhow!(
            "the base URL '{base}' is not a URL ({e}): write e.g. http://localhost:8000/v1"
        )
    })?;
    anyhow::ensure!(
        matches!(url.scheme(), "http" | "https"),
        "the base URL '{base}' must start with http:// or https://"
    );
    let host = url.host_str().unwrap_or_default().to_string();
    let base = if url.path().trim_matches('/').is_empty() {
        format!("{base}/v1")
    } else {
        base.to_string()
    };
    Ok((base, host))
}

/// The error and its causes on one line (reqwest's own message alone says
/// only "error sending request").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// `retry-after-ms` (OpenAI) or `retry-after` in seconds; HTTP dates are
/// ignored (no provider we speak sends them).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let num = |name: &str| -> Option<f64> {
        headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    if let Some(ms) = num("retry-after-ms") {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    num("retry-after").map(|s| Duration::from_secs_f64(s.min(24.0 * 3600.0)))
}

/// Reads a 2xx body as the provider's reply type. A body that is not that
/// JSON (a proxy's page, a cut-off reply) is worth another attempt.
pub fn parse_reply<T: serde::de::DeserializeOwned>(reply: &HttpReply) -> Result<T, Fault> {
    serde_json::from_slice(&reply.body).map_err(|e| Fault::Retry {
        what: format!("the reply was not valid JSON ({e})"),
        after: None,
    })
}

/// What a 2xx reply with neither text nor tool calls means: the model's
/// failure, not a transport fault. A model that ran out of tokens would do
/// so again, so that is final and names the flags to raise (`why` is the
/// provider's own reason, may be empty); any other empty reply is asked
/// again once, at once.
pub fn empty_reply(out_of_tokens: bool, why: &str) -> Fault {
    if out_of_tokens {
        return Fault::Fail(model_failure(
            ModelFailure::EmptyReply,
            format!(
                "the model spent all its max tokens before writing any text{why}: raise \
                 --llm-max-tokens or --edit-script-max-tokens"
            ),
        ));
    }
    Fault::EmptyOnce(model_failure(
        ModelFailure::EmptyReply,
        "the reply had no content (no text and no tool call), twice in a row".into(),
    ))
}

/// A model failure of `kind`, final at once.
pub fn model_failure(kind: ModelFailure, detail: String) -> LlmError {
    LlmError::Model {
        kind,
        detail: redact(&detail),
    }
}

/// What a non-2xx reply means.
pub fn classify_status(reply: &HttpReply) -> Fault {
    let message = server_message(&reply.body);
    let status = reply.status;
    if status == 408 || status == 409 || status == 429 || status >= 500 {
        return Fault::Retry {
            what: format!("HTTP {status}: {message}"),
            after: reply.retry_after,
        };
    }
    if status == 413 || is_context_length(&message) {
        return Fault::Fail(LlmError::PromptTooLong(redact(&message)));
    }
    let hint = match status {
        401 | 403 => " (check the API key and that it may use this model)",
        404 => " (check the model name and the base URL)",
        _ => "",
    };
    Fault::Fail(LlmError::Refused(redact(&format!(
        "HTTP {status}: {message}{hint}"
    ))))
}

/// Whether a failed call was the server rejecting the `tool_choice` field
/// (servers that take tools but not the choice, or not "required").
pub fn rejects_tool_choice(e: &LlmError) -> bool {
    let m = match e {
        LlmError::Refused(m) => m,
        LlmError::Unreachable { last, .. } => last,
        _ => return false,
    };
    let m = m.to_ascii_lowercase();
    m.contains("tool_choice") || m.contains("tool choice")
}

/// Whether a call sends `tool_choice`: the request asks for one, offers
/// tools, and the server has not rejected the field before.
pub fn sends_tool_choice(req: &super::Request, rejected: &std::sync::atomic::AtomicBool) -> bool {
    req.tool_choice.is_some()
        && !req.tools.is_empty()
        && !rejected.load(std::sync::atomic::Ordering::Relaxed)
}

/// Sends with `tool_choice` where [`sends_tool_choice`] says so; when the
/// server rejects it now, remembers that in `rejected`, says so and asks
/// again without it. `send` builds and posts the body for "with the
/// choice".
pub fn with_tool_choice_fallback(
    label: &str,
    req: &super::Request,
    rejected: &std::sync::atomic::AtomicBool,
    send: impl Fn(bool) -> (Result<super::metered::Reply, LlmError>, Vec<RetryNote>),
) -> super::metered::Outcome {
    use std::sync::atomic::Ordering;
    let with = sends_tool_choice(req, rejected);
    let (result, mut retries) = send(with);
    match result {
        Err(e) if with && rejects_tool_choice(&e) => {
            rejected.store(true, Ordering::Relaxed);
            tracing::warn!(
                "{label}: the server rejects tool_choice ({e}); asking again without it, \
                 and leaving it out of later calls"
            );
            retries.push(RetryNote {
                attempt: retries.len() as u32 + 1,
                error: format!("tool_choice rejected: {}", e.detail()),
                wait_s: 0.0,
            });
            let (result, more) = send(false);
            retries.extend(more);
            super::metered::Outcome { result, retries }
        }
        result => super::metered::Outcome { result, retries },
    }
}

/// Servers word it differently: OpenAI ("maximum context length",
/// code context_length_exceeded), Anthropic ("prompt is too long"), vLLM,
/// llama.cpp ("context size"), ollama, LiteLLM.
pub fn is_context_length(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "context_length_exceeded",
        "maximum context length",
        "context length",
        "context window",
        "context size",
        "prompt is too long",
        "too many tokens",
        "input is too long",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// The human part of an error body: `error.message` (OpenAI, Anthropic and
/// most compatible servers), else `message` / `error` / `detail` strings,
/// else the start of the body.
pub fn server_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let err = &v["error"];
        let pick = [
            err["message"].as_str(),
            err.as_str(),
            v["message"].as_str(),
            v["detail"].as_str(),
        ];
        if let Some(msg) = pick.into_iter().flatten().next() {
            let code = err["code"].as_str().or(err["type"].as_str());
            return match code {
                Some(code) if !msg.contains(code) => format!("{msg} [{code}]"),
                _ => msg.to_string(),
            };
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".into();
    }
    let cut: String = text.chars().take(500).collect();
    if cut.len() < text.len() {
        format!("{cut}...")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> HttpReply {
        HttpReply {
            status,
            retry_after: None,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn statuses_are_sorted_into_retry_refuse_and_too_long() {
        assert!(matches!(
            classify_status(&reply(429, "{}")),
            Fault::Retry { .. }
        ));
        assert!(matches!(
            classify_status(&reply(529, "{}")),
            Fault::Retry { .. }
        ));
        assert!(matches!(
            classify_status(&reply(
                400,
                r#"{"error":{"message":"This model's maximum context length is 8192 tokens","code":"context_length_exceeded"}}"#
            )),
            Fault::Fail(LlmError::PromptTooLong(_))
        ));
        match classify_status(&reply(
            401,
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#,
        )) {
            Fault::Fail(LlmError::Refused(m)) => {
                assert!(m.contains("HTTP 401: Incorrect API key provided"), "{m}");
                assert!(m.contains("check the API key"), "{m}");
            }
            _ => panic!("401 must be refused"),
        }
    }

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let p = RetryPolicy {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        for _ in 0..50 {
            let w1 = p.backoff(1);
            assert!(w1 >= Duration::from_millis(50) && w1 <= Duration::from_millis(100));
            let w3 = p.backoff(3);
            assert!(w3 >= Duration::from_millis(200) && w3 <= Duration::from_millis(400));
            assert!(p.backoff(30) <= Duration::from_millis(1000));
        }
    }

    #[test]
    fn a_seeded_policy_waits_the_same_each_time() {
        let waits = |seed: u64| {
            let p = RetryPolicy {
                jitter: Jitter::seeded(seed),
                ..RetryPolicy::default()
            };
            (1..6).map(|r| p.backoff(r)).collect::<Vec<_>>()
        };
        assert_eq!(waits(7), waits(7));
        assert_ne!(waits(7), waits(8));
    }

    #[test]
    fn retry_after_prefers_milliseconds_header() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
    }
}
