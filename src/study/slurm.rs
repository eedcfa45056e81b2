//! The Slurm executor of a study: hands the runs of a plan to Slurm as one
//! job array instead of running them here.
//!
//! - [`submit`] writes a readable sbatch script, `<exp-dir>/slurm/submit-<n>.sbatch`
//!   (one array element per run index given, the element's task id being the
//!   run's index in plan.json, each calling `mlab run-one <plan.json> --index
//!   $SLURM_ARRAY_TASK_ID`), submits it with `sbatch --parsable` and records
//!   the job in `<exp-dir>/slurm/jobs.json`. Which runs to send (those not
//!   finished on disk nor pending/running in Slurm) is the caller's choice.
//! - [`states`] asks Slurm what became of the recorded jobs: `squeue
//!   --states=all` (which keeps ended jobs for `MinJobAge`), then `sacct`
//!   where the cluster keeps accounting, giving each run index its latest
//!   Slurm state. `mlab status` merges that with the state on disk.
//!
//! Nothing here runs a run: each array element is an ordinary `mlab run-one`,
//! which skips a finished run and resumes an interrupted one, so submitting
//! twice never does work twice. The sandbox (bubblewrap) needs no daemon, so
//! it works inside a job as it does on a login node. With `--gres=gpu:N` the
//! allocation sets `CUDA_VISIBLE_DEVICES`, and run-one keeps it.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::sandbox::shell_word;

/// The sbatch options a study asks for; `None` leaves the cluster's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlurmOptions {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--gres`, e.g. `gpu:1`.
    pub gres: Option<String>,
    /// `--time`, e.g. `04:00:00` or `1-00:00:00`.
    pub time: Option<String>,
    /// `--cpus-per-task`.
    pub cpus: Option<u32>,
    /// `--mem`, e.g. `16G`.
    pub mem: Option<String>,
    /// More sbatch options, one `#SBATCH` line each (e.g. `--qos=high`).
    pub extra: Vec<String>,
}

/// What this module reads of plan.json (the study module owns the whole
/// format; unknown fields are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct PlanView {
    pub exp_dir: PathBuf,
    #[serde(default)]
    pub global_args: Vec<String>,
    pub runs: Vec<RunView>,
}

/// One run of plan.json, as far as Slurm cares.
#[derive(Debug, Clone, Deserialize)]
pub struct RunView {
    pub index: usize,
    pub id: String,
}

impl PlanView {
    /// Reads `<exp-dir>/plan.json`.
    pub fn read(plan_path: &Path) -> Result<PlanView> {
        let text = fs::read_to_string(plan_path).with_context(|| {
            format!(
                "cannot read the study plan {} (make it with `mlab run ... --exp-dir DIR`)",
                plan_path.display()
            )
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a study plan", plan_path.display()))
    }
}

/// A job as `<exp-dir>/slurm/jobs.json` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The array's job id, as `sbatch --parsable` printed it (without a
    /// `;cluster` suffix).
    pub job_id: String,
    /// The script submitted, relative to the exp dir.
    pub script: String,
    /// The run indexes (array task ids) it holds.
    pub indices: Vec<usize>,
    /// When it was submitted (RFC 3339).
    pub submitted: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct JobsFile {
    version: u32,
    jobs: Vec<JobRecord>,
}

/// The folder Slurm's files of a study live in.
pub fn slurm_dir(exp_dir: &Path) -> PathBuf {
    exp_dir.join("slurm")
}

fn jobs_path(exp_dir: &Path) -> PathBuf {
    slurm_dir(exp_dir).join("jobs.json")
}

/// The jobs submitted for this study so far, oldest first (none when
/// nothing was submitted).
pub fn jobs(exp_dir: &Path) -> Result<Vec<JobRecord>> {
    let path = jobs_path(exp_dir);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let f: JobsFile = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is damaged; move it away to forget the jobs it lists",
                    path.display()
                )
            })?;
            Ok(f.jobs)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn record_job(exp_dir: &Path, job: JobRecord) -> Result<()> {
    let mut all = jobs(exp_dir)?;
    all.push(job);
    let f = JobsFile {
        version: 1,
        jobs: all,
    };
    let path = jobs_path(exp_dir);
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, serde_json::to_string_pretty(&f)? + "\n")
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
}

