//! Sandbox: run an argv in a directory under a policy, stream its output,
//! return how it ended.
//!
//! Callers (Execute Script, the Python REPL, graders) never know how a
//! command is confined. A `Sandbox` only turns (argv, policy) into a
//! `Command`; `run` supervises every kind the same way: its own process
//! group, output streamed to a sink, a wall-clock timeout and an output cap
//! that kill the whole group, and no process left behind afterwards.
//!
//! Kinds: `bwrap` (bwrap.rs) and `none` (none.rs), chosen by `select`.
//! Memory and process limits are cgroups (limits.rs) that the child joins
//! before it runs; the read-only-file check is tamper.rs; the policies mlab
//! uses for agent code and graders are built in policy.rs.

mod bwrap;
pub mod exec;
mod limits;
mod none;
pub mod policy;
mod select;
pub mod tamper;

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

pub use bwrap::Bwrap;
pub use limits::{describe_support, parse_size};
pub use none::NoSandbox;
pub use policy::{agent_policy, grader_policy, python_env_binds, AgentSetup, DEFAULT_MAX_PROCS};
pub use select::{probe, select, Kind};

/// Which pipe a chunk of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A path seen inside the sandbox at `dest`, backed by `src` outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub src: PathBuf,
    pub dest: PathBuf,
}

/// What a command may see and use. Under `bwrap` the system is visible
/// read-only and /tmp is private; under `none` only `workdir`, `env` and the
/// limits apply (read-only binds into the workdir become copies).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Working directory; bound read-write, unless `read_only` binds it too
    /// (graders), which keeps it read-only.
    pub workdir: PathBuf,
    /// Extra paths bound read-only (read-only task files, the task venv).
    /// A destination inside `workdir` that does not exist yet gets an empty
    /// placeholder there, on which the file is mounted.
    pub read_only: Vec<Bind>,
    /// Extra paths bound read-write.
    pub read_write: Vec<Bind>,
    /// Paths (as seen inside) that must be invisible: answers, logs, keys.
    /// Folders become empty, files read as empty; anything bound below a
    /// hidden folder is visible again.
    pub hidden: Vec<PathBuf>,
    /// The child's whole environment; nothing else is inherited.
    pub env: Vec<(String, String)>,
    /// Wall-clock limit for the whole command.
    pub timeout: Option<Duration>,
    /// Memory limit in bytes.
    pub mem_limit: Option<u64>,
    /// Maximum number of processes.
    pub max_procs: Option<u64>,
    /// Bytes of output after which the command is stopped.
    pub max_output: Option<u64>,
    /// Allow network beyond loopback.
    pub network: bool,
    /// Bind GPU device nodes.
    pub gpu: bool,
}

/// A limit that a command ran into.
#[derive(Debug, Clone, PartialEq)]
pub enum Breach {
    Timeout(Duration),
    Output(u64),
    Memory(u64),
    /// The process limit refused to start more processes.
    Processes(u64),
}

impl std::fmt::Display for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Breach::Timeout(d) => write!(
                f,
                "the command was stopped after its time limit of {:.0} s",
                d.as_secs_f64()
            ),
            Breach::Output(n) => write!(
                f,
                "the command was stopped after printing {n} bytes, its output limit"
            ),
            Breach::Memory(n) => write!(
                f,
                "the command was killed for using more than its memory limit of {n} bytes"
            ),
            Breach::Processes(n) => write!(
                f,
                "the command tried to run more than {n} processes at once, its process limit; starting more failed"
            ),
        }
    }
}

/// How a command ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Exit code, when it exited normally.
    pub code: Option<i32>,
    /// Signal that ended it, if any.
    pub signal: Option<i32>,
    pub breach: Option<Breach>,
    pub wall: Duration,
    pub output_bytes: u64,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.code == Some(0) && self.breach.is_none()
    }
}

