//! Files for the `scripted:<file>` model (see `llm/scripted.rs` for the line
//! format): one writer, so tests and benchmarks write a scripted model's
//! replies the same way, and the replies the research agent parses.

// Test support: a failure here should stop the test that uses it, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::{json, Value};

/// Writes `replies` to `path`, one JSON value per line (a string is the
/// reply's text; an object may add usage, tool calls or an error), and
/// returns the model spec that plays them: `scripted:<path>`. No replies
/// makes a model that fails any call, for runs that must not ask one.
pub fn write(path: &Path, replies: &[Value]) -> String {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
    }
    std::fs::write(path, jsonl(replies))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    spec(path)
}

/// The model spec that plays the replies in `path`.
pub fn spec(path: &Path) -> String {
    format!("scripted:{}", path.display())
}

/// `values` as JSON lines.
pub fn jsonl(values: &[Value]) -> String {
    values
        .iter()
        .map(|v| format!("{}\n", serde_json::to_string(v).unwrap()))
        .collect()
}

/// A reply `text` that reports its token usage.
pub fn with_usage(text: &str, input_tokens: u64, output_tokens: u64) -> Value {
    json!({
        "text": text,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    })
}

/// A reply in the research agent's format, with `marker` as its Thought
/// (for finding which reply a prompt followed).
pub fn research_reply(marker: &str, action: &str, input: Value) -> Value {
    Value::String(format!(
        "Reflection: looking at what happened so far.\n\
         Research Plan and Status: 1. Understand the task. 2. Measure. 3. **Improve.**\n\
         Fact Check: nothing new is claimed.\n\
         Thought: {marker}\n\
         Action: {action}\n\
         Action Input: {}",
        serde_json::to_string_pretty(&input).unwrap()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_script_holds_one_reply_per_line_and_names_its_spec() {
        let dir = tempfile::tempdir().unwrap();
        let spec = write(
            &dir.path().join("s.jsonl"),
            &[json!("first"), with_usage("second", 100, 5)],
        );
        assert!(spec.starts_with("scripted:"), "{spec}");
        let text = std::fs::read_to_string(dir.path().join("s.jsonl")).unwrap();
        assert_eq!(
            text,
            "\"first\"\n{\"text\":\"second\",\"usage\":{\"input_tokens\":100,\"output_tokens\":5}}\n"
        );
    }
}
