//! Studies from the command line: the study flags of `mlab run` (lists of
//! tasks, models and agents, `--runs`, `--jobs`, `--devices`, `--plan`),
//! `mlab run-one` (one run of a plan, as the queue and Slurm start it) and
//! `mlab status` (where each run of an experiment folder stands).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser};
use mlab::agent::AgentKind;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use mlab::study::plan::{self, ConfigSpec, Plan, PlanSpec, PlannedRun, TaskSpec};
use mlab::study::queue::{self, Ended, QueueConfig, Totals};
use mlab::study::status::State;
use mlab::study::{self, status, Start};
use mlab::ui;

use super::{Cli, Command, GlobalArgs, RunArgs};

/// The flags of `mlab run` that make it a study (any one of them, or a
/// comma list in --task, --llm or --agent).
#[derive(Debug, Args, Clone, Default)]
pub struct StudyArgs {
    /// Runs (seeds) per task and configuration: seeds --seed, --seed+1, ...
    /// Makes `mlab run` a study (as do comma lists in --task, --llm and
    /// --agent): every task x configuration x seed, laid out as
    /// <exp-dir>/<task>/<config>/<seed>/ (docs/studies.md).
    #[arg(long, value_name = "N", help_heading = "Studies")]
    pub runs: Option<u64>,

    /// Runs at once (default: the number of CPUs). GPU tasks' runs are
    /// bounded by --devices instead.
    #[arg(long, value_name = "J", help_heading = "Studies")]
    pub jobs: Option<usize>,

    /// Devices for GPU tasks (task.toml `requires.gpu`), e.g. 0,1,2,3: each
    /// GPU run holds one for its whole life and gets it as --device.
    #[arg(
        long,
        value_name = "IDS",
        value_delimiter = ',',
        help_heading = "Studies"
    )]
    pub devices: Vec<String>,

    /// GPU runs that may share one device at once.
    #[arg(long, value_name = "K", default_value_t = 1, help_heading = "Studies")]
    pub runs_per_device: usize,

    /// The study's folder: plan.json and every run's logs (default: --log-dir).
    #[arg(long, value_name = "DIR", help_heading = "Studies")]
    pub exp_dir: Option<PathBuf>,

    /// A study written down (plan.toml; docs/studies.md): tasks, configs,
    /// seeds and flags. The study flags given here override its own.
    #[arg(long, value_name = "FILE", help_heading = "Studies")]
    pub plan: Option<PathBuf>,

    /// Run again, up to N times, the runs that end in an infrastructure
    /// failure (run.json `infra_failure`; never those the agent ended).
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "Studies")]
    pub retry_infra: u32,

    /// `--executor` and the `--slurm-*` flags (docs/slurm.md).
    #[command(flatten)]
    pub slurm: super::slurm::SlurmArgs,
}

impl StudyArgs {
    /// Whether `mlab run` with these flags is a study rather than one run.
    pub fn is_study(&self, run: &RunArgs) -> bool {
        self.runs.is_some()
            || self.plan.is_some()
            || self.exp_dir.is_some()
            || self.jobs.is_some()
            || !self.devices.is_empty()
            || self.slurm.is_study()
            || run.task.as_deref().is_some_and(|t| t.contains(','))
            || run.llm.llm.as_deref().is_some_and(|t| t.contains(','))
            || run.agent.len() > 1
    }
}

/// `mlab run-one PLAN --index N`: one run of a plan.
#[derive(Debug, Args)]
pub struct RunOneArgs {
    /// The study's plan.json.
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,

    /// Which run (its index in the plan; a Slurm array's
    /// $SLURM_ARRAY_TASK_ID).
    #[arg(long, value_name = "N")]
    pub index: usize,

    /// The device the run gets (as --device of `mlab run`).
    #[arg(long, value_name = "ID")]
    pub device: Option<String>,
}

/// `mlab status EXP_DIR`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The study's folder (holding plan.json).
    #[arg(value_name = "EXP_DIR")]
    pub exp_dir: PathBuf,

    /// Print JSON (counts and one object per run) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `mlab run-one`: runs the plan's run exactly as `mlab run` with its