/// One way of confining a command.
pub trait Sandbox: Send + Sync {
    fn name(&self) -> &'static str;

    /// The command that runs `argv` under `policy` (not yet spawned).
    fn command(&self, argv: &[OsString], policy: &Policy) -> Result<Command>;
}

/// Runs `argv` under `policy`, passing output chunks to `sink` as they come.
pub fn run(
    sandbox: &dyn Sandbox,
    argv: &[OsString],
    policy: &Policy,
    sink: &mut dyn FnMut(Stream, &[u8]),
) -> Result<Outcome> {
    let start = Instant::now();
    let Started { mut child, limits } = start_command(sandbox, argv, policy, Stdio::null())?;
    let pgid = child.id() as i32;
    // The process group, and (when there are limits) everything in the
    // command's cgroups, which also catches processes that left the group.
    let kill_everything = || {
        signal_group(pgid);
        if let Some(l) = &limits {
            l.kill_all();
        }
    };
    // Output chunks, and None once the main process has exited.
    let (tx, rx) = mpsc::sync_channel::<Option<(Stream, Vec<u8>)>>(64);
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        kill_everything();
        let _ = child.wait();
        anyhow::bail!("the sandboxed command started without its output pipes");
    };
    let readers = [
        pump(stdout, Stream::Stdout, tx.clone()),
        pump(stderr, Stream::Stderr, tx.clone()),
        watch_exit(pgid, tx),
    ];
    let mut breach = None;
    let mut output_bytes = 0u64;
    let deadline = policy.timeout.map(|t| start + t);
    loop {
        let wait = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(3600),
        };
        match rx.recv_timeout(wait) {
            Ok(Some((stream, chunk))) => {
                output_bytes += chunk.len() as u64;
                if let Some(max) = policy.max_output {
                    if output_bytes > max {
                        breach.get_or_insert(Breach::Output(max));
                        kill_everything();
                        continue;
                    }
                }
                sink(stream, &chunk);
            }
            // The main process has exited: anything it left behind is
            // killed, which also closes the pipes those processes held.
            Ok(None) => kill_everything(),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    breach.get_or_insert(Breach::Timeout(policy.timeout.unwrap_or_default()));
                    kill_everything();
                    // Readers end once every holder of the pipes is dead.
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    for r in readers {
        let _ = r.join();
    }
    let status = child.wait().context("waiting for the sandboxed command")?;
    kill_everything();
    if breach.is_none() {
        if let Some(bytes) = limits.as_ref().and_then(|l| l.memory_breach()) {
            breach = Some(Breach::Memory(bytes));
        } else if let Some(n) = limits.as_ref().and_then(|l| l.pids_breach()) {
            breach = Some(Breach::Processes(n));
        }
    }
    // Removes the cgroups.
    drop(limits);
    use std::os::unix::process::ExitStatusExt;
    Ok(Outcome {
        code: status.code(),
        signal: status.signal(),
        breach,
        wall: start.elapsed(),
        output_bytes,
    })
}