/// Indexes as Slurm's `--array` list: sorted, runs of consecutive numbers
/// as ranges (`0-3,5,7-9`).
pub fn array_spec(indices: &[usize]) -> String {
    let mut v: Vec<usize> = indices.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        let mut end = start;
        while i + 1 < v.len() && v[i + 1] == end + 1 {
            i += 1;
            end = v[i];
        }
        parts.push(if end == start {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// How many runs the script's header lists by id before it says "and N more".
const LISTED_RUNS: usize = 40;

/// The text of the sbatch script running `indices` of the plan at
/// `plan_path` with the binary `mlab` (an absolute path: the job starts in
/// slurmd's world, not this shell's).
pub fn script_text(
    plan_path: &Path,
    plan: &PlanView,
    indices: &[usize],
    opts: &SlurmOptions,
    mlab: &Path,
    submitted: &str,
) -> String {
    let exp_dir = &plan.exp_dir;
    let logs = slurm_dir(exp_dir).join("logs");
    let name = exp_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "study".into());
    let mut s = String::new();
    s.push_str("#!/bin/bash\n");
    s.push_str(&format!(
        "# mlab study {}, submitted {submitted}\n",
        exp_dir.display()
    ));
    s.push_str("#\n");
    s.push_str("# Written by `mlab run --executor slurm`. A job array: one element per run of\n");
    s.push_str("# plan.json not finished when it was submitted; an element's task id is the\n");
    s.push_str("# run's index in plan.json, and it runs `mlab run-one`, which skips a finished\n");
    s.push_str("# run and resumes an interrupted one.\n");
    s.push_str("#\n");
    s.push_str(&format!("# Runs ({}):\n", indices.len()));
    let ids: BTreeMap<usize, &str> = plan.runs.iter().map(|r| (r.index, r.id.as_str())).collect();
    for i in indices.iter().take(LISTED_RUNS) {
        s.push_str(&format!(
            "#   {i:>4}  {}\n",
            ids.get(i).copied().unwrap_or("?")
        ));
    }
    if indices.len() > LISTED_RUNS {
        s.push_str(&format!(
            "#   ... and {} more (see plan.json)\n",
            indices.len() - LISTED_RUNS
        ));
    }
    s.push_str("#\n");
    s.push_str(&format!(
        "# Progress:  mlab status {}\n",
        shell_word(&exp_dir.to_string_lossy())
    ));
    s.push_str("# Resubmit:  the same `mlab run` command (it sends only unfinished runs)\n");
    s.push_str(&format!(
        "# Output:    {}/%A_%a.out (array job id, run index)\n",
        logs.display()
    ));
    s.push_str(&format!("#SBATCH --job-name=mlab-{name}\n"));
    s.push_str(&format!("#SBATCH --array={}\n", array_spec(indices)));
    s.push_str(&format!("#SBATCH --output={}/%A_%a.out\n", logs.display()));
    s.push_str(&format!("#SBATCH --chdir={}\n", exp_dir.display()));
    if let Some(p) = &opts.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(g) = &opts.gres {
        s.push_str(&format!("#SBATCH --gres={g}\n"));
    }
    if let Some(t) = &opts.time {
        s.push_str(&format!("#SBATCH --time={t}\n"));
    }
    if let Some(c) = opts.cpus {
        s.push_str(&format!("#SBATCH --cpus-per-task={c}\n"));
    }
    if let Some(m) = &opts.mem {
        s.push_str(&format!("#SBATCH --mem={m}\n"));
    }
    for e in &opts.extra {
        s.push_str(&format!("#SBATCH {e}\n"));
    }
    s.push('\n');
    s.push_str("set -euo pipefail\n");
    if opts.gres.is_some() {
        s.push_str("# The allocation's GPUs are in CUDA_VISIBLE_DEVICES; run-one keeps them.\n");
    }
    s.push_str(
        "echo \"mlab: run $SLURM_ARRAY_TASK_ID of job $SLURM_ARRAY_JOB_ID on $(hostname)\"\n",
    );
    let mut cmd = vec![shell_word(&mlab.to_string_lossy())];
    cmd.extend(plan.global_args.iter().map(|a| shell_word(a)));
    cmd.push("run-one".into());
    cmd.push(shell_word(&plan_path.to_string_lossy()));
    cmd.push("--index".into());
    cmd.push("\"$SLURM_ARRAY_TASK_ID\"".into());
    s.push_str(&format!("exec {}\n", cmd.join(" ")));
    s
}

/// What [`submit`] did.
#[derive(Debug, Clone)]
pub struct Submission {
    pub job_id: String,
    /// The script, absolute.
    pub script: PathBuf,
    pub indices: Vec<usize>,
}

/// The hint for a missing Slurm command.
fn missing_tool(tool: &str) -> String {
    format!(
        "{tool} not found: this machine has no Slurm client tools on PATH. On a cluster, \
         load its Slurm module (e.g. `module load slurm`) or run from a login node; to \
         make a one-node cluster on this machine, run `./install.sh --slurm` (as root)"
    )
}

/// Writes the sbatch script for `indices` of the plan at `plan_path`,
/// submits it with `sbatch --parsable` and records the job in jobs.json.
/// `mlab` is the binary each array element runs (made absolute here).
/// `Ok(None)` when `indices` is empty: nothing to send.
pub fn submit(
    plan_path: &Path,
    indices: &[usize],
    opts: &SlurmOptions,
    mlab: &Path,
) -> Result<Option<Submission>> {
    if indices.is_empty() {
        return Ok(None);
    }
    let plan_path = std::path::absolute(plan_path)
        .with_context(|| format!("cannot resolve {}", plan_path.display()))?;
    let mlab =
        std::path::absolute(mlab).with_context(|| format!("cannot resolve {}", mlab.display()))?;
    let mut plan = PlanView::read(&plan_path)?;
    if !plan.exp_dir.is_absolute() {
        // plan.json says where it lives; trust the file's own folder if not.
        plan.exp_dir = plan_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
    }
    let known: std::collections::BTreeSet<usize> = plan.runs.iter().map(|r| r.index).collect();
    if let Some(bad) = indices.iter().find(|i| !known.contains(i)) {
        bail!(
            "run index {bad} is not in {} ({} runs)",
            plan_path.display(),
            plan.runs.len()
        );
    }
    let dir = slurm_dir(&plan.exp_dir);
    fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("cannot make {}", dir.join("logs").display()))?;
    let n = jobs(&plan.exp_dir)?.len() + 1;
    let mut script = dir.join(format!("submit-{n}.sbatch"));
    let mut k = n;
    while script.exists() {
        k += 1;
        script = dir.join(format!("submit-{k}.sbatch"));
    }
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let text = script_text(&plan_path, &plan, indices, opts, &mlab, &now);
    fs::write(&script, &text).with_context(|| format!("cannot write {}", script.display()))?;
    let out = Command::new("sbatch")
        .arg("--parsable")
        .arg(&script)
        .current_dir(&plan.exp_dir)
        .stdin(Stdio::null())
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) if e.kind() == ErrorKind::NotFound => bail!("{}", missing_tool("sbatch")),
        Err(e) => return Err(e).context("cannot start sbatch"),
    };
    if !out.status.success() {
        bail!(
            "sbatch refused {} ({}): {}\n(fix the --slurm-* options, or the script, and submit again)",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let job_id = parse_parsable(&stdout).with_context(|| {
        format!(
            "sbatch printed no job id for {} (it said: {:?})",
            script.display(),
            stdout.trim()
        )
    })?;
    let mut sorted = indices.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let rel = script
        .strip_prefix(&plan.exp_dir)
        .unwrap_or(&script)
        .to_string_lossy()
        .into_owned();
    record_job(
        &plan.exp_dir,
        JobRecord {
            job_id: job_id.clone(),
            script: rel,
            indices: sorted.clone(),
            submitted: now,
        },
    )?;
    Ok(Some(Submission {
        job_id,
        script,
        indices: sorted,
    }))
}

/// The job id of `sbatch --parsable`'s output (`12345` or `12345;cluster`).
fn parse_parsable(stdout: &str) -> Option<String> {
    let line = stdout.lines().map(str::trim).find(|l| !l.is_empty())?;
    let id = line.split(';').next()?.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then(|| id.to_string())
}

/// A job's state as Slurm names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SlurmState {
    Pending,
    Running,
    Completing,
    Completed,
    Failed,
    Cancelled,
    Timeout,
    OutOfMemory,
    NodeFail,
    /// Any other state (SUSPENDED, PREEMPTED, REQUEUED, ...), as Slurm spelt it.
    Other(String),
}

