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

pub mod action;
pub mod actions;
pub mod confine;
pub mod events;
pub mod fsat;
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
use action::{Action, ActionInfo, FINAL_ANSWER};
use actions::{ActionError, Ctx, ExecSetup};
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

fn harness(e: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(HarnessError(format!("{e:#}")))
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
}

pub struct Environment {
    ws: Workspace,
    env_log: PathBuf,
    trace: Trace,
    events: EventLog,
    store: Store,
    infos: Vec<&'static ActionInfo>,
    max_steps: u64,
    max_time: Duration,
    exec_timeout: Option<Duration>,
    started: Instant,
    models: Option<Models>,
    research_problem: String,
    exec: ExecSetup,
    repl: Option<actions::repl::Repl>,
    interactive: bool,
    interrupt: Arc<AtomicBool>,
    finished: bool,
    /// Hashes of the read-only files taken at the start (see `finish`).
    tamper: Vec<tamper::Baseline>,
    tampered: Option<bool>,
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

        let infos = action::enabled(cfg.interactive);
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
        let task_dir = absolute(&cfg.task.dir);
        hidden.push(task_dir.parent().map(Path::to_path_buf).unwrap_or(task_dir));
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
            ws,
            env_log,
            trace,
            events,
            store,
            infos,
            max_steps: cfg.max_steps,
            max_time: cfg.max_time,
            exec_timeout: cfg.exec_timeout,
            started,
            models: cfg.models,
            research_problem,
            exec,
            repl: None,
            interactive: cfg.interactive,
            interrupt: cfg.interrupt,
            finished: false,
            tamper,
            tampered: None,
        })
    }

    #[allow(dead_code)] // part of the agents' view of the environment
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    #[allow(dead_code)] // part of the agents' view of the environment
    pub fn workspace(&self) -> &Workspace {
        &self.ws
    }

    #[allow(dead_code)] // part of the agents' view of the environment
    pub fn env_log(&self) -> &Path {
        &self.env_log
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

    #[allow(dead_code)] // part of the agents' view of the environment
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

    pub fn steps_exhausted(&self) -> bool {
        self.trace.steps().len() as u64 >= self.max_steps
    }

    pub fn time_exhausted(&self) -> bool {
        self.started.elapsed() > self.max_time
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
        for l in &low {
            self.trace.push_low_level(l.clone());
        }
        self.trace.push_step(step.clone());
        self.record(index, step, low).map_err(harness)?;
        if let Some(e) = fatal {
            return Err(e);
        }
        if self.interrupt.load(Ordering::SeqCst) {
            return Err(Interrupted.into());
        }
        Ok(observation)
    }

    /// Snapshot, then the event line (which marks the step complete), then
    /// trace.json.
    fn record(&mut self, index: usize, step: Step, low: Vec<Step>) -> Result<()> {
        let snapshot = format!("step_{index}_files");
        let t0 = std::time::Instant::now();
        self.store.snapshot(&self.ws, &snapshot)?;
        let t1 = t0.elapsed();
        self.events.append(&Event::Step {
            index,
            action: step.action,
            observation: step.observation,
            timestamp: step.timestamp,
            low_level_steps: low,
            snapshot: format!("traces/{snapshot}"),
        })?;
        let t2 = t0.elapsed();
        let r = self.trace.write(&self.env_log.join("trace.json"));
        tracing::debug!(
            step = index,
            snapshot_us = t1.as_micros() as u64,
            event_us = (t2 - t1).as_micros() as u64,
            trace_us = (t0.elapsed() - t2).as_micros() as u64,
            "step recorded"
        );
        r
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
            return (invalid_input(info), None);
        };
        let remaining = self.max_time.saturating_sub(self.started.elapsed());
        let timeout = Some(match self.exec_timeout {
            Some(t) => t.min(remaining),
            None => remaining,
        });
        let mut ctx = Ctx {
            ws: &self.ws,
            step: index,
            tool_log: self
                .env_log
                .join("tool_logs")
                .join(format!("step_{index}_tool_log.log")),
            low_level: low,
            models: self.models.as_ref(),
            research_problem: &self.research_problem,
            exec: &self.exec,
            timeout,
            repl: &mut self.repl,
            interactive: self.interactive,
        };
        match actions::dispatch(info, args, &mut ctx) {
            Ok(obs) => (obs, None),
            Err(ActionError::Env { msg, .. }) => (format!("EnvError: {msg}"), None),
            Err(ActionError::Invalid) => (format!("EnvError: {}", invalid_input(info)), None),
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

    /// Ends the run: stops the Python session, takes `step_final_files`,
    /// and writes the end event, trace.json, overall_time.txt and (with an
    /// error) error.txt. Safe to call once; later calls do nothing.
    pub fn finish(&mut self, exit_reason: &str, error: Option<&str>) -> Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        self.repl = None;
        let mut problems = Vec::new();
        let reports: Vec<tamper::TamperReport> = self.tamper.iter().map(|b| b.check()).collect();
        if !reports.is_empty() {
            let tampered = reports.iter().any(|r| !r.ok);
            self.tampered = Some(tampered);
            if tampered {
                tracing::warn!(
                    "read-only files of the task were changed during the run: {reports:?}"
                );
            }
            let text = serde_json::to_string_pretty(&reports).unwrap_or_default();
            if let Err(e) = std::fs::write(self.env_log.join("tamper.json"), text) {
                problems.push(format!("could not write tamper.json: {e}"));
            }
        }
        if let Err(e) = self.store.snapshot(&self.ws, "step_final_files") {
            problems.push(format!("the final snapshot failed: {e:#}"));
        }
        if let Err(e) = self.events.append(&Event::End {
            time: chrono::Utc::now().to_rfc3339(),
            exit_reason: exit_reason.to_string(),
            error: error.map(String::from),
            steps: self.trace.steps().len(),
        }) {
            problems.push(format!("{e:#}"));
        }
        if let Err(e) = self.trace.write(&self.env_log.join("trace.json")) {
            problems.push(format!("{e:#}"));
        }
        let secs = self.started.elapsed().as_secs_f64();
        if let Err(e) = std::fs::write(self.env_log.join("overall_time.txt"), secs.to_string()) {
            problems.push(format!("could not write overall_time.txt: {e}"));
        }
        if let Some(err) = error {
            if let Err(e) = std::fs::write(self.env_log.join("error.txt"), format!("{err}\n")) {
                problems.push(format!("could not write error.txt: {e}"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(harness(anyhow::anyhow!(problems.join("; "))))
        }
    }

    /// Whether a read-only file (the prepared original, or the workspace's
    /// private copy of it) changed during the run; known after `finish`,
    /// `None` for a task without read-only files.
    pub fn tampered(&self) -> Option<bool> {
        self.tampered
    }
}

/// The text shown when an action's input is not what its usage asks for.
pub fn invalid_input(info: &ActionInfo) -> String {
    format!(
        "The input for {} must be a JSON object with exactly these entries (check for a missing comma between entries, and do not use triple quotes, which JSON does not allow):\n{}",
        info.name,
        info.usage_text()
    )
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
