//! Snapshots of the workspace: `env_log/traces/step_N_files/` after every
//! step and `step_final_files/` at the end, each an ordinary folder holding
//! every file of the workspace that is not read-only (what eval scores).
//!
//! The original copied the whole workspace at every step. Here each file's
//! content goes once into a content store (`env_log/store/<xx>/<sha256>`,
//! read-only copies), and snapshot files are hard links to it, so an
//! unchanged file costs one copy of disk however many steps there are.
//! A file whose inode, size, mtime and ctime did not change since it was
//! last hashed is not read again. Workspace files are never linked to the
//! store (only copied into it), so a later in-place write in the workspace
//! cannot alter a stored snapshot.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::workspace::Workspace;

/// Files larger than this are hashed before being copied, so content the
/// store already has is never written again.
const HASH_FIRST: u64 = 64 * 1024 * 1024;

/// A file modified this close to the moment it was hashed might be modified
/// again within the same timestamp tick without its mtime changing; its
/// hash is not trusted next time (the "racy" case git also guards against).
const RACY: Duration = Duration::from_millis(50);

/// `EMLINK`: the file already has the most hard links the file system allows.
const EMLINK: i32 = 31;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
            ctime_ns: m.ctime() as i128 * 1_000_000_000 + m.ctime_nsec() as i128,
        }
    }
}

#[derive(Debug, Clone)]
struct Known {
    stamp: Stamp,
    hash: String,
    /// False when the file changed too close to its hashing to trust the
    /// stamp (see [`RACY`]).
    trusted: bool,
}

/// Most entries a snapshot's record names one by one; the rest are only
/// counted (an agent can make millions of FIFOs).
pub const MAX_SKIPPED_LISTED: usize = 100;

/// An entry of the workspace that a snapshot left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Relative to the workspace (lossy for names that are not UTF-8).
    pub path: String,
    pub reason: String,
}

/// What one snapshot cost, and what it left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub files: u64,
    /// Files read and hashed (the rest were known by their stamp).
    pub hashed: u64,
    /// Bytes newly written into the store.
    pub stored_bytes: u64,
    /// Entries left out (the first [`MAX_SKIPPED_LISTED`]).
    pub skipped: Vec<Skipped>,
    /// How many entries were left out in all.
    pub skipped_total: u64,
}

impl Stats {
    fn skip(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.skipped_total += 1;
        if self.skipped.len() < MAX_SKIPPED_LISTED {
            let s = Skipped {
                path: path.into(),
                reason: reason.into(),
            };
            tracing::info!("snapshot: left out {}: {}", s.path, s.reason);
            self.skipped.push(s);
        }
    }
}

/// The log folder could not take a snapshot (its disk is full, read-only
/// or failing): a fault of the harness, never of what the workspace holds.
/// A snapshot that ends with this error is left as `<name>.incomplete`.
#[derive(Debug, thiserror::Error)]
#[error("could not write the snapshot into the log folder ({what}): {source}")]
pub struct LogWriteError {
    pub what: String,
    #[source]
    pub source: std::io::Error,
}

impl LogWriteError {
    fn new(what: impl std::fmt::Display, source: std::io::Error) -> LogWriteError {
        LogWriteError {
            what: what.to_string(),
            source,
        }
    }
}

/// Errors of writing into the log folder that come from the folder's disk
/// rather than from the name being written: these stop the snapshot.
fn is_log_disk_fault(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC)
            | Some(libc::EDQUOT)
            | Some(libc::EIO)
            | Some(libc::EROFS)
            | Some(libc::ENOMEM)
            | Some(libc::EMFILE)
            | Some(libc::ENFILE)
    )
}

/// Why an entry that is not a file, folder or link is left out.
fn kind_reason(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "a FIFO (named pipe); snapshots hold only regular files, folders and links"
    } else if ft.is_socket() {
        "a socket; snapshots hold only regular files, folders and links"
    } else if ft.is_block_device() || ft.is_char_device() {
        "a device file; snapshots hold only regular files, folders and links"
    } else {
        "not a regular file, folder or link"
    }
}

