//! `replay:<run log dir>`: the completions an earlier run recorded in its
//! `agent_log/llm_calls.jsonl`, handed out again in order, so a run can be
//! reproduced (or an agent change checked) without a provider.
//!
//! Each role replays its own calls in their recorded order. Before answering,
//! the prompt is compared with the recorded one: a difference means the run
//! has diverged, which is an error unless `--replay-lenient` (then a warning).
//! Failed calls are replayed as the same typed error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::metered::{Backend, Outcome, Pricing, Reply};
use super::record::{read_records, RecordIn};
use super::scripted::scripted_error;
use super::{LlmError, Message, Request, RoleName};

pub struct Replay {
    path: PathBuf,
    records: Vec<RecordIn>,
    lenient: bool,
    /// Per role: index into `records` of the next one to look at.
    cursors: Mutex<HashMap<RoleName, usize>>,
}

impl Replay {
    pub fn load(dir: &Path, lenient: bool) -> anyhow::Result<Replay> {
        let (path, records) = read_records(dir)?;
        // A budget stop was never a call to the model; it is not replayed.
        let records = records
            .into_iter()
            .filter(|r| r.error_kind.as_deref() != Some("budget"))
            .collect();
        Ok(Replay {
            path,
            records,
            lenient,
            cursors: Mutex::new(HashMap::new()),
        })
    }
}

/// Where two prompts first differ, shown briefly.
fn difference(recorded: &[Message], now: &[Message]) -> Option<String> {
    if recorded.len() != now.len() {
        return Some(format!(
            "the recording has {} messages, this call {}",
            recorded.len(),
            now.len()
        ));
    }
    for (i, (a, b)) in recorded.iter().zip(now).enumerate() {
        if a.role != b.role {
            return Some(format!(
                "message {} is {} in the recording, {} now",
                i + 1,
                a.role.as_str(),
                b.role.as_str()
            ));
        }
        if a.content != b.content {
            let at = a
                .content
                .chars()
                .zip(b.content.chars())
                .take_while(|(x, y)| x == y)
                .count();
            let around =
                |s: &str| -> String { s.chars().skip(at.saturating_sub(20)).take(60).collect() };
            return Some(format!(
                "message {} ({}) differs at character {at}: recorded {:?}, now {:?}",
                i + 1,
                a.role.as_str(),
                around(&a.content),
                around(&b.content)
            ));
        }
    }
    None
}

impl Backend for Replay {
    fn provider(&self) -> &'static str {
        "replay"
    }

    fn pricing(&self) -> Pricing<'_> {
        Pricing::Free
    }

    fn call(&self, req: &Request, role: RoleName) -> Outcome {
        let mut cursors = self.cursors.lock().unwrap_or_else(|e| e.into_inner());
        let cursor = cursors.entry(role).or_insert(0);
        let Some(offset) = self.records[*cursor..].iter().position(|r| r.role == role) else {
            let had = self.records.iter().filter(|r| r.role == role).count();
            return Outcome::from(Err(LlmError::Script(format!(
                "replay: {} holds {had} {} calls and the run asked for one more; the run went \
                 further than the recording",
                self.path.display(),
                role.as_str()
            ))));
        };
        let index = *cursor + offset;
        *cursor = index + 1;
        let rec = &self.records[index];
        let nth = self.records[..=index]
            .iter()
            .filter(|r| r.role == role)
            .count();
        if let Some(diff) = difference(&rec.request.messages, &req.messages) {
            let what = format!(
                "replay: {} call {nth} differs from the recording in {}: {diff}",
                role.as_str(),
                self.path.display()
            );
            if !self.lenient {
                return Outcome::from(Err(LlmError::Script(format!(
                    "{what}; pass --replay-lenient to replay anyway"
                ))));
            }
            tracing::warn!("{what}; replaying the recorded answer anyway (--replay-lenient)");
        }
        if let Some(kind) = &rec.error_kind {
            let message = rec
                .error_detail
                .clone()
                .or_else(|| rec.error.clone())
                .unwrap_or_default();
            return Outcome::from(Err(scripted_error(kind, message)));
        }
        Outcome::from(Ok(Reply {
            text: rec.response.clone().unwrap_or_default(),
            tool_calls: rec.tool_calls.clone(),
            usage: Some(rec.usage),
        }))
    }
}
