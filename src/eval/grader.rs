//! Scoring snapshots with a task's `script/eval.py` through persistent
//! Python workers.
//!
//! Starting Python and importing pandas costs more than most `get_score`
//! calls, so each job slot keeps one worker per task (the embedded
//! `worker.py`) that imports eval.py once and scores the folders it is sent
//! over JSON lines. A `get_score` that raises gives that snapshot an error
//! and the worker goes on; one that hangs past the timeout, or kills its
//! process, gives an error and the worker is started again for the next
//! snapshot. Nothing here aborts the eval as a whole.
//!
//! How graders are confined is decided in exactly two functions,
//! [`grader_sandbox`] and [`grader_policy`]; the rest never knows.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::sandbox::{self, Bind, Kind as SandboxKind, Policy, Sandbox};

/// The worker program, run with `python -c`.
const WORKER_PY: &str = include_str!("worker.py");

/// Bytes of a worker's stderr kept for error messages.
const STDERR_TAIL: usize = 4096;

/// What a task's graders need.
#[derive(Debug, Clone)]
pub struct TaskGrader {
    pub eval_py: PathBuf,
    pub script_dir: PathBuf,
    pub env_dir: PathBuf,
}

/// One snapshot to score.
#[derive(Debug, Clone)]
pub struct Job {
    pub task: String,
    /// Identifies the result (the cache key, or the snapshot path when the
    /// cache is off).
    pub key: String,
    pub folder: PathBuf,
}

/// Settings shared by every worker.
pub struct Options {
    pub python: PathBuf,
    pub jobs: usize,
    pub timeout: Duration,
    /// Folders the graders read snapshots from (the log folder).
    pub snapshot_roots: Vec<PathBuf>,
    /// Threads each worker's numeric libraries may use.
    pub threads_per_worker: usize,
    /// Where the workers run (see [`grader_sandbox`]).
    pub sandbox: Box<dyn Sandbox>,
}

/// The sandbox graders run in: bubblewrap unless `--sandbox none` (then
/// with the usual warning); a missing or broken bwrap is an error, never a
/// silent fall back to unconfined graders.
pub fn grader_sandbox(kind: SandboxKind) -> anyhow::Result<Box<dyn Sandbox>> {
    sandbox::select(kind)
}

/// What a grader may see and use: its task's script folder as working
/// directory (eval.py and the answers), the snapshots read-only, the task's
/// env/ read-only (prepared data), the Python read-only; no network. The
/// sandbox module's grader policy decides the rest (hidden home and keys,
/// private /tmp, environment whitelist).
pub fn grader_policy(grader: &TaskGrader, opts: &Options) -> Policy {
    let (first, more) = opts
        .snapshot_roots
        .split_first()
        .map(|(f, m)| (f.as_path(), m))
        .unwrap_or((grader.env_dir.as_path(), &[]));
    let mut policy = sandbox::policy::grader_policy(
        first,
        &grader.script_dir,
        &grader.env_dir,
        Some(&opts.python),
    );
    policy.read_only.extend(more.iter().map(|p| Bind {
        src: p.clone(),
        dest: p.clone(),
    }));
    let threads = opts.threads_per_worker.max(1).to_string();
    for (k, v) in [
        ("PYTHONHASHSEED", "0"),
        ("MPLBACKEND", "Agg"),
        ("HF_HUB_OFFLINE", "1"),
        ("HF_DATASETS_OFFLINE", "1"),
        ("TRANSFORMERS_OFFLINE", "1"),
        ("OMP_NUM_THREADS", threads.as_str()),
        ("OPENBLAS_NUM_THREADS", threads.as_str()),
        ("MKL_NUM_THREADS", threads.as_str()),
    ] {
        policy.env.retain(|(name, _)| name != k);
        policy.env.push((k.to_string(), v.to_string()));
    }
    policy
}

/// How one `get_score` call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Scored {
    Score(f64),
    /// get_score raised; the traceback's last lines.
    Raised(String),
    /// The worker had to be stopped or died; why.
    Failed(String),
}

/// Why a worker could not be started: every snapshot of its task gets it.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the grader for {} could not be started in the '{sandbox}' sandbox", eval_py.display())]
    Spawn {
        eval_py: PathBuf,
        sandbox: String,
        #[source]
        source: anyhow::Error,
    },
    /// eval.py raised while being imported; `traceback` is what it sent.
    #[error("importing {} failed: {}\n{traceback}", eval_py.display(), last_line(traceback))]
    Import { eval_py: PathBuf, traceback: String },
    #[error("importing {} took longer than {:.0} s (--eval-timeout)", eval_py.display(), timeout.as_secs_f64())]
    ImportTimeout { eval_py: PathBuf, timeout: Duration },
    /// The process ended first; `detail` is its status and last output.
    #[error("the grader for {} exited before it was ready: {}\n{}", eval_py.display(), last_line(detail), detail.trim())]
    Exited { eval_py: PathBuf, detail: String },
}

