//! `mlab run`: one agent on one task, from run.json at the start to the
//! final snapshot at the end.
//!
//! The order matters for "nothing already written is lost": every check
//! that can fail on bad input (agent name, actions file, task, sandbox, log
//! folder, a workspace another run holds) runs before the workspace is
//! made; once the environment exists,
//! every way out (final answer, limits, agent or model error, Ctrl-C, a
//! panic) goes through `Environment::finish` and the closing run.json.
//!
//! [`run`] takes everything from its [`RunConfig`] and may be called from
//! several threads at once (each run with its own log folder and
//! workspace). What several runs in one process share is listed in the
//! crate's documentation; Ctrl-C handling is the caller's to install once
//! ([`signals::install`]), and its flag is handed in as
//! [`RunConfig::interrupt`].

pub mod record;
pub mod signals;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::agent::{self, action_list, AgentConfig, AgentSetup};
use crate::env::workspace::{self, ReadOnlyMode};
use crate::env::{is_disk_full, EnvConfig, Environment, HarnessError, Interrupted, ResumeFrom};
use crate::llm::{LlmError, Models};
use crate::sandbox::Sandbox;
use crate::task::{discover, Locations};
use crate::{llm, python};
use record::{ExitReason, ModelNames, RunRecord};

/// One run: the task, the agent, the models, the limits and where it all
/// goes (one field per flag of `mlab run`).
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Where the task is looked for.
    pub locations: Locations,
    /// Task to run (a folder name under the benchmarks folder).
    pub task: String,
    /// Folder for this run's logs (agent_log/, env_log/, run.json).
    pub log_dir: PathBuf,
    /// Folder under which the workspace is made (None: beside the log
    /// folder).
    pub work_dir: Option<PathBuf>,
    /// Maximum number of environment steps.
    pub max_steps: u64,
    /// Maximum wall time of the run in seconds.
    pub max_time: f64,
    /// GPU index given to scripts as CUDA_VISIBLE_DEVICES.
    pub device: String,
    /// Python interpreter for scripts (None: the usual lookup).
    pub python: Option<PathBuf>,
    /// Resume the run whose log folder this is.
    pub resume: Option<PathBuf>,
    /// Last step of the earlier run to keep.
    pub resume_step: Option<u64>,
    /// Offer the Request Help action.
    pub interactive: bool,
    /// Per-command timeout of Execute Script in seconds.
    pub exec_timeout: Option<f64>,
    /// Recorded in run.json; the models get it through `llm.seed`.
    pub seed: u64,
    pub agent: AgentConfig,
    pub llm: llm::Config,
    pub sandbox: crate::sandbox::Kind,
    /// Memory limit per command, in bytes.
    pub mem_limit: Option<u64>,
    /// Print what each step does on stderr (`-v`).
    pub echo: bool,
    /// Set to ask the run to stop (Ctrl-C): the flag of
    /// [`signals::install`], or one of the caller's own.
    pub interrupt: Arc<AtomicBool>,
    /// The prompt set's folder (`--prompts`); None: mlab's own set.
    pub prompts: Option<PathBuf>,
    /// run.json's `flags`: what the caller ran with, by flag name (the
    /// front end records every flag of `mlab run`; other callers what they
    /// like, `Value::Null` included).
    pub flags: serde_json::Value,
    /// Run on a folder and problem of one's own instead of `task`
    /// (`mlab run --dir`); `task` is then set to `adhoc:<folder name>`.
    pub adhoc: Option<crate::task::adhoc::AdHocConfig>,
    /// Set (by [`signals::install_instruction_key`]) when the person at
    /// the terminal wants to give the agent an instruction: after the
    /// current step, one is read from stdin and recorded as a
    /// `Human Instruction` step. Only with `interactive`.
    pub instruction: Option<Arc<AtomicBool>>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub reason: ExitReason,
    /// What went wrong, when something did.
    pub error: Option<String>,
    pub steps: usize,
    pub log_dir: PathBuf,
}

