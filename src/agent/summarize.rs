//! Shortening what the agent keeps of a long observation: over 5,000
//! characters, the fast model summarises it in blocks of 10,000 characters
//! and, when there are several, merges the block summaries. Only the
//! agent's copy is shortened; trace.json keeps the full text.
//!
//! Also the research log's per-step summary (retrieval mode).

use std::path::Path;

use crate::llm::{LlmError, Models, Request};
use crate::prompts::PromptSet;

/// Observations longer than this (in characters) are summarised.
pub const SUMMARY_THRESHOLD: usize = 5000;
/// Characters per block sent to the fast model.
pub const BLOCK_CHARS: usize = 10_000;
/// Max tokens of a summary.
const SUMMARY_MAX_TOKENS: u32 = 2000;

/// The observation as the agent keeps it: unchanged when short, else a
/// summary made by the fast model (calls logged to `log_file`).
pub fn shorten_observation(
    set: &PromptSet,
    models: &Models,
    action_text: &str,
    observation: &str,
    log_file: &Path,
) -> Result<String, LlmError> {
    let chars: Vec<(usize, char)> = observation.char_indices().collect();
    if chars.len() <= SUMMARY_THRESHOLD {
        return Ok(observation.to_string());
    }
    let mut summaries = Vec::new();
    for (k, block) in chars.chunks(BLOCK_CHARS).enumerate() {
        let from = k * BLOCK_CHARS;
        let to = from + block.len();
        let text: String = block.iter().map(|(_, c)| c).collect();
        let prompt = set.render(
            "summarize_block.txt",
            &[
                ("action", action_text),
                ("from", &from.to_string()),
                ("to", &to.to_string()),
                ("text", &text),
            ],
        );
        summaries.push(fast(models, prompt, log_file)?);
    }
    let summary = if summaries.len() == 1 {
        summaries.pop().unwrap_or_default()
    } else {
        let parts: String = summaries
            .iter()
            .enumerate()
            .map(|(i, s)| {
                set.render(
                    "summarize_part.txt",
                    &[("n", &(i + 1).to_string()), ("summary", s)],
                )
            })
            .collect();
        let prompt = set.render(
            "summarize_merge.txt",
            &[("action", action_text), ("parts", &parts)],
        );
        fast(models, prompt, log_file)?
    };
    Ok(after_marker(&summary, "[Observation]:").to_string())
}

/// A step of the research log: the fast model condenses one step (the
/// reply's fields and the observation) into reasoning, action and
/// observation lines. Up to `tries` attempts; "Too long to summarize."
/// if none works (as the original).
pub fn step_summary(
    set: &PromptSet,
    models: &Models,
    printed_reply: &str,
    observation: &str,
    tries: u32,
    log_file: &Path,
) -> Result<String, LlmError> {
    let prompt = set.render(
        "step_summary.txt",
        &[("reply", printed_reply), ("observation", observation)],
    );
    for _ in 0..tries.max(1) {
        match fast(models, prompt.clone(), log_file) {
            Ok(s) => return Ok(s),
            Err(e @ LlmError::Budget(_)) => return Err(e),
            Err(LlmError::PromptTooLong(_)) => break,
            Err(e) => {
                tracing::warn!("the step summary failed: {e}");
            }
        }
    }
    Ok("Too long to summarize.".into())
}

fn fast(models: &Models, prompt: String, log_file: &Path) -> Result<String, LlmError> {
    let mut req = Request::prompt(prompt, SUMMARY_MAX_TOKENS);
    req.temperature = 0.01;
    req.log_file = Some(log_file.to_path_buf());
    models.fast.complete(&req).map(|c| c.text)
}

/// The text after the last `marker`, trimmed; all of it without one.
fn after_marker<'a>(text: &'a str, marker: &str) -> &'a str {
    match text.rfind(marker) {
        Some(i) => text[i + marker.len()..].trim(),
        None => text.trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_taken_after_its_marker() {
        assert_eq!(
            after_marker("blah\n[Observation]: short", "[Observation]:"),
            "short"
        );
        assert_eq!(after_marker(" only text ", "[Observation]:"), "only text");
    }
}
