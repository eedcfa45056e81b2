//! A study's plan: the cross product tasks x configs x seeds, each run with
//! a stable id (`<task>/<config dir>/<seed>`), its own log folder under the
//! experiment folder, and the arguments of `mlab run` that make it.
//!
//! `<exp-dir>/plan.json` is the interface between planning and running:
//! the local queue, `mlab run-one` and Slurm array jobs all read it (the
//! fields are fixed by the contract in docs/studies.md). Nothing here knows
//! clap: the front end turns flags (or plan.toml) into a [`PlanSpec`].

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// plan.json's format version.
pub const VERSION: u32 = 1;

/// The file name of the plan inside the experiment folder.
pub const PLAN_FILE: &str = "plan.json";

/// `<exp-dir>/plan.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub version: u32,
    /// The experiment folder (absolute).
    pub exp_dir: PathBuf,
    /// When this plan was first written (RFC 3339).
    pub created: String,
    /// mlab's global flags every run needs (`--benchmarks-dir DIR`), put
    /// before `run` on each run's command line.
    pub global_args: Vec<String>,
    pub configs: Vec<ConfigEntry>,
    pub runs: Vec<PlannedRun>,
}

/// One configuration of the study: an agent with its models and flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigEntry {
    /// The configuration's label, as run.json `config` records it and
    /// `mlab eval` groups by (`llm::config_identity`).
    pub name: String,
    /// The folder name of the label (`<exp-dir>/<task>/<dir>/<seed>`).
    pub dir: String,
    pub agent: String,
    pub llm: Option<String>,
    /// This configuration's own arguments of `mlab run` (`--agent`,
    /// `--llm`, ...), part of each of its runs' `args`.
    pub args: Vec<String>,
}

/// One run of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedRun {
    /// Its place in `runs` (and its Slurm array index).
    pub index: usize,
    /// `<task>/<config dir>/<seed>`: its log folder relative to the
    /// experiment folder.
    pub id: String,
    pub task: String,
    /// The configuration's label ([`ConfigEntry::name`]).
    pub config: String,
    pub seed: u64,
    /// Its log folder (absolute); the workspace is `<log_dir>.workspace`.
    pub log_dir: PathBuf,
    /// The task needs a GPU (task.toml `requires.gpu`): the run holds one
    /// device for its whole life.
    pub gpu: bool,
    /// The arguments of `mlab run` for this run (after `run`).
    pub args: Vec<String>,
}

/// A configuration to plan.
#[derive(Debug, Clone)]
pub struct ConfigSpec {
    /// Its label (see [`ConfigEntry::name`]).
    pub name: String,
    pub agent: String,
    pub llm: Option<String>,
    /// Its own arguments of `mlab run` (`--agent`, `--llm`, and any flag
    /// that differs between configurations).
    pub args: Vec<String>,
}

/// A task to plan.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    pub name: String,
    pub gpu: bool,
}

/// What the front end hands the planner.
#[derive(Debug, Clone)]
pub struct PlanSpec {
    /// The experiment folder (made absolute by [`build`]).
    pub exp_dir: PathBuf,
    pub global_args: Vec<String>,
    pub tasks: Vec<TaskSpec>,
    pub configs: Vec<ConfigSpec>,
    pub seeds: Vec<u64>,
    /// Arguments of `mlab run` common to every run (never `--task`,
    /// `--seed`, `--log-dir`, `--work-dir`, which the plan sets per run).
    pub common_args: Vec<String>,
}

/// The flags the plan sets for each run itself.
pub const PER_RUN_FLAGS: [&str; 4] = ["--task", "--seed", "--log-dir", "--work-dir"];

