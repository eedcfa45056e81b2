//! `mlab eval`: score every run in a log folder with its task's
//! `script/eval.py`, and sum the scores up per task and configuration.
//!
//! [`evaluate`] is a pipeline of named stages, each a function from one
//! typed value to the next:
//!
//! 1. `discover`: the runs under the log folder (`runs`), loaded, with
//!    `--task` applied to mlab runs;
//! 2. `plan`: each run's task, loaded once per task;
//! 3. `key`: every snapshot to score, keyed by its content (`cache`), and
//!    the jobs no cache entry knows;
//! 4. `grade`: those jobs scored by persistent workers (`grader`);
//! 5. `collect`: the per-run entries (`result`);
//! 6. `summarise`: the statistics per task and configuration (`summary`,
//!    `stats`).
//!
//! With `Config::compare`, a last stage pairs two configurations' runs
//! (`compare`).
//!
//! It reads only what is on disk, so logs from any machine can be scored.
//! It does not run agents and never changes a run's files; the only thing
//! it writes in the log folder is the score cache. Printing the tables and
//! writing eval.json and eval_summary.json are the front end's
//! (`cli::eval`, from [`EvalReport::eval_file`] and
//! [`EvalReport::summary_file`]); this module only says how far it got on
//! stderr.

mod adhoc;
mod cache;
mod compare;
mod grader;
mod result;
mod runs;
mod stats;
mod summary;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::Serialize;
use serde_json::Value;

use crate::sandbox::Kind as SandboxKind;
use crate::task::{discover as tasks, Direction, Task};
use crate::ui;
use cache::{Cache, Hasher, CACHE_FILE};
use grader::{Job, Scored, TaskGrader};
use runs::{Run, RunLayout};
use summary::{RunStats, TaskFacts};

pub use compare::{Comparison, Side, TaskComparison};
pub use result::{EvalError, RunResult};
pub use stats::{bootstrap_ci, permutation_p, succeeds, wilson, Estimate, PairedDiff, Rate};
pub use summary::{config_label, is_baseline_agent, BaselineSource, Group, Usage};

/// What to evaluate, and how. Plain data: the front end builds it from the
/// command line (`cli::eval`), other callers by hand.
#[derive(Debug, Clone)]
pub struct Config {
    /// Folder holding the runs, searched at any depth.
    pub log_folder: PathBuf,
    /// Task of the runs: mlab runs of other tasks are left out; runs of the
    /// original get this task.
    pub task: Option<String>,
    /// Also score every intermediate step snapshot.
    pub eval_intermediate: bool,
    /// Parallel scoring workers (None: the number of cores).
    pub jobs: Option<usize>,
    /// How long one get_score call may take before its worker is stopped.
    pub eval_timeout: Duration,
    /// Read and write the score cache, and score a submission equal to
    /// another's only once.
    pub use_cache: bool,
    /// Python for eval.py (None: $MLAB_PYTHON, the venv, python3).
    pub python: Option<PathBuf>,
    /// How eval.py is confined.
    pub sandbox: SandboxKind,
    /// Folder holding the task folders (None: the usual places).
    pub benchmarks_dir: Option<PathBuf>,
    /// Baselines given by the caller (`--baseline`), by task; the `None`
    /// key applies to every task. They come before any other baseline.
    pub baseline: BTreeMap<Option<String>, f64>,
    /// Two configurations to compare run for run: (A, B), B against A.
    pub compare: Option<(String, String)>,
}

/// What [`evaluate`] found: every run's entry and the summary.
#[derive(Debug, Clone)]
pub struct EvalReport {
    pub log_folder: PathBuf,
    pub eval_intermediate: bool,
    /// Every run, in the order found.
    pub runs: Vec<EvaluatedRun>,
    /// One row per task and configuration.
    pub summary: Vec<Group>,
    /// B against A, when `Config::compare` asked for it.
    pub comparison: Option<Comparison>,
    /// Snapshots scored or taken from the cache.
    pub snapshots: usize,
    pub elapsed: Duration,
}

