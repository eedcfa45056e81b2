//! The per-run entry of eval.json.
//!
//! The first keys are the original eval's, with the same meaning and types
//! (`path` is the run's env_log/trace.json, `final_score` is -1 when the
//! last step could not be scored, `score` appends the final score after the
//! intermediate ones, and `extra` holds the five error flags found by
//! reading the logs). One deliberate difference: an intermediate snapshot
//! that failed to score is the direction's worst value in `score`
//! ([`worst_score`]), where the original appends 0, which on a
//! lower-is-better task reads as a perfect score. Then come mlab's own
//! keys, which carry the information the original's sentinels lose:
//! `step_scores` and `graded_final_score` are null where grading failed.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::runs::{Run, RunLayout};
use crate::run::record::{ExitReason, RunRecord};

/// The original's five error flags.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Extra {
    /// "CUDA out of memory" in the run's output or main_log.
    pub oom_error: bool,
    /// The LLM could not be reached (or quota ran out).
    pub connection_error: bool,
    /// The run did not end cleanly: error.txt exists or overall_time.txt
    /// is missing.
    pub error: bool,
    /// More than two JSONDecodeError in main_log.
    pub json_error: bool,
    /// A tool refused an input as too long.
    pub long_prompt_error: bool,
}

/// A snapshot that could not be scored.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EvalError {
    /// The env step, or "final".
    pub step: Value,
    /// What happened (the traceback's last lines for a get_score that raised).
    pub error: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub path: String,
    pub summary: String,
    pub rubric_questions: BTreeMap<String, String>,
    pub score: Vec<f64>,
    pub score_steps: Vec<u64>,
    pub submitted_final_answer: bool,
    pub final_score: f64,
    pub total_time: f64,
    pub error: String,
    pub extra: Extra,
    // mlab's keys.
    pub task: Option<String>,
    pub agent: Option<String>,
    pub llm: Value,
    pub seed: Value,
    pub steps: Value,
    pub tokens: Value,
    pub cost_usd: Value,
    pub exit_reason: Value,
    pub tampered: Value,
    /// Best score over every scored snapshot (direction-aware); null if none.
    pub best_score: Option<f64>,
    /// The intermediate scores, one per `score_steps` entry; null where the
    /// snapshot could not be scored.
    pub step_scores: Vec<Option<f64>>,
    /// The final snapshot's score; null where it could not be scored (the
    /// original's `final_score` is -1 then).
    pub graded_final_score: Option<f64>,
    /// Snapshots that could not be scored, and why.
    pub eval_errors: Vec<EvalError>,
}

/// What grading found for one run's snapshots.
#[derive(Debug, Default)]
pub struct Graded {
    pub score: Vec<f64>,
    pub score_steps: Vec<u64>,
    pub step_scores: Vec<Option<f64>>,
    pub final_score: Option<f64>,
    pub best_score: Option<f64>,
    pub eval_errors: Vec<EvalError>,
}

impl RunResult {
    /// A run's entry: what grading found, and the rest read from the run's
    /// logs. `task` is the task the run was graded as.
    pub fn of_run(run: &Run, task: Option<String>, g: Graded) -> RunResult {
        RunResult {
            path: run
                .dir
                .join("env_log")
                .join("trace.json")
                .display()
                .to_string(),
            summary: String::new(),
            rubric_questions: BTreeMap::new(),
            score: g.score,
            score_steps: g.score_steps,
            submitted_final_answer: run.submitted_final_answer(),
            final_score: g.final_score.unwrap_or(-1.0),
            total_time: total_time(run),
            error: error_text(run),
            extra: extra_flags(run),
            task,
            agent: run.agent(),
            llm: run.llm(),
            seed: recorded(run, |r| r.seed),
            steps: steps(run),
            tokens: recorded(run, |r| r.tokens),
            cost_usd: recorded(run, |r| r.cost_usd),
            exit_reason: recorded(run, |r| r.exit_reason),
            tampered: recorded(run, |r| r.tampered),
            best_score: g.best_score,
            step_scores: g.step_scores,
            graded_final_score: g.final_score,
            eval_errors: g.eval_errors,
        }
    }
}

/// What a snapshot that could not be scored counts in the original's
/// `score` list: the worst finite number for the task's direction
/// (-1.7976931348623157e308 when higher is better, +1.7976931348623157e308
/// when lower is). JSON has no infinities, and the original's analysis
/// keeps only scores above 0 for its best-at-any-step columns, so these
/// never count as an improvement there either.
pub fn worst_score(direction: crate::task::Direction) -> f64 {
    match direction {
        crate::task::Direction::Higher => f64::MIN,
        crate::task::Direction::Lower => f64::MAX,
    }
}

/// Messages in main_log that mean the LLM service failed, as the original
/// looks for them.
const CONNECTION_MESSAGES: &[&str] = &[
    "You exceeded your current quota, please check your plan and billing details.",
    "Error: 'text-similarity-ada-001'",
    "Error: 'text-embedding-ada-001'",
];

