//! The local executor: runs a plan's runs as child processes `mlab run-one
//! plan.json --index N [--device D]`, at most `jobs` CPU runs at once and
//! at most `runs_per_device` GPU runs per device.
//!
//! Each run is a process of its own, so one run's crash, panic or
//! out-of-memory kill cannot take the others down, and a run goes through
//! exactly the code a Slurm array job runs. Children:
//! - lead their own process group, so Ctrl-C at the terminal reaches only
//!   this process, which passes it on once to each child (a child that got
//!   it twice would stop without its final snapshot);
//! - are told when this process dies (`PR_SET_PDEATHSIG`), even by
//!   SIGKILL, and close cleanly (their run.json then says interrupted, and
//!   running the study again resumes them). The kernel sends the
//!   parent-death signal each time a child is handed to another parent,
//!   which for a multi-threaded parent can be once per thread as its
//!   threads die; so the signal is [`PARENT_DEATH_SIGNAL`], not SIGTERM,
//!   and `mlab run-one` turns any number of them into one stop
//!   ([`watch_parent_death`]). (With SIGTERM, a second copy read as "stop
//!   at once": the run ended without its final snapshot or closed run.json.)
//! - write their output to `<log-dir>/run-one.log`.
//!
//! Runs start in plan order (runs to resume first), except GPU runs, which
//! start longest first by an estimate from the runs of the same task (and
//! configuration) that already finished in the experiment folder ([`todo`]).
//! Lengths are not known before any such run finished; greedy list
//! scheduling is then within a factor 2 - 1/m of the best makespan, and
//! longest first within 4/3 - 1/(3m) (benches/study.rs measures both).

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::plan::{Plan, PlannedRun};
use super::progress::{Snapshot, Watch};
use super::status::{self, State};

/// How the queue runs a plan.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// The mlab program the runs are started with (`run-one`).
    pub exe: PathBuf,
    /// CPU runs at once (and GPU runs when there are no devices).
    pub jobs: usize,
    /// Devices for GPU runs; empty: GPU runs count as CPU runs and keep
    /// the device their arguments name.
    pub devices: Vec<String>,
    pub runs_per_device: usize,
    /// Times a run that ended in an infrastructure failure is run again.
    pub retry_infra: u32,
    /// Stop the study once its runs spent this many US dollars together.
    pub max_cost: Option<f64>,
    /// Set (first Ctrl-C) to stop: no more launches, every child is asked
    /// to close.
    pub stop: Arc<AtomicBool>,
    /// Set (second Ctrl-C) to leave at once: children are told again (they
    /// then exit without waiting) and the queue returns.
    pub abort: Arc<AtomicBool>,
}

/// A run being made now.
#[derive(Debug, Clone)]
pub struct Active<'a> {
    pub run: &'a PlannedRun,
    pub device: Option<String>,
    pub elapsed: Duration,
    pub progress: Snapshot,
}

/// The study so far.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub total: usize,
    /// Finished (for a reason of the run's own), this time or before.
    pub done: usize,
    /// Ended without finishing this time (infrastructure failure, crash).
    pub failed: usize,
    pub running: usize,
    /// Stopped by Ctrl-C or the study's budget this time (they resume when
    /// the study is run again).
    pub stopped: usize,
    pub cost_usd: f64,
}

/// How one child ended, with what it cost this machine.
#[derive(Debug, Clone)]
pub struct Ended {
    pub index: usize,
    pub device: Option<String>,
    /// The child's exit code (None: killed by a signal).
    pub code: Option<i32>,
    pub state: State,
    /// The child's own CPU time (user + system), not its children's: the
    /// Python and sandbox it started are not counted.
    pub cpu_seconds: f64,
    /// The child's own peak resident memory (VmHWM), sampled while it ran.
    pub peak_rss_kb: u64,
    pub wall: Duration,
    /// Steps of the run when it ended.
    pub steps: usize,
    /// Seconds since the queue started, at its start and at its end.
    pub started_at: f64,
    pub ended_at: f64,
}