/// One run's entry.
#[derive(Debug, Clone)]
pub struct EvaluatedRun {
    /// The run's folder relative to the log folder ("." for the folder itself).
    pub folder: String,
    /// Whether the run's task was found (else nothing of it could be scored).
    pub task_known: bool,
    pub result: RunResult,
}

/// `eval_summary.json`, as the front end writes it beside eval.json.
#[derive(Serialize)]
pub struct SummaryFile<'a> {
    pub mlab_version: &'static str,
    pub log_folder: String,
    pub eval_intermediate: bool,
    /// Runs and snapshots scored.
    pub runs: usize,
    pub snapshots: usize,
    /// How the intervals are made.
    pub method: Method,
    /// One row per task and configuration.
    pub summary: &'a [Group],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<&'a Comparison>,
}

/// How the statistics in the summary are computed.
#[derive(Serialize)]
pub struct Method {
    pub success_interval: &'static str,
    pub mean_interval: &'static str,
    pub bootstrap_resamples: usize,
    pub permutation_test: &'static str,
    pub seed: &'static str,
}

impl EvalReport {
    /// Whether no run's task could be found (so nothing could be scored).
    pub fn no_task_known(&self) -> bool {
        self.runs.iter().all(|r| !r.task_known)
    }

    /// eval.json: exactly the original's layout, one entry per run keyed
    /// by its `path` (env_log/trace.json), so the original's analysis code
    /// reads it as its own.
    pub fn eval_file(&self) -> BTreeMap<&str, &RunResult> {
        self.runs
            .iter()
            .map(|r| (r.result.path.as_str(), &r.result))
            .collect()
    }

    /// eval_summary.json: the statistics, and the comparison if any.
    pub fn summary_file(&self) -> SummaryFile<'_> {
        SummaryFile {
            mlab_version: env!("CARGO_PKG_VERSION"),
            log_folder: self.log_folder.display().to_string(),
            eval_intermediate: self.eval_intermediate,
            runs: self.runs.len(),
            snapshots: self.snapshots,
            method: Method {
                success_interval: "Wilson score 95% interval of k/n",
                mean_interval: "percentile bootstrap 95% interval (from n >= 2)",
                bootstrap_resamples: stats::BOOTSTRAP_RESAMPLES,
                permutation_test: "two-sided sign-flip test on paired differences \
                                   (exact up to 16 pairs)",
                seed: "SplitMix64 seeded from the FNV-1a hash of task and configuration",
            },
            summary: &self.summary,
            comparison: self.comparison.as_ref(),
        }
    }
}

/// Why a run's task could not be used; every snapshot of the run gets it.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// No benchmarks folder.
    #[error(transparent)]
    Benchmarks(anyhow::Error),
    /// No such task, or it could not be loaded.
    #[error(transparent)]
    Load(anyhow::Error),
    #[error("task {task} has no {}, so its runs cannot be scored", eval_py.display())]
    NoEvalPy { task: String, eval_py: PathBuf },
    #[error(transparent)]
    Unreadable(anyhow::Error),
    #[error("{} names no task; pass --task", run_json.display())]
    Unnamed { run_json: PathBuf },
    #[error(
        "cannot tell the task of this MLAgentBench run (tried: {tried}); pass --task, \
         or keep the original's layout <exp>/<task>/<run>"
    )]
    Undetermined { tried: String },
}

