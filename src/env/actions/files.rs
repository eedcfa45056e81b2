//! File actions: List Files, Read File, Write File, Append File, Copy File,
//! and the primitives the high-level actions read and write through.
//!
//! Every path goes through confinement (`Workspace::resolve`); every write
//! is refused when the path names a read-only file in any spelling, before
//! or after following links. The resolved path is then used only through
//! `fsat`, relative to a descriptor of the workspace root and following no
//! link, so agent code that changes the workspace meanwhile cannot send a
//! read or write elsewhere. Only regular files are read or copied, never
//! more than [`MAX_READ`] bytes into memory, and a name that would hold a
//! control character is never created.

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use rustix::fs::FileType;
use serde_json::{json, Map, Value};

use super::{text_arg, ActionError, Ctx};
use crate::env::catalog::{APPEND_FILE, COPY_FILE, LIST_FILES, READ_FILE, WRITE_FILE};
use crate::env::confine::Resolved;
pub use crate::env::fsat::FileError;
use crate::env::fsat::{self, Tree};
use crate::env::output;
use crate::task::normalize_relative;

/// Largest file an action reads into memory (Read File, Understand File,
/// Inspect Script Lines, the research log, a backup for Undo Edit Script).
pub const MAX_READ: u64 = 10 * 1024 * 1024;

pub fn dispatch(
    name: &str,
    args: &Map<String, Value>,
    ctx: &mut Ctx,
) -> Result<String, ActionError> {
    match name {
        LIST_FILES => list_files(ctx, &text_arg(args, "dir_path")?),
        READ_FILE => {
            let f = text_arg(args, "file_name")?;
            read_text(ctx, &f).map(|t| output::bound(&t))
        }
        WRITE_FILE => write_text(
            ctx,
            &text_arg(args, "file_name")?,
            &text_arg(args, "content")?,
        ),
        APPEND_FILE => append_text(
            ctx,
            &text_arg(args, "file_name")?,
            &text_arg(args, "content")?,
        ),
        COPY_FILE => copy_file(
            ctx,
            &text_arg(args, "source")?,
            &text_arg(args, "destination")?,
        ),
        _ => unreachable!("not a file action: {name}"),
    }
}

/// Resolves a path that will be written, refusing read-only files, names
/// with control characters and paths that name a folder.
pub fn writable(ctx: &Ctx, arg: &str) -> Result<Resolved, ActionError> {
    check_new_name(arg)?;
    let r = ctx.ws.resolve(arg)?;
    let lexical = normalize_relative(arg).unwrap_or_default();
    if ctx.ws.is_read_only(&r.rel) || (!lexical.is_empty() && ctx.ws.is_read_only(&lexical)) {
        return Err(ActionError::env(format!(
            "cannot write file {arg} because it is a read-only file of the task"
        )));
    }
    let names_folder = arg.ends_with('/') || arg.ends_with("/.") || arg.ends_with("/..");
    if r.rel.is_empty() || names_folder {
        return Err(ActionError::env(format!(
            "cannot write {arg}: a path that ends in \"/\" (or is \".\") names a folder, not a file; give a file path without the trailing \"/\", e.g. {}",
            suggest_file(arg)
        )));
    }
    if kind(ctx, &r.rel)? == Some(FileType::Directory) {
        return Err(ActionError::env(format!(
            "cannot write {arg}: it is a folder; give a file path"
        )));
    }
    check_new_name(&r.rel)?;
    Ok(r)
}

fn suggest_file(arg: &str) -> String {
    let mut base = arg;
    loop {
        let next = base.trim_end_matches('/');
        let next = next.strip_suffix("/.").unwrap_or(next);
        if next == base {
            break;
        }
        base = next;
    }
    if base.is_empty() || base == "." || base.ends_with("/..") || base == ".." {
        "\"notes.txt\"".into()
    } else {
        format!("\"{base}\"")
    }
}

