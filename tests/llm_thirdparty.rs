//! mlab against a server no one here wrote: LiteLLM's proxy (from PyPI,
//! installed by `./install.sh --test-servers` into its own venv) serving
//! fixed mock replies, offline, in both wire formats (OpenAI's Chat
//! Completions and Anthropic's Messages). `llm-check` and a short run of
//! the research agent go through it in each format, so what mlab sends and
//! how it reads the answers are checked against another implementation,
//! not only against our own mock server.
//!
//! Ignored by default (the proxy is a large install and takes tens of
//! seconds to start); `.ci/run` installs it and runs
//! `cargo test -- --include-ignored`. When the proxy is not installed the
//! test fails and says how to install it.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod agent_support;
mod common;

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent_support::{calls, read_json, research_reply, text, trace_actions, Bench};
use serde_json::{json, Value};

/// The proxy's master key: the proxy refuses other keys, so a pass also
/// shows that each format's key header reached it.
const KEY: &str = "sk-thirdparty-5f0c2a91d7e4";

/// A model that answers the check's one word.
const CHECK_MODEL: &str = "check-model";
/// A model that answers every prompt with the research agent's Final Answer.
const RESEARCH_MODEL: &str = "research-model";

/// How long the proxy may take to start. It imports a large package; under
/// a loaded CI machine that took half a minute. The wait ends early when
/// the proxy answers or dies.
const START_LIMIT: Duration = Duration::from_secs(300);

/// Where install.sh puts the proxy: `$MLAB_LITELLM`, else
/// `<MLAB_HOME>/litellm-venv/bin/litellm` (MLAB_HOME as install.sh
/// resolves it).
fn litellm_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MLAB_LITELLM") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("MLAB_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let data = std::env::var_os("XDG_DATA_HOME")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".local/share")
                });
            data.join("mlab")
        });
    home.join("litellm-venv/bin/litellm")
}

/// The proxy's config: each model name maps to a fixed `mock_response`, so
/// no provider behind it is ever called.
fn config_yaml() -> String {
    let final_answer = research_reply(
        "the toy task needs nothing more",
        "Final Answer",
        json!({"final_answer": "done"}),
    );
    // A JSON string is a valid YAML double-quoted scalar.
    let mut models = String::new();
    for (name, reply) in [
        (CHECK_MODEL, Value::String("ready".into())),
        (RESEARCH_MODEL, final_answer),
    ] {
        models.push_str(&format!(
            "  - model_name: {name}\n    litellm_params:\n      model: openai/{name}\n      \
             api_key: not-used-mock-only\n      mock_response: {reply}\n"
        ));
    }
    format!(
        "model_list:\n{models}litellm_settings:\n  telemetry: false\n\
         general_settings:\n  master_key: {KEY}\n  disable_spend_logs: true\n"
    )
}

