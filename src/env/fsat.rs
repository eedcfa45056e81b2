//! Race-safe file access beneath the workspace root: how mlab itself reads
//! and writes files on the agent's behalf.
//!
//! `confine::resolve` turns a path an agent gave into a canonical one:
//! every symbolic link resolved, nothing outside the workspace. But agent
//! code can change the workspace at any moment, so a path that was checked
//! and is then opened by name may have become a link to anywhere in
//! between. Here a canonical path is opened relative to a descriptor of
//! the workspace root and no symbolic link is followed on the way:
//!
//! * with `openat2` and `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
//!   RESOLVE_NO_SYMLINKS` where the kernel has it (Linux 5.6 and later):
//!   the kernel refuses anything that leaves the root or passes a link;
//! * else one component at a time, each folder opened with
//!   `O_PATH | O_DIRECTORY | O_NOFOLLOW` from the one before (never `..`),
//!   and the last component with `O_NOFOLLOW`.
//!
//! Since the path is canonical, a link met on the way means the workspace
//! changed since it was resolved: the open fails (`ELOOP`) instead of
//! following it. What is opened is therefore the very file that was
//! checked, and everything after the open goes through the descriptor.
//! Writes make a new file in the parent folder's descriptor and rename it
//! over the old name, so a hard link never carries a write to another file.
//! Reads take regular files only, checked with `fstat` on a descriptor that
//! could not block (a FIFO never stalls mlab), and never more than a cap.
//!
//! `MLAB_FSAT_WALK=1` forces the component walk, so tests (and kernels
//! whose seccomp filter breaks `openat2`) can use it everywhere.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

/// Set to `1` to open every path by the component walk, never `openat2`.
pub const FORCE_WALK_ENV: &str = "MLAB_FSAT_WALK";

/// How a canonical path is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `openat2` with `RESOLVE_BENEATH`; falls back to `Walk` when the
    /// kernel lacks it.
    Openat2,
    /// One component at a time with `O_NOFOLLOW`.
    Walk,
}

/// Set once `openat2` answered ENOSYS: later opens go straight to the walk.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

fn default_backend() -> Backend {
    static FORCED: OnceLock<bool> = OnceLock::new();
    let forced = *FORCED.get_or_init(|| std::env::var_os(FORCE_WALK_ENV).is_some_and(|v| v == "1"));
    if forced || NO_OPENAT2.load(Ordering::Relaxed) {
        Backend::Walk
    } else {
        Backend::Openat2
    }
}

/// Why a file could not be used.
#[derive(Debug)]
pub enum FileError {
    Io(io::Error),
    /// Not a regular file; says what it is ("a folder", "a FIFO ...").
    NotRegular(&'static str),
    /// Larger than the cap; its size in bytes (at least).
    TooBig(u64),
    /// A regular file with other hard links (appending would write
    /// through them).
    HardLinked,
}

impl From<io::Error> for FileError {
    fn from(e: io::Error) -> Self {
        FileError::Io(e)
    }
}

impl From<Errno> for FileError {
    fn from(e: Errno) -> Self {
        FileError::Io(e.into())
    }
}

/// What a file of this type is, for messages.
pub fn kind_name(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a folder",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO (named pipe)",
        FileType::Socket => "a socket",
        FileType::CharacterDevice | FileType::BlockDevice => "a device file",
        _ => "not a regular file",
    }
}

fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode as _)
}

/// One entry of a folder listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name's bytes, which need not be UTF-8.
    pub name: Vec<u8>,
    /// Its type, not following a link; `None` when it vanished meanwhile.
    pub kind: Option<FileType>,
    /// Permission bits (0 when unknown).
    pub mode: u32,
}

/// The workspace root, open, and the file operations beneath it. Every
/// `rel` is canonical: `/`-separated, no `.` or `..`, empty for the root.
#[derive(Debug)]
pub struct Tree {
    root: OwnedFd,
    backend: Backend,
}