/// What the queue tells its front end.
pub trait Observer {
    fn started(&mut self, run: &PlannedRun, device: Option<&str>, attempt: u32);
    /// Called about twice a second with the active runs.
    fn tick(&mut self, active: &[Active<'_>], totals: &Totals);
    fn ended(&mut self, run: &PlannedRun, ended: &Ended, totals: &Totals);
    /// Something the person should know (a stop, a retry, a skipped run).
    fn note(&mut self, text: &str);
}

/// How the study went.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub totals: Totals,
    /// Every child that ran, in the order they ended.
    pub ended: Vec<Ended>,
    /// Runs already finished before this call (skipped).
    pub already_finished: usize,
    /// Stopped by Ctrl-C.
    pub interrupted: bool,
    /// Left at once by a second Ctrl-C (children may still be closing).
    pub aborted: bool,
    /// Stopped because the study's runs spent `max_cost`.
    pub over_budget: bool,
    pub wall: Duration,
}

/// The runs the queue would make now, in order: interrupted runs first
/// (they hold progress), then the rest in plan order, except that GPU runs
/// are ordered longest first by [`estimate`] (those with no estimate
/// first, in plan order: a long run started last is what stretches a
/// study). Finished runs are left out, and runs that ended in an
/// infrastructure failure unless they may be retried; runs another process
/// makes now are left out too.
pub fn todo(plan: &Plan, retry_infra: u32) -> Vec<usize> {
    let mut first = Vec::new();
    let mut rest = Vec::new();
    let mut lengths = Vec::new();
    for run in &plan.runs {
        let (state, record) = status::state_of(run);
        match state {
            State::Interrupted => first.push(run.index),
            State::InfraFailed if retry_infra > 0 => first.push(run.index),
            State::Pending => rest.push(run.index),
            State::Finished => {
                if let Some(secs) = record.as_ref().and_then(length_of) {
                    lengths.push((run.index, secs));
                }
            }
            _ => {}
        }
    }
    // The GPU runs' places in `rest`, filled longest first.
    let places: Vec<usize> = (0..rest.len())
        .filter(|&p| plan.runs[rest[p]].gpu)
        .collect();
    let mut gpu: Vec<(Option<f64>, usize)> = places
        .iter()
        .map(|&p| (estimate(plan, &lengths, &plan.runs[rest[p]]), rest[p]))
        .collect();
    // Stable: equal estimates keep plan order; None sorts first.
    gpu.sort_by(|a, b| match (a.0, b.0) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (Some(x), Some(y)) => y.total_cmp(&x),
    });
    for (&p, (_, index)) in places.iter().zip(gpu) {
        rest[p] = index;
    }
    first.extend(rest);
    first
}

/// Seconds from a closed run.json's start to its end (its last part, for
/// a resumed run).
fn length_of(r: &crate::run::record::RunRecord) -> Option<f64> {
    let start = chrono::DateTime::parse_from_rfc3339(&r.start_time).ok()?;
    let end = chrono::DateTime::parse_from_rfc3339(r.end_time.as_deref()?).ok()?;
    let secs = (end - start).num_milliseconds() as f64 / 1000.0;
    (secs >= 0.0).then_some(secs)
}

