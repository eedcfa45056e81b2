//! `mlab report` on a log folder made by real offline runs of a toy task:
//! two baseline-agent runs, two scripted research-agent runs (one edits
//! train.py and improves the score, one gives up at once) and a run in the
//! original MLAgentBench's layout. The tables must hold exactly the
//! numbers of eval.json and eval_summary.json, every plot must parse, the
//! site must not reach outside its folder, and (with Chromium) the pages
//! must render the tables, the run list, a step's action and its diff.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::path::{Path, PathBuf};

use common::{mlab, output, text, write};
use mlab::report::{fmt_num, fmt_pct, fmt_rate};
use mlab::testing::scripted::{self, research_reply, with_usage};
use mlab::testing::toy::ToyTask;
use serde_json::{json, Value};

/// The toy eval: the last token of submission.csv is the score.
const TOY_EVAL: &str = r#"
import os

def get_score(folder):
    with open(os.path.join(folder, "submission.csv")) as f:
        return float(f.read().split()[-1])
"#;

/// The train.py the research agent's edit model writes: a better score.
const IMPROVED: &str = "print('training harder')\nopen('submission.csv', 'w').write('id\\n3\\n')\n";

/// A log folder (`root/logs`) with the five runs, and the benchmarks
/// folder (`root/bench`).
struct Folder {
    dir: tempfile::TempDir,
}

impl Folder {
    fn root(&self) -> &Path {
        self.dir.path()
    }
    fn logs(&self) -> PathBuf {
        self.root().join("logs")
    }
    fn bench(&self) -> PathBuf {
        self.root().join("bench")
    }
}

fn run(f: &Folder, name: &str, agent: &str, extra: &[&str]) {
    let out = output(
        mlab()
            .arg("--benchmarks-dir")
            .arg(f.bench())
            .args([
                "run",
                "--task",
                "toy",
                "--agent",
                agent,
                "--sandbox",
                "none",
            ])
            .arg("--log-dir")
            .arg(f.logs().join(name))
            .arg("--work-dir")
            .arg(f.root().join("work").join(name))
            .arg("--python")
            .arg(common::python())
            .args(extra)
            .stdin(std::process::Stdio::null()),
    );
    assert!(
        out.status.success(),
        "run {name} failed: {}",
        text(&out.stderr)
    );
}

/// A run as the original MLAgentBench lays it out, with no llm_calls.jsonl.
fn original_run(dir: &Path) {
    let steps = json!({"steps": [
        {"action": {"name": "Execute Script", "args": {"script_name": "train.py"}}, "observation": "training", "timestamp": 1690000010.0},
        {"action": {"name": "Final Answer", "args": {"final_answer": "done"}}, "observation": "", "timestamp": 1690000020.0}
    ], "low_level_steps": [], "action_infos": {}, "task_description": "x"});
    write(&dir.join("env_log/trace.json"), &steps.to_string());
    for (snap, value) in [
        ("step_0_files", "0.5"),
        ("step_1_files", "2"),
        ("step_final_files", "2"),
    ] {
        let s = dir.join("env_log/traces").join(snap);
        write(&s.join("submission.csv"), &format!("id\n{value}\n"));
        write(&s.join("train.py"), "print('train')\n");
    }
    write(&dir.join("env_log/overall_time.txt"), "42.5");
    write(&dir.join("agent_log/main_log"), "the original's main log\n");
    write(
        &dir.join("log"),
        "Namespace(task='toy', log_dir='x', agent_type='ResearchAgent', llm_name='claude-v1', fast_llm_name='claude-v1', edit_script_llm_name='claude-v1')\n",
    );
}