/// Plans the cross product, in the order tasks, then configs, then seeds.
pub fn build(spec: &PlanSpec) -> Result<Plan> {
    if spec.tasks.is_empty() {
        bail!("the study names no task: give --task a,b (or `tasks = [...]` in the plan file)");
    }
    if spec.configs.is_empty() {
        bail!("the study names no configuration: give --llm/--agent (or [[configs]] in the plan file)");
    }
    if spec.seeds.is_empty() {
        bail!("the study has no seeds: --runs must be at least 1");
    }
    for a in spec
        .common_args
        .iter()
        .chain(spec.configs.iter().flat_map(|c| &c.args))
    {
        let flag = a.split('=').next().unwrap_or(a);
        if PER_RUN_FLAGS.contains(&flag) {
            bail!("{flag} is set by the plan for each run; leave it out of the study's arguments");
        }
    }
    let exp_dir = crate::env::workspace::absolute(&spec.exp_dir);
    let dirs = config_dirs(&spec.configs);
    let mut seen = std::collections::BTreeSet::new();
    let mut configs = Vec::new();
    for (c, dir) in spec.configs.iter().zip(&dirs) {
        if !seen.insert(c.name.clone()) {
            bail!(
                "two configurations of the study have the same label {:?}; give them different models or agents, or name them (--config-name in their args)",
                c.name
            );
        }
        configs.push(ConfigEntry {
            name: c.name.clone(),
            dir: dir.clone(),
            agent: c.agent.clone(),
            llm: c.llm.clone(),
            args: c.args.clone(),
        });
    }
    let mut runs = Vec::new();
    for task in &spec.tasks {
        for config in &configs {
            for &seed in &spec.seeds {
                let id = format!("{}/{}/{seed}", task.name, config.dir);
                let log_dir = exp_dir.join(&id);
                let mut args = spec.common_args.clone();
                args.extend(config.args.iter().cloned());
                args.extend([
                    "--task".to_string(),
                    task.name.clone(),
                    "--seed".to_string(),
                    seed.to_string(),
                    "--log-dir".to_string(),
                    log_dir.display().to_string(),
                ]);
                runs.push(PlannedRun {
                    index: runs.len(),
                    id,
                    task: task.name.clone(),
                    config: config.name.clone(),
                    seed,
                    log_dir,
                    gpu: task.gpu,
                    args,
                });
            }
        }
    }
    Ok(Plan {
        version: VERSION,
        exp_dir,
        created: chrono::Utc::now().to_rfc3339(),
        global_args: spec.global_args.clone(),
        configs,
        runs,
    })
}

/// A label as a folder name: letters, digits, `.`, `_` and `-` kept, every
/// other run of characters one `-` ("research (openai:gpt-4o)" ->
/// "research-openai-gpt-4o").
pub fn dir_name(label: &str) -> String {
    let mut out = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches(|c| c == '-' || c == '.').to_string();
    if out.is_empty() {
        "config".into()
    } else {
        out
    }
}

/// Each configuration's folder name, made unique by a `-2`, `-3`... in plan
/// order when two labels give the same name.
fn config_dirs(configs: &[ConfigSpec]) -> Vec<String> {
    let mut used = std::collections::BTreeSet::new();
    configs
        .iter()
        .map(|c| {
            let base = dir_name(&c.name);
            let mut name = base.clone();
            let mut n = 2;
            while !used.insert(name.clone()) {
                name = format!("{base}-{n}");
                n += 1;
            }
            name
        })
        .collect()
}

impl Plan {
    /// `<exp-dir>/plan.json`.
    pub fn path(&self) -> PathBuf {
        self.exp_dir.join(PLAN_FILE)
    }

