//! What changed in the workspace between two step snapshots
//! (`env_log/traces/step_N_files`). Snapshot files of mlab runs are hard
//! links into one content store, so an unchanged file is the same inode in
//! both and is never read; the original's snapshots are copies and are
//! compared by content. Text files get a unified diff (`similar`); binary
//! and large files are summarised by their sizes.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use similar::TextDiff;

/// Files larger than this are not diffed line by line.
const MAX_DIFF_BYTES: u64 = 256 * 1024;
/// Lines of one file's diff shown at most.
const MAX_DIFF_LINES: usize = 400;

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Added {
        size: u64,
        diff: Option<String>,
    },
    Removed {
        size: u64,
    },
    /// `diff` is None for binary or large files.
    Modified {
        before: u64,
        after: u64,
        diff: Option<String>,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    path: PathBuf,
    size: u64,
    id: (u64, u64),
}

fn list(dir: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .flatten()
    {
        if !e.file_type().is_file() {
            continue;
        }
        let Ok(m) = e.metadata() else { continue };
        let rel = e
            .path()
            .strip_prefix(dir)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.insert(
            rel,
            Entry {
                path: e.path().to_path_buf(),
                size: m.len(),
                id: (m.dev(), m.ino()),
            },
        );
    }
    out
}

/// Text of a file small enough to diff and not binary.
fn text(e: &Entry) -> Option<String> {
    if e.size > MAX_DIFF_BYTES {
        return None;
    }
    let bytes = std::fs::read(&e.path).ok()?;
    if bytes.contains(&0) {
        return None;
    }
    String::from_utf8(bytes).ok()
}

fn unified(path: &str, a: &str, b: &str) -> String {
    let d = TextDiff::from_lines(a, b);
    let text = d
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() > MAX_DIFF_LINES {
        format!(
            "{}\n… {} more lines of diff not shown\n",
            lines[..MAX_DIFF_LINES].join("\n"),
            lines.len() - MAX_DIFF_LINES
        )
    } else {
        text
    }
}

/// Every file added, removed or modified from `before` (None: nothing
/// before, so every file is listed as added without its content) to
/// `after`, by path.
pub fn changes(before: Option<&Path>, after: &Path) -> Vec<(String, Change)> {
    let new = list(after);
    let Some(before) = before else {
        return new
            .into_iter()
            .map(|(p, e)| {
                (
                    p,
                    Change::Added {
                        size: e.size,
                        diff: None,
                    },
                )
            })
            .collect();
    };
    let old = list(before);
    let mut out = Vec::new();
    for (p, e) in &new {
        match old.get(p) {
            None => {
                let diff = text(e).map(|t| unified(p, "", &t));
                out.push((p.clone(), Change::Added { size: e.size, diff }));
            }
            Some(o) if o.id == e.id => {}
            Some(o) => {
                if o.size == e.size && same_content(&o.path, &e.path) {
                    continue;
                }
                let diff = match (text(o), text(e)) {
                    (Some(a), Some(b)) => Some(unified(p, &a, &b)),
                    _ => None,
                };
                out.push((
                    p.clone(),
                    Change::Modified {
                        before: o.size,
                        after: e.size,
                        diff,
                    },
                ));
            }
        }
    }
    for (p, o) in &old {
        if !new.contains_key(p) {
            out.push((p.clone(), Change::Removed { size: o.size }));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn same_content(a: &Path, b: &Path) -> bool {
    use std::io::Read;
    let (Ok(mut fa), Ok(mut fb)) = (std::fs::File::open(a), std::fs::File::open(b)) else {
        return false;
    };
    let mut ba = vec![0u8; 64 * 1024];
    let mut bb = vec![0u8; 64 * 1024];
    loop {
        let Ok(na) = read_full(&mut fa, &mut ba) else {
            return false;
        };
        let Ok(nb) = read_full(&mut fb, &mut bb) else {
            return false;
        };
        if na != nb || ba[..na] != bb[..nb] {
            return false;
        }
        if na == 0 {
            return true;
        }
    }
    fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let k = f.read(&mut buf[n..])?;
            if k == 0 {
                break;
            }
            n += k;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_binary_added_and_removed_files_are_told_apart() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        for p in [&a, &b] {
            std::fs::create_dir_all(p.join("sub")).unwrap();
        }
        std::fs::write(a.join("train.py"), "x = 1\nprint(x)\n").unwrap();
        std::fs::write(b.join("train.py"), "x = 2\nprint(x)\n").unwrap();
        std::fs::write(a.join("same.txt"), "same\n").unwrap();
        std::fs::write(b.join("same.txt"), "same\n").unwrap();
        std::fs::write(a.join("gone.txt"), "bye\n").unwrap();
        std::fs::write(b.join("sub/new.csv"), "id\n1\n").unwrap();
        std::fs::write(a.join("model.bin"), [0u8, 1, 2]).unwrap();
        std::fs::write(b.join("model.bin"), [0u8, 1, 3, 4]).unwrap();
        let c = changes(Some(&a), &b);
        let names: Vec<&str> = c.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["gone.txt", "model.bin", "sub/new.csv", "train.py"]);
        assert_eq!(c[0].1, Change::Removed { size: 4 });
        assert_eq!(
            c[1].1,
            Change::Modified {
                before: 3,
                after: 4,
                diff: None
            }
        );
        let Change::Modified { diff: Some(d), .. } = &c[3].1 else {
            panic!("{:?}", c[3]);
        };
        assert!(d.contains("-x = 1\n+x = 2\n"), "{d}");
        assert!(changes(None, &b)
            .iter()
            .all(|(_, c)| matches!(c, Change::Added { diff: None, .. })));
    }
}
