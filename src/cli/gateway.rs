//! `mlab gateway-forward` (hidden): the relay the `program` agent starts
//! inside the sandbox, from 127.0.0.1:PORT to the gateway's unix socket.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct GatewayForwardArgs {
    /// The gateway's unix socket (as seen inside the sandbox).
    #[arg(long, value_name = "PATH")]
    pub socket: PathBuf,

    /// The TCP port to listen on, on 127.0.0.1.
    #[arg(long, value_name = "PORT")]
    pub port: u16,
}

/// Prints `ready` once listening, then relays until killed.
pub fn run(args: &GatewayForwardArgs) -> anyhow::Result<ExitCode> {
    mlab::gateway::forward::forward(&args.socket, args.port, |_| {
        mlab::ui::write_stdout(format_args!("ready\n"));
    })?;
    Ok(ExitCode::SUCCESS)
}