/// A running worker for one task.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    next_id: u64,
}

impl Worker {
    /// Starts a worker and waits for eval.py to be imported. `Err` holds
    /// why it could not be (the import's traceback, or the process's end).
    fn start(
        grader: &TaskGrader,
        opts: &Options,
        sandbox: &dyn Sandbox,
    ) -> Result<Worker, StartError> {
        let policy = grader_policy(grader, opts);
        // The real path: the one the sandbox shows.
        let eval_py = sandbox::policy::real(&grader.eval_py);
        let argv: Vec<OsString> = vec![
            opts.python.clone().into(),
            "-u".into(),
            "-c".into(),
            WORKER_PY.into(),
            eval_py.into(),
        ];
        let mut child = sandbox::spawn(sandbox, &argv, &policy, Stdio::piped()).map_err(|e| {
            StartError::Spawn {
                eval_py: grader.eval_py.clone(),
                sandbox: sandbox.name().to_string(),
                source: e,
            }
        })?;
        let (Some(stdin), Some(stdout), Some(stderr_pipe)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            sandbox::kill_group(child.id() as i32);
            let _ = child.wait();
            return Err(StartError::Spawn {
                eval_py: grader.eval_py.clone(),
                sandbox: sandbox.name().to_string(),
                source: anyhow::anyhow!("the process started without its pipes"),
            });
        };
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => {
                        if tx.send(l).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let tail = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut pipe = stderr_pipe;
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                t.extend_from_slice(&buf[..n]);
                if t.len() > STDERR_TAIL {
                    let cut = t.len() - STDERR_TAIL;
                    t.drain(..cut);
                }
            }
        });
        let mut worker = Worker {
            child,
            stdin,
            lines,
            stderr,
            next_id: 0,
        };
        match worker.await_reply(None, opts.timeout) {
            Reply::Message(v) if v.get("ready") == Some(&Value::Bool(true)) => Ok(worker),
            Reply::Message(v) => {
                let err = v
                    .get("error")
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(String::from)
                    .unwrap_or_else(|| {
                        // Nothing on the protocol: what it printed says more.
                        let tail = worker.exit_detail();
                        format!("no traceback was sent{tail}")
                    });
                Err(StartError::Import {
                    eval_py: grader.eval_py.clone(),
                    traceback: err,
                })
            }
            Reply::Timeout => Err(StartError::ImportTimeout {
                eval_py: grader.eval_py.clone(),
                timeout: opts.timeout,
            }),
            Reply::Gone => Err(StartError::Exited {
                eval_py: grader.eval_py.clone(),
                detail: worker.exit_detail(),
            }),
        }
    }

    /// Scores one folder. `false` in the second place means the worker
    /// must not be used again.
    fn score(&mut self, folder: &Path, timeout: Duration) -> (Scored, bool) {
        self.next_id += 1;
        let id = self.next_id;
        let request = serde_json::json!({"id": id, "folder": folder.to_string_lossy()});
        let sent = writeln!(self.stdin, "{request}").and_then(|_| self.stdin.flush());
        if sent.is_err() {
            return (
                Scored::Failed(format!("the grader had exited{}", self.exit_detail())),
                false,
            );
        }
        match self.await_reply(Some(id), timeout) {
            Reply::Message(v) => {
                if let Some(s) = v.get("score").and_then(Value::as_f64) {
                    (Scored::Score(s), true)
                } else {
                    let err = v
                        .get("error")
                        .and_then(Value::as_str)
                        .unwrap_or("get_score failed without a message");
                    (Scored::Raised(err.to_string()), true)
                }
            }
            Reply::Timeout => (
                Scored::Failed(format!(
                    "get_score did not finish within {:.0} s (--eval-timeout); its grader was stopped",
                    timeout.as_secs_f64()
                )),
                false,
            ),
            Reply::Gone => (
                Scored::Failed(format!(
                    "the grader exited while scoring{}",
                    self.exit_detail()
                )),
                false,
            ),
        }
    }

    /// Waits for the protocol line answering `id` (or the ready line).
    fn await_reply(&mut self, id: Option<u64>, timeout: Duration) -> Reply {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let Ok(v) = serde_json::from_str::<Value>(&line) else {
                        continue;
                    };
                    let matches = match id {
                        Some(id) => v.get("id").and_then(Value::as_u64) == Some(id),
                        None => v.get("ready").is_some(),
                    };
                    if matches {
                        return Reply::Message(v);
                    }
                }
                Err(RecvTimeoutError::Timeout) => return Reply::Timeout,
                Err(RecvTimeoutError::Disconnected) => return Reply::Gone,
            }
        }
    }

    /// ": exit status N; its last output: ..." once the process is gone.
    fn exit_detail(&mut self) -> String {
        sandbox::kill_group(self.child.id() as i32);
        let status = self
            .child
            .wait()
            .map(|s| format!("{s}"))
            .unwrap_or_else(|_| "unknown status".into());
        // The stderr reader may still be draining the last bytes.
        std::thread::sleep(Duration::from_millis(50));
        let tail = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        let text = String::from_utf8_lossy(&tail);
        let text = last_lines(text.trim_end(), 15);
        if text.is_empty() {
            format!(" ({status})")
        } else {
            format!(" ({status}); its last output:\n{text}")
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        sandbox::kill_group(self.child.id() as i32);
        let _ = self.child.wait();
    }
}

