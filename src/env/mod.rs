//! The research environment: the workspace an agent works in, the 17
//! actions it can take there, and the record of what it did.
//!
//! `Environment::execute` takes one action the way the original's
//! `Environment.execute` did (Final Answer short-circuits, a shut-down
//! environment says so, unknown actions and malformed inputs get the usage)
//! and then makes the step durable: snapshot, `events.jsonl` line,
//! `trace.json`. `finish` takes the final snapshot and writes the closing
//! files on every way a run can end. The agent loop, run.json and signals
//! are `run`'s business; how commands are confined is `sandbox`'s.

pub mod actions;
pub mod catalog;
pub mod confine;
pub mod events;
pub mod fsat;
pub mod outcome;
pub mod output;
pub mod resume;
pub mod snapshot;
pub mod trace;
pub mod workspace;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::llm::{LlmError, Models};
use crate::sandbox::{tamper, Sandbox};
use crate::task::Task;
use actions::{ActionError, Ctx, ExecSetup};
use catalog::{Action, ActionInfo, Family, FINAL_ANSWER};
pub use outcome::ExitReason;

use events::{Event, EventLog, ResumedFrom};
use snapshot::Store;
use trace::{now, Step, Trace};
use workspace::{ReadOnlyMode, Workspace};

/// Observation after the run has reached its step or time limit.
pub const SHUT_DOWN: &str = "The environment has shut down: this run reached its limit on steps or time. No more actions will be carried out; submit your final answer now.";

/// The user interrupted the run (Ctrl-C, SIGTERM).
#[derive(Debug, thiserror::Error)]
#[error("the run was interrupted")]
pub struct Interrupted;

/// mlab itself failed (a log could not be written, a snapshot failed).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HarnessError(pub String);

/// The disk of the log folder is full: the run cannot be recorded further.
/// An infrastructure failure, never the agent's.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LogDiskFull(pub String);

fn harness(e: anyhow::Error) -> anyhow::Error {
    let text = format!("{e:#}");
    if is_disk_full(&e) {
        anyhow::Error::new(LogDiskFull(format!(
            "the disk of the log folder is full, so the run could not be recorded further ({text}); free some space and continue the run with --resume LOG_DIR"
        )))
    } else {
        anyhow::Error::new(HarnessError(text))
    }
}

/// Whether `e` (or what caused it) is "no space left" or "quota
/// exceeded". Errors other modules have already turned into text are
/// recognised by the system's message.
pub fn is_disk_full(e: &anyhow::Error) -> bool {
    if e.downcast_ref::<LogDiskFull>().is_some() {
        return true;
    }
    let by_code = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
            .is_some_and(|n| n == libc::ENOSPC || n == libc::EDQUOT)
    });
    let text = format!("{e:#}");
    by_code || text.contains("No space left on device") || text.contains("Disk quota exceeded")
}

/// Room kept on the log disk so that a run can always be closed: a file
/// of [`RESERVE_BYTES`] written at the start and deleted when a closing
/// write finds the disk full.
pub struct Reserve {
    path: PathBuf,
}

/// Enough for the end event, error.txt, overall_time.txt and run.json.
pub const RESERVE_BYTES: usize = 1 << 20;

impl Reserve {
    /// Writes the reserve file `.mlab-reserve` in `log_dir`.
    pub fn take(log_dir: &Path) -> Result<Reserve> {
        let path = log_dir.join(".mlab-reserve");
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&path)?;
            f.write_all(&vec![0u8; RESERVE_BYTES])?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&path);
            return Err(anyhow::Error::new(e).context(format!(
                "could not keep {} KiB of room to close the run in {}; free some space on that disk",
                RESERVE_BYTES / 1024,
                log_dir.display()
            )));
        }
        Ok(Reserve { path })
    }

    /// Frees the room; true when there was some to free.
    pub fn release(&self) -> bool {
        std::fs::remove_file(&self.path).is_ok()
    }

    /// Runs `write`; when it fails for a full disk, frees the room and
    /// runs it once more.
    pub fn with_room<T>(&self, mut write: impl FnMut() -> Result<T>) -> Result<T> {
        match write() {
            Err(e) if is_disk_full(&e) && self.release() => {
                tracing::warn!("the log disk is full; using the room kept to close the run");
                write()
            }
            r => r,
        }
    }
}

