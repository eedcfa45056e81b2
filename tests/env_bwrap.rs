//! The environment under bubblewrap: read-only files are mounted from the
//! prepared task (never copied) and cannot be written by scripts, the
//! task's answers are invisible, and mlab's own file actions still see the
//! read-only files.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
mod env_support;

use env_support::{text, tree, Toy};
use serde_json::json;

#[test]
fn under_bwrap_read_only_files_are_mounted_and_answers_are_hidden() {
    common::need_bwrap();
    let toy = Toy::new();
    let bench = toy.path().join("bench").canonicalize().unwrap();
    env_support::write(&bench.join("toy/script/answer.csv"), "secret answers\n");
    toy.env_file(
        "probe.py",
        &format!(
            "import os\n\
             try:\n    open('train.csv', 'w').write('x')\n    print('WROTE train.csv')\n\
             except OSError as e:\n    print('train.csv is read-only:', type(e).__name__)\n\
             print('train.csv says', open('train.csv').read().strip().replace(chr(10), '|'))\n\
             try:\n    print('ANSWERS', open({ans:?}).read())\n\
             except OSError as e:\n    print('answers hidden:', type(e).__name__)\n\
             open('out.txt', 'w').write('made inside')\n",
            ans = bench.join("toy/script/answer.csv").display().to_string()
        ),
    );
    let before = tree(&bench);
    let out = toy.run(
        &[
            json!({"name": "Execute Script", "args": {"script_name": "probe.py"}}),
            json!({"name": "Read File", "args": {"file_name": "train.csv"}}),
            json!({"name": "List Files", "args": {"dir_path": "."}}),
            json!({"name": "Copy File", "args": {"source": "train.csv", "destination": "mine.csv"}}),
            json!({"name": "Final Answer", "args": {"final_answer": "x"}}),
        ],
        &["--sandbox", "bwrap"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let obs = toy.observations();
    assert!(obs[0].contains("train.csv is read-only"), "{}", obs[0]);
    assert!(!obs[0].contains("WROTE"), "{}", obs[0]);
    assert!(obs[0].contains("train.csv says a,b|1,2"), "{}", obs[0]);
    assert!(!obs[0].contains("secret answers"), "{}", obs[0]);
    assert_eq!(obs[1], "a,b\n1,2\n", "mlab reads the mounted file's source");
    assert!(obs[2].contains("train.csv"), "{}", obs[2]);
    assert_eq!(
        std::fs::read_to_string(toy.ws().join("mine.csv")).unwrap(),
        "a,b\n1,2\n"
    );
    // The workspace holds only an empty placeholder: nothing was copied.
    assert_eq!(
        std::fs::metadata(toy.ws().join("train.csv")).unwrap().len(),
        0
    );
    let fin = toy.log().join("env_log/traces/step_final_files");
    assert!(fin.join("out.txt").exists());
    assert!(!fin.join("train.csv").exists());
    let r = toy.run_json();
    assert_eq!(r["sandbox"], "bwrap");
    assert_eq!(r["tampered"], false);
    assert_eq!(tree(&bench), before, "the prepared task changed");
}
