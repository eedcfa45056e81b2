//! Flags of `mlab eval`, following the original's eval module where it has
//! the same flag (`--log-folder`, `--task`, `--output-file`,
//! `--eval-intermediate`), and the front end of `mlab eval`: the flags
//! become an `eval::Config`, and the `eval::EvalReport` becomes the tables
//! on stdout and the results file.

use std::collections::BTreeMap;
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

    /// Where to write the per-run results, in the original's layout (one
    /// entry per run, keyed by its env_log/trace.json). The summary goes to
    /// eval_summary.json beside it. Default: <log-folder>/eval.json.
    #[arg(long, value_name = "FILE")]
    pub output_file: Option<PathBuf>,

    /// The baseline score success is measured against: VALUE for every
    /// task, or TASK=VALUE (repeatable). Comes before the baseline agent's
    /// runs, task.toml's `baseline` and its `paper_baseline`.
    #[arg(long, value_name = "[TASK=]VALUE")]
    pub baseline: Vec<String>,

    /// Compare configuration B with configuration A run for run (paired by
    /// task and seed): differences in success rate and in improvement, with
    /// paired bootstrap intervals and permutation-test p-values. Names are
    /// as the summary's config column shows them in full (--wide).
    #[arg(long, num_args = 2, value_names = ["CONFIG_A", "CONFIG_B"])]
    pub compare: Option<Vec<String>>,

    /// Print every column, in full (the default table fits 100 columns).
    #[arg(long)]
    pub wide: bool,

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
        let compare = match self.compare.as_deref() {
            Some([a, b]) => Some((a.clone(), b.clone())),
            Some(_) => bail!("--compare takes two configuration names: --compare A B"),
            None => None,
        };
        Ok(eval::Config {
            baseline: parse_baselines(&self.baseline)?,
            compare,
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

/// `--baseline` values: `VALUE` (every task) or `TASK=VALUE`.
fn parse_baselines(given: &[String]) -> Result<BTreeMap<Option<String>, f64>> {
    let mut out = BTreeMap::new();
    for g in given {
        let (task, value) = match g.rsplit_once('=') {
            Some((t, v)) => (Some(t.trim().to_string()), v),
            None => (None, g.as_str()),
        };
        let v: f64 = value
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .with_context(|| {
                format!(
                    "--baseline {g:?}: give a number, or TASK=NUMBER (e.g. --baseline digits=0.79)"
                )
            })?;
        if out.insert(task.clone(), v).is_some() {
            bail!(
                "--baseline is given twice for {}",
                task.as_deref().unwrap_or("every task")
            );
        }
    }
    Ok(out)
}

/// The file names eval writes: eval.json (or --output-file) and
/// eval_summary.json beside it.
fn output_paths(args: &EvalArgs) -> Result<(PathBuf, PathBuf)> {
    let results = args
        .output_file
        .clone()
        .unwrap_or_else(|| args.log_folder.join("eval.json"));
    let dir = results
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let summary = dir.join(SUMMARY_FILE);
    if results.file_name() == summary.file_name() {
        bail!(
            "--output-file {} would be overwritten by the summary ({SUMMARY_FILE}); choose another name",
            results.display()
        );
    }
    Ok((results, summary))
}

/// The summary's file name, beside the results file.
pub const SUMMARY_FILE: &str = "eval_summary.json";

/// `mlab eval`: evaluates, prints the per-run table, what could not be
/// scored and the summary, and writes eval.json and eval_summary.json.
pub fn run_eval(global: &GlobalArgs, args: &EvalArgs) -> Result<ExitCode> {
    let (results_path, summary_path) = output_paths(args)?;
    let report = eval::evaluate(&args.to_config(global)?)?;
    print_report(&report, args.wide);
    write_json(&results_path, &report.eval_file())?;
    write_json(&summary_path, &report.summary_file())?;
    ui::info(format!(
        "results written to {} (summary: {})",
        results_path.display(),
        summary_path.display()
    ));
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

/// The width the default tables fit in.
const WIDTH: usize = 100;

fn print_report(report: &eval::EvalReport, wide: bool) {
    let rows: Vec<Vec<String>> = report
        .runs
        .iter()
        .map(|r| run_row(&r.folder, &r.result))
        .collect();
    let header = [
        "run",
        "task",
        "config",
        "final score",
        "best",
        "steps",
        "exit",
    ];
    // Shrink the run folder (keeping its end), then the config, then the task.
    ui::out!(
        "{}",
        fit(
            &header,
            rows,
            wide,
            &[(0, 12, true), (2, 14, false), (1, 10, false)]
        )
    );
    let problems: Vec<String> = report.runs.iter().flat_map(not_scored).collect();
    if !problems.is_empty() {
        ui::outln!("\nNot scored:");
        for p in &problems {
            ui::outln!(
                "  {}",
                clip(p, if wide { usize::MAX } else { WIDTH - 2 }, false)
            );
        }
    }
    ui::outln!();
    ui::out!("{}", summary_table(&report.summary, wide));
    ui::outln!(
        "success: runs whose final score beats the baseline by more than 10%, k/n [Wilson 95% CI]"
    );
    ui::outln!("mean final: [bootstrap 95% CI]; cost, tokens, time: mean per run");
    let mut seen = std::collections::BTreeSet::new();
    for g in &report.summary {
        if seen.insert(&g.task) {
            let line = match g.baseline {
                Some(b) => format!(
                    "baseline of {}: {} ({})",
                    g.task,
                    fmt_num(b),
                    g.baseline_source.describe(g.baseline_runs)
                ),
                None => format!("baseline of {}: none", g.task),
            };
            ui::outln!("{line}");
        }
    }
    for g in &report.summary {
        if let Some(n) = &g.note {
            let line = format!("  {} / {}: {n}", g.task, g.config);
            ui::outln!(
                "{}",
                clip(&line, if wide { usize::MAX } else { WIDTH }, false)
            );
        }
    }
    if let Some(c) = &report.comparison {
        ui::outln!();
        ui::out!("{}", comparison_table(c, wide));
    }
}

/// Cuts `text` to `max` characters with an ellipsis, keeping its end when
/// `keep_end` (a path's last folders say most).
fn clip(text: &str, max: usize, keep_end: bool) -> String {
    let n = text.chars().count();
    if n <= max || max == 0 {
        return text.to_string();
    }
    if keep_end {
        let tail: String = text.chars().skip(n - (max - 1)).collect();
        format!("…{tail}")
    } else {
        let head: String = text.chars().take(max - 1).collect();
        format!("{head}…")
    }
}

/// A table within [`WIDTH`] columns unless `wide`: the `shrink` columns
/// (index, narrowest width, keep the end) are cut in turn as far as needed.
fn fit(
    header: &[&str],
    mut rows: Vec<Vec<String>>,
    wide: bool,
    shrink: &[(usize, usize, bool)],
) -> String {
    if !wide {
        let width = |rows: &[Vec<String>], i: usize| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        };
        let total = |rows: &[Vec<String>]| {
            (0..header.len()).map(|i| width(rows, i)).sum::<usize>() + 2 * (header.len() - 1)
        };
        for &(col, min, keep_end) in shrink {
            let over = total(&rows).saturating_sub(WIDTH);
            if over == 0 {
                break;
            }
            let target = width(&rows, col).saturating_sub(over).max(min);
            for r in &mut rows {
                r[col] = clip(&r[col], target, keep_end);
            }
        }
    }
    ui::table(header, &rows)
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

/// "37%" from 0.37.
fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// "1/3 33% [6-79%]".
fn fmt_rate(r: &eval::Rate) -> String {
    format!(
        "{}/{} {} [{:.0}-{}]",
        r.k,
        r.n,
        pct(r.rate),
        r.ci95[0] * 100.0,
        pct(r.ci95[1])
    )
}

/// "0.797 [0.793, 0.801]", or "0.7 (n=1, no interval)"; `f` formats.
fn fmt_estimate(e: &eval::Estimate, f: &dyn Fn(f64) -> String) -> String {
    match e.ci95 {
        Some([lo, hi]) => format!("{} [{}, {}]", f(e.mean), f(lo), f(hi)),
        None => format!("{} (n={}, no interval)", f(e.mean), e.n),
    }
}

/// Three significant digits, for table cells.
fn short(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return fmt_num(x);
    }
    let mag = x.abs().log10().floor() as i32;
    if !(-3..6).contains(&mag) {
        return format!("{x:.2e}");
    }
    let decimals = (2 - mag).max(0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn fmt_cost(u: &eval::Usage) -> String {
    if u.mean < 0.01 && u.mean > 0.0 {
        format!("${:.4}", u.mean)
    } else {
        format!("${:.2}", u.mean)
    }
}

fn fmt_tokens(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn fmt_time(secs: f64) -> String {
    if secs >= 3600.0 {
        format!("{:.1}h", secs / 3600.0)
    } else if secs >= 60.0 {
        format!("{:.1}m", secs / 60.0)
    } else {
        format!("{secs:.0}s")
    }
}

fn or_dash<T>(v: Option<&T>, f: impl Fn(&T) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".into())
}

/// The summary: within 100 columns by default, every column with `wide`.
fn summary_table(groups: &[eval::Group], wide: bool) -> String {
    let success = |g: &eval::Group| or_dash(g.success_rate.as_ref(), |s| fmt_rate(&s.t10));
    let final_score =
        |g: &eval::Group| or_dash(g.final_score.as_ref(), |e| fmt_estimate(e, &short));
    let usage = |g: &eval::Group| {
        [
            or_dash(g.cost_usd.as_ref(), fmt_cost),
            or_dash(g.tokens.as_ref(), |u| fmt_tokens(u.mean)),
            or_dash(g.wall_time_s.as_ref(), |u| fmt_time(u.mean)),
        ]
    };
    if !wide {
        let rows: Vec<Vec<String>> = groups
            .iter()
            .map(|g| {
                let mut row = vec![
                    g.task.clone(),
                    g.config.clone(),
                    g.runs.to_string(),
                    success(g),
                    final_score(g),
                ];
                row.extend(usage(g));
                row
            })
            .collect();
        return fit(
            &[
                "task",
                "config",
                "runs",
                "success >10%",
                "mean final",
                "cost",
                "tokens",
                "time",
            ],
            rows,
            false,
            &[(1, 14, false), (0, 10, false)],
        );
    }
    let with_ci = |e: &eval::Estimate| fmt_estimate(e, &pct);
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            let others = g
                .success_rate
                .as_ref()
                .map(|s| {
                    [&s.t5, &s.t15, &s.t20, &s.t30]
                        .iter()
                        .map(|r| format!("{}/{}", r.k, r.n))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_else(|| "-".into());
            let mut row = vec![
                g.task.clone(),
                g.config.clone(),
                g.direction.to_string(),
                g.runs.to_string(),
                g.infra_failures.to_string(),
                match g.baseline {
                    Some(b) => format!(
                        "{} ({})",
                        fmt_num(b),
                        g.baseline_source.describe(g.baseline_runs)
                    ),
                    None => "none".into(),
                },
                success(g),
                or_dash(g.success_rate_any_step.as_ref(), |s| fmt_rate(&s.t10)),
                final_score(g),
                or_dash(g.average_improvement.as_ref(), with_ci),
                others,
            ];
            row.extend(usage(g));
            row.push(or_dash(g.cost_usd.as_ref(), |u| format!("${:.2}", u.total)));
            row
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
            "success >10%",
            "any step >10%",
            "mean final",
            "avg improvement",
            "success >5/15/20/30%",
            "cost",
            "tokens",
            "time",
            "total cost",
        ],
        &rows,
    )
}

/// "+67% [0, 100] p=0.50"; `f` formats the mean and the interval.
fn fmt_diff(d: &eval::PairedDiff) -> String {
    let signed = |x: f64| {
        let s = format!("{:.0}", x * 100.0);
        if x > 0.0 && s != "0" {
            format!("+{s}")
        } else {
            s
        }
    };
    let ci = match d.ci95 {
        Some([lo, hi]) => format!(" [{}, {}]", signed(lo), signed(hi)),
        None => " (n=1, no interval)".into(),
    };
    format!("{}%{ci} p={:.2}", signed(d.mean), d.p_value)
}

/// The paired comparison of B against A.
fn comparison_table(c: &eval::Comparison, wide: bool) -> String {
    let row = |task: &str, s: &eval::Side, extra: String| {
        vec![
            task.to_string(),
            s.pairs.to_string(),
            or_dash(s.success_a.as_ref(), |r| format!("{}/{}", r.k, r.n)),
            or_dash(s.success_b.as_ref(), |r| format!("{}/{}", r.k, r.n)),
            or_dash(s.success_diff.as_ref(), fmt_diff),
            or_dash(s.improvement_diff.as_ref(), fmt_diff),
            extra,
        ]
    };
    let mut rows: Vec<Vec<String>> = c
        .tasks
        .iter()
        .map(|t| {
            let unpaired = t.unpaired_a + t.unpaired_b;
            let note = if unpaired > 0 {
                format!("by {}, {unpaired} unpaired", t.paired_by)
            } else {
                format!("by {}", t.paired_by)
            };
            row(&t.task, &t.side, note)
        })
        .collect();
    rows.push(row("overall", &c.overall, String::new()));
    let title = format!(
        "B against A, paired (B minus A; success at >{}%):\n  A = {}\n  B = {}\n",
        c.threshold_pct, c.a, c.b
    );
    let table = fit(
        &[
            "task",
            "pairs",
            "A",
            "B",
            "success B-A [95% CI]",
            "improvement B-A [95% CI]",
            "pairing",
        ],
        rows,
        wide,
        &[(0, 10, false)],
    );
    format!("{title}{table}")
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
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| {
        format!(
            "could not write into {}; choose another place with --output-file",
            dir.display()
        )
    })?;
    // NamedTempFile makes 0600; results are for sharing.
    tmp.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
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

    #[test]
    fn table_cells_are_short_and_say_when_there_is_no_interval() {
        assert_eq!(short(0.797_312), "0.797");
        assert_eq!(short(12.345), "12.3");
        assert_eq!(short(0.5), "0.5");
        let one = eval::Estimate {
            mean: 0.7,
            ci95: None,
            n: 1,
        };
        assert_eq!(fmt_estimate(&one, &short), "0.7 (n=1, no interval)");
        let r = eval::Rate {
            k: 0,
            n: 5,
            rate: 0.0,
            ci95: [0.0, 0.4345],
        };
        assert_eq!(fmt_rate(&r), "0/5 0% [0-43%]");
        assert_eq!(clip("abcdef", 4, false), "abc…");
        assert_eq!(clip("abcdef", 4, true), "…def");
    }

    #[test]
    fn baselines_parse_for_every_task_or_one() {
        let b = parse_baselines(&["0.5".into(), "digits=0.79".into()]).unwrap();
        assert_eq!(b.get(&None), Some(&0.5));
        assert_eq!(b.get(&Some("digits".into())), Some(&0.79));
        assert!(parse_baselines(&["x=abc".into()]).is_err());
        assert!(parse_baselines(&["1".into(), "2".into()]).is_err());
    }
}
