//! `mlab report`: what a log folder's runs did, for people to look at.
//!
//! [`build`] reads the eval results (eval.json and eval_summary.json in the
//! log folder), running [`crate::eval::evaluate`] first when they are
//! missing or older than a run's run.json or trace.json, and writes into
//! the output folder (default `<log-folder>/report`):
//! - `report.md`: the tables (`tables`), every number taken from the eval
//!   results;
//! - `plots/*.svg` and `plots/*.png` (`plots`, drawn with plotters);
//! - `index.html` and `runs/<n>.html` (`html`): one static site that opens
//!   from the file system, with no server and nothing fetched from the
//!   network. A run page loads its steps in pages of [`ReportConfig::page_size`]
//!   from `runs/<n>/steps-<p>.js` files through script tags (browsers refuse
//!   `fetch` of `file://`), so a run of 500 steps opens as fast as one of
//!   50. Each step shows the agent's reasoning, the action, the observation,
//!   the step's LLM calls and the workspace diff against the previous
//!   step's snapshot (`diff`).

mod data;
mod diff;
mod html;
mod plots;
pub mod tables;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};

use crate::eval;
use crate::ui;

pub use data::{Data, GroupIn, RateIn, RunData, RunIn};
pub use tables::{fmt_num, fmt_pct, fmt_rate};

/// What to report on, and where. Plain data: the front end builds it from
/// the command line (`cli::report`), other callers by hand.
#[derive(Debug, Clone)]
pub struct ReportConfig {
    /// The folder holding the runs (and eval.json, eval_summary.json).
    pub log_folder: PathBuf,
    /// Where to write the report (None: `<log_folder>/report`).
    pub out: Option<PathBuf>,
    /// How to run eval when its results are missing or stale; its
    /// `log_folder` is set to [`ReportConfig::log_folder`].
    pub eval: eval::Config,
    /// Steps per page of a run page (each page is one lazily loaded file).
    pub page_size: usize,
}

impl ReportConfig {
    /// A report of `log_folder` into `<log_folder>/report`, running eval
    /// (every intermediate snapshot scored, for the best-so-far plots) with
    /// its usual defaults when needed.
    pub fn new(log_folder: impl Into<PathBuf>) -> ReportConfig {
        let log_folder = log_folder.into();
        ReportConfig {
            eval: eval::Config {
                log_folder: log_folder.clone(),
                task: None,
                eval_intermediate: true,
                jobs: None,
                eval_timeout: Duration::from_secs(1800),
                use_cache: true,
                python: None,
                sandbox: crate::sandbox::Kind::Auto,
                benchmarks_dir: None,
                baseline: Default::default(),
                compare: None,
            },
            log_folder,
            out: None,
            page_size: 50,
        }
    }

    /// The output folder.
    pub fn out_dir(&self) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| self.log_folder.join("report"))
    }
}

/// What [`build`] wrote.
#[derive(Debug, Clone)]
pub struct ReportOutcome {
    pub out_dir: PathBuf,
    pub index_html: PathBuf,
    pub report_md: PathBuf,
    /// Every plot file written (SVG and PNG).
    pub plots: Vec<PathBuf>,
    /// Why eval was run first, when it was.
    pub ran_eval: Option<String>,
    /// Runs in the report.
    pub runs: usize,
    /// Things the report could not do, each saying what to do about it.
    pub warnings: Vec<String>,
}

/// eval.json's name in the log folder.
pub const EVAL_FILE: &str = "eval.json";
/// eval_summary.json's name in the log folder.
pub const SUMMARY_FILE: &str = "eval_summary.json";

