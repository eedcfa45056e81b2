//! What each call leaves on disk: one JSON line in
//! `<log-dir>/agent_log/llm_calls.jsonl` (the machine record that `replay:`
//! reads back), and the original's human-readable per-call log at the path
//! the caller chose (`Request.log_file`).
//!
//! Both pass through `keys::redact_keys` first, so no key text reaches the
//! run's log folder even if an agent printed a key file into its prompt.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::keys::redact_keys;
use super::transport::RetryNote;
use super::{Message, RoleName, ToolCall, ToolSpec, Usage};

/// The request part of a record.
#[derive(Debug, Serialize)]
pub struct RequestOut<'a> {
    pub messages: &'a [Message],
    pub stop: &'a [String],
    pub max_tokens: u32,
    pub temperature: f32,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub tools: &'a [ToolSpec],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<super::ToolChoice>,
}

/// One line of `llm_calls.jsonl`, as written.
#[derive(Debug, Serialize)]
pub struct RecordOut<'a> {
    /// RFC 3339, when the call ended.
    pub time: String,
    pub role: RoleName,
    pub model: &'a str,
    pub provider: &'a str,
    pub request: RequestOut<'a>,
    /// The completion text; null when the call failed.
    pub response: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub tool_calls: &'a [ToolCall],
    pub usage: Usage,
    pub latency_s: f64,
    pub retries: u32,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub retry_log: &'a [RetryNote],
    pub cost_usd: f64,
    pub error: Option<String>,
    /// `LlmError::kind` and `detail` of the failure, so a replay can
    /// reproduce it.
    pub error_kind: Option<&'static str>,
    pub error_detail: Option<&'a str>,
}

/// The request part of a record, as read back.
#[derive(Debug, Clone, Deserialize)]
pub struct RequestIn {
    pub messages: Vec<Message>,
}

/// One line of `llm_calls.jsonl`, as read back by `replay:`.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordIn {
    pub role: RoleName,
    pub request: RequestIn,
    pub response: Option<String>,
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default)]
    pub usage: Usage,
    pub error: Option<String>,
    pub error_kind: Option<String>,
    pub error_detail: Option<String>,
}

/// Appends records to one run's `llm_calls.jsonl`.
#[derive(Debug)]
pub struct Recorder {
    path: PathBuf,
    file: Mutex<File>,
}

impl Recorder {
    pub fn open(log_dir: &Path) -> anyhow::Result<Recorder> {
        let dir = log_dir.join("agent_log");
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join("llm_calls.jsonl");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open {} for appending: {e}", path.display()))?;
        Ok(Recorder {
            path,
            file: Mutex::new(file),
        })
    }

    /// Appends one line with a single write, so concurrent calls never
    /// interleave within a line. `record` is a [`RecordOut`], or (the LLM
    /// gateway) a record with more fields beside its own.
    pub fn append(&self, record: &impl Serialize) -> std::io::Result<()> {
        let mut line = serde_json::to_string(record).map_err(std::io::Error::other)?;
        if let std::borrow::Cow::Owned(clean) = redact_keys(&line) {
            line = clean;
        }
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(line.as_bytes())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The prompt as one text: a single message is itself; several are shown
/// with their roles.
pub fn render_prompt(messages: &[Message]) -> String {
    if let [only] = messages {
        return only.content.clone();
    }
    let mut out = String::new();
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            out.push_str("\n\n");
        }
        out.push_str(m.role.as_str());
        out.push_str(": ");
        out.push_str(&m.content);
    }
    out
}

/// Appends the original's per-call log sections (prompt, response, tokens)
/// to `path`, making its folder if needed.
pub fn append_text_log(
    path: &Path,
    model: &str,
    max_tokens: u32,
    messages: &[Message],
    response: &str,
    usage: &Usage,
) -> std::io::Result<()> {
    let mut text = String::with_capacity(256 + response.len());
    text.push_str("\n===================prompt=====================\n");
    text.push_str("\n\nHuman: ");
    text.push_str(&render_prompt(messages));
    text.push_str(" \n\nAssistant:");
    text.push_str(&format!(
        "\n==================={model} response ({max_tokens})=====================\n"
    ));
    text.push_str(response);
    text.push_str("\n===================tokens=====================\n");
    text.push_str(&format!(
        "Number of prompt tokens: {}\nNumber of sampled tokens: {}\n\n\n",
        usage.input_tokens, usage.output_tokens
    ));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(redact_keys(&text).as_bytes())
}

/// Reads a run's records: `dir` may be the run's log folder, its
/// `agent_log`, or the `llm_calls.jsonl` file itself.
pub fn read_records(dir: &Path) -> anyhow::Result<(PathBuf, Vec<RecordIn>)> {
    let candidates = [
        dir.join("agent_log").join("llm_calls.jsonl"),
        dir.join("llm_calls.jsonl"),
        dir.to_path_buf(),
    ];
    let Some(path) = candidates.into_iter().find(|p| p.is_file()) else {
        anyhow::bail!(
            "no recorded calls at {}: replay:<dir> needs a run's log folder holding \
             agent_log/llm_calls.jsonl",
            dir.display()
        );
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let rec: RecordIn = serde_json::from_str(line).map_err(|e| {
            anyhow::anyhow!(
                "{} line {} is not a call record: {e}",
                path.display(),
                i + 1
            )
        })?;
        records.push(rec);
    }
    Ok((path, records))
}

/// The tokens, dollars and calls of every record in a `llm_calls.jsonl`
/// (a line that is not a record, such as one torn by a crash, is skipped).
pub fn sum_records(path: &Path) -> anyhow::Result<super::Totals> {
    #[derive(Deserialize)]
    struct Spent {
        #[serde(default)]
        usage: Usage,
        #[serde(default)]
        cost_usd: f64,
    }
    let bytes =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let mut totals = super::Totals::default();
    for line in bytes.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Ok(spent) = serde_json::from_slice::<Spent>(line) else {
            continue;
        };
        totals.usage.add(&spent.usage);
        totals.cost += spent.cost_usd;
        totals.calls += 1;
    }
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_log_has_the_original_sections() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tool_logs/step_0_tool_log.log");
        let usage = Usage {
            input_tokens: 12,
            output_tokens: 3,
            estimated: false,
        };
        append_text_log(&p, "gpt-4o", 2000, &[Message::user("Hi?")], "Hello", &usage).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            text,
            "\n===================prompt=====================\n\n\nHuman: Hi? \n\nAssistant:\
             \n===================gpt-4o response (2000)=====================\nHello\
             \n===================tokens=====================\nNumber of prompt tokens: 12\
             \nNumber of sampled tokens: 3\n\n\n"
        );
    }

    #[test]
    fn several_messages_are_rendered_with_roles() {
        let p = render_prompt(&[Message::system("be brief"), Message::user("hi")]);
        assert_eq!(p, "system: be brief\n\nuser: hi");
    }
}