impl SlurmState {
    /// From squeue's `%T` or sacct's `State` (`CANCELLED by 0` is CANCELLED).
    pub fn parse(s: &str) -> SlurmState {
        let word = s
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_end_matches('+');
        match word {
            "PENDING" | "PD" => SlurmState::Pending,
            "RUNNING" | "R" => SlurmState::Running,
            "COMPLETING" | "CG" => SlurmState::Completing,
            "COMPLETED" | "CD" => SlurmState::Completed,
            "FAILED" | "F" => SlurmState::Failed,
            "CANCELLED" | "CA" => SlurmState::Cancelled,
            "TIMEOUT" | "TO" => SlurmState::Timeout,
            "OUT_OF_MEMORY" | "OOM" => SlurmState::OutOfMemory,
            "NODE_FAIL" | "NF" => SlurmState::NodeFail,
            other => SlurmState::Other(other.to_string()),
        }
    }

    /// Whether Slurm will still run (or is running) it: a run in this state
    /// must not be submitted again.
    pub fn is_active(&self) -> bool {
        match self {
            SlurmState::Pending | SlurmState::Running | SlurmState::Completing => true,
            SlurmState::Other(s) => matches!(
                s.as_str(),
                "CONFIGURING"
                    | "REQUEUED"
                    | "REQUEUE_FED"
                    | "REQUEUE_HOLD"
                    | "RESIZING"
                    | "SUSPENDED"
                    | "STOPPED"
                    | "SIGNALING"
                    | "STAGE_OUT"
                    | "RESV_DEL_HOLD"
            ),
            _ => false,
        }
    }
}

