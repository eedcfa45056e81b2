//! `--agent program --agent-cmd "CMD"`: an outside agent (aider,
//! mini-swe-agent, AIDE, Codex CLI, Claude Code, a script of one's own),
//! unmodified, run as one program inside the run's sandbox.
//!
//! The program runs under `sh -c` with the policy of Execute Script (the
//! workspace read-write as its working directory, the task's read-only
//! files read-only, the answers, the logs and the rest of the host
//! invisible, no network), in its own process group. It learns the
//! research problem three ways: `{problem}` in CMD (replaced by the problem,
//! shell-quoted), `MLAB_PROBLEM`, and the file `research_problem.txt` in the
//! workspace.
//!
//! It thinks through the run's model, never with a key of its own: when the
//! run has `--llm`, mlab serves an LLM gateway (`crate::gateway`) on a unix
//! socket that is bound into the sandbox, and `mlab gateway-forward`, started
//! inside before CMD, listens on 127.0.0.1 there and relays to the socket.
//! The program finds it through the usual settings, `OPENAI_BASE_URL` (and
//! `OPENAI_API_BASE`) and `ANTHROPIC_BASE_URL`, with dummy keys; the real
//! key stays in mlab. Under `--sandbox none` the forwarder listens on the
//! host's loopback instead: the key is still kept out of the program's
//! environment and files, but nothing stops a hostile program from reading
//! mlab's memory or the host's files, so that mode protects nothing
//! against one.
//!
//! Each model call closes a step: when the gateway has the whole reply,
//! before the program receives its end, the workspace is snapshotted and
//! trace.json gets an `LLM Call` step (the model, wire format and request
//! in brief as its arguments, the reply in brief as its observation). So
//! `mlab eval --eval-intermediate`, resume and the report work as for
//! mlab's own agents. `--max-steps` counts calls, `--max-time` ends the
//! program (its whole process group), a budget the gateway refuses ends
//! the run as `budget` once the program has had the API error, and a
//! program that exits with status 0 has finished: its exit is recorded as
//! a `Final Answer` step, so the run ends as `final_answer`, the same
//! reason an agent that submits gets. Any other status ends the run as
//! `agent_error`. The environment takes the final snapshot on every way
//! out.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;

use super::{clip, Agent, Journal};
use crate::env::catalog::{Action, FINAL_ANSWER};
use crate::env::{Environment, Interrupted};
use crate::llm::{LlmError, Models, Totals};
use crate::sandbox::{self, Bind};
use crate::ui;

/// The problem, as a file in the workspace.
pub const PROBLEM_FILE: &str = "research_problem.txt";

/// The action name of a step that an outside program's model call closed.
pub const LLM_CALL: &str = "LLM Call";

/// The port the forwarder listens on inside the sandbox's own network
/// namespace (nothing else listens there).
const PORT_IN_SANDBOX: u16 = 8357;

/// Exit status of the wrapper when the forwarder did not start.
const FORWARDER_FAILED: i32 = 97;

/// How long a program whose budget ran out may take to exit on its own
/// after its refused call, before it is stopped.
const GRACE_AFTER_REFUSAL: Duration = Duration::from_secs(2);

/// Bytes of the program's output kept in `agent_log/program.log`.
const OUTPUT_CAP: u64 = 64 << 20;

/// The `--agent program` settings (flags of `mlab run`).
#[derive(Debug, Clone, Default)]
pub struct ProgramOptions {
    /// Models the program may ask the gateway for (`--allow-model`); empty:
    /// the run's `--llm` model only.
    pub allow_models: Vec<String>,
    /// The mlab binary that runs `gateway-forward` inside the sandbox
    /// (default: this process's own executable).
    pub forwarder: Option<PathBuf>,
    /// A venv of outside agents to show inside, read-only, with its bin/
    /// on PATH after the task Python's (`--agents-venv`; default:
    /// `<mlab home>/agents-venv` when it exists, what `./install.sh
    /// --outside-agents` makes).
    pub agents_venv: Option<PathBuf>,
}

