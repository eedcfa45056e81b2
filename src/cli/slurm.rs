//! The Slurm flags of a study (`mlab run ... --executor slurm --slurm-*`),
//! and what the front end does with them: submit the plan's unfinished runs
//! as one sbatch job array ([`submit_study`]) and give `mlab status` what
//! Slurm knows of each run ([`external_states`]). The engine side is
//! `mlab::study::slurm`; docs/slurm.md tells the whole story.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use mlab::study::plan::Plan;
use mlab::study::slurm::{self, SlurmOptions};
use mlab::study::status::{self, State};
use mlab::ui;

/// Who runs a study's runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Executor {
    /// Here, through the local queue (--jobs, --devices).
    #[default]
    Local,
    /// On a Slurm cluster: one sbatch job array, one element per run.
    Slurm,
}

/// How a study runs, and the sbatch options of `--executor slurm`.
#[derive(Debug, Args, Clone, Default)]
pub struct SlurmArgs {
    /// Who runs the study's runs: `local` (the queue here) or `slurm`
    /// (writes <exp-dir>/slurm/submit-N.sbatch, submits it with sbatch and
    /// returns; follow with `mlab status <exp-dir>`; docs/slurm.md).
    #[arg(long, value_enum, default_value_t = Executor::Local, help_heading = "Studies")]
    pub executor: Executor,

    /// Slurm partition (sbatch --partition; default: the cluster's).
    #[arg(long, value_name = "NAME", help_heading = "Slurm (--executor slurm)")]
    pub slurm_partition: Option<String>,

    /// Generic resources per run (sbatch --gres), e.g. gpu:1. The
    /// allocation's CUDA_VISIBLE_DEVICES reaches the run as its device.
    #[arg(long, value_name = "GRES", help_heading = "Slurm (--executor slurm)")]
    pub slurm_gres: Option<String>,

    /// Time limit per run (sbatch --time), e.g. 06:00:00 or 1-00:00:00.
    #[arg(long, value_name = "TIME", help_heading = "Slurm (--executor slurm)")]
    pub slurm_time: Option<String>,

    /// CPUs per run (sbatch --cpus-per-task).
    #[arg(long, value_name = "N", help_heading = "Slurm (--executor slurm)")]
    pub slurm_cpus: Option<u32>,

    /// Memory per run (sbatch --mem), e.g. 16G.
    #[arg(long, value_name = "SIZE", help_heading = "Slurm (--executor slurm)")]
    pub slurm_mem: Option<String>,

    /// More sbatch options, written as an `#SBATCH` line each (repeatable),
    /// e.g. --slurm-extra=--qos=high --slurm-extra=--account=lab.
    #[arg(
        long,
        value_name = "OPTION",
        allow_hyphen_values = true,
        help_heading = "Slurm (--executor slurm)"
    )]
    pub slurm_extra: Vec<String>,
}

impl SlurmArgs {
    /// Whether these flags make `mlab run` a study (`--executor slurm` does).
    pub fn is_study(&self) -> bool {
        self.executor == Executor::Slurm
    }

    /// The sbatch options; refuses `--slurm-*` flags without `--executor
    /// slurm` (they would be silently ignored).
    pub fn options(&self) -> Result<SlurmOptions> {
        let opts = SlurmOptions {
            partition: self.slurm_partition.clone(),
            gres: self.slurm_gres.clone(),
            time: self.slurm_time.clone(),
            cpus: self.slurm_cpus,
            mem: self.slurm_mem.clone(),
            extra: self.slurm_extra.clone(),
        };
        if self.executor != Executor::Slurm && opts != SlurmOptions::default() {
            bail!("the --slurm-* flags only apply with --executor slurm; add it, or drop them to run here");
        }
        Ok(opts)
    }
}

/// Says that the local queue's flags do nothing under Slurm, and what does.
pub fn warn_local_only(devices: &[String], jobs: Option<usize>) {
    if !devices.is_empty() {
        ui::warn(
            "--devices is the local queue's and does nothing with --executor slurm: \
             ask Slurm for GPUs with --slurm-gres gpu:1",
        );
    }
    if jobs.is_some() {
        ui::warn(
            "--jobs is the local queue's and does nothing with --executor slurm: Slurm decides \
             how many runs go at once (cap it with `scontrol update jobid=ID arraytaskthrottle=K`)",
        );
    }
}