/// Where to resume from.
#[derive(Debug, Clone)]
pub struct ResumeFrom {
    /// The earlier run's log folder.
    pub log_dir: PathBuf,
    /// Last step to keep (default: the last completed one).
    pub step: Option<usize>,
}

/// Everything an environment is made from.
pub struct EnvConfig {
    pub task: Task,
    /// The run's log folder (`env_log/` goes inside).
    pub log_dir: PathBuf,
    pub work_dir: PathBuf,
    pub max_steps: u64,
    pub max_time: Duration,
    /// Per-command limit; `None`: what is left of `max_time`.
    pub exec_timeout: Option<Duration>,
    pub device: String,
    pub python: PathBuf,
    pub interactive: bool,
    pub sandbox: Arc<dyn Sandbox>,
    pub read_only_mode: ReadOnlyMode,
    pub mem_limit: Option<u64>,
    pub models: Option<Models>,
    pub interrupt: Arc<AtomicBool>,
    /// Echo script output to mlab's stderr as well as to the run's log.
    pub echo: bool,
    pub resume: Option<ResumeFrom>,
    /// The prompt set whose action texts the run shows (trace.json's
    /// `action_infos`, the invalid-input message).
    pub prompts: Arc<crate::prompts::PromptSet>,
}

pub struct Environment {
    ws: Arc<Workspace>,
    env_log: PathBuf,
    trace: Trace,
    events: EventLog,
    store: Store,
    /// Held while a snapshot named `step_final_files` is being written, by
    /// `finish` or by the last-resort close after an interrupt.
    final_lock: Arc<Mutex<()>>,
    /// Set once `finish` has taken the final snapshot.
    final_done: Arc<AtomicBool>,
    reserve: Reserve,
    infos: Vec<&'static ActionInfo>,
    max_steps: u64,
    max_time: Duration,
    exec_timeout: Option<Duration>,
    started: Instant,
    models: Option<Models>,
    research_problem: String,
    exec: Arc<ExecSetup>,
    /// The Python session; shared with the thread that runs an action.
    repl: Arc<Mutex<Option<actions::repl::Repl>>>,
    interactive: bool,
    interrupt: Arc<AtomicBool>,
    prompts: Arc<crate::prompts::PromptSet>,
    finished: bool,
    /// Hashes of the read-only files taken at the start (see `finish`).
    tamper: Vec<tamper::Baseline>,
    tampered: Option<bool>,
    /// Set when the person at the terminal has an instruction for the
    /// agent (see [`Environment::take_instructions`]).
    instruction: Option<Arc<AtomicBool>>,
}