impl ProgramOptions {
    /// The agents venv to show: the one named, else the default one when it
    /// is there.
    pub fn venv(&self) -> Option<PathBuf> {
        match &self.agents_venv {
            Some(v) => Some(v.clone()),
            None => Some(default_agents_venv()).filter(|v| v.join("bin").is_dir()),
        }
    }
}

/// Where `./install.sh --outside-agents` puts the outside agents.
pub fn default_agents_venv() -> PathBuf {
    crate::paths::mlab_home().join("agents-venv")
}

/// One model call the gateway served, as a step records it.
#[derive(Debug, Clone, Default)]
pub struct CallNote {
    pub model: String,
    /// `openai-chat`, `openai-responses` or `anthropic-messages`.
    pub wire: String,
    pub streamed: bool,
    /// Messages in the request.
    pub messages: usize,
    /// The last user message, clipped.
    pub last_user: String,
    /// The reply's text, clipped.
    pub reply: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: Option<f64>,
    /// Why the gateway refused the call, if it did.
    pub refused: Option<Refusal>,
}

/// A call the gateway did not forward.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// `--max-cost` or `--max-total-tokens` is spent: ends the run.
    Budget(String),
    /// Anything else (a model not on the allow-list, an upstream error):
    /// the program's to handle.
    Other(String),
}

impl CallNote {
    /// The step's action.
    pub fn action(&self) -> Action {
        Action::new(
            LLM_CALL,
            json!({
                "model": self.model,
                "wire_format": self.wire,
                "stream": self.streamed,
                "messages": self.messages,
                "last_user_message": self.last_user,
            }),
        )
    }

    /// The step's observation.
    pub fn observation(&self) -> String {
        match &self.refused {
            Some(Refusal::Budget(why)) => format!("Refused (budget): {why}"),
            Some(Refusal::Other(why)) => format!("Refused: {why}"),
            None => {
                let cost = self
                    .cost_usd
                    .map(|c| format!(", ${c:.4}"))
                    .unwrap_or_default();
                format!(
                    "Reply ({} tokens in, {} out{cost}):\n{}",
                    self.input_tokens, self.output_tokens, self.reply
                )
            }
        }
    }
}

/// A call to record, and where to say that it is recorded.
type CallMsg = (CallNote, mpsc::Sender<()>);

/// Hands calls from the gateway's threads to the agent's loop, and waits
/// until each is recorded (so the snapshot shows the workspace as it was
/// when the program asked). A loop that is gone answers at once.
#[derive(Clone)]
pub struct CallSink {
    tx: Arc<Mutex<mpsc::Sender<CallMsg>>>,
}

impl CallSink {
    /// Records `note` as a step; returns once it is recorded or the run's
    /// loop has ended.
    pub fn record(&self, note: CallNote) {
        let (ack, done) = mpsc::channel();
        let sent = self
            .tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send((note, ack))
            .is_ok();
        if sent {
            // An Err means the loop dropped the call unrecorded (it ended).
            let _ = done.recv();
        }
    }
}

/// What the program agent asks of the running gateway.
pub trait GatewayHandle: Send {
    /// Tokens, dollars and calls so far.
    fn totals(&self) -> Totals;
}

/// The gateway as the program agent uses it: started for the run, with
/// calls recorded through a [`CallSink`]; stops when dropped.
pub struct Served {
    /// The socket the forwarder relays to.
    pub socket: PathBuf,
    /// The gateway (it keeps the socket's folder alive too).
    pub handle: Box<dyn GatewayHandle>,
}

/// What the gateway is started from.
pub struct GatewaySetup<'a> {
    pub llm: &'a crate::llm::Config,
    pub options: &'a ProgramOptions,
    /// The run's log folder (`agent_log/llm_calls.jsonl` goes inside).
    pub log_dir: &'a Path,
}

