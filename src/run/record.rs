//! `<log-dir>/run.json`: what a run was and how it ended, so that eval,
//! status and report never have to guess. Written at the start and again
//! at the end (atomically both times), and read back (by eval) through the
//! same [`RunRecord`]: a field an older mlab did not write reads as its
//! default.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::RunConfig;
use crate::env::trace::write_atomic;

pub use crate::env::ExitReason;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelNames {
    pub main: String,
    pub fast: String,
    pub edit: String,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RunRecord {
    pub mlab_version: String,
    pub task: String,
    pub agent: String,
    pub llm: Option<ModelNames>,
    pub seed: u64,
    /// Every flag of `mlab run`, by its long name (see [`flags`]).
    pub flags: Value,
    pub sandbox: String,
    pub start_time: String,
    pub end_time: Option<String>,
    pub steps: usize,
    pub exit_reason: Option<ExitReason>,
    pub error: Option<String>,
    /// Whether eval leaves the run out of success rates as an
    /// infrastructure failure; null until the run has ended.
    pub infra_failure: Option<bool>,
    /// Which fault outside the agent ended the run (see
    /// [`ExitReason::infra_reason`]).
    pub infra_reason: Option<String>,
    pub tokens: Tokens,
    pub cost_usd: f64,
    pub tampered: Option<bool>,
    /// The configuration's identity, which eval groups by
    /// (`crate::llm::config_identity`).
    pub config: String,
    /// Model calls, over every resumed part of the run like `tokens`.
    pub llm_calls: u64,
    /// An ad-hoc run's folder, problem hash and eval command (`mlab run
    /// --dir`); absent for task runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adhoc: Option<crate::task::adhoc::Record>,
    /// The prompt set's name (`--prompts`; "mlab" for mlab's own). Absent
    /// from runs of an mlab before prompt sets, which used mlab's own.
    pub prompt_set: Option<String>,
    /// SHA-256 of the prompt set's files (`crate::prompts::PromptSet::hash`).
    pub prompt_set_hash: Option<String>,
}

impl RunRecord {
    pub fn new(args: &RunConfig, agent: &str, sandbox: &str, llm: Option<ModelNames>) -> RunRecord {
        RunRecord {
            mlab_version: env!("CARGO_PKG_VERSION").to_string(),
            task: args.task.clone(),
            agent: agent.to_string(),
            llm,
            seed: args.seed,
            flags: flags(args),
            sandbox: sandbox.to_string(),
            start_time: chrono::Utc::now().to_rfc3339(),
            end_time: None,
            steps: 0,
            exit_reason: None,
            error: None,
            infra_failure: None,
            infra_reason: None,
            tokens: Tokens::default(),
            cost_usd: 0.0,
            tampered: None,
            config: crate::llm::config_identity(agent, &args.llm),
            llm_calls: 0,
            adhoc: None,
            prompt_set: None,
            prompt_set_hash: None,
        }
    }

    /// Records the prompt set; one that is not word for word mlab's own
    /// becomes part of the configuration's identity (unless the user named
    /// the configuration), so that eval never mixes runs with different
    /// prompts.
    pub fn set_prompts(&mut self, set: &crate::prompts::PromptSet, named_config: bool) {
        self.prompt_set = Some(set.name().to_string());
        self.prompt_set_hash = Some(set.hash().to_string());
        if !set.is_default() && !named_config {
            self.config = format!("{} [prompts {}]", self.config, set.name());
        }
    }

    /// Sets how the run ended, with its infrastructure classification.
    pub fn set_end(&mut self, reason: ExitReason, error: Option<String>) {
        self.end_time = Some(chrono::Utc::now().to_rfc3339());
        self.exit_reason = Some(reason);
        self.error = error;
        self.infra_failure = Some(reason.infra_reason().is_some());
        self.infra_reason = reason.infra_reason().map(String::from);
    }

    pub fn write(&self, log_dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        write_atomic(&log_dir.join("run.json"), text.as_bytes())
    }

    /// Reads a run.json written by this or an older mlab.
    pub fn read(path: &Path) -> Result<RunRecord> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read {}", path.display()))?;
        let value: Value = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not valid JSON; the run may have been cut off while writing it",
                path.display()
            )
        })?;
        serde_json::from_value(value).with_context(|| {
            format!(
                "{} is not a run record this mlab can read (a field has an unexpected value)",
                path.display()
            )
        })
    }
}

