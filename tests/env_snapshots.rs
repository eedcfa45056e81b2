//! Snapshots end to end: every step leaves `traces/step_N_files/`, the end
//! leaves `step_final_files/`, and an unchanged 200 MB file costs one copy
//! of disk however many steps are taken.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
mod env_support;

use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use env_support::{text, Toy};
use serde_json::json;

const MB: u64 = 1024 * 1024;

/// Disk blocks under `dir`, each inode once (as `du`).
fn disk_usage(dir: &Path) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0;
    for e in walkdir::WalkDir::new(dir).into_iter().flatten() {
        let m = e.metadata().unwrap();
        if seen.insert((m.dev(), m.ino())) {
            total += m.blocks() * 512;
        }
    }
    total
}

#[test]
fn an_unchanged_200_mb_file_costs_one_copy_of_disk() {
    let toy = Toy::new();
    let big = toy.path().join("bench/toy/env/model.bin");
    {
        // Not zeros, so no file system can store it sparsely.
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        let block: Vec<u8> = (0..MB).map(|i| (i * 7 % 251) as u8).collect();
        for i in 0..200u64 {
            let mut b = block.clone();
            b[0] = i as u8;
            f.write_all(&b).unwrap();
        }
    }
    let mut actions: Vec<_> = (0..8)
        .map(|_| json!({"name": "List Files", "args": {"dir_path": "."}}))
        .collect();
    actions.push(json!({"name": "Final Answer", "args": {"final_answer": "x"}}));
    let out = toy.run(&actions, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let env_log = toy.log().join("env_log");
    let inode = |p: &Path| std::fs::metadata(p).unwrap().ino();
    let first = inode(&env_log.join("traces/step_0_files/model.bin"));
    for step in 1..9 {
        let p = env_log.join(format!("traces/step_{step}_files/model.bin"));
        assert_eq!(inode(&p), first, "step {step} holds another copy");
    }
    assert_eq!(
        inode(&env_log.join("traces/step_final_files/model.bin")),
        first
    );
    assert_ne!(
        inode(&toy.ws().join("model.bin")),
        first,
        "the workspace file is not the stored one"
    );
    let used = disk_usage(&env_log);
    eprintln!(
        "env_log uses {:.1} MB for 10 snapshots of a 200 MB file",
        used as f64 / MB as f64
    );
    assert!(used < 210 * MB, "env_log uses {used} bytes");
    assert!(used >= 200 * MB);
}

#[test]
fn the_final_snapshot_reflects_the_last_state_of_every_file() {
    let toy = Toy::new();
    let out = toy.run(
        &[
            json!({"name": "Execute Script", "args": {"script_name": "train.py"}}),
            json!({"name": "Write File", "args": {"file_name": "notes/a.txt", "content": "v1"}}),
            json!({"name": "Write File", "args": {"file_name": "notes/a.txt", "content": "v2"}}),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let traces = toy.log().join("env_log/traces");
    let read = |p: &str| std::fs::read_to_string(traces.join(p)).unwrap();
    assert_eq!(read("step_0_files/submission.csv"), "id\n1\n");
    assert_eq!(read("step_1_files/notes/a.txt"), "v1");
    assert_eq!(read("step_2_files/notes/a.txt"), "v2");
    assert_eq!(read("step_final_files/notes/a.txt"), "v2");
    assert!(traces.join("step_final_files/backup").is_dir());
    // Running out of actions without a final answer still ends cleanly.
    assert_eq!(toy.run_json()["exit_reason"], "actions_exhausted");
}
