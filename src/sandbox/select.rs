//! Choosing the sandbox for `--sandbox auto|bwrap|none`, and checking that
//! bubblewrap really works here before anything relies on it.
//!
//! The rule: `auto` and `bwrap` use bubblewrap or fail with the reason and
//! the ways out; only an explicit `none` runs code unconfined. A missing or
//! broken bwrap never silently degrades to no sandbox.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::{Bwrap, NoSandbox, Sandbox};

/// How agent-caused code (or a grader) is confined: `--sandbox`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    /// bubblewrap when it exists and works; fail otherwise (never silently
    /// unconfined).
    #[default]
    Auto,
    /// bubblewrap namespaces.
    Bwrap,
    /// No confinement: the agent's code runs with your rights.
    None,
}

impl Kind {
    /// The name as `--sandbox` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Auto => "auto",
            Kind::Bwrap => "bwrap",
            Kind::None => "none",
        }
    }
}

/// Printed (and logged) whenever a run uses `--sandbox none`.
pub const NONE_WARNING: &str = "--sandbox none: the agent's code runs unconfined, with your \
     rights. It can read the task's hidden answers and your files (keys included), reach the \
     network and change anything you can change. Use it only on a machine you can throw away.";

/// How to get a working sandbox, appended to every bwrap failure.
const WAY_OUT: &str = "to fix it: install bubblewrap (apt-get install bubblewrap, or your \
     distribution's package), or enable unprivileged user namespaces \
     (sysctl -w kernel.unprivileged_userns_clone=1 and user.max_user_namespaces > 0, or an \
     AppArmor profile that allows bwrap), or pass --sandbox none to run the agent's code \
     unconfined (not recommended)";

/// The sandbox for `kind`. `none` gives `NoSandbox` and always prints
/// [`NONE_WARNING`], so no caller can run unconfined silently.
pub fn select(kind: Kind) -> Result<Box<dyn Sandbox>> {
    match kind {
        Kind::None => {
            crate::ui::warn(NONE_WARNING);
            Ok(Box::new(NoSandbox))
        }
        Kind::Auto | Kind::Bwrap => match probe() {
            Ok(b) => Ok(Box::new(b.clone())),
            Err(reason) => {
                let asked = if kind == Kind::Auto {
                    "--sandbox auto needs bubblewrap"
                } else {
                    "--sandbox bwrap was asked for"
                };
                bail!("{asked}, but {reason}; {WAY_OUT}")
            }
        },
    }
}

/// Whether bubblewrap works here: the checked `Bwrap`, or why not. Checked
/// once per process (about 5 ms).
pub fn probe() -> &'static std::result::Result<Bwrap, String> {
    static PROBE: OnceLock<std::result::Result<Bwrap, String>> = OnceLock::new();
    PROBE.get_or_init(|| probe_path(std::env::var_os("PATH")))
}

/// The probe against a given PATH (tests use their own).
pub fn probe_path(path_var: Option<OsString>) -> std::result::Result<Bwrap, String> {
    let Some(path) = find_bwrap(path_var) else {
        return Err("bubblewrap (bwrap) is not installed (not found on PATH)".into());
    };
    // The full set of flags the sandbox uses; without a user namespace as a
    // second try, for a setuid bwrap on kernels that forbid unprivileged ones.
    let Err(full) = try_bwrap(&path, true) else {
        return Ok(Bwrap { path, userns: true });
    };
    if try_bwrap(&path, false).is_ok() {
        return Ok(Bwrap {
            path,
            userns: false,
        });
    }
    Err(format!(
        "{} cannot make a sandbox here: {full}",
        path.display(),
    ))
}

fn find_bwrap(path_var: Option<OsString>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(&path_var?)
        .map(|d| d.join("bwrap"))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Runs bwrap's own `--version` inside a sandbox with the namespaces we
/// use: bwrap is the one program sure to be there.
fn try_bwrap(bwrap: &Path, userns: bool) -> std::result::Result<(), String> {
    let mut cmd = Command::new(bwrap);
    cmd.args(["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"])
        .arg("--unshare-all");
    if userns {
        cmd.args(["--unshare-user", "--disable-userns"]);
    }
    cmd.args([
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--",
    ])
    .arg(bwrap)
    .arg("--version")
    .env_clear()
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("it does not start ({e})"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("it hung for 10 s".into());
            }
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    let err = err.trim();
    Err(if err.is_empty() {
        format!("it failed ({status})")
    } else {
        format!("it failed ({status}): {err}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn fake_bwrap(dir: &Path, script: &str) {
        let p = dir.join("bwrap");
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn a_missing_bwrap_is_reported_as_not_installed() {
        let empty = tempfile::tempdir().unwrap();
        let e = probe_path(Some(empty.path().into())).unwrap_err();
        assert!(e.contains("not installed"), "{e}");
    }

    #[test]
    fn a_failing_bwrap_is_reported_with_its_message() {
        let d = tempfile::tempdir().unwrap();
        fake_bwrap(
            d.path(),
            "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n",
        );
        let e = probe_path(Some(d.path().into())).unwrap_err();
        assert!(e.contains("cannot make a sandbox"), "{e}");
        assert!(e.contains("No permissions to create new namespace"), "{e}");
    }

    #[test]
    fn none_is_chosen_only_when_asked() {
        assert_eq!(select(Kind::None).unwrap().name(), "none");
        // auto is bwrap or an error, never "none".
        match select(Kind::Auto) {
            Ok(s) => assert_eq!(s.name(), "bwrap"),
            Err(e) => assert!(e.to_string().contains("--sandbox none"), "{e}"),
        }
    }

    #[test]
    fn none_warning_says_what_is_exposed() {
        for word in ["unconfined", "answers", "network"] {
            assert!(NONE_WARNING.contains(word), "{word}");
        }
    }
}