impl Environment {
    /// Makes the workspace and the log folders and records the start (or
    /// the resume point) of the run.
    pub fn start(cfg: EnvConfig) -> Result<Environment> {
        let started = Instant::now();
        let env_log = cfg.log_dir.join("env_log");
        for d in [
            env_log.clone(),
            env_log.join("tool_logs"),
            env_log.join("traces"),
        ] {
            std::fs::create_dir_all(&d)
                .with_context(|| format!("could not create {}", d.display()))?;
        }
        let reserve = Reserve::take(&cfg.log_dir)?;
        let research_problem = cfg.task.research_problem()?;
        let prefix = match &cfg.resume {
            Some(r) => Some(resume::load(r, &cfg.log_dir)?),
            None => None,
        };
        let ws = Workspace::create(
            &cfg.task,
            &cfg.work_dir,
            cfg.read_only_mode,
            prefix.as_ref().map(|p| p.snapshot.as_path()),
            &cfg.log_dir,
        )?;
        let mut store = Store::open(&env_log)?;
        if let Some(p) = &prefix {
            resume::carry_snapshots(p, &env_log, &mut store)?;
        }
        store.prime(&ws)?;

        let infos = catalog::offered(cfg.prompts.actions(), cfg.interactive);
        let mut trace = Trace::new(infos.clone(), research_problem.clone());
        let mut events = EventLog::open(&env_log.join("events.jsonl"))?;
        events.append(&Event::Start {
            time: chrono::Utc::now().to_rfc3339(),
            task: cfg.task.name().to_string(),
            workspace: ws.root().display().to_string(),
            resumed_from: prefix.as_ref().map(|p| ResumedFrom {
                log_dir: p.from_log_dir.display().to_string(),
                step: p.step,
            }),
        })?;
        if let Some(p) = &prefix {
            if p.same_dir {
                events.append(&Event::Resume {
                    time: chrono::Utc::now().to_rfc3339(),
                    from_step: p.step,
                })?;
            }
            for (i, rec) in p.steps.iter().enumerate() {
                for l in &rec.low_level {
                    trace.push_low_level(l.clone());
                }
                trace.push_step(rec.step.clone());
                if !p.same_dir {
                    events.append(&Event::Step {
                        index: i,
                        action: rec.step.action.clone(),
                        observation: rec.step.observation.clone(),
                        timestamp: rec.step.timestamp,
                        low_level_steps: rec.low_level.clone(),
                        snapshot: format!("traces/step_{i}_files"),
                        skipped: Vec::new(),
                        skipped_total: 0,
                    })?;
                }
            }
        }
        trace.write(&env_log.join("trace.json"))?;

        let run_log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(cfg.log_dir.join("log"))
            .with_context(|| format!("could not open {}", cfg.log_dir.join("log").display()))?;
        // The log folder, and the whole benchmarks folder: this task's
        // answers and every other task (read-only files are bound into the
        // workspace, so they stay visible there).
        let mut hidden = vec![absolute(&cfg.log_dir)];
        hidden.push(absolute(&cfg.task.hidden_root()));
        let tamper = tamper_baselines(&ws).context("could not hash the read-only files")?;
        let exec = ExecSetup {
            sandbox: cfg.sandbox,
            python: cfg.python,
            device: cfg.device,
            run_log: Arc::new(Mutex::new(run_log)),
            echo_stderr: cfg.echo,
            mem_limit: cfg.mem_limit,
            hidden,
            interrupt: cfg.interrupt.clone(),
        };
        Ok(Environment {
            ws: Arc::new(ws),
            env_log,
            trace,
            events,
            store,
            final_lock: Arc::new(Mutex::new(())),
            final_done: Arc::new(AtomicBool::new(false)),
            reserve,
            infos,
            max_steps: cfg.max_steps,
            max_time: cfg.max_time,
            exec_timeout: cfg.exec_timeout,
            started,
            models: cfg.models,
            research_problem,
            exec: Arc::new(exec),
            repl: Arc::new(Mutex::new(None)),
            interactive: cfg.interactive,
            prompts: cfg.prompts.clone(),
            interrupt: cfg.interrupt,
            finished: false,
            tamper,
            tampered: None,
            instruction: None,
        })
    }

    /// Lets the person at the terminal instruct the agent: whenever `flag`
    /// is set (by Ctrl-\), the next completed step is followed by a
    /// `Human Instruction` step whose text is read from stdin, and the
    /// agent gets that text with the observation of its action.
    pub fn take_instructions(&mut self, flag: Arc<AtomicBool>) {
        self.instruction = Some(flag);
    }

