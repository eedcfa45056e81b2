//! Path confinement end to end: a table of escape attempts through every
//! action that takes a path, each refused with a clear observation, and
//! nothing outside the workspace (nor the read-only files inside it, nor
//! the prepared task) touched.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
mod env_support;

use env_support::{alive, text, tree, Toy};
use serde_json::{json, Value};

#[test]
fn escape_attempts_are_all_refused_and_nothing_outside_changes() {
    let toy = Toy::new();
    let base = toy.path().canonicalize().unwrap();
    let outside = base.join("outside");
    env_support::write(&outside.join("secret.txt"), "secret\n");
    let marker = outside.join("pwned");
    env_support::write(
        &outside.join("evil.py"),
        &format!("open({:?}, 'w').write('x')\n", marker.display().to_string()),
    );
    // A sibling folder whose name starts with the workspace's name.
    let sibling = base.join("work/toy_sibling");
    env_support::write(&sibling.join("secret.txt"), "sibling secret\n");
    // The agent's first step plants links with a script, as an agent could.
    toy.env_file(
        "plant.py",
        &format!(
            "import os\n\
             os.symlink({out:?}, 'link_out')\n\
             os.symlink({out:?} + '/secret.txt', 'file_link')\n\
             os.symlink('../toy_sibling', 'rel_out')\n\
             os.symlink('loop_b', 'loop_a')\n\
             os.symlink('loop_a', 'loop_b')\n\
             os.symlink('train.csv', 'ro_link')\n\
             os.symlink({out:?} + '/evil.py', 'evil_link.py')\n",
            out = outside.display().to_string()
        ),
    );
    let before_outside = tree(&outside);
    let before_sibling = tree(&sibling);
    let before_task = tree(&toy.path().join("bench"));

    let abs_secret = outside.join("secret.txt").display().to_string();
    let abs_new = outside.join("new.txt").display().to_string();
    let ws_abs = base.join("work/toy/train.py").display().to_string();
    // (action, args, what the refusal must mention)
    let attempts: Vec<(&str, Value, &str)> = vec![
        (
            "List Files",
            json!({"dir_path": ".."}),
            "not in the work directory",
        ),
        ("List Files", json!({"dir_path": "/"}), "absolute"),
        (
            "List Files",
            json!({"dir_path": "link_out"}),
            "outside the workspace",
        ),
        (
            "Read File",
            json!({"file_name": "../outside/secret.txt"}),
            "not in the work directory",
        ),
        ("Read File", json!({"file_name": abs_secret}), "absolute"),
        ("Read File", json!({"file_name": ws_abs}), "absolute"),
        (
            "Read File",
            json!({"file_name": "../toy_sibling/secret.txt"}),
            "not in the work directory",
        ),
        (
            "Read File",
            json!({"file_name": "rel_out/secret.txt"}),
            "not in the work directory",
        ),
        (
            "Read File",
            json!({"file_name": "file_link"}),
            "outside the workspace",
        ),
        ("Read File", json!({"file_name": "loop_a"}), "loop"),
        ("Read File", json!({"file_name": "train.py\u{0}x"}), "NUL"),
        (
            "Write File",
            json!({"file_name": "../outside/new.txt", "content": "x"}),
            "not in the work directory",
        ),
        (
            "Write File",
            json!({"file_name": abs_new, "content": "x"}),
            "absolute",
        ),
        (
            "Write File",
            json!({"file_name": "../toy_sibling/secret.txt", "content": "x"}),
            "not in the work directory",
        ),
        (
            "Write File",
            json!({"file_name": "link_out/new.txt", "content": "x"}),
            "outside the workspace",
        ),
        (
            "Write File",
            json!({"file_name": "file_link", "content": "x"}),
            "outside the workspace",
        ),
        (
            "Write File",
            json!({"file_name": "loop_b/x", "content": "x"}),
            "loop",
        ),
        (
            "Append File",
            json!({"file_name": "file_link", "content": "x"}),
            "outside the workspace",
        ),
        (
            "Append File",
            json!({"file_name": "sub/../../outside/secret.txt", "content": "x"}),
            "not in the work directory",
        ),
        (
            "Copy File",
            json!({"source": "../outside/secret.txt", "destination": "stolen.txt"}),
            "not in the work directory",
        ),
        (
            "Copy File",
            json!({"source": "file_link", "destination": "stolen.txt"}),
            "outside the workspace",
        ),
        (
            "Copy File",
            json!({"source": "train.py", "destination": "../outside/copied.py"}),
            "not in the work directory",
        ),
        (
            "Copy File",
            json!({"source": "train.py", "destination": "link_out/copied.py"}),
            "outside the workspace",
        ),
        (
            "Execute Script",
            json!({"script_name": "../outside/evil.py"}),
            "not in the work directory",
        ),
        (
            "Execute Script",
            json!({"script_name": "evil_link.py"}),
            "outside the workspace",
        ),
        (
            "Inspect Script Lines",
            json!({"script_name": "../outside/secret.txt", "start_line_number": 1, "end_line_number": 1}),
            "not in the work directory",
        ),
        (
            "Understand File",
            json!({"file_name": "file_link", "things_to_look_for": "x"}),
            "outside the workspace",
        ),
        (
            "Undo Edit Script",
            json!({"script_name": "../outside/secret.txt"}),
            "not in the work directory",
        ),
        (
            "Edit Script (AI)",
            json!({"script_name": "train.py", "edit_instruction": "x", "save_name": "../outside/e.py"}),
            "not in the work directory",
        ),
        // Read-only files, in every spelling, through every writing action.
        (
            "Write File",
            json!({"file_name": "train.csv", "content": "x"}),
            "read-only",
        ),
        (
            "Write File",
            json!({"file_name": "./train.csv", "content": "x"}),
            "read-only",
        ),
        (
            "Write File",
            json!({"file_name": "data/../train.csv", "content": "x"}),
            "read-only",
        ),
        (
            "Write File",
            json!({"file_name": ".//data/./x.csv", "content": "x"}),
            "read-only",
        ),
        (
            "Write File",
            json!({"file_name": "ro_link", "content": "x"}),
            "read-only",
        ),
        (
            "Append File",
            json!({"file_name": "train.csv", "content": "x"}),
            "read-only",
        ),
        (
            "Append File",
            json!({"file_name": "./data/x.csv", "content": "x"}),
            "read-only",
        ),
        (
            "Copy File",
            json!({"source": "train.py", "destination": "train.csv"}),
            "read-only",
        ),
        (
            "Copy File",
            json!({"source": "train.py", "destination": "ro_link"}),
            "read-only",
        ),
        (
            "Edit Script (AI)",
            json!({"script_name": "train.py", "edit_instruction": "x", "save_name": "./train.csv"}),
            "read-only",
        ),
        (
            "Edit Script Segment (AI)",
            json!({"script_name": "train.py", "start_line_number": 1, "end_line_number": 1, "edit_instruction": "x", "save_name": "data/../train.csv"}),
            "read-only",
        ),
        (
            "Undo Edit Script",
            json!({"script_name": "train.csv"}),
            "read-only",
        ),
        (
            "Undo Edit Script",
            json!({"script_name": "ro_link"}),
            "read-only",
        ),
    ];
    assert!(attempts.len() >= 20);

    let mut actions = vec![json!({"name": "Execute Script", "args": {"script_name": "plant.py"}})];
    // A backup planted for train.csv: Undo must still refuse to restore it.
    actions.push(json!({"name": "Write File", "args": {"file_name": "backup/train.csv_2024-01-01_00-00-00", "content": "evil"}}));
    for (name, args, _) in &attempts {
        actions.push(json!({"name": name, "args": args}));
    }
    actions.push(json!({"name": "Final Answer", "args": {"final_answer": "done"}}));
    // The model actions must be refused on their paths before any model is
    // asked: the scripted model has no answers, so a call would fail the step.
    let llm = toy.script("no_answers.jsonl", &[]);
    let out = toy.run(&actions, &["--max-steps", "100", "--llm", &llm]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let obs = toy.observations();
    assert!(obs[0].starts_with("The script was run"), "{}", obs[0]);
    assert!(obs[1].contains("was written"), "{}", obs[1]);
    for (i, (name, args, must)) in attempts.iter().enumerate() {
        let o = &obs[i + 2];
        assert!(
            o.starts_with("EnvError: ") && o.contains(must),
            "attempt {i} {name} {args} was not refused as expected: {o}"
        );
    }
    assert_eq!(obs.last().unwrap(), "end");

    assert_eq!(
        tree(&outside),
        before_outside,
        "a file outside the workspace changed"
    );
    assert_eq!(tree(&sibling), before_sibling, "the sibling folder changed");
    assert_eq!(
        tree(&toy.path().join("bench")),
        before_task,
        "the prepared task changed"
    );
    assert!(!marker.exists());
    assert!(!toy.ws().join("stolen.txt").exists());
    assert_eq!(
        std::fs::read_to_string(toy.ws().join("train.csv")).unwrap(),
        "a,b\n1,2\n"
    );
    assert_eq!(
        std::fs::read_to_string(toy.ws().join("data/x.csv")).unwrap(),
        "x\n"
    );
    assert_eq!(toy.run_json()["tampered"], false);
    let _ = alive;
}

#[test]
fn read_only_copies_are_separate_files_from_the_prepared_originals() {
    use std::os::unix::fs::MetadataExt;
    let toy = Toy::new();
    let out = toy.run(
        &[json!({"name": "Final Answer", "args": {"final_answer": "x"}})],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let copy = std::fs::metadata(toy.ws().join("train.csv")).unwrap();
    let orig = std::fs::metadata(toy.path().join("bench/toy/env/train.csv")).unwrap();
    assert_ne!(
        copy.ino(),
        orig.ino(),
        "a hard link would let writes reach the original"
    );
    // Read-only files never enter a snapshot.
    let snap = toy.log().join("env_log/traces/step_final_files");
    assert!(snap.join("train.py").exists());
    assert!(!snap.join("train.csv").exists());
    assert!(!snap.join("data/x.csv").exists());
}