/// A running proxy, killed (with its process group) when dropped.
struct Proxy {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Proxy {
    fn start() -> Proxy {
        let bin = litellm_bin();
        assert!(
            bin.is_file(),
            "LiteLLM's proxy is not installed at {}: run ./install.sh --test-servers \
             (it installs litellm[proxy] from PyPI into its own venv), or set MLAB_LITELLM \
             to a litellm executable",
            bin.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        std::fs::write(&config, config_yaml()).unwrap();
        let log = dir.path().join("proxy.log");
        let log_file = std::fs::File::create(&log).unwrap();
        // A free port: the kernel picks one, then it is released for the proxy.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(&bin);
        cmd.arg("--config")
            .arg(&config)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            // Offline: no telemetry, the bundled price map instead of the
            // one it would download, no database, no admin UI.
            .env("LITELLM_TELEMETRY", "False")
            .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            .env("DISABLE_ADMIN_UI", "True")
            .env("PYTHONUNBUFFERED", "1")
            .env("NO_COLOR", "1")
            .process_group(0);
        for var in [
            "DATABASE_URL",
            "LITELLM_MASTER_KEY",
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_BASE_URL",
            "REDIS_HOST",
            "REDIS_URL",
        ] {
            cmd.env_remove(var);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", bin.display()));
        let mut proxy = Proxy {
            child,
            port,
            log,
            _dir: dir,
        };
        proxy.wait_until_ready();
        proxy
    }

    fn wait_until_ready(&mut self) {
        let end = Instant::now() + START_LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "LiteLLM's proxy exited ({status}) before it answered:\n{}",
                    self.log_text()
                );
            }
            if self
                .get("/health/liveliness")
                .is_some_and(|r| r.starts_with("HTTP/1.1 200"))
            {
                return;
            }
            assert!(
                Instant::now() < end,
                "LiteLLM's proxy did not answer on port {} within {:?}:\n{}",
                self.port,
                START_LIMIT,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A plain GET; the whole response, or None when nothing answers yet.
    fn get(&self, path: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let pgid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// The two wire formats, as `--llm` names for `model` behind the proxy.
fn formats(proxy: &Proxy, model: &str) -> [(&'static str, String, &'static str); 2] {
    [
        (
            "openai",
            format!("openai:{model}@{}/v1", proxy.url()),
            "/v1/chat/completions",
        ),
        (
            "anthropic",
            format!("anthropic:{model}@{}", proxy.url()),
            "/v1/messages",
        ),
    ]
}

/// `mlab` with the proxy's key for both providers and nothing else of the
/// developer's provider settings.
fn mlab_with_key() -> Command {
    let mut c = common::mlab();
    for var in [
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "ANTHROPIC_BASE_URL",
        "RUST_LOG",
    ] {
        c.env_remove(var);
    }
    c.env("OPENAI_API_KEY", KEY).env("ANTHROPIC_API_KEY", KEY);
    c
}

/// The calls recorded in a log folder, each checked to carry the tokens
/// the server reported (not estimates); returns their input and output sums.
fn reported_tokens(log: &Path, what: &str) -> (u64, u64) {
    let recs = calls(log);
    assert!(!recs.is_empty(), "{what}: no calls recorded");
    let mut sum = (0, 0);
    for rec in &recs {
        assert!(rec["error"].is_null(), "{what}: a call failed: {rec}");
        let usage = &rec["usage"];
        assert_eq!(
            usage["estimated"], false,
            "{what}: no usage from the server: {rec}"
        );
        let (i, o) = (
            usage["input_tokens"].as_u64().unwrap(),
            usage["output_tokens"].as_u64().unwrap(),
        );
        assert!(i > 0 && o > 0, "{what}: empty usage: {rec}");
        sum.0 += i;
        sum.1 += o;
    }
    sum
}

#[test]
#[ignore = "needs the LiteLLM proxy from PyPI (.ci/run installs it)"]
fn litellm_proxy_serves_llm_check_and_a_research_run_in_both_wire_formats() {
    let proxy = Proxy::start();
    let dir = tempfile::tempdir().unwrap();

    for (format, llm, path) in formats(&proxy, CHECK_MODEL) {
        let logs = dir.path().join(format!("check-{format}"));
        let out = mlab_with_key()
            .current_dir(dir.path())
            .args(["llm-check", "--llm", &llm, "--log-dir"])
            .arg(&logs)
            .output()
            .unwrap();
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "llm-check in the {format} format failed:\n{stdout}\n{}\nproxy log:\n{}",
            text(&out.stderr),
            proxy.log_text()
        );
        assert!(stdout.contains("reply:   ready"), "{format}: {stdout}");
        assert!(
            stdout.contains("followed the instruction"),
            "{format}: {stdout}"
        );
        let (i, o) = reported_tokens(&logs, &format!("llm-check ({format})"));
        assert!(
            stdout.contains(&format!("tokens:  {i} input, {o} output")),
            "{format}: the printed tokens are not the recorded ones ({i}, {o}): {stdout}"
        );
        let rec = &calls(&logs)[0];
        assert_eq!(rec["response"], "ready", "{format}");
        assert_eq!(rec["provider"], format, "{rec}");
        assert!(
            proxy
                .log_text()
                .contains(&format!("\"POST {path} HTTP/1.1\" 200")),
            "{format}: the proxy did not serve {path}:\n{}",
            proxy.log_text()
        );
    }

    for (format, llm, _) in formats(&proxy, RESEARCH_MODEL) {
        let bench = Bench::toy();
        let log = bench.log("logs");
        let out = bench
            .command("research", &log, &["--llm", &llm, "--max-steps", "3"])
            .env("OPENAI_API_KEY", KEY)
            .env("ANTHROPIC_API_KEY", KEY)
            .env_remove("OPENAI_BASE_URL")
            .env_remove("ANTHROPIC_BASE_URL")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the research run in the {format} format failed:\n{}\nproxy log:\n{}",
            text(&out.stderr),
            proxy.log_text()
        );
        let run = read_json(&log.join("run.json"));
        assert_eq!(run["exit_reason"], "final_answer", "{format}: {run}");
        assert_eq!(run["agent"], "research", "{format}");
        assert_eq!(trace_actions(&log), ["Final Answer"], "{format}");
        let (i, o) = reported_tokens(&log, &format!("research run ({format})"));
        assert_eq!(run["tokens"]["input"], i, "{format}: {run}");
        assert_eq!(run["tokens"]["output"], o, "{format}: {run}");
        assert_eq!(run["llm_calls"], calls(&log).len(), "{format}: {run}");
        // The research agent's stop sequence went out with the request.
        assert_eq!(
            calls(&log)[0]["request"]["stop"],
            json!(["Observation:"]),
            "{format}"
        );
    }

    // Nothing above needed the internet: the proxy tried no download (it
    // logs each failed one) and the models behind it were never called.
    let log = proxy.log_text();
    for sign in [
        "ConnectError",
        "Failed to fetch",
        "Name or service not known",
    ] {
        assert!(
            !log.contains(sign),
            "the proxy tried to reach the network ({sign}):\n{log}"
        );
    }
}