impl fmt::Display for SlurmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            SlurmState::Pending => "PENDING",
            SlurmState::Running => "RUNNING",
            SlurmState::Completing => "COMPLETING",
            SlurmState::Completed => "COMPLETED",
            SlurmState::Failed => "FAILED",
            SlurmState::Cancelled => "CANCELLED",
            SlurmState::Timeout => "TIMEOUT",
            SlurmState::OutOfMemory => "OUT_OF_MEMORY",
            SlurmState::NodeFail => "NODE_FAIL",
            SlurmState::Other(s) => s,
        };
        f.write_str(s)
    }
}

impl Serialize for SlurmState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One run's Slurm state and the job it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunSlurm {
    pub job_id: String,
    pub state: SlurmState,
}

/// `(array job id, task id) -> state` from `squeue --array --states=all
/// --noheader --format=%F|%K|%T`. A task id squeue still writes as a range
/// (`0-3`, `[4-6%2]`, `1,3`) is expanded.
pub fn parse_squeue(out: &str) -> BTreeMap<(String, usize), SlurmState> {
    let mut map = BTreeMap::new();
    for line in out.lines() {
        let mut f = line.trim().split('|');
        let (Some(job), Some(task), Some(state)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let state = SlurmState::parse(state.trim());
        for t in expand_tasks(task.trim()) {
            map.insert((job.trim().to_string(), t), state.clone());
        }
    }
    map
}

/// Task ids of `3`, `0-3`, `[1,3-4%2]`; none for `N/A` or junk.
fn expand_tasks(spec: &str) -> Vec<usize> {
    let spec = spec.trim_start_matches('[').trim_end_matches(']');
    let spec = spec.split('%').next().unwrap_or("");
    let mut out = Vec::new();
    for part in spec.split(',') {
        let part = part.trim();
        if let Some((a, b)) = part.split_once('-') {
            if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                // A range as wide as a real array, never an accidental huge one.
                if b >= a && b - a <= 1_000_000 {
                    out.extend(a..=b);
                }
            }
        } else if let Ok(n) = part.parse::<usize>() {
            out.push(n);
        }
    }
    out
}

