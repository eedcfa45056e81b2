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

use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

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
}

impl Drop for Repl {
    fn drop(&mut self) {
        sandbox::kill_group(self.child.id() as i32);
        let _ = self.child.wait();
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
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
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
        })
    }
}

pub fn python_repl(args: &Map<String, Value>, ctx: &mut Ctx) -> Result<String, ActionError> {
    let command = text_arg(args, "command")?;
    if ctx.repl.is_none() {
        *ctx.repl = Some(Repl::start(ctx)?);
    }
    let repl = ctx.repl.as_mut().expect("started");
    let mut request = serde_json::to_vec(&serde_json::json!({ "code": command })).expect("json");
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
