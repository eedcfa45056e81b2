//! The two policies mlab uses: one for code the agent causes to run
//! (Execute Script, the Python REPL, helpers that run code) and one for
//! graders (script/eval.py on a snapshot).
//!
//! Both hide the user's home, mlab's own folder (installed tasks) and key
//! files, and give back only what the command needs: the Python
//! environment read-only, and for graders the answers read-only. The
//! environment is built from a whitelist, so API keys, MLAB_* and run ids
//! never reach the command.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Bind, Policy};
use crate::paths;

/// Process limit when the caller gives none: high enough for data loaders
/// and BLAS thread pools (threads count too), low enough that a fork bomb
/// cannot exhaust the machine.
pub const DEFAULT_MAX_PROCS: u64 = 4096;

/// The search path inside, after the Python environment's bin/.
const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Key files the original runner read from its working directory.
const KEY_FILES: &[&str] = &[
    "openai_api_key.txt",
    "claude_api_key.txt",
    "crfm_api_key.txt",
];

/// Host variables passed through unchanged when set: locale, time zone and
/// thread counts, none of which identify the user or the run.
const PASS_THROUGH: &[&str] = &[
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
];

/// What the agent's commands get; see [`agent_policy`].
#[derive(Debug, Clone, Default)]
pub struct AgentSetup {
    /// The run's workspace: the working directory, read-write, and $HOME.
    pub workspace: PathBuf,
    /// Read-only task files, usually bound from the prepared task into the
    /// workspace (dest inside it) so that they are never copied.
    pub read_only: Vec<Bind>,
    /// Paths to make invisible: the task's script/ (answers), the run's log
    /// folder, other tasks. The home folder and key files are added.
    pub hidden: Vec<PathBuf>,
    /// The task Python: an interpreter path or a venv folder. Its
    /// environment is made visible read-only even where it lies in a hidden
    /// folder; its bin/ leads PATH.
    pub python: Option<PathBuf>,
    /// `--device`: CUDA_VISIBLE_DEVICES, and GPU device nodes are bound.
    pub device: Option<String>,
    pub timeout: Option<Duration>,
    pub mem_limit: Option<u64>,
    pub max_output: Option<u64>,
    /// Default [`DEFAULT_MAX_PROCS`].
    pub max_procs: Option<u64>,
}

/// The policy for code the agent causes to run.
pub fn agent_policy(setup: &AgentSetup) -> Policy {
    let workspace = absolute(&setup.workspace);
    let mut hidden = default_hidden();
    hidden.extend(setup.hidden.iter().cloned());
    let mut read_only = setup.read_only.clone();
    let venv = setup.python.as_deref().map(python_env);
    if let Some(env) = &venv {
        read_only.extend(visible_again(&env.dirs, &hidden));
    }
    let mut env = base_env(venv.as_ref());
    env.push(("HOME".into(), workspace.display().to_string()));
    if let Some(d) = &setup.device {
        env.push(("CUDA_VISIBLE_DEVICES".into(), d.clone()));
    }
    Policy {
        workdir: workspace,
        read_only,
        read_write: Vec::new(),
        hidden,
        env,
        timeout: setup.timeout,
        mem_limit: setup.mem_limit,
        max_procs: Some(setup.max_procs.unwrap_or(DEFAULT_MAX_PROCS)),
        max_output: setup.max_output,
        network: false,
        gpu: setup.device.is_some(),
    }
}

/// The policy for a grader: `script/eval.py` scoring `snapshot`.
///
/// The snapshot, the task's script folder (answers included) and its
/// prepared data (`task_env_dir`) are visible read-only; the working
/// directory is the script folder, read-only too, and $HOME is the private
/// /tmp. No network. Code in the snapshot that the grader imports runs with
/// the same rights, so it cannot change the answers either. Limits are left
/// to the caller.
pub fn grader_policy(
    snapshot: &Path,
    script_dir: &Path,
    task_env_dir: &Path,
    python: Option<&Path>,
) -> Policy {
    let hidden = default_hidden();
    let mut read_only: Vec<Bind> = [snapshot, script_dir, task_env_dir]
        .iter()
        .map(|p| Bind {
            src: absolute(p),
            dest: absolute(p),
        })
        .collect();
    read_only.extend(shared_task_helpers(script_dir));
    let venv = python.map(python_env);
    if let Some(env) = &venv {
        read_only.extend(visible_again(&env.dirs, &hidden));
    }
    let mut env = base_env(venv.as_ref());
    env.push(("HOME".into(), "/tmp".into()));
    // The script folder is read-only: no point trying to write caches.
    env.push(("PYTHONDONTWRITEBYTECODE".into(), "1".into()));
    Policy {
        workdir: absolute(script_dir),
        read_only,
        read_write: Vec::new(),
        hidden,
        env,
        max_procs: Some(DEFAULT_MAX_PROCS),
        ..Policy::default()
    }
}

