//! The trace: every step an agent took, as `env_log/trace.json` in the
//! original's layout (`steps`, `low_level_steps`, `action_infos`,
//! `task_description`).
//!
//! The file is rewritten after every step, atomically (a temporary file
//! renamed over it), so a reader never sees half of it. Each step is turned
//! into JSON once, when it is added; a rewrite only joins the pieces, so its
//! cost does not grow with the work of serialising earlier steps. The trace
//! is a view for people and tools; `events.jsonl` is what resume trusts.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::catalog::{Action, ActionInfo};

/// One executed action and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub action: Action,
    pub observation: String,
    /// Seconds since the Unix epoch, taken when the action finished.
    pub timestamp: f64,
}

#[derive(Debug)]
pub struct Trace {
    steps: Vec<Step>,
    low_level_steps: Vec<Step>,
    /// Pretty JSON of each step, indented for its place in the file.
    steps_json: Vec<String>,
    low_json: Vec<String>,
    /// Everything after the two step lists, rendered once.
    tail_json: String,
}

impl Trace {
    pub fn new(action_infos: Vec<&'static ActionInfo>, task_description: String) -> Trace {
        // serde_json's map sorts keys; write the infos in table order.
        let mut infos_text = String::from("{");
        for (i, info) in action_infos.iter().enumerate() {
            let body = pretty(*info, 2);
            infos_text.push_str(if i == 0 { "\n" } else { ",\n" });
            infos_text.push_str(&format!(
                "        {}: {}",
                serde_json::Value::from(info.name),
                body.trim_start()
            ));
        }
        infos_text.push_str("\n    }");
        let tail_json = format!(
            "    \"action_infos\": {infos_text},\n    \"task_description\": {}\n}}\n",
            serde_json::Value::from(task_description)
        );
        Trace {
            steps: Vec::new(),
            low_level_steps: Vec::new(),
            steps_json: Vec::new(),
            low_json: Vec::new(),
            tail_json,
        }
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Primitive calls, including those made inside high-level actions.
    pub fn low_level_steps(&self) -> &[Step] {
        &self.low_level_steps
    }

    pub fn push_step(&mut self, step: Step) {
        self.steps_json.push(pretty(&step, 2));
        self.steps.push(step);
    }

    /// Drops steps and low-level steps past the given counts (a step that
    /// could not be recorded is not part of the run).
    pub fn truncate(&mut self, steps: usize, low_level_steps: usize) {
        self.steps.truncate(steps);
        self.steps_json.truncate(steps);
        self.low_level_steps.truncate(low_level_steps);
        self.low_json.truncate(low_level_steps);
    }

    pub fn push_low_level(&mut self, step: Step) {
        self.low_json.push(pretty(&step, 2));
        self.low_level_steps.push(step);
    }

    /// The whole file's text.
    pub fn render(&self) -> String {
        let size: usize = self.steps_json.iter().map(|s| s.len() + 2).sum::<usize>()
            + self.low_json.iter().map(|s| s.len() + 2).sum::<usize>()
            + self.tail_json.len()
            + 64;
        let mut out = String::with_capacity(size);
        out.push_str("{\n    \"steps\": ");
        list(&mut out, &self.steps_json);
        out.push_str(",\n    \"low_level_steps\": ");
        list(&mut out, &self.low_json);
        out.push_str(",\n");
        out.push_str(&self.tail_json);
        out
    }

    /// Writes `trace.json` atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.render().as_bytes())
    }
}

fn list(out: &mut String, items: &[String]) {
    if items.is_empty() {
        out.push_str("[]");
        return;
    }
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        out.push_str(item);
    }
    out.push_str("\n    ]");
}

/// Pretty JSON (4-space indent, as the original's `json.dump(indent=4)`)
/// indented by `depth` levels. JSON strings hold no raw newlines, so lines
/// can be shifted safely.
fn pretty<T: Serialize + ?Sized>(value: &T, depth: usize) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    #[expect(
        clippy::expect_used,
        reason = "steps and action infos hold only strings, numbers and string-keyed maps, which always serialise"
    )]
    value.serialize(&mut ser).expect("serialises");
    // serde_json writes UTF-8, so nothing is replaced.
    let text = String::from_utf8_lossy(&buf).into_owned();
    let pad = " ".repeat(4 * depth);
    let mut out = String::with_capacity(text.len() + 16);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&pad);
        out.push_str(line);
    }
    out
}

/// Writes `bytes` to a temporary file beside `path` and renames it over
/// `path`, so readers see the old or the new file, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp: PathBuf = {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        path.with_file_name(name)
    };
    let written = std::fs::File::create(&tmp).and_then(|mut f| f.write_all(bytes));
    if let Err(e) = written {
        // A half-written temporary file would hold space a full disk needs.
        let _ = std::fs::remove_file(&tmp);
        return Err(anyhow::Error::new(e).context(format!("could not write {}", tmp.display())));
    }
    std::fs::rename(&tmp, path).with_context(|| format!("could not replace {}", path.display()))
}

/// Seconds since the Unix epoch.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::catalog;

    #[test]
    fn rendered_trace_parses_with_the_original_keys() {
        let mut t = Trace::new(catalog::enabled(false), "Solve it.".into());
        t.push_step(Step {
            action: Action::new("List Files", serde_json::json!({"dir_path": "."})),
            observation: "a\nb \"quoted\"\n".into(),
            timestamp: 1.5,
        });
        t.push_low_level(Step {
            action: Action::new("List Files", serde_json::json!({"dir_path": "."})),
            observation: "a\n".into(),
            timestamp: 1.4,
        });
        t.push_step(Step {
            action: Action::new("Final Answer", serde_json::json!("done")),
            observation: "end".into(),
            timestamp: 2.0,
        });
        let v: serde_json::Value = serde_json::from_str(&t.render()).unwrap();
        assert_eq!(v["steps"].as_array().unwrap().len(), 2);
        assert_eq!(v["steps"][0]["observation"], "a\nb \"quoted\"\n");
        assert_eq!(v["steps"][1]["action"]["args"], "done");
        assert_eq!(v["low_level_steps"].as_array().unwrap().len(), 1);
        assert_eq!(v["task_description"], "Solve it.");
        let infos = v["action_infos"].as_object().unwrap();
        assert_eq!(infos.len(), 16);
        assert!(infos["Copy File"]["usage"]["destination"].is_string());
        // Table order is kept in the file.
        let text = t.render();
        assert!(text.find("\"List Files\": {").unwrap() < text.find("\"Reflection\": {").unwrap());
    }

    #[test]
    fn empty_trace_is_valid_json() {
        let t = Trace::new(vec![], String::new());
        let v: serde_json::Value = serde_json::from_str(&t.render()).unwrap();
        assert_eq!(v["steps"], serde_json::json!([]));
        assert_eq!(v["action_infos"], serde_json::json!({}));
    }

    #[test]
    fn atomic_write_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("trace.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        assert!(!dir.path().join("trace.json.tmp").exists());
    }
}
