//! Flags that choose how agent-caused code is confined.

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum SandboxKind {
    /// bubblewrap when it exists and works; fail otherwise (never silently
    /// unconfined).
    #[default]
    Auto,
    /// bubblewrap namespaces.
    Bwrap,
    /// No confinement: the agent's code runs with your rights.
    None,
}

#[derive(Debug, Args, Clone, Default)]
pub struct SandboxArgs {
    /// How agent-caused code is confined.
    #[arg(long, value_enum, default_value_t = SandboxKind::Auto)]
    pub sandbox: SandboxKind,

    /// Memory limit per command, e.g. 8G or 512M (cgroup memory controller).
    #[arg(long, value_name = "SIZE")]
    pub mem_limit: Option<String>,
}