impl Tree {
    /// Opens the root (a canonical path that mlab made).
    pub fn open(root: &Path) -> io::Result<Tree> {
        Tree::open_with(root, default_backend())
    }

    pub fn open_with(root: &Path, backend: Backend) -> io::Result<Tree> {
        let root = rustix::fs::open(
            root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Tree { root, backend })
    }

    /// The backend in use (after a fallback, the walk).
    pub fn backend(&self) -> Backend {
        if self.backend == Backend::Openat2 && NO_OPENAT2.load(Ordering::Relaxed) {
            Backend::Walk
        } else {
            self.backend
        }
    }

    /// Opens `rel` with `flags` (`O_NOFOLLOW` and `O_CLOEXEC` are added),
    /// following no symbolic link and never leaving the root. With
    /// `O_PATH`, a link as last component is opened itself.
    pub fn open_at(&self, rel: &str, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
        let parts = components(rel)?;
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mode = if flags.contains(OFlags::CREATE) {
            mode
        } else {
            Mode::empty()
        };
        if self.backend() == Backend::Openat2 {
            let path = if parts.is_empty() {
                ".".to_string()
            } else {
                parts.join("/")
            };
            let resolve =
                ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_SYMLINKS;
            match rustix::fs::openat2(&self.root, path.as_str(), flags, mode, resolve) {
                Err(Errno::NOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
                // EAGAIN: a rename raced the lookup; E2BIG/EPERM: a kernel
                // or filter that does not take the call as given. The walk
                // is as safe, only slower.
                Err(Errno::AGAIN | Errno::TOOBIG | Errno::PERM) => {}
                Err(Errno::NOTDIR) => return Err(self.last_link_as_loop(&parts).into()),
                other => return Ok(other?),
            }
        }
        let Some((last, dirs)) = parts.split_last() else {
            return Ok(rustix::fs::openat(&self.root, ".", flags, mode)?);
        };
        let dir = self.walk(dirs, false)?;
        Ok(
            rustix::fs::openat(&dir, *last, flags, mode)
                .map_err(|e| link_as_loop(&dir, last, e))?,
        )
    }

    /// The error for an open that failed with ENOTDIR: ELOOP when the last
    /// component is a link (opened with `O_DIRECTORY`), so that both
    /// backends report a link the same way.
    fn last_link_as_loop(&self, parts: &[&str]) -> Errno {
        if let Some((last, dirs)) = parts.split_last() {
            if let Ok(dir) = self.walk(dirs, false) {
                return link_as_loop(&dir, last, Errno::NOTDIR);
            }
        }
        Errno::NOTDIR
    }

    /// The folder `parts` as an `O_PATH` descriptor, opened one component
    /// at a time without following links; missing folders are made when
    /// `create` is set.
    fn walk(&self, parts: &[&str], create: bool) -> io::Result<OwnedFd> {
        let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut cur = rustix::fs::openat(&self.root, ".", dir_flags, Mode::empty())?;
        for part in parts {
            let open = |at: &OwnedFd| rustix::fs::openat(at, *part, dir_flags, Mode::empty());
            let next = match open(&cur) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&cur, *part, Mode::from_raw_mode(0o777)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    open(&cur).map_err(|e| link_as_loop(&cur, part, e))?
                }
                Err(e) => return Err(link_as_loop(&cur, part, e).into()),
            };
            cur = next;
        }
        Ok(cur)
    }

    /// The parent folder of `rel` (made when `create` is set) and the last
    /// component. The root itself has no parent.
    pub fn parent<'r>(&self, rel: &'r str, create: bool) -> io::Result<(OwnedFd, &'r str)> {
        let parts = components(rel)?;
        let Some((last, dirs)) = parts.split_last() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the workspace root has no parent folder",
            ));
        };
        let dir = if create || dirs.is_empty() {
            self.walk(dirs, create)?
        } else {
            self.open_at(
                &dirs.join("/"),
                OFlags::PATH | OFlags::DIRECTORY,
                Mode::empty(),
            )?
        };
        Ok((dir, last))
    }

    /// `lstat` of `rel`: a link is described, not followed.
    pub fn lstat(&self, rel: &str) -> io::Result<Stat> {
        let fd = self.open_at(rel, OFlags::PATH, Mode::empty())?;
        Ok(rustix::fs::fstat(&fd)?)
    }

    /// The type of `rel`, or `None` when nothing is there.
    pub fn kind(&self, rel: &str) -> io::Result<Option<FileType>> {
        match self.lstat(rel) {
            Ok(st) => Ok(Some(file_type(&st))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens the regular file `rel` for reading. The type is checked on an
    /// `O_PATH` descriptor first, so a FIFO or device is never opened, and
    /// again on the descriptor that is read, opened `O_NONBLOCK`.
    pub fn open_read(&self, rel: &str) -> Result<File, FileError> {
        let probe = self.open_at(rel, OFlags::PATH, Mode::empty())?;
        let before = rustix::fs::fstat(&probe)?;
        let t = file_type(&before);
        if t != FileType::RegularFile {
            return Err(FileError::NotRegular(kind_name(t)));
        }
        let fd = self.open_at(rel, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty())?;
        let after = rustix::fs::fstat(&fd)?;
        if file_type(&after) != FileType::RegularFile
            || (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino)
        {
            return Err(FileError::Io(changed()));
        }
        Ok(File::from(fd))
    }

    /// The entries of folder `rel` (without `.` and `..`), unsorted.
    pub fn list(&self, rel: &str) -> io::Result<Vec<Entry>> {
        let fd = self.open_at(
            rel,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NONBLOCK,
            Mode::empty(),
        )?;
        let mut dir = Dir::read_from(&fd)?;
        let mut out = Vec::new();
        while let Some(entry) = dir.read() {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let st = rustix::fs::statat(&fd, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW).ok();
            out.push(Entry {
                name: name.to_vec(),
                kind: st.as_ref().map(file_type),
                mode: st.map_or(0, |s| s.st_mode & 0o7777),
            });
        }
        Ok(out)
    }

    /// Replaces `rel` with what `src` yields: a new file in the parent
    /// folder (made if missing), renamed over the old name, which is never
    /// written through. The new file gets `mode`, or else the old file's
    /// permissions. Returns the bytes written.
    pub fn replace(&self, rel: &str, src: &mut dyn Read, mode: Option<u32>) -> io::Result<u64> {
        let (dir, name) = self.parent(rel, true)?;
        let old = match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if file_type(&st) == FileType::Directory => {
                return Err(io::Error::new(
                    io::ErrorKind::IsADirectory,
                    "it is a folder",
                ))
            }
            Ok(st) if file_type(&st) == FileType::RegularFile => Some(st.st_mode & 0o7777),
            _ => None,
        };
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = format!(".mlab-write-{}-{n}", std::process::id());
        let fd = rustix::fs::openat(
            &dir,
            tmp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
        )?;
        let result = (|| {
            let mut f = File::from(fd);
            let n = io::copy(src, &mut f)?;
            f.flush()?;
            if let Some(m) = mode.or(old) {
                rustix::fs::fchmod(&f, Mode::from_raw_mode(m as _))?;
            }
            drop(f);
            rustix::fs::renameat(&dir, tmp.as_str(), &dir, name)?;
            Ok(n)
        })();
        if result.is_err() {
            let _ = rustix::fs::unlinkat(&dir, tmp.as_str(), AtFlags::empty());
        }
        result
    }

    /// Makes the new file `rel` (its folder too) holding `bytes`; fails
    /// with `AlreadyExists` when the name is taken, by anything.
    pub fn create_new(&self, rel: &str, bytes: &[u8]) -> io::Result<()> {
        let (dir, name) = self.parent(rel, true)?;
        let fd = rustix::fs::openat(
            &dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
        )?;
        let mut f = File::from(fd);
        let result = f.write_all(bytes);
        if result.is_err() {
            let _ = rustix::fs::unlinkat(&dir, name, AtFlags::empty());
        }
        result
    }

    /// Adds `bytes` at the end of the regular file `rel`, making it (and
    /// its folder) when missing. A file with other hard links is refused.
    pub fn append(&self, rel: &str, bytes: &[u8]) -> Result<(), FileError> {
        let (dir, name) = self.parent(rel, true)?;
        match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if file_type(&st) != FileType::RegularFile => {
                return Err(FileError::NotRegular(kind_name(file_type(&st))))
            }
            _ => {}
        }
        let fd = rustix::fs::openat(
            &dir,
            name,
            OFlags::WRONLY
                | OFlags::APPEND
                | OFlags::CREATE
                | OFlags::NOFOLLOW
                | OFlags::NONBLOCK
                | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
        )?;
        let st = rustix::fs::fstat(&fd)?;
        if file_type(&st) != FileType::RegularFile {
            return Err(FileError::NotRegular(kind_name(file_type(&st))));
        }
        if st.st_nlink > 1 {
            return Err(FileError::HardLinked);
        }
        File::from(fd).write_all(bytes)?;
        Ok(())
    }

    /// Removes the file (not folder) `rel`; a link is removed itself.
    pub fn remove_file(&self, rel: &str) -> io::Result<()> {
        let (dir, name) = self.parent(rel, false)?;
        Ok(rustix::fs::unlinkat(&dir, name, AtFlags::empty())?)
    }
}