/// arguments would; says so and succeeds when it already finished;
/// resumes it from its last step when it was interrupted.
pub fn run_one(global: &GlobalArgs, args: &RunOneArgs) -> Result<ExitCode> {
    // Before any thread starts: the study's death reaches the run as one
    // stop, however many times the kernel signals it; then Ctrl-C.
    queue::watch_parent_death()?;
    mlab::run::signals::install()?;
    let plan = Plan::read(&args.plan)?;
    let run = plan.run(args.index)?;
    let start = study::how_to_start(run)?;
    if start == Start::AlreadyFinished {
        ui::info(format!("run {} already finished; nothing to do", run.id));
        return Ok(ExitCode::SUCCESS);
    }
    if start == Start::Resume {
        ui::info(format!("run {}: resuming from its last step", run.id));
    }
    // Under Slurm (--slurm-gres), the allocation's GPUs, not mlab run's default.
    let device = args.device.clone().or_else(super::slurm::allocated_device);
    let argv = study::run_args(&plan, run, &start, device.as_deref());
    let cli = Cli::try_parse_from(std::iter::once("mlab".to_string()).chain(argv))
        .with_context(|| format!("the plan's arguments of run {} are not valid", run.id))?;
    let Command::Run(run_args) = cli.command else {
        bail!("the plan's arguments of run {} are not a run", run.id);
    };
    let mut g = cli.global;
    g.verbose = g.verbose.max(global.verbose);
    super::run::run(&g, &run_args)
}

/// `mlab status`: counts and one row per run.
pub fn status(args: &StatusArgs) -> Result<ExitCode> {
    let Some(slurm) = super::slurm::external_states(&args.exp_dir) else {
        return status_with(args, None);
    };
    let code = status_with(args, Some(&super::slurm::state_names(&slurm)))?;
    if !args.json {
        super::slurm::print_failures(&Plan::read(&args.exp_dir.join(plan::PLAN_FILE))?, &slurm);
    }
    Ok(code)
}

/// `mlab status` with what a scheduler knows of each run (by index), which
/// the Slurm executor passes; None for the local queue.
pub fn status_with(
    args: &StatusArgs,
    external: Option<&BTreeMap<usize, String>>,
) -> Result<ExitCode> {
    let plan = Plan::read(&args.exp_dir.join(plan::PLAN_FILE))?;
    let rows = status::rows(&plan, external);
    let counts = status::counts(&rows);
    if args.json {
        let counts: BTreeMap<&str, usize> = counts.iter().map(|(s, n)| (s.as_str(), *n)).collect();
        let holder = study::lock::holder(&plan.exp_dir).map(|h| h.to_string());
        let doc = serde_json::json!({"exp_dir": plan.exp_dir, "counts": counts, "study_command": holder, "runs": rows});
        ui::write_stdout(format_args!("{}\n", serde_json::to_string_pretty(&doc)?));
        return Ok(ExitCode::SUCCESS);
    }
    let line: Vec<String> = counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect();
    ui::write_stdout(format_args!(
        "{}: {} runs: {}\n",
        plan.exp_dir.display(),
        rows.len(),
        line.join(", ")
    ));
    if let Some(h) = study::lock::holder(&plan.exp_dir) {
        ui::write_stdout(format_args!("a study command is running on it ({h})\n"));
    }
    let with_external = rows.iter().any(|r| r.external.is_some());
    let mut header = vec!["#", "id", "state"];
    if with_external {
        header.push("scheduler");
    }
    header.extend(["steps", "exit reason", "score", "cost"]);
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut row = vec![
                r.index.to_string(),
                r.id.clone(),
                r.state.as_str().to_string(),
            ];
            if with_external {
                row.push(r.external.clone().unwrap_or_default());
            }
            row.extend([
                r.steps.map(|s| s.to_string()).unwrap_or_default(),
                r.exit_reason.clone().unwrap_or_default(),
                r.score.map(|s| format!("{s:.4}")).unwrap_or_default(),
                r.cost_usd.map(|c| format!("${c:.2}")).unwrap_or_default(),
            ]);
            row
        })
        .collect();
    let table = ui::table(&header, &table);
    let end = if table.ends_with('\n') { "" } else { "\n" };
    ui::write_stdout(format_args!("{table}{end}"));
    Ok(ExitCode::SUCCESS)
}

