//! Path confinement: turn a path an agent gave into a path inside the
//! workspace, or refuse it.
//!
//! The original compared strings (`abspath(join(work, f)).startswith(work)`),
//! which lets a sibling folder sharing the workspace's name as prefix and any
//! symlink pointing out through. Here every component is walked from the
//! workspace root the way the kernel would, following symlinks as they are
//! met: a `..` that climbs above the root, an absolute path, a symlink whose
//! target lies outside, or a symlink loop is refused. The result names the
//! real file, so read-only checks see through links too.
//!
//! Each component is looked up relative to a descriptor of the workspace
//! root, without following links (`fsat::Tree::open_at` with `O_PATH`), so
//! a link is only ever read, never passed through, while resolving. The
//! canonical path that comes out is then opened the same way by `fsat`,
//! which refuses any link it meets: if agent code swaps a folder for a link
//! between the two, the open fails instead of following it.
//!
//! This guards the actions that mlab itself performs (reading, writing,
//! copying files). It does not confine code the agent runs; that is the
//! sandbox's job.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};

use super::fsat::{self, Tree};

/// Symlinks followed in one path before it counts as a loop (Linux's limit).
const MAX_LINKS: usize = 40;

/// Longest path an agent may give, in bytes (Linux's `PATH_MAX`).
pub const MAX_PATH: usize = 4096;

/// A path inside the workspace, with every symlink resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Relative to the workspace root, `/`-separated, no `.`/`..`; empty for
    /// the root itself.
    pub rel: String,
    /// The same path on this machine.
    pub host: PathBuf,
}

/// Why a path was refused. The text is meant for the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Resolves `arg` against `root` (which must be canonical: no symlinks).
pub fn resolve(root: &Path, arg: &str) -> Result<Resolved, Refusal> {
    if arg.contains('\0') {
        return Err(Refusal(format!(
            "cannot use the path {arg:?}: it contains a NUL character"
        )));
    }
    if arg.starts_with('/') {
        return Err(Refusal(format!(
            "cannot access {arg}: absolute paths are not allowed; give a path relative to the workspace, e.g. \"train.py\""
        )));
    }
    if arg.len() > MAX_PATH {
        return Err(Refusal(format!(
            "cannot use a path of {} bytes: paths are limited to {MAX_PATH} bytes",
            arg.len()
        )));
    }
    // A root that cannot be opened holds nothing: every path is new.
    let tree = Tree::open(root).ok();
    let outside = || {
        Refusal(format!(
            "cannot access {arg} because it is not in the work directory; give a path inside the workspace"
        ))
    };
    // Components still to walk, in reverse so that `pop` yields the next one.
    let mut todo: Vec<String> = split_rev(arg);
    let mut cur: Vec<String> = Vec::new();
    let mut links = 0usize;
    // Once a component does not exist, nothing below it can be a symlink.
    let mut missing = false;
    while let Some(part) = todo.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                if cur.pop().is_none() {
                    return Err(outside());
                }
                continue;
            }
            _ => {}
        }
        cur.push(part);
        if missing {
            continue;
        }
        // `cur` holds no link but perhaps its last component: opened
        // without following anything, the link itself is what is found.
        let Some(tree) = &tree else {
            missing = true;
            continue;
        };
        let found = tree
            .open_at(&cur.join("/"), OFlags::PATH, Mode::empty())
            .and_then(|fd| Ok((rustix::fs::fstat(&fd)?, fd)));
        let (st, fd) = match found {
            Ok(x) => x,
            Err(e) if fsat::is_link_error(&e) => {
                return Err(Refusal(format!(
                    "cannot access {arg}: the path changed while mlab was resolving it (a symbolic link appeared in it); try again"
                )));
            }
            Err(_) => {
                missing = true;
                continue;
            }
        };
        if FileType::from_raw_mode(st.st_mode as _) != FileType::Symlink {
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(Refusal(format!(
                "cannot access {arg}: it goes through too many symbolic links (a link loop)"
            )));
        }
        let target = rustix::fs::readlinkat(&fd, "", Vec::new())
            .map_err(|e| Refusal(format!("cannot access {arg}: reading a link failed: {e}")))?;
        let target = PathBuf::from(std::ffi::OsStr::from_bytes(target.as_bytes()));
        cur.pop();
        let target_text = target.to_string_lossy().into_owned();
        if target.is_absolute() {
            // Only a link into the workspace itself is followed; `..` in
            // the rest is walked like any other component.
            let Ok(inside) = target.strip_prefix(root) else {
                return Err(Refusal(format!(
                    "cannot access {arg}: it leads through a symbolic link to {target_text}, which is outside the workspace"
                )));
            };
            cur.clear();
            todo.extend(split_rev(&inside.to_string_lossy()));
        } else {
            // A relative target is walked from the link's folder; a `..`
            // that climbs out is caught like any other.
            todo.extend(split_rev(&target_text));
        }
    }
    let rel = cur.join("/");
    Ok(Resolved {
        host: join(root, &cur),
        rel,
    })
}

