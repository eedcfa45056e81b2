//! The command line itself: help texts, task lookup errors, `tasks --json`,
//! `prepare` failure modes and stubs that must not pretend to work.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use common::{mlab, output, text, write};
use mlab::testing::toy::ToyTask;

/// A benchmarks folder with one mlab-format task and one original-format task.
fn toy_benchmarks() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    ToyTask::new()
        .set("description", "A toy task")
        .set("metric", "accuracy")
        .empty_env()
        .env("train.py", "print('train')\n")
        .no_read_only()
        .research_problem("Do it.\n")
        .script(
            "prepare.py",
            "print('==> making data')\nopen('../env/data.csv','w').write('a\\n1\\n')\n",
        )
        .write_in(dir.path());
    let o = dir.path().join("oldstyle");
    write(&o.join("env/train.py"), "print(1)\n");
    write(&o.join("scripts/research_problem.txt"), "Old problem.\n");
    dir
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        "tasks",
        "prepare",
        "doctor",
        "run",
        "eval",
        "report",
        "llm-check",
    ] {
        let out = output(mlab().args([sub, "--help"]));
        assert!(out.status.success(), "{sub} --help failed");
        assert!(
            text(&out.stdout).contains("Usage: mlab"),
            "{sub}: {}",
            text(&out.stdout)
        );
    }
}

#[test]
fn unknown_task_lists_known_ones_and_suggests() {
    let b = toy_benchmarks();
    let out = output(
        mlab()
            .arg("--benchmarks-dir")
            .arg(b.path())
            .args(["prepare", "toyy"]),
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("unknown task 'toyy'"), "{err}");
    assert!(err.contains("Did you mean 'toy'"), "{err}");
    assert!(err.contains("oldstyle"), "{err}");
}

