//! The workspace: `<work-dir>/<task>`, the folder the agent works in, made
//! from the prepared task's `env/`.
//!
//! Read-only files (`read_only_files.txt`) are never duplicated into the
//! workspace as agent-owned files. Each is recorded as a [`Bind`] from the
//! file in the prepared task to its place in the workspace. How a bind is
//! realised depends on the sandbox ([`ReadOnlyMode`]): a sandbox that can
//! mount files read-only (bubblewrap) gets an empty placeholder to mount
//! over, and mlab's own file actions read such files from their source;
//! without one (`--sandbox none`) the file is copied, never hard-linked,
//! since a write through a hard link would reach the prepared original.
//!
//! Not here: which paths an agent may name (`confine`), snapshots
//! (`snapshot`).

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::confine::{self, Refusal, Resolved};
use crate::sandbox::Bind;
use crate::task::{ReadOnly, Task};

/// The folder of backups that Undo Edit Script restores from.
pub const BACKUP_DIR: &str = "backup";

/// How read-only files appear in the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOnlyMode {
    /// A private read-only copy (no sandbox can mount files).
    Copy,
    /// An empty placeholder that the sandbox mounts the original over.
    Bind,
}

#[derive(Debug)]
pub struct Workspace {
    /// Canonical path (no symlinks), so confinement can compare components.
    root: PathBuf,
    read_only: ReadOnly,
    binds: Vec<Bind>,
    /// Workspace-relative destination of each bind -> its source.
    bind_src: HashMap<String, PathBuf>,
    mode: ReadOnlyMode,
}

impl Workspace {
    /// Makes `<work_dir>/<task>` afresh from the prepared task. Writable
    /// files come from the task's `env/`, or, when resuming, from the
    /// snapshot folder `writable_from`. `log_dir` must lie outside it.
    pub fn create(
        task: &Task,
        work_dir: &Path,
        mode: ReadOnlyMode,
        writable_from: Option<&Path>,
        log_dir: &Path,
    ) -> Result<Workspace> {
        let read_only = task.read_only_matcher()?;
        std::fs::create_dir_all(work_dir)
            .with_context(|| format!("could not create --work-dir {}", work_dir.display()))?;
        let work_dir = work_dir
            .canonicalize()
            .with_context(|| format!("could not resolve --work-dir {}", work_dir.display()))?;
        let root = work_dir.join(dir_name(task));
        // Absolute, since bind sources are mounted by path.
        let env_dir = absolute(&task.env_dir());
        let task_dir = task.dir.canonicalize().unwrap_or_else(|_| task.dir.clone());
        if task_dir.starts_with(&root) || root.starts_with(&task_dir) {
            bail!(
                "the workspace {} would overlap the task folder {}; choose a --work-dir outside the benchmarks folder",
                root.display(),
                task_dir.display()
            );
        }
        let log_abs = absolute(log_dir);
        if log_abs.starts_with(&root) {
            bail!(
                "the log folder {} lies inside the workspace {}, which is deleted and remade at the start of a run; choose a --log-dir outside it",
                log_dir.display(),
                root.display()
            );
        }
        clear_old_workspace(&root)?;
        std::fs::create_dir_all(root.join(BACKUP_DIR))
            .with_context(|| format!("could not create the workspace {}", root.display()))?;

        let mut ws = Workspace {
            root,
            read_only,
            binds: Vec::new(),
            bind_src: HashMap::new(),
            mode,
        };
        ws.fill_from(&env_dir, true, writable_from.is_none())
            .with_context(|| format!("could not copy {} into the workspace", env_dir.display()))?;
        if let Some(snap) = writable_from {
            ws.fill_from(snap, false, true).with_context(|| {
                format!("could not restore the workspace from {}", snap.display())
            })?;
        }
        Ok(ws)
    }

