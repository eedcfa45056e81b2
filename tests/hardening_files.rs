//! Issue 11, the file half: what mlab reads and writes on the agent's
//! behalf. A backup planted as a link is never followed, special files never
//! stall an action, no file is read past the cap, and no action makes a name
//! that a listing cannot show. Runs `mlab run --agent actions` on the toy
//! task; the link-sensitive cases run once with `openat2` and once with the
//! component walk (`MLAB_FSAT_WALK=1`).
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
mod env_support;

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Output;

use env_support::{text, wait_for, Toy};
use serde_json::{json, Value};

/// Both ways `fsat` opens paths: `openat2` (where the kernel has it) and
/// the per-component `O_NOFOLLOW` walk.
const BACKENDS: [bool; 2] = [false, true];

/// Runs the actions, with the walk forced when `walk` is set, and returns
/// the output. A run that has not ended after `limit` seconds is killed and
/// fails the test (a hang is the bug some of these guard against).
fn run(toy: &Toy, actions: &[Value], walk: bool, envs: &[(&str, &str)]) -> Output {
    run_in(toy, actions, walk, envs, &[])
}

/// `run` with more `mlab run` flags (a sandbox, say).
fn run_in(
    toy: &Toy,
    actions: &[Value],
    walk: bool,
    envs: &[(&str, &str)],
    extra: &[&str],
) -> Output {
    let file = toy.actions("actions.jsonl", actions);
    // Model-backed actions (Understand File) must be refused on their file
    // before any model is asked: this scripted model has no answers, so a
    // call would turn the observation into a model error.
    let llm = toy.script("no_answers.jsonl", &[]);
    let mut flags = vec!["--max-steps", "100", "--llm", &llm];
    flags.extend_from_slice(extra);
    let mut cmd = toy.command(&file, &toy.log(), &flags);
    if walk {
        cmd.env("MLAB_FSAT_WALK", "1");
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let limit = 300;
    let mut status = None;
    let ended = wait_for(limit, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !ended {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "mlab had not ended after {limit} s (it hangs): {}",
            text(&out.stderr)
        );
    }
    child.wait_with_output().unwrap()
}

fn step(name: &str, args: Value) -> Value {
    json!({"name": name, "args": args})
}

fn script(name: &str) -> Value {
    step("Execute Script", json!({"script_name": name}))
}

fn final_answer() -> Value {
    step("Final Answer", json!({"final_answer": "done"}))
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for e in walkdir::WalkDir::new(dir).follow_links(false) {
        let Ok(e) = e else { continue };
        if !e.file_type().is_file() {
            continue;
        }
        if let Ok(bytes) = std::fs::read(e.path()) {
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                hits.push(e.path().display().to_string());
            }
        }
    }
    hits
}

#[test]
fn undo_edit_script_refuses_a_symlinked_backup() {
    for walk in BACKENDS {
        symlinked_backups_are_not_restored(walk, &[]);
    }
}

/// The same under bubblewrap, as `.ci/run` runs the hostile cases: agent
/// code cannot read the answers there, but mlab itself could, for it.
#[test]
fn undo_edit_script_refuses_a_symlinked_backup_under_bwrap() {
    env_support::common::need_bwrap();
    symlinked_backups_are_not_restored(false, &["--sandbox", "bwrap"]);
}

