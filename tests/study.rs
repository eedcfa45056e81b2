//! Studies through `mlab run`: the local queue, its layout, idempotence,
//! resume after SIGKILL, Ctrl-C, device exclusivity, and `mlab eval` on an
//! experiment folder.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{mlab, read_json, real_python, text, wait_for};
use mlab::testing::scripted::{self, research_reply};
use mlab::testing::toy::ToyTask;
use serde_json::{json, Value};

/// The toy eval: the number in submission.csv.
const EVAL: &str = "import os\ndef get_score(folder):\n    return float(open(os.path.join(folder, 'submission.csv')).read().split()[-1])\n";

/// A benchmarks folder with the toy task (its train.py as given), and a
/// folder `shared` that scripts may use for handshakes.
struct Study {
    dir: tempfile::TempDir,
}

impl Study {
    fn new(train_py: &str, gpu: bool) -> Study {
        let dir = tempfile::tempdir().unwrap();
        let mut task = ToyTask::new()
            .env("train.py", train_py)
            .env("submission.csv", "id\n1\n")
            .no_read_only()
            .eval_py(EVAL);
        if gpu {
            task = task.set_raw("requires", "{ gpu = true }");
        }
        task.write_in(&dir.path().join("bench"));
        std::fs::create_dir_all(dir.path().join("shared")).unwrap();
        Study { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn exp(&self) -> PathBuf {
        self.path().join("exp")
    }

    fn shared(&self) -> PathBuf {
        self.path().join("shared")
    }

    /// Starts a study of `runs` runs at once (`--jobs runs`) whose
    /// train.py waits, and returns once every run has started: the model
    /// file and the study's process.
    fn start_waiting(&self, runs: usize) -> (String, std::process::Child) {
        std::fs::write(
            self.path().join("bench/toy/env/train.py"),
            waiting_script(&self.shared(), None),
        )
        .unwrap();
        let a = self.model("a.jsonl");
        let n = runs.to_string();
        let child = self
            .command(&a, &["--runs", &n, "--jobs", &n])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        assert!(
            wait_for(60, || self.started() == runs),
            "the runs did not start"
        );
        (a, child)
    }

    /// A scripted research model: list files, run train.py, answer.
    fn model(&self, name: &str) -> String {
        scripted::write(
            &self.path().join(name),
            &[
                research_reply("look", "List Files", json!({"dir_path": "."})),
                research_reply("run", "Execute Script", json!({"script_name": "train.py"})),
                research_reply("done", "Final Answer", json!({"final_answer": "done"})),
            ],
        )
    }

    /// `mlab run` as a study over the toy task with these study flags.
    fn command(&self, llms: &str, extra: &[&str]) -> Command {
        let mut c = mlab();
        c.arg("--benchmarks-dir")
            .arg(self.path().join("bench"))
            .args(["run", "--task", "toy", "--agent", "research", "--llm", llms])
            .arg("--python")
            .arg(real_python())
            .args(["--sandbox", "none", "--exp-dir"])
            .arg(self.exp())
            .args(extra)
            .stdin(Stdio::null());
        c
    }

    fn run_json(&self, id: &str) -> Value {
        read_json(&self.exp().join(id).join("run.json"))
    }

    fn plan(&self) -> Value {
        read_json(&self.exp().join("plan.json"))
    }

    fn ids(&self) -> Vec<String> {
        self.plan()["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// Files named started-* in the shared folder.
    fn started(&self) -> usize {
        std::fs::read_dir(self.shared())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("started-"))
            .count()
    }
}

fn both(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

/// train.py that records its start in SHARED and waits there for `go`;
/// the run of seed `free` (if any) does not wait.
fn waiting_script(shared: &Path, free: Option<u64>) -> String {
    format!(
        "import os, time, pathlib\n\
         d = pathlib.Path({shared:?})\n\
         cwd = os.getcwd()\n\
         (d / ('started-' + cwd.replace('/', '_'))).touch()\n\
         free = {free}\n\
         if not (free is not None and ('/%d.workspace/' % free) in (cwd + '/')):\n\
         \x20   while not (d / 'go').exists():\n\
         \x20       time.sleep(0.02)\n\
         open('submission.csv', 'w').write('id\\n2\\n')\n\
         print('trained')\n",
        shared = shared.display().to_string(),
        free = free.map_or("None".to_string(), |f| f.to_string()),
    )
}

#[test]
fn ten_runs_with_four_jobs_finish_in_their_folders_and_a_second_command_does_nothing() {
    let s = Study::new(
        "open('submission.csv', 'w').write('id\\n3\\n')\nprint('ok')\n",
        false,
    );
    let a = s.model("a.jsonl");
    let b = s.model("b.jsonl");
    let llms = format!("{a},{b}");
    let out = s
        .command(&llms, &["--runs", "5", "--jobs", "4"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", both(&out));
    let plan = s.plan();
    assert_eq!(plan["version"], 1);
    let configs: Vec<String> = plan["configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(configs.len(), 2, "{plan}");
    let ids = s.ids();
    assert_eq!(ids.len(), 10);
    let mut starts = Vec::new();
    for (i, r) in plan["runs"].as_array().unwrap().iter().enumerate() {
        assert_eq!(r["index"], i);
        let id = r["id"].as_str().unwrap();
        let seed = r["seed"].as_u64().unwrap();
        assert_eq!(seed, i as u64 % 5);
        let config = r["config"].as_str().unwrap();
        assert_eq!(config, configs[i / 5]);
        let dir = plan["configs"][i / 5]["dir"].as_str().unwrap();
        assert_eq!(id, format!("toy/{dir}/{seed}"));
        let log = s.exp().join(id);
        assert_eq!(Path::new(r["log_dir"].as_str().unwrap()), log);
        let rj = s.run_json(id);
        assert_eq!(rj["exit_reason"], "final_answer", "{id}: {rj}");
        assert_eq!(rj["seed"], seed);
        assert_eq!(rj["config"], config, "run.json config is the plan's label");
        assert!(log.join("env_log/trace.json").is_file());
        assert!(log.join("env_log/traces/step_final_files").is_dir());
        // Its own workspace, beside its log folder.
        assert!(s
            .exp()
            .join(format!("toy/{dir}/{seed}.workspace/toy/train.py"))
            .is_file());
        starts.push(rj["start_time"].clone());
    }

    let again = s
        .command(&llms, &["--runs", "5", "--jobs", "4"])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", both(&again));
    assert!(
        both(&again).contains("nothing to do: 10 runs finished"),
        "{}",
        both(&again)
    );
    for (id, start) in ids.iter().zip(&starts) {
        assert_eq!(&s.run_json(id)["start_time"], start, "{id} ran again");
    }

    let st = mlab()
        .arg("status")
        .arg(s.exp())
        .arg("--json")
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", both(&st));
    let doc: Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(doc["counts"]["finished"], 10, "{doc}");
    assert_eq!(doc["runs"][3]["exit_reason"], "final_answer");

    // Item 7: eval on the experiment folder groups by the plan's configs.
    let results = s.exp().join("eval.json");
    let ev = mlab()
        .arg("--benchmarks-dir")
        .arg(s.path().join("bench"))
        .arg("eval")
        .arg("--log-folder")
        .arg(s.exp())
        .arg("--python")
        .arg(common::python())
        .args(["--sandbox", "none"])
        .output()
        .unwrap();
    assert!(ev.status.success(), "{}", both(&ev));
    let doc = common::eval_outputs(&results);
    let groups = doc["summary"].as_array().unwrap();
    let mut names: Vec<&str> = groups
        .iter()
        .filter(|g| g["task"] == "toy")
        .map(|g| g["config"].as_str().unwrap())
        .collect();
    names.sort();
    let mut want: Vec<&str> = configs.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(names, want, "{groups:?}");
    // mlab status shows the scores eval wrote.
    let st = mlab()
        .arg("status")
        .arg(s.exp())
        .arg("--json")
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&st.stdout).unwrap();
    for r in doc["runs"].as_array().unwrap() {
        assert_eq!(r["score"], 3.0, "{r}");
    }
}

#[test]
fn a_sigkilled_study_resumes_without_redoing_finished_runs() {
    let s = Study::new("", false);
    let script = waiting_script(&s.shared(), Some(0));
    std::fs::write(s.path().join("bench/toy/env/train.py"), script).unwrap();
    let a = s.model("a.jsonl");
    let args = ["--runs", "4", "--jobs", "2"];
    let mut child = s
        .command(&a, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Seed 0 finishes; seeds 1 and 2 wait in train.py.
    let ids = {
        assert!(wait_for(60, || s.exp().join("plan.json").is_file()));
        s.ids()
    };
    assert!(
        wait_for(60, || s.exp().join(&ids[0]).join("run.json").is_file()
            && s.run_json(&ids[0])["end_time"].is_string()
            && s.started() == 3),
        "seed 0 did not finish, or seeds 1 and 2 did not start"
    );
    let first_start = s.run_json(&ids[0])["start_time"].clone();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The children close themselves (PR_SET_PDEATHSIG): their run.json is
    // closed as interrupted, and their workspace locks are released.
    for id in &ids[1..3] {
        assert!(
            wait_for(30, || s.run_json(id)["exit_reason"] == "interrupted"),
            "{id} was not closed after the study was killed: {}\nrun-one.log:\n{}",
            s.run_json(id),
            std::fs::read_to_string(s.exp().join(id).join("run-one.log")).unwrap_or_default()
        );
    }
    assert!(!s.exp().join(&ids[3]).join("run.json").exists());
    std::fs::write(s.shared().join("go"), "").unwrap();
    let out = s.command(&a, &args).output().unwrap();
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(
        s.run_json(&ids[0])["start_time"],
        first_start,
        "seed 0 ran again"
    );
    for id in &ids {
        assert_eq!(s.run_json(id)["exit_reason"], "final_answer", "{id}");
    }
    for id in &ids[1..3] {
        // Resumed in place: the interrupted part's run.json is kept beside.
        let kept = std::fs::read_dir(s.exp().join(id))
            .unwrap()
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with("run.") && n.ends_with(".json") && n != "run.json"
            })
            .count();
        assert_eq!(kept, 1, "{id} was not resumed from its last step");
        let events =
            std::fs::read_to_string(s.exp().join(id).join("env_log/events.jsonl")).unwrap();
        assert!(events.contains("\"resume\""), "{id}: {events}");
    }
}

#[test]
fn sigint_closes_every_run_with_its_final_snapshot_and_exits_130() {
    let s = Study::new("", false);
    let (_, child) = s.start_waiting(3);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", both(&out));
    for id in s.ids() {
        let rj = s.run_json(&id);
        assert_eq!(rj["exit_reason"], "interrupted", "{id}: {rj}");
        assert!(rj["end_time"].is_string(), "{id}: {rj}");
        assert!(
            s.exp()
                .join(&id)
                .join("env_log/traces/step_final_files")
                .is_dir(),
            "{id} has no final snapshot"
        );
    }
}

#[test]
fn gpu_runs_never_share_a_device_beyond_runs_per_device() {
    // Each run holds its device for a moment (train.py runs 0.2 s), so
    // runs that share a device would overlap.
    let s = Study::new(
        "import time\ntime.sleep(0.2)\nopen('submission.csv', 'w').write('id\\n1\\n')\n",
        true,
    );
    let a = s.model("a.jsonl");
    let out = s
        .command(
            &a,
            &[
                "--runs",
                "6",
                "--jobs",
                "6",
                "--devices",
                "0,1",
                "--runs-per-device",
                "1",
            ],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", both(&out));
    let mut by_device: std::collections::BTreeMap<String, Vec<(f64, f64)>> = Default::default();
    for id in s.ids() {
        let rj = s.run_json(&id);
        let device = rj["flags"]["device"].as_str().unwrap().to_string();
        let t = |k: &str| {
            chrono::DateTime::parse_from_rfc3339(rj[k].as_str().unwrap())
                .unwrap()
                .timestamp_micros() as f64
                / 1e6
        };
        by_device
            .entry(device)
            .or_default()
            .push((t("start_time"), t("end_time")));
    }
    assert_eq!(
        by_device.keys().cloned().collect::<Vec<_>>(),
        ["0", "1"],
        "every run gets one of the devices: {by_device:?}"
    );
    for (device, mut spans) in by_device {
        spans.sort_by(|a, b| a.0.total_cmp(&b.0));
        for w in spans.windows(2) {
            assert!(
                w[1].0 >= w[0].1,
                "two runs held device {device} at once: {:?} and {:?}",
                w[0],
                w[1]
            );
        }
    }
}

/// Files `run.<time>.json` in a log folder: the earlier parts of a run
/// that was taken up again.
fn kept_records(log: &Path) -> usize {
    std::fs::read_dir(log)
        .unwrap()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("run.") && n.ends_with(".json") && n != "run.json"
        })
        .count()
}

#[test]
fn retry_infra_runs_infrastructure_failures_again_and_never_runs_the_agent_ended() {
    let s = Study::new("print('x')\n", false);
    let down = scripted::write(
        &s.path().join("down.jsonl"),
        &[json!({"error": "unreachable", "message": "the provider is down"})],
    );
    let refuses = scripted::write(
        &s.path().join("refuses.jsonl"),
        &[json!({"error": "refusal", "message": "no"})],
    );
    let llms = format!("{down},{refuses}");
    let out = s.command(&llms, &["--retry-infra", "2"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let ids = s.ids();
    let (down_id, refused_id) = (&ids[0], &ids[1]);
    assert_eq!(s.run_json(down_id)["exit_reason"], "llm_error");
    assert_eq!(s.run_json(down_id)["infra_failure"], true);
    assert_eq!(s.run_json(refused_id)["exit_reason"], "model_error");
    // Three tries of the infrastructure failure, one of the model's.
    assert_eq!(kept_records(&s.exp().join(down_id)), 2, "{}", both(&out));
    assert_eq!(kept_records(&s.exp().join(refused_id)), 0);

    // Without --retry-infra, the same command leaves both alone.
    let again = s.command(&llms, &[]).output().unwrap();
    assert!(again.status.success(), "{}", both(&again));
    assert!(
        both(&again).contains("nothing to do: 1 runs finished")
            && both(&again).contains("1 infra_failed"),
        "{}",
        both(&again)
    );
    assert_eq!(kept_records(&s.exp().join(down_id)), 2);
}

#[test]
fn max_cost_caps_the_whole_study() {
    use mlab::testing::mock_server::{MockServer, Reply};
    let s = Study::new("print('x')\n", false);
    let server = MockServer::start();
    server.always(Reply::openai_text(
        research_reply("done", "Final Answer", json!({"final_answer": "done"}))
            .as_str()
            .unwrap(),
        10,
        5,
    ));
    // $0.50 a call (5 output tokens at $100,000 per million); each run
    // makes one call. Each run stays under $0.90; the study passes it with
    // its second run.
    let prices = s.path().join("prices.toml");
    std::fs::write(&prices, "\"priced\" = { input = 0.0, output = 100000.0 }\n").unwrap();
    let llm = format!("openai:priced@{}/v1", server.url());
    let out = s
        .command(
            &llm,
            &[
                "--runs",
                "4",
                "--jobs",
                "1",
                "--max-cost",
                "0.9",
                "--prices",
                prices.to_str().unwrap(),
            ],
        )
        .env("OPENAI_API_KEY", "test-key")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(both(&out).contains("--max-cost"), "{}", both(&out));
    let ids = s.ids();
    assert_eq!(s.run_json(&ids[0])["exit_reason"], "final_answer");
    // The second run passed the budget with its call: it is stopped (or
    // has finished, if it closed before the queue saw its spending).
    let second = s.run_json(&ids[1])["exit_reason"].clone();
    assert!(
        second == "final_answer" || second == "interrupted",
        "{second}"
    );
    for id in &ids[2..] {
        assert!(
            !s.exp().join(id).join("run.json").exists(),
            "{id} started past the study's budget"
        );
    }
}

#[test]
fn a_plan_file_makes_its_cross_product_with_per_config_flags() {
    let s = Study::new("print('ok')\n", false);
    let a = s.model("a.jsonl");
    let b = s.model("b.jsonl");
    let toml = format!(
        "exp_dir = \"exp\"\ntasks = [\"toy\"]\nruns = 2\nseed = 5\njobs = 2\n\
         args = [\"--python\", {python:?}, \"--sandbox\", \"none\"]\n\
         [[configs]]\nllm = {a:?}\n\
         [[configs]]\nagent = \"research\"\nllm = {b:?}\nargs = [\"--max-steps\", \"9\"]\n",
        python = real_python().display().to_string(),
    );
    let file = s.path().join("exp.toml");
    std::fs::write(&file, toml).unwrap();
    let out = mlab()
        .arg("--benchmarks-dir")
        .arg(s.path().join("bench"))
        .args(["run", "--plan"])
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", both(&out));
    let plan = s.plan();
    let runs = plan["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    let seeds: Vec<u64> = runs.iter().map(|r| r["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds, [5, 6, 5, 6]);
    for r in runs {
        let rj = s.run_json(r["id"].as_str().unwrap());
        assert_eq!(rj["exit_reason"], "final_answer", "{rj}");
        assert_eq!(rj["config"], r["config"]);
    }
    assert_eq!(
        s.run_json(runs[2]["id"].as_str().unwrap())["flags"]["max_steps"],
        9
    );
    assert_eq!(
        s.run_json(runs[0]["id"].as_str().unwrap())["flags"]["max_steps"],
        50
    );
    let configs = plan["configs"].as_array().unwrap();
    assert_eq!(configs.len(), 2);
}

#[test]
fn two_sigints_exit_130_and_leave_no_run_behind() {
    let s = Study::new("", false);
    let (_, child) = s.start_waiting(2);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", both(&out));
    // The run-one children (their command lines name the plan) end too.
    let plan = s.exp().join("plan.json").display().to_string();
    assert!(
        wait_for(30, || common::processes_with(&plan).is_empty()),
        "runs still going after the study left: {:?}",
        common::processes_with(&plan)
    );
}

/// The run-one processes of the study in `exp` (their command lines name
/// its plan).
fn run_one_pids(exp: &Path) -> Vec<i32> {
    common::processes_with(&exp.join("plan.json").display().to_string())
}

#[test]
fn a_run_told_several_times_that_its_study_died_closes_once_with_its_final_snapshot() {
    // When the study's process dies, the kernel sends each run the
    // parent-death signal once per reparenting, which for a study with
    // several threads can be several times. Before, each copy was a
    // SIGTERM and the second read as "stop at once": the run ended without
    // its final snapshot or a closed run.json.
    let s = Study::new("", false);
    let (_, child) = s.start_waiting(1);
    let pids = run_one_pids(&s.exp());
    assert_eq!(pids.len(), 1, "{pids:?}");
    let sig = nix::sys::signal::Signal::try_from(mlab::study::queue::PARENT_DEATH_SIGNAL).unwrap();
    for _ in 0..3 {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pids[0]), sig).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let id = &s.ids()[0];
    let rj = s.run_json(id);
    let log = std::fs::read_to_string(s.exp().join(id).join("run-one.log")).unwrap();
    assert_eq!(
        rj["exit_reason"],
        "interrupted",
        "{rj}\n{log}\n{}",
        both(&out)
    );
    assert!(rj["end_time"].is_string(), "{rj}");
    assert!(
        s.exp()
            .join(id)
            .join("env_log/traces/step_final_files")
            .is_dir(),
        "no final snapshot: {log}"
    );
    assert!(
        !log.contains("SIGTERM again"),
        "the run was stopped twice: {log}"
    );
}

/// Holds the workspace lock of the run `id` of the study (as a process
/// making that run would) until dropped.
fn hold_workspace(s: &Study, id: &str) -> std::fs::File {
    let work = s.exp().join(format!("{id}.workspace"));
    std::fs::create_dir_all(&work).unwrap();
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(work.join(".toy.lock"))
        .unwrap();
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    std::fs::write(
        work.join(".toy.lock"),
        format!("pid={}\n", std::process::id()),
    )
    .unwrap();
    f
}

/// The id of seed `seed` of the study's one configuration (scripted model
/// `model`), as the plan names it.
fn id_of(model: &str, seed: u64) -> String {
    let dir = mlab::study::plan::dir_name(&format!("research ({model})"));
    format!("toy/{dir}/{seed}")
}

/// Reads `child`'s stderr until a line holds `what`; returns what it read.
fn read_until(child: &mut std::process::Child, what: &str) -> (bool, String) {
    use std::io::BufRead;
    let err = child.stderr.take().unwrap();
    let mut seen = String::new();
    let mut lines = std::io::BufReader::new(err).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(what) {
            // Keep draining, so the study never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return (true, seen);
        }
    }
    (false, seen)
}

#[test]
fn a_study_waits_for_a_run_another_process_holds_and_then_makes_it() {
    // A study started again right after one was killed finds runs whose
    // process is still closing. Before, it left them out and ended as if
    // the study were done.
    let s = Study::new(
        "open('submission.csv', 'w').write('id\\n2\\n')\nprint('ok')\n",
        false,
    );
    let a = s.model("a.jsonl");
    let held_id = id_of(&a, 1);
    let lock = hold_workspace(&s, &held_id);
    let mut child = s
        .command(&a, &["--runs", "2", "--jobs", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (seen, text) = read_until(&mut child, "being made by another process");
    assert!(seen, "the study did not wait for the held run: {text}");
    assert!(
        text.contains(&held_id) && text.contains(&format!("pid {}", std::process::id())),
        "{text}"
    );
    assert!(s.ids().contains(&held_id), "{:?}", s.ids());
    assert!(!s.exp().join(&held_id).join("run.json").exists());
    drop(lock);
    let status = child.wait().unwrap();
    assert!(status.success());
    for id in s.ids() {
        assert_eq!(s.run_json(&id)["exit_reason"], "final_answer", "{id}");
    }
}

#[test]
fn a_second_study_command_on_one_folder_is_refused_naming_the_first() {
    let s = Study::new("", false);
    let (a, first) = s.start_waiting(2);
    let args = ["--runs", "2", "--jobs", "2"];
    let second = s.command(&a, &args).output().unwrap();
    assert_eq!(second.status.code(), Some(1), "{}", both(&second));
    let said = both(&second);
    for want in [
        format!("pid {}", first.id()),
        "mlab status".to_string(),
        "another study command is running".to_string(),
    ] {
        assert!(said.contains(&want), "{want:?} not in: {said}");
    }
    // The second touched no run.
    for id in s.ids() {
        assert!(
            !std::fs::read_to_string(s.exp().join(&id).join("run-one.log"))
                .unwrap()
                .contains("running now in another process")
        );
    }
    // mlab status works meanwhile and names the holder.
    let st = mlab().arg("status").arg(s.exp()).output().unwrap();
    assert!(st.status.success(), "{}", both(&st));
    assert!(
        text(&st.stdout).contains(&format!("pid {}", first.id())),
        "{}",
        both(&st)
    );
    std::fs::write(s.shared().join("go"), "").unwrap();
    let out = first.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", both(&out));
    for id in s.ids() {
        assert_eq!(s.run_json(&id)["exit_reason"], "final_answer", "{id}");
    }
}

#[test]
fn a_run_killed_outright_does_not_take_the_other_runs_down() {
    // Each run is its own process: one killed by SIGKILL (as the OOM
    // killer would) leaves the study and the other runs going.
    let s = Study::new("", false);
    let (_, child) = s.start_waiting(3);
    let pids = run_one_pids(&s.exp());
    assert_eq!(pids.len(), 3, "{pids:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(
        wait_for(30, || run_one_pids(&s.exp()).len() == 2),
        "the killed run is still there"
    );
    std::fs::write(s.shared().join("go"), "").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "a killed run must count as failed: {}",
        both(&out)
    );
    // Every run wrote its run.json when it started; the killed one never
    // closed it.
    let reasons: Vec<Value> = s
        .ids()
        .iter()
        .map(|id| s.run_json(id)["exit_reason"].clone())
        .collect();
    assert_eq!(
        reasons.iter().filter(|r| **r == "final_answer").count(),
        2,
        "{reasons:?}\n{}",
        both(&out)
    );
}
