//! Flags of `mlab eval`, following the original's eval module where it has
//! the same flag (`--log-folder`, `--task`, `--output-file`,
//! `--eval-intermediate`), and the front end of `mlab eval`: the flags
//! become an `eval::Config`, and the `eval::EvalReport` becomes the tables
//! on stdout and the results file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use mlab::{eval, ui};
use serde::Serialize;
use serde_json::Value;

use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Folder holding runs, searched at any depth: mlab runs (run.json and
    /// env_log/) and MLAgentBench runs (env_log/trace.json).
    #[arg(long, value_name = "DIR")]
    pub log_folder: PathBuf,

    /// Task of the runs. mlab runs name their task in run.json, so for them
    /// this only selects: runs of other tasks are left out. MLAgentBench runs
    /// get this task (without it: the task in the run's `log`, then the
    /// folder name of <exp>/<task>/<run>).
    #[arg(long)]
    pub task: Option<String>,

    /// Write the results (per run, plus the summary) as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub output_file: Option<PathBuf>,

    /// Also score every intermediate step snapshot (env_log/traces/step_N_files).
    #[arg(long)]
    pub eval_intermediate: bool,

    /// Parallel scoring workers (default: the number of cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs: Option<u64>,

    /// Seconds one get_score call may take before its worker is stopped and
    /// the snapshot gets an error entry.
    #[arg(long, value_name = "SECS", default_value_t = 1800.0)]
    pub eval_timeout: f64,

    /// Neither read nor write the score cache (DIR/.mlab-eval-cache.jsonl),
    /// and score every snapshot even when its submission equals another's.
    #[arg(long)]
    pub no_cache: bool,

    /// Python interpreter for eval.py (default: $MLAB_PYTHON, then the venv
    /// made by install.sh, then python3).
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,

    /// How eval.py is confined: bubblewrap with the snapshot read-only, the
    /// answers visible and no network (auto/bwrap), or not at all (none).
    #[arg(long, value_enum, default_value_t = super::SandboxKind::Auto)]
    pub sandbox: super::SandboxKind,
}

impl EvalArgs {
    /// The engine's configuration; fails on values no run could use.
    pub fn to_config(&self, global: &GlobalArgs) -> Result<eval::Config> {
        if !(self.eval_timeout.is_finite() && self.eval_timeout > 0.0) {
            bail!("--eval-timeout must be a positive number of seconds");
        }
        Ok(eval::Config {
            log_folder: self.log_folder.clone(),
            task: self.task.clone(),
            eval_intermediate: self.eval_intermediate,
            jobs: self.jobs.map(|j| j as usize),
            eval_timeout: Duration::from_secs_f64(self.eval_timeout),
            use_cache: !self.no_cache,
            python: self.python.clone(),
            sandbox: self.sandbox.into(),
            benchmarks_dir: global.benchmarks_dir.clone(),
        })
    }
}