    /// When an instruction was asked for: reads it, records it as a step of
    /// its own and returns the text to pass on to the agent.
    fn human_instruction(&mut self) -> Result<Option<String>> {
        let asked = self
            .instruction
            .as_ref()
            .is_some_and(|f| f.swap(false, Ordering::SeqCst));
        if !asked {
            return Ok(None);
        }
        let index = self.trace.steps().len();
        let text = actions::control::read_from_terminal(
            &format!(
                "Your instruction for the agent (after step {})",
                index.saturating_sub(1)
            ),
            None,
        );
        let Some(text) = text.map(|t| t.trim_end().to_string()) else {
            return Ok(None);
        };
        let step = Step {
            action: Action {
                name: catalog::HUMAN_INSTRUCTION.to_string(),
                args: serde_json::json!({ "instruction": text }),
            },
            observation: "The instruction was passed to the agent with its next observation."
                .into(),
            timestamp: now(),
        };
        let low_before = self.trace.low_level_steps().len();
        self.trace.push_step(step.clone());
        if let Err(e) = self.record(index, step, Vec::new()) {
            self.trace.truncate(index, low_before);
            return Err(harness(e));
        }
        self.trace
            .write(&self.env_log.join("trace.json"))
            .map_err(harness)?;
        Ok(Some(text))
    }

    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// The actions this run offers (Request Help only when interactive).
    pub fn action_infos(&self) -> &[&'static ActionInfo] {
        &self.infos
    }

    pub fn research_problem(&self) -> &str {
        &self.research_problem
    }

