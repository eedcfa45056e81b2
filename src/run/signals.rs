//! Ctrl-C and friends: the first SIGINT, SIGTERM or SIGHUP asks the run to
//! stop (the running command is killed, the step is recorded, the final
//! snapshot is taken); a second one ends mlab at once.
//!
//! The signals are blocked in every thread and taken by one thread with
//! `sigwait`, so no code runs inside a signal handler. Child processes
//! start with an empty signal mask (the standard library resets it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, Signal};

/// Installs the handling; returns the flag that says a stop was asked for.
/// Call before any other thread is started, so that all inherit the mask.
pub fn install() -> Result<Arc<AtomicBool>> {
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