fn folder() -> Folder {
    common::need_python(&["json"]);
    common::need(
        "a TrueType font for the plots (fonts-dejavu-core, which ./install.sh installs; or MLAB_FONT=FILE.ttf)",
        std::env::var_os("MLAB_FONT").is_some_and(|f| Path::new(&f).is_file())
            || Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").is_file(),
    );
    let f = Folder {
        dir: tempfile::tempdir().unwrap(),
    };
    ToyTask::new()
        .set("metric", "number")
        .empty_env()
        .env(
            "train.py",
            "print('training')\nopen('submission.csv', 'w').write('id\\n1\\n')\n",
        )
        .no_read_only()
        .eval_py(TOY_EVAL)
        .research_problem("Make the number big.\n")
        .write_in(&f.bench());
    run(&f, "base-1", "baseline", &[]);
    run(&f, "base-2", "baseline", &[]);

    // The same script files for both research runs, so they are one
    // configuration.
    let main = f.root().join("main.jsonl");
    let edit = f.root().join("edit.jsonl");
    let improve = [
        with_usage(
            research_reply("see what is there", "List Files", json!({"dir_path": "."}))
                .as_str()
                .unwrap(),
            900,
            120,
        ),
        with_usage(
            research_reply(
                "make the number bigger",
                "Edit Script (AI)",
                json!({"script_name": "train.py", "edit_instruction": "Write 3.", "save_name": "train.py"}),
            )
            .as_str()
            .unwrap(),
            1000,
            150,
        ),
        research_reply("measure", "Execute Script", json!({"script_name": "train.py"})),
        research_reply("it is 3 now", "Final Answer", json!({"final_answer": "3"})),
    ];
    let spec = scripted::write(&main, &improve);
    let edit_spec = scripted::write(
        &edit,
        &[Value::String(format!("```python\n{IMPROVED}```\n"))],
    );
    run(
        &f,
        "research-1",
        "research",
        &["--llm", &spec, "--edit-script-llm", &edit_spec],
    );
    scripted::write(
        &main,
        &[research_reply(
            "give up",
            "Final Answer",
            json!({"final_answer": "nothing"}),
        )],
    );
    scripted::write(&edit, &[]);
    run(
        &f,
        "research-2",
        "research",
        &["--llm", &spec, "--edit-script-llm", &edit_spec],
    );
    original_run(&f.logs().join("final_exp_logs/no_retrieval/toy/1690000001"));
    f
}