/// The benchmarks' shared Python helpers (`<benchmarks>/_common/`, beside
/// the task folder whose `script/` the grader runs), read-only: every
/// eval.py imports `mlab_eval` from there. The sandbox binds it at its real
/// path, where eval.py (`Path(__file__).resolve().parents[2]`) looks. None
/// when the folder is absent.
fn shared_task_helpers(script_dir: &Path) -> Option<Bind> {
    let script = absolute(script_dir);
    let common = script.parent()?.parent()?.join("_common");
    common.is_dir().then(|| Bind {
        src: common.clone(),
        dest: common,
    })
}

/// `p` made absolute against the current directory (paths inside the
/// sandbox must not depend on where mlab was started).
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Home, mlab's home (the installed benchmarks: other tasks) and key files.
fn default_hidden() -> Vec<PathBuf> {
    let mut hidden = Vec::new();
    let home = paths::home_dir();
    if home != Path::new("/") {
        hidden.push(home);
    }
    hidden.push(paths::mlab_home());
    if let Ok(cwd) = std::env::current_dir() {
        for k in KEY_FILES {
            let p = cwd.join(k);
            if p.exists() {
                hidden.push(p);
            }
        }
    }
    if let Some(k) = std::env::var_os("KAGGLE_CONFIG_DIR").filter(|v| !v.is_empty()) {
        hidden.push(PathBuf::from(k));
    }
    hidden
}

/// A Python environment: its bin/ for PATH and the folders it reads.
struct PythonEnv {
    bin: Option<PathBuf>,
    dirs: Vec<PathBuf>,
}

/// Finds what `python` (an interpreter or a venv folder) needs to run: the
/// venv folder, and the base installation a venv points at (pyvenv.cfg's
/// `home`, and where the interpreter's symlinks lead), which tools like
/// pyenv keep under the home folder.
fn python_env(python: &Path) -> PythonEnv {
    let interp = if python.is_dir() {
        python.join("bin/python")
    } else if python.components().count() == 1 {
        which(python).unwrap_or_else(|| python.to_path_buf())
    } else {
        python.to_path_buf()
    };
    let bin = interp.parent().map(Path::to_path_buf);
    let mut dirs = Vec::new();
    let root = prefix_of(&interp);
    if let Some(root) = &root {
        dirs.push(root.clone());
        if let Ok(cfg) = std::fs::read_to_string(root.join("pyvenv.cfg")) {
            for line in cfg.lines() {
                if let Some((k, v)) = line.split_once('=') {
                    if k.trim() == "home" {
                        if let Some(p) = Path::new(v.trim()).parent() {
                            dirs.push(p.to_path_buf());
                        }
                    }
                }
            }
        }
    }
    if let Some(real) = std::fs::canonicalize(&interp)
        .ok()
        .and_then(|r| prefix_of(&r))
    {
        dirs.push(real);
    }
    dirs.sort();
    dirs.dedup();
    PythonEnv { bin, dirs }
}

/// The installation prefix of an interpreter: the parent of its bin/.
fn prefix_of(interp: &Path) -> Option<PathBuf> {
    let bin = interp.parent()?;
    if bin.file_name()? == "bin" {
        bin.parent().map(Path::to_path_buf)
    } else {
        Some(bin.to_path_buf())
    }
}

fn which(name: &Path) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Read-only binds for those of `dirs` that a hidden path would cover
/// (binding the rest would change nothing).
fn visible_again(dirs: &[PathBuf], hidden: &[PathBuf]) -> Vec<Bind> {
    dirs.iter()
        .filter(|d| d.as_path() != Path::new("/") && d.exists())
        .filter(|d| {
            let real = std::fs::canonicalize(d).unwrap_or_else(|_| d.to_path_buf());
            hidden.iter().any(|h| {
                let h = std::fs::canonicalize(h).unwrap_or_else(|_| h.clone());
                real.starts_with(&h) || d.starts_with(&h)
            })
        })
        .map(|d| Bind {
            src: d.clone(),
            dest: d.clone(),
        })
        .collect()
}