/// The five flags, from the run's logs. Missing logs read as empty (the
/// original crashed on them).
pub fn extra_flags(run: &Run) -> Extra {
    let oom = "CUDA out of memory";
    Extra {
        oom_error: run.log.contains(oom) || run.main_log.contains(oom),
        connection_error: run.log.contains("Connection aborted")
            || CONNECTION_MESSAGES.iter().any(|m| run.main_log.contains(m))
            || run.exit_reason() == Some(ExitReason::LlmError),
        error: run.error_txt.is_some() || run.overall_time.is_none(),
        json_error: run.main_log.matches("JSONDecodeError").count() > 2,
        long_prompt_error: run
            .main_log
            .contains("EnvError: too long input for the tool"),
    }
}

/// Whether the run ended for a reason outside the agent (mlab failed, the
/// log disk filled up, the model provider could not be reached). run.json
/// says so itself (`infra_failure`, with `infra_reason`); runs of mlab
/// versions that did not write it are judged by their exit reason.
pub fn infra_failure(run: &Run, extra: &Extra) -> bool {
    match run.layout {
        RunLayout::Mlab => match run.record.as_ref().and_then(|r| r.infra_failure) {
            Some(explicit) => explicit,
            None => run
                .exit_reason()
                .is_some_and(|r| r.infra_reason().is_some()),
        },
        RunLayout::Original => extra.connection_error,
    }
}

/// `overall_time.txt`, else run.json's end minus start, else 0 (as the original).
pub fn total_time(run: &Run) -> f64 {
    if let Some(t) = run
        .overall_time
        .as_deref()
        .and_then(|t| t.trim().parse::<f64>().ok())
    {
        return t;
    }
    let time = |t: Option<&str>| t.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
    let record = run.record.as_ref();
    match (
        time(record.map(|r| r.start_time.as_str())),
        time(record.and_then(|r| r.end_time.as_deref())),
    ) {
        (Some(a), Some(b)) => (b - a).num_milliseconds() as f64 / 1000.0,
        _ => 0.0,
    }
}

/// error.txt, else run.json's `error`, else "".
pub fn error_text(run: &Run) -> String {
    if let Some(e) = &run.error_txt {
        return e.clone();
    }
    run.record
        .as_ref()
        .and_then(|r| r.error.clone())
        .unwrap_or_default()
}

/// Steps taken: run.json `steps`, else the trace's length.
pub fn steps(run: &Run) -> Value {
    match &run.record {
        Some(r) => Value::from(r.steps),
        None if run.trace_readable => Value::from(run.trace_actions.len()),
        None => Value::Null,
    }
}

/// A field of run.json (as `pick` takes it from the record), or null for
/// the original's runs.
pub fn recorded<T: serde::Serialize>(run: &Run, pick: impl Fn(&RunRecord) -> T) -> Value {
    run.record
        .as_ref()
        .map_or(Value::Null, |r| serde_json::json!(pick(r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_follow_the_originals_rules() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path().join("run");
        std::fs::create_dir_all(r.join("env_log")).unwrap();
        std::fs::create_dir_all(r.join("agent_log")).unwrap();
        std::fs::write(r.join("env_log/trace.json"), r#"{"steps": []}"#).unwrap();
        std::fs::write(
            r.join("agent_log/main_log"),
            "JSONDecodeError\nJSONDecodeError\nEnvError: too long input for the tool\n",
        )
        .unwrap();
        std::fs::write(r.join("log"), "Connection aborted\n").unwrap();
        let run = Run::load(&r, RunLayout::Original).unwrap();
        let x = extra_flags(&run);
        assert!(x.connection_error && x.long_prompt_error && x.error);
        assert!(!x.json_error, "two JSONDecodeError are tolerated");
        assert!(!x.oom_error);
        assert!(infra_failure(&run, &x));

        std::fs::write(r.join("env_log/overall_time.txt"), "12.5").unwrap();
        std::fs::write(r.join("agent_log/main_log"), "JSONDecodeError\n".repeat(3)).unwrap();
        std::fs::write(r.join("log"), "RuntimeError: CUDA out of memory.\n").unwrap();
        let run = Run::load(&r, RunLayout::Original).unwrap();
        let x = extra_flags(&run);
        assert!(x.json_error && x.oom_error && !x.error && !x.connection_error);
        assert_eq!(total_time(&run), 12.5);
    }

    #[test]
    fn infra_failure_follows_run_json_classification() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path().join("run");
        std::fs::create_dir_all(r.join("env_log")).unwrap();
        let judge = |meta: serde_json::Value| {
            std::fs::write(r.join("run.json"), meta.to_string()).unwrap();
            let run = Run::load(&r, RunLayout::Mlab).unwrap();
            infra_failure(&run, &extra_flags(&run))
        };
        // The run's own word wins over its exit reason.
        assert!(!judge(
            serde_json::json!({"exit_reason": "harness_error", "infra_failure": false})
        ));
        assert!(judge(
            serde_json::json!({"exit_reason": "disk_full", "infra_failure": true, "infra_reason": "log_disk_full"})
        ));
        assert!(!judge(
            serde_json::json!({"exit_reason": "agent_error", "infra_failure": false})
        ));
        // Older run.json files without the field.
        assert!(judge(serde_json::json!({"exit_reason": "disk_full"})));
        assert!(judge(serde_json::json!({"exit_reason": "harness_error"})));
        assert!(!judge(serde_json::json!({"exit_reason": "max_steps"})));
    }
}
