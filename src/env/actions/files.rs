//! File actions: List Files, Read File, Write File, Append File, Copy File,
//! and the primitives the high-level actions read and write through.
//!
//! Every path goes through confinement (`Workspace::resolve`); every write
//! is refused when the path names a read-only file in any spelling, before
//! or after following links.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Map, Value};

use super::{text_arg, ActionError, Ctx};
use crate::env::action::{APPEND_FILE, COPY_FILE, LIST_FILES, READ_FILE, WRITE_FILE};
use crate::env::confine::Resolved;
use crate::env::output;
use crate::task::normalize_relative;

/// Largest file mlab reads into memory for an action.
pub const MAX_READ: u64 = 64 * 1024 * 1024;

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

/// Resolves a path that will be written, refusing read-only files.
pub fn writable(ctx: &Ctx, arg: &str) -> Result<Resolved, ActionError> {
    let r = ctx.ws.resolve(arg)?;
    let lexical = normalize_relative(arg).unwrap_or_default();
    if ctx.ws.is_read_only(&r.rel) || (!lexical.is_empty() && ctx.ws.is_read_only(&lexical)) {
        return Err(ActionError::env(format!(
            "cannot write file {arg} because it is a read-only file of the task"
        )));
    }
    if r.rel.is_empty() || r.host.is_dir() {
        return Err(ActionError::env(format!(
            "cannot write {arg}: it is a folder; give a file path"
        )));
    }
    Ok(r)
}

/// Resolves a path that will be read; returns where to read it from.
pub fn readable(ctx: &Ctx, arg: &str) -> Result<(Resolved, PathBuf), ActionError> {
    let r = ctx.ws.resolve(arg)?;
    let from = ctx.ws.read_path(&r);
    Ok((r, from))
}

pub fn list_files(ctx: &mut Ctx, dir_path: &str) -> Result<String, ActionError> {
    let (_, dir) = readable(ctx, dir_path)?;
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        ActionError::io(format!(
            "cannot list the files in {dir_path:?}: {}",
            io_reason(&e)
        ))
    });
    let entries = match entries {
        Ok(e) => e,
        Err(e) => {
            if let ActionError::Env { msg, .. } = &e {
                ctx.record(
                    LIST_FILES,
                    json!({"dir_path": dir_path}),
                    &format!("EnvError: {msg}"),
                );
            }
            return Err(e);
        }
    };
    // As `ls -F`: hidden names left out, sorted, a mark for each kind.
    let mut names: Vec<(Vec<u8>, String)> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let mark = match entry.file_type() {
            Ok(t) if t.is_symlink() => "@",
            Ok(t) if t.is_dir() => "/",
            Ok(t) if t.is_fifo() => "|",
            Ok(t) if t.is_socket() => "=",
            Ok(_) => match entry.metadata() {
                Ok(m) if m.permissions().mode() & 0o111 != 0 => "*",
                _ => "",
            },
            Err(_) => "",
        };
        names.push((name.as_bytes().to_vec(), format!("{name}{mark}")));
    }
    names.sort();
    let mut out = String::new();
    for (_, shown) in names {
        out.push_str(&shown);
        out.push('\n');
    }
    ctx.record(LIST_FILES, json!({"dir_path": dir_path}), &out);
    Ok(out)
}