fn symlinked_backups_are_not_restored(walk: bool, extra: &[&str]) {
    const ANSWER: &str = "hidden-answer-4711";
    const CANARY: &str = "mlab-environ-canary-0815";
    let toy = Toy::new();
    // The task's hidden answers, which only the grader may read.
    let answers = toy.path().join("bench/toy/script/answers.csv");
    env_support::write(&answers, &format!("id,label\n1,{ANSWER}\n"));
    toy.env_file("notes.txt", "mine\n");
    toy.env_file("env.txt", "mine\n");
    toy.env_file("rel.txt", "mine\n");
    toy.env_file("decoy.txt", "decoy\n");
    toy.env_file(
        "plant.py",
        &format!(
            "import os\n\
             os.makedirs('backup', exist_ok=True)\n\
             os.symlink({answers:?}, 'backup/notes.txt_2099-01-01_00-00-00')\n\
             os.symlink('/proc/self/environ', 'backup/env.txt_2099-01-01_00-00-00')\n\
             os.symlink('../decoy.txt', 'backup/rel.txt_2099-01-01_00-00-00')\n",
            answers = answers.display().to_string()
        ),
    );
    let out = run_in(
        &toy,
        &[
            script("plant.py"),
            step("Undo Edit Script", json!({"script_name": "notes.txt"})),
            step("Undo Edit Script", json!({"script_name": "env.txt"})),
            step("Undo Edit Script", json!({"script_name": "rel.txt"})),
            final_answer(),
        ],
        walk,
        &[("MLAB_HARDENING_CANARY", CANARY)],
        extra,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let obs = toy.observations();
    assert!(obs[0].starts_with("The script was run"), "{}", obs[0]);
    for (o, name) in obs[1..4].iter().zip(["notes.txt", "env.txt", "rel.txt"]) {
        assert!(
            o.starts_with(&format!("There is no change to undo: {name}"))
                && o.contains("not regular files"),
            "walk={walk}: {o}"
        );
        assert_eq!(
            std::fs::read_to_string(toy.ws().join(name)).unwrap(),
            "mine\n",
            "walk={walk}: {name} was overwritten"
        );
    }
    // Neither secret reached the workspace, the trace or any log.
    for secret in [ANSWER, CANARY] {
        assert_eq!(files_containing(&toy.ws(), secret), Vec::<String>::new());
        assert_eq!(files_containing(&toy.log(), secret), Vec::<String>::new());
    }
    // The planted links are left as they were (not used, not removed).
    assert!(toy
        .ws()
        .join("backup/notes.txt_2099-01-01_00-00-00")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn undo_edit_script_refuses_a_backup_folder_that_is_a_link() {
    for walk in BACKENDS {
        let toy = Toy::new();
        let outside = toy.path().join("outside");
        env_support::write(
            &outside.join("notes.txt_2099-01-01_00-00-00"),
            "outside secret\n",
        );
        toy.env_file("notes.txt", "mine\n");
        toy.env_file("decoy/notes.txt_2099-01-01_00-00-00", "decoy\n");
        toy.env_file(
            "link_out.py",
            &format!(
                "import os, shutil\nshutil.rmtree('backup')\nos.symlink({:?}, 'backup')\n",
                outside.display().to_string()
            ),
        );
        // A link to a folder inside the workspace redirects backups too.
        toy.env_file(
            "link_in.py",
            "import os\nos.remove('backup')\nos.symlink('decoy', 'backup')\n",
        );
        let undo = step("Undo Edit Script", json!({"script_name": "notes.txt"}));
        let out = run(
            &toy,
            &[
                script("link_out.py"),
                undo.clone(),
                script("link_in.py"),
                undo,
                final_answer(),
            ],
            walk,
            &[],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let obs = toy.observations();
        for o in [&obs[1], &obs[3]] {
            assert!(
                o.starts_with("EnvError: ") && o.contains("symbolic link"),
                "walk={walk}: {o}"
            );
        }
        assert_eq!(
            std::fs::read_to_string(toy.ws().join("notes.txt")).unwrap(),
            "mine\n"
        );
        assert!(toy
            .ws()
            .join("decoy/notes.txt_2099-01-01_00-00-00")
            .exists());
        assert!(outside.join("notes.txt_2099-01-01_00-00-00").exists());
    }
}

#[test]
fn reading_a_fifo_or_socket_is_refused_without_hanging() {
    for walk in BACKENDS {
        let toy = Toy::new();
        toy.env_file(
            "make_special.py",
            "import os, socket\nos.mkfifo('fifo')\ns = socket.socket(socket.AF_UNIX)\ns.bind('sock')\n",
        );
        let lines = |f: &str| {
            step(
                "Inspect Script Lines",
                json!({"script_name": f, "start_line_number": 1, "end_line_number": 5}),
            )
        };
        let attempts: Vec<(Value, &str)> = vec![
            (
                step("Read File", json!({"file_name": "fifo"})),
                "FIFO (named pipe)",
            ),
            (lines("fifo"), "FIFO (named pipe)"),
            (
                step(
                    "Understand File",
                    json!({"file_name": "fifo", "things_to_look_for": "x"}),
                ),
                "FIFO (named pipe)",
            ),
            (
                step(
                    "Copy File",
                    json!({"source": "fifo", "destination": "copied.txt"}),
                ),
                "FIFO (named pipe)",
            ),
            (step("Read File", json!({"file_name": "sock"})), "a socket"),
            (lines("sock"), "a socket"),
            (
                step(
                    "Copy File",
                    json!({"source": "sock", "destination": "copied.txt"}),
                ),
                "a socket",
            ),
            (step("Read File", json!({"file_name": "data"})), "folder"),
        ];
        let mut actions = vec![script("make_special.py")];
        actions.extend(attempts.iter().map(|(a, _)| a.clone()));
        actions.push(step("List Files", json!({"dir_path": "."})));
        actions.push(final_answer());
        let out = run(&toy, &actions, walk, &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let obs = toy.observations();
        for (i, (action, must)) in attempts.iter().enumerate() {
            let o = &obs[i + 1];
            assert!(
                o.starts_with("EnvError: ") && o.contains(must),
                "walk={walk}: {action} was not refused as expected: {o}"
            );
        }
        let listing = &obs[attempts.len() + 1];
        assert!(
            listing.contains("fifo|\n") && listing.contains("sock=\n"),
            "{listing}"
        );
        assert!(!toy.ws().join("copied.txt").exists());
    }
}

#[test]
fn a_sparse_20_gb_file_is_refused_by_the_stated_read_cap() {
    let toy = Toy::new();
    // Under data/, which is read-only by pattern, so snapshots leave it out.
    toy.env_file(
        "make_big.py",
        "with open('data/big.txt', 'wb') as f:\n    f.truncate(20 * 1024 ** 3)\n",
    );
    let attempts = [
        step("Read File", json!({"file_name": "data/big.txt"})),
        step(
            "Inspect Script Lines",
            json!({"script_name": "data/big.txt", "start_line_number": 1, "end_line_number": 2}),
        ),
        step(
            "Understand File",
            json!({"file_name": "data/big.txt", "things_to_look_for": "x"}),
        ),
    ];
    let mut actions = vec![script("make_big.py")];
    actions.extend(attempts.iter().cloned());
    actions.push(final_answer());
    let out = run(&toy, &actions, false, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let obs = toy.observations();
    assert!(obs[0].starts_with("The script was run"), "{}", obs[0]);
    for o in &obs[1..=attempts.len()] {
        assert!(
            o.starts_with("EnvError: ")
                && o.contains("20480 MB")
                && o.contains("more than the 10 MB an action reads"),
            "{o}"
        );
    }
}

#[test]
fn write_file_with_a_trailing_slash_is_refused_as_a_folder() {
    let toy = Toy::new();
    let attempts = [
        step(
            "Write File",
            json!({"file_name": "newfile/", "content": "x"}),
        ),
        step(
            "Write File",
            json!({"file_name": "sub/newfile/", "content": "x"}),
        ),
        step(
            "Write File",
            json!({"file_name": "newfile/.", "content": "x"}),
        ),
        step(
            "Append File",
            json!({"file_name": "newlog/", "content": "x"}),
        ),
        step(
            "Copy File",
            json!({"source": "train.py", "destination": "copydir/"}),
        ),
        step("Write File", json!({"file_name": ".", "content": "x"})),
    ];
    let mut actions: Vec<Value> = attempts.to_vec();
    actions.push(final_answer());
    let out = run(&toy, &actions, false, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let obs = toy.observations();
    for (i, o) in obs[..attempts.len()].iter().enumerate() {
        assert!(
            o.starts_with("EnvError: ") && o.contains("names a folder"),
            "attempt {i}: {o}"
        );
    }
    for name in ["newfile", "sub", "newlog", "copydir"] {
        assert!(
            toy.ws().join(name).symlink_metadata().is_err(),
            "{name} was made"
        );
    }
}

#[test]
fn file_names_with_control_characters_are_refused_and_listed_escaped() {
    let toy = Toy::new();
    // Made by agent code, which mlab cannot stop: List Files must still
    // show one entry per line.
    toy.env_file(
        "make_odd.py",
        "open('bad\\nname.txt', 'w').write('x')\n\
         open('esc\\x1b[31m.txt', 'w').write('x')\n\
         open(b'inv\\xff', 'w').write('x')\n",
    );
    let attempts = [
        step(
            "Write File",
            json!({"file_name": "a\nb.txt", "content": "x"}),
        ),
        step(
            "Write File",
            json!({"file_name": "tab\there.txt", "content": "x"}),
        ),
        step(
            "Write File",
            json!({"file_name": "dir\r/x.txt", "content": "x"}),
        ),
        step(
            "Append File",
            json!({"file_name": "esc\u{1b}[31m.log", "content": "x"}),
        ),
        step(
            "Copy File",
            json!({"source": "train.py", "destination": "copy\u{7f}.py"}),
        ),
        step(
            "Write File",
            json!({"file_name": "c1\u{85}.py", "content": "x"}),
        ),
    ];
    let mut actions: Vec<Value> = attempts.to_vec();
    actions.push(script("make_odd.py"));
    actions.push(step("List Files", json!({"dir_path": "."})));
    actions.push(final_answer());
    let out = run(&toy, &actions, false, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let obs = toy.observations();
    for (i, o) in obs[..attempts.len()].iter().enumerate() {
        assert!(
            o.starts_with("EnvError: ") && o.contains("control characters"),
            "attempt {i}: {o}"
        );
    }
    // Only the script's three odd names exist.
    let odd: Vec<Vec<u8>> = std::fs::read_dir(toy.ws())
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .filter(|n| n.iter().any(|b| *b < 0x20 || *b == 0x7f) || std::str::from_utf8(n).is_err())
        .collect();
    assert_eq!(odd.len(), 3, "{odd:?}");

    let listing = &obs[attempts.len() + 1];
    for shown in [
        "\"bad\\nname.txt\"\n",
        "\"esc\\u{1b}[31m.txt\"\n",
        "\"inv\\xff\"\n",
        "train.py\n",
    ] {
        assert!(
            listing.contains(shown),
            "{shown:?} missing from {listing:?}"
        );
    }
    assert!(
        !listing
            .chars()
            .any(|c| c != '\n' && (c.is_control() || c == '\u{fffd}')),
        "{listing:?}"
    );
    // One line per entry, and a line that says how odd names are shown.
    let entries = std::fs::read_dir(toy.ws())
        .unwrap()
        .filter(|e| !e.as_ref().unwrap().file_name().as_bytes().starts_with(b"."))
        .count();
    assert_eq!(listing.lines().count(), entries + 1, "{listing}");
    assert!(listing.contains("shown escaped"), "{listing}");
}
