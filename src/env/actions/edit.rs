//! Script actions: Inspect Script Lines, Edit Script (AI), Edit Script
//! Segment (AI) and Undo Edit Script.
//!
//! An edit backs the old script up to `backup/<script>_<YYYY-MM-DD_HH-MM-SS>`
//! (as the original; a second edit within the same second gets a numbered
//! suffix instead of overwriting the first backup), writes the result to
//! `save_name` and returns a unified diff. Fixed on purpose: Edit Script
//! Segment's diff compares the whole old script with the whole new one
//! (the original compared the old segment with the new file). Targets are
//! checked before the model is called, so a refused edit costs nothing.
//!
//! Backups are agent-reachable files like any other, so they are made,
//! found and read only through `fsat`: `backup/` must be a real folder (a
//! link in its place is refused, never followed), only regular files in it
//! count as backups, and a backup is read through a descriptor that could
//! not have followed a link planted after it was listed.

use rustix::fs::FileType;
use serde_json::{Map, Value};

use super::files::{self, readable, writable, FileError, MAX_READ};
use super::{complete, int_arg, text_arg, ActionError, Ctx, Role};
use crate::env::catalog::{
    EDIT_SCRIPT, EDIT_SCRIPT_SEGMENT, INSPECT_SCRIPT_LINES, UNDO_EDIT_SCRIPT,
};
use crate::env::workspace::BACKUP_DIR;

/// Most lines Inspect Script Lines shows at once.
pub const MAX_INSPECT_LINES: i64 = 100;

pub fn dispatch(
    name: &str,
    args: &Map<String, Value>,
    ctx: &mut Ctx,
) -> Result<String, ActionError> {
    match name {
        INSPECT_SCRIPT_LINES => inspect_script_lines(args, ctx),
        EDIT_SCRIPT => edit_script(args, ctx, false),
        EDIT_SCRIPT_SEGMENT => edit_script(args, ctx, true),
        UNDO_EDIT_SCRIPT => undo_edit_script(&text_arg(args, "script_name")?, ctx),
        _ => unreachable!("not a script action: {name}"),
    }
}

fn inspect_script_lines(args: &Map<String, Value>, ctx: &mut Ctx) -> Result<String, ActionError> {
    let script = text_arg(args, "script_name")?;
    let start = int_arg(args, "start_line_number")?;
    let end = int_arg(args, "end_line_number")?;
    if start < 1 || end < start {
        return Err(ActionError::env(format!(
            "the line range {start} to {end} is not valid; lines count from 1 and the end may not come before the start"
        )));
    }
    if end - start >= MAX_INSPECT_LINES {
        return Err(ActionError::env(format!(
            "the number of lines to display is limited to {MAX_INSPECT_LINES}; ask for a smaller range"
        )));
    }
    let text = files::read_text(ctx, &script)?;
    let lines: Vec<&str> = text.split('\n').collect();
    let total = lines.len();
    let from = (start as usize - 1).min(total);
    let to = (end as usize).min(total);
    Ok(format!(
        "Lines {start} to {} of {script} (the file has {total} lines):\n\n{}",
        to.max(from),
        lines[from..to].join("\n")
    ))
}