fn split_rev(p: &str) -> Vec<String> {
    p.split('/').rev().map(String::from).collect()
}

fn join(root: &Path, parts: &[String]) -> PathBuf {
    let mut p = root.to_path_buf();
    for part in parts {
        p.push(part);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let ws = base.join("ws");
        std::fs::create_dir_all(ws.join("sub")).unwrap();
        std::fs::write(ws.join("a.txt"), "a").unwrap();
        std::fs::create_dir_all(base.join("ws_sibling")).unwrap();
        std::fs::write(base.join("ws_sibling/secret"), "s").unwrap();
        (dir, ws)
    }

    #[test]
    fn plain_paths_normalise() {
        let (_d, ws) = setup();
        for (arg, rel) in [
            ("a.txt", "a.txt"),
            ("./a.txt", "a.txt"),
            ("sub/../a.txt", "a.txt"),
            ("sub//x/./y", "sub/x/y"),
            ("", ""),
            (".", ""),
            ("new/deeper/../file", "new/file"),
        ] {
            let r = resolve(&ws, arg).unwrap();
            assert_eq!(r.rel, rel, "{arg}");
            assert_eq!(
                r.host,
                if rel.is_empty() {
                    ws.clone()
                } else {
                    ws.join(rel)
                }
            );
        }
    }

    #[test]
    fn escapes_are_refused() {
        let (_d, ws) = setup();
        let base = ws.parent().unwrap().to_path_buf();
        symlink(&base, ws.join("up")).unwrap();
        symlink("../ws_sibling", ws.join("rel_up")).unwrap();
        symlink("loop_b", ws.join("loop_a")).unwrap();
        symlink("loop_a", ws.join("loop_b")).unwrap();
        symlink("/etc/passwd", ws.join("pw")).unwrap();
        symlink(format!("{}/../ws_sibling", ws.display()), ws.join("sneaky")).unwrap();
        for arg in [
            "..",
            "../ws_sibling/secret",
            "sub/../../ws_sibling/secret",
            "/etc/passwd",
            "up/ws_sibling/secret",
            "rel_up/secret",
            "loop_a",
            "loop_a/x",
            "pw",
            "sneaky/secret",
            "a\0b",
        ] {
            assert!(resolve(&ws, arg).is_err(), "{arg:?} was not refused");
        }
        let loop_err = resolve(&ws, "loop_a").unwrap_err().0;
        assert!(loop_err.contains("loop"), "{loop_err}");
    }

    #[test]
    fn links_inside_resolve_to_their_target() {
        let (_d, ws) = setup();
        symlink("a.txt", ws.join("to_a")).unwrap();
        symlink("../a.txt", ws.join("sub/up_a")).unwrap();
        symlink(ws.join("sub"), ws.join("abs_sub")).unwrap();
        assert_eq!(resolve(&ws, "to_a").unwrap().rel, "a.txt");
        assert_eq!(resolve(&ws, "sub/up_a").unwrap().rel, "a.txt");
        assert_eq!(resolve(&ws, "abs_sub/f").unwrap().rel, "sub/f");
        // `..` after a linked folder climbs from the link's target.
        assert_eq!(resolve(&ws, "abs_sub/../a.txt").unwrap().rel, "a.txt");
    }
}
