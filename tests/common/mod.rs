//! Helpers shared by the end-to-end tests.
// Each test crate that includes this module uses only some of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The built `mlab` binary.
pub fn mlab() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mlab"));
    c.env_remove("MLAB_BENCHMARKS").env("NO_COLOR", "1");
    c
}

/// Runs a command and returns its output, panicking with both streams shown
/// when it could not start.
pub fn output(cmd: &mut Command) -> Output {
    cmd.output().expect("command could not start")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Fails the test, naming what to install, when a part of the machine it
/// needs is missing. Tests never skip: plain `cargo test` expects what
/// `./install.sh` sets up (bubblewrap, the task venv), and parts it cannot
/// set up are behind `#[ignore = "needs ..."]`, which `.ci/run` runs with
/// `--include-ignored`.
pub fn need(what: &str, available: bool) {
    assert!(
        available,
        "this test needs {what}, which this machine lacks; ./install.sh sets it up \
         (it installs bubblewrap when run as root; otherwise install the bubblewrap \
         package) and `mlab doctor` says what is still missing"
    );
}

/// Fails the test unless bubblewrap can make its namespaces here (asked once).
pub fn need_bwrap() {
    static WORKS: OnceLock<bool> = OnceLock::new();
    let works = *WORKS.get_or_init(|| {
        Command::new("bwrap")
            .args(["--ro-bind", "/", "/", "--unshare-all", "--", "/bin/true"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    need("bubblewrap (with user namespaces)", works);
}

/// Fails the test unless the task Python imports every module named (each
/// list asked once per test binary: importing scikit-learn takes seconds).
pub fn need_python(modules: &[&str]) {
    static KNOWN: std::sync::Mutex<Vec<(String, bool)>> = std::sync::Mutex::new(Vec::new());
    let key = modules.join(",");
    let known = KNOWN
        .lock()
        .unwrap()
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v);
    let ok = known.unwrap_or_else(|| {
        let ok = python_has(modules);
        KNOWN.lock().unwrap().push((key, ok));
        ok
    });
    need(
        &format!(
            "the task Python ({}) with {}",
            python().display(),
            modules.join(", ")
        ),
        ok,
    );
}

/// The offline tasks' Python stack.
pub const STACK: &[&str] = &["numpy", "pandas", "sklearn"];

/// The Python that task scripts use in tests: $MLAB_PYTHON, then the venv of
/// install.sh, then python3.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("MLAB_PYTHON") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("MLAB_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".local/share/mlab")
        });
    let venv = home.join("venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// True when `python()` can import every module named.
pub fn python_has(modules: &[&str]) -> bool {
    let code = modules
        .iter()
        .map(|m| format!("import {m}"))
        .collect::<Vec<_>>()
        .join("; ");
    Command::new(python())
        .args(["-c", &code])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The repository's benchmarks folder.
pub fn benchmarks_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benchmarks")
}

/// Copies `src` into `dest` recursively (for temporary copies of tasks).
pub fn copy_tree(src: &Path, dest: &Path) {
    for entry in walkdir::WalkDir::new(src) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(src).unwrap();
        let to = dest.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
        } else if entry.file_type().is_file() {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

/// Writes `text` to `p`, creating its folders.
pub fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

pub fn read_json(p: &Path) -> serde_json::Value {
    let t = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&t).unwrap()
}

/// The interpreter `python()` really is (a pyenv shim would add its own
/// variables), asked once.
pub fn real_python() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let out = Command::new(python())
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .unwrap();
        PathBuf::from(text(&out.stdout).trim())
    })
    .clone()
}

/// Waits until `cond` holds, up to `secs` seconds.
pub fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

/// True while process `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next();
            state != Some("Z") && state != Some("X")
        }
        Err(_) => false,
    }
}

/// Copies the task `name` of the repository's benchmarks into
/// `bench_root/name`, with the shared Python helpers (`_common/`) its
/// prepare.py and eval.py import from beside it, as a fresh clone has them:
/// only the files git tracks, so what `mlab prepare` wrote into the checkout
/// (data, answers, the prepared marker) never makes the copy look prepared.
/// Returns the task folder.
pub fn copy_task(name: &str, bench_root: &Path) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut wanted = vec![format!("benchmarks/{name}")];
    if !bench_root.join("_common").exists() {
        wanted.insert(0, "benchmarks/_common".to_string());
    }
    for rel in wanted {
        let out = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(["ls-files", "-z", "--", &rel])
            .output()
            .unwrap_or_else(|e| panic!("the tests copy tasks as git tracks them; git: {e}"));
        assert!(
            out.status.success(),
            "the tests copy tasks as git tracks them; `git ls-files` failed in {} (run them from a git clone): {}",
            repo.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let listed = String::from_utf8_lossy(&out.stdout).into_owned();
        for f in listed.split('\0').filter(|f| !f.is_empty()) {
            let to = bench_root.join(f.strip_prefix("benchmarks/").unwrap_or(f));
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(repo.join(f), &to).unwrap();
        }
    }
    bench_root.join(name)
}

/// A marker unique to this call, to put in a child's command line and find
/// it later with [`processes_with`].
pub fn marker(what: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "mlab-test-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Live processes (not zombies) whose command line contains `marker`, this
/// test process excepted; sandboxed ones are seen too (the host sees every
/// pid namespace).
pub fn processes_with(marker: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
        })
        .filter(|&pid| alive(pid))
        .collect()
}

/// What `mlab eval --output-file RESULTS` wrote, as one document:
/// `runs` is eval.json (the original's layout: one entry per trace path),
/// `summary` the rows of eval_summary.json beside it, and `summary_file`
/// that whole file. Null where a file is missing or unreadable.
pub fn eval_outputs(results: &std::path::Path) -> serde_json::Value {
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .unwrap_or(serde_json::Value::Null)
    };
    let summary = read(&results.with_file_name("eval_summary.json"));
    serde_json::json!({
        "runs": read(results),
        "summary": summary["summary"].clone(),
        "summary_file": summary,
    })
}

/// The lines of `<log>/agent_log/llm_calls.jsonl`.
pub fn calls(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log.join("agent_log/llm_calls.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
