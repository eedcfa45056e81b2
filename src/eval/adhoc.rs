//! Ad-hoc runs (`mlab run --dir`, task `adhoc:<folder>`): there is no
//! eval.py. A run made with `--eval-cmd CMD` is scored by running that
//! command on its snapshots (under the grader sandbox policy: the snapshot
//! and the run's folder read-only, no network, the working directory the
//! folder the run was made on); its score is the last line it prints. A
//! run without one is listed as "no grader": not an error of the run, not
//! an infrastructure failure, and in no success rate (ad-hoc runs never
//! reach the summary).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde_json::Value;

use super::result::{self, EvalError, RunResult};
use super::runs::Run;
use super::{Config, EvaluatedRun};
use crate::sandbox::{self, Stream};
use crate::task::adhoc as task_adhoc;

/// What the "no grader" entry of an ad-hoc run says.
pub const NO_GRADER: &str = "no grader: an ad-hoc run (mlab run --dir) has no eval.py; \
    give mlab run --eval-cmd CMD (a command printing a score for a snapshot folder) to have its runs scored";

/// Most output kept from one eval command.
const MAX_OUTPUT: u64 = 1 << 20;

/// Separates the ad-hoc runs from the others.
pub(super) fn split(runs: Vec<Run>) -> (Vec<Run>, Vec<Run>) {
    runs.into_iter()
        .partition(|r| r.recorded_task().is_some_and(task_adhoc::is_adhoc))
}

/// The entry of one ad-hoc run: scored by its eval command, or "no grader".
pub(super) fn evaluate_run(cfg: &Config, run: &Run) -> EvaluatedRun {
    let record = run.record.as_ref().and_then(|r| r.adhoc.clone());
    let eval_cmd = record.as_ref().and_then(|a| a.eval_cmd.clone());
    let mut score = Vec::new();
    let mut score_steps = Vec::new();
    let mut step_scores: Vec<Option<f64>> = Vec::new();
    let mut eval_errors = Vec::new();
    let mut final_score = None;
    let mut best: Option<f64> = None;
    let mut keep_best = |s: f64| best = Some(best.map_or(s, |b: f64| b.max(s)));
    match eval_cmd {
        None => eval_errors.push(EvalError {
            step: Value::from("final"),
            error: NO_GRADER.into(),
        }),
        Some(cmd) => {
            let folder = record
                .as_ref()
                .map(|a| PathBuf::from(&a.dir))
                .filter(|d| d.is_dir());
            if cfg.eval_intermediate {
                for s in &run.steps {
                    let step = s.step.unwrap_or_default();
                    score_steps.push(step);
                    match score_snapshot(cfg, &cmd, &s.dir, folder.as_deref()) {
                        Ok(v) => {
                            score.push(v);
                            step_scores.push(Some(v));
                            keep_best(v);
                        }
                        Err(e) => {
                            // Ad-hoc scores are higher-is-better (the task
                            // says so): a failed step is the worst value.
                            score.push(result::worst_score(crate::task::Direction::Higher));
                            step_scores.push(None);
                            eval_errors.push(EvalError {
                                step: Value::from(step),
                                error: format!("{e:#}"),
                            });
                        }
                    }
                }
            }
            match &run.final_snapshot {
                None => eval_errors.push(EvalError {
                    step: Value::from("final"),
                    error: "no final snapshot (env_log/traces/step_final_files): the run did not finish".into(),
                }),
                Some(s) => match score_snapshot(cfg, &cmd, &s.dir, folder.as_deref()) {
                    Ok(v) => {
                        score.push(v);
                        keep_best(v);
                        final_score = Some(v);
                    }
                    Err(e) => eval_errors.push(EvalError {
                        step: Value::from("final"),
                        error: format!("{e:#}"),
                    }),
                },
            }
        }
    }
    EvaluatedRun {
        folder: super::folder_label(cfg, run),
        task_known: true,
        result: RunResult::of_run(
            run,
            run.recorded_task().map(String::from),
            result::Graded {
                score,
                score_steps,
                step_scores,
                final_score,
                best_score: best,
                eval_errors,
            },
        ),
    }
}

/// Runs the eval command on one snapshot and reads its score.
fn score_snapshot(cfg: &Config, cmd: &str, snapshot: &Path, folder: Option<&Path>) -> Result<f64> {
    let snapshot = std::path::absolute(snapshot)?;
    let workdir = folder.unwrap_or(&snapshot);
    let py = crate::python::resolve(cfg.python.as_deref());
    let mut policy =
        sandbox::policy::grader_policy(&snapshot, workdir, workdir, Some(py.path.as_path()));
    policy.timeout = Some(cfg.eval_timeout);
    policy.max_output = Some(MAX_OUTPUT);
    let sb = super::grader::grader_sandbox(cfg.sandbox)?;
    let argv: Vec<OsString> = task_adhoc::eval_argv(cmd, &sandbox::policy::real(&snapshot))
        .into_iter()
        .map(OsString::from)
        .collect();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let outcome = sandbox::run(
        sb.as_ref(),
        &argv,
        &policy,
        &mut |stream, chunk| match stream {
            Stream::Stdout => stdout.extend_from_slice(chunk),
            Stream::Stderr => stderr.extend_from_slice(chunk),
        },
    )?;
    if let Some(b) = &outcome.breach {
        bail!("the eval command stopped: {b}");
    }
    if !outcome.success() {
        let tail = super::grader::last_lines(&String::from_utf8_lossy(&stderr), 5);
        bail!(
            "the eval command failed ({}){}",
            match (outcome.code, outcome.signal) {
                (Some(c), _) => format!("exit code {c}"),
                (None, Some(s)) => format!("signal {s}"),
                _ => "no exit code".into(),
            },
            if tail.trim().is_empty() {
                String::new()
            } else {
                format!(": {tail}")
            }
        );
    }
    task_adhoc::parse_score(&String::from_utf8_lossy(&stdout))
}
