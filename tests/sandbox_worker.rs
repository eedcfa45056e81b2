//! Long-lived sandboxed processes: a worker fed over stdin (what the Python
//! REPL and the grader worker are), and graders that see the answers but
//! cannot change them or reach the network.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use common::{mlab, output, text};

const WORKER: &str = "import sys\n\
for line in sys.stdin:\n\
\x20   print(eval(line), flush=True)\n\
print('bye')\n";

#[test]
fn a_persistent_worker_answers_each_request_over_stdin() {
    common::need_bwrap();
    let ws = tempfile::tempdir().unwrap();
    let mut child = mlab()
        .args([
            "sandbox-exec",
            "--sandbox",
            "bwrap",
            "--stdin",
            "--workspace",
        ])
        .arg(ws.path())
        .arg("--python")
        .arg(common::python())
        .args(["--", "python", "-c", WORKER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Each answer comes back before the next request is sent: one process
    // serves them all.
    for (ask, want) in [("1+1", "2"), ("6*7", "42"), ("len('sandbox')", "7")] {
        writeln!(stdin, "{ask}").unwrap();
        stdin.flush().unwrap();
        assert_eq!(lines.next().unwrap().unwrap(), want);
    }
    writeln!(stdin, "__import__('os').getpid()").unwrap();
    stdin.flush().unwrap();
    let pid: u32 = lines.next().unwrap().unwrap().parse().unwrap();
    assert!(pid < 10, "not in its own pid namespace: pid {pid}");
    drop(stdin);
    assert_eq!(lines.next().unwrap().unwrap(), "bye");
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_grader_reads_the_answers_and_snapshot_but_cannot_change_them() {
    common::need_bwrap();
    let d = tempfile::tempdir().unwrap();
    let root = d.path().canonicalize().unwrap();
    let snapshot = root.join("logs/env_log/traces/step_final_files");
    let script = root.join("task/script");
    let env = root.join("task/env");
    for p in [&snapshot, &script, &env] {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::write(script.join("answer.csv"), "1\n2\n3\n").unwrap();
    std::fs::write(snapshot.join("submission.csv"), "1\n2\n4\n").unwrap();
    std::fs::write(env.join("data.csv"), "x\n").unwrap();
    std::fs::write(root.join("logs/env_log/trace.json"), "TRACE-SECRET").unwrap();
    let code = format!(
        "import os, socket\n\
         ans = open('answer.csv').read().split()\n\
         sub = open('{snap}/submission.csv').read().split()\n\
         print('score', sum(a == b for a, b in zip(ans, sub)) / len(ans))\n\
         print('data', open('{env}/data.csv').read().strip())\n\
         for path in ['answer.csv', '{snap}/submission.csv']:\n\
         \x20   try:\n\
         \x20       open(path, 'w').write('0')\n\
         \x20       print('WROTE', path)\n\
         \x20   except OSError as e:\n\
         \x20       print('refused', e.errno)\n\
         try:\n\
         \x20   print('LEAK', open('{trace}').read())\n\
         except OSError:\n\
         \x20   print('trace hidden')\n\
         try:\n\
         \x20   socket.create_connection(('pypi.org', 443), timeout=5)\n\
         \x20   print('CONNECTED')\n\
         except OSError:\n\
         \x20   print('offline')\n\
         open('/tmp/scratch', 'w').write('ok')\n",
        snap = snapshot.display(),
        env = env.display(),
        trace = root.join("logs/env_log/trace.json").display(),
    );
    let o = output(
        mlab()
            .args(["sandbox-exec", "--sandbox", "bwrap", "--grader"])
            .args([&snapshot, &script, &env])
            .arg("--hide")
            .arg(root.join("logs/env_log/trace.json"))
            .arg("--python")
            .arg(common::python())
            .args(["--", "python", "-c", &code]),
    );
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(out.contains("score 0.666"), "{out}");
    assert!(out.contains("data x"), "{out}");
    assert_eq!(out.matches("refused 30").count(), 2, "{out}");
    assert!(
        out.contains("trace hidden") && out.contains("offline"),
        "{out}"
    );
    assert!(!out.contains("WROTE") && !out.contains("LEAK") && !out.contains("CONNECTED"));
    assert_eq!(
        std::fs::read_to_string(script.join("answer.csv")).unwrap(),
        "1\n2\n3\n"
    );
}
