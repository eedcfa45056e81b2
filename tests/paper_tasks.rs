//! The paper's twelve tasks (benchmarks/<task>/): `mlab tasks` lists each
//! with the right direction, and their Python test suite (tests/python:
//! prepare against fake archives, eval on hand-made snapshots) passes.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::process::Command;

use common::{mlab, output, python, text};

/// Task folder and the direction of its metric.
const PAPER_TASKS: &[(&str, &str)] = &[
    ("cifar10", "higher"),
    ("imdb", "higher"),
    ("ogbn-arxiv", "higher"),
    ("house-price", "lower"),
    ("spaceship-titanic", "higher"),
    ("amp-parkinsons-disease-progression-prediction", "lower"),
    ("fathomnet", "higher"),
    ("feedback", "lower"),
    ("identify-contrails", "higher"),
    ("CLRS", "higher"),
    ("babylm", "lower"),
    ("llama-inference", "lower"),
];

#[test]
fn mlab_tasks_lists_every_paper_task_with_its_direction() {
    let out = output(
        mlab()
            .arg("--benchmarks-dir")
            .arg(common::benchmarks_dir())
            .args(["tasks", "--json"]),
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "mlab tasks failed: {stderr}");
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).expect("tasks --json prints a JSON array");
    for (name, direction) in PAPER_TASKS {
        assert!(
            !stderr.contains(&format!("/{name}:")),
            "{name} failed to load: {stderr}"
        );
        let row = rows
            .iter()
            .find(|r| r["name"] == *name)
            .unwrap_or_else(|| panic!("{name} is not listed by mlab tasks"));
        assert_eq!(row["direction"], *direction, "{name}");
        assert_eq!(row["layout"], "mlab", "{name}");
        assert_eq!(row["defaulted"], serde_json::json!([]), "{name}");
    }
}

#[test]
fn kaggle_and_download_tasks_say_what_they_need() {
    let out = output(
        mlab()
            .arg("--benchmarks-dir")
            .arg(common::benchmarks_dir())
            .args(["tasks", "--json"]),
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    for name in [
        "house-price",
        "spaceship-titanic",
        "fathomnet",
        "identify-contrails",
    ] {
        let row = rows.iter().find(|r| r["name"] == name).unwrap();
        assert!(row["kaggle"].is_string(), "{name}: {row}");
        assert!(
            row["needs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n == "kaggle"),
            "{name}"
        );
    }
    let cifar = rows.iter().find(|r| r["name"] == "cifar10").unwrap();
    assert!(cifar["kaggle"].is_null());
    // Downloading tasks say so, which keeps `prepare --all` offline-safe.
    assert!(
        cifar["needs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "internet"),
        "{cifar}"
    );
}

#[test]
fn paper_task_python_suite_passes() {
    common::need_python(&["pytest", "numpy", "pandas"]);
    let out = Command::new(python())
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/python",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("could not start the task Python");
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "the paper tasks' Python tests failed:\n{stdout}\n{stderr}"
    );
}

#[test]
fn kaggle_task_prepares_from_data_dir_without_credentials_or_network() {
    common::need_python(&["numpy", "pandas"]);
    let dir = tempfile::tempdir().unwrap();
    let bench = dir.path().join("benchmarks");
    for sub in ["_common", "spaceship-titanic"] {
        common::copy_tree(&common::benchmarks_dir().join(sub), &bench.join(sub));
    }
    let data = dir.path().join("data/spaceship-titanic");
    std::fs::create_dir_all(&data).unwrap();
    let mut csv = String::from("PassengerId,HomePlanet,Transported\n");
    for i in 0..10 {
        csv.push_str(&format!("{i:04}_01,Earth,{}\n", i % 2 == 0));
    }
    std::fs::write(data.join("train.csv"), csv).unwrap();
    let out = output(
        mlab()
            .arg("--benchmarks-dir")
            .arg(&bench)
            .args(["prepare", "spaceship-titanic", "--data-dir"])
            .arg(dir.path().join("data"))
            .env("HOME", dir.path())
            .env("MLAB_PYTHON", python())
            .env_remove("KAGGLE_USERNAME")
            .env_remove("KAGGLE_KEY")
            .env_remove("KAGGLE_CONFIG_DIR"),
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{all}");
    assert!(all.contains("==> splitting train.csv"), "{all}");
    let script = bench.join("spaceship-titanic/script");
    assert!(script.join("prepared").is_file());
    let answer = std::fs::read_to_string(script.join("answer.csv")).unwrap();
    assert_eq!(
        answer,
        "PassengerId,Transported\n0008_01,True\n0009_01,False\n"
    );
    let test = std::fs::read_to_string(bench.join("spaceship-titanic/env/test.csv")).unwrap();
    assert!(!test.contains("Transported"), "{test}");
}
