//! Shortening what the agent keeps of a long observation: over 5,000
//! characters, the fast model summarises it in blocks of 10,000 characters
//! and, when there are several, merges the block summaries. Only the
//! agent's copy is shortened; trace.json keeps the full text.
//!
//! Also the research log's per-step summary (retrieval mode).

use std::path::Path;

use crate::llm::{LlmError, Models, Request};

/// Observations longer than this (in characters) are summarised.
pub const SUMMARY_THRESHOLD: usize = 5000;
/// Characters per block sent to the fast model.
pub const BLOCK_CHARS: usize = 10_000;
/// Max tokens of a summary.
const SUMMARY_MAX_TOKENS: u32 = 2000;

/// The observation as the agent keeps it: unchanged when short, else a
/// summary made by the fast model (calls logged to `log_file`).
pub fn shorten_observation(
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
        let prompt = format!(
            "{action_text}\n\nThe observation of this action is too long to show whole. Here is the part from character {from} to character {to}:\n```\n{text}\n```\n\
             Summarise this part concisely and objectively. Keep every number, file name and error message that matters. Write nothing that the text does not support. Use this format:\n[Observation]: your summary"
        );
        summaries.push(fast(models, prompt, log_file)?);
    }
    let summary = if summaries.len() == 1 {
        summaries.pop().unwrap_or_default()
    } else {
        let parts: String = summaries
            .iter()
            .enumerate()
            .map(|(i, s)| format!("Part {}:\n{s}\n\n", i + 1))
            .collect();
        let prompt = format!(
            "{action_text}\n\nThe observation of this action was too long, so it was summarised in consecutive parts:\n{parts}\
             Combine these into one concise, objective summary of the whole observation, keeping the numbers, file names and errors that matter. Use this format:\n[Observation]: your summary"
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
    models: &Models,
    printed_reply: &str,
    observation: &str,
    tries: u32,
    log_file: &Path,
) -> Result<String, LlmError> {
    let prompt = format!(
        "Here is one step of a research assistant's work: what it wrote, then what it observed.\n\
         ```\n{printed_reply}\nObservation:\n{observation}\n```\n\
         Summarise the step objectively and concisely, without guessing beyond the text, in exactly this format:\n\
         [Reasoning]: what the assistant was thinking\n[Action]: what it did, with the inputs that matter\n[Observation]: what came back, with the numbers and errors that matter"
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