/// Opens a file outside the workspace that mlab itself chose (the source
/// of a bound read-only file) for reading: regular files only, and an open
/// that cannot block.
pub fn open_host_read(path: &Path) -> Result<File, FileError> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd)?;
    if file_type(&st) != FileType::RegularFile {
        return Err(FileError::NotRegular(kind_name(file_type(&st))));
    }
    Ok(File::from(fd))
}

/// Reads all of `f`, refusing it (with its size) when it holds more than
/// `cap` bytes: at most `cap + 1` bytes are ever read, so a file that grows
/// meanwhile, or a huge sparse one, cannot take mlab's memory.
pub fn read_capped(f: &mut File, cap: u64) -> Result<Vec<u8>, FileError> {
    let size = rustix::fs::fstat(f.as_fd())?.st_size.max(0) as u64;
    if size > cap {
        return Err(FileError::TooBig(size));
    }
    let mut buf = Vec::with_capacity(size as usize);
    f.take(cap + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > cap {
        return Err(FileError::TooBig(buf.len() as u64));
    }
    Ok(buf)
}

/// The error for a path that changed while mlab used it.
pub fn changed() -> io::Error {
    Errno::LOOP.into()
}

/// True for the error `open_at` gives when it meets a symbolic link (or a
/// path that changed under it).
pub fn is_link_error(e: &io::Error) -> bool {
    e.raw_os_error() == Some(Errno::LOOP.raw_os_error())
        || e.raw_os_error() == Some(Errno::XDEV.raw_os_error())
}

/// A walk that meets a link where a folder should be reports ELOOP, as
/// `openat2` with `RESOLVE_NO_SYMLINKS` does, not ENOTDIR.
fn link_as_loop(at: &OwnedFd, part: &str, e: Errno) -> Errno {
    if e == Errno::NOTDIR && is_link(at.as_fd(), part) {
        Errno::LOOP
    } else {
        e
    }
}

fn is_link(at: BorrowedFd<'_>, name: &str) -> bool {
    rustix::fs::statat(at, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| file_type(&st) == FileType::Symlink)
}

/// The components of a canonical path; `.`, `..` and NUL are refused, so
/// that nothing here ever asks the kernel to climb.
fn components(rel: &str) -> io::Result<Vec<&str>> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{rel:?} is not a canonical workspace path"),
        )
    };
    if rel.contains('\0') || rel.starts_with('/') {
        return Err(bad());
    }
    let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(bad());
    }
    Ok(parts)
}