/// Why ingesting a file failed.
enum IngestError {
    /// The workspace file could not be read as a regular file (gone,
    /// replaced, unreadable): the entry is left out.
    Source(String),
    /// The store could not be written: the snapshot fails.
    Store(LogWriteError),
}

pub struct Store {
    store: PathBuf,
    traces: PathBuf,
    known: HashMap<String, Known>,
    /// Store file to link for each hash (changes only when a file reaches
    /// the file system's hard-link limit).
    current: HashMap<String, PathBuf>,
    tmp_counter: u64,
}

impl Store {
    /// A store under `env_log` (`store/`, snapshots in `traces/`).
    pub fn open(env_log: &Path) -> Result<Store> {
        let store = env_log.join("store");
        let traces = env_log.join("traces");
        for d in [&store, &traces] {
            std::fs::create_dir_all(d)
                .with_context(|| format!("could not create {}", d.display()))?;
        }
        Ok(Store {
            store,
            traces,
            known: HashMap::new(),
            current: HashMap::new(),
            tmp_counter: 0,
        })
    }

    /// Hashes the workspace into the store without making a snapshot, so
    /// that the first step's snapshot only links.
    pub fn prime(&mut self, ws: &Workspace) -> Result<Stats> {
        Ok(self.walk(ws, None)?)
    }

    /// Writes `traces/<name>/` for the workspace as it is now. Whatever the
    /// workspace holds, this fails only when the log folder cannot be
    /// written ([`LogWriteError`]); entries that cannot be stored are left
    /// out and listed in the returned stats. A failed snapshot is left as
    /// `<name>.incomplete`, so it is never taken for a complete one.
    pub fn snapshot(&mut self, ws: &Workspace, name: &str) -> Result<Stats> {
        let dest = self.traces.join(name);
        // Written under this name and renamed when complete, so that a
        // snapshot cut short (a full disk, mlab killed) never passes for a
        // complete one.
        let partial = self.traces.join(format!("{name}.incomplete"));
        for old in [&dest, &partial] {
            if std::fs::symlink_metadata(old).is_ok() {
                // Left by an earlier attempt at this step; its files are
                // links into the store, which keeps the contents.
                std::fs::remove_dir_all(old)
                    .with_context(|| format!("could not replace {}", old.display()))?;
            }
        }
        std::fs::create_dir_all(&partial)
            .map_err(|e| LogWriteError::new(format!("creating {}", partial.display()), e))?;
        // The stamps of a failed walk are not kept: the next snapshot reads
        // every file again.
        let stats = self.walk(ws, Some(&partial))?;
        std::fs::rename(&partial, &dest)
            .map_err(|e| LogWriteError::new(format!("completing {}", dest.display()), e))?;
        Ok(stats)
    }