/// The keys of run.json's `flags` that the plan sets per run or per
/// configuration, or that a study refuses.
const NOT_COMMON: [&str; 6] = ["task", "seed", "log_dir", "work_dir", "agent", "llm"];

/// The arguments of `mlab run` that give `args` (its recorded flags turned
/// back into `--flag=value`), leaving out the keys in `skip`. Parsing them
/// gives the same flags (a unit test holds this).
pub fn argv_of(args: &RunArgs, skip: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let flags = args.recorded_flags();
    let Some(map) = flags.as_object() else {
        return out;
    };
    for (key, value) in map {
        if skip.contains(&key.as_str()) {
            continue;
        }
        let flag = format!("--{}", key.replace('_', "-"));
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        match value {
            serde_json::Value::Null | serde_json::Value::Bool(false) => {}
            serde_json::Value::Bool(true) => out.push(flag),
            serde_json::Value::Array(items) => {
                for i in items {
                    if let Some(t) = text(i) {
                        out.push(format!("{flag}={t}"));
                    }
                }
            }
            v => {
                if let Some(t) = text(v) {
                    out.push(format!("{flag}={t}"));
                }
            }
        }
    }
    out
}

/// `mlab run` as a study: plans, writes plan.json, runs the queue.
pub fn run_study(global: &GlobalArgs, args: &RunArgs) -> Result<ExitCode> {
    let (spec, settings) = match &args.study.plan {
        Some(file) => from_plan_file(global, args, file)?,
        None => from_flags(global, args)?,
    };
    args.study.slurm.options()?;
    let plan = plan::build(&spec)?;
    // Held until this command ends; refuses a second study command on the
    // same folder before it writes or starts anything.
    let _lock = study::lock::lock(&plan.exp_dir)?;
    let plan = plan.write()?;
    if args.study.slurm.executor == super::slurm::Executor::Slurm {
        super::slurm::warn_local_only(&settings.devices, args.study.jobs);
        return super::slurm::submit_study(&plan, &args.study.slurm);
    }
    drive(&plan, &settings)
}

/// How the queue runs a study.
#[derive(Debug, Clone)]
pub struct Settings {
    pub jobs: usize,
    pub devices: Vec<String>,
    pub runs_per_device: usize,
    pub retry_infra: u32,
    pub max_cost: Option<f64>,
    /// Each run's --max-steps, for the progress lines.
    pub max_steps: u64,
}

fn refuse_single_run_flags(args: &RunArgs) -> Result<()> {
    let refused = [
        (args.dir.is_some(), "--dir"),
        (args.resume.is_some(), "--resume"),
        (args.resume_step.is_some(), "--resume-step"),
        (args.interactive, "--interactive"),
        (args.work_dir.is_some(), "--work-dir"),
    ];
    for (given, flag) in refused {
        if given {
            bail!(
                "{flag} applies to one run, not to a study: leave it out (a study gives each run its own log folder and workspace, and resumes interrupted runs when run again)"
            );
        }
    }
    Ok(())
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// The global flags every run needs: the benchmarks folder, absolute.
fn global_args(global: &GlobalArgs) -> Result<Vec<String>> {
    let root = mlab::task::discover::benchmarks_root(&(global.into()))?;
    Ok(vec![
        "--benchmarks-dir".into(),
        mlab::env::workspace::absolute(&root).display().to_string(),
    ])
}

fn task_specs(global: &GlobalArgs, names: &[String]) -> Result<Vec<TaskSpec>> {
    let root = mlab::task::discover::benchmarks_root(&(global.into()))?;
    names
        .iter()
        .map(|n| {
            let t = mlab::task::discover::find_task(&root, n)?;
            Ok(TaskSpec {
                name: n.clone(),
                gpu: t.spec.requires.gpu,
            })
        })
        .collect()
}

/// The label `mlab eval` groups the runs of `args` under (run.json
/// `config`), as the run itself will record it.
fn label_of(args: &RunArgs, agent: AgentKind) -> Result<String> {
    let mut label = mlab::llm::config_identity(agent.as_str(), &args.llm.config(None));
    let named = args
        .llm
        .config_name
        .as_deref()
        .is_some_and(|n| !n.trim().is_empty());
    if let (Some(dir), false) = (&args.prompts, named) {
        let set = mlab::prompts::PromptSet::load(dir)?;
        if !set.is_default() {
            label = format!("{label} [prompts {}]", set.name());
        }
    }
    Ok(label)
}

/// Refuses, before anything is planned, a configuration whose runs would
/// all fail at their start (an agent without the model it needs, a bad
/// actions file).
fn check_config(global: &GlobalArgs, one: &RunArgs, label: &str) -> Result<()> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let config = one.config(global, flag);
    mlab::agent::check(&config.agent, one.llm.llm.is_some())
        .with_context(|| format!("the study's configuration {label} cannot run"))?;
    Ok(())
}

