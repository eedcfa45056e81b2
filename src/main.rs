//! mlab: a Rust runner for MLAgentBench-style benchmarks.
//!
//! `main` parses the command line, sets up logging and dispatches to one
//! front-end module per subcommand (`cli`), which turns the flags into the
//! engine's configuration types and calls the `mlab` library. Exit codes: 0
//! success, 1 failure, 2 usage error (clap's own). A reader that closes stdout early (`mlab eval | head`)
//! ends nothing badly: the rest of the output is dropped quietly.

mod cli;

use std::process::ExitCode;

use clap::Parser;
use mlab::ui;

use cli::Cli;

fn main() -> ExitCode {
    // First, so that even clap's --help into a closed pipe exits quietly.
    ui::exit_quietly_on_broken_pipe();
    let cli = Cli::parse();
    ui::init_logging(cli.global.verbose);
    match cli::dispatch(cli) {
        Ok(_) if ui::stdout_failed() => ExitCode::FAILURE,
        Ok(code) => code,
        Err(err) => {
            ui::error(&err);
            ExitCode::FAILURE
        }
    }
}