/// Refuses a file name that holds a control character (a newline, a tab,
/// an escape, ...): such names break listings and logs, so no action makes
/// one.
pub fn check_new_name(arg: &str) -> Result<(), ActionError> {
    let odd = |c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}';
    if let Some(c) = arg.chars().find(|&c| odd(c) && c != '\0') {
        return Err(ActionError::env(format!(
            "cannot create {}: file names may not contain control characters ({:?} here); choose a name of printable characters",
            fsat::shown_name(OsStr::new(arg)),
            c
        )));
    }
    Ok(())
}

/// Where the bytes of a readable file come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A canonical path in the workspace, opened through `fsat`.
    Workspace(String),
    /// The prepared original of a bound read-only file (a path mlab chose).
    Host(PathBuf),
}

/// Resolves a path that will be read; returns where to read it from.
pub fn readable(ctx: &Ctx, arg: &str) -> Result<(Resolved, Source), ActionError> {
    let r = ctx.ws.resolve(arg)?;
    let from = ctx.ws.read_path(&r);
    let src = if from == r.host {
        Source::Workspace(r.rel.clone())
    } else {
        Source::Host(from)
    };
    Ok((r, src))
}

/// The workspace root, open for `fsat`.
pub fn tree(ctx: &Ctx) -> Result<Tree, ActionError> {
    Tree::open(ctx.ws.root()).map_err(|e| {
        ActionError::io(format!(
            "cannot open the workspace folder: {}",
            io_reason(&e)
        ))
    })
}

/// The type of workspace path `rel` (a link is not followed), `None` when
/// nothing is there.
pub fn kind(ctx: &Ctx, rel: &str) -> Result<Option<FileType>, ActionError> {
    tree(ctx)?
        .kind(rel)
        .map_err(|e| ActionError::io(format!("cannot look at {rel}: {}", io_reason(&e))))
}

/// True when `src` names an existing file of any kind.
pub fn exists(ctx: &Ctx, src: &Source) -> Result<bool, ActionError> {
    match src {
        Source::Workspace(rel) => Ok(kind(ctx, rel)?.is_some()),
        Source::Host(p) => Ok(std::fs::symlink_metadata(p).is_ok()),
    }
}

/// Opens `src` for reading: a regular file only, opened so that it cannot
/// block. `arg` is the agent's spelling, for messages.
pub fn open_source(ctx: &Ctx, src: &Source, arg: &str) -> Result<File, ActionError> {
    let opened = match src {
        Source::Workspace(rel) => tree(ctx)?.open_read(rel),
        Source::Host(p) => fsat::open_host_read(p),
    };
    opened.map_err(|e| file_error(e, "read", arg))
}

/// Reads `src` whole, up to [`MAX_READ`] bytes.
pub fn read_bytes(ctx: &Ctx, src: &Source, arg: &str) -> Result<Vec<u8>, ActionError> {
    let mut f = open_source(ctx, src, arg)?;
    fsat::read_capped(&mut f, MAX_READ).map_err(|e| file_error(e, "read", arg))
}

/// An `fsat` failure as the agent should see it. `verb` says what was
/// being done to `arg` ("read", "copy", ...).
pub fn file_error(e: FileError, verb: &str, arg: &str) -> ActionError {
    match e {
        FileError::NotRegular("a folder") => ActionError::env(format!(
            "cannot {verb} {arg}: it is a folder; use List Files to see what it holds"
        )),
        FileError::NotRegular(what) => ActionError::env(format!(
            "cannot {verb} {arg}: it is {what}, not a regular file; actions read and copy only regular files"
        )),
        FileError::TooBig(size) => ActionError::env(format!(
            "cannot {verb} {arg}: it is {} MB, more than the {} MB an action reads into memory; inspect it with a script instead",
            size.div_ceil(1024 * 1024),
            MAX_READ / (1024 * 1024)
        )),
        FileError::HardLinked => ActionError::env(format!(
            "cannot {verb} {arg}: it has other hard links, and a write through them could change another file; copy it to a new name first"
        )),
        FileError::Io(e) => io_error(&e, verb, arg),
    }
}

