//! `mlab eval`: score every run in a log folder with its task's
//! `script/eval.py`, and sum the scores up per task and configuration.
//!
//! Flow: find the runs (`runs`), work out each run's task, key every
//! snapshot to score by its content (`cache`), score the snapshots no cache
//! entry knows with persistent workers (`grader`), then build the per-run
//! entries (`result`) and the statistics (`summary`, `stats`). It reads
//! only what is on disk, so logs from any machine can be scored. It does
//! not run agents and never changes a run's files; the only thing it writes
//! in the log folder is the score cache.

mod cache;
mod grader;
mod result;
mod runs;
mod stats;
mod summary;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::Value;

use crate::task::{discover, Direction, Locations, Task};
use crate::ui;
use cache::{Cache, Hasher, CACHE_FILE};
use grader::{Job, Scored, TaskGrader};
use result::{EvalError, RunResult};
use runs::{Run, RunLayout};
use summary::{Group, RunStats, TaskFacts};

/// A task as eval uses it: loaded, with its eval.py found and hashed.
struct EvalTask {
    task: Task,
    eval_py: PathBuf,
    eval_hash: String,
}

/// Loads each task once, and remembers why one could not be.
struct TaskBook<'a> {
    global: &'a Locations,
    root: Option<Result<PathBuf, String>>,
    loaded: HashMap<String, Result<Arc<EvalTask>, String>>,
}

impl<'a> TaskBook<'a> {
    fn new(global: &'a Locations) -> Self {
        TaskBook {
            global,
            root: None,
            loaded: HashMap::new(),
        }
    }

    fn get(&mut self, name: &str) -> Result<Arc<EvalTask>, String> {
        if let Some(t) = self.loaded.get(name) {
            return t.clone();
        }
        let loaded = self.load(name);
        self.loaded.insert(name.to_string(), loaded.clone());
        loaded
    }

    fn load(&mut self, name: &str) -> Result<Arc<EvalTask>, String> {
        let global = self.global;
        let root = self
            .root
            .get_or_insert_with(|| discover::benchmarks_root(global).map_err(|e| format!("{e:#}")))
            .clone()?;
        let task = discover::find_task(&root, name).map_err(|e| format!("{e:#}"))?;
        let eval_py = task.script_dir().join("eval.py");
        if !eval_py.is_file() {
            return Err(format!(
                "task {name} has no {}, so its runs cannot be scored",
                eval_py.display()
            ));
        }
        let eval_hash = Hasher::default()
            .file_hex(&eval_py)
            .map_err(|e| format!("{e:#}"))?;
        Ok(Arc::new(EvalTask {
            task,
            eval_py,
            eval_hash,
        }))
    }
}

/// A run with its task and the snapshots to score.
struct Planned {
    run: Run,
    task: Result<Arc<EvalTask>, String>,
    /// (step, what identifies its score) for the intermediate snapshots.
    steps: Vec<(u64, Result<String, String>)>,
    /// The same for the final snapshot, when there is one.
    last: Option<Result<String, String>>,
}

/// The whole results file.
#[derive(Serialize)]
struct Output<'a> {
    mlab_version: &'static str,
    log_folder: String,
    eval_intermediate: bool,
    /// Per run, keyed by `path` as the original's file is.
    runs: &'a BTreeMap<String, RunResult>,
    summary: &'a [Group],
}

/// What `mlab eval` scores, and how (one field per flag).
#[derive(Debug, Clone)]
pub struct Config {
    /// Folder holding runs, searched at any depth.
    pub log_folder: PathBuf,
    /// Task of the runs (selects mlab runs; names MLAgentBench runs' task).
    pub task: Option<String>,
    /// Where to write the results as JSON.
    pub output_file: Option<PathBuf>,
    /// Also score every intermediate step snapshot.
    pub eval_intermediate: bool,
    /// Parallel scoring workers (None: the number of cores).
    pub jobs: Option<u64>,
    /// Seconds one get_score call may take.
    pub eval_timeout: f64,
    /// Neither read nor write the score cache.
    pub no_cache: bool,
    /// Python interpreter for eval.py (None: the usual lookup).
    pub python: Option<PathBuf>,
    /// How eval.py is confined.
    pub sandbox: crate::sandbox::Kind,
}

