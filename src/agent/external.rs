//! `--agent external --agent-cmd "<command>"`: an agent of the user's, in
//! any language, driving the environment over JSON lines on its stdin and
//! stdout (messages in `protocol`, described in docs/agent-protocol.md).
//!
//! The command runs under `sh -c` in its own process group, in mlab's
//! current folder, with the provider key variables removed from its
//! environment: its `llm` requests are served by mlab through the run's
//! main model, so tokens and cost are counted like any agent's and no key
//! reaches it. Its stderr goes to `agent_log/agent_stderr.log`.
//!
//! A misbehaving agent ends the run cleanly (`agent_error`, with the reason
//! in run.json): a line that is not a protocol message, an unknown action,
//! exiting before the run is over, or no message for `--agent-timeout`
//! seconds. The whole process group is killed when the run ends.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;

use super::protocol::{ActionSpec, FromAgent, Limits, ToAgent, PROTOCOL_VERSION};
use super::Journal;
use crate::agent::Agent;
use crate::env::catalog::{Action, FINAL_ANSWER};
use crate::env::{Environment, ExitReason, Interrupted};
use crate::llm::{LlmError, Models, Request};
use crate::ui;

/// Why the external agent was stopped (ends the run as `agent_error`).
#[derive(Debug, thiserror::Error)]
#[error("the external agent {0}")]
pub struct Misbehaved(pub String);

pub struct ExternalAgent {
    command: String,
    timeout: Duration,
    limits: Limits,
    task: String,
    models: Option<Models>,
    journal: Journal,
    interrupt: Arc<AtomicBool>,
}

/// Settings of the external agent.
pub struct ExternalSetup<'a> {
    pub command: &'a str,
    pub timeout: f64,
    pub max_steps: u64,
    pub max_time: f64,
    pub task: &'a str,
    pub models: Option<Models>,
    pub agent_log: &'a Path,
    pub interrupt: Arc<AtomicBool>,
}

impl ExternalAgent {
    pub fn new(s: ExternalSetup) -> Result<ExternalAgent> {
        Ok(ExternalAgent {
            command: s.command.to_string(),
            timeout: Duration::from_secs_f64(s.timeout),
            limits: Limits {
                max_steps: s.max_steps,
                max_time: s.max_time,
                agent_timeout: s.timeout,
            },
            task: s.task.to_string(),
            models: s.models,
            journal: Journal::open(s.agent_log)?,
            interrupt: s.interrupt,
        })
    }
}

/// What the reader thread hands over.
enum Incoming {
    Line(String),
    Closed,
}

/// The running agent process; killed with its group when dropped.
///
/// Lines go out through a writer thread, so an agent that stops reading
/// can never block mlab: the thread is stuck instead, until the group is
/// killed and its write fails.
struct Process {
    child: Child,
    outbox: Option<mpsc::Sender<String>>,
    broken: Arc<AtomicBool>,
    lines: Receiver<Incoming>,
}

impl Process {
    fn spawn(command: &str, stderr_log: &Path) -> Result<Process> {
        let stderr = std::fs::File::create(stderr_log)
            .with_context(|| format!("could not create {}", stderr_log.display()))?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .process_group(0);
        for var in crate::llm::secret_env_vars() {
            cmd.env_remove(var);
        }
        let mut child = cmd.spawn().with_context(|| {
            format!("could not start the external agent `{command}` with sh -c")
        })?;
        let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
            let _ = child.kill();
            anyhow::bail!(
                "the external agent `{command}` started without its stdin and stdout pipes"
            );
        };
        let (outbox, pending) = mpsc::channel::<String>();
        let broken = Arc::new(AtomicBool::new(false));
        let flag = broken.clone();
        std::thread::Builder::new()
            .name("external-agent-in".into())
            .spawn(move || write_lines(stdin, pending, flag))
            .context("could not start the thread that writes to the external agent")?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("external-agent".into())
            .spawn(move || {
                let mut reader = BufReader::new(stdout);
                let mut line = String::new();
                loop {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => {
                            let _ = tx.send(Incoming::Closed);
                            return;
                        }
                        Ok(_) => {
                            if tx
                                .send(Incoming::Line(line.trim_end().to_string()))
                                .is_err()
                            {
                                return;
                            }
                        }
                    }
                }
            })
            .context("could not start the thread that reads the external agent")?;
        Ok(Process {
            child,
            outbox: Some(outbox),
            broken,
            lines: rx,
        })
    }

    /// Queues one message; false when the agent is known to read no more.
    fn send(&mut self, msg: &ToAgent) -> bool {
        match &self.outbox {
            Some(out) if !self.broken.load(Ordering::SeqCst) => out.send(msg.line()).is_ok(),
            _ => false,
        }
    }

    /// Says goodbye, gives the agent a moment to exit, then ends its group.
    /// Sends the `end` message: how the run ended, or `stopped` (None)
    /// when mlab itself failed.
    fn close(&mut self, reason: Option<ExitReason>) {
        let _ = self.send(&ToAgent::End {
            reason: reason.map_or("stopped", ExitReason::as_str).to_string(),
        });
        // Closing the queue closes the agent's stdin once it is written.
        self.outbox = None;
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn status_text(&mut self) -> String {
        // The pipe closes a moment before the process is reaped.
        for _ in 0..100 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.to_string();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        "still running with its output closed".into()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.outbox = None;
        crate::sandbox::kill_group(self.child.id() as i32);
        let _ = self.child.wait();
    }
}

