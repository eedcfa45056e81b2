//! `mlab sandbox-exec`: runs one command exactly as the agent's code (or a
//! grader) would run, printing its output as it comes and any limit it hit.
//! For checking a machine's confinement by hand and for the end-to-end
//! tests; runs themselves call `run`/`spawn` directly.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::tamper::Baseline;
use super::{agent_policy, grader_policy, select, AgentSetup, Bind, Policy, Stream};

/// What `mlab sandbox-exec` runs, and how (one field per flag).
#[derive(Debug, Clone, Default)]
pub struct ExecConfig {
    pub sandbox: super::Kind,
    /// Memory limit per command, in bytes.
    pub mem_limit: Option<u64>,
    /// Working directory, read-write; $HOME inside.
    pub workspace: Option<PathBuf>,
    /// `SRC[:DEST]` bound read-only.
    pub read_only: Vec<String>,
    /// Paths made invisible inside.
    pub hide: Vec<PathBuf>,
    /// Task Python (interpreter or venv folder), made visible read-only.
    pub python: Option<PathBuf>,
    /// CUDA_VISIBLE_DEVICES; also binds the GPU device nodes.
    pub device: Option<String>,
    /// Wall-clock limit in seconds.
    pub timeout: Option<f64>,
    pub max_procs: Option<u64>,
    /// Output limit in bytes.
    pub max_output: Option<u64>,
    /// The grader policy: SNAPSHOT, SCRIPT_DIR and TASK_ENV.
    pub grader: Option<Vec<PathBuf>>,
    /// Where to write the tamper report (JSON).
    pub tamper_report: Option<PathBuf>,
    /// Pass this process's standard input to the command.
    pub stdin: bool,
    /// Run the command N times and print the wall time per run as JSON.
    pub repeat: Option<u32>,
    /// The command and its arguments.
    pub command: Vec<std::ffi::OsString>,
}

pub fn run(args: &ExecConfig) -> Result<ExitCode> {
    let sandbox = select(args.sandbox)?;
    let mut policy = build_policy(args)?;
    policy.timeout = args.timeout.map(Duration::from_secs_f64);
    policy.max_output = args.max_output;
    if let Some(n) = args.max_procs {
        policy.max_procs = Some(n);
    }
    policy.mem_limit = args.mem_limit;
    // The task's read-only files as the host holds them (what the binds
    // show); the Python environment is not the task's.
    let before = match &args.tamper_report {
        Some(_) => {
            let files: Vec<PathBuf> = read_only_binds(args, Path::new("/"))
                .into_iter()
                .map(|b| b.src)
                .collect();
            let b = Baseline::take(Path::new("/"), &files)?;
            tracing::info!("hashed {} read-only files", b.file_count());
            Some(b)
        }
        None => None,
    };
    if let Some(n) = args.repeat {
        return repeat(&*sandbox, args, &policy, n);
    }
    let code = if args.stdin {
        run_with_stdin(&*sandbox, args, &policy)?
    } else {
        run_plain(&*sandbox, args, &policy)?
    };
    if let (Some(before), Some(file)) = (before, &args.tamper_report) {
        let report = before.check();
        std::fs::write(file, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("could not write {}", file.display()))?;
    }
    Ok(code)
}

fn build_policy(args: &ExecConfig) -> Result<Policy> {
    if let Some(g) = &args.grader {
        let [snapshot, script, env] = g.as_slice() else {
            bail!("--grader takes SNAPSHOT SCRIPT_DIR TASK_ENV");
        };
        let mut p = grader_policy(snapshot, script, env, args.python.as_deref());
        p.hidden.extend(args.hide.iter().cloned());
        return Ok(p);
    }
    let workspace = args
        .workspace
        .clone()
        .context("--workspace DIR is needed (or --grader)")?;
    Ok(agent_policy(&AgentSetup {
        read_only: read_only_binds(args, &workspace),
        workspace,
        hidden: args.hide.clone(),
        python: args.python.clone(),
        device: args.device.clone(),
        ..AgentSetup::default()
    }))
}

/// `--read-only SRC[:DEST]`, DEST relative to the workspace.
fn read_only_binds(args: &ExecConfig, workspace: &Path) -> Vec<Bind> {
    args.read_only
        .iter()
        .map(|spec| match spec.split_once(':') {
            Some((s, d)) => Bind {
                src: s.into(),
                dest: workspace.join(d),
            },
            None => Bind {
                src: spec.into(),
                dest: spec.into(),
            },
        })
        .collect()
}

fn run_plain(sandbox: &dyn super::Sandbox, args: &ExecConfig, policy: &Policy) -> Result<ExitCode> {
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let outcome = super::run(sandbox, &args.command, policy, &mut |s, b| {
        let _ = match s {
            Stream::Stdout => out.write_all(b).and_then(|_| out.flush()),
            Stream::Stderr => err.write_all(b),
        };
    })?;
    if let Some(b) = &outcome.breach {
        eprintln!("mlab: {b}");
    }
    tracing::info!(
        "{} after {:.3} s, {} bytes of output",
        if outcome.success() {
            "succeeded"
        } else {
            "failed"
        },
        outcome.wall.as_secs_f64(),
        outcome.output_bytes
    );
    Ok(exit_code(
        outcome.code,
        outcome.signal,
        outcome.breach.is_some(),
    ))
}

/// Runs the command `n` times with its output discarded and prints the
/// wall time of each run (milliseconds) with their median, as JSON.
fn repeat(
    sandbox: &dyn super::Sandbox,
    args: &ExecConfig,
    policy: &Policy,
    n: u32,
) -> Result<ExitCode> {
    let mut ms = Vec::new();
    for _ in 0..n.max(1) {
        let start = std::time::Instant::now();
        let o = super::run(sandbox, &args.command, policy, &mut |_, _| {})?;
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
        if !o.success() {
            bail!("the command failed while repeating it: {o:?}");
        }
    }
    let mut sorted = ms.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    crate::ui::outln!(
        "{}",
        serde_json::json!({"sandbox": sandbox.name(), "runs": ms.len(), "median_ms": median, "ms": ms})
    );
    Ok(ExitCode::SUCCESS)
}

/// A long-lived command fed from our stdin: what a grader worker or the
/// Python REPL does, through `spawn`.
fn run_with_stdin(
    sandbox: &dyn super::Sandbox,
    args: &ExecConfig,
    policy: &Policy,
) -> Result<ExitCode> {
    let mut child = super::spawn(sandbox, &args.command, policy, Stdio::piped())?;
    let pgid = child.id() as i32;
    let (Some(mut to_child), Some(mut out), Some(mut err)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        super::kill_group(pgid);
        let _ = child.wait();
        bail!("the command started without its pipes");
    };
    std::thread::spawn(move || {
        let mut line = String::new();
        let stdin = std::io::stdin();
        loop {
            line.clear();
            match stdin.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if to_child
                        .write_all(line.as_bytes())
                        .and_then(|_| to_child.flush())
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        // Dropping closes the child's stdin: end of input.
    });
    let e = std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::stderr()));
    let copy = std::io::copy(&mut out, &mut std::io::stdout().lock());
    let _ = e.join();
    copy.context("copying the command's output")?;
    let status = child.wait()?;
    super::kill_group(pgid);
    use std::os::unix::process::ExitStatusExt;
    Ok(exit_code(status.code(), status.signal(), false))
}

fn exit_code(code: Option<i32>, signal: Option<i32>, breach: bool) -> ExitCode {
    let n = match (code, signal) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 1,
    };
    let n = if breach && n == 0 { 1 } else { n };
    ExitCode::from(n.clamp(0, 255) as u8)
}