    /// Copies the tree `src` into the workspace. Read-only files become
    /// binds (only when `read_only_too`); other files are copied when
    /// `writable_too`.
    fn fill_from(&mut self, src: &Path, read_only_too: bool, writable_too: bool) -> Result<()> {
        if !src.is_dir() {
            bail!("{} is not a folder", src.display());
        }
        let walk = walkdir::WalkDir::new(src)
            .follow_links(false)
            .sort_by_file_name()
            .min_depth(1);
        for entry in walk {
            let entry = entry?;
            let rel_path = entry.path().strip_prefix(src)?;
            let rel = rel_path.to_string_lossy().replace('\\', "/");
            let dest = self.root.join(rel_path);
            let ft = entry.file_type();
            if ft.is_dir() {
                std::fs::create_dir_all(&dest)
                    .with_context(|| format!("could not create {}", dest.display()))?;
                continue;
            }
            let is_ro = self.read_only.matches(&rel);
            if is_ro {
                if !read_only_too {
                    continue;
                }
                let bind = Bind {
                    src: entry.path().to_path_buf(),
                    dest: dest.clone(),
                };
                match self.mode {
                    ReadOnlyMode::Copy => copy_preserving(entry.path(), &dest)?,
                    ReadOnlyMode::Bind => {
                        std::fs::write(&dest, b"")
                            .with_context(|| format!("could not create {}", dest.display()))?;
                    }
                }
                set_read_only(&dest)?;
                self.bind_src.insert(rel.clone(), bind.src.clone());
                self.binds.push(bind);
                continue;
            }
            if !writable_too {
                continue;
            }
            if ft.is_symlink() {
                // Kept as a link (like the original's copytree(symlinks=True));
                // confinement decides later whether it may be followed.
                let target = std::fs::read_link(entry.path())?;
                let _ = std::fs::remove_file(&dest);
                std::os::unix::fs::symlink(&target, &dest)
                    .with_context(|| format!("could not create the link {}", dest.display()))?;
            } else if ft.is_file() {
                copy_preserving(entry.path(), &dest)?;
                // Snapshot store files are read-only; a restored copy must
                // be writable again.
                let mut perm = std::fs::metadata(&dest)?.permissions();
                if perm.readonly() {
                    perm.set_mode(perm.mode() | 0o200);
                    std::fs::set_permissions(&dest, perm)?;
                }
            }
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn mode(&self) -> ReadOnlyMode {
        self.mode
    }

    /// The read-only files: source in the prepared task, destination here.
    pub fn binds(&self) -> &[Bind] {
        &self.binds
    }

    /// Resolves a path an agent gave (see `confine`).
    pub fn resolve(&self, arg: &str) -> Result<Resolved, Refusal> {
        confine::resolve(&self.root, arg)
    }

    /// True when the workspace-relative `rel` may not be changed: a bound
    /// read-only file or any path matching a read-only pattern.
    pub fn is_read_only(&self, rel: &str) -> bool {
        self.bind_src.contains_key(rel) || self.read_only.matches(rel)
    }

    /// Where mlab reads `r` from: the source of a bound file when the
    /// workspace only holds a placeholder for it, else the file itself.
    pub fn read_path(&self, r: &Resolved) -> PathBuf {
        match (self.mode, self.bind_src.get(&r.rel)) {
            (ReadOnlyMode::Bind, Some(src)) => src.clone(),
            _ => r.host.clone(),
        }
    }
}

/// The workspace's folder name under the work dir: the task's folder name.
pub fn dir_name(task: &Task) -> String {
    task.dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| task.name().to_string())
}

/// The work dir of a run that names none: `<log-dir>.workspace`, beside
/// the log folder (never inside it, since snapshots and logs must not mix
/// with what the agent writes), so that two runs started from one folder
/// with different log folders never share a workspace.
pub fn default_work_dir(log_dir: &Path) -> Result<PathBuf> {
    let log = absolute(log_dir);
    match (log.parent(), log.file_name()) {
        (Some(parent), Some(name)) => {
            let mut name = name.to_os_string();
            name.push(".workspace");
            Ok(parent.join(name))
        }
        _ => bail!(
            "cannot derive a work dir from --log-dir {}; pass --work-dir DIR",
            log_dir.display()
        ),
    }
}

/// A workspace held by its run: an exclusive `flock` on
/// `<work-dir>/.<task>.lock`, a hidden file beside the workspace (not in
/// it, so neither snapshots nor the sandbox see it). The file names the
/// holder (pid, log dir, start time) for the message a second run gets.
/// The kernel drops the lock when the run's process ends in any way, a
/// SIGKILL included, so a stale file never blocks a later run; the file
/// itself is left in place (removing it would let two runs lock two
/// different files of one name).
#[derive(Debug)]
pub struct WorkspaceLock {
    _file: std::fs::File,
    path: PathBuf,
}

impl WorkspaceLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes the lock of the workspace `<work_dir>/<task>` for the run logging
/// to `log_dir`, or says which run holds it.
pub fn lock(task: &Task, work_dir: &Path, log_dir: &Path) -> Result<WorkspaceLock> {
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;

    std::fs::create_dir_all(work_dir)
        .with_context(|| format!("could not create --work-dir {}", work_dir.display()))?;
    let work_dir = absolute(work_dir);
    let name = dir_name(task);
    let path = work_dir.join(format!(".{name}.lock"));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .with_context(|| format!("could not open the workspace lock {}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(err)
                .with_context(|| format!("could not lock the workspace lock {}", path.display()));
        }
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let field = |key: &str| {
            holder
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_string)
        };
        let who = match (field("log_dir"), field("pid")) {
            (Some(log), Some(pid)) => format!(
                "the run logging to {log} (pid {pid}{})",
                field("started")
                    .map(|t| format!(", started {t}"))
                    .unwrap_or_default()
            ),
            _ => "another run that is just starting".to_string(),
        };
        bail!(
            "the workspace {} is in use by {who}; wait for that run to end, or give this run a --work-dir of its own (without --work-dir each run gets <log-dir>.workspace)",
            work_dir.join(&name).display()
        );
    }
    let text = format!(
        "pid={}\nlog_dir={}\nstarted={}\n",
        std::process::id(),
        absolute(log_dir).display(),
        chrono::Utc::now().to_rfc3339()
    );
    file.set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| file.write_all(text.as_bytes()))
        .with_context(|| format!("could not write the workspace lock {}", path.display()))?;
    Ok(WorkspaceLock { _file: file, path })
}

