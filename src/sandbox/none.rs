//! The `none` sandbox: no confinement beyond a cleared environment and a
//! process group. Used only on `--sandbox none`, with a warning.

use std::ffi::OsString;
use std::process::Command;

use anyhow::{bail, Result};

use super::{Policy, Sandbox};

#[derive(Debug, Default, Clone, Copy)]
pub struct NoSandbox;

impl Sandbox for NoSandbox {
    fn name(&self) -> &'static str {
        "none"
    }

    fn command(&self, argv: &[OsString], policy: &Policy) -> Result<Command> {
        let Some((prog, rest)) = argv.split_first() else {
            bail!("empty command");
        };
        let mut cmd = Command::new(prog);
        cmd.args(rest)
            .current_dir(&policy.workdir)
            .env_clear()
            .envs(policy.env.iter().map(|(k, v)| (k, v)));
        Ok(cmd)
    }
}