enum Reply {
    Message(Value),
    Timeout,
    Gone,
}

/// The last non-empty line of `text`, trimmed ("(no detail)" if none).
fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(no detail)")
        .trim_start_matches(['(', ';'])
        .to_string()
}

/// The warning for a task none of whose snapshots could be scored: the
/// reason's first line, which always holds the detail, and what to do
/// about that kind of failure.
pub fn broken_warning(task: &str, why: &str) -> String {
    let first = why.lines().next().unwrap_or_default().trim();
    let first = if first.is_empty() {
        "(no detail)"
    } else {
        first
    };
    let hint = if why.contains("ModuleNotFoundError") || why.contains("No module named") {
        "the task's Python lacks a module eval.py imports: install it there, or pass \
         --python (or set MLAB_PYTHON) with one that has it; `mlab doctor` shows what is missing"
    } else if why.contains("could not be started in the") {
        "the sandbox could not start the grader; `mlab doctor` checks the sandbox"
    } else if [
        "FileNotFoundError",
        "PermissionError",
        "No such file",
        "Read-only file system",
    ]
    .iter()
    .any(|k| why.contains(k))
    {
        "eval.py could not reach a file: graders see only the task's script/ and env/ \
         folders, the snapshots and the Python, read-only, at their real paths; keep what \
         eval.py reads in script/ or env/"
    } else if why.contains("exited before it was ready") {
        "the grader process ended while importing eval.py; its output above says why"
    } else {
        "eval.py raised while being imported: fix the task's script/eval.py (the \
         traceback is in each run's entry of the results file)"
    };
    format!("task {task}: no snapshot could be scored: {first}; {hint}")
}

/// Checks, before any grading, that the Python starts under the grader
/// policy of one of the tasks to grade (the policies differ only in the
/// task's folders).
pub fn check_python(
    graders: &HashMap<String, TaskGrader>,
    opts: &Options,
    source: &str,
) -> anyhow::Result<()> {
    let Some(grader) = graders.values().min_by(|a, b| a.eval_py.cmp(&b.eval_py)) else {
        return Ok(());
    };
    let policy = grader_policy(grader, opts);
    sandbox::check_python(&*opts.sandbox, &policy, &opts.python, source)
        .map_err(|e| e.context("the graders cannot run"))
}

/// The last `n` lines of `text`.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Scores every job, up to `opts.jobs` at a time, calling `done` as each
/// result comes (so results can be saved before the whole batch ends).
/// Jobs of one task are taken together, so a slot keeps one live worker.
///
/// Only the first slot starts at once. Starting a worker costs a Python
/// start and eval.py's imports (seconds with pandas or torch, more on a busy
/// machine), so each further slot starts only when the work left, at the
/// pace seen so far, would take longer than that start did.
pub fn grade_all(
    mut jobs: Vec<Job>,
    graders: &HashMap<String, TaskGrader>,
    opts: &Options,
    done: &(dyn Fn(&Job, &Scored) + Sync),
) -> Graded {
    jobs.sort_by(|a, b| a.task.cmp(&b.task).then_with(|| a.folder.cmp(&b.folder)));
    let slots = opts.jobs.clamp(1, jobs.len().max(1));
    let shared = Shared {
        queue: Mutex::new(VecDeque::from(jobs)),
        results: Mutex::new(HashMap::new()),
        broken: Mutex::new(HashMap::new()),
        pace: Mutex::new(Pace::default()),
        changed: Condvar::new(),
        started: Instant::now(),
    };
    let sandbox = &*opts.sandbox;
    std::thread::scope(|scope| {
        for slot in 0..slots {
            let shared = &shared;
            let sandbox = &*sandbox;
            scope.spawn(move || {
                if slot > 0 && !shared.worth_another_worker() {
                    return;
                }
                let mut current: Option<(String, Worker)> = None;
                loop {
                    // A statement of its own, so the queue's lock is released
                    // before scoring (a `while let` would hold it throughout).
                    let next = lock(&shared.queue).pop_front();
                    let Some(job) = next else { break };
                    let scored = score_one(&job, graders, opts, sandbox, shared, &mut current);
                    done(&job, &scored);
                    lock(&shared.results).insert(job.key.clone(), scored);
                }
                shared.changed.notify_all();
            });
        }
    });
    Graded {
        scores: shared
            .results
            .into_inner()
            .unwrap_or_else(|e| e.into_inner()),
        broken: shared
            .broken
            .into_inner()
            .unwrap_or_else(|e| e.into_inner()),
    }
}