fn settings_of(args: &RunArgs) -> Settings {
    let s = &args.study;
    Settings {
        jobs: s.jobs.unwrap_or_else(default_jobs).max(1),
        devices: s.devices.clone(),
        runs_per_device: s.runs_per_device.max(1),
        retry_infra: s.retry_infra,
        max_cost: args.llm.max_cost,
        max_steps: args.max_steps,
    }
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The study of `mlab run --task a,b --llm m1,m2 --agent x,y --runs N`.
fn from_flags(global: &GlobalArgs, args: &RunArgs) -> Result<(PlanSpec, Settings)> {
    refuse_single_run_flags(args)?;
    let tasks = split_list(args.task.as_deref().unwrap_or_default());
    let models: Vec<Option<String>> = match args.llm.llm.as_deref() {
        Some(l) => split_list(l).into_iter().map(Some).collect(),
        None => vec![None],
    };
    let mut configs = Vec::new();
    for &agent in &args.agent {
        for model in &models {
            let mut one = RunArgs::parse_like(args)?;
            one.agent = vec![agent];
            one.llm.llm = model.clone();
            let mut cargs = vec![format!("--agent={}", agent.as_str())];
            if let Some(m) = model {
                cargs.push(format!("--llm={m}"));
            }
            let name = label_of(&one, agent)?;
            check_config(global, &one, &name)?;
            configs.push(ConfigSpec {
                name,
                agent: agent.as_str().to_string(),
                llm: model.clone(),
                args: cargs,
            });
        }
    }
    let mut skip = NOT_COMMON.to_vec();
    if !args.study.devices.is_empty() {
        skip.push("device");
    }
    let runs = args.study.runs.unwrap_or(1);
    let exp_dir = args
        .study
        .exp_dir
        .clone()
        .unwrap_or_else(|| args.log_dir.clone());
    let spec = PlanSpec {
        exp_dir,
        global_args: global_args(global)?,
        tasks: task_specs(global, &tasks)?,
        configs,
        seeds: (0..runs).map(|i| args.seed + i).collect(),
        common_args: argv_of(args, &skip),
    };
    Ok((spec, settings_of(args)))
}

/// plan.toml (docs/studies.md).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    pub exp_dir: Option<PathBuf>,
    pub tasks: Vec<String>,
    /// Seeds seed, seed+1, ..., seed+runs-1 (or `seeds` itself).
    pub runs: Option<u64>,
    pub seed: Option<u64>,
    pub seeds: Option<Vec<u64>>,
    pub jobs: Option<usize>,
    #[serde(default)]
    pub devices: Vec<String>,
    pub runs_per_device: Option<usize>,
    pub retry_infra: Option<u32>,
    /// Flags of `mlab run` for every run.
    #[serde(default)]
    pub args: Vec<String>,
    pub configs: Vec<PlanFileConfig>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFileConfig {
    #[serde(default = "research")]
    pub agent: String,
    pub llm: Option<String>,
    /// Flags of `mlab run` for this configuration's runs only.
    #[serde(default)]
    pub args: Vec<String>,
}

fn research() -> String {
    "research".into()
}

impl PlanFile {
    pub fn read(path: &Path) -> Result<PlanFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read the plan file {}", path.display()))?;
        toml::from_str(&text).with_context(|| {
            format!(
                "{} is not a plan file (docs/studies.md lists its keys)",
                path.display()
            )
        })
    }
}