fn edit_script(
    args: &Map<String, Value>,
    ctx: &mut Ctx,
    segment: bool,
) -> Result<String, ActionError> {
    let action = if segment {
        EDIT_SCRIPT_SEGMENT
    } else {
        EDIT_SCRIPT
    };
    let script = text_arg(args, "script_name")?;
    let instruction = text_arg(args, "edit_instruction")?;
    let save_name = text_arg(args, "save_name")?;
    let range = if segment {
        let start = int_arg(args, "start_line_number")?;
        let end = int_arg(args, "end_line_number")?;
        if start < 1 || end < start {
            return Err(ActionError::env(format!(
                "the line range {start} to {end} is not valid; lines count from 1 and the end may not come before the start"
            )));
        }
        Some((start as usize, end as usize))
    } else {
        None
    };
    // Refusals first: nothing is sent to the model for an edit that could
    // not be saved.
    writable(ctx, &save_name)?;
    let (src, from) = readable(ctx, &script)?;
    // The backup is named after the script.
    files::check_new_name(&src.rel)?;
    let old = if files::exists(ctx, &from)? {
        files::read_text(ctx, &script)?
    } else {
        // As the original: a missing script is created empty.
        if segment {
            return Err(ActionError::env(format!(
                "the script {script} does not exist; Edit Script Segment (AI) needs existing lines to change"
            )));
        }
        files::write_text(ctx, &script, "")?;
        String::new()
    };

    let new = match range {
        None => {
            let prompt = format!(
                "Here is a Python script:\n```python\n{old}\n```\n\
                 Change it as follows: {instruction}\n\
                 Reply with the complete script after the change and change nothing else. \
                 Put the script in a single block that starts with \"```python\" and ends with \"```\"."
            );
            let reply = complete(ctx, action, Role::Edit, prompt, ctx.tool_log.clone())?;
            with_newline(&extract_code(&reply).ok_or_else(|| no_code(action))?)
        }
        Some((start, end)) => {
            let lines: Vec<&str> = old.split_inclusive('\n').collect();
            let a = (start - 1).min(lines.len());
            let b = end.min(lines.len());
            let piece: String = lines[a..b].concat();
            let prompt = format!(
                "Here are lines {start} to {end} of a Python script:\n```python\n{piece}\n```\n\
                 Change these lines as follows: {instruction}\n\
                 Reply with the complete lines after the change and change nothing else. \
                 Put them in a single block that starts with \"```python\" and ends with \"```\"."
            );
            let reply = complete(ctx, action, Role::Edit, prompt, ctx.tool_log.clone())?;
            let edited = with_newline(&extract_code(&reply).ok_or_else(|| no_code(action))?);
            let mut new = lines[..a].concat();
            new.push_str(&edited);
            if b < lines.len() && !new.ends_with('\n') {
                new.push('\n');
            }
            new.push_str(&lines[b..].concat());
            new
        }
    };

    backup(ctx, &src.rel, &old)?;
    files::write_text(ctx, &save_name, &new)?;
    let diff = similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header("", "")
        .to_string();
    Ok(format!(
        "The changed script was saved to {save_name}. Check that this diff is the change you meant:\n\n{diff}"
    ))
}

fn no_code(action: &str) -> ActionError {
    ActionError::env(format!(
        "the model behind {action} did not reply with a ```python block, so nothing was changed; try again, perhaps with a simpler instruction"
    ))
}

/// The code between the first ```python fence (or a bare ``` fence) and
/// the fence that closes it, trimmed.
pub fn extract_code(reply: &str) -> Option<String> {
    let start = match reply.find("```python") {
        Some(i) => i + "```python".len(),
        None => reply.find("```")? + 3,
    };
    let rest = &reply[start..];
    // Skip the rest of the fence line (e.g. "```python3").
    let rest = match rest.find('\n') {
        Some(i) if rest[..i].trim().chars().all(|c| c.is_alphanumeric()) => &rest[i + 1..],
        _ => rest,
    };
    let body = match rest.find("```") {
        Some(i) => &rest[..i],
        // A reply cut off by the token limit: take what came.
        None => rest,
    };
    Some(body.trim().to_string())
}

fn with_newline(code: &str) -> String {
    if code.is_empty() || code.ends_with('\n') {
        code.to_string()
    } else {
        format!("{code}\n")
    }
}

/// Writes the old text of workspace file `rel` into `backup/`, as a new
/// file: never over an existing name, never through a link.
fn backup(ctx: &mut Ctx, rel: &str, old: &str) -> Result<(), ActionError> {
    let t = files::tree(ctx)?;
    let stamp = chrono::Local::now().format("%Y-%m-%d_%H-%M-%S").to_string();
    // Two edits within one second keep both backups; the suffix sorts after
    // the plain name, so Undo still finds the newest.
    for n in 0..1000 {
        let name = if n == 0 {
            format!("{BACKUP_DIR}/{rel}_{stamp}")
        } else {
            format!("{BACKUP_DIR}/{rel}_{stamp}_{n:03}")
        };
        match t.create_new(&name, old.as_bytes()) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(backup_folder_error(&e, &format!("back up {rel}"))),
        }
    }
    Err(ActionError::env(format!(
        "cannot back up {rel}: a thousand backups of it were made within this second; try again"
    )))
}

/// A failure in `backup/` as the agent should see it.
fn backup_folder_error(e: &std::io::Error, what: &str) -> ActionError {
    if files::is_link_error(e) {
        return ActionError::env(format!(
            "cannot {what}: {BACKUP_DIR}/ (or a folder in it) is a symbolic link; mlab keeps backups only in a real {BACKUP_DIR}/ folder and never follows a link there; remove the link (with a script) and try again"
        ));
    }
    if e.kind() == std::io::ErrorKind::NotADirectory {
        return ActionError::env(format!(
            "cannot {what}: {BACKUP_DIR} (or a folder in it) is not a folder; move it away and try again"
        ));
    }
    ActionError::io(format!("cannot {what}: {}", files::io_reason(e)))
}