/// `(array job id, task id) -> state` from `sacct --noheader --parsable2
/// --format=JobID,State`: lines `12_3|COMPLETED`, `12_[4-6]|PENDING`; job
/// steps (`12_3.batch`) are left out.
pub fn parse_sacct(out: &str) -> BTreeMap<(String, usize), SlurmState> {
    let mut map = BTreeMap::new();
    for line in out.lines() {
        let Some((id, state)) = line.trim().split_once('|') else {
            continue;
        };
        if id.contains('.') {
            continue;
        }
        let Some((job, task)) = id.split_once('_') else {
            continue;
        };
        let state = SlurmState::parse(state);
        for t in expand_tasks(task) {
            map.insert((job.to_string(), t), state.clone());
        }
    }
    map
}

/// Runs a Slurm query; `Ok(None)` when it answered with an error (sacct
/// without accounting, a job id the controller has forgotten).
fn query(tool: &str, args: &[&str]) -> Result<Option<String>> {
    match Command::new(tool).args(args).stdin(Stdio::null()).output() {
        Ok(o) if o.status.success() => Ok(Some(String::from_utf8_lossy(&o.stdout).into_owned())),
        Ok(o) => {
            tracing::debug!(
                "{tool} {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr).trim()
            );
            Ok(None)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => bail!("{}", missing_tool(tool)),
        Err(e) => Err(e).with_context(|| format!("cannot start {tool}")),
    }
}

/// Each submitted run index's latest Slurm state: from the newest job that
/// holds it and that squeue (or sacct, when the cluster keeps accounting)
/// still knows. Runs whose jobs Slurm has forgotten are left out (their
/// disk state says the rest). Empty, without asking Slurm, when nothing was
/// submitted.
pub fn states(exp_dir: &Path) -> Result<BTreeMap<usize, RunSlurm>> {
    let jobs = jobs(exp_dir)?;
    if jobs.is_empty() {
        return Ok(BTreeMap::new());
    }
    let ids: Vec<&str> = jobs.iter().map(|j| j.job_id.as_str()).collect();
    let ids_arg = ids.join(",");
    // Only this study's jobs (a cluster's whole queue can be long). squeue
    // fails when the one job asked for is forgotten: that reads as nothing.
    let jobs_arg = format!("--jobs={ids_arg}");
    let squeue = query(
        "squeue",
        &[
            "--array",
            "--states=all",
            "--noheader",
            "--format=%F|%K|%T",
            &jobs_arg,
        ],
    )?
    .map(|o| parse_squeue(&o))
    .unwrap_or_default();
    let need_sacct = jobs.iter().any(|j| {
        j.indices
            .iter()
            .any(|i| !squeue.contains_key(&(j.job_id.clone(), *i)))
    });
    let sacct = if need_sacct {
        query(
            "sacct",
            &[
                "--noheader",
                "--parsable2",
                "--format=JobID,State",
                "--jobs",
                &ids_arg,
            ],
        )
        .ok()
        .flatten()
        .map(|o| parse_sacct(&o))
        .unwrap_or_default()
    } else {
        BTreeMap::new()
    };
    Ok(merge(&jobs, &squeue, &sacct))
}

/// The newest known state of each run index over `jobs` (oldest first).
fn merge(
    jobs: &[JobRecord],
    squeue: &BTreeMap<(String, usize), SlurmState>,
    sacct: &BTreeMap<(String, usize), SlurmState>,
) -> BTreeMap<usize, RunSlurm> {
    let mut out = BTreeMap::new();
    for j in jobs {
        for &i in &j.indices {
            let key = (j.job_id.clone(), i);
            if let Some(state) = squeue.get(&key).or_else(|| sacct.get(&key)) {
                out.insert(
                    i,
                    RunSlurm {
                        job_id: j.job_id.clone(),
                        state: state.clone(),
                    },
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> PlanView {
        PlanView {
            exp_dir: PathBuf::from("/data/runs/exp1"),
            global_args: vec!["--benchmarks-dir".into(), "/opt/my bench".into()],
            runs: (0..4)
                .map(|i| RunView {
                    index: i,
                    id: format!("digits/baseline/{i}"),
                })
                .collect(),
        }
    }

    #[test]
    fn array_spec_folds_consecutive_indexes_into_ranges() {
        assert_eq!(array_spec(&[5, 0, 1, 2, 3, 7, 8, 9, 11]), "0-3,5,7-9,11");
        assert_eq!(array_spec(&[4]), "4");
        assert_eq!(array_spec(&[2, 2, 1]), "1-2");
    }

    #[test]
    fn script_is_an_array_of_the_given_runs_calling_run_one_with_the_plan_args() {
        let opts = SlurmOptions {
            partition: Some("gpu".into()),
            gres: Some("gpu:1".into()),
            time: Some("04:00:00".into()),
            cpus: Some(8),
            mem: Some("32G".into()),
            extra: vec!["--qos=high".into(), "--account=lab".into()],
        };
        let s = script_text(
            Path::new("/data/runs/exp1/plan.json"),
            &plan(),
            &[1, 3],
            &opts,
            Path::new("/usr/local/bin/mlab"),
            "2026-11-30T17:00:00Z",
        );
        assert!(s.starts_with("#!/bin/bash\n"), "{s}");
        for line in [
            "#SBATCH --job-name=mlab-exp1",
            "#SBATCH --array=1,3",
            "#SBATCH --output=/data/runs/exp1/slurm/logs/%A_%a.out",
            "#SBATCH --chdir=/data/runs/exp1",
            "#SBATCH --partition=gpu",
            "#SBATCH --gres=gpu:1",
            "#SBATCH --time=04:00:00",
            "#SBATCH --cpus-per-task=8",
            "#SBATCH --mem=32G",
            "#SBATCH --qos=high",
            "#SBATCH --account=lab",
            "#      1  digits/baseline/1",
            "#      3  digits/baseline/3",
            "# Progress:  mlab status /data/runs/exp1",
            "exec /usr/local/bin/mlab --benchmarks-dir '/opt/my bench' run-one \
             /data/runs/exp1/plan.json --index \"$SLURM_ARRAY_TASK_ID\"",
        ] {
            assert!(s.lines().any(|l| l == line), "no line {line:?} in\n{s}");
        }
        assert!(!s.contains("digits/baseline/0"), "{s}");
        // Every #SBATCH line comes before the first command, or sbatch ignores it.
        let lines: Vec<&str> = s.lines().collect();
        let first_cmd = lines
            .iter()
            .position(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap();
        let last_sbatch = lines
            .iter()
            .rposition(|l| l.starts_with("#SBATCH"))
            .unwrap();
        assert!(last_sbatch < first_cmd, "{s}");
    }

    #[test]
    fn script_leaves_unset_options_to_the_cluster() {
        let s = script_text(
            Path::new("/x/plan.json"),
            &PlanView {
                exp_dir: "/x".into(),
                global_args: vec![],
                runs: plan().runs,
            },
            &[0, 1, 2, 3],
            &SlurmOptions::default(),
            Path::new("/bin/mlab"),
            "now",
        );
        assert!(s.contains("#SBATCH --array=0-3\n"), "{s}");
        for opt in [
            "--partition",
            "--gres",
            "--time",
            "--cpus-per-task",
            "--mem",
        ] {
            assert!(!s.contains(opt), "{opt} in\n{s}");
        }
        assert!(
            s.contains("exec /bin/mlab run-one /x/plan.json --index"),
            "{s}"
        );
    }

    #[test]
    fn script_lists_many_runs_briefly() {
        let mut p = plan();
        p.runs = (0..100)
            .map(|i| RunView {
                index: i,
                id: format!("t/c/{i}"),
            })
            .collect();
        let idx: Vec<usize> = (0..100).collect();
        let s = script_text(
            Path::new("/data/runs/exp1/plan.json"),
            &p,
            &idx,
            &SlurmOptions::default(),
            Path::new("/bin/mlab"),
            "now",
        );
        assert!(s.contains("#   ... and 60 more (see plan.json)"), "{s}");
        assert!(s.contains("#SBATCH --array=0-99\n"), "{s}");
    }

    #[test]
    fn parsable_output_gives_the_job_id_with_or_without_a_cluster() {
        assert_eq!(parse_parsable("1234\n").as_deref(), Some("1234"));
        assert_eq!(parse_parsable("1234;mlab\n").as_deref(), Some("1234"));
        assert_eq!(parse_parsable("Submitted batch job 12\n"), None);
        assert_eq!(parse_parsable(""), None);
    }

    #[test]
    fn squeue_lines_give_each_array_task_its_state() {
        // What `squeue --array --states=all --noheader --format=%F|%K|%T`
        // printed on Slurm 22.05 (a pending tail may stay a range).
        let out = "7|1|COMPLETED\n7|3|FAILED\n9|0|RUNNING\n9|4-6|PENDING\n9|[8,10%2]|PENDING\n5|N/A|COMPLETED\n";
        let m = parse_squeue(out);
        let get = |j: &str, t: usize| m.get(&(j.to_string(), t)).cloned();
        assert_eq!(get("7", 1), Some(SlurmState::Completed));
        assert_eq!(get("7", 3), Some(SlurmState::Failed));
        assert_eq!(get("9", 0), Some(SlurmState::Running));
        for t in [4, 5, 6, 8, 10] {
            assert_eq!(get("9", t), Some(SlurmState::Pending), "task {t}");
        }
        assert_eq!(get("9", 9), None);
        assert_eq!(m.len(), 8, "{m:?}");
    }

    #[test]
    fn sacct_lines_skip_steps_and_read_cancelled_by() {
        let out = "12_0|COMPLETED\n12_0.batch|COMPLETED\n12_1|CANCELLED by 0\n12_[2-3]|PENDING\n12_4|OUT_OF_MEMORY\n13|COMPLETED\n";
        let m = parse_sacct(out);
        let get = |t: usize| m.get(&("12".to_string(), t)).cloned();
        assert_eq!(get(0), Some(SlurmState::Completed));
        assert_eq!(get(1), Some(SlurmState::Cancelled));
        assert_eq!(get(2), Some(SlurmState::Pending));
        assert_eq!(get(3), Some(SlurmState::Pending));
        assert_eq!(get(4), Some(SlurmState::OutOfMemory));
        assert_eq!(m.len(), 5, "{m:?}");
    }

    #[test]
    fn the_newest_job_holding_a_run_gives_its_state() {
        let job = |id: &str, idx: &[usize]| JobRecord {
            job_id: id.into(),
            script: "slurm/submit-1.sbatch".into(),
            indices: idx.to_vec(),
            submitted: "now".into(),
        };
        let jobs = vec![job("7", &[0, 1, 2]), job("9", &[1])];
        let squeue = parse_squeue("7|0|COMPLETED\n7|1|FAILED\n9|1|PENDING\n");
        let sacct = parse_sacct("7_2|TIMEOUT\n");
        let m = merge(&jobs, &squeue, &sacct);
        assert_eq!(m[&0].state, SlurmState::Completed);
        assert_eq!(m[&1].state, SlurmState::Pending);
        assert_eq!(m[&1].job_id, "9");
        assert_eq!(m[&2].state, SlurmState::Timeout);
        assert!(m[&1].state.is_active() && !m[&0].state.is_active());
    }

    #[test]
    fn states_is_empty_without_asking_slurm_when_nothing_was_submitted() {
        let d = tempfile::tempdir().unwrap();
        assert!(states(d.path()).unwrap().is_empty());
    }

    #[test]
    fn submit_of_no_runs_sends_nothing() {
        let d = tempfile::tempdir().unwrap();
        let r = submit(
            &d.path().join("plan.json"),
            &[],
            &SlurmOptions::default(),
            Path::new("/bin/mlab"),
        )
        .unwrap();
        assert!(r.is_none());
        assert!(!d.path().join("slurm").exists());
    }
}