/// Checks that `python` starts under `policy` (`python -c pass`), so that
/// an interpreter the sandbox cannot run stops a run or an eval at its
/// start, with the reason, instead of failing every step. `source` says
/// where the choice came from ("--python", "MLAB_PYTHON", ...).
pub fn check_python(
    sandbox: &dyn Sandbox,
    policy: &Policy,
    python: &std::path::Path,
    source: &str,
) -> Result<()> {
    let mut policy = policy.clone();
    policy.timeout = Some(Duration::from_secs(60));
    policy.max_output = Some(1 << 20);
    let argv: Vec<OsString> = vec![python.into(), "-c".into(), "pass".into()];
    let mut out = Vec::new();
    let outcome = run(sandbox, &argv, &policy, &mut |_, b| {
        out.extend_from_slice(b)
    })
    .with_context(|| {
        format!(
            "could not check the task Python {} (from {source})",
            python.display()
        )
    })?;
    if outcome.success() {
        return Ok(());
    }
    let how = match (&outcome.breach, outcome.code, outcome.signal) {
        (Some(b), _, _) => b.to_string(),
        (None, Some(c), _) => format!("exit status {c}"),
        (None, None, Some(s)) => format!("killed by signal {s}"),
        _ => "failed".to_string(),
    };
    let text = String::from_utf8_lossy(&out);
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let tail = lines[lines.len().saturating_sub(10)..].join("\n  ");
    let detail = if tail.is_empty() {
        String::new()
    } else {
        format!(":\n  {tail}")
    };
    anyhow::bail!(
        "the task Python {} (from {source}) cannot start inside the '{}' sandbox \
         ({how}){detail}\nnothing was run. Check that `{} -c pass` works outside mlab, \
         or pass --python (or set MLAB_PYTHON) with an interpreter or venv that does; \
         `mlab doctor` shows what is missing",
        python.display(),
        sandbox.name(),
        python.display(),
    )
}

/// [`check_python`] under the agent policy, in an empty scratch workspace.
pub fn check_agent_python(
    sandbox: &dyn Sandbox,
    python: &std::path::Path,
    source: &str,
    device: Option<String>,
) -> Result<()> {
    let scratch = tempfile::tempdir().context("could not make a scratch folder")?;
    let policy = agent_policy(&AgentSetup {
        workspace: scratch.path().to_path_buf(),
        python: Some(python.to_path_buf()),
        device,
        ..AgentSetup::default()
    });
    check_python(sandbox, &policy, python, source)
}

/// Spawns `argv` under `policy` in a new process group with piped output,
/// for callers that talk to the process themselves (the Python REPL, a
/// grader worker). Memory and process limits apply as in [`run`]; the wall
/// timeout and output cap are the caller's to enforce. Stop it with
/// [`kill_group`] on its pid, which also removes its cgroups. The process
/// is killed if mlab dies, whichever thread called this.
pub fn spawn(
    sandbox: &dyn Sandbox,
    argv: &[OsString],
    policy: &Policy,
    stdin: Stdio,
) -> Result<Child> {
    let Started { child, limits } = start_command(sandbox, argv, policy, stdin)?;
    if let Some(l) = limits {
        live()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(child.id() as i32, l);
    }
    Ok(child)
}

/// A started command and the cgroups that limit it.
struct Started {
    child: Child,
    limits: Option<limits::Limits>,
}