/// How long `run` will likely take, in seconds: the mean length of the
/// plan's finished runs (`lengths`: index, seconds) of the same task and
/// configuration, else of the same task; None when none finished.
pub fn estimate(plan: &Plan, lengths: &[(usize, f64)], run: &PlannedRun) -> Option<f64> {
    let mean = |same: &dyn Fn(&PlannedRun) -> bool| {
        let xs: Vec<f64> = lengths
            .iter()
            .filter(|(i, _)| same(&plan.runs[*i]))
            .map(|(_, s)| *s)
            .collect();
        (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
    };
    mean(&|r| r.task == run.task && r.config == run.config)
        .or_else(|| mean(&|r| r.task == run.task))
}

/// The runs another process makes now (their workspace lock is held):
/// with the study lock held, a run of an earlier study command still
/// closing after that command died, `mlab run-one` started by hand, or a
/// Slurm job. The queue waits for them and then takes up what they left.
pub fn held(plan: &Plan) -> Vec<usize> {
    plan.runs
        .iter()
        .filter(|r| status::state_of(r).0 == State::Running)
        .map(|r| r.index)
        .collect()
}

/// How often the queue reads the running runs' logs (progress, spending).
const READ_EVERY: Duration = Duration::from_millis(250);

struct Running {
    index: usize,
    child: Child,
    device: Option<usize>,
    started: Instant,
    peak_rss_kb: u64,
}

/// Makes the plan's unfinished runs; returns when all ended, or on a stop.
pub fn run(
    plan: &Plan,
    plan_path: &Path,
    cfg: &QueueConfig,
    observer: &mut dyn Observer,
) -> Result<Summary> {
    let t0 = Instant::now();
    let mut queue: VecDeque<usize> = todo(plan, cfg.retry_infra).into();
    let mut attempts: BTreeMap<usize, u32> = BTreeMap::new();
    for &i in &queue {
        if status::state_of(&plan.runs[i]).0 == State::InfraFailed {
            attempts.insert(i, 1);
        }
    }
    let mut watches: Vec<Watch> = plan.runs.iter().map(|r| Watch::new(&r.log_dir)).collect();
    // Once for every run (earlier spending counts towards --max-cost);
    // then only the running ones, which are the ones that change.
    for w in &mut watches {
        w.poll();
    }
    let mut summary = Summary::default();
    let mut totals = Totals {
        total: plan.runs.len(),
        ..Totals::default()
    };
    for run in &plan.runs {
        if status::state_of(run).0 == State::Finished {
            totals.done += 1;
            summary.already_finished += 1;
        }
    }
    // Runs another process holds: taken up (or counted) once it lets go.
    let mut held = held(plan);
    for &i in &held {
        let run = &plan.runs[i];
        observer.note(&format!(
            "run {} is being made by another process (pid {}: a run of an earlier study still closing, or one started by hand); it is taken up here once that process lets go",
            run.id,
            status::lock_holder_pid(run).unwrap_or_else(|| "?".into())
        ));
    }
    let mut last_held_check = Instant::now();
    let mut running: Vec<Running> = Vec::new();
    let mut holders = vec![0usize; cfg.devices.len()];
    let mut stopping = false;
    let mut last_tick = Instant::now() - Duration::from_secs(1);
    let mut last_read = Instant::now() - READ_EVERY;
    loop {
        if cfg.abort.load(Ordering::SeqCst) {
            for r in &running {
                signal(&r.child, nix::sys::signal::Signal::SIGINT);
            }
            summary.aborted = true;
            summary.interrupted = true;
            break;
        }
        if !stopping && cfg.stop.load(Ordering::SeqCst) {
            stopping = true;
            summary.interrupted = true;
            observer.note("stopping: every run closes after its final snapshot (Ctrl-C again to leave at once)");
            for r in &running {
                signal(&r.child, nix::sys::signal::Signal::SIGINT);
            }
        }
        // The study's spending, over every run (earlier parts included),
        // read from the running runs' logs a few times a second (not on
        // every turn of this loop, which is there to start runs soon).
        // A run that ended was read to its end when it was reaped, so no
        // run starts before its spending counts.
        if last_read.elapsed() >= READ_EVERY {
            last_read = Instant::now();
            for r in &running {
                watches[r.index].poll();
            }
        }
        totals.cost_usd = watches.iter().map(|w| w.snapshot().cost_usd).sum();
        if let Some(max) = cfg.max_cost {
            if !stopping && totals.cost_usd >= max {
                stopping = true;
                summary.over_budget = true;
                observer.note(&format!(
                    "the study's runs spent ${:.2}, at or over --max-cost ${max:.2}: no more runs start, and the running ones are stopped",
                    totals.cost_usd
                ));
                for r in &running {
                    signal(&r.child, nix::sys::signal::Signal::SIGINT);
                }
            }
        }
        if !held.is_empty() && last_held_check.elapsed() >= Duration::from_millis(200) {
            last_held_check = Instant::now();
            let mut still = Vec::new();
            for i in std::mem::take(&mut held) {
                match status::state_of(&plan.runs[i]).0 {
                    State::Running => still.push(i),
                    State::Finished => totals.done += 1,
                    State::InfraFailed if cfg.retry_infra == 0 => totals.failed += 1,
                    State::InfraFailed => {
                        attempts.insert(i, 1);
                        queue.push_back(i);
                    }
                    State::Interrupted | State::Pending => queue.push_back(i),
                }
            }
            held = still;
        }
        // Launch what fits.
        while !stopping && !queue.is_empty() {
            let cpu_busy = running.iter().filter(|r| r.device.is_none()).count();
            let pick = queue.iter().position(|&i| {
                if plan.runs[i].gpu && !cfg.devices.is_empty() {
                    holders.iter().any(|&h| h < cfg.runs_per_device)
                } else {
                    cpu_busy < cfg.jobs
                }
            });
            let Some(at) = pick else { break };
            let Some(index) = queue.remove(at) else { break };
            let run = &plan.runs[index];
            let device = if run.gpu && !cfg.devices.is_empty() {
                // The least held device, the first of equals.
                let d = (0..holders.len())
                    .filter(|&d| holders[d] < cfg.runs_per_device)
                    .min_by_key(|&d| (holders[d], d));
                d.inspect(|&d| holders[d] += 1)
            } else {
                None
            };
            let device_id = device.map(|d| cfg.devices[d].clone());
            let attempt = *attempts.entry(index).or_insert(0);
            observer.started(run, device_id.as_deref(), attempt);
            match spawn(&cfg.exe, plan_path, run, device_id.as_deref()) {
                Ok(child) => running.push(Running {
                    index,
                    child,
                    device,
                    started: Instant::now(),
                    peak_rss_kb: 0,
                }),
                Err(e) => {
                    if let Some(d) = device {
                        holders[d] -= 1;
                    }
                    return Err(e);
                }
            }
        }
        // Reap what ended (reading its own CPU time first).
        let mut i = 0;
        while i < running.len() {
            let r = &mut running[i];
            let pid = r.child.id() as i32;
            if let Some(kb) = peak_rss_kb(pid) {
                r.peak_rss_kb = r.peak_rss_kb.max(kb);
            }
            if !exited(pid) {
                i += 1;
                continue;
            }
            let cpu_seconds = own_cpu_seconds(pid).unwrap_or(0.0);
            let status = r.child.wait().context("could not reap a run's process")?;
            let r = running.swap_remove(i);
            if let Some(d) = r.device {
                holders[d] -= 1;
            }
            let run = &plan.runs[r.index];
            let state = status::state_of(run).0;
            let progress = watches[r.index].poll().clone();
            let ended = Ended {
                index: r.index,
                device: r.device.map(|d| cfg.devices[d].clone()),
                code: status.code(),
                state,
                cpu_seconds,
                peak_rss_kb: r.peak_rss_kb,
                wall: r.started.elapsed(),
                steps: progress.steps,
                started_at: (r.started - t0).as_secs_f64(),
                ended_at: t0.elapsed().as_secs_f64(),
            };
            match state {
                State::Finished => totals.done += 1,
                State::InfraFailed
                    if !stopping
                        && attempts.get(&r.index).copied().unwrap_or(0) < cfg.retry_infra =>
                {
                    *attempts.entry(r.index).or_insert(0) += 1;
                    observer.note(&format!(
                        "run {} ended in an infrastructure failure; running it again (retry {} of {})",
                        run.id,
                        attempts[&r.index],
                        cfg.retry_infra
                    ));
                    queue.push_front(r.index);
                }
                State::Interrupted if stopping => totals.stopped += 1,
                _ => totals.failed += 1,
            }
            totals.running = running.len();
            observer.ended(run, &ended, &totals);
            summary.ended.push(ended);
        }
        totals.running = running.len();
        if running.is_empty() && (stopping || (queue.is_empty() && held.is_empty())) {
            break;
        }
        if last_tick.elapsed() >= Duration::from_millis(500) {
            last_tick = Instant::now();
            let active: Vec<Active<'_>> = running
                .iter()
                .map(|r| Active {
                    run: &plan.runs[r.index],
                    device: r.device.map(|d| cfg.devices[d].clone()),
                    elapsed: r.started.elapsed(),
                    progress: watches[r.index].snapshot().clone(),
                })
                .collect();
            observer.tick(&active, &totals);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    summary.totals = totals;
    summary.wall = t0.elapsed();
    Ok(summary)
}

/// Starts `mlab run-one` for one run.
fn spawn(exe: &Path, plan_path: &Path, run: &PlannedRun, device: Option<&str>) -> Result<Child> {
    use std::os::unix::process::CommandExt;
    std::fs::create_dir_all(&run.log_dir)
        .with_context(|| format!("could not create {}", run.log_dir.display()))?;
    let log = run.log_dir.join("run-one.log");
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("could not open {}", log.display()))?;
    let err = out.try_clone()?;
    let mut cmd = Command::new(exe);
    cmd.arg("run-one")
        .arg(plan_path)
        .arg("--index")
        .arg(run.index.to_string());
    if let Some(d) = device {
        cmd.arg("--device").arg(d);
    }
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .env("NO_COLOR", "1")
        .process_group(0);
    let parent = std::process::id();
    // SAFETY: between fork and exec only async-signal-safe calls (prctl,
    // getppid) are made; nothing is allocated.
    unsafe {
        cmd.pre_exec(move || {
            let sig = PARENT_DEATH_SIGNAL as libc::c_ulong;
            if libc::prctl(libc::PR_SET_PDEATHSIG, sig) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died before the call above: nobody will stop us.
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::other("the study's process is gone"));
            }
            Ok(())
        });
    }
    cmd.spawn().with_context(|| {
        format!(
            "could not start {} run-one for run {}",
            exe.display(),
            run.id
        )
    })
}

