//! `mlab report`: its flags, their conversion into a `report::ReportConfig`,
//! and what it prints (where the report is, or opening it).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use mlab::{report, ui};

use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The log folder: the runs, and eval.json and eval_summary.json
    /// (`mlab eval` is run first, scoring every step, when they are missing
    /// or older than a run).
    #[arg(long, value_name = "DIR")]
    pub log_folder: PathBuf,

    /// Where to write report.md, plots/ and index.html (default:
    /// <log-folder>/report).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Open index.html in your browser (xdg-open, open or $BROWSER);
    /// without one, print its path.
    #[arg(long)]
    pub open: bool,

    /// Python interpreter for eval.py when eval has to run (default:
    /// $MLAB_PYTHON, then the venv made by install.sh, then python3).
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,

    /// How eval.py is confined when eval has to run.
    #[arg(long, value_enum, default_value_t = super::SandboxKind::Auto)]
    pub sandbox: super::SandboxKind,

    /// Steps per page of a run's page (each page is loaded when shown).
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub page_size: u64,
}

impl ReportArgs {
    pub fn to_config(&self, global: &GlobalArgs) -> report::ReportConfig {
        let mut cfg = report::ReportConfig::new(&self.log_folder);
        cfg.out = self.out.clone();
        cfg.page_size = self.page_size as usize;
        cfg.eval.python = self.python.clone();
        cfg.eval.sandbox = self.sandbox.into();
        cfg.eval.benchmarks_dir = global.benchmarks_dir.clone();
        cfg
    }
}

/// Builds the report, says where it is, and opens it when asked.
pub fn run(global: &GlobalArgs, args: &ReportArgs) -> Result<ExitCode> {
    let outcome = report::build(&args.to_config(global))?;
    ui::info(format!(
        "report of {} run(s) written to {} ({} plot file(s))",
        outcome.runs,
        outcome.out_dir.display(),
        outcome.plots.len()
    ));
    let index = outcome.index_html.display().to_string();
    if args.open {
        if let Some(opener) = opener() {
            let spawned = std::process::Command::new(&opener)
                .arg(&outcome.index_html)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn();
            match spawned {
                Ok(_) => {
                    ui::info(format!("opened {index} with {opener}"));
                    return Ok(ExitCode::SUCCESS);
                }
                Err(e) => ui::warn(format!("could not start {opener}: {e}")),
            }
        } else {
            ui::warn("no browser found (xdg-open, open or $BROWSER); open the file yourself");
        }
    }
    ui::outln!("{index}");
    Ok(ExitCode::SUCCESS)
}

/// $BROWSER, else xdg-open (Linux) or open (macOS), when on PATH.
fn opener() -> Option<String> {
    if let Some(b) = std::env::var_os("BROWSER").filter(|b| !b.is_empty()) {
        return Some(b.to_string_lossy().into_owned());
    }
    let path = std::env::var_os("PATH")?;
    ["xdg-open", "open"]
        .into_iter()
        .find(|name| std::env::split_paths(&path).any(|d| d.join(name).is_file()))
        .map(str::to_string)
}