/// Every flag of `mlab run`, by its long name.
/// run.json's `flags`: every flag of `mlab run` by its long name, as the
/// front end recorded them (derived from its flag definitions).
pub fn flags(a: &RunConfig) -> Value {
    a.flags.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_record_reads_back_what_it_writes_with_the_same_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = RunRecord {
            task: "toy".into(),
            agent: "research".into(),
            llm: Some(ModelNames {
                main: "gpt-4o".into(),
                fast: "gpt-4o-mini".into(),
                edit: "gpt-4o".into(),
            }),
            seed: 7,
            flags: serde_json::json!({"max_steps": 3}),
            config: "research:openai:gpt-4o".into(),
            ..RunRecord::default()
        };
        r.set_end(ExitReason::DiskFull, Some("no space".into()));
        r.write(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join("run.json")).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "agent",
                "config",
                "cost_usd",
                "end_time",
                "error",
                "exit_reason",
                "flags",
                "infra_failure",
                "infra_reason",
                "llm",
                "llm_calls",
                "mlab_version",
                "prompt_set",
                "prompt_set_hash",
                "sandbox",
                "seed",
                "start_time",
                "steps",
                "tampered",
                "task",
                "tokens"
            ]
        );
        assert_eq!(v["exit_reason"], "disk_full");
        assert_eq!(v["infra_reason"], "log_disk_full");
        let back = RunRecord::read(&dir.path().join("run.json")).unwrap();
        assert_eq!(back.exit_reason, Some(ExitReason::DiskFull));
        assert_eq!(back.llm.unwrap().fast, "gpt-4o-mini");
        assert_eq!(
            (back.seed, back.config.as_str()),
            (7, "research:openai:gpt-4o")
        );
    }

    #[test]
    fn an_older_run_json_without_the_newer_fields_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("run.json");
        std::fs::write(
            &p,
            r#"{"task": "toy", "exit_reason": "max_steps", "flags": {}}"#,
        )
        .unwrap();
        let r = RunRecord::read(&p).unwrap();
        assert_eq!(r.task, "toy");
        assert_eq!(r.exit_reason, Some(ExitReason::MaxSteps));
        assert_eq!(r.infra_failure, None);
        assert!(r.llm.is_none() && r.config.is_empty() && r.llm_calls == 0);
        std::fs::write(&p, r#"{"exit_reason": "final_ans"#).unwrap();
        let e = format!("{:#}", RunRecord::read(&p).unwrap_err());
        assert!(e.contains("not valid JSON"), "{e}");
    }

    #[test]
    fn a_run_json_without_a_prompt_set_reads_as_none_and_a_changed_set_joins_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.json");
        std::fs::write(
            &path,
            r#"{"task": "toy", "config": "research (openai gpt-4o)"}"#,
        )
        .unwrap();
        let old = RunRecord::read(&path).unwrap();
        assert_eq!(old.prompt_set, None);
        assert_eq!(old.prompt_set_hash, None);

        let mut r = RunRecord {
            config: "research (openai gpt-4o)".into(),
            ..RunRecord::default()
        };
        r.set_prompts(&crate::prompts::default_set(), false);
        assert_eq!(r.prompt_set.as_deref(), Some("mlab"));
        assert_eq!(r.config, "research (openai gpt-4o)");

        let mut files = std::collections::BTreeMap::new();
        let default = crate::prompts::default_set();
        for (f, _) in crate::prompts::FILES {
            let text = std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("src/prompts/default")
                    .join(f),
            )
            .unwrap();
            files.insert(f.to_string(), text);
        }
        files.insert("begin.txt".into(), "Start now.\n".into());
        let other = crate::prompts::PromptSet::from_files("paper", files).unwrap();
        r.set_prompts(&other, false);
        assert_eq!(r.config, "research (openai gpt-4o) [prompts paper]");
        assert_eq!(r.prompt_set_hash.as_deref(), Some(other.hash()));
        assert_ne!(other.hash(), default.hash());
        // A configuration the user named keeps its name.
        let mut named = RunRecord {
            config: "mine".into(),
            ..RunRecord::default()
        };
        named.set_prompts(&other, true);
        assert_eq!(named.config, "mine");
    }
}