/// Why a snapshot could not be keyed (so it is not scored).
#[derive(Debug, thiserror::Error)]
#[error("could not read the snapshot")]
pub struct SnapshotError(#[source] anyhow::Error);

/// An error and its causes on one line, as `{:#}` prints an anyhow error.
fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// Scores every run under `cfg.log_folder`. Fails only when there is
/// nothing to score or the scoring cannot start at all; a run, task or
/// snapshot that cannot be scored gets an error in its entry instead.
pub fn evaluate(cfg: &Config) -> Result<EvalReport> {
    let started = Instant::now();
    let found = discover(cfg)?;
    // Ad-hoc runs have no task folder: scored by their --eval-cmd, or
    // listed as "no grader" (see `adhoc`).
    let (adhoc_runs, found) = adhoc::split(found);
    let planned = plan(cfg, found);
    let keyed = key(cfg, planned)?;
    let snapshots = keyed.total;
    let scored = grade(cfg, keyed)?;
    let mut collected = collect(cfg, scored);
    collected
        .runs
        .extend(adhoc_runs.iter().map(|r| adhoc::evaluate_run(cfg, r)));
    let summary = summarise(cfg, &collected);
    let comparison = match &cfg.compare {
        Some((a, b)) => Some(compare::compare(
            &collected.stats,
            &collected.facts,
            &cfg.baseline,
            a,
            b,
        )?),
        None => None,
    };
    Ok(EvalReport {
        log_folder: cfg.log_folder.clone(),
        eval_intermediate: cfg.eval_intermediate,
        runs: collected.runs,
        summary,
        comparison,
        snapshots,
        elapsed: started.elapsed(),
    })
}

/// Stage 1: the runs under the log folder, loaded (a run that cannot be is
/// skipped with a warning), less the mlab runs of tasks other than
/// `cfg.task`.
fn discover(cfg: &Config) -> Result<Vec<Run>> {
    let root = &cfg.log_folder;
    if !root.is_dir() {
        bail!(
            "--log-folder {} is not a folder; give the folder that holds your runs (mlab run --log-dir wrote them)",
            root.display()
        );
    }
    let found = runs::discover(root)?;
    if found.is_empty() {
        bail!(
            "no runs found under {}: a run is a folder with run.json and env_log/ (mlab) \
             or with env_log/trace.json (MLAgentBench)",
            root.display()
        );
    }
    let mut kept = Vec::new();
    let mut other_tasks: BTreeMap<String, usize> = BTreeMap::new();
    for (dir, layout) in found {
        let run = match Run::load(&dir, layout) {
            Ok(r) => r,
            Err(e) => {
                ui::warn(format!("skipping run {}: {e:#}", dir.display()));
                continue;
            }
        };
        if let (Some(wanted), RunLayout::Mlab, Some(own)) = (&cfg.task, layout, run.recorded_task())
        {
            if own != wanted {
                *other_tasks.entry(own.to_string()).or_default() += 1;
                continue;
            }
        }
        kept.push(run);
    }
    if kept.is_empty() {
        let seen: Vec<String> = other_tasks
            .iter()
            .map(|(t, n)| format!("{t} ({n})"))
            .collect();
        bail!(
            "no runs of task {} under {}; the runs there are of: {}",
            cfg.task.as_deref().unwrap_or("?"),
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
    Ok(kept)
}

/// A task as eval uses it: loaded, with its eval.py found and its grader
/// code hashed.
struct EvalTask {
    task: Task,
    eval_py: PathBuf,
    /// `cache::Hasher::code_key`: eval.py, its helpers, the interpreter.
    code_key: String,
}

impl EvalTask {
    /// The files eval.py reads, as task.toml declares them; None when the
    /// task declares none (the original layout), so it may read any.
    fn submission(&self) -> Option<&[String]> {
        (!self.task.defaulted.contains(&"submission")).then_some(&self.task.spec.submission[..])
    }
}

/// A task, or why it cannot be used (shared by every run of that name).
type TaskResult = std::result::Result<Arc<EvalTask>, Arc<TaskError>>;

/// Loads each task once, and remembers why one could not be.
struct TaskBook {
    benchmarks_dir: Option<PathBuf>,
    /// The interpreter the graders run, part of every code key.
    python: PathBuf,
    root: Option<std::result::Result<PathBuf, Arc<TaskError>>>,
    loaded: HashMap<String, TaskResult>,
}

impl TaskBook {
    fn new(benchmarks_dir: Option<PathBuf>, python: PathBuf) -> Self {
        TaskBook {
            benchmarks_dir,
            python,
            root: None,
            loaded: HashMap::new(),
        }
    }

    fn get(&mut self, name: &str) -> TaskResult {
        if let Some(t) = self.loaded.get(name) {
            return t.clone();
        }
        let loaded = self.load(name).map(Arc::new);
        self.loaded.insert(name.to_string(), loaded.clone());
        loaded
    }

    fn load(&mut self, name: &str) -> std::result::Result<EvalTask, Arc<TaskError>> {
        let dir = self.benchmarks_dir.as_deref();
        let root = self
            .root
            .get_or_insert_with(|| {
                tasks::find_benchmarks_root(dir).map_err(|e| Arc::new(TaskError::Benchmarks(e)))
            })
            .clone()?;
        let task = tasks::find_task(&root, name).map_err(TaskError::Load)?;
        let eval_py = task.script_dir().join("eval.py");
        if !eval_py.is_file() {
            return Err(TaskError::NoEvalPy {
                task: name.to_string(),
                eval_py,
            }
            .into());
        }
        let script_dir = task.script_dir();
        let code_dirs = [script_dir.clone(), root.join("_common"), task.env_dir()];
        let code_key = Hasher::default()
            .code_key(&eval_py, &script_dir, &code_dirs, &self.python)
            .map_err(TaskError::Unreadable)?;
        Ok(EvalTask {
            task,
            eval_py,
            code_key,
        })
    }
}

/// A run with its task.
struct Planned {
    run: Run,
    task: TaskResult,
}

/// Stage 2: each run's task (loaded once per task name).
fn plan(cfg: &Config, runs: Vec<Run>) -> Vec<Planned> {
    let python = crate::python::resolve(cfg.python.as_deref()).path;
    let mut book = TaskBook::new(cfg.benchmarks_dir.clone(), python);
    runs.into_iter()
        .map(|run| {
            let task = task_of(&run, cfg.task.as_deref(), &mut book);
            Planned { run, task }
        })
        .collect()
}

/// The task a run was made on.
fn task_of(run: &Run, flag: Option<&str>, tasks: &mut TaskBook) -> TaskResult {
    match run.layout {
        RunLayout::Mlab => {
            let name = run.recorded_task().or(flag).ok_or_else(|| {
                Arc::new(TaskError::Unnamed {
                    run_json: run.dir.join("run.json"),
                })
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
            Err(Arc::new(TaskError::Undetermined {
                tried: if tried.is_empty() {
                    "nothing".to_string()
                } else {
                    tried.join(", ")
                },
            }))
        }
    }
}

/// What identifies a snapshot's score, or why it has none.
type SnapshotKey = std::result::Result<String, SnapshotError>;

/// A run with its snapshots keyed.
struct KeyedRun {
    planned: Planned,
    /// (step, key) for the intermediate snapshots (with `eval_intermediate`).
    steps: Vec<(u64, SnapshotKey)>,
    /// The final snapshot's key, when there is one.
    last: Option<SnapshotKey>,
}

/// Every run keyed, and the snapshots left to score.
struct Keyed {
    runs: Vec<KeyedRun>,
    cache: Option<Cache>,
    /// By key: a submission shared by several snapshots is scored once.
    pending: HashMap<String, Job>,
    /// Snapshots keyed, and how many of them the cache knows.
    total: usize,
    cached: usize,
}

/// Stage 3: the key of every snapshot to score (its content with the
/// task's eval.py, or its path without the cache), and a job for each key
/// the cache does not know.
fn key(cfg: &Config, planned: Vec<Planned>) -> Result<Keyed> {
    let root = &cfg.log_folder;
    let cache = if cfg.use_cache {
        let c = Cache::open(&root.join(CACHE_FILE))?;
        if c.skipped_lines > 0 {
            ui::warn(format!(
                "{} unreadable line(s) in {} were ignored (a cut-off write leaves one)",
                c.skipped_lines,
                root.join(CACHE_FILE).display()
            ));
        }
        Some(c)
    } else {
        None
    };
    let mut hasher = Hasher::default();
    let mut pending: HashMap<String, Job> = HashMap::new();
    let mut total = 0usize;
    let mut cached = 0usize;
    let mut keyed = Vec::with_capacity(planned.len());
    for p in planned {
        let mut steps = Vec::new();
        let mut last = None;
        if let Ok(task) = &p.task {
            let mut key_of = |dir: &Path| -> SnapshotKey {
                total += 1;
                let key = if cfg.use_cache {
                    hasher
                        .snapshot_key(task.task.name(), &task.code_key, task.submission(), dir)
                        .map_err(SnapshotError)?
                } else {
                    format!("path:{}", dir.display())
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
            if cfg.eval_intermediate {
                for s in &p.run.steps {
                    steps.push((s.step.unwrap_or_default(), key_of(&s.dir)));
                }
            }
            if let Some(s) = &p.run.final_snapshot {
                last = Some(key_of(&s.dir));
            }
        }
        keyed.push(KeyedRun {
            planned: p,
            steps,
            last,
        });
    }
    Ok(Keyed {
        runs: keyed,
        cache,
        pending,
        total,
        cached,
    })
}

/// Every run keyed, with the scores of the keys.
struct Scores {
    runs: Vec<KeyedRun>,
    /// Scores known before (and those added by this eval).
    cache: Option<Cache>,
    /// What grading the pending jobs gave, by key.
    graded: HashMap<String, Scored>,
}

impl Scores {
    /// How the snapshot with this key was scored.
    fn outcome(&self, key: &SnapshotKey) -> Scored {
        match key {
            Err(e) => Scored::Failed(chain_text(e)),
            Ok(k) => {
                if let Some(s) = self.cache.as_ref().and_then(|c| c.get(k)) {
                    return Scored::Score(s);
                }
                self.graded
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| Scored::Failed("the snapshot was not scored".into()))
            }
        }
    }
}

/// Stage 4: scores the pending jobs with persistent workers, saving each
/// score in the cache as it comes.
fn grade(cfg: &Config, keyed: Keyed) -> Result<Scores> {
    let Keyed {
        runs,
        mut cache,
        pending,
        total,
        cached,
    } = keyed;
    if pending.is_empty() {
        return Ok(Scores {
            runs,
            cache,
            graded: HashMap::new(),
        });
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = cfg.jobs.unwrap_or(cores).max(1);
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
    for r in &runs {
        if let Ok(t) = &r.planned.task {
            graders
                .entry(t.task.name().to_string())
                .or_insert_with(|| TaskGrader {
                    eval_py: absolute(&t.eval_py),
                    script_dir: absolute(&t.task.script_dir()),
                    env_dir: absolute(&t.task.env_dir()),
                });
        }
    }
    let py = crate::python::resolve(cfg.python.as_deref());
    let opts = grader::Options {
        python: py.path.clone(),
        jobs: slots,
        timeout: cfg.eval_timeout,
        snapshot_roots: vec![absolute(&cfg.log_folder)],
        threads_per_worker: (cores / slots).max(1),
        sandbox: grader::grader_sandbox(cfg.sandbox)?,
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
    Ok(Scores {
        runs,
        cache: shared.into_inner().unwrap_or_else(|e| e.into_inner()),
        graded: result.scores,
    })
}

/// Every run's entry, and what the statistics need.
struct Collected {
    runs: Vec<EvaluatedRun>,
    stats: Vec<RunStats>,
    facts: BTreeMap<String, TaskFacts>,
}

/// Stage 5: the results entry of every run, and what the statistics need
/// of the runs whose task is known.
fn collect(cfg: &Config, scores: Scores) -> Collected {
    let mut out = Collected {
        runs: Vec::with_capacity(scores.runs.len()),
        stats: Vec::new(),
        facts: BTreeMap::new(),
    };
    for r in &scores.runs {
        let p = &r.planned;
        let (result, row_stats) = build_result(r, &|key| scores.outcome(key));
        let folder = folder_label(cfg, &p.run);
        if let (Ok(t), Some(mut s)) = (&p.task, row_stats) {
            s.folder = folder.clone();
            out.facts
                .entry(t.task.name().to_string())
                .or_insert(TaskFacts {
                    direction: t.task.spec.direction,
                    baseline: t.task.spec.baseline,
                    paper_baseline: t.task.spec.paper_baseline,
                });
            out.stats.push(s);
        }
        out.runs.push(EvaluatedRun {
            folder,
            task_known: p.task.is_ok(),
            result,
        });
    }
    out
}

/// A run's folder relative to the log folder ("." for the folder itself).
fn folder_label(cfg: &Config, run: &Run) -> String {
    let rel = run.dir.strip_prefix(&cfg.log_folder).unwrap_or(&run.dir);
    if rel.as_os_str().is_empty() {
        ".".to_string()
    } else {
        rel.display().to_string()
    }
}

/// Stage 6: the summary rows, per task and configuration.
fn summarise(cfg: &Config, collected: &Collected) -> Vec<Group> {
    summary::summarize(&collected.stats, &collected.facts, &cfg.baseline)
}

/// The results entry of one run, and what the statistics need of it (none
/// when the run's task is unknown).
fn build_result(
    r: &KeyedRun,
    outcome: &dyn Fn(&SnapshotKey) -> Scored,
) -> (RunResult, Option<RunStats>) {
    let p = &r.planned;
    let run = &p.run;
    let direction = p
        .task
        .as_ref()
        .map(|t| t.task.spec.direction)
        .unwrap_or(Direction::Higher);
    let mut score = Vec::new();
    let mut score_steps = Vec::new();
    let mut step_scores = Vec::new();
    let mut eval_errors = Vec::new();
    let mut best: Option<f64> = None;
    let mut keep_best = |s: f64| {
        best = Some(best.map_or(s, |b| stats::better(b, s, direction)));
    };
    for (step, key) in &r.steps {
        score_steps.push(*step);
        match outcome(key) {
            Scored::Score(s) => {
                score.push(s);
                step_scores.push(Some(s));
                keep_best(s);
            }
            Scored::Raised(e) | Scored::Failed(e) => {
                // The original appends 0, which reads as a perfect score
                // on a lower-is-better task; the worst value cannot.
                score.push(result::worst_score(direction));
                step_scores.push(None);
                eval_errors.push(EvalError {
                    step: Value::from(*step),
                    error: e,
                });
            }
        }
    }
    let mut final_score = None;
    match (&p.task, &r.last) {
        (Err(e), _) => eval_errors.push(EvalError {
            step: Value::Null,
            error: chain_text(e.as_ref()),
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
        Err(_) => run.recorded_task().map(String::from),
    };
    let graded = result::Graded {
        score,
        score_steps,
        step_scores,
        final_score,
        best_score: best,
        eval_errors,
    };
    let entry = RunResult::of_run(run, task_name, graded);
    let record = run.record.as_ref();
    let stats = p.task.as_ref().ok().map(|t| RunStats {
        task: t.task.name().to_string(),
        folder: String::new(),
        agent: entry.agent.clone(),
        llm: entry.llm.clone(),
        config: run.config(),
        seed: record.map(|r| r.seed),
        infra_failure: result::infra_failure(run, &entry.extra),
        final_score: entry.graded_final_score,
        best_score: entry.best_score,
        cost_usd: record.map(|r| r.cost_usd),
        tokens: record.map(|r| r.tokens.input + r.tokens.output),
        wall_time: (entry.total_time > 0.0).then_some(entry.total_time),
    });
    (entry, stats)
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_errors_keep_their_cause_chain() {
        let cause = anyhow::anyhow!("no such file").context("could not read eval.py");
        let e = TaskError::Unreadable(cause);
        assert_eq!(chain_text(&e), "could not read eval.py: no such file");
        let e = SnapshotError(anyhow::anyhow!("permission denied").context("reading a.csv"));
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(
            chain_text(&e),
            "could not read the snapshot: reading a.csv: permission denied"
        );
    }
}
