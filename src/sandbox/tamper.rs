//! Tamper check: were the task's read-only files changed during a run?
//!
//! The sandbox mounts those files read-only, so a change means the
//! confinement failed (or the run used `--sandbox none`). The check hashes
//! every file at the start and again at the end and reports what differs;
//! the run log records the report and eval shows it.
//!
//! Not here: deciding which files are read-only (the task's
//! read_only_files.txt, see `task`), or refusing writes (the sandbox does).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hashes of a set of files, taken before the agent acts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Baseline {
    root: PathBuf,
    /// Path relative to `root` (as given) to hex SHA-256.
    files: BTreeMap<PathBuf, String>,
}

/// The result of comparing the files with their baseline.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TamperReport {
    /// True when every file is present with its original content.
    pub ok: bool,
    /// Files checked.
    pub checked: usize,
    /// Files whose content differs (relative to the root).
    pub changed: Vec<PathBuf>,
    /// Files that are gone or can no longer be read.
    pub missing: Vec<PathBuf>,
}

impl Baseline {
    /// Hashes `paths` (relative to `root`, or absolute). A folder stands for
    /// every file below it. Symlinks are followed: what counts is the
    /// content a reader of the path gets.
    pub fn take<P: AsRef<Path>>(root: &Path, paths: &[P]) -> Result<Baseline> {
        let mut files = BTreeMap::new();
        for p in paths {
            let full = root.join(p.as_ref());
            if full.is_dir() {
                for entry in walkdir::WalkDir::new(&full)
                    .follow_links(true)
                    .sort_by_file_name()
                {
                    let entry =
                        entry.with_context(|| format!("could not list {}", full.display()))?;
                    if entry.file_type().is_file() {
                        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
                        files.insert(rel.to_path_buf(), hash_file(entry.path())?);
                    }
                }
            } else {
                let rel = full.strip_prefix(root).unwrap_or(&full).to_path_buf();
                files.insert(rel, hash_file(&full)?);
            }
        }
        Ok(Baseline {
            root: root.to_path_buf(),
            files,
        })
    }

    /// Number of files in the baseline.
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// Hashes the files again and compares.
    pub fn check(&self) -> TamperReport {
        let mut report = TamperReport {
            checked: self.files.len(),
            ..TamperReport::default()
        };
        for (rel, want) in &self.files {
            match hash_file(&self.root.join(rel)) {
                Ok(got) if &got == want => {}
                Ok(_) => report.changed.push(rel.clone()),
                Err(_) => report.missing.push(rel.clone()),
            }
        }
        report.ok = report.changed.is_empty() && report.missing.is_empty();
        report
    }
}

fn hash_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("could not read {}", path.display()))?;
    let mut h = Sha256::new();
    // 64 KiB: a 1 MiB buffer here was a fresh zeroed mapping per file,
    // which cost more than hashing the task's small files.
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("could not read {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn setup() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("train.csv"), "a,b\n1,2\n").unwrap();
        fs::create_dir(d.path().join("data")).unwrap();
        fs::write(d.path().join("data/x.txt"), "x").unwrap();
        fs::write(d.path().join("data/y.txt"), "y").unwrap();
        d
    }

    #[test]
    fn untouched_files_pass_the_check() {
        let d = setup();
        let b = Baseline::take(d.path(), &["train.csv", "data"]).unwrap();
        assert_eq!(b.file_count(), 3);
        let r = b.check();
        assert!(r.ok, "{r:?}");
        assert_eq!(r.checked, 3);
    }

    #[test]
    fn changed_and_deleted_files_are_named() {
        let d = setup();
        let b = Baseline::take(d.path(), &["train.csv", "data"]).unwrap();
        fs::write(d.path().join("train.csv"), "a,b\n1,3\n").unwrap();
        fs::remove_file(d.path().join("data/y.txt")).unwrap();
        let r = b.check();
        assert!(!r.ok);
        assert_eq!(r.changed, vec![PathBuf::from("train.csv")]);
        assert_eq!(r.missing, vec![PathBuf::from("data/y.txt")]);
    }

    #[test]
    fn a_rewrite_with_the_same_content_is_not_a_change() {
        let d = setup();
        let b = Baseline::take(d.path(), &["train.csv"]).unwrap();
        fs::write(d.path().join("train.csv"), "a,b\n1,2\n").unwrap();
        assert!(b.check().ok);
    }

    #[test]
    fn report_serialises_to_small_json() {
        let r = TamperReport {
            ok: false,
            checked: 2,
            changed: vec!["a.csv".into()],
            missing: vec![],
        };
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"ok": false, "checked": 2, "changed": ["a.csv"], "missing": []})
        );
    }

    #[test]
    fn a_missing_file_at_the_start_is_an_error() {
        let d = setup();
        let e = Baseline::take(d.path(), &["nope.csv"]).unwrap_err();
        assert!(format!("{e:#}").contains("nope.csv"));
    }
}