    pub fn models(&self) -> Option<&Models> {
        self.models.as_ref()
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn steps_taken(&self) -> usize {
        self.trace.steps().len()
    }

    pub fn final_answer_given(&self) -> bool {
        self.trace
            .steps()
            .iter()
            .any(|s| s.action.name == FINAL_ANSWER)
    }

    /// Steps the agent took: every step but the person's Human
    /// Instructions (which count against no limit).
    pub fn agent_steps_taken(&self) -> usize {
        self.trace
            .steps()
            .iter()
            .filter(|s| s.action.name != catalog::HUMAN_INSTRUCTION)
            .count()
    }

    pub fn steps_exhausted(&self) -> bool {
        self.agent_steps_taken() as u64 >= self.max_steps
    }

    pub fn time_exhausted(&self) -> bool {
        self.started.elapsed() > self.max_time
    }

    /// How a run whose agent stopped without an error ended: a Final
    /// Answer, else the time limit, else the step limit (or the agent
    /// stopped on its own, which counts the same).
    pub fn normal_end(&self) -> ExitReason {
        if self.final_answer_given() {
            ExitReason::FinalAnswer
        } else if self.time_exhausted() {
            ExitReason::MaxTime
        } else {
            ExitReason::MaxSteps
        }
    }

    /// The original's `is_final`: the step limit is reached, a Final
    /// Answer was given, or the time is up.
    pub fn is_final(&self) -> bool {
        self.steps_exhausted() || self.final_answer_given() || self.time_exhausted()
    }

    /// Takes one action and records it. An `Err` ends the run: the user
    /// interrupted it ([`Interrupted`]), a budget ran out (an [`LlmError`]),
    /// or mlab could not record the step ([`HarnessError`]). The step is
    /// recorded before an interruption or budget error is returned.
    pub fn execute(&mut self, action: Action) -> Result<String> {
        if self.finished {
            return Err(harness(anyhow::anyhow!(
                "the environment has already finished"
            )));
        }
        if self.interrupt.load(Ordering::SeqCst) {
            return Err(Interrupted.into());
        }
        let index = self.trace.steps().len();
        let mut low = Vec::new();
        let (observation, fatal) = self.observe(&action, index, &mut low);
        let step = Step {
            action,
            observation: observation.clone(),
            timestamp: now(),
        };
        self.commit(index, step, low)?;
        if let Some(e) = fatal {
            return Err(e);
        }
        if self.interrupt.load(Ordering::SeqCst) {
            return Err(Interrupted.into());
        }
        if let Some(text) = self.human_instruction()? {
            return Ok(format!(
                "{observation}\n\n[Human Instruction] The person supervising this run says: {text}"
            ));
        }
        Ok(observation)
    }

    /// Adds a completed step to the trace and makes it durable (snapshot,
    /// event line, trace.json); on failure the step is not part of the run.
    fn commit(&mut self, index: usize, step: Step, low: Vec<Step>) -> Result<()> {
        let low_before = self.trace.low_level_steps().len();
        for l in &low {
            self.trace.push_low_level(l.clone());
        }
        self.trace.push_step(step.clone());
        if let Err(e) = self.record(index, step, low) {
            // Not recorded as complete (its snapshot or event line could
            // not be written): not a step of the run.
            self.trace.truncate(index, low_before);
            return Err(harness(e));
        }
        // The step is complete; trace.json is a view of events.jsonl.
        self.trace
            .write(&self.env_log.join("trace.json"))
            .map_err(harness)
    }

    /// Records a step that happened outside the environment's actions (an
    /// outside program's model call, `--agent program`): the workspace is
    /// snapshotted as after any action and the step lands in events.jsonl
    /// and trace.json. Nothing is executed.
    pub fn record_step(&mut self, action: Action, observation: String) -> Result<()> {
        if self.finished {
            return Err(harness(anyhow::anyhow!(
                "the environment has already finished"
            )));
        }
        let index = self.trace.steps().len();
        let step = Step {
            action,
            observation,
            timestamp: now(),
        };
        self.commit(index, step, Vec::new())
    }

    /// What an outside program started by the agent runs under: the policy
    /// of Execute Script over this workspace (no time limit: the caller
    /// stops it), and the sandbox that applies it.
    pub fn program_policy(&self) -> (Arc<dyn Sandbox>, crate::sandbox::Policy) {
        (
            self.exec.sandbox.clone(),
            actions::exec::script_policy(&self.ws, &self.exec, None),
        )
    }

    /// The workspace folder on the host.
    pub fn workspace_root(&self) -> &Path {
        self.ws.root()
    }

    /// Snapshot, then the event line (which marks the step complete).
    fn record(&mut self, index: usize, step: Step, low: Vec<Step>) -> Result<()> {
        let snapshot = format!("step_{index}_files");
        let t0 = std::time::Instant::now();
        let stats = self.store.snapshot(&self.ws, &snapshot)?;
        let t1 = t0.elapsed();
        self.events.append(&Event::Step {
            index,
            action: step.action,
            observation: step.observation,
            timestamp: step.timestamp,
            low_level_steps: low,
            snapshot: format!("traces/{snapshot}"),
            skipped: stats.skipped,
            skipped_total: stats.skipped_total,
        })?;
        tracing::debug!(
            step = index,
            snapshot_us = t1.as_micros() as u64,
            event_us = (t0.elapsed() - t1).as_micros() as u64,
            "step recorded"
        );
        Ok(())
    }

    fn observe(
        &mut self,
        action: &Action,
        index: usize,
        low: &mut Vec<Step>,
    ) -> (String, Option<anyhow::Error>) {
        if action.name == FINAL_ANSWER {
            return ("end".into(), None);
        }
        if self.is_final() {
            return (SHUT_DOWN.into(), None);
        }
        let Some(info) = self.infos.iter().copied().find(|i| i.name == action.name) else {
            let names: Vec<&str> = self.infos.iter().map(|i| i.name).collect();
            return (
                format!(
                    "Invalid action: {}. Nothing was executed. Use one of these actions:\n{}",
                    action.name,
                    names.join(", ")
                ),
                None,
            );
        };
        let Some(args) = action.args.as_object() else {
            return (self.prompts.invalid_input(info), None);
        };
        let remaining = self.max_time.saturating_sub(self.started.elapsed());
        let timeout = match self.exec_timeout {
            Some(t) => t.min(remaining),
            None => remaining,
        };
        // Actions backed by a model wait on it under the run's time; the
        // others under the step's limit (what a command may run).
        let limit = match info.family {
            Family::Understand | Family::Edit | Family::ResearchLog => remaining,
            _ => timeout,
        };
        let job = ActionJob {
            info,
            args: args.clone(),
            ws: self.ws.clone(),
            step: index,
            tool_log: self
                .env_log
                .join("tool_logs")
                .join(format!("step_{index}_tool_log.log")),
            models: self.models.clone(),
            research_problem: self.research_problem.clone(),
            exec: self.exec.clone(),
            timeout: Some(timeout),
            repl: self.repl.clone(),
            interactive: self.interactive,
        };
        let result = match self.run_bounded(job, limit) {
            Ok((result, mut done)) => {
                low.append(&mut done);
                result
            }
            Err(Abandoned::Panicked(msg)) => {
                return (
                    format!("EnvError: {} failed inside mlab", action.name),
                    Some(harness(anyhow::anyhow!(
                        "mlab failed unexpectedly while running {}: {msg}",
                        action.name
                    ))),
                )
            }
            Err(Abandoned::Interrupted) => {
                return (
                    format!(
                        "EnvError: {} was stopped because the run was interrupted.",
                        action.name
                    ),
                    None,
                )
            }
            Err(Abandoned::TimedOut) => {
                return (
                    format!(
                        "EnvError: {} did not finish within its time limit of {:.0} s and was abandoned; its result, if any, is not part of this step.",
                        action.name,
                        limit.as_secs_f64()
                    ),
                    None,
                )
            }
        };
        match result {
            Ok(obs) => (obs, None),
            Err(ActionError::Env { msg, .. }) => (format!("EnvError: {msg}"), None),
            Err(ActionError::Invalid) => (
                format!("EnvError: {}", self.prompts.invalid_input(info)),
                None,
            ),
            Err(ActionError::TooLong) => ("EnvError: too long input for the tool".into(), None),
            Err(ActionError::Llm(e)) => {
                let obs = format!("LLMError: {e}");
                match e {
                    LlmError::Budget(_) => (obs, Some(e.into())),
                    _ => (obs, None),
                }
            }
        }
    }

    /// Runs an action on a thread of its own and waits for it, but never
    /// past `limit` plus [`GRACE_AFTER_LIMIT`], nor past
    /// [`GRACE_AFTER_INTERRUPT`] once the run is interrupted: an action
    /// blocked in the kernel (a read that never returns) cannot hold the
    /// run. Commands and the Python session end at their own limit well
    /// before; an abandoned action's Python session is stopped.
    fn run_bounded(&mut self, job: ActionJob, limit: Duration) -> Result<ActionDone, Abandoned> {
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("mlab-action".into())
            .spawn(move || {
                let done = job.run();
                let _ = tx.send(done);
            });
        if let Err(e) = spawned {
            return Err(Abandoned::Panicked(format!(
                "could not start a thread for the action: {e}"
            )));
        }
        let hard = Instant::now() + limit + GRACE_AFTER_LIMIT;
        let mut interrupted_at: Option<Instant> = None;
        let abandoned = loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(done) => return Ok(done),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Abandoned::Panicked(
                        "the action's thread ended without a result".into(),
                    ))
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if self.interrupt.load(Ordering::SeqCst) {
                        let at = *interrupted_at.get_or_insert_with(Instant::now);
                        if at.elapsed() >= GRACE_AFTER_INTERRUPT {
                            break Abandoned::Interrupted;
                        }
                    }
                    if Instant::now() >= hard {
                        break Abandoned::TimedOut;
                    }
                }
            }
        };
        // The abandoned thread keeps its handle on the session; a new
        // handle starts empty, and the old session is stopped if it can be
        // reached (else when the thread lets go of it).
        let old = std::mem::replace(&mut self.repl, Arc::new(Mutex::new(None)));
        if let Ok(mut session) = old.try_lock() {
            session.take();
        }
        tracing::warn!("an action was abandoned: {abandoned:?}");
        Err(abandoned)
    }

    /// Ends the run: stops the Python session, takes `step_final_files`,
    /// and writes the end event, trace.json, overall_time.txt and (with an
    /// error) error.txt. Safe to call once; later calls do nothing. When
    /// the log disk is full, the room kept at the start is used for the
    /// closing files (the final snapshot is taken before, so it cannot eat
    /// that room).
    pub fn finish(&mut self, exit_reason: ExitReason, error: Option<&str>) -> Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        // Kills the session, frozen or not (an abandoned action may still
        // hold it; it is stopped when that thread lets go).
        if let Ok(mut session) = self.repl.try_lock() {
            session.take();
        }
        let mut problems = Vec::new();
        let reports: Vec<tamper::TamperReport> = self.tamper.iter().map(|b| b.check()).collect();
        let final_stats = {
            let _taking = self.final_lock.lock().unwrap_or_else(|p| p.into_inner());
            match self.store.snapshot(&self.ws, "step_final_files") {
                Ok(stats) => {
                    self.final_done.store(true, Ordering::SeqCst);
                    stats
                }
                Err(e) => {
                    problems.push(format!("the final snapshot failed: {e:#}"));
                    snapshot::Stats::default()
                }
            }
        };
        let reserve = &self.reserve;
        if !reports.is_empty() {
            let tampered = reports.iter().any(|r| !r.ok);
            self.tampered = Some(tampered);
            if tampered {
                tracing::warn!(
                    "read-only files of the task were changed during the run: {reports:?}"
                );
            }
            let text = serde_json::to_string_pretty(&reports).unwrap_or_default();
            let path = self.env_log.join("tamper.json");
            if let Err(e) = reserve.with_room(|| trace::write_atomic(&path, text.as_bytes())) {
                problems.push(format!("could not write tamper.json: {e:#}"));
            }
        }
        let end = Event::End {
            time: chrono::Utc::now().to_rfc3339(),
            exit_reason,
            error: error.map(String::from),
            steps: self.trace.steps().len(),
            skipped: final_stats.skipped,
            skipped_total: final_stats.skipped_total,
        };
        let events = &mut self.events;
        if let Err(e) = reserve.with_room(|| events.append(&end)) {
            problems.push(format!("{e:#}"));
        }
        let secs = self.started.elapsed().as_secs_f64();
        let path = self.env_log.join("overall_time.txt");
        if let Err(e) =
            reserve.with_room(|| trace::write_atomic(&path, secs.to_string().as_bytes()))
        {
            problems.push(format!("could not write overall_time.txt: {e:#}"));
        }
        // error.txt names the run's error and what went wrong in closing.
        let mut error_text: Vec<String> = error.map(String::from).into_iter().collect();
        error_text.extend(problems.iter().cloned());
        if !error_text.is_empty() {
            let path = self.env_log.join("error.txt");
            let text = format!("{}\n", error_text.join("\n"));
            if let Err(e) = reserve.with_room(|| trace::write_atomic(&path, text.as_bytes())) {
                problems.push(format!("could not write error.txt: {e:#}"));
            }
        }
        // Last: the largest file, and only a view of events.jsonl.
        let path = self.env_log.join("trace.json");
        let trace = &self.trace;
        if let Err(e) = reserve.with_room(|| trace.write(&path)) {
            problems.push(format!("{e:#}"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(harness(anyhow::anyhow!(problems.join("; "))))
        }
    }

    /// Runs `write` (run.json, say), using the room kept on the log disk
    /// when the disk is full.
    pub fn with_room<T>(&self, write: impl FnMut() -> Result<T>) -> Result<T> {
        self.reserve.with_room(write)
    }

    /// Gives back the room kept on the log disk; call once the run's last
    /// file is written.
    pub fn release_reserve(&self) {
        self.reserve.release();
    }

    /// What closes the run when mlab cannot wait for the agent loop any
    /// longer after an interrupt (see `run::signals`): takes
    /// `step_final_files` with a store of its own, unless `finish` is taking
    /// it right now. Returns a note on what it could not do.
    pub fn last_resort_snapshot(&self) -> Box<dyn FnOnce() -> Option<String> + Send> {
        let ws = self.ws.clone();
        let env_log = self.env_log.clone();
        let lock = self.final_lock.clone();
        let done = self.final_done.clone();
        Box::new(move || {
            if done.load(Ordering::SeqCst) {
                return None;
            }
            let Ok(_taking) = lock.try_lock() else {
                return Some("the final snapshot was still being taken when mlab stopped".into());
            };
            match Store::open(&env_log).and_then(|mut s| s.snapshot(&ws, "step_final_files")) {
                Ok(_) => None,
                Err(e) => Some(format!("the final snapshot failed: {e:#}")),
            }
        })
    }

    /// Whether a read-only file (the prepared original, or the workspace's
    /// private copy of it) changed during the run; known after `finish`,
    /// `None` for a task without read-only files.
    pub fn tampered(&self) -> Option<bool> {
        self.tampered
    }
}