/// The study of `mlab run --plan exp.toml` (the study flags given on the
/// command line override the file's).
fn from_plan_file(
    global: &GlobalArgs,
    args: &RunArgs,
    file: &Path,
) -> Result<(PlanSpec, Settings)> {
    let f = PlanFile::read(file)?;
    let Some(first) = f.tasks.first() else {
        bail!("{}: `tasks` names no task", file.display());
    };
    let mut configs = Vec::new();
    let mut max_steps = 50;
    let mut max_cost = None;
    for c in &f.configs {
        let mut cargs = vec![format!("--agent={}", c.agent)];
        if let Some(m) = &c.llm {
            cargs.push(format!("--llm={m}"));
        }
        cargs.extend(c.args.iter().cloned());
        let argv = ["mlab", "run", "--task", first]
            .into_iter()
            .map(String::from)
            .chain(f.args.iter().cloned())
            .chain(cargs.iter().cloned());
        let cli = Cli::try_parse_from(argv).with_context(|| {
            format!(
                "{}: the flags of the config with agent {} are not valid flags of `mlab run`",
                file.display(),
                c.agent
            )
        })?;
        let Command::Run(one) = cli.command else {
            bail!("not a run");
        };
        refuse_single_run_flags(&one)?;
        max_steps = one.max_steps;
        max_cost = max_cost.or(one.llm.max_cost);
        let name = label_of(&one, one.agent[0])?;
        check_config(global, &one, &name)?;
        configs.push(ConfigSpec {
            name,
            agent: one.agent[0].as_str().to_string(),
            llm: c.llm.clone(),
            args: cargs,
        });
    }
    let base = f.plan_relative(file);
    let seeds = match &f.seeds {
        Some(s) => s.clone(),
        None => (0..f.runs.unwrap_or(1))
            .map(|i| f.seed.unwrap_or(0) + i)
            .collect(),
    };
    let s = &args.study;
    let exp_dir = s
        .exp_dir
        .clone()
        .or_else(|| f.exp_dir.as_ref().map(|d| base.join(d)))
        .unwrap_or_else(|| args.log_dir.clone());
    let spec = PlanSpec {
        exp_dir,
        global_args: global_args(global)?,
        tasks: task_specs(global, &f.tasks)?,
        configs,
        seeds,
        common_args: f.args.clone(),
    };
    let mut settings = settings_of(args);
    settings.max_steps = max_steps;
    // --max-cost in the file's flags caps the study as on the command line.
    settings.max_cost = settings.max_cost.or(max_cost);
    if s.jobs.is_none() {
        if let Some(j) = f.jobs {
            settings.jobs = j.max(1);
        }
    }
    if s.devices.is_empty() {
        settings.devices = f.devices.clone();
    }
    if let (Some(k), 1) = (f.runs_per_device, s.runs_per_device) {
        settings.runs_per_device = k.max(1);
    }
    if let (Some(n), 0) = (f.retry_infra, s.retry_infra) {
        settings.retry_infra = n;
    }
    Ok((spec, settings))
}