fn report(f: &Folder, extra: &[&str]) -> String {
    let out = output(
        mlab()
            .arg("--benchmarks-dir")
            .arg(f.bench())
            .args(["report", "--sandbox", "none", "--python"])
            .arg(common::python())
            .arg("--log-folder")
            .arg(f.logs())
            .args(extra),
    );
    assert!(
        out.status.success(),
        "mlab report failed\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

fn json_file(p: &Path) -> Value {
    serde_json::from_str(&read(p)).unwrap()
}

/// The cells the report must show for each summary row, from the JSON.
fn expected_cells(eval: &Value, summary: &Value) -> Vec<String> {
    let mut cells = Vec::new();
    for g in summary["summary"].as_array().unwrap() {
        cells.push(format!("| {} |", g["task"].as_str().unwrap()));
        if let Some(r) = g["success_rate"].get("10") {
            cells.push(fmt_rate(
                r["k"].as_u64().unwrap() as usize,
                r["n"].as_u64().unwrap() as usize,
                r["rate"].as_f64().unwrap(),
                [
                    r["ci95"][0].as_f64().unwrap(),
                    r["ci95"][1].as_f64().unwrap(),
                ],
            ));
        }
        if let Some(m) = g["average_improvement"]["mean"].as_f64() {
            cells.push(fmt_pct(m));
        }
        if let Some(b) = g["baseline"].as_f64() {
            cells.push(format!("| {} |", fmt_num(b)));
        }
        for k in ["tokens", "cost_usd", "wall_time_s"] {
            if let Some(m) = g[k]["mean"].as_f64() {
                cells.push(fmt_num(m));
            }
        }
        // The best score over the group's runs, from eval.json.
        let best = eval
            .as_object()
            .unwrap()
            .values()
            .filter(|r| r["task"] == g["task"] && r["best_score"].is_f64())
            .filter(|r| {
                mlab::eval::config_label(r["agent"].as_str(), &r["llm"]) == g["config"]
                    || g["config"]
                        .as_str()
                        .unwrap()
                        .contains(r["agent"].as_str().unwrap())
            })
            .map(|r| r["best_score"].as_f64().unwrap())
            .fold(f64::NEG_INFINITY, f64::max);
        if best.is_finite() {
            cells.push(fmt_num(best));
        }
    }
    cells
}

/// A small XML well-formedness check: every tag closes in order,
/// attributes are quoted, and there is one root element.
fn check_xml(doc: &str) -> Result<(), String> {
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut rest = doc;
    while let Some(i) = rest.find('<') {
        rest = &rest[i..];
        if let Some(body) = rest.strip_prefix("<?") {
            let end = body.find("?>").ok_or("unclosed <?")?;
            rest = &body[end + 2..];
            continue;
        }
        if let Some(body) = rest.strip_prefix("<!--") {
            let end = body.find("-->").ok_or("unclosed comment")?;
            rest = &body[end + 3..];
            continue;
        }
        // Find the tag's end outside quotes.
        let mut quote = None;
        let mut end = None;
        for (k, c) in rest.char_indices().skip(1) {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, '<') => return Err(format!("'<' inside a tag near {:?}", &rest[..k])),
                (None, '>') => {
                    end = Some(k);
                    break;
                }
                _ => {}
            }
        }
        let end = end.ok_or("unclosed tag")?;
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack.pop().ok_or(format!("</{name}> closes nothing"))?;
            if open != name.trim() {
                return Err(format!("<{open}> closed by </{name}>"));
            }
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '/')
            .collect();
        if name.is_empty() {
            return Err(format!("a tag without a name: <{tag}>"));
        }
        if stack.is_empty() {
            roots += 1;
        }
        if !tag.ends_with('/') {
            stack.push(name);
        }
    }
    if !stack.is_empty() {
        return Err(format!("unclosed: {stack:?}"));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    if doc.contains('&') {
        for (i, _) in doc.match_indices('&') {
            let ent = &doc[i..(i + 10).min(doc.len())];
            let ok = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#"]
                .iter()
                .any(|e| ent.starts_with(e));
            if !ok {
                return Err(format!("a bare '&' at {ent:?}"));
            }
        }
    }
    Ok(())
}

/// PNG signature, IHDR width and height, and not trivially small.
fn check_png(p: &Path, min_bytes: usize) -> (u32, u32) {
    let bytes = std::fs::read(p).unwrap();
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        p.display()
    );
    assert_eq!(&bytes[12..16], b"IHDR", "{}: no IHDR first", p.display());
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert!(w >= 300 && h >= 200, "{}: {w}x{h}", p.display());
    assert!(
        bytes.len() >= min_bytes,
        "{} is only {} bytes",
        p.display(),
        bytes.len()
    );
    (w, h)
}

/// Every src/href/url() in the site's files stays inside it.
fn assert_self_contained(out: &Path) {
    for e in walkdir::WalkDir::new(out).into_iter().flatten() {
        let p = e.path();
        let ext = p.extension().and_then(|x| x.to_str()).unwrap_or("");
        if !matches!(ext, "html" | "js") {
            continue;
        }
        let t = read(p).to_lowercase();
        for bad in [
            "src=\"http",
            "href=\"http",
            "src='http",
            "href='http",
            "url(http",
            "@import",
            "src=\"//",
            "href=\"//",
            "fetch(",
            "xmlhttprequest",
        ] {
            assert!(!t.contains(bad), "{} contains {bad}", p.display());
        }
    }
}