/// The writer thread: one line per message, flushed, until the queue
/// closes or the pipe breaks.
fn write_lines(mut stdin: ChildStdin, pending: Receiver<String>, broken: Arc<AtomicBool>) {
    for line in pending {
        if stdin
            .write_all(line.as_bytes())
            .and_then(|_| stdin.flush())
            .is_err()
        {
            broken.store(true, Ordering::SeqCst);
            return;
        }
    }
}

impl ExternalAgent {
    fn converse(&mut self, env: &mut Environment, p: &mut Process) -> Result<String> {
        let start = ToAgent::Start {
            protocol: PROTOCOL_VERSION,
            task: self.task.clone(),
            research_problem: env.research_problem().to_string(),
            actions: env.action_infos().iter().map(|a| ActionSpec(a)).collect(),
            limits: self.limits.clone(),
            llm: self.models.as_ref().map(|m| m.main.name().to_string()),
            steps_taken: env.steps_taken(),
        };
        if !p.send(&start) {
            let status = p.status_text();
            return Err(Misbehaved(format!(
                "exited before reading its start message ({status})"
            ))
            .into());
        }
        let mut llm_calls = 0usize;
        loop {
            let remaining = self.limits_time().saturating_sub(env.elapsed());
            let wait = self.timeout.min(remaining + Duration::from_millis(50));
            let line = match p.lines.recv_timeout(wait) {
                Ok(Incoming::Line(l)) => l,
                Ok(Incoming::Closed) | Err(RecvTimeoutError::Disconnected) => {
                    if self.interrupt.load(Ordering::SeqCst) {
                        return Err(Interrupted.into());
                    }
                    if env.is_final() {
                        return Ok("the external agent finished".into());
                    }
                    let status = p.status_text();
                    return Err(Misbehaved(format!(
                        "exited before the run was over ({status}); see agent_log/agent_stderr.log"
                    ))
                    .into());
                }
                Err(RecvTimeoutError::Timeout) => {
                    if env.time_exhausted() {
                        p.close(Some(ExitReason::MaxTime));
                        return Ok("the run reached its time limit".into());
                    }
                    return Err(Misbehaved(format!(
                        "sent nothing for {} s (--agent-timeout) and was stopped",
                        self.timeout.as_secs_f64()
                    ))
                    .into());
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            let msg: FromAgent = serde_json::from_str(&line).map_err(|e| {
                Misbehaved(format!(
                    "wrote a line that is not a protocol message ({e}): {}",
                    super::clip(&line, 300)
                ))
            })?;
            match msg {
                FromAgent::Log { text } => {
                    self.journal.write(&format!("Agent note: {text}\n"))?;
                }
                FromAgent::Llm {
                    messages,
                    max_tokens,
                    stop,
                    temperature,
                } => {
                    let reply = self.serve_llm(env, messages, max_tokens, stop, temperature)?;
                    llm_calls += 1;
                    if !p.send(&reply) {
                        return Err(Misbehaved(
                            "stopped reading before its model reply arrived".into(),
                        )
                        .into());
                    }
                }
                FromAgent::Action { name, args } => {
                    if !env.action_infos().iter().any(|a| a.name == name) {
                        let known: Vec<&str> = env.action_infos().iter().map(|a| a.name).collect();
                        return Err(Misbehaved(format!(
                            "asked for the unknown action \"{name}\"; the actions are: {}",
                            known.join(", ")
                        ))
                        .into());
                    }
                    let args = if name == FINAL_ANSWER && args.is_null() {
                        json!({ "final_answer": "" })
                    } else {
                        args
                    };
                    if self.act(env, p, Action::new(name, args))? {
                        break;
                    }
                }
                FromAgent::Final { answer } => {
                    let args = json!({ "final_answer": answer.unwrap_or_default() });
                    if self.act(env, p, Action::new(FINAL_ANSWER, args))? {
                        break;
                    }
                }
            }
        }
        p.close(Some(env.normal_end()));
        Ok(format!(
            "the external agent took {} steps and made {llm_calls} model calls",
            env.steps_taken()
        ))
    }

    fn limits_time(&self) -> Duration {
        Duration::from_secs_f64(self.limits.max_time)
    }

    /// Takes one action and answers with its observation; true when the
    /// run is over.
    fn act(&mut self, env: &mut Environment, p: &mut Process, action: Action) -> Result<bool> {
        let index = env.steps_taken();
        ui::info(format!("step {index}: {}", action.name));
        let name = action.name.clone();
        let input = action.args.to_string();
        let observation = env.execute(action)?;
        self.journal.write(&format!(
            "Step {index}:\nAction: {name}\nAction Input: {input}\nObservation:\n```\n{observation}\n```\n\n"
        ))?;
        let done = env.is_final();
        let sent = p.send(&ToAgent::Observation {
            text: observation,
            step: index,
            done,
        });
        if !sent && !done {
            return Err(Misbehaved("stopped reading before the run was over".into()).into());
        }
        Ok(done)
    }

    fn serve_llm(
        &mut self,
        env: &Environment,
        messages: Vec<crate::llm::Message>,
        max_tokens: Option<u32>,
        stop: Vec<String>,
        temperature: Option<f32>,
    ) -> Result<ToAgent> {
        let Some(models) = &self.models else {
            return Ok(ToAgent::LlmError {
                kind: "unavailable".into(),
                message: "this run has no model; start mlab with --llm MODEL to serve llm requests"
                    .into(),
            });
        };
        let req = Request {
            messages,
            stop,
            max_tokens: max_tokens.unwrap_or(models.main_max_tokens),
            temperature: temperature.unwrap_or(0.5),
            tools: Vec::new(),
            tool_choice: None,
            log_file: Some(
                self.journal
                    .dir()
                    .join(format!("step_{}_log.log", env.steps_taken())),
            ),
        };
        let count = req.messages.len();
        match models.main.complete(&req) {
            Ok(c) => {
                self.journal.write(&format!(
                    "Model call for the agent: {count} messages in, {} characters out\n",
                    c.text.len()
                ))?;
                Ok(ToAgent::LlmResult {
                    text: c.text,
                    usage: c.usage,
                    cost_usd: c.cost_usd,
                })
            }
            // A spent budget ends the run; other failures are the agent's to handle.
            Err(e @ LlmError::Budget(_)) => {
                Err(super::llm_failure(e, "the external agent's model call"))
            }
            Err(e) => {
                self.journal
                    .write(&format!("Model call for the agent failed: {e}\n"))?;
                Ok(ToAgent::LlmError {
                    kind: e.kind().to_string(),
                    message: e.to_string(),
                })
            }
        }
    }
}

impl Agent for ExternalAgent {
    fn run(&mut self, env: &mut Environment) -> Result<String> {
        self.journal.write(&format!(
            "External agent: `{}`\nResearch problem: {}\n\n",
            self.command,
            env.research_problem().trim_end()
        ))?;
        let stderr_log: PathBuf = self.journal.dir().join("agent_stderr.log");
        let mut p = Process::spawn(&self.command, &stderr_log)?;
        let result = self.converse(env, &mut p);
        match &result {
            Ok(msg) => {
                let _ = self.journal.write(&format!("\n{msg}\n"));
            }
            Err(e) => {
                let reason = if e.downcast_ref::<Misbehaved>().is_some() {
                    Some(ExitReason::AgentError)
                } else if matches!(e.downcast_ref::<LlmError>(), Some(LlmError::Budget(_))) {
                    Some(ExitReason::Budget)
                } else if e.downcast_ref::<Interrupted>().is_some() {
                    Some(ExitReason::Interrupted)
                } else {
                    None
                };
                p.close(reason);
                let _ = self.journal.write(&format!("\nThe run ended: {e:#}\n"));
            }
        }
        drop(p);
        result
    }
}