/// Starts the gateway for a run; see `gateway_glue`.
type StartGateway = fn(&GatewaySetup, CallSink) -> Result<Served>;

/// The program failed: it exited with a status other than 0, or could not
/// be started. Ends the run as `agent_error`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProgramFailed(pub String);

/// Settings of the program agent.
pub struct ProgramSetup<'a> {
    pub command: &'a str,
    pub models: Option<Models>,
    /// The run's LLM flags (the gateway forwards to `--llm`'s provider).
    pub llm: crate::llm::Config,
    pub log_dir: &'a Path,
    pub options: ProgramOptions,
    pub agent_log: &'a Path,
    pub interrupt: Arc<AtomicBool>,
}

pub struct ProgramAgent {
    command: String,
    models: Option<Models>,
    llm: crate::llm::Config,
    log_dir: PathBuf,
    /// What the gateway counted, once the program has ended.
    totals: Option<Totals>,
    options: ProgramOptions,
    journal: Journal,
    interrupt: Arc<AtomicBool>,
    start_gateway: StartGateway,
}

impl ProgramAgent {
    pub fn new(s: ProgramSetup) -> Result<ProgramAgent> {
        Ok(ProgramAgent {
            command: s.command.to_string(),
            models: s.models,
            llm: s.llm,
            log_dir: s.log_dir.to_path_buf(),
            totals: None,
            options: s.options,
            journal: Journal::open(s.agent_log)?,
            interrupt: s.interrupt,
            start_gateway: gateway_glue::start,
        })
    }
}

/// CMD with `{problem}` replaced by the problem, quoted for the shell.
pub fn expand_command(command: &str, problem: &str) -> String {
    command.replace("{problem}", &crate::sandbox::shell_quote(problem))
}

/// The wrapper that starts the forwarder, waits for its `ready`, then
/// becomes CMD. Arguments: `$1` the mlab binary, `$2` the socket, `$3`
/// the port, `$4` CMD.
const WRAPPER: &str = r#"d=$(mktemp -d) && mkfifo "$d/ready" || { echo "mlab: could not make a fifo for the gateway forwarder" >&2; exit 97; }
"$1" gateway-forward --socket "$2" --port "$3" >"$d/ready" &
exec 3<"$d/ready"
IFS= read -r line <&3 || line=
rm -rf "$d"
if [ "$line" != ready ]; then
  echo "mlab: the gateway forwarder did not start (it said: '$line')" >&2
  exit 97
fi
exec sh -c "$4"
"#;

/// A free port on the host's loopback (for `--sandbox none`).
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))
        .context("could not find a free port on 127.0.0.1 for the gateway forwarder")?;
    Ok(l.local_addr()?.port())
}

/// Copies one output pipe of the program into the shared log, up to
/// [`OUTPUT_CAP`] bytes in all.
fn pump(mut pipe: impl Read + Send + 'static, log: Arc<Mutex<(std::fs::File, u64)>>, echo: bool) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match pipe.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let mut l = log.lock().unwrap_or_else(|p| p.into_inner());
            if l.1 < OUTPUT_CAP {
                let take = (OUTPUT_CAP - l.1).min(n as u64) as usize;
                let _ = l.0.write_all(&buf[..take]);
                l.1 += take as u64;
                if l.1 >= OUTPUT_CAP {
                    let _ = l.0.write_all(b"\n[mlab: output beyond 64 MiB not kept]\n");
                }
            }
            if echo {
                let _ = std::io::stderr().write_all(&buf[..n]);
            }
        }
    });
}

/// The running program; its group is killed when dropped.
struct Running {
    child: Child,
}

