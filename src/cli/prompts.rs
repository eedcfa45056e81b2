//! `mlab prompts`: prompt sets (see `mlab::prompts` and docs/prompts.md).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use mlab::prompts::{self, import};
use mlab::ui;

#[derive(Debug, Args)]
pub struct PromptsArgs {
    #[command(subcommand)]
    pub command: PromptsCommand,
}

#[derive(Debug, Subcommand)]
pub enum PromptsCommand {
    /// Write a prompt set with the original MLAgentBench's own words, read
    /// from your checkout of it (its Python sources are parsed, never run).
    ImportOriginal(ImportOriginalArgs),
    /// Write mlab's own prompt set into a folder, to edit into a set of
    /// your own.
    ExportDefault(ExportDefaultArgs),
}

#[derive(Debug, Args)]
pub struct ImportOriginalArgs {
    /// The checkout: the folder holding MLAgentBench/ (agents/,
    /// low_level_actions.py, high_level_actions.py).
    #[arg(value_name = "PATH")]
    pub checkout: PathBuf,

    /// Folder to write the set into (new or empty; its name is the set's).
    #[arg(long, value_name = "DIR", default_value_os_t = import::default_out())]
    pub out: PathBuf,

    /// Python that parses the sources (default: $MLAB_PYTHON, the install.sh
    /// venv, then python3).
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExportDefaultArgs {
    /// Folder to write the set into (new or empty).
    #[arg(value_name = "DIR")]
    pub out: PathBuf,
}

pub fn run(args: &PromptsArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        PromptsCommand::ImportOriginal(a) => {
            let python = mlab::python::resolve(a.python.as_deref()).path;
            let set = import::import_original(&a.checkout, &a.out, &python)?;
            ui::info(format!(
                "wrote the prompt set '{}' (sha256 {}) to {}; run with `mlab run --prompts {} ...`",
                set.name(),
                &set.hash()[..12],
                a.out.display(),
                a.out.display()
            ));
        }
        PromptsCommand::ExportDefault(a) => {
            prompts::export_default(&a.out)?;
            ui::info(format!(
                "wrote mlab's prompt set to {}; edit it and run with `mlab run --prompts {} ...`",
                a.out.display(),
                a.out.display()
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}