/// Reads a text file (the Read File primitive).
pub fn read_text(ctx: &mut Ctx, file_name: &str) -> Result<String, ActionError> {
    let (_, from) = readable(ctx, file_name)?;
    let result = read_checked(&from, file_name);
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

fn read_checked(from: &std::path::Path, file_name: &str) -> Result<String, ActionError> {
    let meta = std::fs::metadata(from)
        .map_err(|e| ActionError::io(format!("cannot read file {file_name}: {}", io_reason(&e))))?;
    if meta.is_dir() {
        return Err(ActionError::env(format!(
            "cannot read {file_name}: it is a folder; use List Files"
        )));
    }
    if meta.len() > MAX_READ {
        return Err(ActionError::env(format!(
            "cannot read {file_name}: it is {} MB, more than the {} MB an action reads; inspect it with a script instead",
            meta.len() / (1024 * 1024),
            MAX_READ / (1024 * 1024)
        )));
    }
    let bytes = std::fs::read(from)
        .map_err(|e| ActionError::io(format!("cannot read file {file_name}: {}", io_reason(&e))))?;
    String::from_utf8(bytes).map_err(|_| {
        ActionError::env(format!(
            "cannot read {file_name}: it is not a text file (not UTF-8); inspect it with a script instead"
        ))
    })
}

/// Replaces a file's text (the Write File primitive).
pub fn write_text(ctx: &mut Ctx, file_name: &str, content: &str) -> Result<String, ActionError> {
    let r = writable(ctx, file_name)?;
    let args = json!({"file_name": file_name, "content": content});
    let result = make_parent(&r)
        .and_then(|_| replace_file(&r.host, content.as_bytes()))
        .map(|_| format!("The file {file_name} was written."))
        .map_err(|e| ActionError::io(format!("cannot write file {file_name}: {}", io_reason(&e))));
    record_result(ctx, WRITE_FILE, args, &result);
    result
}

/// Adds text at the end of a file (the Append File primitive).
pub fn append_text(ctx: &mut Ctx, file_name: &str, content: &str) -> Result<String, ActionError> {
    let r = writable(ctx, file_name)?;
    if std::fs::metadata(&r.host).is_ok_and(|m| m.nlink() > 1) {
        return Err(ActionError::env(format!(
            "cannot append to {file_name}: it has other hard links, and a write through them could change another file; copy it to a new name first"
        )));
    }
    let args = json!({"file_name": file_name, "content": content});
    let result = make_parent(&r)
        .and_then(|_| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&r.host)
                .and_then(|mut f| f.write_all(content.as_bytes()))
        })
        .map(|_| format!("The text was appended to {file_name}."))
        .map_err(|e| {
            ActionError::io(format!(
                "cannot append to file {file_name}: {}",
                io_reason(&e)
            ))
        });
    record_result(ctx, APPEND_FILE, args, &result);
    result
}

pub fn copy_file(ctx: &mut Ctx, source: &str, destination: &str) -> Result<String, ActionError> {
    let (src, from) = readable(ctx, source)?;
    let dest = writable(ctx, destination)?;
    if !from.is_file() {
        let why = if from.is_dir() {
            "it is a folder"
        } else {
            "it does not exist"
        };
        return Err(ActionError::env(format!("cannot copy {source}: {why}")));
    }
    if src.rel == dest.rel {
        return Err(ActionError::env(format!(
            "cannot copy {source} onto itself; give another destination"
        )));
    }
    let args = json!({"source": source, "destination": destination});
    let result = make_parent(&dest)
        .and_then(|_| {
            // Replace, never write through: the destination may be a hard
            // link to another file.
            let _ = std::fs::remove_file(&dest.host);
            std::fs::copy(&from, &dest.host)
        })
        .and_then(|_| {
            // A copy of a read-only file is the agent's own, writable file.
            let mut perm = std::fs::metadata(&dest.host)?.permissions();
            perm.set_mode(perm.mode() | 0o200);
            std::fs::set_permissions(&dest.host, perm)
        })
        .map(|_| format!("{source} was copied to {destination}."))
        .map_err(|e| {
            ActionError::io(format!(
                "cannot copy {source} to {destination}: {}",
                io_reason(&e)
            ))
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

/// Replaces the file at `host` with `content` through a new file renamed
/// over it: the old inode is never written, so a hard link the agent made
/// (to a read-only copy, say) cannot carry the write elsewhere. The new
/// file keeps the old one's permissions.
pub fn replace_file(host: &Path, content: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!(".mlab-write-{}-{n}", std::process::id());
    let tmp = host.with_file_name(name);
    let result = std::fs::write(&tmp, content)
        .and_then(|_| match std::fs::metadata(host) {
            Ok(old) => std::fs::set_permissions(&tmp, old.permissions()),
            Err(_) => Ok(()),
        })
        .and_then(|_| std::fs::rename(&tmp, host));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn make_parent(r: &Resolved) -> std::io::Result<()> {
    match r.host.parent() {
        Some(p) => std::fs::create_dir_all(p),
        None => Ok(()),
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