/// True for the error `fsat` gives when it meets a symbolic link.
pub fn is_link_error(e: &std::io::Error) -> bool {
    fsat::is_link_error(e)
}

/// An I/O failure on `arg` as the agent should see it.
pub fn io_error(e: &std::io::Error, verb: &str, arg: &str) -> ActionError {
    if fsat::is_link_error(e) {
        return ActionError::io(format!(
            "cannot {verb} {arg}: the path changed while mlab was using it (a symbolic link took the place of a file or folder); try again"
        ));
    }
    ActionError::io(format!("cannot {verb} file {arg}: {}", io_reason(e)))
}

pub fn list_files(ctx: &mut Ctx, dir_path: &str) -> Result<String, ActionError> {
    let (_, src) = readable(ctx, dir_path)?;
    let listed = match &src {
        Source::Workspace(rel) => tree(ctx)?.list(rel),
        Source::Host(_) => Err(std::io::Error::from(std::io::ErrorKind::NotADirectory)),
    };
    let entries = match listed {
        Ok(e) => e,
        Err(e) => {
            let msg = if fsat::is_link_error(&e) {
                format!(
                    "cannot list the files in {dir_path:?}: the path changed while mlab was using it (a symbolic link took the place of a folder); try again"
                )
            } else {
                format!("cannot list the files in {dir_path:?}: {}", io_reason(&e))
            };
            ctx.record(
                LIST_FILES,
                json!({"dir_path": dir_path}),
                &format!("EnvError: {msg}"),
            );
            return Err(ActionError::io(msg));
        }
    };
    // As `ls -F`: hidden names left out, sorted, a mark for each kind; a
    // name with control characters is shown quoted and escaped, so that
    // every line is one entry.
    let mut names: Vec<(Vec<u8>, String)> = Vec::new();
    let mut odd = false;
    for entry in entries {
        if entry.name.starts_with(b".") {
            continue;
        }
        let mark = match entry.kind {
            Some(FileType::Symlink) => "@",
            Some(FileType::Directory) => "/",
            Some(FileType::Fifo) => "|",
            Some(FileType::Socket) => "=",
            Some(FileType::RegularFile) if entry.mode & 0o111 != 0 => "*",
            _ => "",
        };
        let shown = fsat::shown_name(OsStr::from_bytes(&entry.name));
        odd |= shown.as_bytes() != entry.name.as_slice();
        names.push((entry.name, format!("{shown}{mark}")));
    }
    names.sort();
    let mut out = String::new();
    for (_, shown) in names {
        out.push_str(&shown);
        out.push('\n');
    }
    if odd {
        out.push_str(
            "(Names in double quotes hold control characters or bytes that are not UTF-8, shown escaped as in JSON.)\n",
        );
    }
    ctx.record(LIST_FILES, json!({"dir_path": dir_path}), &out);
    Ok(out)
}

/// Reads a text file (the Read File primitive).
pub fn read_text(ctx: &mut Ctx, file_name: &str) -> Result<String, ActionError> {
    let (_, src) = readable(ctx, file_name)?;
    let result = read_bytes(ctx, &src, file_name).and_then(|bytes| {
        String::from_utf8(bytes).map_err(|_| {
            ActionError::env(format!(
                "cannot read {file_name}: it is not a text file (not UTF-8); inspect it with a script instead"
            ))
        })
    });
    match &result {
        Ok(text) => ctx.record(
            READ_FILE,
            json!({"file_name": file_name}),
            &output::bound(text),
        ),
        Err(ActionError::Env { msg, io: true }) => ctx.record(
            READ_FILE,
            json!({"file_name": file_name}),
            &format!("EnvError: {msg}"),
        ),
        Err(_) => {}
    }
    result
}

/// Replaces a file's text (the Write File primitive).
pub fn write_text(ctx: &mut Ctx, file_name: &str, content: &str) -> Result<String, ActionError> {
    let r = writable(ctx, file_name)?;
    let args = json!({"file_name": file_name, "content": content});
    let result = tree(ctx).and_then(|t| {
        t.replace(&r.rel, &mut content.as_bytes(), None)
            .map(|_| format!("The file {file_name} was written."))
            .map_err(|e| io_error(&e, "write", file_name))
    });
    record_result(ctx, WRITE_FILE, args, &result);
    result
}