/// Removes a workspace left by an earlier run, refusing to delete a folder
/// that is not one (every workspace has `backup/`).
fn clear_old_workspace(root: &Path) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(root) else {
        return Ok(());
    };
    if !meta.is_dir() {
        bail!(
            "{} exists and is not a folder; move it away or choose another --work-dir",
            root.display()
        );
    }
    let empty = std::fs::read_dir(root)?.next().is_none();
    if !empty && !root.join(BACKUP_DIR).is_dir() {
        bail!(
            "{} exists and is not a workspace made by mlab (it has no {BACKUP_DIR}/ folder); move it away or choose another --work-dir",
            root.display()
        );
    }
    make_writable_dirs(root);
    std::fs::remove_dir_all(root)
        .with_context(|| format!("could not remove the old workspace {}", root.display()))
}

/// Gives every folder under `root` owner write permission so that an old
/// workspace whose folders a script made read-only can still be removed.
fn make_writable_dirs(root: &Path) {
    for entry in walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .flatten()
    {
        if entry.file_type().is_dir() {
            if let Ok(meta) = entry.metadata() {
                let mut perm = meta.permissions();
                if perm.mode() & 0o700 != 0o700 {
                    perm.set_mode(perm.mode() | 0o700);
                    let _ = std::fs::set_permissions(entry.path(), perm);
                }
            }
        }
    }
}

/// Copies a file and keeps its modification time (as Python's copy2), so
/// that an unchanged file keeps looking unchanged to the snapshot cache.
pub fn copy_preserving(src: &Path, dest: &Path) -> Result<()> {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let _ = std::fs::remove_file(dest);
    std::fs::copy(src, dest)
        .with_context(|| format!("could not copy {} to {}", src.display(), dest.display()))?;
    if let Ok(mtime) = std::fs::metadata(src).and_then(|m| m.modified()) {
        let f = std::fs::OpenOptions::new().write(true).open(dest);
        if let Ok(f) = f {
            let _ = f.set_modified(mtime);
        } else {
            // A read-only source copies as read-only; lift that briefly.
            let mut perm = std::fs::metadata(dest)?.permissions();
            let mode = perm.mode();
            perm.set_mode(mode | 0o200);
            std::fs::set_permissions(dest, perm.clone())?;
            if let Ok(f) = std::fs::OpenOptions::new().write(true).open(dest) {
                let _ = f.set_modified(mtime);
            }
            perm.set_mode(mode);
            std::fs::set_permissions(dest, perm)?;
        }
    }
    Ok(())
}

fn set_read_only(p: &Path) -> Result<()> {
    let mut perm = std::fs::metadata(p)?.permissions();
    perm.set_mode(perm.mode() & !0o222);
    std::fs::set_permissions(p, perm)?;
    Ok(())
}

