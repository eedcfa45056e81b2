//! Extra wall time of one command under bwrap compared with no sandbox:
//! what every Execute Script pays for its confinement. Target: under 20 ms.
//!
//! Both arms use the same agent policy (limits and cgroups included) through
//! `mlab sandbox-exec --repeat`, which times each run inside one mlab
//! process, so mlab's own start-up and the once-per-run bwrap probe are not
//! counted. Rounds alternate between the arms so that load from other
//! processes on the machine falls on both alike.
//!
//! Run with `cargo bench --bench sandbox_overhead`.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::PathBuf;
use std::process::Command;

const ROUNDS: usize = 4;
const RUNS_PER_ROUND: u32 = 15;

fn main() {
    let bwrap_ok = Command::new("bwrap")
        .args(["--ro-bind", "/", "/", "--unshare-all", "--", "/bin/true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !bwrap_ok {
        println!("SKIPPED: bubblewrap is not available, nothing to compare");
        return;
    }
    let ws = tempfile::tempdir().expect("temporary workspace");
    let python = task_python();
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("true", vec!["true".into()]),
        (
            "python3 -c pass",
            vec![python.display().to_string(), "-c".into(), "pass".into()],
        ),
    ];
    println!(
        "sandbox overhead: {ROUNDS} alternating rounds x {RUNS_PER_ROUND} runs per arm, \
         {} CPUs, load {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or("?")
    );
    println!(
        "{:<18} {:>12} {:>12} {:>12} {:>12}",
        "command", "none (ms)", "bwrap (ms)", "extra (ms)", "extra min"
    );
    for (label, argv) in cases {
        let mut none = Vec::new();
        let mut bwrap = Vec::new();
        for _ in 0..ROUNDS {
            none.extend(times("none", ws.path(), &python, &argv));
            bwrap.extend(times("bwrap", ws.path(), &python, &argv));
        }
        let (n, b) = (median(&mut none), median(&mut bwrap));
        let (nmin, bmin) = (min(&none), min(&bwrap));
        println!(
            "{label:<18} {n:>12.2} {b:>12.2} {:>12.2} {:>12.2}   {}",
            b - n,
            bmin - nmin,
            if b - n < 20.0 {
                "under the 20 ms target"
            } else {
                "OVER the 20 ms target"
            }
        );
    }
}

/// Wall time (ms) of each run of `argv` under `sandbox`.
fn times(sandbox: &str, ws: &std::path::Path, python: &PathBuf, argv: &[String]) -> Vec<f64> {
    let out = Command::new(env!("CARGO_BIN_EXE_mlab"))
        .args(["sandbox-exec", "--sandbox", sandbox, "--workspace"])
        .arg(ws)
        .arg("--python")
        .arg(python)
        .args(["--repeat", &RUNS_PER_ROUND.to_string(), "--"])
        .args(argv)
        .output()
        .expect("mlab runs");
    assert!(
        out.status.success(),
        "mlab sandbox-exec failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON timings");
    v["ms"]
        .as_array()
        .expect("ms")
        .iter()
        .filter_map(|x| x.as_f64())
        .collect()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

/// The venv of install.sh when present, else python3 on PATH.
fn task_python() -> PathBuf {
    if let Some(p) = std::env::var_os("MLAB_PYTHON") {
        return p.into();
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let venv = home.join(".local/share/mlab/venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("/usr/bin/python3")
    }
}