/// What `grade_all` found.
pub struct Graded {
    /// By job key.
    pub scores: HashMap<String, Scored>,
    /// Tasks whose grader could not be started, and why.
    pub broken: HashMap<String, String>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the slots of one `grade_all` share.
struct Shared {
    queue: Mutex<VecDeque<Job>>,
    results: Mutex<HashMap<String, Scored>>,
    /// A task whose eval.py cannot be imported fails the same way for every
    /// snapshot; why, instead of trying again per snapshot.
    broken: Mutex<HashMap<String, String>>,
    pace: Mutex<Pace>,
    changed: Condvar,
    started: Instant,
}

/// How long starting a worker and scoring a snapshot have taken so far.
#[derive(Default)]
struct Pace {
    /// The first worker's start-up time, and when it was ready.
    first_start: Option<(Duration, Instant)>,
    scored: u32,
    scoring: Duration,
}

impl Shared {
    /// Waits until starting one more worker pays off (true) or the queue is
    /// empty (false).
    fn worth_another_worker(&self) -> bool {
        let mut pace = lock(&self.pace);
        loop {
            let left = lock(&self.queue).len() as u32;
            if left == 0 {
                return false;
            }
            if let Some((start_cost, ready_at)) = pace.first_start {
                // Until a score is in, the time since the first worker was
                // ready is a lower bound on one score: a slow (or hung)
                // first snapshot still lets more workers start.
                let per_score = if pace.scored > 0 {
                    pace.scoring / pace.scored
                } else {
                    ready_at.elapsed()
                };
                if per_score * left > start_cost {
                    return true;
                }
            } else if self.started.elapsed() > Duration::from_secs(30) {
                // Starting is slow enough that waiting for it costs more.
                return true;
            }
            pace = self
                .changed
                .wait_timeout(pace, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn worker_started(&self, took: Duration) {
        let mut pace = lock(&self.pace);
        if pace.first_start.is_none() {
            pace.first_start = Some((took, Instant::now()));
        }
        drop(pace);
        self.changed.notify_all();
    }

    fn snapshot_scored(&self, took: Duration) {
        let mut pace = lock(&self.pace);
        pace.scored += 1;
        pace.scoring += took;
        drop(pace);
        self.changed.notify_all();
    }
}

fn score_one(
    job: &Job,
    graders: &HashMap<String, TaskGrader>,
    opts: &Options,
    sandbox: &dyn Sandbox,
    shared: &Shared,
    current: &mut Option<(String, Worker)>,
) -> Scored {
    if let Some(why) = lock(&shared.broken).get(&job.task) {
        return Scored::Failed(why.clone());
    }
    let Some(grader) = graders.get(&job.task) else {
        return Scored::Failed(format!("no grader for task {}", job.task));
    };
    if current.as_ref().is_some_and(|(t, _)| t != &job.task) {
        *current = None;
    }
    if current.is_none() {
        let t0 = Instant::now();
        match Worker::start(grader, opts, sandbox) {
            Ok(w) => {
                shared.worker_started(t0.elapsed());
                *current = Some((job.task.clone(), w));
            }
            Err(e) => {
                // Every later snapshot of the task gets the same text.
                let why = format!("{:#}", anyhow::Error::new(e));
                lock(&shared.broken).insert(job.task.clone(), why.clone());
                return Scored::Failed(why);
            }
        }
    }
    let Some((_, worker)) = current.as_mut() else {
        return Scored::Failed(format!("the grader for task {} did not start", job.task));
    };
    let t0 = Instant::now();
    let (scored, reusable) = worker.score(&job.folder, opts.timeout);
    shared.snapshot_scored(t0.elapsed());
    if !reusable {
        *current = None;
    }
    scored
}