fn start_command(
    sandbox: &dyn Sandbox,
    argv: &[OsString],
    policy: &Policy,
    stdin: Stdio,
) -> Result<Started> {
    reap_finished();
    let mut cmd = sandbox.command(argv, policy)?;
    cmd.stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let limits = limits::Limits::create(policy)?;
    let join_files = match &limits {
        Some(l) => l.join_files()?,
        None => Vec::new(),
    };
    let fds: Vec<RawFd> = join_files.iter().map(|f| f.as_raw_fd()).collect();
    let nproc = limits.as_ref().and_then(|l| l.nproc_fallback);
    // SAFETY: runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: write, setrlimit and prctl are
    // plain system calls, and nothing here allocates (`fds` is only read).
    unsafe {
        cmd.pre_exec(move || {
            // Joining before exec means every process the command starts is
            // born inside the limits. "0" names the writing process.
            for &fd in &fds {
                if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if let Some(n) = nproc {
                let lim = libc::rlimit {
                    rlim_cur: n as libc::rlim_t,
                    rlim_max: n as libc::rlim_t,
                };
                libc::setrlimit(libc::RLIMIT_NPROC, &lim);
            }
            // Dies with mlab (bwrap passes this on to the sandbox).
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            Ok(())
        });
    }
    let child = spawn_from_keeper(cmd).with_context(|| {
        format!(
            "could not start {:?} under the '{}' sandbox",
            argv.first()
                .map(|a| a.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sandbox.name()
        )
    })?;
    drop(join_files);
    Ok(Started { child, limits })
}

/// Spawns from one thread that lives as long as mlab. The parent-death
/// signal (ours, and bwrap's --die-with-parent) fires when the *thread*
/// that forked exits, so spawning from a short-lived worker thread (tokio's
/// blocking pool) would kill a long-lived REPL or grader for no reason.
fn spawn_from_keeper(cmd: Command) -> std::io::Result<Child> {
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static KEEPER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    let keeper = match KEEPER.get() {
        Some(keeper) => keeper,
        None => {
            let (tx, rx) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("mlab-spawner".into())
                .spawn(move || {
                    for (mut cmd, reply) in rx {
                        let _ = reply.send(cmd.spawn());
                    }
                })?;
            // Two first callers may both start one; the loser's sender is
            // dropped, which ends its thread.
            KEEPER.get_or_init(|| tx)
        }
    };
    let (tx, rx) = mpsc::channel();
    keeper
        .send((cmd, tx))
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    rx.recv()
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

/// Limits of commands started by [`spawn`], by process group.
fn live() -> &'static Mutex<HashMap<i32, limits::Limits>> {
    static LIVE: OnceLock<Mutex<HashMap<i32, limits::Limits>>> = OnceLock::new();
    LIVE.get_or_init(Mutex::default)
}

/// Removes the cgroups of spawned commands that have ended on their own.
fn reap_finished() {
    limits::retry_leftovers();
    let mut map = live().lock().unwrap_or_else(|e| e.into_inner());
    map.retain(|_, l| !l.is_empty());
}

/// Kills every process in group `pgid` (ignoring a group that is gone).
/// For a command from [`spawn`], also kills whatever is left in its
/// cgroups and removes them.
pub fn kill_group(pgid: i32) {
    signal_group(pgid);
    let spawned = live()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&pgid);
    // Dropping the limits kills the rest and removes the cgroups.
    drop(spawned);
}

fn signal_group(pgid: i32) {
    use nix::sys::signal::{killpg, Signal};
    use nix::unistd::Pid;
    let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
}

/// Sends None once process `pid` has exited, without reaping it (the
/// caller's `Child::wait` does that), so that the supervisor learns of the
/// exit even while background processes keep the pipes open.
fn watch_exit(
    pid: i32,
    tx: mpsc::SyncSender<Option<(Stream, Vec<u8>)>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use nix::errno::Errno;
        use nix::sys::wait::{waitid, Id, WaitPidFlag};
        use nix::unistd::Pid;
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
        while waitid(Id::Pid(Pid::from_raw(pid)), flags) == Err(Errno::EINTR) {}
        let _ = tx.send(None);
    })
}

fn pump<R: Read + Send + 'static>(
    mut pipe: R,
    stream: Stream,
    tx: mpsc::SyncSender<Option<(Stream, Vec<u8>)>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(Some((stream, buf[..n].to_vec()))).is_err() {
                        break;
                    }
                }
            }
        }
    })
}

