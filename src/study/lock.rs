//! One study command per experiment folder at a time.
//!
//! `mlab run` (as a study, local queue or Slurm submission) holds an
//! exclusive `flock` on `<exp-dir>/.study.lock` for its whole life and
//! writes into it who holds it (pid, host, start time). A second study
//! command on the same folder is refused at once, naming the holder,
//! instead of finding the first one's runs busy and counting them as
//! failed. The lock is the study command's own: `mlab run-one` (started by
//! the queue, by Slurm or by hand) and `mlab status` never take it, and the
//! descriptor is closed on exec, so runs do not inherit it. The kernel
//! drops it when the holder dies, even by SIGKILL.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The lock file's name in the experiment folder.
pub const LOCK_FILE: &str = ".study.lock";

/// Held while it lives.
#[derive(Debug)]
pub struct StudyLock {
    _file: File,
    path: PathBuf,
}

impl StudyLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Who holds a study lock, as written in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holder {
    pub pid: Option<String>,
    pub host: Option<String>,
    pub started: Option<String>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unknown = || "?".to_string();
        write!(
            f,
            "pid {} on {}, started {}",
            self.pid.clone().unwrap_or_else(unknown),
            self.host.clone().unwrap_or_else(unknown),
            self.started.clone().unwrap_or_else(unknown)
        )
    }
}

fn parse_holder(text: &str) -> Holder {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    Holder {
        pid: field("pid"),
        host: field("host"),
        started: field("started"),
    }
}

/// This machine's name (for the holder's line).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this machine".to_string())
}

fn open(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Takes the study lock of `exp_dir` (creating the folder), or fails at
/// once naming the study command that holds it and what to do.
pub fn lock(exp_dir: &Path) -> Result<StudyLock> {
    use rustix::fs::{flock, FlockOperation};
    use std::io::{Read, Seek, Write};

    std::fs::create_dir_all(exp_dir)
        .with_context(|| format!("could not create {}", exp_dir.display()))?;
    let path = exp_dir.join(LOCK_FILE);
    let mut file =
        open(&path).with_context(|| format!("could not open the study lock {}", path.display()))?;
    if let Err(e) = flock(&file, FlockOperation::NonBlockingLockExclusive) {
        if e != rustix::io::Errno::WOULDBLOCK {
            return Err(std::io::Error::from(e))
                .with_context(|| format!("could not lock the study lock {}", path.display()));
        }
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        let holder = parse_holder(&text);
        bail!(
            "another study command is running on {} ({holder}; lock {}): only one may run on an experiment folder at a time. See what it is doing with `mlab status {}`, and run this command again once it has ended (or stop it first with Ctrl-C or `kill {}`)",
            exp_dir.display(),
            path.display(),
            exp_dir.display(),
            holder.pid.as_deref().unwrap_or("<pid>")
        );
    }
    let text = format!(
        "pid={}\nhost={}\nstarted={}\n",
        std::process::id(),
        host_name(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    file.set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| file.write_all(text.as_bytes()))
        .with_context(|| format!("could not write the study lock {}", path.display()))?;
    Ok(StudyLock { _file: file, path })
}

/// The study command holding `exp_dir` now, if one does (for `mlab
/// status`; takes nothing).
pub fn holder(exp_dir: &Path) -> Option<Holder> {
    let path = exp_dir.join(LOCK_FILE);
    if !super::status::lock_held(&path) {
        return None;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    Some(parse_holder(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_study_lock_on_one_folder_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let exp = dir.path().join("exp");
        assert!(holder(&exp).is_none());
        let first = lock(&exp).unwrap();
        let err = format!("{:#}", lock(&exp).unwrap_err());
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains("mlab status"), "{err}");
        assert_eq!(
            holder(&exp).and_then(|h| h.pid),
            Some(std::process::id().to_string())
        );
        drop(first);
        assert!(holder(&exp).is_none());
        let _again = lock(&exp).unwrap();
    }
}
