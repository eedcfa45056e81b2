//! Ctrl-C and friends: the first SIGINT, SIGTERM or SIGHUP asks the run to
//! stop (the running command is killed, the step is recorded, the final
//! snapshot is taken); a second one ends mlab at once.
//!
//! The signals are blocked in every thread and taken by one thread with
//! `sigwait`, so no code runs inside a signal handler. Child processes
//! start with an empty signal mask (the standard library resets it).
//!
//! The run must close within 5 s of the first signal whatever it was doing.
//! The environment abandons an action that does not end soon after the
//! interrupt, so the run's own close normally takes well under that. As a
//! last resort, a watchdog started by the first signal closes the run
//! itself [`CLOSE_WITHIN`] after it (final snapshot where possible,
//! run.json with its exit reason) and ends mlab, so that nothing (an agent
//! blocked in a model call, a stuck file system call) can hold it.
//!
//! This is process-wide by nature: the front end installs it once
//! ([`install`]; later calls return the same flag), and every run of the
//! process shares its flag. Each run registers its own last-resort close
//! ([`CloseGuard`]); the watchdog closes every run still registered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, Signal};

/// Installs the handling once per process; returns the flag that says a
/// stop was asked for (the same flag on every call). Call before any other
/// thread is started, so that all inherit the mask.
pub fn install() -> Result<Arc<AtomicBool>> {
    static INSTALLED: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(flag) = INSTALLED.get() {
        return Ok(flag.clone());
    }
    let flag = install_now()?;
    Ok(INSTALLED.get_or_init(|| flag).clone())
}

/// With `--interactive`: Ctrl-\ (SIGQUIT) no longer quits mlab but asks
/// to instruct the agent. Returns the flag the signal sets (the
/// environment reads an instruction from stdin after the current step and
/// clears it). Call before [`install`] and before any other thread is
/// started, so that every thread keeps SIGQUIT blocked.
pub fn install_instruction_key() -> Result<Arc<AtomicBool>> {
    static INSTALLED: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(flag) = INSTALLED.get() {
        return Ok(flag.clone());
    }
    let flag = Arc::new(AtomicBool::new(false));
    let mut set = SigSet::empty();
    set.add(Signal::SIGQUIT);
    set.thread_block()
        .context("could not set up the Ctrl-\\ key")?;
    let seen = flag.clone();
    std::thread::Builder::new()
        .name("instruction-key".into())
        .spawn(move || {
            while set.wait().is_ok() {
                seen.store(true, Ordering::SeqCst);
                eprintln!(
                    "\nmlab: Ctrl-\\: you will be asked for an instruction for the agent when the current step ends"
                );
            }
        })
        .context("could not start the Ctrl-\\ thread")?;
    Ok(INSTALLED.get_or_init(|| flag).clone())
}

fn install_now() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block()
        .context("could not set up Ctrl-C handling")?;
    let seen = flag.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            while let Ok(sig) = set.wait() {
                if seen.swap(true, Ordering::SeqCst) {
                    eprintln!("\nmlab: {sig} again: stopping now, without the final snapshot");
                    kill_child_groups();
                    std::process::exit(130);
                }
                eprintln!(
                    "\nmlab: {sig}: stopping the run after its final snapshot (send it again to stop at once)"
                );
                kill_child_groups();
                let _ = std::thread::Builder::new()
                    .name("close-watchdog".into())
                    .spawn(watchdog);
            }
        })
        .context("could not start the signal thread")?;
    Ok(flag)
}

/// Kills the process group of every child of mlab that leads its own group
/// (scripts and the Python session run that way), so that a command the
/// environment is waiting on ends now.
pub fn kill_child_groups() {
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
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
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (Some(ppid), Some(pgrp)) = (
            fields.get(1).and_then(|s| s.parse::<i32>().ok()),
            fields.get(2).and_then(|s| s.parse::<i32>().ok()),
        ) else {
            continue;
        };
        if ppid == me && pgrp == pid {
            crate::sandbox::kill_group(pgrp);
        }
    }
}

/// How long after the first signal the watchdog closes the run itself.
pub const CLOSE_WITHIN: Duration = Duration::from_millis(3800);

/// The last-resort closes of the runs in this process.
#[derive(Default)]
struct LastResorts {
    /// The watchdog is closing the runs.
    fired: bool,
    armed: HashMap<u64, Box<dyn FnOnce() + Send>>,
}

fn last_resorts() -> &'static Mutex<LastResorts> {
    static L: OnceLock<Mutex<LastResorts>> = OnceLock::new();
    L.get_or_init(Default::default)
}

/// One run's place among the last-resort closes; dropping it unregisters
/// the run.
pub struct CloseGuard(u64);

impl CloseGuard {
    /// A place for a new run (nothing registered yet).
    pub fn new() -> CloseGuard {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        CloseGuard(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// Sets what the watchdog does to close this run when the run's own
    /// close has not happened in time (writes run.json, takes what final
    /// snapshot it can). Replaces an earlier one.
    pub fn set(&self, close: Box<dyn FnOnce() + Send>) {
        let mut l = last_resorts().lock().unwrap_or_else(|p| p.into_inner());
        if !l.fired {
            l.armed.insert(self.0, close);
        }
    }

    /// Called by the run before it writes its closing run.json. When the
    /// watchdog is already closing the runs, the caller must write nothing
    /// more: it then waits here for the watchdog to end mlab.
    pub fn disarm(&self) {
        let mut l = last_resorts().lock().unwrap_or_else(|p| p.into_inner());
        if l.fired {
            drop(l);
            loop {
                std::thread::park();
            }
        }
        l.armed.remove(&self.0);
    }
}

impl Default for CloseGuard {
    fn default() -> Self {
        CloseGuard::new()
    }
}

impl Drop for CloseGuard {
    fn drop(&mut self) {
        let mut l = last_resorts().lock().unwrap_or_else(|p| p.into_inner());
        if !l.fired {
            l.armed.remove(&self.0);
        }
    }
}

fn watchdog() {
    std::thread::sleep(CLOSE_WITHIN);
    let closes: Vec<Box<dyn FnOnce() + Send>> = {
        let mut l = last_resorts().lock().unwrap_or_else(|p| p.into_inner());
        l.fired = true;
        l.armed.drain().map(|(_, f)| f).collect()
    };
    if closes.is_empty() {
        // A run is writing its last file: give it a moment.
        std::thread::sleep(Duration::from_millis(1000));
    } else {
        eprintln!("mlab: the run did not close in time after the interrupt; closing it now");
        kill_child_groups();
        for f in closes {
            f();
        }
    }
    std::process::exit(130);
}