    /// Reads a plan.json.
    pub fn read(path: &Path) -> Result<Plan> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "could not read the plan {}; give the plan.json of an experiment folder (`mlab run --exp-dir DIR ...` writes it)",
                path.display()
            )
        })?;
        let plan: Plan = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a plan this mlab can read", path.display()))?;
        if plan.version != VERSION {
            bail!(
                "{} is a plan of version {}; this mlab reads version {VERSION}",
                path.display(),
                plan.version
            );
        }
        Ok(plan)
    }

    /// Writes the plan as `<exp-dir>/plan.json`. An earlier plan with the
    /// same runs is kept as it is (with its `created`), so that running
    /// the same command again changes nothing; one with other runs is
    /// kept beside it as `plan.<its created time>.json`. Returns the plan
    /// now on disk.
    pub fn write(self) -> Result<Plan> {
        let path = self.path();
        std::fs::create_dir_all(&self.exp_dir)
            .with_context(|| format!("could not create {}", self.exp_dir.display()))?;
        if path.exists() {
            if let Ok(old) = Plan::read(&path) {
                if old.runs == self.runs
                    && old.configs == self.configs
                    && old.global_args == self.global_args
                {
                    return Ok(old);
                }
                let kept = self.exp_dir.join(format!(
                    "plan.{}.json",
                    old.created.replace([':', '+'], "-")
                ));
                std::fs::rename(&path, &kept)
                    .with_context(|| format!("could not keep the earlier {}", path.display()))?;
                crate::ui::warn(format!(
                    "the study's runs changed; the earlier plan is kept as {}",
                    kept.display()
                ));
            }
        }
        let text = serde_json::to_string_pretty(&self)?;
        crate::env::trace::write_atomic(&path, text.as_bytes())?;
        Ok(self)
    }

    /// The run at `index`, or a message saying which indexes there are.
    pub fn run(&self, index: usize) -> Result<&PlannedRun> {
        self.runs.get(index).with_context(|| {
            format!(
                "the plan {} has runs 0 to {} only; --index {index} is not one of them",
                self.path().display(),
                self.runs.len().saturating_sub(1)
            )
        })
    }

    /// The command line of `mlab` (after the program name) that runs
    /// `run`: the global flags, `run`, its arguments, and the device when
    /// one is given (replacing a `--device` of its arguments).
    pub fn command_line(&self, run: &PlannedRun, device: Option<&str>) -> Vec<String> {
        let mut argv = self.global_args.clone();
        argv.push("run".into());
        let mut args = run.args.clone();
        if let Some(d) = device {
            set_flag(&mut args, "--device", d);
        }
        argv.extend(args);
        argv
    }
}

