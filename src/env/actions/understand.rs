//! Understand File: the fast model reads a file in blocks of under 10,000
//! characters and reports on what the agent asked about; with several
//! blocks, one more call merges the per-block reports.
//!
//! Fixed on purpose: each block's position (first and last line and
//! character) is computed correctly, and the merge prompt numbers the
//! segments (the original sent a literal "{idx}").

use serde_json::{Map, Value};

use super::{complete, files, text_arg, ActionError, Ctx, Role};
use crate::env::catalog::UNDERSTAND_FILE;

/// A block holds fewer characters than this.
pub const BLOCK_CHARS: usize = 10_000;

/// A piece of the file with its position: 1-based lines, 1-based
/// character columns, inclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub text: String,
    pub start_line: usize,
    pub start_char: usize,
    pub end_line: usize,
    pub end_char: usize,
}

/// Packs whole lines into blocks of fewer than `limit` characters; a line
/// that alone reaches the limit is cut into pieces.
pub fn blocks(text: &str, limit: usize) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    let mut cur: Option<Block> = None;
    let mut cur_len = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let line_no = i + 1;
        let chars: Vec<char> = line.chars().collect();
        if chars.len() >= limit {
            if let Some(b) = cur.take() {
                out.push(b);
                cur_len = 0;
            }
            for (k, piece) in chars.chunks(limit - 1).enumerate() {
                let start = k * (limit - 1) + 1;
                out.push(Block {
                    text: piece.iter().collect(),
                    start_line: line_no,
                    start_char: start,
                    end_line: line_no,
                    end_char: start + piece.len() - 1,
                });
            }
            continue;
        }
        if cur_len + chars.len() >= limit {
            if let Some(b) = cur.take() {
                out.push(b);
                cur_len = 0;
            }
        }
        let b = cur.get_or_insert_with(|| Block {
            text: String::new(),
            start_line: line_no,
            start_char: 1,
            end_line: line_no,
            end_char: 1,
        });
        b.text.push_str(line);
        b.end_line = line_no;
        b.end_char = chars.len().max(1);
        cur_len += chars.len();
    }
    if let Some(b) = cur {
        out.push(b);
    }
    out
}

pub fn understand_file(args: &Map<String, Value>, ctx: &mut Ctx) -> Result<String, ActionError> {
    let file_name = text_arg(args, "file_name")?;
    let looking_for = text_arg(args, "things_to_look_for")?;
    let text = files::read_text(ctx, &file_name)?;
    let parts = blocks(&text, BLOCK_CHARS);
    if parts.is_empty() {
        return Ok(format!("{file_name} is empty."));
    }
    let mut answers = Vec::new();
    for (idx, b) in parts.iter().enumerate() {
        let prompt = format!(
            "Below is part of the file {file_name}, from line {} (character {}) to line {} (character {}):\n```\n{}\n```\n\
             Read it and report on this request: {looking_for}\n\
             Be brief, and name the lines that support each point. If this part holds nothing on a point, \
             say \"In this segment, I cannot find\" followed by what is missing; do not guess.",
            b.start_line, b.start_char, b.end_line, b.end_char, b.text
        );
        let log = suffixed(&ctx.tool_log, idx);
        answers.push(complete(ctx, UNDERSTAND_FILE, Role::Fast, prompt, log)?);
    }
    if let [answer] = answers.as_mut_slice() {
        return Ok(std::mem::take(answer));
    }
    let mut joined = String::new();
    for (idx, a) in answers.iter().enumerate() {
        joined.push_str(&format!("Segment {}:\n{a}\n\n", idx + 1));
    }
    let prompt = format!(
        "The file {file_name} was read in {} consecutive segments, each checked for this request: {looking_for}\n\
         Here is what was found in each segment:\n\n{joined}\
         Combine these into one coherent description of the whole file that answers the request, \
         keeping the line references.",
        answers.len()
    );
    complete(
        ctx,
        UNDERSTAND_FILE,
        Role::Fast,
        prompt,
        ctx.tool_log.clone(),
    )
}

/// `<log>_<idx>`, the original's name for the per-block transcripts.
fn suffixed(log: &std::path::Path, idx: usize) -> std::path::PathBuf {
    let mut name = log.file_name().unwrap_or_default().to_os_string();
    name.push(format!("_{idx}"));
    log.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_pack_whole_lines_and_report_positions() {
        let text = "aaaa\nbbbb\ncccc\n";
        let b = blocks(text, 12);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].text, "aaaa\nbbbb\n");
        assert_eq!((b[0].start_line, b[0].end_line), (1, 2));
        assert_eq!((b[1].start_line, b[1].end_line), (3, 3));
        assert_eq!(b[1].end_char, 5);
        let joined: String = b.iter().map(|x| x.text.as_str()).collect();
        assert_eq!(joined, text);
    }

    #[test]
    fn a_line_longer_than_a_block_is_cut_with_correct_columns() {
        let long = "x".repeat(25);
        let text = format!("short\n{long}\nend");
        let b = blocks(&text, 10);
        assert_eq!(b[0].text, "short\n");
        assert_eq!((b[1].start_line, b[1].start_char, b[1].end_char), (2, 1, 9));
        assert_eq!((b[2].start_char, b[2].end_char), (10, 18));
        assert!(b.iter().all(|x| x.text.chars().count() < 10));
        let joined: String = b.iter().map(|x| x.text.as_str()).collect();
        assert_eq!(joined, text);
    }
}
