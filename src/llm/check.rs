//! `mlab llm-check`: one tiny request to each model named, printing model,
//! latency, tokens, cost and the start of the reply, or the exact error and
//! what to fix. Retries are capped at two here so that a wrong URL fails in
//! seconds.
//!
//! The request asks for one known word. A model that answers something else
//! is reachable but did not follow a one-line instruction, which an agent's
//! format needs far more of: that is a warning and exit 1, unless
//! `--lenient`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{Config, LlmError, Model, Models, Request};

/// What `mlab llm-check` checks, and how.
#[derive(Debug, Clone, Default)]
pub struct CheckConfig {
    pub llm: Config,
    /// Also record the calls as a run would, under `<log_dir>/agent_log/`.
    pub log_dir: Option<PathBuf>,
    /// Exit 0 even when a model answers but does not follow the instruction.
    pub lenient: bool,
}

const PROMPT: &str = "This is a connection check. Reply with the single word: ready";
/// The word `PROMPT` asks for.
const EXPECTED: &str = "ready";
/// Lines of the reply printed (the rest is counted, not shown).
const REPLY_LINES: usize = 3;
/// Characters of one printed reply line.
const LINE_CHARS: usize = 200;

/// Whether `reply` is the expected word, allowing case, surrounding
/// whitespace, quotes, markdown emphasis and a final full stop.
pub fn followed(reply: &str) -> bool {
    let word = reply.trim().trim_matches(|c: char| {
        matches!(c, '"' | '\'' | '`' | '*' | '_' | '.' | '!') || c.is_whitespace()
    });
    word.eq_ignore_ascii_case(EXPECTED)
}

/// At most `REPLY_LINES` lines of the reply, each cut at `LINE_CHARS`, and
/// how much was left out.
pub fn shown_reply(reply: &str) -> String {
    let lines: Vec<&str> = reply.trim().lines().collect();
    let mut out: Vec<String> = lines
        .iter()
        .take(REPLY_LINES)
        .map(|l| {
            let n = l.chars().count();
            if n > LINE_CHARS {
                let cut: String = l.chars().take(LINE_CHARS).collect();
                format!("{cut}... ({} more characters)", n - LINE_CHARS)
            } else {
                l.to_string()
            }
        })
        .collect();
    if lines.len() > REPLY_LINES {
        out.push(format!("... ({} more lines)", lines.len() - REPLY_LINES));
    }
    out.join("\n         ")
}

pub fn run(args: &CheckConfig) -> anyhow::Result<ExitCode> {
    let mut llm = args.llm.clone();
    llm.llm_retries = llm.llm_retries.min(2);
    let models = Models::new(&llm, args.log_dir.as_deref())?;

    let main_name = models.main.name().to_string();
    let mut checks: Vec<(&str, &dyn Model)> = vec![("--llm", models.main.as_ref())];
    for (flag, model) in [
        ("--fast-llm", models.fast.as_ref()),
        ("--edit-script-llm", models.edit.as_ref()),
    ] {
        if model.name() != main_name && !checks.iter().any(|(_, m)| m.name() == model.name()) {
            checks.push((flag, model));
        }
    }

    let mut failed = false;
    let mut disobeyed = false;
    for (i, (flag, model)) in checks.iter().enumerate() {
        if i > 0 {
            crate::ui::outln!();
        }
        let mut req = Request::prompt(PROMPT, 512);
        req.temperature = 0.0;
        if let Some(dir) = &args.log_dir {
            req.log_file = Some(dir.join("agent_log").join(format!("llm_check_{i}.log")));
        }
        crate::ui::outln!("model:   {} ({flag})", model.name());
        match model.complete(&req) {
            Ok(c) => {
                crate::ui::outln!(
                    "latency: {:.2} s, {} {}",
                    c.latency.as_secs_f64(),
                    c.retries,
                    if c.retries == 1 { "retry" } else { "retries" }
                );
                crate::ui::outln!(
                    "tokens:  {} input, {} output{}",
                    c.usage.input_tokens,
                    c.usage.output_tokens,
                    if c.usage.estimated {
                        " (estimated)"
                    } else {
                        ""
                    }
                );
                match model.unknown_price() {
                    Some(name) => crate::ui::outln!(
                        "cost:    unknown (no price known for '{name}'; --max-cost needs one: \
                         give it with --prices <file.toml>)"
                    ),
                    None => crate::ui::outln!("cost:    ${:.6}", c.cost_usd),
                }
                crate::ui::outln!("reply:   {}", shown_reply(&c.text));
                if followed(&c.text) {
                    crate::ui::outln!("format:  followed the instruction (replied \"{EXPECTED}\")");
                } else {
                    disobeyed = true;
                    eprintln!(
                        "warning: {} ({flag}) is reachable, but did not follow a one-line instruction: \
                         asked to reply with the single word \"{EXPECTED}\", it replied otherwise; \
                         an agent needs it to follow a reply format (pass --lenient to accept it)",
                        model.name()
                    );
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("error: {} ({flag}): {e}", model.name());
                eprintln!("fix:   {}", hint(&e));
            }
        }
    }
    if checks.len() > 1 {
        let (usage, cost) = models.totals();
        crate::ui::outln!(
            "\ntotal:   {} input, {} output tokens, ${cost:.6}",
            usage.input_tokens,
            usage.output_tokens
        );
    }
    Ok(if failed || (disobeyed && !args.lenient) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// What to do about an error, in one line.
fn hint(e: &LlmError) -> &'static str {
    match e {
        LlmError::Refused(m) if m.contains("HTTP 401") || m.contains("HTTP 403") => {
            "check the API key (OPENAI_API_KEY or ./openai_api_key.txt; ANTHROPIC_API_KEY or \
             ./claude_api_key.txt) and that it may use this model"
        }
        LlmError::Refused(m) if m.contains("HTTP 404") => {
            "check the model name and the base URL (--llm-base-url, OPENAI_BASE_URL, \
             ANTHROPIC_BASE_URL, or openai:<model>@<url>; OpenAI-compatible URLs end in /v1)"
        }
        LlmError::Refused(_) => {
            "the server refused the request as sent; its message above says why"
        }
        LlmError::Unreachable { .. } => {
            "check that the server is running and the base URL is right; if it is overloaded or \
             rate limiting, try again later (a run retries --llm-retries times)"
        }
        LlmError::PromptTooLong(_) => {
            "even this tiny prompt does not fit: check the server's context length setting"
        }
        LlmError::Budget(_) => "raise --max-cost or --max-total-tokens",
        LlmError::Script(_) => "fix the file named above",
        LlmError::Model { .. } => {
            "the server works, but the model gave no usable answer: try another model, or a \
             larger --llm-max-tokens"
        }
        LlmError::Other(_) => "see the message above",
    }
}
