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

/// What one snapshot cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub files: u64,
    /// Files read and hashed (the rest were known by their stamp).
    pub hashed: u64,
    /// Bytes newly written into the store.
    pub stored_bytes: u64,
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
        self.walk(ws, None)
    }

    /// Writes `traces/<name>/` for the workspace as it is now.
    pub fn snapshot(&mut self, ws: &Workspace, name: &str) -> Result<Stats> {
        let dest = self.traces.join(name);
        if std::fs::symlink_metadata(&dest).is_ok() {
            // Left by an earlier attempt at this step; its files are links
            // into the store, which keeps the contents.
            std::fs::remove_dir_all(&dest)
                .with_context(|| format!("could not replace {}", dest.display()))?;
        }
        std::fs::create_dir_all(&dest)
            .with_context(|| format!("could not create {}", dest.display()))?;
        self.walk(ws, Some(&dest))
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
            let rel = entry.path().strip_prefix(dir).expect("under dir");
            let to = dest.join(rel);
            let ft = entry.file_type();
            if ft.is_dir() {
                std::fs::create_dir_all(&to)?;
            } else if ft.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &to)?;
            } else if ft.is_file() {
                let (hash, new) = self.ingest(entry.path())?;
                stats.files += 1;
                stats.hashed += 1;
                stats.stored_bytes += new;
                self.link(&hash, &to)?;
            }
        }
        Ok(stats)
    }

    fn walk(&mut self, ws: &Workspace, dest: Option<&Path>) -> Result<Stats> {
        let root = ws.root();
        let mut stats = Stats::default();
        let mut seen: HashMap<String, Known> = HashMap::with_capacity(self.known.len());
        let walk = walkdir::WalkDir::new(root).follow_links(false).min_depth(1);
        for entry in walk {
            let entry = match entry {
                Ok(e) => e,
                // A file removed while walking, or a folder we may not read:
                // the snapshot holds what could be read.
                Err(e) => {
                    tracing::warn!("snapshot: skipping an entry: {e}");
                    continue;
                }
            };
            let rel_path = entry.path().strip_prefix(root).expect("under root");
            let rel = rel_path.to_string_lossy().into_owned();
            let ft = entry.file_type();
            if ft.is_dir() {
                if let Some(d) = dest {
                    std::fs::create_dir_all(d.join(rel_path))?;
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
                    let target = std::fs::read_link(entry.path())?;
                    std::os::unix::fs::symlink(target, d.join(rel_path))?;
                }
                continue;
            }
            if !ft.is_file() {
                continue;
            }
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(_) => continue,
            };
            let stamp = Stamp::of(&meta);
            let hash = match self.known.get(&rel) {
                Some(k) if k.trusted && k.stamp == stamp => {
                    seen.insert(rel, k.clone());
                    k.hash.clone()
                }
                _ => {
                    let started = SystemTime::now();
                    let (hash, new) = match self.ingest(entry.path()) {
                        Ok(x) => x,
                        // Unreadable, or gone since the walk saw it: the
                        // snapshot holds everything else.
                        Err(e) => {
                            tracing::warn!("snapshot: skipping {rel}: {e:#}");
                            continue;
                        }
                    };
                    stats.hashed += 1;
                    stats.stored_bytes += new;
                    // The stamp was taken before reading: a change while we
                    // read makes the next stamp differ. Any later write sets
                    // mtime to a time after `started`, so a settled mtime
                    // cannot come back unchanged.
                    let trusted = is_settled(stamp.mtime_ns, started);
                    seen.insert(
                        rel,
                        Known {
                            stamp,
                            hash: hash.clone(),
                            trusted,
                        },
                    );
                    hash
                }
            };
            stats.files += 1;
            if let Some(d) = dest {
                self.link(&hash, &d.join(rel_path))?;
            }
        }
        // Files that are gone are forgotten.
        self.known = seen;
        Ok(stats)
    }

    /// Puts the content of `src` into the store; returns its hash and the
    /// bytes newly stored (0 when the store had it).
    fn ingest(&mut self, src: &Path) -> Result<(String, u64)> {
        let size = std::fs::metadata(src)?.len();
        if size > HASH_FIRST {
            let hash = hash_file(src)?;
            if self.store_path(&hash).exists() {
                return Ok((hash, 0));
            }
        }
        let mut input =
            File::open(src).with_context(|| format!("could not read {}", src.display()))?;
        self.tmp_counter += 1;
        let tmp = self
            .store
            .join(format!("tmp-{}-{}", std::process::id(), self.tmp_counter));
        let mut out =
            File::create(&tmp).with_context(|| format!("could not write {}", tmp.display()))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            total += n as u64;
        }
        drop(out);
        let hash = hex::encode(hasher.finalize());
        let final_path = self.store_path(&hash);
        if final_path.exists() {
            std::fs::remove_file(&tmp)?;
            return Ok((hash, 0));
        }
        std::fs::create_dir_all(final_path.parent().expect("has parent"))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o444))?;
        std::fs::rename(&tmp, &final_path)?;
        Ok((hash, total))
    }

    fn store_path(&self, hash: &str) -> PathBuf {
        self.store.join(&hash[..2]).join(hash)
    }

    /// Hard-links the stored content `hash` at `to`.
    fn link(&mut self, hash: &str, to: &Path) -> Result<()> {
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
                std::fs::copy(&from, &next)?;
                std::fs::set_permissions(&next, std::fs::Permissions::from_mode(0o444))?;
                std::fs::hard_link(&next, to)?;
                self.current.insert(hash.to_string(), next);
                Ok(())
            }
            Err(e) => {
                Err(e).with_context(|| format!("could not link {} into the snapshot", to.display()))
            }
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

fn hash_file(p: &Path) -> Result<String> {
    let mut f = File::open(p).with_context(|| format!("could not read {}", p.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
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