/// A file name as a listing shows it: as is when it is printable UTF-8;
/// else in double quotes, with control characters, line separators, quotes,
/// backslashes and bytes that are not UTF-8 escaped (`\n`, `\u{1b}`,
/// `\xff`), so that one name is always one line.
pub fn shown_name(name: &OsStr) -> String {
    let bytes = name.as_bytes();
    let odd_char = |c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}';
    let plain = match std::str::from_utf8(bytes) {
        Ok(s) => !s.starts_with('"') && !s.chars().any(odd_char),
        Err(_) => false,
    };
    if plain {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let mut out = String::from("\"");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if odd_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let ws = base.join("ws");
        std::fs::create_dir_all(ws.join("sub")).unwrap();
        std::fs::write(ws.join("a.txt"), "a").unwrap();
        std::fs::write(ws.join("sub/b.txt"), "b").unwrap();
        std::fs::write(base.join("secret"), "s").unwrap();
        symlink(base.join("secret"), ws.join("out")).unwrap();
        symlink(&base, ws.join("up")).unwrap();
        symlink("a.txt", ws.join("to_a")).unwrap();
        symlink("sub", ws.join("to_sub")).unwrap();
        (dir, ws)
    }

    fn read(t: &Tree, rel: &str) -> Result<String, FileError> {
        let mut f = t.open_read(rel)?;
        Ok(String::from_utf8(read_capped(&mut f, 1 << 20)?).unwrap())
    }

    fn loops(r: Result<String, FileError>) -> bool {
        matches!(r, Err(FileError::Io(e)) if is_link_error(&e))
    }

    /// Both backends, so the walk is tested on kernels that have openat2.
    fn each_backend(f: impl Fn(&Tree)) {
        let (_d, ws) = setup();
        for b in [Backend::Openat2, Backend::Walk] {
            let t = Tree::open_with(&ws, b).unwrap();
            f(&t);
        }
    }

    #[test]
    fn openat2_is_used_where_the_kernel_has_it() {
        let (_d, ws) = setup();
        let probe = rustix::fs::openat2(
            rustix::fs::CWD,
            ".",
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH,
        );
        let t = Tree::open_with(&ws, Backend::Openat2).unwrap();
        assert_eq!(read(&t, "sub/b.txt").unwrap(), "b");
        if probe.is_ok() {
            assert_eq!(t.backend(), Backend::Openat2);
        } else {
            eprintln!("this kernel has no openat2 ({probe:?}): only the walk was tested");
        }
    }

    #[test]
    fn the_walk_backend_is_what_was_asked_for() {
        let (_d, ws) = setup();
        assert_eq!(
            Tree::open_with(&ws, Backend::Walk).unwrap().backend(),
            Backend::Walk
        );
    }

    #[test]
    fn no_backend_follows_a_link_anywhere_in_a_path() {
        each_backend(|t| {
            assert_eq!(read(t, "a.txt").unwrap(), "a");
            assert_eq!(read(t, "sub/b.txt").unwrap(), "b");
            // Links, inside or out, are never followed: a canonical path
            // has none, so one met means the workspace changed.
            assert!(matches!(
                read(t, "out"),
                Err(FileError::NotRegular("a symbolic link"))
            ));
            assert!(matches!(
                read(t, "to_a"),
                Err(FileError::NotRegular("a symbolic link"))
            ));
            assert!(loops(read(t, "to_sub/b.txt")));
            assert!(loops(read(t, "up/secret")));
            // `..` and absolute paths are never handed to the kernel.
            assert!(read(t, "../secret").is_err());
            assert!(read(t, "sub/../a.txt").is_err());
            assert!(read(t, "/etc/passwd").is_err());
        });
    }

    #[test]
    fn writes_never_pass_a_link_and_replace_instead_of_writing_through() {
        let (d, ws) = setup();
        let secret = d.path().canonicalize().unwrap().join("secret");
        for b in [Backend::Openat2, Backend::Walk] {
            let t = Tree::open_with(&ws, b).unwrap();
            // Through a linked folder: refused.
            let e = t.replace("up/secret", &mut &b"x"[..], None).unwrap_err();
            assert!(is_link_error(&e), "{e}");
            assert!(t.append("up/secret", b"x").is_err());
            assert!(t.create_new("to_sub/new", b"x").is_err());
            // Onto a link: the link itself is replaced, its target untouched.
            t.replace("out", &mut &b"mine"[..], None).unwrap();
            assert_eq!(std::fs::read_to_string(&secret).unwrap(), "s");
            assert_eq!(std::fs::read_to_string(ws.join("out")).unwrap(), "mine");
            symlink(&secret, ws.join("out2")).unwrap();
            assert!(matches!(
                t.append("out2", b"x"),
                Err(FileError::NotRegular("a symbolic link"))
            ));
            std::fs::remove_file(ws.join("out")).unwrap();
            std::fs::remove_file(ws.join("out2")).unwrap();
            symlink(&secret, ws.join("out")).unwrap();
            // A hard link is replaced, not written through.
            std::fs::hard_link(ws.join("a.txt"), ws.join("hard")).unwrap();
            t.replace("hard", &mut &b"new"[..], None).unwrap();
            assert_eq!(std::fs::read_to_string(ws.join("a.txt")).unwrap(), "a");
            std::fs::hard_link(ws.join("a.txt"), ws.join("hard2")).unwrap();
            assert!(matches!(
                t.append("hard2", b"x"),
                Err(FileError::HardLinked)
            ));
            std::fs::remove_file(ws.join("hard")).unwrap();
            std::fs::remove_file(ws.join("hard2")).unwrap();
            // Missing folders are made; a new file exists once only.
            t.create_new("n/e/w", b"1").unwrap();
            assert_eq!(
                t.create_new("n/e/w", b"2").unwrap_err().kind(),
                io::ErrorKind::AlreadyExists
            );
            std::fs::remove_dir_all(ws.join("n")).unwrap();
        }
    }

    #[test]
    fn a_folder_swapped_for_a_link_after_resolving_is_not_followed() {
        // Agent code may swap a folder or file for a link between
        // `confine::resolve` and the open; the open must fail, not follow.
        let (d, ws) = setup();
        let base = d.path().canonicalize().unwrap();
        let elsewhere = base.join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::fs::write(elsewhere.join("b.txt"), "outside").unwrap();
        for b in [Backend::Openat2, Backend::Walk] {
            let t = Tree::open_with(&ws, b).unwrap();
            let r = crate::env::confine::resolve(&ws, "sub/b.txt").unwrap();
            std::fs::rename(ws.join("sub"), ws.join("sub_real")).unwrap();
            symlink(&elsewhere, ws.join("sub")).unwrap();
            // What mlab did before: the resolved path, reopened by name,
            // now leads outside.
            assert_eq!(std::fs::read_to_string(&r.host).unwrap(), "outside");
            assert!(loops(read(&t, &r.rel)), "{b:?}");
            assert!(t.replace(&r.rel, &mut &b"x"[..], None).is_err());
            assert!(t.append(&r.rel, b"x").is_err());
            assert!(t.create_new("sub/new.txt", b"x").is_err());
            assert!(t.list("sub").is_err());
            assert_eq!(
                std::fs::read_to_string(elsewhere.join("b.txt")).unwrap(),
                "outside"
            );
            assert!(!elsewhere.join("new.txt").exists());
            std::fs::remove_file(ws.join("sub")).unwrap();
            std::fs::rename(ws.join("sub_real"), ws.join("sub")).unwrap();

            let r = crate::env::confine::resolve(&ws, "a.txt").unwrap();
            std::fs::rename(ws.join("a.txt"), ws.join("a_real")).unwrap();
            symlink(elsewhere.join("b.txt"), ws.join("a.txt")).unwrap();
            assert!(matches!(
                read(&t, &r.rel),
                Err(FileError::NotRegular("a symbolic link"))
            ));
            std::fs::remove_file(ws.join("a.txt")).unwrap();
            std::fs::rename(ws.join("a_real"), ws.join("a.txt")).unwrap();
        }
    }

    #[test]
    fn special_files_are_refused_without_blocking() {
        let (_d, ws) = setup();
        let fifo = ws.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let sock = std::os::unix::net::UnixListener::bind(ws.join("sock")).unwrap();
        for b in [Backend::Openat2, Backend::Walk] {
            let t = Tree::open_with(&ws, b).unwrap();
            // Nobody writes to the FIFO: a blocking open would hang here.
            assert!(matches!(
                read(&t, "fifo"),
                Err(FileError::NotRegular("a FIFO (named pipe)"))
            ));
            assert!(matches!(
                read(&t, "sock"),
                Err(FileError::NotRegular("a socket"))
            ));
            assert!(matches!(
                read(&t, "sub"),
                Err(FileError::NotRegular("a folder"))
            ));
            assert!(matches!(
                t.append("fifo", b"x"),
                Err(FileError::NotRegular(_))
            ));
        }
        drop(sock);
        assert!(matches!(
            open_host_read(&fifo),
            Err(FileError::NotRegular("a FIFO (named pipe)"))
        ));
    }

    #[test]
    fn a_huge_sparse_file_is_refused_by_the_cap_without_reading_it() {
        let (_d, ws) = setup();
        let f = File::create(ws.join("sparse")).unwrap();
        f.set_len(20 * 1024 * 1024 * 1024).unwrap();
        drop(f);
        let t = Tree::open(&ws).unwrap();
        let mut f = t.open_read("sparse").unwrap();
        match read_capped(&mut f, 10 * 1024 * 1024) {
            Err(FileError::TooBig(n)) => assert_eq!(n, 20 * 1024 * 1024 * 1024),
            other => panic!("not refused: {:?}", other.map(|v| v.len())),
        }
    }

    #[test]
    fn listings_do_not_follow_links_and_keep_odd_names() {
        each_backend(|t| {
            let mut names: Vec<Vec<u8>> = t.list("").unwrap().into_iter().map(|e| e.name).collect();
            names.sort();
            let want: Vec<&[u8]> = vec![b"a.txt", b"out", b"sub", b"to_a", b"to_sub", b"up"];
            assert_eq!(names, want);
            let e = t.list("to_sub").unwrap_err();
            assert!(is_link_error(&e), "{e}");
            let out = t
                .list("")
                .unwrap()
                .into_iter()
                .find(|e| e.name == b"out")
                .unwrap();
            assert_eq!(out.kind, Some(FileType::Symlink));
        });
    }

    #[test]
    fn odd_names_are_shown_on_one_line_escaped() {
        use std::os::unix::ffi::OsStrExt;
        let show = |b: &[u8]| shown_name(OsStr::from_bytes(b));
        assert_eq!(show(b"train.py"), "train.py");
        assert_eq!(show("naïve.txt".as_bytes()), "naïve.txt");
        assert_eq!(show(b"a\\b"), "a\\b");
        assert_eq!(show(b"a\nb"), "\"a\\nb\"");
        assert_eq!(show(b"x\x1b[31m"), "\"x\\u{1b}[31m\"");
        assert_eq!(show(b"\"q\""), "\"\\\"q\\\"\"");
        assert_eq!(show(b"bad\xff"), "\"bad\\xff\"");
        assert_eq!(show("l\u{2028}s".as_bytes()), "\"l\\u{2028}s\"");
        for b in [&b"a\nb"[..], b"c\rd", b"e\x00"] {
            assert!(!show(b).contains(['\n', '\r', '\0']));
        }
    }
}
