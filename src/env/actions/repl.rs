//! Python REPL: a Python session that keeps its variables between calls.
//!
//! The original ran `exec` inside the harness process, with the harness's
//! rights and memory. Here the session is a separate Python process started
//! through the sandbox (`sandbox::spawn`) in the workspace, under the same
//! policy as Execute Script. mlab sends it one JSON line per call; a small
//! driver runs the code, keeps only the head and tail of what it prints,
//! and answers on one marked line. A call that runs past its time limit, or
//! a run interrupted by the user, kills the session's process group; the
//! next call starts a fresh session.
//!
//! Between calls the session is frozen: every process of it (the process
//! tree under the one mlab started, and its process group) is stopped with
//! SIGSTOP once a call returns and continued at the next call, so no code
//! the agent left running (a thread, a background process) can touch the
//! workspace while mlab snapshots it or works on it. A session that cannot
//! be frozen is ended. A frozen session is killed like a running one.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{Map, Value};

use super::{text_arg, ActionError, Ctx};
use crate::env::actions::exec::script_policy;
use crate::env::output::BoundedText;
use crate::sandbox;

/// Marks the driver's answer line on its stdout.
const MARK: &str = "\u{1}MLAB-REPL-ANSWER\u{1}";

/// The driver: runs each request in one namespace, captures printed output
/// boundedly, answers with one marked JSON line.
const DRIVER: &str = r#"
import sys, json, traceback
MARK = "\x01MLAB-REPL-ANSWER\x01"
HEAD = TAIL = 10000
class Bounded:
    def __init__(self):
        self.head = []; self.hlen = 0; self.tail = ""; self.total = 0
    def write(self, s):
        s = str(s); self.total += len(s)
        if self.hlen < HEAD:
            part = s[:HEAD - self.hlen]; self.head.append(part); self.hlen += len(part); s = s[len(part):]
        if s:
            self.tail = (self.tail + s)[-TAIL:]
        return len(s)
    def flush(self):
        pass
    def text(self):
        head = "".join(self.head)
        cut = self.total - len(head) - len(self.tail)
        if cut > 0:
            return head + "\n[... %d characters of output cut here ...]\n" % cut + self.tail
        return head + self.tail
real_out = sys.stdout
ns = {"__name__": "__main__"}
for line in sys.stdin:
    try:
        code = json.loads(line)["code"]
    except Exception:
        continue
    buf = Bounded()
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = buf
    try:
        try:
            compiled = compile(code, "<repl>", "eval")
        except SyntaxError:
            compiled = None
        if compiled is not None:
            value = eval(compiled, ns)
            if value is not None:
                print(repr(value))
        else:
            exec(compile(code, "<repl>", "exec"), ns)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout, sys.stderr = saved
    real_out.write(MARK + json.dumps({"output": buf.text()}) + "\n")
    real_out.flush()
"#;

/// A running session.
pub struct Repl {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Vec<u8>>,
    /// Processes stopped by [`Repl::freeze`].
    frozen: Vec<i32>,
}

impl Drop for Repl {
    fn drop(&mut self) {
        let root = self.child.id() as i32;
        // Whatever left the process group is still in the tree (or was
        // frozen): killed too. SIGKILL ends stopped processes as well.
        let procs = read_procs();
        let mut doomed = session_processes(root, &procs);
        doomed.extend(still_stopped(&self.frozen, &procs));
        for pid in doomed {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        sandbox::kill_group(root);
        let _ = self.child.wait();
    }
}

/// How long stopping a session may take before it is ended instead.
const FREEZE_WITHIN: Duration = Duration::from_secs(2);

/// A process as /proc tells it: parent, process group, state letter.
struct Proc {
    pid: i32,
    ppid: i32,
    pgrp: i32,
    state: char,
}

fn read_procs() -> Vec<Proc> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ..."; comm may hold spaces and parens.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let (Some(state), Some(ppid), Some(pgrp)) = (
            f.first().and_then(|s| s.chars().next()),
            f.get(1).and_then(|s| s.parse().ok()),
            f.get(2).and_then(|s| s.parse().ok()),
        ) else {
            continue;
        };
        out.push(Proc {
            pid,
            ppid,
            pgrp,
            state,
        });
    }
    out
}

