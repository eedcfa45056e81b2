//! The two policies mlab uses: one for code the agent causes to run
//! (Execute Script, the Python REPL, helpers that run code) and one for
//! graders (script/eval.py on a snapshot).
//!
//! Both give the command only what it needs: the Python environment
//! read-only wherever it lies (its real folders, asked of the interpreter
//! once), the workspace, and for graders the answers, the snapshots and
//! the prepared data read-only. Under bwrap nothing else of the host is
//! visible (see bwrap.rs); the home, mlab's own folder and key files are
//! also named as hidden, for sandboxes and binds that would show them. The
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
        read_only.extend(python_binds(env));
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

/// Read-only binds that make another Python environment visible and
/// runnable inside (an outside agent's own venv, `--agent program`),
/// wherever it lies, and its bin/ folder for PATH.
pub fn python_env_binds(python: &Path) -> (Vec<Bind>, Option<PathBuf>) {
    let env = python_env(python);
    (python_binds(&env), env.bin)
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
    // Real paths: the benchmarks folder is often reached through the link
    // install.sh makes, which lies in mlab's own (invisible) folder.
    let mut read_only: Vec<Bind> = [snapshot, script_dir, task_env_dir]
        .iter()
        .map(|p| real(p))
        .map(|p| Bind {
            src: p.clone(),
            dest: p,
        })
        .collect();
    read_only.extend(shared_task_helpers(script_dir));
    let venv = python.map(python_env);
    if let Some(env) = &venv {
        read_only.extend(python_binds(env));
    }
    let mut env = base_env(venv.as_ref());
    env.push(("HOME".into(), "/tmp".into()));
    // The script folder is read-only: no point trying to write caches.
    env.push(("PYTHONDONTWRITEBYTECODE".into(), "1".into()));
    Policy {
        workdir: real(script_dir),
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

/// `p` with every symlink resolved, or made absolute when it does not
/// exist (the sandbox then says what is missing).
pub fn real(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| absolute(p))
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
    /// The prefix as named (a venv folder), bound where it was named so
    /// that a path through a host symlink works inside too.
    named_prefix: Option<PathBuf>,
    /// Real folders the interpreter needs, read-only.
    dirs: Vec<PathBuf>,
}

/// Asked of the interpreter: its prefixes, the real prefix of its
/// executable, site-packages, the absolute entries of sys.path (.pth files
/// add editable installs) and the folders of the shared libraries it
/// loaded, all with symlinks resolved.
const ASK_PYTHON: &str = r#"
import json, os, sys
d = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
     os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))]
try:
    import site
    d += site.getsitepackages()
except Exception:
    pass
d += [p for p in sys.path if os.path.isabs(p)]
try:
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].startswith("/"):
                d.append(os.path.dirname(parts[5].strip()))
except OSError:
    pass
print(json.dumps(sorted({os.path.realpath(p) for p in d})))
"#;

/// Finds what `python` (an interpreter or a venv folder) needs to run. The
/// interpreter is asked once per process (see [`ASK_PYTHON`]); when it
/// cannot answer, the folders are worked out from the files: the venv, the
/// base installation in pyvenv.cfg's `home`, and where the interpreter's
/// symlinks lead (pyenv and uv keep those under the home folder).
fn python_env(python: &Path) -> PythonEnv {
    let interp = interpreter(python);
    let bin = interp.parent().map(Path::to_path_buf);
    let named_prefix = prefix_of(&absolute(&interp));
    let mut dirs = match ask_python(&interp) {
        Some(d) => d,
        None => dirs_from_files(&interp),
    };
    dirs.retain(|d| safe_to_show(d));
    dirs.sort();
    dirs.dedup();
    PythonEnv {
        bin,
        named_prefix,
        dirs,
    }
}

/// The interpreter file `python` names.
fn interpreter(python: &Path) -> PathBuf {
    if python.is_dir() {
        python.join("bin/python")
    } else if python.components().count() == 1 {
        which(python).unwrap_or_else(|| python.to_path_buf())
    } else {
        python.to_path_buf()
    }
}