pub fn run(mut args: RunConfig) -> Result<RunOutcome> {
    let interrupt = args.interrupt.clone();
    let close_guard = signals::CloseGuard::new();
    // The task first: a misspelt task name is the likeliest mistake.
    let (task, adhoc) = match &args.adhoc {
        Some(a) => {
            let (task, a) = crate::task::adhoc::resolve(a, args.resume.as_deref())?;
            args.task = task.name().to_string();
            (task, Some(a))
        }
        None => {
            let root = discover::benchmarks_root(&args.locations)?;
            (discover::find_task(&root, &args.task)?, None)
        }
    };
    args.agent.options.resume_agent_log = args.resume.as_ref().map(|d| d.join("agent_log"));
    // Before the agent is checked: the checked agent keeps its options.
    let prompts = match &args.prompts {
        Some(dir) => Arc::new(crate::prompts::PromptSet::load(dir)?),
        None => crate::prompts::default_set(),
    };
    args.agent.options.prompts = prompts.clone();
    let checked_agent = agent::check(&args.agent, args.llm.llm.is_some())?;
    let agent_name = checked_agent.kind().as_str();
    if checked_agent.kind() == agent::AgentKind::Program && args.llm.llm.is_some() {
        // The gateway forwards to a provider: `scripted:`, `replay:` and
        // `human` cannot serve an outside program.
        crate::gateway::default_allowed_models(&args.llm).with_context(|| {
            "--agent program reaches its model through mlab's LLM gateway, which needs --llm to name a provider's model"
        })?;
    }
    check_limits(&args)?;
    if !task.is_prepared() {
        bail!(
            "task {} is not prepared yet; run `mlab prepare {}` first",
            task.name(),
            task.name()
        );
    }
    let sandbox = make_sandbox(args.sandbox)?;
    // A Python the sandbox cannot start stops the run here, before any step.
    let checked = python::resolve(args.python.as_deref());
    crate::sandbox::check_agent_python(
        sandbox.as_ref(),
        &checked.path,
        checked.source,
        Some(args.device.clone()),
    )?;
    let mem_limit = args.mem_limit;
    check_log_dir(&args)?;
    let resume = args.resume.as_ref().map(|d| ResumeFrom {
        log_dir: d.clone(),
        step: args.resume_step.map(|s| s as usize),
    });
    if let Some(r) = &resume {
        // Fails on a bad --resume before anything is written.
        crate::env::resume::load(r, &args.log_dir)?;
    }
    let work_dir = match &args.work_dir {
        Some(w) => w.clone(),
        None => workspace::default_work_dir(&args.log_dir)?,
    };
    if adhoc.is_some() {
        crate::task::adhoc::check_outside(&task, &args.log_dir, &work_dir)?;
    }
    // Held until this function returns (or the process dies): no other
    // run can clear or write this workspace meanwhile.
    let workspace_lock = workspace::lock(&task, &work_dir, &args.log_dir)?;
    tracing::debug!("holding {}", workspace_lock.path().display());
    let agent_log = args.log_dir.join("agent_log");
    let models = make_models(&args.llm, &args.log_dir)?;
    if let (Some(m), Some(r)) = (&models, &args.resume) {
        // Totals and budgets cover every part of a resumed run.
        m.carry_over(r)?;
    }
    std::fs::create_dir_all(&agent_log)
        .with_context(|| format!("could not create {}", agent_log.display()))?;
    let mut agent = agent::make(
        checked_agent,
        AgentSetup {
            agent_log,
            models: models.clone(),
            task: &task,
            max_steps: args.max_steps,
            max_time: args.max_time,
            interrupt: interrupt.clone(),
            llm: args.llm.clone(),
            log_dir: args.log_dir.clone(),
        },
    )?;

    let mut record = RunRecord::new(
        &args,
        agent_name,
        sandbox.name(),
        model_names(models.as_ref()),
    );
    record.flags["work_dir"] = serde_json::json!(work_dir.display().to_string());
    if let Some(a) = &adhoc {
        record.adhoc = Some(crate::task::adhoc::record(&task, a));
    }
    let named = (args.llm.config_name.as_deref()).is_some_and(|n| !n.trim().is_empty());
    record.set_prompts(&prompts, named);
    keep_previous_record(&args.log_dir)?;
    record.write(&args.log_dir)?;
    if let Some(a) = &task.adhoc {
        let p = args.log_dir.join(crate::task::adhoc::PROBLEM_FILE);
        crate::env::trace::write_atomic(&p, a.problem.as_bytes())
            .with_context(|| format!("could not save the problem in {}", p.display()))?;
    }
    // Until the environment exists, an interrupt that the setup does not
    // notice in time still leaves a closed run.json.
    {
        let mut early = record.clone();
        let log_dir = args.log_dir.clone();
        close_guard.set(Box::new(move || {
            early.set_end(
                ExitReason::Interrupted,
                Some("the run was interrupted while it was being set up".into()),
            );
            let _ = early.write(&log_dir);
            let _ = std::fs::remove_file(log_dir.join(".mlab-reserve"));
        }));
    }
    let py = python::resolve(args.python.as_deref());
    let cfg = EnvConfig {
        task,
        log_dir: args.log_dir.clone(),
        work_dir,
        max_steps: args.max_steps,
        max_time: Duration::from_secs_f64(args.max_time),
        exec_timeout: args.exec_timeout.map(Duration::from_secs_f64),
        device: args.device.clone(),
        python: py.path,
        interactive: args.interactive,
        read_only_mode: read_only_mode(sandbox.as_ref()),
        sandbox,
        mem_limit,
        models,
        interrupt: interrupt.clone(),
        echo: args.echo,
        resume,
        prompts,
    };
    let mut env = match Environment::start(cfg) {
        Ok(env) => env,
        Err(e) => {
            let reason = if is_disk_full(&e) {
                ExitReason::DiskFull
            } else {
                ExitReason::HarnessError
            };
            record.set_end(reason, Some(format!("{e:#}")));
            let _ = record.write(&args.log_dir);
            return Err(e.context("could not set up the environment"));
        }
    };
    close_guard.set(last_resort_close(&env, &record, &args.log_dir));
    if args.interactive {
        if let Some(flag) = &args.instruction {
            env.take_instructions(flag.clone());
        }
    }

    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| agent.run(&mut env)));
    let (reason, error) = classify(&env, outcome);
    let finished = env.finish(reason, error.as_deref());
    let (reason, error) = match finished {
        Ok(()) => (reason, error),
        Err(e) => {
            let closing = format!("{e:#}");
            let error = Some(match error {
                Some(first) => format!("{first}; then, while closing the run: {closing}"),
                None => closing,
            });
            // A fault outside the agent found while closing outranks how
            // the agent's part ended; a run that already ended for such a
            // fault keeps its first reason.
            let reason = if reason.infra_reason().is_some() {
                reason
            } else if is_disk_full(&e) {
                ExitReason::DiskFull
            } else {
                ExitReason::HarnessError
            };
            (reason, error)
        }
    };
    record.steps = env.steps_taken();
    record.set_end(reason, error.clone());
    record.tampered = env.tampered();
    if let Some(t) = agent.llm_totals() {
        // Calls that went through the agent's own gateway (`program`).
        record.tokens = record::Tokens {
            input: t.usage.input_tokens,
            output: t.usage.output_tokens,
        };
        record.cost_usd = t.cost;
        record.llm_calls = t.calls;
    } else if let Some(m) = env.models() {
        let (usage, cost) = m.totals();
        record.tokens = record::Tokens {
            input: usage.input_tokens,
            output: usage.output_tokens,
        };
        record.cost_usd = cost;
        record.llm_calls = m.calls();
    }
    close_guard.disarm();
    let written = env.with_room(|| record.write(&args.log_dir));
    env.release_reserve();
    written?;

    Ok(RunOutcome {
        reason,
        error,
        steps: env.steps_taken(),
        log_dir: args.log_dir,
    })
}