/// The signal a run's process gets when the study's process dies (see
/// the module's documentation): one nothing else sends.
pub const PARENT_DEATH_SIGNAL: libc::c_int = libc::SIGUSR2;

/// For `mlab run-one`: turns the parent-death signals of a study that died
/// (one or several, see the module's documentation) into one SIGTERM to
/// this process, which the run takes as the first Ctrl-C: it closes with
/// its final snapshot. Call first thing, before any thread starts; it
/// blocks SIGINT, SIGTERM and SIGHUP too (for
/// [`crate::run::signals::install`], which takes them, to be called next).
/// A run not started by the queue is never sent the signal.
pub fn watch_parent_death() -> Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let sig = Signal::try_from(PARENT_DEATH_SIGNAL).context("no parent-death signal")?;
    let mut all = SigSet::empty();
    for s in [sig, Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        all.add(s);
    }
    all.thread_block()
        .context("could not set up the study's parent-death signal")?;
    let mut set = SigSet::empty();
    set.add(sig);
    std::thread::Builder::new()
        .name("study-parent".into())
        .spawn(move || {
            if set.wait().is_ok() {
                // Once: later copies stay pending, blocked, and are ignored.
                let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), Signal::SIGTERM);
            }
        })
        .context("could not start the parent-death thread")?;
    Ok(())
}

fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig);
}

/// Whether the child has exited (without reaping it, so that its own CPU
/// time can still be read).
fn exited(pid: i32) -> bool {
    use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    match waitid(Id::Pid(nix::unistd::Pid::from_raw(pid)), flags) {
        Ok(WaitStatus::StillAlive) => false,
        Ok(_) => true,
        // Already reaped or not ours: treat as ended.
        Err(_) => true,
    }
}

/// utime + stime of the process itself (not of its waited-for children),
/// from /proc/<pid>/stat; readable while it is a zombie.
pub fn own_cpu_seconds(pid: i32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the file; `rest` starts at field 3.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    let tck = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    Some((utime + stime) / tck)
}

/// VmHWM of a live process, in kB.
pub fn peak_rss_kb(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread (and every thread it
/// starts later) and takes them in one thread: the first sets `stop`, the
/// second `abort`, a third ends the process. Call before any other thread
/// starts. (Not `run::signals::install`: that one kills every child that
/// leads its own process group, which here are the runs themselves.)
pub fn install_signals() -> Result<(Arc<AtomicBool>, Arc<AtomicBool>)> {
    use nix::sys::signal::{SigSet, Signal};
    let stop = Arc::new(AtomicBool::new(false));
    let abort = Arc::new(AtomicBool::new(false));
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block()
        .context("could not set up Ctrl-C handling")?;
    let (s, a) = (stop.clone(), abort.clone());
    std::thread::Builder::new()
        .name("study-signals".into())
        .spawn(move || {
            while let Ok(sig) = set.wait() {
                if !s.swap(true, Ordering::SeqCst) {
                    eprintln!("\nmlab: {sig}: stopping the study; each run closes after its final snapshot (send it again to stop at once)");
                } else if !a.swap(true, Ordering::SeqCst) {
                    eprintln!("\nmlab: {sig} again: stopping now");
                } else {
                    std::process::exit(130);
                }
            }
        })
        .context("could not start the signal thread")?;
    Ok((stop, abort))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan of `seeds` seeds of GPU task `long`, GPU task `short` and
    /// CPU task `cpu`, one configuration.
    fn three_task_plan(dir: &Path, seeds: u64) -> Plan {
        use super::super::plan::{self, ConfigSpec, PlanSpec, TaskSpec};
        let task = |name: &str, gpu| TaskSpec {
            name: name.into(),
            gpu,
        };
        plan::build(&PlanSpec {
            exp_dir: dir.join("exp"),
            global_args: vec![],
            tasks: vec![task("short", true), task("cpu", false), task("long", true)],
            configs: vec![ConfigSpec {
                name: "c".into(),
                agent: "research".into(),
                llm: None,
                args: vec![],
            }],
            seeds: (0..seeds).collect(),
            common_args: vec![],
        })
        .unwrap()
    }

    fn finish(run: &PlannedRun, secs: i64) {
        let start = chrono::Utc::now();
        let r = crate::run::record::RunRecord {
            task: run.task.clone(),
            config: run.config.clone(),
            start_time: start.to_rfc3339(),
            end_time: Some((start + chrono::Duration::seconds(secs)).to_rfc3339()),
            exit_reason: Some(crate::run::record::ExitReason::FinalAnswer),
            ..Default::default()
        };
        std::fs::create_dir_all(&run.log_dir).unwrap();
        r.write(&run.log_dir).unwrap();
    }

    #[test]
    fn pending_gpu_runs_start_longest_first_by_their_tasks_finished_runs() {
        let dir = tempfile::tempdir().unwrap();
        let plan = three_task_plan(dir.path(), 3);
        let id = |i: usize| plan.runs[i].id.clone();
        let ids = |order: Vec<usize>| order.into_iter().map(id).collect::<Vec<_>>();
        // Nothing finished: plan order.
        assert_eq!(todo(&plan, 0), (0..9).collect::<Vec<_>>());
        // Seed 0 of each task finished: `long` took longer than `short`.
        let by = |task: &str, seed: u64| {
            plan.runs
                .iter()
                .find(|r| r.task == task && r.seed == seed)
                .unwrap()
                .index
        };
        finish(&plan.runs[by("short", 0)], 10);
        finish(&plan.runs[by("long", 0)], 100);
        finish(&plan.runs[by("cpu", 0)], 1000);
        let order = todo(&plan, 0);
        assert_eq!(
            ids(order),
            ids(vec![
                by("long", 1),
                by("long", 2),
                by("cpu", 1),
                by("cpu", 2),
                by("short", 1),
                by("short", 2),
            ]),
            "GPU runs longest first in the GPU runs' places; CPU runs stay in plan order"
        );
    }

    #[test]
    fn a_process_reads_its_own_cpu_time_and_peak_memory() {
        let me = std::process::id() as i32;
        assert!(own_cpu_seconds(me).unwrap() >= 0.0);
        assert!(peak_rss_kb(me).unwrap() > 0);
        assert!(peak_rss_kb(-1).is_none());
    }
}
