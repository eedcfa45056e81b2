//! The score cache: what a snapshot scored, keyed by what the score can
//! depend on, so identical snapshots are scored once across runs and across
//! invocations.
//!
//! The key covers everything the grader can read:
//! - the snapshot: the submission files `task.toml` declares (a folder
//!   entry hashes its whole tree), or, for a task that declares none (every
//!   task in the original layout, whose eval.py may read any file: CLRS
//!   reads checkpoints/, babylm output/), the whole snapshot;
//! - the grader's code ([`Hasher::code_key`]): eval.py and every Python file
//!   in its folder, in the shared `_common/` and in the pristine `env/`
//!   (some evals import the starter code), each by content; the `prepared`
//!   marker by content and time, so re-preparing the answers starts afresh;
//!   and the Python interpreter used (its resolved path, size and time, and
//!   its venv's pyvenv.cfg).
//!
//! The cache is a JSON-lines file in the log folder, only ever appended to;
//! a line cut off by a crash is skipped on reading. Only scores are stored:
//! an error may come from the machine (data not prepared, a package
//! missing), and must be retried once that is fixed.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// File name of the cache inside the log folder.
pub const CACHE_FILE: &str = ".mlab-eval-cache.jsonl";

/// Changes whenever the meaning of a key changes, so old entries stop matching.
const KEY_VERSION: &str = "mlab-eval-key-v2";

#[derive(Debug, Serialize, Deserialize)]
struct Line {
    key: String,
    score: f64,
    #[serde(default)]
    task: String,
}

/// Scores already known, and the file new ones are appended to.
pub struct Cache {
    path: PathBuf,
    scores: HashMap<String, f64>,
    file: Option<File>,
    /// Lines that could not be read (a torn last line, or damage).
    pub skipped_lines: usize,
    write_failed: bool,
}