/// What the signal watchdog does when the run has not closed itself in
/// time after an interrupt: the final snapshot if it can, the end event,
/// overall_time.txt, error.txt and run.json, all marked interrupted.
fn last_resort_close(
    env: &Environment,
    record: &RunRecord,
    log_dir: &Path,
) -> Box<dyn FnOnce() + Send> {
    let snapshot = env.last_resort_snapshot();
    let mut record = record.clone();
    let log_dir = log_dir.to_path_buf();
    let started = std::time::Instant::now();
    Box::new(move || {
        let env_log = log_dir.join("env_log");
        let note = snapshot();
        let steps = crate::env::events::read_steps(&env_log.join("events.jsonl"))
            .map(|s| s.len())
            .unwrap_or(0);
        let mut error = String::from(
            "the run was interrupted, and mlab closed it without waiting longer for what it was doing",
        );
        if let Some(n) = note {
            error.push_str(&format!(" ({n})"));
        }
        if let Ok(mut events) = crate::env::events::EventLog::open(&env_log.join("events.jsonl")) {
            let _ = events.append(&crate::env::events::Event::End {
                time: chrono::Utc::now().to_rfc3339(),
                exit_reason: ExitReason::Interrupted,
                error: Some(error.clone()),
                steps,
                skipped: Vec::new(),
                skipped_total: 0,
            });
        }
        let time = env_log.join("overall_time.txt");
        if !time.exists() {
            let secs = started.elapsed().as_secs_f64().to_string();
            let _ = crate::env::trace::write_atomic(&time, secs.as_bytes());
        }
        let _ = crate::env::trace::write_atomic(
            &env_log.join("error.txt"),
            format!("{error}\n").as_bytes(),
        );
        record.steps = steps;
        record.set_end(ExitReason::Interrupted, Some(error));
        let _ = record.write(&log_dir);
        let _ = std::fs::remove_file(log_dir.join(".mlab-reserve"));
    })
}