/// PATH (the Python environment's bin/ first), PYTHONUNBUFFERED and the
/// harmless host variables.
fn base_env(venv: Option<&PythonEnv>) -> Vec<(String, String)> {
    let path = match venv.and_then(|v| v.bin.as_ref()) {
        Some(bin) => format!("{}:{SYSTEM_PATH}", bin.display()),
        None => SYSTEM_PATH.to_string(),
    };
    let mut env = vec![
        ("PATH".to_string(), path),
        ("PYTHONUNBUFFERED".to_string(), "1".to_string()),
    ];
    for k in PASS_THROUGH {
        if let Some(v) = std::env::var_os(k).and_then(|v| v.into_string().ok()) {
            env.push((k.to_string(), v));
        }
    }
    if !env.iter().any(|(k, _)| k == "LANG") {
        env.push(("LANG".into(), "C.UTF-8".into()));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &Policy) -> Vec<&str> {
        p.env.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn agent_env_is_a_whitelist_with_home_in_the_workspace() {
        let p = agent_policy(&AgentSetup {
            workspace: "/w/ws".into(),
            device: Some("1".into()),
            ..AgentSetup::default()
        });
        let env: std::collections::HashMap<_, _> = p.env.iter().cloned().collect();
        assert_eq!(env["HOME"], "/w/ws");
        assert_eq!(env["PYTHONUNBUFFERED"], "1");
        assert_eq!(env["CUDA_VISIBLE_DEVICES"], "1");
        assert!(env.contains_key("PATH") && env.contains_key("LANG"));
        for k in names(&p) {
            assert!(
                PASS_THROUGH.contains(&k)
                    || ["PATH", "HOME", "PYTHONUNBUFFERED", "CUDA_VISIBLE_DEVICES"].contains(&k),
                "{k} is not on the whitelist"
            );
        }
        assert!(p.gpu && !p.network);
        assert_eq!(p.max_procs, Some(DEFAULT_MAX_PROCS));
    }

    #[test]
    fn agent_policy_hides_home_and_what_the_caller_names() {
        let p = agent_policy(&AgentSetup {
            workspace: "/w/ws".into(),
            hidden: vec!["/w/task/script".into()],
            ..AgentSetup::default()
        });
        assert!(p.hidden.contains(&paths::home_dir()) || paths::home_dir() == Path::new("/"));
        assert!(p.hidden.contains(&PathBuf::from("/w/task/script")));
        assert!(p.hidden.contains(&paths::mlab_home()));
        assert!(!p.gpu, "no --device, no GPU nodes");
    }

    #[test]
    fn a_venv_in_a_hidden_home_is_bound_back_with_its_base_python() {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        let base = home.join(".pyenv/versions/3.11.7");
        let venv = home.join(".local/share/mlab/venv");
        std::fs::create_dir_all(base.join("bin")).unwrap();
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        std::fs::write(base.join("bin/python3.11"), "").unwrap();
        std::os::unix::fs::symlink(base.join("bin/python3.11"), venv.join("bin/python")).unwrap();
        std::fs::write(
            venv.join("pyvenv.cfg"),
            format!(
                "home = {}\nversion_info = 3.11.7\n",
                base.join("bin").display()
            ),
        )
        .unwrap();
        let env = python_env(&venv.join("bin/python"));
        assert_eq!(env.bin, Some(venv.join("bin")));
        let binds = visible_again(&env.dirs, std::slice::from_ref(&home));
        let dests: Vec<_> = binds.iter().map(|b| b.dest.clone()).collect();
        assert!(dests.contains(&venv), "{dests:?}");
        assert!(dests.contains(&base), "{dests:?}");
        // Outside any hidden folder nothing needs binding.
        assert!(visible_again(&env.dirs, &[PathBuf::from("/nonexistent")]).is_empty());
        let base_env = base_env(Some(&env));
        assert!(base_env[0]
            .1
            .starts_with(&venv.join("bin").display().to_string()));
    }

    #[test]
    fn grader_sees_the_shared_task_helpers_read_only_beside_its_script_folder() {
        let dir = tempfile::tempdir().unwrap();
        let bench = dir.path().join("benchmarks");
        std::fs::create_dir_all(bench.join("t/script")).unwrap();
        std::fs::create_dir_all(bench.join("_common")).unwrap();
        let p = grader_policy(
            Path::new("/logs/step_final_files"),
            &bench.join("t/script"),
            &bench.join("t/env"),
            None,
        );
        let common = bench.join("_common");
        let real = common.canonicalize().unwrap();
        assert!(
            p.read_only
                .iter()
                .any(|b| b.dest == common && b.src == real),
            "{:?}",
            p.read_only
        );
        assert!(!p.read_write.iter().any(|b| b.dest == common));
        // Without a _common folder nothing extra is bound.
        let bare = dir.path().join("other/t/script");
        std::fs::create_dir_all(&bare).unwrap();
        let q = grader_policy(Path::new("/s"), &bare, Path::new("/e"), None);
        assert!(!q.read_only.iter().any(|b| b.dest.ends_with("_common")));
    }

    #[test]
    fn grader_sees_snapshot_answers_and_data_read_only_without_network() {
        let p = grader_policy(
            Path::new("/logs/step_final_files"),
            Path::new("/b/t/script"),
            Path::new("/b/t/env"),
            None,
        );
        let dests: Vec<_> = p.read_only.iter().map(|b| b.dest.clone()).collect();
        for d in ["/logs/step_final_files", "/b/t/script", "/b/t/env"] {
            assert!(dests.contains(&PathBuf::from(d)), "{d}");
        }
        assert_eq!(p.workdir, PathBuf::from("/b/t/script"));
        assert!(p.read_write.is_empty());
        assert!(!p.network);
        assert!(!names(&p)
            .iter()
            .any(|k| k.starts_with("MLAB") || k.contains("KEY")));
    }
}