impl PlanFile {
    /// The folder relative paths of the file are read from (its own).
    fn plan_relative(&self, file: &Path) -> PathBuf {
        file.parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

impl RunArgs {
    /// A copy of `args` (through its command line), to change per
    /// configuration.
    fn parse_like(args: &RunArgs) -> Result<RunArgs> {
        let mut argv = vec!["mlab".to_string(), "run".to_string()];
        argv.extend(argv_of(args, &[]));
        let cli = Cli::try_parse_from(argv).context("could not copy the run's flags")?;
        match cli.command {
            Command::Run(a) => Ok(*a),
            _ => bail!("not a run"),
        }
    }
}

/// Runs the plan's runs through the local queue, with live progress.
fn drive(plan: &Plan, settings: &Settings) -> Result<ExitCode> {
    // First: every thread started later (progress drawing) inherits the
    // blocked signals.
    let (stop, abort) = queue::install_signals()?;
    let todo = queue::todo(plan, settings.retry_infra);
    if todo.is_empty() && queue::held(plan).is_empty() {
        let rows = status::rows(plan, None);
        let finished = rows.iter().filter(|r| r.state == State::Finished).count();
        let mut line = format!("nothing to do: {finished} runs finished");
        let others: Vec<String> = status::counts(&rows)
            .into_iter()
            .filter(|(s, n)| *s != State::Finished && *n > 0)
            .map(|(s, n)| format!("{n} {}", s.as_str()))
            .collect();
        if !others.is_empty() {
            line.push_str(&format!(
                " ({}; --retry-infra N runs infrastructure failures again)",
                others.join(", ")
            ));
        }
        ui::info(format!(
            "{line}; see `mlab status {}`",
            plan.exp_dir.display()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    ui::info(format!(
        "study {}: {} runs, {} to make now, up to {} at once{}",
        plan.exp_dir.display(),
        plan.runs.len(),
        todo.len(),
        settings.jobs,
        if settings.devices.is_empty() {
            String::new()
        } else {
            format!(
                " (GPU runs on devices {}, {} per device)",
                settings.devices.join(","),
                settings.runs_per_device
            )
        }
    ));
    let cfg = QueueConfig {
        exe: std::env::current_exe()
            .context("could not find the mlab program to start runs with")?,
        jobs: settings.jobs,
        devices: settings.devices.clone(),
        runs_per_device: settings.runs_per_device,
        retry_infra: settings.retry_infra,
        max_cost: settings.max_cost,
        stop,
        abort,
    };
    let mut live = Live::new(plan.runs.len(), settings.max_steps);
    let summary = queue::run(plan, &plan.path(), &cfg, &mut live)?;
    live.finish();
    let t = &summary.totals;
    let text = format!(
        "study {}: {} of {} runs finished, {} failed this time{}{}; `mlab status {}` shows each run, `mlab eval --log-folder {}` scores them",
        if summary.interrupted { "stopped" } else { "ended" },
        t.done,
        t.total,
        t.failed,
        if t.stopped > 0 {
            format!(", {} stopped (the same command resumes them)", t.stopped)
        } else {
            String::new()
        },
        if t.cost_usd > 0.0 { format!(", ${:.2} spent", t.cost_usd) } else { String::new() },
        plan.exp_dir.display(),
        plan.exp_dir.display()
    );
    if summary.interrupted || summary.over_budget || t.failed > 0 {
        ui::warn(text);
    } else {
        ui::info(text);
    }
    Ok(if summary.interrupted {
        ExitCode::from(130)
    } else if summary.over_budget || t.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Live progress: on a terminal, a line per active run and an overall bar
/// redrawn in place (indicatif); otherwise a line per start and end and a
/// summary every 10 seconds.
struct Live {
    max_steps: u64,
    draw: Option<(MultiProgress, ProgressBar)>,
    bars: BTreeMap<usize, ProgressBar>,
    last_plain: Instant,
}

impl Live {
    fn new(total: usize, max_steps: u64) -> Live {
        use std::io::IsTerminal;
        let draw = std::io::stderr().is_terminal().then(|| {
            let multi = MultiProgress::new();
            let overall = multi.add(ProgressBar::new(total as u64));
            overall.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} (ETA {eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let printer = multi.clone();
            ui::set_stderr_sink(Some(Box::new(move |line| {
                let _ = printer.println(line);
            })));
            (multi, overall)
        });
        Live {
            max_steps,
            draw,
            bars: BTreeMap::new(),
            last_plain: Instant::now(),
        }
    }

    fn overall_text(t: &Totals) -> String {
        let mut s = format!(
            "{} done, {} failed, {} running",
            t.done, t.failed, t.running
        );
        if t.stopped > 0 {
            s.push_str(&format!(", {} stopped", t.stopped));
        }
        if t.cost_usd > 0.0 {
            s.push_str(&format!(", ${:.2}", t.cost_usd));
        }
        s
    }

    fn finish(&mut self) {
        ui::set_stderr_sink(None);
        for (_, b) in std::mem::take(&mut self.bars) {
            b.finish_and_clear();
        }
        if let Some((_, overall)) = &self.draw {
            overall.finish();
        }
    }
}

/// One active run's line: id, device, step/max, last action, tokens,
/// cost, elapsed.
fn run_line(a: &queue::Active<'_>, max_steps: u64) -> String {
    progress_text(
        &a.run.id,
        a.device.as_deref(),
        &a.progress,
        max_steps,
        a.elapsed,
    )
}

/// The progress line of a run, for a study's active runs and a single run
/// alike.
fn progress_text(
    name: &str,
    device: Option<&str>,
    p: &mlab::study::progress::Snapshot,
    max_steps: u64,
    elapsed: Duration,
) -> String {
    let mut s = format!("{name} step {}/{max_steps}", p.steps);
    if let Some(d) = device {
        s = format!("{s} [device {d}]");
    }
    if let Some(act) = &p.last_action {
        s.push_str(&format!(" {act}"));
    }
    let tokens = p.input_tokens + p.output_tokens;
    if tokens > 0 {
        s.push_str(&format!(" {tokens} tok ${:.2}", p.cost_usd));
    }
    let secs = elapsed.as_secs();
    s.push_str(&format!(
        " {}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    ));
    s
}

/// A single run's progress line on a terminal (the same line a study shows
/// for each run), redrawn in place below the run's own messages until it
/// is dropped. None when stderr is not a terminal or the run talks with
/// the person at it (--interactive).
pub struct RunLine {
    bar: ProgressBar,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts the line of one run logging to `log_dir`.
pub fn run_line_for(
    name: &str,
    log_dir: &Path,
    max_steps: u64,
    interactive: bool,
) -> Option<RunLine> {
    use std::io::IsTerminal;
    use std::sync::atomic::{AtomicBool, Ordering};
    if interactive || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    let printer = bar.clone();
    ui::set_stderr_sink(Some(Box::new(move |line| printer.println(line))));
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let (b, s, name) = (bar.clone(), stop.clone(), name.to_string());
    let mut watch = mlab::study::progress::Watch::new(log_dir);
    let started = Instant::now();
    let thread = std::thread::Builder::new()
        .name("run-progress".into())
        .spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let p = watch.poll().clone();
                b.set_message(progress_text(&name, None, &p, max_steps, started.elapsed()));
                b.tick();
                std::thread::sleep(Duration::from_millis(250));
            }
        })
        .ok();
    Some(RunLine { bar, stop, thread })
}

impl Drop for RunLine {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        ui::set_stderr_sink(None);
        self.bar.finish_and_clear();
    }
}

impl queue::Observer for Live {
    fn started(&mut self, run: &PlannedRun, device: Option<&str>, attempt: u32) {
        let what = match (device, attempt) {
            (Some(d), 0) => format!("started {} on device {d}", run.id),
            (None, 0) => format!("started {}", run.id),
            (Some(d), n) => format!("started {} on device {d} (retry {n})", run.id),
            (None, n) => format!("started {} (retry {n})", run.id),
        };
        match &self.draw {
            Some((multi, _)) => {
                let bar = multi.insert_from_back(1, ProgressBar::new_spinner());
                bar.set_message(what);
                self.bars.insert(run.index, bar);
            }
            None => ui::info(what),
        }
    }

    fn tick(&mut self, active: &[queue::Active<'_>], totals: &Totals) {
        match &self.draw {
            Some((_, overall)) => {
                for a in active {
                    if let Some(b) = self.bars.get(&a.run.index) {
                        b.set_message(run_line(a, self.max_steps));
                        b.tick();
                    }
                }
                overall.set_message(Self::overall_text(totals));
            }
            None => {
                if self.last_plain.elapsed() >= Duration::from_secs(10) {
                    self.last_plain = Instant::now();
                    let mut text = format!(
                        "progress: {} of {}",
                        Self::overall_text(totals),
                        totals.total
                    );
                    for a in active {
                        text.push_str(&format!("\n  {}", run_line(a, self.max_steps)));
                    }
                    ui::info(text);
                }
            }
        }
    }

    fn ended(&mut self, run: &PlannedRun, ended: &Ended, totals: &Totals) {
        let text = format!(
            "ended {}: {} after {} steps{}",
            run.id,
            ended.state.as_str(),
            ended.steps,
            match ended.code {
                Some(0) => String::new(),
                Some(c) => format!(
                    " (exit code {c}; see {}/run-one.log)",
                    run.log_dir.display()
                ),
                None => format!(" (killed; see {}/run-one.log)", run.log_dir.display()),
            }
        );
        match &self.draw {
            Some((multi, overall)) => {
                if let Some(b) = self.bars.remove(&run.index) {
                    b.finish_and_clear();
                    multi.remove(&b);
                }
                let _ = multi.println(text);
                overall.set_message(Self::overall_text(totals));
                overall.set_position((totals.done + totals.failed) as u64);
            }
            None => ui::info(text),
        }
    }

    fn note(&mut self, text: &str) {
        match &self.draw {
            Some((multi, _)) => {
                let _ = multi.println(format!("mlab: {text}"));
            }
            None => ui::info(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> RunArgs {
        let cli = Cli::try_parse_from(argv).unwrap();
        match cli.command {
            Command::Run(a) => *a,
            _ => panic!("not a run"),
        }
    }

    #[test]
    fn argv_of_gives_back_the_same_flags() {
        let a = parse(&[
            "mlab",
            "run",
            "--task",
            "toy",
            "--llm",
            "openai:gpt-4o",
            "--fast-llm",
            "claude-3",
            "--max-steps",
            "7",
            "--max-time",
            "12.5",
            "--retrieval",
            "--mem-limit",
            "512M",
            "--sandbox",
            "none",
            "--valid-format-entires",
            "Thought",
            "Action",
            "Action Input",
            "--actions-add-to-prompt",
            "Reflection",
            "--agent",
            "simple",
            "--max-cost",
            "2.5",
            "--tool-choice",
            "auto",
            "--device=-1",
        ]);
        let mut argv = vec!["mlab".to_string(), "run".to_string()];
        argv.extend(argv_of(&a, &[]));
        let b = parse(&argv.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(a.recorded_flags(), b.recorded_flags());
    }

    #[test]
    fn lists_make_a_study_and_a_plain_run_is_not_one() {
        let one = parse(&["mlab", "run", "--task", "t", "--llm", "m"]);
        assert!(!one.study.is_study(&one));
        for extra in [
            &["--task", "a,b"][..],
            &["--llm", "m1,m2"],
            &["--agent", "research,simple"],
            &["--runs", "2"],
            &["--jobs", "2"],
            &["--devices", "0,1"],
            &["--exp-dir", "x"],
        ] {
            let mut v: Vec<&str> = vec!["mlab", "run"];
            if !extra.contains(&"--task") {
                v.extend(["--task", "t"]);
            }
            v.extend(extra);
            let a = parse(&v);
            assert!(a.study.is_study(&a), "{extra:?}");
        }
    }

    #[test]
    fn the_plan_file_of_docs_studies_md_parses() {
        let doc = include_str!("../../docs/studies.md");
        let start = doc.find("```toml\n").unwrap() + "```toml\n".len();
        let end = start + doc[start..].find("```").unwrap();
        let f: PlanFile = toml::from_str(&doc[start..end]).unwrap();
        assert_eq!(f.tasks.len(), 2);
        assert_eq!(f.configs.len(), 2);
        assert!(f.runs.is_some());
    }

    #[test]
    fn a_progress_line_names_the_run_its_step_action_tokens_cost_and_time() {
        let p = mlab::study::progress::Snapshot {
            steps: 3,
            last_action: Some("Execute Script".into()),
            input_tokens: 100,
            output_tokens: 20,
            cost_usd: 0.5,
            ended: None,
        };
        let line = progress_text("toy/cfg/0", Some("1"), &p, 50, Duration::from_secs(3725));
        assert_eq!(
            line,
            "toy/cfg/0 step 3/50 [device 1] Execute Script 120 tok $0.50 1:02:05"
        );
    }
}