/// How long an action may run past its limit (a command that is killed
/// at its limit needs a moment to be reaped) before it is abandoned.
pub const GRACE_AFTER_LIMIT: Duration = Duration::from_secs(5);

/// How long an action may run after an interrupt before it is abandoned,
/// leaving time for the final snapshot within the 5 s a Ctrl-C may take.
pub const GRACE_AFTER_INTERRUPT: Duration = Duration::from_millis(1500);

/// Why an action's result was not waited for.
#[derive(Debug)]
enum Abandoned {
    TimedOut,
    Interrupted,
    Panicked(String),
}

/// An action's result and the primitive calls made during it.
type ActionDone = (Result<String, ActionError>, Vec<Step>);

/// Everything an action needs, owned, so that it can run on its own thread.
struct ActionJob {
    info: &'static ActionInfo,
    args: serde_json::Map<String, serde_json::Value>,
    ws: Arc<Workspace>,
    step: usize,
    tool_log: PathBuf,
    models: Option<Models>,
    research_problem: String,
    exec: Arc<ExecSetup>,
    timeout: Option<Duration>,
    repl: Arc<Mutex<Option<actions::repl::Repl>>>,
    interactive: bool,
}

impl ActionJob {
    fn run(self) -> ActionDone {
        let mut low = Vec::new();
        let mut repl = self.repl.lock().unwrap_or_else(|p| p.into_inner());
        let mut ctx = Ctx {
            ws: &self.ws,
            step: self.step,
            tool_log: self.tool_log.clone(),
            low_level: &mut low,
            models: self.models.as_ref(),
            research_problem: &self.research_problem,
            exec: &self.exec,
            timeout: self.timeout,
            repl: &mut repl,
            interactive: self.interactive,
        };
        let result = actions::dispatch(self.info, &self.args, &mut ctx);
        drop(repl);
        (result, low)
    }
}

fn absolute(p: &Path) -> PathBuf {
    workspace::absolute(p)
}

/// Hashes of the read-only files: the prepared originals always (a script
/// that escaped would change them for every later run), and the
/// workspace's private copies where there are copies.
fn tamper_baselines(ws: &Workspace) -> Result<Vec<tamper::Baseline>> {
    if ws.binds().is_empty() {
        return Ok(Vec::new());
    }
    let originals: Vec<PathBuf> = ws.binds().iter().map(|b| b.src.clone()).collect();
    let mut out = vec![tamper::Baseline::take(Path::new("/"), &originals)?];
    if ws.mode() == ReadOnlyMode::Copy {
        let copies: Vec<PathBuf> = ws.binds().iter().map(|b| b.dest.clone()).collect();
        out.push(tamper::Baseline::take(Path::new("/"), &copies)?);
    }
    Ok(out)
}
