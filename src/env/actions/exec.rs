//! Execute Script: `python -u <script>` in the workspace, through the
//! sandbox interface.
//!
//! The script gets a cleared environment (a short whitelist, never API keys
//! or MLAB_* settings), `CUDA_VISIBLE_DEVICES` from `--device`, and a time
//! limit (`--exec-timeout`, else what is left of the run) after which its
//! whole process group is killed. Its output is echoed line by line to the
//! run's `log` with `STDOUT:`/`STDERR:` prefixes (eval greps that file), and
//! the observation is composed as in the original (stderr when the script
//! failed, else stdout, else stderr) but bounded: head and tail are kept and
//! the cut is named. Memory use does not grow with the output.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};

use super::{text_arg, ActionError, Ctx};
use crate::env::output::{BoundedText, LineEcho, ECHO_LIMIT};
use crate::env::workspace::{ReadOnlyMode, Workspace};
use crate::sandbox::{self, Breach, Policy, Sandbox, Stream};

/// How commands are run for this environment.
pub struct ExecSetup {
    pub sandbox: Arc<dyn Sandbox>,
    pub python: PathBuf,
    /// Value of CUDA_VISIBLE_DEVICES.
    pub device: String,
    /// The run's `log` (the original's captured runner output).
    pub run_log: Arc<Mutex<std::fs::File>>,
    /// Also echo script output to mlab's stderr.
    pub echo_stderr: bool,
    pub mem_limit: Option<u64>,
    /// Paths a sandbox must hide from scripts: the log folder and the
    /// benchmarks folder (this task's answers, every other task).
    pub hidden: Vec<PathBuf>,
    /// Set when the user interrupts the run.
    pub interrupt: Arc<AtomicBool>,
}

/// The policy every agent-caused command runs under (Execute Script and the
/// Python session): the sandbox's agent policy over this workspace. A
/// sandbox that mounts files gets the read-only files as binds; without one
/// they are already private copies. The environment is a whitelist (no API
/// keys, no MLAB_*), with CUDA_VISIBLE_DEVICES from `--device`.
pub fn script_policy(ws: &Workspace, setup: &ExecSetup, timeout: Option<Duration>) -> Policy {
    let read_only = match ws.mode() {
        ReadOnlyMode::Bind => ws.binds().to_vec(),
        ReadOnlyMode::Copy => Vec::new(),
    };
    sandbox::agent_policy(&sandbox::AgentSetup {
        workspace: ws.root().to_path_buf(),
        read_only,
        hidden: setup.hidden.clone(),
        python: Some(setup.python.clone()),
        device: Some(setup.device.clone()),
        timeout,
        mem_limit: setup.mem_limit,
        // Output is bounded by mlab as it streams; a chatty training script
        // is not killed for printing.
        max_output: None,
        max_procs: None,
    })
}

/// How a workspace-relative path is passed on a command line: a name that
/// starts with `-` would read as an option.
pub fn script_arg(rel: &str) -> String {
    if rel.starts_with('-') {
        format!("./{rel}")
    } else {
        rel.to_string()
    }
}

pub fn execute_script(args: &Map<String, Value>, ctx: &mut Ctx) -> Result<String, ActionError> {
    let script_name = text_arg(args, "script_name")?;
    let r = ctx.ws.resolve(&script_name)?;
    if !ctx.ws.read_path(&r).is_file() {
        return Err(ActionError::env(format!(
            "the script {script_name} does not exist in the workspace; List Files shows what is there"
        )));
    }
    let argv: Vec<OsString> = vec![
        ctx.exec.python.clone().into_os_string(),
        "-u".into(),
        script_arg(&r.rel).into(),
    ];
    let policy = script_policy(ctx.ws, ctx.exec, ctx.timeout);
    let mut out = BoundedText::default();
    let mut err = BoundedText::default();
    // A handle of its own on the run's log, so that the shared one is not
    // held while the script runs (an abandoned script would hold it for
    // good, and the Python session writes there too).
    let mut log: Box<dyn Write> = {
        let shared = ctx.exec.run_log.lock().unwrap_or_else(|p| p.into_inner());
        match shared.try_clone() {
            Ok(f) => Box::new(f),
            Err(_) => Box::new(std::io::sink()),
        }
    };
    let _ = writeln!(log, "[mlab] step {}: python -u {}", ctx.step, r.rel);
    let mut stderr = std::io::stderr();
    let outcome = {
        let mut echo = LineEcho::new(&mut *log, ECHO_LIMIT);
        let mut term = ctx
            .exec
            .echo_stderr
            .then(|| LineEcho::new(&mut stderr, u64::MAX));
        let result = sandbox::run(ctx.exec.sandbox.as_ref(), &argv, &policy, &mut |s, b| {
            let i = match s {
                Stream::Stdout => 0,
                Stream::Stderr => 1,
            };
            echo.push(i, b);
            if let Some(t) = term.as_mut() {
                t.push(i, b);
            }
            if i == 0 {
                out.push(b)
            } else {
                err.push(b)
            }
        });
        echo.finish([&out, &err]);
        if let Some(t) = term {
            t.finish([&out, &err]);
        }
        result
    };
    let outcome = outcome.map_err(|e| {
        ActionError::env(format!(
            "something went wrong when starting {script_name}: {e:#}. Check that it is a Python script that can be run"
        ))
    })?;
    let interrupted = ctx.exec.interrupt.load(Ordering::SeqCst);
    let _ = writeln!(
        log,
        "[mlab] step {}: {} ended ({}) after {:.1} s",
        ctx.step,
        r.rel,
        match (outcome.code, outcome.signal) {
            (Some(c), _) => format!("exit code {c}"),
            (None, Some(s)) => format!("signal {s}"),
            _ => "unknown status".into(),
        },
        outcome.wall.as_secs_f64()
    );
    let _ = log.flush();
    drop(log);

    let failed = outcome.code != Some(0) || outcome.breach.is_some();
    let shown = if failed || out.is_empty() { &err } else { &out };
    let mut text = shown.render();
    // A script killed before it explained itself: show what it printed.
    if failed && err.is_empty() && !out.is_empty() {
        text = out.render();
    }
    let note = if interrupted {
        Some("The script was stopped because the run was interrupted.".to_string())
    } else {
        match &outcome.breach {
            Some(Breach::Timeout(d)) => Some(format!(
                "The script was stopped after {:.0} s, its time limit (--exec-timeout or the run's remaining time); it and every process it started were killed.",
                d.as_secs_f64()
            )),
            Some(b) => Some(format!("The script was stopped: {b}.")),
            None => match (outcome.code, outcome.signal) {
                (None, Some(sig)) => Some(format!(
                    "The script was killed by signal {sig}{}.",
                    if sig == 9 { " (perhaps for using too much memory)" } else { "" }
                )),
                _ => None,
            },
        }
    };
    let mut obs = String::from("The script was run. Here is what it printed:\n");
    obs.push_str(&text);
    if let Some(n) = note {
        if !obs.ends_with('\n') {
            obs.push('\n');
        }
        obs.push_str(&n);
    }
    Ok(obs)
}