/// The runs of `plan` to send to Slurm: those not finished on disk, not
/// held by a process now, and not pending or running in Slurm. Also says
/// how many were left out because Slurm still has them.
fn runs_to_submit(plan: &Plan) -> Result<(Vec<usize>, usize, usize)> {
    let in_slurm = slurm::states(&plan.exp_dir)?;
    let (mut send, mut finished, mut active) = (Vec::new(), 0, 0);
    for run in &plan.runs {
        let (state, _) = status::state_of(run);
        if state == State::Finished {
            finished += 1;
        } else if state == State::Running
            || in_slurm
                .get(&run.index)
                .is_some_and(|s| s.state.is_active())
        {
            active += 1;
        } else {
            send.push(run.index);
        }
    }
    Ok((send, finished, active))
}

/// `mlab run --executor slurm`: writes and submits the sbatch array of the
/// plan's unfinished runs, prints the job id and how to follow it. Submitting
/// again sends only what is neither finished nor still in Slurm.
pub fn submit_study(plan: &Plan, args: &SlurmArgs) -> Result<ExitCode> {
    let opts = args.options()?;
    let (send, finished, active) = runs_to_submit(plan)?;
    let exp = plan.exp_dir.display();
    if send.is_empty() {
        ui::write_stdout(format_args!(
            "nothing to submit: of {} runs, {finished} finished and {active} pending or running (in Slurm or here)\n  status: mlab status {exp}\n",
            plan.runs.len()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let mlab = std::env::current_exe()
        .context("cannot tell where this mlab binary is (the jobs must run it)")?;
    let plan_path = plan.exp_dir.join(mlab::study::plan::PLAN_FILE);
    let Some(sub) = slurm::submit(&plan_path, &send, &opts, &mlab)? else {
        bail!("nothing was submitted");
    };
    let mut skipped = Vec::new();
    if finished > 0 {
        skipped.push(format!("{finished} finished"));
    }
    if active > 0 {
        skipped.push(format!("{active} still pending or running"));
    }
    ui::write_stdout(format_args!(
        "submitted Slurm job {} ({} run{}, array {}){}\n  script: {}\n  status: mlab status {exp}\n  then:   mlab eval --log-folder {exp}\n",
        sub.job_id,
        sub.indices.len(),
        if sub.indices.len() == 1 { "" } else { "s" },
        slurm::array_spec(&sub.indices),
        if skipped.is_empty() {
            String::new()
        } else {
            format!("; left out {}", skipped.join(", "))
        },
        sub.script.display(),
    ));
    Ok(ExitCode::SUCCESS)
}

/// What Slurm knows of each run of the study in `exp_dir` (`RUNNING`,
/// `COMPLETED`, ...) and the job it belongs to, for `mlab status`; None
/// when the study was never submitted to Slurm. When Slurm cannot be asked,
/// says so and gives None: the disk state still stands.
pub fn external_states(exp_dir: &Path) -> Option<BTreeMap<usize, slurm::RunSlurm>> {
    match slurm::jobs(exp_dir) {
        Ok(j) if j.is_empty() => return None,
        Ok(_) => {}
        Err(e) => {
            ui::warn(format!("{e:#}"));
            return None;
        }
    }
    match slurm::states(exp_dir) {
        Ok(m) => Some(m),
        Err(e) => {
            ui::warn(format!("cannot ask Slurm about the study's jobs: {e:#}"));
            None
        }
    }
}

/// The states alone, as `mlab status` shows them.
pub fn state_names(m: &BTreeMap<usize, slurm::RunSlurm>) -> BTreeMap<usize, String> {
    m.iter().map(|(i, r)| (*i, r.state.to_string())).collect()
}

/// After `mlab status`'s table: where to read why runs that are not
/// finished ended badly in Slurm (their element's output file), and how to
/// send them again.
pub fn print_failures(plan: &Plan, m: &BTreeMap<usize, slurm::RunSlurm>) {
    let exp_dir = plan.exp_dir.as_path();
    let unfinished = |i: usize| {
        plan.runs
            .get(i)
            .is_some_and(|run| status::state_of(run).0 != State::Finished)
    };
    let bad: Vec<(&usize, &slurm::RunSlurm)> = m
        .iter()
        .filter(|(i, r)| {
            !r.state.is_active() && r.state != slurm::SlurmState::Completed && unfinished(**i)
        })
        .collect();
    if bad.is_empty() {
        return;
    }
    let logs = slurm::slurm_dir(exp_dir).join("logs");
    let mut text = format!("{} run(s) ended badly in Slurm; their output:\n", bad.len());
    for (i, r) in bad.iter().take(10) {
        text.push_str(&format!(
            "  {i}: {} {}\n",
            r.state,
            logs.join(format!("{}_{i}.out", r.job_id)).display()
        ));
    }
    if bad.len() > 10 {
        text.push_str(&format!(
            "  ... and {} more in {}\n",
            bad.len() - 10,
            logs.display()
        ));
    }
    text.push_str(
        "  fix the cause, then submit the same `mlab run` again: it sends only unfinished runs\n",
    );
    ui::write_stdout(format_args!("{text}"));
}

/// The device a run started by Slurm gets when run-one names none: the
/// GPUs of the job's allocation (CUDA_VISIBLE_DEVICES as Slurm set it, for
/// `--slurm-gres gpu:N`), so `mlab run`'s own default (device 0) never
/// points the run at a GPU that belongs to another job.
pub fn allocated_device() -> Option<String> {
    device_of_allocation(
        std::env::var_os("SLURM_JOB_ID").is_some(),
        std::env::var("CUDA_VISIBLE_DEVICES").ok().as_deref(),
    )
}

/// [`allocated_device`] given whether this is a Slurm job and its
/// CUDA_VISIBLE_DEVICES.
fn device_of_allocation(in_slurm_job: bool, visible: Option<&str>) -> Option<String> {
    let d = visible?.trim();
    (in_slurm_job && !d.is_empty()).then(|| d.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        s: SlurmArgs,
    }

    #[test]
    fn slurm_flags_become_sbatch_options() {
        let t = T::parse_from([
            "t",
            "--executor",
            "slurm",
            "--slurm-partition",
            "gpu",
            "--slurm-gres",
            "gpu:1",
            "--slurm-time",
            "2:00:00",
            "--slurm-cpus",
            "4",
            "--slurm-mem",
            "8G",
            "--slurm-extra",
            "--qos=high",
            "--slurm-extra=--account=lab",
        ]);
        assert!(t.s.is_study());
        let o = t.s.options().unwrap();
        assert_eq!(o.partition.as_deref(), Some("gpu"));
        assert_eq!(o.gres.as_deref(), Some("gpu:1"));
        assert_eq!(o.time.as_deref(), Some("2:00:00"));
        assert_eq!(o.cpus, Some(4));
        assert_eq!(o.mem.as_deref(), Some("8G"));
        assert_eq!(o.extra, ["--qos=high", "--account=lab"]);
    }

    #[test]
    fn a_slurm_job_s_gpus_become_the_run_s_device() {
        assert_eq!(
            device_of_allocation(true, Some("2,3")).as_deref(),
            Some("2,3")
        );
        assert_eq!(device_of_allocation(true, Some("")), None);
        assert_eq!(device_of_allocation(true, None), None);
        // Outside a Slurm job, the environment of the shell is not an allocation.
        assert_eq!(device_of_allocation(false, Some("1")), None);
    }

    #[test]
    fn slurm_flags_without_the_slurm_executor_are_refused() {
        let t = T::parse_from(["t", "--slurm-partition", "gpu"]);
        assert!(!t.s.is_study());
        let e = t.s.options().unwrap_err().to_string();
        assert!(e.contains("--executor slurm"), "{e}");
        let t = T::parse_from(["t"]);
        assert_eq!(t.s.options().unwrap(), SlurmOptions::default());
    }
}
