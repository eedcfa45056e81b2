//! Studies through Slurm for real: `mlab run --executor slurm` submits an
//! sbatch job array to the cluster on this machine (`.ci/slurm-cluster
//! start`, which `./install.sh --slurm` and `.ci/run` run), the jobs run
//! `mlab run-one` under slurmd (as root, in bubblewrap), `mlab status`
//! follows them, `mlab eval` scores them, and submitting again sends
//! nothing. Also how run-one takes a Slurm job's GPUs (no cluster needed).
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{mlab, output, read_json, text};
use mlab::testing::toy::ToyTask;
use serde_json::Value;

/// The score is 1 when the snapshot holds the submission train.py writes.
const EVAL: &str = r#"
import os

def get_score(folder):
    with open(os.path.join(folder, "submission.csv")) as f:
        return 1.0 if f.read().split()[-1] == "1" else 0.0
"#;

/// Fails the test, saying how to get one, unless a Slurm cluster answers.
fn need_slurm() {
    let answers = Command::new("sinfo")
        .args(["--noheader", "--format=%T"])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && text(&o.stdout)
                    .lines()
                    .any(|l| ["idle", "mixed", "allocated"].contains(&l.trim_end_matches('*')))
        });
    common::need(
        "a Slurm cluster with a usable node (start one with `.ci/slurm-cluster start`, \
         or ./install.sh --slurm; `mlab doctor --slurm` says what is wrong)",
        answers,
    );
}

/// A benchmarks folder with the toy task (and its eval.py) in `root`,
/// readable by the jobs (they run as slurmd's user).
fn toy_bench(root: &Path) -> PathBuf {
    let bench = root.join("bench");
    ToyTask::new().eval_py(EVAL).write_in(&bench);
    bench
}

fn study_command(bench: &Path, exp: &Path) -> Command {
    let mut c = mlab();
    c.arg("--benchmarks-dir")
        .arg(bench)
        .args([
            "run",
            "--task",
            "toy",
            "--agent",
            "baseline",
            "--runs",
            "4",
            "--executor",
            "slurm",
            "--slurm-time",
            "10:00",
            "--python",
        ])
        .arg(common::python())
        .arg("--exp-dir")
        .arg(exp)
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY");
    c
}

fn status_json(exp: &Path) -> Value {
    let out = output(mlab().arg("status").arg(exp).arg("--json"));
    assert!(
        out.status.success(),
        "mlab status failed: {}",
        text(&out.stderr)
    );
    serde_json::from_str(&text(&out.stdout)).unwrap()
}

/// The Slurm logs of the study, for failure messages.
fn slurm_logs(exp: &Path) -> String {
    let mut s = String::new();
    if let Ok(rd) = std::fs::read_dir(exp.join("slurm/logs")) {
        for e in rd.flatten() {
            s.push_str(&format!(
                "--- {}\n{}\n",
                e.path().display(),
                std::fs::read_to_string(e.path()).unwrap_or_default()
            ));
        }
    }
    s
}