impl Cache {
    /// Loads `path` if it exists. Nothing is created until the first append.
    pub fn open(path: &Path) -> Result<Cache> {
        let mut scores = HashMap::new();
        let mut skipped_lines = 0;
        match std::fs::read(path) {
            Ok(bytes) => {
                for line in bytes.split(|b| *b == b'\n') {
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    match serde_json::from_slice::<Line>(line) {
                        Ok(l) if l.score.is_finite() => {
                            scores.insert(l.key, l.score);
                        }
                        _ => skipped_lines += 1,
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("could not read the cache {}", path.display()))
            }
        }
        Ok(Cache {
            path: path.to_path_buf(),
            scores,
            file: None,
            skipped_lines,
            write_failed: false,
        })
    }

    pub fn get(&self, key: &str) -> Option<f64> {
        self.scores.get(key).copied()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// Records a score in memory and appends it to the file. A file that
    /// cannot be written (a read-only log folder) is reported once; scoring
    /// goes on.
    pub fn insert(&mut self, key: &str, task: &str, score: f64) {
        if !score.is_finite() || self.scores.contains_key(key) {
            return;
        }
        self.scores.insert(key.to_string(), score);
        if self.write_failed {
            return;
        }
        if let Err(e) = self.append(key, task, score) {
            self.write_failed = true;
            crate::ui::warn(format!(
                "could not write the score cache {}: {e:#}; scores of this run will not be reused",
                self.path.display()
            ));
        }
    }

    fn append(&mut self, key: &str, task: &str, score: f64) -> Result<()> {
        let file = match &mut self.file {
            Some(f) => f,
            slot @ None => {
                let mut f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .read(true)
                    .open(&self.path)?;
                // A line torn by an earlier crash must not swallow our first one.
                let len = f.metadata()?.len();
                if len > 0 {
                    let mut last = [0u8; 1];
                    f.seek(SeekFrom::Start(len - 1))?;
                    f.read_exact(&mut last)?;
                    if last[0] != b'\n' {
                        f.write_all(b"\n")?;
                    }
                }
                slot.insert(f)
            }
        };
        let mut text = serde_json::to_string(&Line {
            key: key.to_string(),
            score,
            task: task.to_string(),
        })?;
        text.push('\n');
        // One write per line: appends from parallel invocations stay whole.
        file.write_all(text.as_bytes())?;
        Ok(())
    }
}

/// Hashes files and trees, remembering each file by inode so that the
/// hard-linked copies in mlab's snapshots are read once.
#[derive(Default)]
pub struct Hasher {
    by_inode: HashMap<(u64, u64, u64, i64, i64), [u8; 32]>,
}

impl Hasher {
    fn file(&mut self, p: &Path) -> Result<[u8; 32]> {
        let meta =
            std::fs::metadata(p).with_context(|| format!("could not read {}", p.display()))?;
        let id = (
            meta.dev(),
            meta.ino(),
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec(),
        );
        if let Some(h) = self.by_inode.get(&id) {
            return Ok(*h);
        }
        let mut f = File::open(p).with_context(|| format!("could not read {}", p.display()))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let h: [u8; 32] = hasher.finalize().into();
        self.by_inode.insert(id, h);
        Ok(h)
    }

    /// Feeds what `entry` (a file, a folder, or nothing) holds into `out`.
    fn entry(&mut self, p: &Path, out: &mut Sha256) -> Result<()> {
        let Ok(meta) = std::fs::symlink_metadata(p) else {
            out.update(b"missing\0");
            return Ok(());
        };
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(p)?;
            out.update(b"link\0");
            out.update(target.as_os_str().as_encoded_bytes());
            out.update(b"\0");
            // What the link points at is what eval.py reads.
            if p.exists() {
                return self.entry_followed(p, out);
            }
            return Ok(());
        }
        self.entry_followed(p, out)
    }

    fn entry_followed(&mut self, p: &Path, out: &mut Sha256) -> Result<()> {
        if p.is_dir() {
            out.update(b"dir\0");
            let mut files = Vec::new();
            for e in walkdir::WalkDir::new(p)
                .follow_links(true)
                .sort_by_file_name()
            {
                let e = e.with_context(|| format!("could not read {}", p.display()))?;
                if e.file_type().is_file() {
                    files.push(e.into_path());
                }
            }
            for f in files {
                let rel = f.strip_prefix(p).unwrap_or(&f);
                out.update(rel.as_os_str().as_encoded_bytes());
                out.update(b"\0");
                out.update(self.file(&f)?);
            }
        } else {
            out.update(b"file\0");
            out.update(self.file(p)?);
        }
        Ok(())
    }

    /// The cache key of `snapshot` for a task whose grader code hashes to
    /// `code_key` and whose eval reads the `submission` entries (None: it
    /// may read anything, so the whole snapshot counts).
    pub fn snapshot_key(
        &mut self,
        task: &str,
        code_key: &str,
        submission: Option<&[String]>,
        snapshot: &Path,
    ) -> Result<String> {
        let mut h = Sha256::new();
        for part in [KEY_VERSION, task, code_key] {
            h.update(part.as_bytes());
            h.update(b"\0");
        }
        let Some(submission) = submission else {
            h.update(b"whole snapshot\0");
            self.entry(snapshot, &mut h)?;
            return Ok(hex::encode(h.finalize()));
        };
        for entry in submission {
            let rel = crate::task::normalize_relative(entry).unwrap_or_else(|| entry.clone());
            h.update(rel.as_bytes());
            h.update(b"\0");
            let p = if rel.is_empty() {
                snapshot.to_path_buf()
            } else {
                snapshot.join(&rel)
            };
            self.entry(&p, &mut h)?;
        }
        Ok(hex::encode(h.finalize()))
    }

    /// What identifies a task's grader apart from the snapshot: eval.py,
    /// the Python files of `code_dirs` (its folder, `_common/`, the pristine
    /// env/; missing ones are skipped), the prepared marker in `script_dir`
    /// and the interpreter.
    pub fn code_key(
        &mut self,
        eval_py: &Path,
        script_dir: &Path,
        code_dirs: &[PathBuf],
        python: &Path,
    ) -> Result<String> {
        let mut h = Sha256::new();
        h.update(b"eval.py\0");
        h.update(self.file(eval_py)?);
        for dir in code_dirs.iter().filter(|d| d.is_dir()) {
            h.update(b"code\0");
            for e in walkdir::WalkDir::new(dir)
                .follow_links(true)
                .sort_by_file_name()
                .into_iter()
                .filter_entry(|e| e.file_name() != "__pycache__")
            {
                let e = e.with_context(|| format!("could not read {}", dir.display()))?;
                let is_py = e.path().extension().is_some_and(|x| x == "py");
                if e.file_type().is_file() && is_py {
                    let rel = e.path().strip_prefix(dir).unwrap_or(e.path());
                    h.update(rel.as_os_str().as_encoded_bytes());
                    h.update(b"\0");
                    h.update(self.file(e.path())?);
                }
            }
        }
        let marker = script_dir.join(crate::task::PREPARED_MARKER);
        if let Ok(meta) = std::fs::metadata(&marker) {
            h.update(b"prepared\0");
            h.update(self.file(&marker)?);
            h.update(meta.mtime().to_le_bytes());
            h.update(meta.mtime_nsec().to_le_bytes());
        }
        h.update(b"python\0");
        h.update(python_identity(python).as_bytes());
        Ok(hex::encode(h.finalize()))
    }
}

/// The interpreter as far as a score can depend on it: the path it
/// resolves to (through PATH and links), its size and time, and its venv's
/// pyvenv.cfg. Cheap: nothing is run.
pub fn python_identity(python: &Path) -> String {
    let found = if python.components().count() > 1 {
        Some(python.to_path_buf())
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(python))
                .find(|p| p.is_file())
        })
    };
    let Some(found) = found else {
        return format!("unresolved {}", python.display());
    };
    let real = std::fs::canonicalize(&found).unwrap_or(found.clone());
    let stamp = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| format!("{} {} {}", m.len(), m.mtime(), m.mtime_nsec()))
            .unwrap_or_else(|_| "-".into())
    };
    let cfg = found
        .parent()
        .and_then(Path::parent)
        .map(|v| v.join("pyvenv.cfg"))
        .and_then(|c| std::fs::read_to_string(c).ok())
        .unwrap_or_default();
    format!(
        "{} -> {} [{}]\n{cfg}",
        found.display(),
        real.display(),
        stamp(&real)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(h: &mut Hasher, snap: &Path) -> String {
        h.snapshot_key(
            "toy",
            "e1",
            Some(&["submission.csv".into(), "model".into()]),
            snap,
        )
        .unwrap()
    }

    #[test]
    fn key_follows_submission_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        for s in [&a, &b] {
            std::fs::create_dir_all(s.join("model")).unwrap();
            std::fs::write(s.join("submission.csv"), "x\n1\n").unwrap();
            std::fs::write(s.join("model/w.bin"), "w").unwrap();
        }
        std::fs::write(b.join("train.py"), "not read by eval").unwrap();
        let mut h = Hasher::default();
        assert_eq!(key(&mut h, &a), key(&mut h, &b));

        std::fs::write(b.join("model/w.bin"), "changed").unwrap();
        assert_ne!(
            key(&mut h, &a),
            key(&mut h, &b),
            "a folder entry hashes its tree"
        );

        std::fs::write(b.join("model/w.bin"), "w").unwrap();
        std::fs::rename(b.join("model/w.bin"), b.join("model/v.bin")).unwrap();
        assert_ne!(key(&mut h, &a), key(&mut h, &b), "names in the tree count");

        std::fs::remove_dir_all(b.join("model")).unwrap();
        std::fs::remove_file(b.join("submission.csv")).unwrap();
        let missing = key(&mut h, &b);
        assert_ne!(key(&mut h, &a), missing);
        let other_eval = h
            .snapshot_key(
                "toy",
                "e2",
                Some(&["submission.csv".into(), "model".into()]),
                &b,
            )
            .unwrap();
        assert_ne!(missing, other_eval, "eval.py's hash is part of the key");
    }

    #[test]
    fn without_declared_submissions_every_file_of_the_snapshot_counts() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        for (s, v) in [(&a, "0.1"), (&b, "0.9")] {
            std::fs::create_dir_all(s.join("checkpoints")).unwrap();
            std::fs::write(s.join("submission.csv"), "same\n").unwrap();
            std::fs::write(s.join("checkpoints/best.txt"), v).unwrap();
        }
        let mut h = Hasher::default();
        let whole = |h: &mut Hasher, s: &Path| h.snapshot_key("t", "c", None, s).unwrap();
        assert_ne!(whole(&mut h, &a), whole(&mut h, &b));
        std::fs::write(b.join("checkpoints/best.txt"), "0.1").unwrap();
        assert_eq!(whole(&mut h, &a), whole(&mut h, &b));
        let declared = |h: &mut Hasher, s: &Path| {
            h.snapshot_key("t", "c", Some(&["submission.csv".into()]), s)
                .unwrap()
        };
        assert_ne!(whole(&mut h, &a), declared(&mut h, &a));
    }

    #[test]
    fn code_key_follows_eval_helpers_the_prepared_marker_and_python() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("script");
        let common = dir.path().join("_common");
        std::fs::create_dir_all(&script).unwrap();
        std::fs::create_dir_all(common.join("__pycache__")).unwrap();
        std::fs::write(script.join("eval.py"), "x = 1\n").unwrap();
        std::fs::write(common.join("mlab_eval.py"), "y = 1\n").unwrap();
        std::fs::write(script.join("answer.csv"), "a\n").unwrap();
        let dirs = [script.clone(), common.clone()];
        let py = Path::new("/bin/sh");
        let key = |h: &mut Hasher| {
            h.code_key(&script.join("eval.py"), &script, &dirs, py)
                .unwrap()
        };
        let mut h = Hasher::default();
        let k0 = key(&mut h);
        std::fs::write(common.join("__pycache__/m.py"), "cached").unwrap();
        std::fs::write(script.join("calls.log"), "written by eval").unwrap();
        assert_eq!(
            key(&mut Hasher::default()),
            k0,
            "caches and logs do not count"
        );
        std::fs::write(common.join("mlab_eval.py"), "y = 2\n").unwrap();
        let k1 = key(&mut Hasher::default());
        assert_ne!(k1, k0, "a shared helper counts");
        std::fs::write(script.join(crate::task::PREPARED_MARKER), "success\n").unwrap();
        assert_ne!(key(&mut Hasher::default()), k1, "re-preparing counts");
        let other = Hasher::default()
            .code_key(
                &script.join("eval.py"),
                &script,
                &dirs,
                Path::new("/bin/ls"),
            )
            .unwrap();
        assert_ne!(other, key(&mut Hasher::default()), "the interpreter counts");
    }

    #[test]
    fn cache_survives_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(CACHE_FILE);
        let mut c = Cache::open(&p).unwrap();
        c.insert("k1", "toy", 0.5);
        c.insert("k2", "toy", 0.25);
        drop(c);
        // A crash mid-write leaves half a line.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"key\":\"k3\",\"sco").unwrap();
        drop(f);

        let mut c = Cache::open(&p).unwrap();
        assert_eq!(c.get("k1"), Some(0.5));
        assert_eq!(c.get("k2"), Some(0.25));
        assert_eq!(c.get("k3"), None);
        assert_eq!(c.skipped_lines, 1);
        c.insert("k4", "toy", 1.0);
        drop(c);

        let c = Cache::open(&p).unwrap();
        assert_eq!(
            c.get("k4"),
            Some(1.0),
            "the next line was not glued to the torn one"
        );
        assert_eq!(c.len(), 3);
    }
}