/// Adds text at the end of a file (the Append File primitive).
pub fn append_text(ctx: &mut Ctx, file_name: &str, content: &str) -> Result<String, ActionError> {
    let r = writable(ctx, file_name)?;
    let args = json!({"file_name": file_name, "content": content});
    let result = match tree(ctx)?.append(&r.rel, content.as_bytes()) {
        Ok(()) => Ok(format!("The text was appended to {file_name}.")),
        Err(FileError::Io(e)) => Err(io_error(&e, "append to", file_name)),
        Err(e) => return Err(file_error(e, "append to", file_name)),
    };
    record_result(ctx, APPEND_FILE, args, &result);
    result
}

pub fn copy_file(ctx: &mut Ctx, source: &str, destination: &str) -> Result<String, ActionError> {
    let (src, from) = readable(ctx, source)?;
    let dest = writable(ctx, destination)?;
    if src.rel == dest.rel {
        return Err(ActionError::env(format!(
            "cannot copy {source} onto itself; give another destination"
        )));
    }
    if !exists(ctx, &from)? {
        return Err(ActionError::env(format!(
            "cannot copy {source}: it does not exist"
        )));
    }
    let mut input = open_source(ctx, &from, source).map_err(|e| match e {
        ActionError::Env { msg, io } => ActionError::Env {
            msg: msg.replacen("cannot read", "cannot copy", 1),
            io,
        },
        other => other,
    })?;
    let args = json!({"source": source, "destination": destination});
    // A copy of a read-only file is the agent's own, writable file.
    let mode = rustix::fs::fstat(&input)
        .map(|st| (st.st_mode & 0o7777) | 0o200)
        .ok();
    // Streamed into a new file renamed over the destination: never held
    // in memory, never written through a hard link.
    let result = tree(ctx).and_then(|t| {
        t.replace(&dest.rel, &mut input, mode)
            .map(|_| format!("{source} was copied to {destination}."))
            .map_err(|e| {
                if fsat::is_link_error(&e) {
                    io_error(&e, "copy to", destination)
                } else {
                    ActionError::io(format!(
                        "cannot copy {source} to {destination}: {}",
                        io_reason(&e)
                    ))
                }
            })
    });
    record_result(ctx, COPY_FILE, args, &result);
    result
}

fn record_result(ctx: &mut Ctx, name: &str, args: Value, result: &Result<String, ActionError>) {
    match result {
        Ok(obs) => ctx.record(name, args, obs),
        Err(ActionError::Env { msg, io: true }) => {
            ctx.record(name, args, &format!("EnvError: {msg}"))
        }
        Err(_) => {}
    }
}

/// An I/O error without the OS error number.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or folder".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trailing_slash_suggests_the_file_name_without_it() {
        assert_eq!(suggest_file("newfile/"), "\"newfile\"");
        assert_eq!(suggest_file("sub/newfile//"), "\"sub/newfile\"");
        assert_eq!(suggest_file("newfile/."), "\"newfile\"");
        assert_eq!(suggest_file("."), "\"notes.txt\"");
        assert_eq!(suggest_file("./"), "\"notes.txt\"");
    }

    #[test]
    fn names_with_control_characters_cannot_be_created() {
        for bad in [
            "a\nb",
            "tab\t",
            "esc\u{1b}[0m",
            "del\u{7f}",
            "c1\u{85}",
            "ls\u{2028}",
        ] {
            let e = check_new_name(bad).unwrap_err();
            assert!(
                matches!(&e, ActionError::Env { msg, .. } if msg.contains("control characters") && !msg.contains('\n')),
                "{bad:?}: {e:?}"
            );
        }
        for good in ["train.py", "naïve café.txt", "a b/c-d_e.csv"] {
            assert!(check_new_name(good).is_ok(), "{good:?}");
        }
    }
}