#[test]
#[ignore = "needs a Slurm cluster: .ci/slurm-cluster start (install.sh --slurm)"]
fn four_baseline_runs_go_through_slurm_and_are_scored_and_a_second_submit_sends_nothing() {
    need_slurm();
    common::need_bwrap();
    common::need_python(&[]);
    // Other checks (keys, GPUs) may warn or fail here; Slurm's may not.
    let (_, checks) = doctor_slurm(&std::env::var("PATH").unwrap_or_default());
    assert!(
        checks.len() == 2 && checks.iter().all(|c| c["level"] == "ok"),
        "mlab doctor --slurm: {checks:#?}"
    );
    let root = tempfile::tempdir().unwrap();
    let bench = toy_bench(root.path());
    let exp = root.path().join("exp");

    let out = output(&mut study_command(&bench, &exp));
    let said = text(&out.stdout);
    assert!(
        out.status.success(),
        "submitting failed:\n{said}\n{}",
        text(&out.stderr)
    );
    assert!(said.contains("submitted Slurm job"), "{said}");
    assert!(
        said.contains(&format!("mlab status {}", exp.display())),
        "{said}"
    );
    let jobs = read_json(&exp.join("slurm/jobs.json"));
    let job_id = jobs["jobs"][0]["job_id"].as_str().unwrap().to_string();
    assert!(said.contains(&job_id), "{said}");
    assert_eq!(jobs["jobs"][0]["indices"], serde_json::json!([0, 1, 2, 3]));
    let script = std::fs::read_to_string(exp.join("slurm/submit-1.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0-3\n"), "{script}");
    assert!(script.contains("#SBATCH --time=10:00\n"), "{script}");

    // Wait for every run to finish by asking mlab status (a bounded wait on
    // the state, not a timed assertion).
    let mut last = Value::Null;
    let done = common::wait_for(300, || {
        last = status_json(&exp);
        last["counts"]["finished"] == 4
            && last["runs"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["external"] == "COMPLETED")
    });
    assert!(
        done,
        "the runs did not all finish through Slurm:\n{last:#}\n{}",
        slurm_logs(&exp)
    );
    assert_eq!(last["runs"].as_array().unwrap().len(), 4, "{last:#}");

    for seed in 0..4 {
        let run = last["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["index"] == seed)
            .unwrap();
        let log = exp.join(run["id"].as_str().unwrap());
        assert!(
            log.starts_with(exp.join("toy")) && log.ends_with(seed.to_string()),
            "run {seed} is laid out at {}",
            log.display()
        );
        let rj = read_json(&log.join("run.json"));
        assert_eq!(rj["exit_reason"], "final_answer", "{rj:#}");
        assert_eq!(rj["agent"], "baseline", "{rj:#}");
        assert_eq!(rj["seed"], seed, "{rj:#}");
        assert!(
            log.join("env_log/traces/step_final_files/submission.csv")
                .is_file(),
            "no final snapshot in {}",
            log.display()
        );
        let element_log = exp.join(format!("slurm/logs/{job_id}_{seed}.out"));
        assert!(
            element_log.is_file(),
            "no Slurm output {}",
            element_log.display()
        );
    }

    // Submitting again sends nothing, and says so.
    let out = output(&mut study_command(&bench, &exp));
    let said = text(&out.stdout);
    assert!(
        out.status.success(),
        "second submit failed:\n{said}\n{}",
        text(&out.stderr)
    );
    assert!(said.contains("nothing to submit"), "{said}");
    assert!(said.contains("4 finished"), "{said}");
    let jobs = read_json(&exp.join("slurm/jobs.json"));
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1, "{jobs:#}");
    assert!(!exp.join("slurm/submit-2.sbatch").exists());

    // The study folder is an ordinary log folder for mlab eval.
    let out = output(
        mlab()
            .arg("--benchmarks-dir")
            .arg(&bench)
            .arg("eval")
            .arg("--log-folder")
            .arg(&exp)
            .arg("--python")
            .arg(common::python()),
    );
    assert!(
        out.status.success(),
        "eval failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let doc = common::eval_outputs(&exp.join("eval.json"));
    let runs = doc["runs"].as_object().unwrap();
    assert_eq!(runs.len(), 4, "{doc:#}");
    for (k, r) in runs {
        assert_eq!(r["final_score"].as_f64(), Some(1.0), "{k}: {r:#}");
    }
}

/// Under `--slurm-gres`, Slurm gives the job its GPUs in
/// CUDA_VISIBLE_DEVICES; run-one must pass them on as the run's device
/// rather than `mlab run`'s default device 0 (another job's GPU).
#[test]
fn run_one_in_a_slurm_job_keeps_the_allocation_s_gpus() {
    common::need_bwrap();
    common::need_python(&[]);
    let root = tempfile::tempdir().unwrap();
    let bench = toy_bench(root.path());
    let exp = root.path().join("exp");
    // A stand-in sbatch: this test needs no cluster.
    let path = fake_slurm(&root.path().join("bin"));
    let out = output(
        mlab()
            .arg("--benchmarks-dir")
            .arg(&bench)
            .args(["run", "--task", "toy", "--agent", "baseline", "--runs", "1"])
            .args(["--executor", "slurm", "--slurm-gres", "gpu:1"])
            .arg("--python")
            .arg(common::python())
            .arg("--exp-dir")
            .arg(&exp)
            .env("PATH", &path),
    );
    assert!(
        out.status.success() && text(&out.stdout).contains("submitted Slurm job 42"),
        "submit failed: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let sent = std::fs::read_to_string(exp.join("slurm/seen-1")).unwrap();
    assert!(sent.contains("#SBATCH --gres=gpu:1\n"), "{sent}");
    let plan = exp.join("plan.json");
    let out = output(
        mlab()
            .arg("run-one")
            .arg(&plan)
            .args(["--index", "0"])
            .env("SLURM_JOB_ID", "77")
            .env("CUDA_VISIBLE_DEVICES", "3"),
    );
    let p = read_json(&plan);
    let log = PathBuf::from(p["runs"][0]["log_dir"].as_str().unwrap());
    let rj = read_json(&log.join("run.json"));
    assert!(
        out.status.success(),
        "run-one failed: {}\n{rj:#}",
        text(&out.stderr)
    );
    assert_eq!(rj["flags"]["device"], "3", "{rj:#}");
}

/// Stand-ins for sbatch and squeue in `dir`: sbatch keeps each script it
/// gets as `<script dir>/seen-<n>` and answers job ids 42, 43, ...;
/// squeue prints the file `<dir>/squeue.out` (what the test says Slurm
/// knows) and appends its arguments to `<dir>/squeue.args`. A PATH that
/// finds them first.
fn fake_slurm(dir: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let sbatch = format!(
        "#!/bin/sh\nn=$(cat {d}/count 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > {d}/count\n\
         cp \"$2\" \"$(dirname \"$2\")/seen-$n\"\necho $((41+n))\n",
        d = dir.display()
    );
    common::write(&dir.join("sbatch"), &sbatch);
    common::write(
        &dir.join("squeue"),
        &format!(
            "#!/bin/sh\necho \"$@\" >> {d}/squeue.args\ncat {d}/squeue.out 2>/dev/null\nexit 0\n",
            d = dir.display()
        ),
    );
    for f in ["sbatch", "squeue"] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn resubmitting_sends_only_runs_neither_finished_nor_pending_in_slurm() {
    common::need_bwrap();
    common::need_python(&[]);
    let root = tempfile::tempdir().unwrap();
    let bench = toy_bench(root.path());
    let exp = root.path().join("exp");
    let bin = root.path().join("bin");
    let path = fake_slurm(&bin);
    let submit = || {
        let out = output(
            mlab()
                .arg("--benchmarks-dir")
                .arg(&bench)
                .args(["run", "--task", "toy", "--agent", "baseline", "--runs", "3"])
                .args(["--executor", "slurm", "--python"])
                .arg(common::python())
                .arg("--exp-dir")
                .arg(&exp)
                .env("PATH", &path),
        );
        assert!(
            out.status.success(),
            "submit failed: {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    let said = submit();
    assert!(
        said.contains("submitted Slurm job 42 (3 runs, array 0-2)"),
        "{said}"
    );
    let first = std::fs::read_to_string(exp.join("slurm/seen-1")).unwrap();
    assert!(first.contains("#SBATCH --array=0-2\n"), "{first}");

    // Run 1 finishes (by hand, as its array element would); Slurm still
    // holds run 2; run 0's element failed.
    let out = output(
        mlab()
            .arg("run-one")
            .arg(exp.join("plan.json"))
            .args(["--index", "1"]),
    );
    assert!(out.status.success(), "run-one: {}", text(&out.stderr));
    common::write(
        &bin.join("squeue.out"),
        "42|0|FAILED\n42|1|COMPLETED\n42|2|PENDING\n",
    );

    let said = submit();
    assert!(
        said.contains("submitted Slurm job 43 (1 run, array 0)")
            && said.contains("left out 1 finished, 1 still pending or running"),
        "{said}"
    );
    let second = std::fs::read_to_string(exp.join("slurm/seen-2")).unwrap();
    assert!(second.contains("#SBATCH --array=0\n"), "{second}");
    let jobs = read_json(&exp.join("slurm/jobs.json"));
    assert_eq!(jobs["jobs"][1]["job_id"], "43", "{jobs:#}");
    assert_eq!(
        jobs["jobs"][1]["indices"],
        serde_json::json!([0]),
        "{jobs:#}"
    );

    // Status shows what Slurm says, the newest job first: run 0 is in job 43 now.
    common::write(
        &bin.join("squeue.out"),
        "42|0|FAILED\n42|1|COMPLETED\n42|2|RUNNING\n43|0|PENDING\n",
    );
    let out = output(
        mlab()
            .arg("status")
            .arg(&exp)
            .arg("--json")
            .env("PATH", &path),
    );
    let doc: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    let ext: Vec<&Value> = doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["external"])
        .collect();
    assert_eq!(ext, ["PENDING", "COMPLETED", "RUNNING"], "{doc:#}");
    assert_eq!(doc["runs"][1]["state"], "finished", "{doc:#}");
    // Slurm was asked about this study's jobs only, not the whole queue.
    let asked = std::fs::read_to_string(bin.join("squeue.args")).unwrap();
    assert!(
        asked.lines().last().unwrap().contains("--jobs=42,43"),
        "{asked}"
    );
}

fn doctor_slurm(path: &str) -> (bool, Vec<Value>) {
    let out = output(
        mlab()
            .args(["doctor", "--slurm", "--json"])
            .env("PATH", path),
    );
    let checks: Vec<Value> = serde_json::from_str(&text(&out.stdout)).unwrap();
    let slurm = checks
        .into_iter()
        .filter(|c| c["name"].as_str().unwrap().starts_with("slurm"))
        .collect();
    (out.status.success(), slurm)
}

#[test]
fn doctor_slurm_fails_without_the_tools_or_a_usable_node() {
    let root = tempfile::tempdir().unwrap();
    // No Slurm tools at all (only what doctor's other checks may find).
    let empty = root.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (ok, checks) = doctor_slurm(&empty.display().to_string());
    assert!(!ok, "{checks:#?}");
    assert_eq!(checks.len(), 1, "{checks:#?}");
    assert_eq!(checks[0]["level"], "fail", "{checks:#?}");
    let said = checks[0].to_string();
    assert!(
        said.contains("sbatch") && said.contains("install.sh --slurm"),
        "{said}"
    );

    // The tools, but the only node is drained.
    let bin = root.path().join("bin");
    let path = fake_slurm(&bin);
    common::write(&bin.join("sinfo"), "#!/bin/sh\necho 'main*|up|1|drained'\n");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join("sinfo"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    let (ok, checks) = doctor_slurm(&path);
    assert!(!ok, "{checks:#?}");
    let cluster = checks
        .iter()
        .find(|c| c["name"] == "slurm cluster")
        .unwrap();
    assert_eq!(cluster["level"], "fail", "{checks:#?}");
    assert!(
        cluster["detail"].as_str().unwrap().contains("drained"),
        "{cluster}"
    );
}
