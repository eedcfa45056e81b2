//! Headless Chromium for the report's browser test and benchmark: where it
//! is, and the flags it needs on a machine with no network and no display.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Chromium on PATH (`chromium`, or `chromium-browser` on some distributions),
/// as `./install.sh --browser` installs it.
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser"].iter().find_map(|n| {
        std::env::split_paths(&path)
            .map(|d| d.join(n))
            .find(|c| c.is_file())
    })
}

/// `chrome` headless with a fresh profile in `profile`: no sandbox (tests
/// run as root), no GPU, and none of the background connections that a
/// closed network refuses; scripts get 5 s of virtual time to run.
pub fn headless(chrome: &Path, profile: &Path) -> Command {
    let mut c = Command::new(chrome);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--virtual-time-budget=5000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .stdin(Stdio::null());
    c
}
