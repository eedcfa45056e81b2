//! mlab: a Rust runner for MLAgentBench-style benchmarks.
//!
//! `main` parses the command line, sets up logging and dispatches to one
//! module per subcommand. Exit codes: 0 success, 1 failure, 2 usage error
//! (clap's own). A reader that closes stdout early (`mlab eval | head`)
//! ends nothing badly: the rest of the output is dropped quietly.

mod agent;
mod cli;
mod doctor;
mod env;
mod eval;
mod llm;
mod paths;
mod python;
mod run;
mod sandbox;
mod task;
mod ui;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    // First, so that even clap's --help into a closed pipe exits quietly.
    ui::exit_quietly_on_broken_pipe();
    let cli = Cli::parse();
    ui::init_logging(cli.global.verbose);
    match dispatch(cli) {
        Ok(_) if ui::stdout_failed() => ExitCode::FAILURE,
        Ok(code) => code,
        Err(err) => {
            ui::error(&err);
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let global = cli.global;
    match cli.command {
        Command::Tasks(args) => task::list::run(&global, &args),
        Command::Prepare(args) => task::prepare::run(&global, &args),
        Command::Doctor(args) => doctor::run(&global, &args),
        Command::Run(args) => run::run(&global, &args),
        Command::Eval(args) => cli::run_eval(&global, &args),
        Command::Report(_) => not_yet("report"),
        Command::LlmCheck(args) => llm::check::run(&args),
        Command::SandboxExec(args) => sandbox::exec::run(&args),
    }
}

/// Subcommands whose issue has not landed say so and fail; they never pretend.
fn not_yet(name: &str) -> anyhow::Result<ExitCode> {
    eprintln!("mlab {name}: not yet available in this build");
    Ok(ExitCode::FAILURE)
}