    /// Adds every file of the folder `dir` (e.g. a snapshot of another run)
    /// as the snapshot `traces/<name>/`.
    pub fn import(&mut self, dir: &Path, name: &str) -> Result<Stats> {
        let dest = self.traces.join(name);
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::create_dir_all(&dest)?;
        let mut stats = Stats::default();
        for entry in walkdir::WalkDir::new(dir).follow_links(false).min_depth(1) {
            let entry = entry?;
            let rel = entry.path().strip_prefix(dir)?;
            let to = dest.join(rel);
            let ft = entry.file_type();
            if ft.is_dir() {
                std::fs::create_dir_all(&to)?;
            } else if ft.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &to)?;
            } else if ft.is_file() {
                let (hash, new) = match self.ingest(entry.path()) {
                    Ok(x) => x,
                    Err(IngestError::Source(e)) => anyhow::bail!(e),
                    Err(IngestError::Store(e)) => return Err(e.into()),
                };
                stats.files += 1;
                stats.hashed += 1;
                stats.stored_bytes += new;
                self.link(&hash, &to)?;
            }
        }
        Ok(stats)
    }

    fn walk(&mut self, ws: &Workspace, dest: Option<&Path>) -> Result<Stats, LogWriteError> {
        let root = ws.root();
        let mut stats = Stats::default();
        let mut seen: HashMap<String, Known> = HashMap::with_capacity(self.known.len());
        let mut walk = walkdir::WalkDir::new(root)
            .follow_links(false)
            .min_depth(1)
            .into_iter();
        while let Some(entry) = walk.next() {
            let entry = match entry {
                Ok(e) => e,
                // A file removed while walking, a folder we may not read, a
                // path too long to open: the snapshot holds the rest.
                Err(e) => {
                    let rel = e
                        .path()
                        .and_then(|p| p.strip_prefix(root).ok())
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "(unknown entry)".into());
                    let why = e
                        .io_error()
                        .map(|io| format!("could not be read: {io}"))
                        .unwrap_or_else(|| format!("could not be read: {e}"));
                    stats.skip(rel, why);
                    continue;
                }
            };
            let Ok(rel_path) = entry.path().strip_prefix(root) else {
                stats.skip(
                    entry.path().to_string_lossy(),
                    "is not inside the workspace",
                );
                continue;
            };
            let rel = rel_path.to_string_lossy().into_owned();
            let ft = entry.file_type();
            if ft.is_dir() {
                if let Some(d) = dest {
                    if let Err(e) = std::fs::create_dir_all(d.join(rel_path)) {
                        if is_log_disk_fault(&e) {
                            return Err(LogWriteError::new(format!("folder {rel}"), e));
                        }
                        stats.skip(rel, format!("the folder could not be stored: {e}"));
                        walk.skip_current_dir();
                    }
                }
                continue;
            }
            if ws.is_read_only(&rel) {
                continue;
            }
            if ft.is_symlink() {
                // Kept as a link when it leads somewhere inside the workspace;
                // a link out is never followed into the log.
                if let (Some(d), Ok(_)) = (dest, ws.resolve(&rel)) {
                    let target = match std::fs::read_link(entry.path()) {
                        Ok(t) => t,
                        Err(e) => {
                            stats.skip(rel, format!("the link could not be read: {e}"));
                            continue;
                        }
                    };
                    if let Err(e) = std::os::unix::fs::symlink(target, d.join(rel_path)) {
                        if is_log_disk_fault(&e) {
                            return Err(LogWriteError::new(format!("link {rel}"), e));
                        }
                        stats.skip(rel, format!("the link could not be stored: {e}"));
                    }
                }
                continue;
            }
            if !ft.is_file() {
                stats.skip(rel, kind_reason(&ft));
                continue;
            }
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) => {
                    stats.skip(rel, format!("could not be read: {e}"));
                    continue;
                }
            };
            let stamp = Stamp::of(&meta);
            let (hash, known) = match self.known.get(&rel) {
                Some(k) if k.trusted && k.stamp == stamp => (k.hash.clone(), k.clone()),
                _ => {
                    let started = SystemTime::now();
                    let (hash, new) = match self.ingest(entry.path()) {
                        Ok(x) => x,
                        // Unreadable, or gone or replaced since the walk saw
                        // it: the snapshot holds everything else.
                        Err(IngestError::Source(why)) => {
                            stats.skip(rel, why);
                            continue;
                        }
                        Err(IngestError::Store(e)) => return Err(e),
                    };
                    stats.hashed += 1;
                    stats.stored_bytes += new;
                    // The stamp was taken before reading: a change while we
                    // read makes the next stamp differ. Any later write sets
                    // mtime to a time after `started`, so a settled mtime
                    // cannot come back unchanged.
                    let trusted = is_settled(stamp.mtime_ns, started);
                    let k = Known {
                        stamp,
                        hash: hash.clone(),
                        trusted,
                    };
                    (hash, k)
                }
            };
            if let Some(d) = dest {
                if let Err(e) = self.link(&hash, &d.join(rel_path)) {
                    if is_log_disk_fault(&e) {
                        return Err(LogWriteError::new(format!("file {rel}"), e));
                    }
                    stats.skip(rel, format!("the file could not be stored: {e}"));
                    continue;
                }
            }
            stats.files += 1;
            seen.insert(rel, known);
        }
        // Files that are gone are forgotten.
        self.known = seen;
        Ok(stats)
    }

    /// Puts the content of `src` into the store; returns its hash and the
    /// bytes newly stored (0 when the store had it). Only a regular file is
    /// read: the name is opened without following a link and without
    /// blocking (a FIFO swapped in would otherwise wait for a writer), and
    /// what was opened is checked.
    fn ingest(&mut self, src: &Path) -> Result<(String, u64), IngestError> {
        use std::os::unix::fs::OpenOptionsExt;
        let source = |e: std::io::Error| IngestError::Source(format!("could not be read: {e}"));
        let mut input = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(src)
            .map_err(source)?;
        let meta = input.metadata().map_err(source)?;
        if !meta.is_file() {
            return Err(IngestError::Source(
                "it was replaced by something that is not a regular file while the snapshot was taken"
                    .into(),
            ));
        }
        if meta.len() > HASH_FIRST {
            let hash = hash_reader(&mut input).map_err(source)?;
            if self.store_path(&hash).exists() {
                return Ok((hash, 0));
            }
            use std::io::{Seek, SeekFrom};
            input.seek(SeekFrom::Start(0)).map_err(source)?;
        }
        // One counter for every store of the process: the last-resort close
        // after an interrupt may ingest while the run's own store does.
        static TMP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = TMP.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self.store.join(format!("tmp-{}-{n}", std::process::id()));
        let result = self.copy_in(&mut input, &tmp);
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn copy_in(&mut self, input: &mut File, tmp: &Path) -> Result<(String, u64), IngestError> {
        let store_err = |what: &str, e: std::io::Error| {
            IngestError::Store(LogWriteError::new(format!("{what} {}", tmp.display()), e))
        };
        let mut out = File::create(tmp).map_err(|e| store_err("creating", e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 << 10];
        let mut total = 0u64;
        loop {
            let n = match input.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(IngestError::Source(format!("could not be read: {e}"))),
            };
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| store_err("writing", e))?;
            total += n as u64;
        }
        drop(out);
        let hash = hex::encode(hasher.finalize());
        let final_path = self.store_path(&hash);
        if final_path.exists() {
            let _ = std::fs::remove_file(tmp);
            return Ok((hash, 0));
        }
        if let Some(parent) = final_path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| store_err("creating the folder for", e))?;
        }
        std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o444))
            .map_err(|e| store_err("protecting", e))?;
        std::fs::rename(tmp, &final_path).map_err(|e| store_err("storing", e))?;
        Ok((hash, total))
    }

    fn store_path(&self, hash: &str) -> PathBuf {
        self.store.join(&hash[..2]).join(hash)
    }

    /// Hard-links the stored content `hash` at `to`.
    fn link(&mut self, hash: &str, to: &Path) -> std::io::Result<()> {
        let from = self
            .current
            .get(hash)
            .cloned()
            .unwrap_or_else(|| self.store_path(hash));
        match std::fs::hard_link(&from, to) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(EMLINK) => {
                // Start a fresh copy of this content for further links.
                self.tmp_counter += 1;
                let next = from.with_file_name(format!("{hash}.{}", self.tmp_counter));
                if let Err(e) = std::fs::copy(&from, &next) {
                    let _ = std::fs::remove_file(&next);
                    return Err(e);
                }
                std::fs::set_permissions(&next, std::fs::Permissions::from_mode(0o444))?;
                std::fs::hard_link(&next, to)?;
                self.current.insert(hash.to_string(), next);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

fn is_settled(stamp_ns: i128, started: SystemTime) -> bool {
    let started_ns = started
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    stamp_ns + (RACY.as_nanos() as i128) < started_ns
}

fn hash_reader(f: &mut File) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::testutil::toy_workspace;

    #[test]
    fn unchanged_files_are_linked_not_copied_or_rehashed() {
        let (dir, ws) = toy_workspace("./train.csv\n");
        let log = dir.path().join("logs/env_log");
        let mut store = Store::open(&log).unwrap();
        let first = store.prime(&ws).unwrap();
        assert!(first.hashed >= 2);
        let s0 = store.snapshot(&ws, "step_0_files").unwrap();
        assert_eq!(s0.hashed, 0, "primed files are known by their stamp");
        assert_eq!(s0.stored_bytes, 0);
        let s1 = store.snapshot(&ws, "step_1_files").unwrap();
        assert_eq!(s1.hashed, 0);
        let a = std::fs::metadata(log.join("traces/step_0_files/train.py")).unwrap();
        let b = std::fs::metadata(log.join("traces/step_1_files/train.py")).unwrap();
        assert_eq!(a.ino(), b.ino(), "one copy on disk");
        // Read-only files never enter snapshots.
        assert!(!log.join("traces/step_0_files/train.csv").exists());
        assert!(log.join("traces/step_0_files/backup").is_dir());
    }

    #[test]
    fn in_place_write_never_alters_a_stored_snapshot() {
        let (dir, ws) = toy_workspace("");
        let log = dir.path().join("logs/env_log");
        let mut store = Store::open(&log).unwrap();
        store.snapshot(&ws, "step_0_files").unwrap();
        // Same size, written in place through the existing inode.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(ws.root().join("train.py"))
            .unwrap();
        f.write_all(b"print('HI')\n").unwrap();
        drop(f);
        let ws_ino = std::fs::metadata(ws.root().join("train.py")).unwrap().ino();
        let snap = log.join("traces/step_0_files/train.py");
        assert_ne!(std::fs::metadata(&snap).unwrap().ino(), ws_ino);
        assert_eq!(std::fs::read_to_string(&snap).unwrap(), "print('hi')\n");
        let s1 = store.snapshot(&ws, "step_1_files").unwrap();
        assert_eq!(s1.hashed, 1, "the changed file is read again");
        assert_eq!(
            std::fs::read_to_string(log.join("traces/step_1_files/train.py")).unwrap(),
            "print('HI')\n"
        );
        assert_eq!(std::fs::read_to_string(&snap).unwrap(), "print('hi')\n");
    }

    #[test]
    fn a_file_changed_right_after_hashing_is_hashed_again() {
        let (dir, ws) = toy_workspace("");
        let log = dir.path().join("logs/env_log");
        let mut store = Store::open(&log).unwrap();
        std::fs::write(ws.root().join("fresh.txt"), "one").unwrap();
        store.snapshot(&ws, "step_0_files").unwrap();
        // Fresh files are not trusted yet, so even a change that kept size
        // and (coarse) mtime would be seen.
        std::fs::write(ws.root().join("fresh.txt"), "two").unwrap();
        store.snapshot(&ws, "step_1_files").unwrap();
        assert_eq!(
            std::fs::read_to_string(log.join("traces/step_1_files/fresh.txt")).unwrap(),
            "two"
        );
    }

    #[test]
    fn links_out_of_the_workspace_are_left_out() {
        let (dir, ws) = toy_workspace("");
        let secret = dir.path().join("secret.txt");
        std::fs::write(&secret, "s").unwrap();
        std::os::unix::fs::symlink(&secret, ws.root().join("out")).unwrap();
        std::os::unix::fs::symlink("train.py", ws.root().join("in")).unwrap();
        let log = dir.path().join("logs/env_log");
        let mut store = Store::open(&log).unwrap();
        store.snapshot(&ws, "step_0_files").unwrap();
        let snap = log.join("traces/step_0_files");
        assert!(std::fs::symlink_metadata(snap.join("out")).is_err());
        assert_eq!(
            std::fs::read_link(snap.join("in")).unwrap(),
            Path::new("train.py")
        );
    }
}