/// Writes the report; see the module doc.
pub fn build(cfg: &ReportConfig) -> Result<ReportOutcome> {
    let log = &cfg.log_folder;
    if !log.is_dir() {
        anyhow::bail!(
            "the log folder {} does not exist; pass the folder `mlab run --log-dir` wrote into",
            log.display()
        );
    }
    let out = cfg.out_dir();
    let eval_path = log.join(EVAL_FILE);
    let summary_path = log.join(SUMMARY_FILE);
    let ran_eval = staleness(log, &out, &eval_path, &summary_path);
    if let Some(why) = &ran_eval {
        ui::info(format!("running eval first: {why}"));
        let mut ecfg = cfg.eval.clone();
        ecfg.log_folder = log.clone();
        let report = eval::evaluate(&ecfg)?;
        write_json(&eval_path, &report.eval_file())?;
        write_json(&summary_path, &report.summary_file())?;
    }
    let data = Data::load(log, &eval_path, &summary_path)?;
    std::fs::create_dir_all(&out)
        .with_context(|| format!("could not make {}; choose another --out", out.display()))?;
    let mut warnings = Vec::new();

    let report_md = out.join("report.md");
    std::fs::write(&report_md, tables::markdown(&data))
        .with_context(|| format!("could not write {}", report_md.display()))?;

    let plot_dir = out.join("plots");
    let plots = match plots::write_all(&data, &plot_dir) {
        Ok(p) => p,
        Err(e) => {
            warnings.push(format!("no plots: {e:#}"));
            Vec::new()
        }
    };
    let mut plot_files = Vec::new();
    for p in &plots {
        plot_files.push(plot_dir.join(format!("{}.svg", p.name)));
        if p.png {
            plot_files.push(plot_dir.join(format!("{}.png", p.name)));
        }
    }
    html::write_site(&data, &plots, &out, cfg.page_size.max(1))?;
    for w in &warnings {
        ui::warn(w);
    }
    Ok(ReportOutcome {
        index_html: out.join("index.html"),
        out_dir: out,
        report_md,
        plots: plot_files,
        ran_eval,
        runs: data.runs.len(),
        warnings,
    })
}

/// Why eval must run before the report (None when its files are current):
/// a file is missing, or a run's run.json or trace.json is newer.
pub fn staleness(log: &Path, out: &Path, eval_path: &Path, summary: &Path) -> Option<String> {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(e) = mtime(eval_path) else {
        return Some(format!("{} is missing", eval_path.display()));
    };
    let Some(s) = mtime(summary) else {
        return Some(format!("{} is missing", summary.display()));
    };
    let results = e.min(s);
    let newest = newest_run_file(log, out)?;
    (newest.1 > results).then(|| {
        format!(
            "{} is newer than the eval results",
            newest.0.strip_prefix(log).unwrap_or(&newest.0).display()
        )
    })
}

/// The most recently modified run.json or env_log/trace.json under `log`
/// (snapshot folders and the report itself are not searched).
fn newest_run_file(log: &Path, out: &Path) -> Option<(PathBuf, SystemTime)> {
    let walk = walkdir::WalkDir::new(log).into_iter().filter_entry(|e| {
        let name = e.file_name().to_string_lossy();
        !(e.file_type().is_dir()
            && (e.path() == out
                || name == "traces"
                || name == "store"
                || name == "agent_log"
                || name.starts_with('.') && e.depth() > 0))
    });
    let mut newest: Option<(PathBuf, SystemTime)> = None;
    for entry in walk.flatten() {
        let name = entry.file_name();
        let relevant = name == "run.json"
            || (name == "trace.json"
                && entry
                    .path()
                    .parent()
                    .is_some_and(|p| p.file_name().is_some_and(|n| n == "env_log")));
        if !relevant {
            continue;
        }
        if let Ok(t) = std::fs::metadata(entry.path()).and_then(|m| m.modified()) {
            if newest.as_ref().is_none_or(|(_, n)| t > *n) {
                newest = Some((entry.path().to_path_buf(), t));
            }
        }
    }
    newest
}

/// Pretty JSON, written whole or not at all (as `mlab eval` writes it).
fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("could not write into {}", dir.display()))?;
    tmp.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())?;
    tmp.persist(path)
        .with_context(|| format!("could not write {}", path.display()))?;
    Ok(())
}

/// `s` with `& < > " '` escaped, for HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_leaves_no_markup() {
        assert_eq!(
            escape("<script>alert('x & \"y\"')</script>"),
            "&lt;script&gt;alert(&#39;x &amp; &quot;y&quot;&#39;)&lt;/script&gt;"
        );
    }

    #[test]
    fn eval_results_older_than_a_run_are_stale() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path();
        let out = log.join("report");
        std::fs::create_dir_all(log.join("r/env_log")).unwrap();
        std::fs::write(log.join("r/env_log/trace.json"), "{}").unwrap();
        let (e, s) = (log.join(EVAL_FILE), log.join(SUMMARY_FILE));
        assert!(staleness(log, &out, &e, &s).unwrap().contains("missing"));
        std::fs::write(&e, "{}").unwrap();
        std::fs::write(&s, "{}").unwrap();
        let old = SystemTime::now() - Duration::from_secs(60);
        for p in [&e, &s] {
            std::fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        let why = staleness(log, &out, &e, &s).unwrap();
        assert!(why.contains("trace.json"), "{why}");
        std::fs::write(log.join("r/run.json"), "{}").unwrap();
        for p in [&e, &s] {
            std::fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(SystemTime::now() + Duration::from_secs(60))
                .unwrap();
        }
        assert_eq!(staleness(log, &out, &e, &s), None);
    }
}