pub fn run(global: &Locations, args: &Config) -> Result<ExitCode> {
    let root = &args.log_folder;
    if !root.is_dir() {
        bail!(
            "--log-folder {} is not a folder; give the folder that holds your runs (mlab run --log-dir wrote them)",
            root.display()
        );
    }
    if !(args.eval_timeout.is_finite() && args.eval_timeout > 0.0) {
        bail!("--eval-timeout must be a positive number of seconds");
    }
    let started = Instant::now();
    let found = runs::discover(root)?;
    if found.is_empty() {
        bail!(
            "no runs found under {}: a run is a folder with run.json and env_log/ (mlab) \
             or with env_log/trace.json (MLAgentBench)",
            root.display()
        );
    }

    let mut tasks = TaskBook::new(global);
    let mut planned = Vec::new();
    let mut other_tasks: BTreeMap<String, usize> = BTreeMap::new();
    for (dir, layout) in found {
        let run = match Run::load(&dir, layout) {
            Ok(r) => r,
            Err(e) => {
                ui::warn(format!("skipping run {}: {e:#}", dir.display()));
                continue;
            }
        };
        if let (Some(wanted), RunLayout::Mlab, Some(own)) =
            (&args.task, layout, run.meta_str("task"))
        {
            if own != wanted {
                *other_tasks.entry(own.to_string()).or_default() += 1;
                continue;
            }
        }
        let task = task_of(&run, args.task.as_deref(), &mut tasks);
        planned.push(Planned {
            run,
            task,
            steps: Vec::new(),
            last: None,
        });
    }
    if planned.is_empty() {
        let seen: Vec<String> = other_tasks
            .iter()
            .map(|(t, n)| format!("{t} ({n})"))
            .collect();
        bail!(
            "no runs of task {} under {}; the runs there are of: {}",
            args.task.as_deref().unwrap_or("?"),
            root.display(),
            seen.join(", ")
        );
    }
    if !other_tasks.is_empty() {
        let n: usize = other_tasks.values().sum();
        ui::info(format!(
            "left out {n} run(s) of other tasks (--task selects)"
        ));
    }

    // Key every snapshot; collect those no cache entry knows.
    let mut cache = if args.no_cache {
        None
    } else {
        let c = Cache::open(&root.join(CACHE_FILE))?;
        if c.skipped_lines > 0 {
            ui::warn(format!(
                "{} unreadable line(s) in {} were ignored (a cut-off write leaves one)",
                c.skipped_lines,
                root.join(CACHE_FILE).display()
            ));
        }
        Some(c)
    };
    let mut hasher = Hasher::default();
    let mut pending: HashMap<String, Job> = HashMap::new();
    let mut total = 0usize;
    let mut cached = 0usize;
    for p in &mut planned {
        let Ok(task) = &p.task else { continue };
        let mut key_of = |dir: &Path| -> Result<String, String> {
            total += 1;
            let key = if args.no_cache {
                format!("path:{}", dir.display())
            } else {
                hasher
                    .snapshot_key(
                        task.task.name(),
                        &task.eval_hash,
                        &task.task.spec.submission,
                        dir,
                    )
                    .map_err(|e| format!("could not read the snapshot: {e:#}"))?
            };
            if cache.as_ref().and_then(|c| c.get(&key)).is_some() {
                cached += 1;
            } else {
                pending.entry(key.clone()).or_insert_with(|| Job {
                    task: task.task.name().to_string(),
                    key: key.clone(),
                    folder: absolute(dir),
                });
            }
            Ok(key)
        };
        if args.eval_intermediate {
            for s in &p.run.steps {
                let key = key_of(&s.dir);
                p.steps.push((s.step.unwrap_or_default(), key));
            }
        }
        if let Some(s) = &p.run.final_snapshot {
            p.last = Some(key_of(&s.dir));
        }
    }

    // Score what is left.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = args.jobs.map_or(cores, |j| j as usize).max(1);
    let mut graded: HashMap<String, Scored> = HashMap::new();
    if !pending.is_empty() {
        let slots = jobs.min(pending.len());
        ui::info(format!(
            "scoring {} snapshot(s) with up to {slots} worker(s); {cached} of {total} known from the cache{}",
            pending.len(),
            if total - cached > pending.len() {
                format!(", {} identical to another", total - cached - pending.len())
            } else {
                String::new()
            }
        ));
        let mut graders = HashMap::new();
        for p in &planned {
            if let Ok(t) = &p.task {
                graders
                    .entry(t.task.name().to_string())
                    .or_insert_with(|| TaskGrader {
                        eval_py: absolute(&t.eval_py),
                        script_dir: absolute(&t.task.script_dir()),
                        env_dir: absolute(&t.task.env_dir()),
                    });
            }
        }
        let py = crate::python::resolve(args.python.as_deref());
        let opts = grader::Options {
            python: py.path.clone(),
            jobs: slots,
            timeout: Duration::from_secs_f64(args.eval_timeout),
            snapshot_roots: vec![absolute(root)],
            threads_per_worker: (cores / slots).max(1),
            sandbox: grader::grader_sandbox(args.sandbox)?,
        };
        let shared = Mutex::new(cache.take());
        let done = |job: &Job, scored: &Scored| {
            if let Scored::Score(s) = scored {
                if let Some(c) = shared.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                    c.insert(&job.key, &job.task, *s);
                }
            }
        };
        // A Python the sandbox cannot start stops here, before any grading.
        grader::check_python(&graders, &opts, py.source)?;
        let result = grader::grade_all(pending.into_values().collect(), &graders, &opts, &done);
        for (task, why) in &result.broken {
            ui::warn(grader::broken_warning(task, why));
        }
        graded = result.scores;
        cache = shared.into_inner().unwrap_or_else(|e| e.into_inner());
    }
    let outcome = |key: &Result<String, String>| -> Scored {
        match key {
            Err(e) => Scored::Failed(e.clone()),
            Ok(k) => {
                if let Some(s) = cache.as_ref().and_then(|c| c.get(k)) {
                    return Scored::Score(s);
                }
                graded
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| Scored::Failed("the snapshot was not scored".into()))
            }
        }
    };

    // Per-run entries and statistics.
    let mut results = BTreeMap::new();
    let mut stats_in = Vec::new();
    let mut facts = BTreeMap::new();
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for p in &planned {
        let (entry, row_stats) = build_result(p, &outcome);
        let rel = p.run.dir.strip_prefix(root).unwrap_or(&p.run.dir);
        let rel = if rel.as_os_str().is_empty() {
            ".".to_string()
        } else {
            rel.display().to_string()
        };
        for e in &entry.eval_errors {
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
            problems.push(format!("{rel} [{step}]: {}", last.trim()));
        }
        rows.push(run_row(&rel, &entry));
        if let (Ok(t), Some(s)) = (&p.task, row_stats) {
            facts.entry(t.task.name().to_string()).or_insert(TaskFacts {
                direction: t.task.spec.direction,
                baseline: t.task.spec.baseline,
            });
            stats_in.push(s);
        }
        results.insert(entry.path.clone(), entry);
    }
    let groups = summary::summarize(&stats_in, &facts);

    crate::ui::out!(
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
    if !problems.is_empty() {
        crate::ui::outln!("\nNot scored:");
        for p in &problems {
            crate::ui::outln!("  {p}");
        }
    }
    crate::ui::outln!();
    crate::ui::out!("{}", summary_table(&groups));
    for g in &groups {
        if let Some(n) = &g.note {
            crate::ui::outln!("  {} / {}: {n}", g.task, g.config);
        }
    }

    if let Some(out) = &args.output_file {
        let doc = Output {
            mlab_version: env!("CARGO_PKG_VERSION"),
            log_folder: root.display().to_string(),
            eval_intermediate: args.eval_intermediate,
            runs: &results,
            summary: &groups,
        };
        write_json(out, &doc)?;
        ui::info(format!("results written to {}", out.display()));
    }
    ui::info(format!(
        "{} run(s), {total} snapshot(s) in {:.2} s",
        planned.len(),
        started.elapsed().as_secs_f64()
    ));
    if planned.iter().all(|p| p.task.is_err()) {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The task a run was made on.
fn task_of(run: &Run, flag: Option<&str>, tasks: &mut TaskBook) -> Result<Arc<EvalTask>, String> {
    match run.layout {
        RunLayout::Mlab => {
            let name = run.meta_str("task").or(flag).ok_or_else(|| {
                format!(
                    "{} names no task; pass --task",
                    run.dir.join("run.json").display()
                )
            })?;
            tasks.get(name)
        }
        RunLayout::Original => {
            if let Some(name) = flag {
                return tasks.get(name);
            }
            let mut tried = Vec::new();
            for name in [run.arg("task").map(String::from), run.folder_task_name()]
                .into_iter()
                .flatten()
            {
                match tasks.get(&name) {
                    Ok(t) => return Ok(t),
                    Err(_) => tried.push(name),
                }
            }
            Err(format!(
                "cannot tell the task of this MLAgentBench run (tried: {}); pass --task, \
                 or keep the original's layout <exp>/<task>/<run>",
                if tried.is_empty() {
                    "nothing".to_string()
                } else {
                    tried.join(", ")
                }
            ))
        }
    }
}

/// The results entry of one run, and what the statistics need of it (none
/// when the run's task is unknown).
fn build_result(
    p: &Planned,
    outcome: &dyn Fn(&Result<String, String>) -> Scored,
) -> (RunResult, Option<RunStats>) {
    let run = &p.run;
    let extra = result::extra_flags(run);
    let direction = p
        .task
        .as_ref()
        .map(|t| t.task.spec.direction)
        .unwrap_or(Direction::Higher);
    let mut score = Vec::new();
    let mut score_steps = Vec::new();
    let mut eval_errors = Vec::new();
    let mut best: Option<f64> = None;
    let mut keep_best = |s: f64| {
        best = Some(best.map_or(s, |b| stats::better(b, s, direction)));
    };
    for (step, key) in &p.steps {
        score_steps.push(*step);
        match outcome(key) {
            Scored::Score(s) => {
                score.push(s);
                keep_best(s);
            }
            Scored::Raised(e) | Scored::Failed(e) => {
                // The original counts a failed intermediate snapshot as 0.
                score.push(0.0);
                eval_errors.push(EvalError {
                    step: Value::from(*step),
                    error: e,
                });
            }
        }
    }
    let mut final_score = None;
    match (&p.task, &p.last) {
        (Err(e), _) => eval_errors.push(EvalError {
            step: Value::Null,
            error: e.clone(),
        }),
        (Ok(_), None) => eval_errors.push(EvalError {
            step: Value::from("final"),
            error: "no final snapshot (env_log/traces/step_final_files): the run did not finish"
                .into(),
        }),
        (Ok(_), Some(key)) => match outcome(key) {
            Scored::Score(s) => {
                score.push(s);
                keep_best(s);
                final_score = Some(s);
            }
            Scored::Raised(e) | Scored::Failed(e) => eval_errors.push(EvalError {
                step: Value::from("final"),
                error: e,
            }),
        },
    }
    let task_name = match &p.task {
        Ok(t) => Some(t.task.name().to_string()),
        Err(_) => run.meta_str("task").map(String::from),
    };
    let agent = run.agent();
    let llm = run.llm();
    let stats = p.task.as_ref().ok().map(|t| RunStats {
        task: t.task.name().to_string(),
        agent: agent.clone(),
        llm: llm.clone(),
        config: run.config(),
        infra_failure: result::infra_failure(run, &extra),
        final_score,
        best_score: best,
    });
    let entry = RunResult {
        path: run
            .dir
            .join("env_log")
            .join("trace.json")
            .display()
            .to_string(),
        summary: String::new(),
        rubric_questions: BTreeMap::new(),
        score,
        score_steps,
        submitted_final_answer: run.submitted_final_answer(),
        final_score: final_score.unwrap_or(-1.0),
        total_time: result::total_time(run),
        error: result::error_text(run),
        extra,
        task: task_name,
        agent,
        llm,
        seed: result::meta(run, "seed"),
        steps: result::steps(run),
        tokens: result::meta(run, "tokens"),
        cost_usd: result::meta(run, "cost_usd"),
        exit_reason: result::meta(run, "exit_reason"),
        tampered: result::meta(run, "tampered"),
        best_score: best,
        eval_errors,
    };
    (entry, stats)
}

fn run_row(rel: &str, r: &RunResult) -> Vec<String> {
    let final_valid = !r
        .eval_errors
        .iter()
        .any(|e| e.step.is_null() || e.step == "final");
    vec![
        rel.to_string(),
        r.task.clone().unwrap_or_else(|| "?".into()),
        summary::config_label(r.agent.as_deref(), &r.llm),
        if final_valid {
            fmt_num(r.final_score)
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

fn summary_table(groups: &[Group]) -> String {
    let pct = |x: f64| format!("{:.0}%", x * 100.0);
    let with_ci =
        |e: &stats::Estimate| format!("{} [{}, {}]", pct(e.mean), pct(e.ci95[0]), pct(e.ci95[1]));
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

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
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