/// Reads the exit reason from how the agent's run came back.
fn classify(
    env: &Environment,
    outcome: std::thread::Result<Result<String>>,
) -> (ExitReason, Option<String>) {
    match outcome {
        // The step limit, or the agent stopped on its own (its own step
        // limit; an actions list that runs out says so with
        // `ActionsExhausted`).
        Ok(Ok(_message)) => (env.normal_end(), None),
        Ok(Err(e)) => {
            let text = format!("{e:#}");
            let reason = if e.downcast_ref::<Interrupted>().is_some() {
                ExitReason::Interrupted
            } else if is_disk_full(&e) {
                ExitReason::DiskFull
            } else if e.downcast_ref::<action_list::ActionsExhausted>().is_some() {
                ExitReason::ActionsExhausted
            } else if e.downcast_ref::<HarnessError>().is_some() {
                ExitReason::HarnessError
            } else if let Some(l) = e.downcast_ref::<LlmError>() {
                match l {
                    LlmError::Budget(_) => ExitReason::Budget,
                    l if l.is_model_failure() => ExitReason::ModelError,
                    _ => ExitReason::LlmError,
                }
            } else {
                ExitReason::AgentError
            };
            (reason, Some(text))
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            (
                ExitReason::HarnessError,
                Some(format!("mlab failed unexpectedly: {msg}")),
            )
        }
    }
}

fn check_limits(args: &RunConfig) -> Result<()> {
    if !(args.max_time > 0.0 && args.max_time.is_finite()) {
        bail!("--max-time must be a positive number of seconds");
    }
    if let Some(t) = args.exec_timeout {
        if !(t > 0.0 && t.is_finite()) {
            bail!("--exec-timeout must be a positive number of seconds");
        }
    }
    if args.resume_step.is_some() && args.resume.is_none() {
        bail!("--resume-step needs --resume LOG_DIR");
    }
    Ok(())
}

/// Refuses to start a new run over an earlier one's logs.
fn check_log_dir(args: &RunConfig) -> Result<()> {
    let events = args.log_dir.join("env_log/events.jsonl");
    if !events.exists() {
        return Ok(());
    }
    let resuming_here = args
        .resume
        .as_ref()
        .is_some_and(|r| same_path(r, &args.log_dir));
    if !resuming_here {
        bail!(
            "{} already holds a run; choose another --log-dir, or continue that run with --resume {}",
            args.log_dir.display(),
            args.log_dir.display()
        );
    }
    Ok(())
}

/// A run.json already in the log folder (a run resumed in place) is kept
/// beside the new one as `run.<its start time>.json`.
fn keep_previous_record(log_dir: &Path) -> Result<()> {
    let current = log_dir.join("run.json");
    let Ok(text) = std::fs::read_to_string(&current) else {
        return Ok(());
    };
    let start = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["start_time"].as_str().map(String::from))
        .unwrap_or_else(|| "earlier".into())
        .replace([':', '+'], "-");
    let kept = log_dir.join(format!("run.{start}.json"));
    std::fs::rename(&current, &kept)
        .with_context(|| format!("could not keep the earlier {}", current.display()))
}

fn same_path(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The one place that decides how agent-caused commands are confined:
/// bubblewrap for `auto`/`bwrap` (or a clear failure), no confinement only
/// for an explicit `none`, with a warning.
fn make_sandbox(kind: crate::sandbox::Kind) -> Result<Arc<dyn Sandbox>> {
    Ok(Arc::from(crate::sandbox::select(kind)?))
}

/// How read-only files appear: mounted by a sandbox that can, else copied.
fn read_only_mode(sandbox: &dyn Sandbox) -> ReadOnlyMode {
    if sandbox.name() == "none" {
        ReadOnlyMode::Copy
    } else {
        ReadOnlyMode::Bind
    }
}

/// The models of the three roles, if the run names any (the actions agent
/// needs none unless its list holds LLM-backed actions). Every call is
/// recorded under `<log-dir>/agent_log/`.
fn make_models(llm: &llm::Config, log_dir: &Path) -> Result<Option<Models>> {
    if llm.llm.is_none() && llm.fast_llm.is_none() && llm.edit_script_llm.is_none() {
        return Ok(None);
    }
    Models::new(llm, Some(log_dir)).map(Some)
}

fn model_names(models: Option<&Models>) -> Option<ModelNames> {
    models.map(|m| ModelNames {
        main: m.main.name().to_string(),
        fast: m.fast.name().to_string(),
        edit: m.edit.name().to_string(),
    })
}