/// The session's processes: `root`, everything below it, and its process
/// group (which also holds processes whose parent has exited).
fn session_processes(root: i32, procs: &[Proc]) -> Vec<i32> {
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        for p in procs {
            if p.ppid == parent && !found.contains(&p.pid) {
                found.push(p.pid);
            }
        }
        i += 1;
    }
    for p in procs {
        if p.pgrp == root && !found.contains(&p.pid) {
            found.push(p.pid);
        }
    }
    found
}

/// The processes of `frozen` that are still stopped: one that is not was
/// ended by someone else, and its number may now be another process's.
fn still_stopped(frozen: &[i32], procs: &[Proc]) -> Vec<i32> {
    frozen
        .iter()
        .copied()
        .filter(|pid| {
            procs
                .iter()
                .any(|p| p.pid == *pid && (p.state == 'T' || p.state == 't'))
        })
        .collect()
}

impl Repl {
    /// Stops every process of the session and waits until each one is
    /// stopped (state T), taking in processes started meanwhile. Err when
    /// that did not happen within [`FREEZE_WITHIN`].
    pub fn freeze(&mut self) -> Result<(), String> {
        let root = self.child.id() as i32;
        let until = Instant::now() + FREEZE_WITHIN;
        loop {
            let procs = read_procs();
            let members = session_processes(root, &procs);
            let mut running = 0;
            for pid in members {
                let state = procs.iter().find(|p| p.pid == pid).map(|p| p.state);
                match state {
                    // Gone, a zombie, or already stopped.
                    None | Some('Z') | Some('X') | Some('x') | Some('T') | Some('t') => {
                        if state.is_some_and(|s| s == 'T' || s == 't')
                            && !self.frozen.contains(&pid)
                        {
                            self.frozen.push(pid);
                        }
                    }
                    Some(_) => {
                        running += 1;
                        if kill(Pid::from_raw(pid), Signal::SIGSTOP).is_ok()
                            && !self.frozen.contains(&pid)
                        {
                            self.frozen.push(pid);
                        }
                    }
                }
            }
            if running == 0 {
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(format!(
                    "{running} of its processes could not be stopped within {} s",
                    FREEZE_WITHIN.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Continues what [`Repl::freeze`] stopped.
    pub fn thaw(&mut self) {
        let root = self.child.id() as i32;
        let procs = read_procs();
        let mut all = still_stopped(&std::mem::take(&mut self.frozen), &procs);
        for pid in session_processes(root, &procs) {
            if !all.contains(&pid) {
                all.push(pid);
            }
        }
        for pid in all {
            let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
        }
    }
}

/// Longest line kept whole from the session's stdout; the answer line is
/// far shorter.
const MAX_LINE: usize = 1 << 20;

impl Repl {
    fn start(ctx: &Ctx) -> Result<Repl, ActionError> {
        let argv: Vec<OsString> = vec![
            ctx.exec.python.clone().into_os_string(),
            "-u".into(),
            "-c".into(),
            DRIVER.into(),
        ];
        let policy = script_policy(ctx.ws, ctx.exec, None);
        let mut child = sandbox::spawn(ctx.exec.sandbox.as_ref(), &argv, &policy, Stdio::piped())
            .map_err(|e| {
            ActionError::env(format!("could not start the Python session: {e:#}"))
        })?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            sandbox::kill_group(child.id() as i32);
            let _ = child.wait();
            return Err(ActionError::env(
                "the Python session started without its pipes; call Python REPL again",
            ));
        };
        // What the session writes to fd 2 outside the driver's capture goes
        // to the run's log.
        let log = ctx.exec.run_log.clone();
        std::thread::spawn(move || {
            let mut stderr = stderr;
            let mut buf = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut l) = log.lock() {
                    let _ = l.write_all(b"REPL STDERR: ");
                    let _ = l.write_all(&buf[..n]);
                }
            }
        });
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(16);
        std::thread::spawn(move || {
            let mut stdout = stdout;
            let mut pending: Vec<u8> = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mut chunk = &buf[..n];
                while let Some(i) = chunk.iter().position(|&b| b == b'\n') {
                    pending.extend_from_slice(&chunk[..i]);
                    if tx.send(std::mem::take(&mut pending)).is_err() {
                        return;
                    }
                    chunk = &chunk[i + 1..];
                }
                pending.extend_from_slice(chunk);
                if pending.len() > MAX_LINE && tx.send(std::mem::take(&mut pending)).is_err() {
                    return;
                }
            }
            if !pending.is_empty() {
                let _ = tx.send(pending);
            }
        });
        Ok(Repl {
            child,
            stdin,
            lines: rx,
            frozen: Vec::new(),
        })
    }
}

/// Python REPL: thaws the session (or starts one), runs the command, and
/// freezes the session again before the step is recorded.
pub fn python_repl(args: &Map<String, Value>, ctx: &mut Ctx) -> Result<String, ActionError> {
    let command = text_arg(args, "command")?;
    let result = run_in_session(&command, ctx);
    if let Some(repl) = ctx.repl.as_mut() {
        if let Err(why) = repl.freeze() {
            *ctx.repl = None;
            let note = format!(
                "\nThe Python session was ended because it could not be paused between steps ({why}); the next call starts a new one, without earlier variables."
            );
            return match result {
                Ok(obs) => Ok(obs + &note),
                Err(ActionError::Env { msg, io }) => Err(ActionError::Env {
                    msg: msg + &note,
                    io,
                }),
                Err(e) => Err(e),
            };
        }
    }
    result
}

fn run_in_session(command: &str, ctx: &mut Ctx) -> Result<String, ActionError> {
    let repl = match ctx.repl.as_mut() {
        Some(repl) => {
            repl.thaw();
            repl
        }
        None => ctx.repl.insert(Repl::start(ctx)?),
    };
    let mut request = serde_json::json!({ "code": command })
        .to_string()
        .into_bytes();
    request.push(b'\n');
    if repl
        .stdin
        .write_all(&request)
        .and_then(|_| repl.stdin.flush())
        .is_err()
    {
        *ctx.repl = None;
        return Err(ActionError::env(
            "the Python session had ended; call Python REPL again to start a new one (earlier variables are gone)",
        ));
    }
    let deadline = ctx.timeout.map(|t| Instant::now() + t);
    // Anything printed straight to fd 1 (by a subprocess, say) is kept too.
    let mut raw = BoundedText::default();
    loop {
        let wait = deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_secs(3600))
            .min(Duration::from_millis(100));
        match repl.lines.recv_timeout(wait) {
            Ok(line) => {
                let text = String::from_utf8_lossy(&line);
                if let Some(answer) = text.strip_prefix(MARK) {
                    let output = serde_json::from_str::<Value>(answer)
                        .ok()
                        .and_then(|v| v["output"].as_str().map(String::from))
                        .unwrap_or_default();
                    let mut obs = raw.render();
                    obs.push_str(&output);
                    return Ok(obs);
                }
                raw.push(&line);
                raw.push(b"\n");
            }
            Err(RecvTimeoutError::Disconnected) => {
                *ctx.repl = None;
                let mut obs = raw.render();
                obs.push_str("The Python session ended (the code may have exited the interpreter or crashed); the next call starts a new one, without earlier variables.");
                return Ok(obs);
            }
            Err(RecvTimeoutError::Timeout) => {
                let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
                let interrupted = ctx.exec.interrupt.load(Ordering::SeqCst);
                if timed_out || interrupted {
                    *ctx.repl = None;
                    let why = if interrupted {
                        "the run was interrupted".to_string()
                    } else {
                        format!(
                            "it ran past its time limit of {:.0} s",
                            ctx.timeout.unwrap_or_default().as_secs_f64()
                        )
                    };
                    let mut obs = raw.render();
                    obs.push_str(&format!(
                        "The code was stopped because {why}. The Python session was restarted, so its variables are gone."
                    ));
                    return Ok(obs);
                }
            }
        }
    }
}