/// Sets `flag` to `value` in an argument list: replaces its value where it
/// is given (`--flag v` or `--flag=v`), else appends it.
pub fn set_flag(args: &mut Vec<String>, flag: &str, value: &str) {
    let eq = format!("{flag}=");
    let mut i = 0;
    while i < args.len() {
        if args[i] == flag && i + 1 < args.len() {
            args[i + 1] = value.to_string();
            return;
        }
        if args[i].starts_with(&eq) {
            args[i] = format!("{flag}={value}");
            return;
        }
        i += 1;
    }
    args.push(flag.to_string());
    args.push(value.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(exp: &Path) -> PlanSpec {
        PlanSpec {
            exp_dir: exp.to_path_buf(),
            global_args: vec!["--benchmarks-dir".into(), "/b".into()],
            tasks: vec![
                TaskSpec {
                    name: "a".into(),
                    gpu: false,
                },
                TaskSpec {
                    name: "b".into(),
                    gpu: true,
                },
            ],
            configs: vec![
                ConfigSpec {
                    name: "research (openai:gpt-4o)".into(),
                    agent: "research".into(),
                    llm: Some("openai:gpt-4o".into()),
                    args: vec![
                        "--agent".into(),
                        "research".into(),
                        "--llm".into(),
                        "openai:gpt-4o".into(),
                    ],
                },
                ConfigSpec {
                    name: "baseline".into(),
                    agent: "baseline".into(),
                    llm: None,
                    args: vec!["--agent".into(), "baseline".into()],
                },
            ],
            seeds: vec![0, 1],
            common_args: vec!["--max-steps".into(), "5".into()],
        }
    }

    #[test]
    fn the_plan_is_the_cross_product_with_stable_ids_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let plan = build(&spec(dir.path())).unwrap();
        let ids: Vec<&str> = plan.runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "a/research-openai-gpt-4o/0",
                "a/research-openai-gpt-4o/1",
                "a/baseline/0",
                "a/baseline/1",
                "b/research-openai-gpt-4o/0",
                "b/research-openai-gpt-4o/1",
                "b/baseline/0",
                "b/baseline/1"
            ]
        );
        let again = build(&spec(dir.path())).unwrap();
        assert_eq!(again.runs, plan.runs);
        let r = &plan.runs[5];
        assert_eq!(r.index, 5);
        assert!(r.gpu);
        assert_eq!(r.config, "research (openai:gpt-4o)");
        assert_eq!(r.log_dir, plan.exp_dir.join("b/research-openai-gpt-4o/1"));
        assert!(plan.exp_dir.is_absolute());
        let line = plan.command_line(r, Some("3"));
        assert_eq!(&line[..3], ["--benchmarks-dir", "/b", "run"]);
        assert!(line.windows(2).any(|w| w == ["--seed", "1"]));
        assert!(line.windows(2).any(|w| w == ["--device", "3"]));
        assert!(line.windows(2).any(|w| w == ["--task", "b"]));
    }

    #[test]
    fn plan_json_round_trips_and_an_unchanged_plan_is_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let plan = build(&spec(dir.path())).unwrap().write().unwrap();
        let read = Plan::read(&plan.path()).unwrap();
        assert_eq!(read, plan);
        let mut again = build(&spec(dir.path())).unwrap();
        again.created = "later".into();
        let kept = again.write().unwrap();
        assert_eq!(kept.created, plan.created);
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(plan.path()).unwrap()).unwrap();
        for key in [
            "version",
            "exp_dir",
            "created",
            "global_args",
            "configs",
            "runs",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        for key in [
            "index", "id", "task", "config", "seed", "log_dir", "gpu", "args",
        ] {
            assert!(v["runs"][0].get(key).is_some(), "{key}");
        }
    }

    #[test]
    fn a_changed_plan_keeps_the_earlier_one_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        build(&spec(dir.path())).unwrap().write().unwrap();
        let mut s = spec(dir.path());
        s.seeds = vec![0, 1, 2];
        let plan = build(&s).unwrap().write().unwrap();
        assert_eq!(Plan::read(&plan.path()).unwrap().runs.len(), 12);
        let kept: Vec<_> = std::fs::read_dir(&plan.exp_dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("plan."))
            .collect();
        assert_eq!(kept.len(), 2, "plan.json and the kept one");
    }

    #[test]
    fn flags_the_plan_sets_per_run_are_refused_in_common_args() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(dir.path());
        s.common_args = vec!["--log-dir=x".into()];
        let e = build(&s).unwrap_err().to_string();
        assert!(e.contains("--log-dir"), "{e}");
    }

    #[test]
    fn labels_become_folder_names_that_stay_apart() {
        assert_eq!(
            dir_name("research (gpt-4o; fast gpt-4o-mini)"),
            "research-gpt-4o-fast-gpt-4o-mini"
        );
        assert_eq!(
            dir_name("research (openai:meta/llama3)"),
            "research-openai-meta-llama3"
        );
        assert_eq!(dir_name("../.."), "config");
        let c = |n: &str| ConfigSpec {
            name: n.into(),
            agent: "x".into(),
            llm: None,
            args: vec![],
        };
        assert_eq!(
            config_dirs(&[c("a b"), c("a:b"), c("a-b")]),
            ["a-b", "a-b-2", "a-b-3"]
        );
    }

    #[test]
    fn set_flag_replaces_or_appends() {
        let mut a = vec!["--device".to_string(), "0".into(), "--x".into()];
        set_flag(&mut a, "--device", "2");
        assert_eq!(a, ["--device", "2", "--x"]);
        let mut b = vec!["--device=0".to_string()];
        set_flag(&mut b, "--device", "1");
        assert_eq!(b, ["--device=1"]);
        let mut c = vec![];
        set_flag(&mut c, "--device", "1");
        assert_eq!(c, ["--device", "1"]);
    }
}