/// `p` made absolute against the current folder, with `.`/`..` resolved as
/// far as the existing part of the path allows.
pub fn absolute(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    // A path that does not exist yet: resolve its nearest existing parent.
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut existing = abs.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.file_name(), existing.parent()) {
            (Some(n), Some(parent)) => {
                rest.push(n.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => return abs,
        }
    }
    let mut out = existing.canonicalize().unwrap_or(existing);
    for n in rest.into_iter().rev() {
        out.push(n);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::testutil::toy_task;

    #[test]
    fn read_only_files_become_binds_and_copies_do_not_reach_originals() {
        let dir = tempfile::tempdir().unwrap();
        let task = toy_task(dir.path(), "./train.csv\ndata/*\n");
        let ws = Workspace::create(
            &task,
            &dir.path().join("work"),
            ReadOnlyMode::Copy,
            None,
            &dir.path().join("logs"),
        )
        .unwrap();
        assert!(ws.root().join("backup").is_dir());
        assert_eq!(ws.binds().len(), 2);
        assert!(ws.is_read_only("train.csv") && ws.is_read_only("data/x.bin"));
        assert!(!ws.is_read_only("train.py"));
        let dest = ws.root().join("train.csv");
        // Not a hard link to the prepared original.
        use std::os::unix::fs::MetadataExt;
        let a = std::fs::metadata(&dest).unwrap();
        let b = std::fs::metadata(task.env_dir().join("train.csv")).unwrap();
        assert_ne!(a.ino(), b.ino());
        // A write to the copy (as root, permissions do not stop it) leaves
        // the original alone.
        let mut perm = a.permissions();
        perm.set_mode(0o644);
        std::fs::set_permissions(&dest, perm).unwrap();
        std::fs::write(&dest, "changed").unwrap();
        assert_eq!(
            std::fs::read_to_string(task.env_dir().join("train.csv")).unwrap(),
            "a,b\n1,2\n"
        );
    }

    #[test]
    fn bind_mode_leaves_placeholders_and_reads_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let task = toy_task(dir.path(), "./train.csv\n");
        let ws = Workspace::create(
            &task,
            &dir.path().join("work"),
            ReadOnlyMode::Bind,
            None,
            &dir.path().join("logs"),
        )
        .unwrap();
        assert_eq!(
            std::fs::metadata(ws.root().join("train.csv"))
                .unwrap()
                .len(),
            0
        );
        let r = ws.resolve("./train.csv").unwrap();
        assert_eq!(
            ws.read_path(&r),
            absolute(&task.env_dir()).join("train.csv")
        );
        assert!(ws.binds()[0].src.is_absolute());
    }

    #[test]
    fn a_folder_that_is_not_a_workspace_is_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let task = toy_task(dir.path(), "");
        let precious = dir.path().join("work/toy/thesis.tex");
        std::fs::create_dir_all(precious.parent().unwrap()).unwrap();
        std::fs::write(&precious, "years of work").unwrap();
        let err = Workspace::create(
            &task,
            &dir.path().join("work"),
            ReadOnlyMode::Copy,
            None,
            &dir.path().join("logs"),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("not a workspace made by mlab"));
        assert!(precious.exists());
    }

    #[test]
    fn a_locked_workspace_is_refused_naming_its_run_until_the_lock_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let task = toy_task(dir.path(), "");
        let work = dir.path().join("work");
        let held = lock(&task, &work, &dir.path().join("logs1")).unwrap();
        assert!(!held.path().starts_with(work.join("toy")));
        let err = format!(
            "{:#}",
            lock(&task, &work, &dir.path().join("logs2")).unwrap_err()
        );
        assert!(
            err.contains("in use by the run logging to")
                && err.contains("logs1")
                && err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(held);
        lock(&task, &work, &dir.path().join("logs2")).unwrap();
    }

    #[test]
    fn the_default_work_dir_sits_beside_the_log_dir() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let w = default_work_dir(&dir.path().join("runs/seed1")).unwrap();
        assert_eq!(w, base.join("runs/seed1.workspace"));
        assert!(!w.starts_with(base.join("runs/seed1")));
        assert!(default_work_dir(Path::new("/")).is_err());
    }

    #[test]
    fn log_dir_inside_the_workspace_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let task = toy_task(dir.path(), "");
        let err = Workspace::create(
            &task,
            &dir.path().join("work"),
            ReadOnlyMode::Copy,
            None,
            &dir.path().join("work/toy/logs"),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("--log-dir"), "{err:#}");
    }
}
