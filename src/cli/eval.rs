//! Flags of `mlab eval`.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Folder holding runs (searched at any depth).
    #[arg(long, value_name = "DIR")]
    pub log_folder: PathBuf,

    /// Task of every run (default: read from each run's metadata).
    #[arg(long)]
    pub task: Option<String>,

    /// Where to write the results JSON.
    #[arg(long, value_name = "FILE")]
    pub output_file: Option<PathBuf>,

    /// Also score every intermediate step snapshot.
    #[arg(long)]
    pub eval_intermediate: bool,

    /// Parallel scoring workers (default: the number of cores).
    #[arg(long)]
    pub jobs: Option<usize>,
}