/// Regular-file backups of `rel`, oldest first, as (stamp, workspace
/// path), and how many entries with a backup's name were left out because
/// they are not regular files (links, above all).
fn backups_of(ctx: &Ctx, rel: &str) -> Result<(Vec<(String, String)>, usize), ActionError> {
    let (dir_rel, base) = match rel.rsplit_once('/') {
        Some((d, b)) => (format!("{BACKUP_DIR}/{d}"), b.to_string()),
        None => (BACKUP_DIR.to_string(), rel.to_string()),
    };
    let entries = match files::tree(ctx)?.list(&dir_rel) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => {
            return Err(backup_folder_error(
                &e,
                &format!("look for backups of {rel}"),
            ))
        }
    };
    let prefix = format!("{base}_");
    let mut found = Vec::new();
    let mut skipped = 0;
    for e in entries {
        let Ok(name) = String::from_utf8(e.name) else {
            continue;
        };
        let Some(stamp) = name.strip_prefix(&prefix) else {
            continue;
        };
        if !is_backup_stamp(stamp) {
            continue;
        }
        if e.kind != Some(FileType::RegularFile) {
            skipped += 1;
            continue;
        }
        found.push((stamp.to_string(), format!("{dir_rel}/{name}")));
    }
    found.sort();
    Ok((found, skipped))
}

/// `YYYY-MM-DD_HH-MM-SS`, optionally followed by `_NNN`.
fn is_backup_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    let base = b.len() >= 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'_'
        && digits(11..13)
        && b[13] == b'-'
        && digits(14..16)
        && b[16] == b'-'
        && digits(17..19);
    base && (b.len() == 19 || (b.len() > 20 && b[19] == b'_' && digits(20..b.len())))
}

fn undo_edit_script(script: &str, ctx: &mut Ctx) -> Result<String, ActionError> {
    let target = writable(ctx, script)?;
    let (backups, skipped) = backups_of(ctx, &target.rel)?;
    let Some((_, newest)) = backups.last() else {
        let note = if skipped > 0 {
            format!(
                " ({skipped} entries in {BACKUP_DIR}/ with a backup's name were ignored: they are not regular files, and mlab restores only backups it wrote)"
            )
        } else {
            String::new()
        };
        return Ok(format!(
            "There is no change to undo: {script} has no backup from an edit{note}."
        ));
    };
    let t = files::tree(ctx)?;
    let what = format!("the backup of {script}");
    // Opened without following links and checked to be a regular file on
    // the descriptor that is read: a link swapped in after the listing
    // fails here instead of being read.
    let bytes = t
        .open_read(newest)
        .and_then(|mut f| fsat_read(&mut f))
        .map_err(|e| match e {
            FileError::NotRegular(_) => ActionError::env(format!(
                "cannot restore {script}: {newest} is not a regular file (mlab restores only backups it wrote); remove it and try again"
            )),
            other => files::file_error(other, "read", &what),
        })?;
    let content = String::from_utf8(bytes).map_err(|_| {
        ActionError::env(format!(
            "cannot restore {script}: {newest} is not text (not UTF-8)"
        ))
    })?;
    // Written directly: the original recorded Undo itself, not a Write.
    t.replace(&target.rel, &mut content.as_bytes(), None)
        .map_err(|e| files::io_error(&e, "write", script))?;
    t.remove_file(newest).map_err(|e| {
        ActionError::io(format!(
            "cannot remove the used backup of {script}: {}",
            files::io_reason(&e)
        ))
    })?;
    Ok(format!(
        "The most recent edit of {script} was undone. Its content is now:\n{content}"
    ))
}

fn fsat_read(f: &mut std::fs::File) -> Result<Vec<u8>, FileError> {
    crate::env::fsat::read_capped(f, MAX_READ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_extracted_from_fenced_replies() {
        assert_eq!(
            extract_code("Sure!\n```python\nprint(1)\n```\nDone").as_deref(),
            Some("print(1)")
        );
        assert_eq!(extract_code("```\nx = 2\n```").as_deref(), Some("x = 2"));
        assert_eq!(
            extract_code("```python\ncut off").as_deref(),
            Some("cut off")
        );
        assert_eq!(extract_code("no code here"), None);
    }

    #[test]
    fn backup_stamps_are_recognised() {
        assert!(is_backup_stamp("2024-01-02_03-04-05"));
        assert!(is_backup_stamp("2024-01-02_03-04-05_001"));
        assert!(!is_backup_stamp("v2.py_2024-01-02_03-04-05"));
        assert!(!is_backup_stamp("2024-01-02"));
    }
}