/// `s` as one word for `sh`: always single-quoted (a `'` inside becomes
/// `'\''`), so nothing in it is split or expanded.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `s` as one word for `sh`, left bare when it is plainly safe (letters,
/// digits and `-_./=:,+@%`) so that generated scripts stay readable.
pub fn shell_word(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if safe {
        s.to_string()
    } else {
        shell_quote(s)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn shell_words_quote_what_the_shell_would_split_or_expand() {
        assert_eq!(shell_word("/a/b-c_d.e"), "/a/b-c_d.e");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word("$HOME"), "'$HOME'");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_quote("plain"), "'plain'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    use super::*;

    fn sh(script: &str) -> Vec<OsString> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    fn policy(dir: &std::path::Path) -> Policy {
        Policy {
            workdir: dir.to_path_buf(),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            ..Policy::default()
        }
    }

    #[test]
    fn output_is_streamed_by_pipe_and_exit_code_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        let mut err = Vec::new();
        let o = run(
            &NoSandbox,
            &sh("echo hi; echo oops >&2; exit 3"),
            &policy(dir.path()),
            &mut |s, b| match s {
                Stream::Stdout => out.extend_from_slice(b),
                Stream::Stderr => err.extend_from_slice(b),
            },
        )
        .unwrap();
        assert_eq!(o.code, Some(3));
        assert_eq!(out, b"hi\n");
        assert_eq!(err, b"oops\n");
        assert!(!o.success());
    }

    #[test]
    fn timeout_kills_the_command_and_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = policy(dir.path());
        p.timeout = Some(Duration::from_millis(300));
        let o = run(
            &NoSandbox,
            &sh("sleep 30 & sleep 30; echo never"),
            &p,
            &mut |_, _| {},
        )
        .unwrap();
        assert!(matches!(o.breach, Some(Breach::Timeout(_))), "{o:?}");
        assert!(o.wall < Duration::from_secs(10));
    }

    #[test]
    fn background_children_do_not_outlive_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("late");
        let script = format!("(sleep 1; touch {}) & echo started", marker.display());
        let o = run(
            &NoSandbox,
            &sh(&script),
            &policy(dir.path()),
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(o.code, Some(0));
        std::thread::sleep(Duration::from_millis(1500));
        assert!(!marker.exists(), "the background child survived");
    }

    #[test]
    fn a_spawned_process_outlives_the_thread_that_started_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path());
        // The parent-death signal follows the forking thread; a worker
        // started from a short-lived thread must not die with it.
        let mut child = std::thread::spawn(move || {
            spawn(&NoSandbox, &sh("sleep 5"), &p, Stdio::null()).unwrap()
        })
        .join()
        .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert!(child.try_wait().unwrap().is_none(), "the worker died");
        kill_group(child.id() as i32);
        assert!(child.wait().is_ok());
    }

    #[test]
    #[ignore = "needs a writable pids cgroup controller (.ci/run runs it, as root)"]
    fn killing_a_spawned_group_removes_its_cgroup() {
        let pids = limits::find_own_for_tests("pids")
            .expect("this test needs a writable pids cgroup controller, and this machine has none");
        let dir = tempfile::tempdir().unwrap();
        let mut p = policy(dir.path());
        p.max_procs = Some(50);
        let mut child = spawn(&NoSandbox, &sh("sleep 30 & sleep 30"), &p, Stdio::null()).unwrap();
        let ours = |d: &std::path::Path| {
            std::fs::read_dir(d)
                .unwrap()
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("mlab-{}-", std::process::id()))
                })
                .map(|e| e.path())
                .collect::<Vec<_>>()
        };
        let made = ours(&pids);
        assert!(!made.is_empty(), "no cgroup was made");
        let procs = || -> usize {
            made.iter()
                .map(|d| {
                    std::fs::read_to_string(d.join("cgroup.procs"))
                        .unwrap()
                        .lines()
                        .count()
                })
                .sum()
        };
        // The shell and both sleeps, once the shell has forked.
        let until = Instant::now() + Duration::from_secs(5);
        while procs() < 3 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(procs(), 3, "the command is not in its cgroup");
        kill_group(child.id() as i32);
        let _ = child.wait();
        for d in made {
            assert!(!d.exists(), "{} was left behind", d.display());
        }
    }

    #[test]
    fn output_limit_stops_a_chatty_command() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = policy(dir.path());
        p.max_output = Some(100_000);
        let mut seen = 0usize;
        let o = run(&NoSandbox, &sh("yes xxxxxxxx"), &p, &mut |_, b| {
            seen += b.len()
        })
        .unwrap();
        assert_eq!(o.breach, Some(Breach::Output(100_000)));
        assert!(seen <= 100_000);
    }
}