#[test]
fn tasks_json_parses_and_reports_layout_and_defaults() {
    let b = toy_benchmarks();
    let out = output(
        mlab()
            .arg("--benchmarks-dir")
            .arg(b.path())
            .args(["tasks", "--json"]),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    let toy = arr.iter().find(|t| t["name"] == "toy").unwrap();
    assert_eq!(toy["direction"], "higher");
    assert_eq!(toy["prepared"], false);
    let old = arr.iter().find(|t| t["name"] == "oldstyle").unwrap();
    assert_eq!(old["layout"], "original");
    assert!(old["defaulted"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d == "metric"));
}

#[test]
fn benchmarks_dir_comes_from_env_when_no_flag() {
    let b = toy_benchmarks();
    let out = output(mlab().env("MLAB_BENCHMARKS", b.path()).args(["tasks"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("toy") && s.contains("accuracy"), "{s}");
}

#[test]
fn prepare_writes_marker_then_skips_unless_forced() {
    let b = toy_benchmarks();
    let py = common::python();
    let run = |extra: &[&str]| {
        let mut c = mlab();
        c.arg("--benchmarks-dir")
            .arg(b.path())
            .arg("prepare")
            .arg("toy")
            .arg("--python")
            .arg(&py)
            .args(extra);
        output(&mut c)
    };
    let out = run(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(b.path().join("toy/script/prepared").exists());
    assert!(b.path().join("toy/env/data.csv").exists());
    assert!(
        text(&out.stdout).contains("==> making data"),
        "output is streamed"
    );
    let again = run(&[]);
    assert!(text(&again.stderr).contains("already prepared"));
    std::fs::remove_file(b.path().join("toy/env/data.csv")).unwrap();
    let forced = run(&["--force"]);
    assert!(forced.status.success());
    assert!(b.path().join("toy/env/data.csv").exists());
}

#[test]
fn failed_prepare_leaves_no_marker_and_names_the_step() {
    let b = toy_benchmarks();
    write(
        &b.path().join("toy/script/prepare.py"),
        "print('==> download')\nprint('==> split the data')\nraise SystemExit(4)\n",
    );
    write(&b.path().join("toy/script/prepared"), "success\n");
    let out = output(
        mlab()
            .arg("--benchmarks-dir")
            .arg(b.path())
            .args(["prepare", "toy", "--force", "--python"])
            .arg(common::python()),
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("step 'split the data'"), "{err}");
    assert!(err.contains("exit code 4"), "{err}");
    assert!(!b.path().join("toy/script/prepared").exists());
}

#[test]
fn missing_python_package_names_requirements_and_command() {
    let b = toy_benchmarks();
    write(
        &b.path().join("toy/script/prepare.py"),
        "import definitely_not_installed_pkg\n",
    );
    let out = output(
        mlab()
            .arg("--benchmarks-dir")
            .arg(b.path())
            .args(["prepare", "toy", "--python"])
            .arg(common::python()),
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("'definitely_not_installed_pkg' is missing"),
        "{err}"
    );
    assert!(err.contains("pip install -r"), "{err}");
}

#[test]
fn kaggle_task_needs_credentials_and_consent_flag() {
    let b = toy_benchmarks();
    let toml = b.path().join("toy/task.toml");
    let mut s = std::fs::read_to_string(&toml).unwrap();
    s.push_str("[requires]\nkaggle = \"toy-comp\"\n");
    std::fs::write(&toml, s).unwrap();
    let home = tempfile::tempdir().unwrap();
    let base = || {
        let mut c = mlab();
        c.arg("--benchmarks-dir")
            .arg(b.path())
            .env("HOME", home.path())
            .env_remove("KAGGLE_USERNAME")
            .env_remove("KAGGLE_KEY")
            .env_remove("KAGGLE_CONFIG_DIR")
            .args(["prepare", "toy", "--python"])
            .arg(common::python())
            .stdin(std::process::Stdio::null());
        c
    };
    let out = output(&mut base());
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("no Kaggle credentials"), "{err}");
    let out = output(base().env("KAGGLE_USERNAME", "u").env("KAGGLE_KEY", "k"));
    let err = text(&out.stderr);
    assert!(err.contains("--accept-rules"), "{err}");
    assert!(!b.path().join("toy/script/prepared").exists());
    let out = output(
        base()
            .env("KAGGLE_USERNAME", "u")
            .env("KAGGLE_KEY", "k")
            .arg("--accept-rules"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn help_lists_no_command_that_only_says_not_yet() {
    let out = output(mlab().arg("--help"));
    let help = text(&out.stdout);
    assert!(help.contains("llm-check"), "{help}");
    // `report` was hidden until issue 15 built it.
    assert!(help.contains("report"), "{help}");
}

#[test]
fn run_help_says_where_the_seed_goes() {
    let out = output(mlab().args(["run", "--help"]));
    let help = text(&out.stdout);
    assert!(help.contains("OpenAI") && help.contains("retry"), "{help}");
}

#[test]
fn report_without_a_log_folder_says_which_flag_is_missing() {
    let out = output(mlab().arg("report"));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--log-folder"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn doctor_reports_each_part() {
    let b = toy_benchmarks();
    let out = output(
        mlab()
            .arg("--benchmarks-dir")
            .arg(b.path())
            .args(["doctor", "--json"]),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for n in [
        "tasks", "python", "sandbox", "gpu", "api keys", "slurm", "chromium",
    ] {
        assert!(names.contains(&n), "doctor lacks {n}: {names:?}");
    }
    let bad = output(mlab().arg("--benchmarks-dir").arg(b.path()).args([
        "doctor",
        "--python",
        "/nonexistent/python",
    ]));
    assert!(
        !bad.status.success(),
        "a missing Python blocks the workflow"
    );
    assert!(text(&bad.stdout).contains("FAIL"));
}

#[test]
fn every_bench_is_declared_with_its_own_main() {
    // A bench file without `harness = false` compiles under libtest and
    // prints "running 0 tests" instead of its figures (a merge once lost
    // the line for benches/gateway.rs).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(root.join("Cargo.toml")).unwrap()).unwrap();
    let declared = manifest["bench"].as_array().unwrap();
    let mut files: Vec<String> = std::fs::read_dir(root.join("benches"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rs"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for f in &files {
        let name = f.trim_end_matches(".rs");
        let entry = declared
            .iter()
            .find(|b| b["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("benches/{f} has no [[bench]] entry in Cargo.toml"));
        assert_eq!(
            entry.get("harness").and_then(|h| h.as_bool()),
            Some(false),
            "[[bench]] {name} needs `harness = false`"
        );
    }
}