/// The folders a Python reads, found from its files alone.
fn dirs_from_files(interp: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(root) = prefix_of(interp) {
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
    if let Some(real) = std::fs::canonicalize(interp)
        .ok()
        .and_then(|r| prefix_of(&r))
    {
        dirs.push(real);
    }
    dirs.into_iter()
        .map(|d| std::fs::canonicalize(&d).unwrap_or(d))
        .collect()
}

/// Whether a folder the Python names may be shown: not the root, and not
/// a folder that holds the home, mlab's own folder or the working
/// directory (a sys.path entry of `/root` would show all of them).
fn safe_to_show(d: &Path) -> bool {
    if d == Path::new("/") || !d.is_absolute() {
        return false;
    }
    let mut private = vec![paths::home_dir(), paths::mlab_home()];
    if let Ok(cwd) = std::env::current_dir() {
        private.push(cwd);
    }
    !private.iter().any(|p| {
        let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        p.starts_with(d)
    })
}

/// The interpreter's answer to [`ASK_PYTHON`], once per interpreter path;
/// None when it cannot run or answer within 30 s.
fn ask_python(interp: &Path) -> Option<Vec<PathBuf>> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Cache = Mutex<HashMap<PathBuf, Option<Vec<PathBuf>>>>;
    static ASKED: OnceLock<Cache> = OnceLock::new();
    let cache = ASKED.get_or_init(Cache::default);
    if let Some(found) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(interp) {
        return found.clone();
    }
    let found = run_ask(interp);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(interp.to_path_buf(), found.clone());
    found
}

fn run_ask(interp: &Path) -> Option<Vec<PathBuf>> {
    use std::process::{Command, Stdio};
    // Isolated (-I: no PYTHON* variables, no user site), from /, with a
    // bare environment: what it reports does not depend on where mlab is.
    let child = Command::new(interp)
        .args(["-I", "-c", ASK_PYTHON])
        .current_dir("/")
        .env_clear()
        .env("PATH", SYSTEM_PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(out) => out.ok()?,
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            tracing::warn!(
                "{} did not say where it lives within 30 s",
                interp.display()
            );
            return None;
        }
    };
    if !out.status.success() {
        return None;
    }
    let list: Vec<String> = serde_json::from_slice(&out.stdout).ok()?;
    Some(
        list.into_iter()
            .map(PathBuf::from)
            .filter(|p| p.exists())
            .collect(),
    )
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

/// Read-only binds that show the Python environment wherever it lies: its
/// real folders at their real paths, and its prefix at the path it was
/// named by (the sandbox recreates the symlinks on the way). The sandbox
/// drops those already visible as system folders.
fn python_binds(env: &PythonEnv) -> Vec<Bind> {
    let mut binds: Vec<Bind> = env
        .dirs
        .iter()
        .filter(|d| d.exists())
        .map(|d| Bind {
            src: d.clone(),
            dest: d.clone(),
        })
        .collect();
    if let Some(p) = env.named_prefix.as_ref().filter(|p| p.is_dir()) {
        if safe_to_show(&real(p)) {
            binds.push(Bind {
                src: p.clone(),
                dest: p.clone(),
            });
        }
    }
    binds
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
    fn a_venv_and_its_base_python_are_bound_wherever_they_lie() {
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
        // The fake interpreter cannot run: its folders come from its files.
        let env = python_env(&venv.join("bin/python"));
        assert_eq!(env.bin, Some(venv.join("bin")));
        let real_venv = std::fs::canonicalize(&venv).unwrap();
        let real_base = std::fs::canonicalize(&base).unwrap();
        let dests: Vec<_> = python_binds(&env).iter().map(|b| b.dest.clone()).collect();
        assert!(dests.contains(&real_venv), "{dests:?}");
        assert!(dests.contains(&real_base), "{dests:?}");
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