#[test]
fn report_tables_hold_the_eval_numbers_and_every_plot_parses() {
    let f = folder();
    let stderr = report(&f, &[]);
    assert!(
        stderr.contains("running eval first"),
        "eval.json was missing, so eval must run: {stderr}"
    );
    let eval = json_file(&f.logs().join("eval.json"));
    let summary = json_file(&f.logs().join("eval_summary.json"));
    assert_eq!(eval.as_object().unwrap().len(), 5, "{eval:#}");
    let out = f.logs().join("report");
    let md = read(&out.join("report.md"));
    let index = read(&out.join("index.html"));

    // The research configuration improved once in two runs: 1/2 at 10%.
    let research = summary["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["agent"] == "research" && g["runs"] == 2)
        .unwrap_or_else(|| panic!("no research row: {summary:#}"));
    assert_eq!(research["success_rate"]["10"]["k"], 1, "{research:#}");
    for cell in expected_cells(&eval, &summary) {
        assert!(md.contains(&cell), "report.md lacks {cell:?}:\n{md}");
        let plain = cell.trim_matches(|c| c == '|' || c == ' ');
        assert!(
            index.contains(&format!("<td>{plain}")) || index.contains(plain),
            "index.html lacks {plain:?}"
        );
    }
    // The baseline source, as eval words it.
    assert!(md.contains("mean of 2 baseline-agent run(s)"), "{md}");
    // The median steps of the research runs (4 and 1 steps: 2.5).
    assert!(md.contains("| 2.5 |"), "{md}");

    // Plots: SVG parses, PNG has its header and a real size.
    let plots = out.join("plots");
    for name in [
        "success_rate",
        "average_improvement",
        "best_so_far_1",
        "cost_vs_success",
    ] {
        let svg = read(&plots.join(format!("{name}.svg")));
        check_xml(&svg).unwrap_or_else(|e| panic!("{name}.svg is not XML: {e}"));
        assert!(svg.len() > 2000, "{name}.svg is only {} bytes", svg.len());
        assert!(svg.contains("C1"), "{name}.svg has no legend");
        check_png(&plots.join(format!("{name}.png")), 8000);
        assert!(index.contains(&format!("id=\"plot-{name}\"")));
    }
    assert_self_contained(&out);

    // The run list: one row per run; the original's run says its calls
    // were not recorded; the improving run's steps hold its edit and diff.
    assert_eq!(index.matches("<tr data-task=").count(), 5);
    let runs = out.join("runs");
    let mut found_original = false;
    let mut found_edit = false;
    for id in 1..=5 {
        let page = read(&runs.join(format!("{id}.html")));
        let steps = read(&runs.join(format!("{id}/steps-0.js")));
        if page.contains("final_exp_logs") {
            assert!(page.contains("id=\"no-calls\""), "{page}");
            found_original = true;
        }
        if steps.contains(r#"action\">Edit Script (AI)"#) {
            assert!(steps.contains("training harder"), "no diff: {steps}");
            assert!(steps.contains("make the number bigger"), "no reasoning");
            assert!(steps.contains("LLM calls"), "no calls");
            found_edit = true;
        }
    }
    assert!(found_original && found_edit);

    // Current results are not evaluated again; a run newer than them is.
    let again = report(&f, &[]);
    assert!(!again.contains("running eval first"), "{again}");
    std::fs::File::options()
        .write(true)
        .open(f.logs().join("base-1/run.json"))
        .unwrap()
        .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(120))
        .unwrap();
    let stale = report(&f, &[]);
    assert!(
        stale.contains("running eval first") && stale.contains("run.json"),
        "{stale}"
    );

    std::fs::File::options()
        .write(true)
        .open(f.logs().join("base-1/run.json"))
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
        .unwrap();

    // --open hands index.html to $BROWSER (eval is current: it does not run).
    let opened = f.root().join("opened.txt");
    let browser = f.root().join("browser.sh");
    write(
        &browser,
        &format!(
            "#!/bin/sh\necho \"$1\" > {}.tmp && mv {}.tmp {}\n",
            opened.display(),
            opened.display(),
            opened.display()
        ),
    );
    std::fs::set_permissions(
        &browser,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = output(
        mlab()
            .env("BROWSER", &browser)
            .args(["report", "--open", "--log-folder"])
            .arg(f.logs()),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("running eval first"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        common::wait_for(30, || opened.is_file()),
        "$BROWSER was not started: {}",
        text(&out.stderr)
    );
    assert_eq!(
        read(&opened).trim(),
        out_dir_index(&f).display().to_string()
    );
}

fn out_dir_index(f: &Folder) -> PathBuf {
    f.logs().join("report/index.html")
}

/// Chromium, as .ci/run installs it (`./install.sh --browser`).
fn chromium() -> PathBuf {
    let found = mlab::testing::browser::chromium();
    common::need(
        "Chromium (./install.sh --browser installs Debian's chromium)",
        found.is_some(),
    );
    found.unwrap()
}

/// Headless Chromium on `page`: the DOM after its scripts ran, and a
/// screenshot into `shot`.
fn browse(page: &Path, shot: &Path) -> String {
    let chrome = chromium();
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page.display());
    let mut dump = mlab::testing::browser::headless(&chrome, profile.path());
    let dom_file = shot.with_extension("dom.html");
    let out = output(
        dump.arg("--dump-dom")
            .arg(&url)
            .stdout(std::fs::File::create(&dom_file).unwrap()),
    );
    assert!(
        out.status.success(),
        "chromium failed: {}",
        text(&out.stderr)
    );
    std::fs::write(
        shot.with_extension("stderr.txt"),
        format!("{:?} {:?}\n{}", out.status, dump, text(&out.stderr)),
    )
    .unwrap();
    let mut cap = mlab::testing::browser::headless(&chrome, profile.path());
    let out = output(
        cap.arg(format!("--screenshot={}", shot.display()))
            .arg("--window-size=1280,1600")
            .arg(&url),
    );
    assert!(
        out.status.success(),
        "chromium screenshot failed: {}",
        text(&out.stderr)
    );
    read(&dom_file)
}

#[test]
#[ignore = "needs chromium: ./install.sh --browser"]
fn report_pages_render_in_headless_chromium() {
    let chrome = chromium();
    let _ = chrome;
    let f = folder();
    report(&f, &[]);
    let summary = json_file(&f.logs().join("eval_summary.json"));
    let out = f.logs().join("report");
    let shots = std::env::var_os("MLAB_REPORT_SHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| f.root().join("shots"));
    std::fs::create_dir_all(&shots).unwrap();
    // Kept for a person to look at when MLAB_REPORT_SHOTS names a folder.
    common::copy_tree(&out, &shots.join("report"));

    let dom = browse(&out.join("index.html"), &shots.join("index.png"));
    for g in summary["summary"].as_array().unwrap() {
        if let Some(r) = g["success_rate"].get("10") {
            let cell = fmt_rate(
                r["k"].as_u64().unwrap() as usize,
                r["n"].as_u64().unwrap() as usize,
                r["rate"].as_f64().unwrap(),
                [
                    r["ci95"][0].as_f64().unwrap(),
                    r["ci95"][1].as_f64().unwrap(),
                ],
            );
            assert!(
                dom.contains(&format!("<td>{cell}</td>")),
                "no {cell} in the DOM"
            );
        }
    }
    assert_eq!(dom.matches("<tr data-task=").count(), 5, "the run list");
    // The filters were filled in by the page's script.
    assert!(dom.contains("5 of 5 runs"), "the filter script did not run");
    assert!(dom.contains("<option value=\"research\">research</option>"));
    check_png(&shots.join("index.png"), 20_000);

    // The improving run's page: its steps are loaded by script tags.
    let id = (1..=5)
        .find(|id| {
            read(&out.join(format!("runs/{id}/steps-0.js")))
                .contains(r#"action\">Edit Script (AI)"#)
        })
        .unwrap();
    let dom = browse(&out.join(format!("runs/{id}.html")), &shots.join("run.png"));
    assert!(
        dom.contains("<code class=\"action\">Edit Script (AI)</code>"),
        "the steps did not load: {dom}"
    );
    assert!(
        dom.contains("<span class=\"add\">+print('training harder')</span>"),
        "no workspace diff in the DOM"
    );
    assert!(dom.contains("data-page=\"0\""));
    check_png(&shots.join("run.png"), 20_000);
}
