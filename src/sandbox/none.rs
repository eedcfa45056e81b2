//! The `none` sandbox: no confinement beyond a cleared environment and a
//! process group. Used only on `--sandbox none`, with a warning.
//!
//! Nothing can be mounted without namespaces, so read-only binds into the
//! working directory become copies (made once, when missing or still an
//! empty placeholder left by bwrap) and hidden paths stay visible: that is
//! what the warning is about.

use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

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
        copy_binds_into_workdir(policy)?;
        let mut cmd = Command::new(prog);
        cmd.args(rest)
            .current_dir(&policy.workdir)
            .env_clear()
            .envs(policy.env.iter().map(|(k, v)| (k, v)));
        Ok(cmd)
    }
}

/// Gives the command the read-only files it would see under bwrap, as
/// copies. Binds elsewhere need nothing: the path is visible as it is.
fn copy_binds_into_workdir(policy: &Policy) -> Result<()> {
    let workdir = std::path::absolute(&policy.workdir).unwrap_or(policy.workdir.clone());
    for b in &policy.read_only {
        let dest = std::path::absolute(&b.dest).unwrap_or(b.dest.clone());
        if !dest.starts_with(&workdir) || dest == workdir || !needs_copy(&b.src, &dest) {
            continue;
        }
        copy_tree(&b.src, &dest).with_context(|| {
            format!(
                "could not copy {} to {} for --sandbox none",
                b.src.display(),
                dest.display()
            )
        })?;
    }
    Ok(())
}

/// Missing, or an empty placeholder standing where a non-empty file goes.
fn needs_copy(src: &Path, dest: &Path) -> bool {
    match (fs::metadata(src), fs::symlink_metadata(dest)) {
        (Ok(_), Err(_)) => true,
        (Ok(s), Ok(d)) if s.is_file() && d.is_file() => d.len() == 0 && s.len() > 0,
        (Ok(s), Ok(d)) if s.is_dir() && d.is_dir() => {
            fs::read_dir(dest).is_ok_and(|mut e| e.next().is_none())
        }
        _ => false,
    }
}

fn copy_tree(src: &Path, dest: &Path) -> Result<()> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)?;
    }
    if src.is_file() {
        fs::copy(src, dest)?;
        return Ok(());
    }
    for entry in walkdir::WalkDir::new(src).follow_links(true) {
        let entry = entry?;
        let to = dest.join(entry.path().strip_prefix(src)?);
        if entry.file_type().is_dir() {
            fs::create_dir_all(&to)?;
        } else {
            fs::copy(entry.path(), &to)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Bind;
    use super::*;

    #[test]
    fn read_only_binds_into_the_workdir_become_copies() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("task/env");
        fs::create_dir_all(data.join("imgs")).unwrap();
        fs::write(data.join("train.csv"), "a,b\n").unwrap();
        fs::write(data.join("imgs/1.png"), "png").unwrap();
        let ws = root.path().join("ws");
        fs::create_dir(&ws).unwrap();
        // An empty placeholder, as bwrap leaves in the workspace.
        fs::write(ws.join("train.csv"), "").unwrap();
        let p = Policy {
            workdir: ws.clone(),
            read_only: vec![
                Bind {
                    src: data.join("train.csv"),
                    dest: ws.join("train.csv"),
                },
                Bind {
                    src: data.join("imgs"),
                    dest: ws.join("imgs"),
                },
                Bind {
                    src: data.clone(),
                    dest: data.clone(),
                },
            ],
            ..Policy::default()
        };
        NoSandbox.command(&["true".into()], &p).unwrap();
        assert_eq!(fs::read_to_string(ws.join("train.csv")).unwrap(), "a,b\n");
        assert_eq!(fs::read_to_string(ws.join("imgs/1.png")).unwrap(), "png");
        // A copy the agent changed is left alone on the next command.
        fs::write(ws.join("train.csv"), "changed").unwrap();
        NoSandbox.command(&["true".into()], &p).unwrap();
        assert_eq!(fs::read_to_string(ws.join("train.csv")).unwrap(), "changed");
    }
}