impl Running {
    fn stop(&mut self) {
        sandbox::kill_group(self.child.id() as i32);
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How the supervision loop ended.
enum Ended {
    /// The program exited with this status (code, or the signal's text).
    Exited(Option<i32>, String),
    /// mlab stopped it: a limit, the budget.
    Stopped(&'static str),
    Budget(String),
}

impl ProgramAgent {
    fn start(
        &self,
        env: &Environment,
        rx_slot: &mut Option<mpsc::Receiver<CallMsg>>,
    ) -> Result<(Running, Option<Served>)> {
        let problem = env.research_problem().to_string();
        let root = env.workspace_root().to_path_buf();
        crate::env::trace::write_atomic(&root.join(PROBLEM_FILE), problem.as_bytes())
            .with_context(|| format!("could not write {PROBLEM_FILE} in the workspace"))?;
        let (sb, mut policy) = env.program_policy();
        let home = self.journal.dir().join("home");
        std::fs::create_dir_all(&home)
            .with_context(|| format!("could not create {}", home.display()))?;
        let home = sandbox::policy::real(&home);
        policy.read_write.push(Bind {
            src: home.clone(),
            dest: home.clone(),
        });
        set_env(&mut policy.env, "HOME", &home.display().to_string());
        set_env(&mut policy.env, "MLAB_PROBLEM", &problem);
        if let Some(venv) = self.options.venv() {
            if !venv.join("bin").is_dir() {
                anyhow::bail!(
                    "the agents venv {} has no bin/ folder; make it with ./install.sh --outside-agents, or name another with --agents-venv",
                    venv.display()
                );
            }
            let (binds, bin) = sandbox::python_env_binds(&venv.join("bin/python"));
            policy.read_only.extend(binds);
            let venv_abs = sandbox::policy::real(&venv);
            policy.read_only.push(Bind {
                src: venv_abs.clone(),
                dest: venv_abs,
            });
            if let Some(bin) = bin {
                append_path(&mut policy.env, &bin);
            }
            set_env(
                &mut policy.env,
                "MLAB_AGENTS_VENV",
                &venv.display().to_string(),
            );
        }
        let command = expand_command(&self.command, &problem);
        let mut served = None;
        let argv: Vec<std::ffi::OsString> = match &self.models {
            Some(models) => {
                let (tx, rx) = mpsc::channel();
                *rx_slot = Some(rx);
                let sink = CallSink {
                    tx: Arc::new(Mutex::new(tx)),
                };
                let setup = GatewaySetup {
                    llm: &self.llm,
                    options: &self.options,
                    log_dir: &self.log_dir,
                };
                let s = (self.start_gateway)(&setup, sink)?;
                let forwarder = match &self.options.forwarder {
                    Some(f) => f.clone(),
                    None => std::env::current_exe().context(
                        "could not find mlab's own executable for the gateway forwarder",
                    )?,
                };
                let forwarder = std::fs::canonicalize(&forwarder).with_context(|| {
                    format!(
                        "the gateway forwarder {} does not exist",
                        forwarder.display()
                    )
                })?;
                policy.read_only.push(Bind {
                    src: forwarder.clone(),
                    dest: forwarder.clone(),
                });
                policy.read_only.push(Bind {
                    src: s.socket.clone(),
                    dest: s.socket.clone(),
                });
                let port = if sb.name() == "none" {
                    ui::warn(
                        "--sandbox none: the program's gateway forwarder listens on the host's loopback; the key stays out of the program's environment and files, but an unconfined program can read mlab's memory and your files",
                    );
                    free_port()?
                } else {
                    PORT_IN_SANDBOX
                };
                let base = format!("http://127.0.0.1:{port}");
                for (k, v) in crate::gateway::client_env(port) {
                    set_env(&mut policy.env, k, &v);
                }
                let model = gateway_glue::model_name(&self.llm)
                    .unwrap_or_else(|| models.main.name().to_string());
                set_env(&mut policy.env, "MLAB_MODEL", &model);
                set_env(&mut policy.env, "MLAB_GATEWAY_URL", &base);
                let argv = vec![
                    "sh".into(),
                    "-c".into(),
                    WRAPPER.into(),
                    "mlab-program".into(),
                    forwarder.into_os_string(),
                    s.socket.clone().into_os_string(),
                    port.to_string().into(),
                    command.clone().into(),
                ];
                served = Some(s);
                argv
            }
            None => vec!["sh".into(), "-c".into(), command.clone().into()],
        };
        self.journal.write(&format!(
            "Program: `{command}`\nSandbox: {}\nModel gateway: {}\nResearch problem: {}\n\n",
            sb.name(),
            match (&served, &self.models) {
                (Some(s), Some(m)) => format!("{} for {}", s.socket.display(), m.main.name()),
                _ => "none (the run has no --llm)".into(),
            },
            problem.trim_end()
        ))?;
        let mut child = sandbox::spawn(sb.as_ref(), &argv, &policy, Stdio::null())
            .map_err(|e| ProgramFailed(format!("could not start the program: {e:#}")))?;
        let log_path = self.journal.dir().join("program.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("could not create {}", log_path.display()))?;
        let log = Arc::new(Mutex::new((log, 0u64)));
        let echo = tracing::enabled!(tracing::Level::DEBUG);
        if let Some(out) = child.stdout.take() {
            pump(out, log.clone(), echo);
        }
        if let Some(err) = child.stderr.take() {
            pump(err, log, echo);
        }
        Ok((Running { child }, served))
    }

    /// Records calls as steps until the program exits or must be stopped.
    fn supervise(
        &mut self,
        env: &mut Environment,
        p: &mut Running,
        calls: Option<&mpsc::Receiver<CallMsg>>,
    ) -> Result<Ended> {
        let mut refused_at: Option<(Instant, String)> = None;
        loop {
            if let Some(rx) = calls {
                match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok((note, ack)) if refused_at.is_some() => {
                        // The budget is spent and the run is ending: later
                        // (refused) calls are in llm_calls.jsonl but make
                        // no steps.
                        let _ = ack.send(());
                        drop(note);
                    }
                    Ok((note, ack)) => {
                        let index = env.steps_taken();
                        ui::info(format!("step {index}: {LLM_CALL} ({})", note.model));
                        let obs = note.observation();
                        env.record_step(note.action(), obs.clone())?;
                        if env.steps_exhausted() {
                            // Stopped before it gets the end of the reply,
                            // so that it can make no call past the limit.
                            p.stop();
                            drop(ack);
                            self.journal.write(&format!(
                                "Step {index}: {LLM_CALL} to {}; the run reached --max-steps\n",
                                note.model
                            ))?;
                            return Ok(Ended::Stopped("the run reached --max-steps"));
                        }
                        let _ = ack.send(());
                        self.journal.write(&format!(
                            "Step {index}: {LLM_CALL} to {} ({}, {} messages)\n{}\n\n",
                            note.model,
                            note.wire,
                            note.messages,
                            clip(&obs, 2000)
                        ))?;
                        if let Some(Refusal::Budget(why)) = &note.refused {
                            refused_at.get_or_insert((Instant::now(), why.clone()));
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => {}
                }
            } else {
                std::thread::sleep(Duration::from_millis(50));
            }
            if let Some(status) = p.child.try_wait().context("waiting for the program")? {
                if let Some((_, why)) = refused_at {
                    return Ok(Ended::Budget(why));
                }
                return Ok(Ended::Exited(status.code(), status.to_string()));
            }
            if self.interrupt.load(Ordering::SeqCst) {
                return Err(Interrupted.into());
            }
            if env.time_exhausted() {
                return Ok(Ended::Stopped("the run reached --max-time"));
            }
            if let Some((at, why)) = &refused_at {
                if at.elapsed() >= GRACE_AFTER_REFUSAL {
                    return Ok(Ended::Budget(why.clone()));
                }
            }
        }
    }
}

fn set_env(env: &mut Vec<(String, String)>, key: &str, value: &str) {
    env.retain(|(k, _)| k != key);
    env.push((key.to_string(), value.to_string()));
}

/// Puts `bin` on PATH after what is there (the task Python's bin/ stays
/// first, so `python` is the task's).
fn append_path(env: &mut [(String, String)], bin: &Path) {
    if let Some((_, path)) = env.iter_mut().find(|(k, _)| k == "PATH") {
        let mut parts: Vec<String> = path.split(':').map(String::from).collect();
        // After the first entry (the task venv's bin/), before the system's.
        let at = parts.len().min(1);
        parts.insert(at, bin.display().to_string());
        *path = parts.join(":");
    }
}

impl Agent for ProgramAgent {
    fn llm_totals(&self) -> Option<Totals> {
        self.totals
    }

    fn run(&mut self, env: &mut Environment) -> Result<String> {
        let mut rx = None;
        let (mut p, served) = self.start(env, &mut rx)?;
        let ended = self.supervise(env, &mut p, rx.as_ref());
        p.stop();
        // Calls still waiting are dropped unrecorded; the program is gone.
        drop(rx);
        if let Some(s) = served {
            self.totals = Some(s.handle.totals());
        }
        let ended = ended?;
        let tail = program_log_tail(self.journal.dir());
        match ended {
            Ended::Exited(Some(0), _) => {
                let answer =
                    format!("The program exited with status 0. The end of its output:\n{tail}");
                self.journal.write("The program exited with status 0.\n")?;
                env.execute(Action::new(FINAL_ANSWER, json!({ "final_answer": answer })))?;
                Ok("the program finished".into())
            }
            Ended::Exited(code, text) => {
                let why = if code == Some(FORWARDER_FAILED) && tail.contains("gateway forwarder") {
                    "the gateway forwarder did not start inside the sandbox".to_string()
                } else {
                    format!("the program exited with {text}")
                };
                self.journal.write(&format!("{why}\n"))?;
                Err(ProgramFailed(format!(
                    "{why}; see agent_log/program.log. The end of its output:\n{}",
                    clip(&tail, 1500)
                ))
                .into())
            }
            Ended::Stopped(why) => {
                self.journal
                    .write(&format!("The program was stopped: {why}.\n"))?;
                Ok(format!("the program was stopped: {why}"))
            }
            Ended::Budget(why) => {
                self.journal.write(&format!(
                    "The program was stopped: its budget is spent ({why}).\n"
                ))?;
                Err(LlmError::Budget(why).into())
            }
        }
    }
}

/// The last lines of `agent_log/program.log`.
fn program_log_tail(agent_log: &Path) -> String {
    let text = std::fs::read(agent_log.join("program.log")).unwrap_or_default();
    let start = text.len().saturating_sub(4000);
    let text = String::from_utf8_lossy(&text[start..]);
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Where the program agent meets `crate::gateway`.
mod gateway_glue {
    use super::*;
    use crate::gateway::{self, CallRecord, GatewayConfig, Wire};

    /// The running gateway, and the private folder of its socket (removed
    /// after the gateway, which removes the socket).
    struct Running {
        gw: gateway::Gateway,
        _dir: tempfile::TempDir,
    }

    impl GatewayHandle for Running {
        fn totals(&self) -> Totals {
            self.gw.totals()
        }
    }

    pub fn start(setup: &GatewaySetup, sink: CallSink) -> Result<Served> {
        // Under /tmp, whatever the log folder: a socket path must be short.
        let dir = tempfile::Builder::new()
            .prefix("mlab-gateway-")
            .tempdir_in("/tmp")
            .context("could not make a folder for the gateway's socket in /tmp")?;
        let socket = dir.path().join("gateway.sock");
        let mut cfg = GatewayConfig::new(
            socket.clone(),
            setup.llm.clone(),
            setup.log_dir.to_path_buf(),
        )?;
        for m in &setup.options.allow_models {
            if !cfg.allowed_models.contains(m) {
                cfg.allowed_models.push(m.clone());
            }
        }
        // A resumed run: the earlier part's calls (carried into this run's
        // llm_calls.jsonl) count toward the budgets and the totals.
        let earlier = setup.log_dir.join("agent_log/llm_calls.jsonl");
        if earlier.is_file() {
            cfg.spent_before = crate::llm::record::sum_records(&earlier)?;
        }
        let on_call: gateway::OnCall = Arc::new(move |c: &CallRecord| sink.record(note_of(c)));
        let gw = gateway::start(cfg, on_call).context("could not start the LLM gateway")?;
        Ok(Served {
            socket,
            handle: Box::new(Running { gw, _dir: dir }),
        })
    }

    /// The model name the program should ask for: `--llm`'s, as its
    /// provider knows it.
    pub fn model_name(llm: &crate::llm::Config) -> Option<String> {
        gateway::default_allowed_models(llm)
            .ok()
            .and_then(|m| m.into_iter().next())
    }

    fn note_of(c: &CallRecord) -> CallNote {
        let (messages, last_user) = request_brief(c.wire, &c.request);
        let refused = c.refused.as_ref().map(|why| {
            if c.status == 402 {
                Refusal::Budget(why.clone())
            } else {
                Refusal::Other(why.clone())
            }
        });
        let reply = match (&c.error, c.refused.is_some()) {
            (Some(e), false) => format!("Error (HTTP {}): {e}", c.status),
            _ => c.reply_summary.clone(),
        };
        CallNote {
            model: c.model.clone(),
            wire: c.wire.as_str().to_string(),
            streamed: c.streamed,
            messages,
            last_user: clip(&last_user, 500),
            reply: clip(&reply, 2000),
            input_tokens: c.usage.input_tokens,
            output_tokens: c.usage.output_tokens,
            cost_usd: Some(c.cost_usd),
            refused,
        }
    }

    /// How many messages the request has, and its last user message as text.
    fn request_brief(wire: Wire, req: &serde_json::Value) -> (usize, String) {
        let list = match wire {
            Wire::OpenAiResponses => match &req["input"] {
                serde_json::Value::String(s) => return (1, s.clone()),
                v => v.as_array().cloned().unwrap_or_default(),
            },
            _ => req["messages"].as_array().cloned().unwrap_or_default(),
        };
        let last_user = list
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .map(|m| content_text(&m["content"]))
            .unwrap_or_default();
        (list.len(), last_user)
    }

    /// The text of a message's content: a string, or the text parts of a
    /// list of parts.
    fn content_text(c: &serde_json::Value) -> String {
        match c {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p["text"].as_str().or(p["content"].as_str()))
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_problem_is_one_shell_word_in_the_command() {
        let cmd = expand_command("printf %s {problem} > out", "it's a \"hard\" $PROBLEM `x`");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd.replace("> out", ""))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "it's a \"hard\" $PROBLEM `x`"
        );
    }

    #[test]
    fn the_agents_venv_goes_after_the_task_python_on_path() {
        let mut env = vec![("PATH".to_string(), "/venv/bin:/usr/bin:/bin".to_string())];
        append_path(&mut env, Path::new("/agents/bin"));
        assert_eq!(env[0].1, "/venv/bin:/agents/bin:/usr/bin:/bin");
    }

    #[test]
    fn a_call_step_names_the_model_and_summarises_the_reply() {
        let note = CallNote {
            model: "gpt-x".into(),
            wire: "openai-chat".into(),
            messages: 3,
            last_user: "hello".into(),
            reply: "hi there".into(),
            input_tokens: 5,
            output_tokens: 2,
            ..CallNote::default()
        };
        let a = note.action();
        assert_eq!(a.name, LLM_CALL);
        assert_eq!(a.args["model"], "gpt-x");
        assert_eq!(a.args["messages"], 3);
        assert!(note.observation().contains("hi there"));
        let refused = CallNote {
            refused: Some(Refusal::Budget("spent".into())),
            ..note
        };
        assert!(refused.observation().starts_with("Refused (budget)"));
    }
}