/// `mlab eval`: evaluates, prints the per-run table, what could not be
/// scored and the summary, and writes the results file when asked.
pub fn run_eval(global: &GlobalArgs, args: &EvalArgs) -> Result<ExitCode> {
    let report = eval::evaluate(&args.to_config(global)?)?;
    print_report(&report);
    if let Some(out) = &args.output_file {
        write_json(out, &report.results_file())?;
        ui::info(format!("results written to {}", out.display()));
    }
    ui::info(format!(
        "{} run(s), {} snapshot(s) in {:.2} s",
        report.runs.len(),
        report.snapshots,
        report.elapsed.as_secs_f64()
    ));
    if report.no_task_known() {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(report: &eval::EvalReport) {
    let rows: Vec<Vec<String>> = report
        .runs
        .iter()
        .map(|r| run_row(&r.folder, &r.result))
        .collect();
    ui::out!(
        "{}",
        ui::table(
            &[
                "run",
                "task",
                "config",
                "final score",
                "best",
                "steps",
                "exit"
            ],
            &rows
        )
    );
    let problems: Vec<String> = report.runs.iter().flat_map(not_scored).collect();
    if !problems.is_empty() {
        ui::outln!("\nNot scored:");
        for p in &problems {
            ui::outln!("  {p}");
        }
    }
    ui::outln!();
    ui::out!("{}", summary_table(&report.summary));
    for g in &report.summary {
        if let Some(n) = &g.note {
            ui::outln!("  {} / {}: {n}", g.task, g.config);
        }
    }
}

/// "folder [step]: last line of the error", per snapshot not scored.
fn not_scored(run: &eval::EvaluatedRun) -> Vec<String> {
    run.result
        .eval_errors
        .iter()
        .map(|e| {
            let step = match &e.step {
                Value::Null => "run".to_string(),
                Value::String(s) => s.clone(),
                v => format!("step {v}"),
            };
            let last = e
                .error
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            format!("{} [{step}]: {}", run.folder, last.trim())
        })
        .collect()
}

fn run_row(rel: &str, r: &eval::RunResult) -> Vec<String> {
    let final_valid = !r
        .eval_errors
        .iter()
        .any(|e| e.step.is_null() || e.step == "final");
    vec![
        rel.to_string(),
        r.task.clone().unwrap_or_else(|| "?".into()),
        eval::config_label(r.agent.as_deref(), &r.llm),
        if final_valid {
            fmt_num(r.final_score)
        } else if r
            .eval_errors
            .iter()
            .any(|e| e.error.starts_with("no grader"))
        {
            // An ad-hoc run without --eval-cmd (issue 18).
            "no grader".into()
        } else {
            "-".into()
        },
        r.best_score.map(fmt_num).unwrap_or_else(|| "-".into()),
        match &r.steps {
            Value::Null => "-".into(),
            v => v.to_string(),
        },
        r.exit_reason.as_str().unwrap_or("-").to_string(),
    ]
}

fn summary_table(groups: &[eval::Group]) -> String {
    let pct = |x: f64| format!("{:.0}%", x * 100.0);
    let with_ci =
        |e: &eval::Estimate| format!("{} [{}, {}]", pct(e.mean), pct(e.ci95[0]), pct(e.ci95[1]));
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            let others = g
                .success_rate
                .as_ref()
                .map(|s| {
                    [&s.t5, &s.t15, &s.t20, &s.t30]
                        .iter()
                        .map(|e| pct(e.mean))
                        .collect::<Vec<_>>()
                        .join(" / ")
                })
                .unwrap_or_else(|| "-".into());
            vec![
                g.task.clone(),
                g.config.clone(),
                g.direction.to_string(),
                g.runs.to_string(),
                g.infra_failures.to_string(),
                match (g.baseline, g.baseline_source) {
                    (Some(b), "baseline_runs") => {
                        format!("{} (mean of {} runs)", fmt_num(b), g.baseline_runs)
                    }
                    (Some(b), source) => format!("{} ({source})", fmt_num(b)),
                    (None, _) => "unknown".into(),
                },
                g.final_score
                    .as_ref()
                    .map(|e| fmt_num(e.mean))
                    .unwrap_or_else(|| "-".into()),
                g.success_rate
                    .as_ref()
                    .map(|s| with_ci(&s.t10))
                    .unwrap_or_else(|| "-".into()),
                g.success_rate_any_step
                    .as_ref()
                    .map(|s| pct(s.t10.mean))
                    .unwrap_or_else(|| "-".into()),
                g.average_improvement
                    .as_ref()
                    .map(with_ci)
                    .unwrap_or_else(|| "-".into()),
                others,
            ]
        })
        .collect();
    ui::table(
        &[
            "task",
            "config",
            "better",
            "runs",
            "infra fail",
            "baseline",
            "mean final",
            "success >10% [95% CI]",
            "any step >10%",
            "avg improvement [95% CI]",
            "success >5/15/20/30%",
        ],
        &rows,
    )
}

/// Up to 6 significant digits, in plain notation where that stays short.
fn fmt_num(x: f64) -> String {
    if x != 0.0 && (x.abs() >= 1e7 || x.abs() < 1e-4) {
        return format!("{x:.4e}");
    }
    let s = format!("{x:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// Writes through a temporary file, so a failure leaves any older file whole.
fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("could not write into {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())?;
    std::io::Write::write_all(&mut tmp, b"\n")?;
    tmp.persist(path)
        .with_context(|| format!("could not write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_short() {
        assert_eq!(fmt_num(0.5), "0.5");
        assert_eq!(fmt_num(1.0), "1");
        assert_eq!(fmt_num(0.123456789), "0.123457");
        assert_eq!(fmt_num(1e10), "1.0000e10");
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(-2.5), "-2.5");
    }
}
