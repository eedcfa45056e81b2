//! Reading a model's text reply: the labelled fields (`Thought: ...`,
//! `Action: ...`) and the JSON object of `Action Input`.
//!
//! Models decorate labels (`**Action:**`, `### Action`, `- Action:`) and
//! write prose before the first one, and their JSON is often almost right
//! (raw newlines inside strings, triple quotes, trailing commas, a code
//! fence around it). Everything here is lenient about the form and strict
//! about the content: every field must be there, and the input's keys must
//! be exactly the action's. Not here: what to do when a reply is unusable
//! (that is each agent's retry policy).

use serde_json::{Map, Value};

use crate::env::catalog::ActionInfo;

/// Finds each of `fields` (in that order) in `text` and returns their
/// values, trimmed, in the same order.
///
/// A label starts a line, possibly after markdown decoration (`#`, `*`,
/// `_`, `>`, `-`), is matched without regard to case, and is followed by
/// a colon (also inside the decoration: `**Action:**`, `**Action**:`); a
/// decorated label alone on its line (`### Action`) needs no colon. When a
/// label occurs several times, the choice matches the original's greedy
/// regular expression: the last field takes its last occurrence, and each
/// earlier field its last occurrence before the next field's, so a
/// "Reflection:" quoted inside the plan does not cut it short. When the
/// fields are not in order at all, each takes its last occurrence.
pub fn parse_entries(text: &str, fields: &[&str]) -> Result<Vec<String>, String> {
    let hits = label_hits(text, fields);
    let chosen = choose_ordered(&hits, fields.len())
        .or_else(|| choose_any_order(&hits, fields.len()))
        .ok_or_else(|| {
            let missing: Vec<&str> = fields
                .iter()
                .enumerate()
                .filter(|(i, _)| !hits.iter().any(|h| h.field == *i))
                .map(|(_, f)| *f)
                .collect();
            if missing.is_empty() {
                "the entries were not in the expected order".to_string()
            } else {
                format!("the reply has no {} entry", missing.join(", no "))
            }
        })?;
    // Values run from the end of their label to the start of the next
    // chosen label (in text order).
    let mut order: Vec<Hit> = chosen;
    order.sort_by_key(|h| h.line_start);
    let mut values = vec![String::new(); fields.len()];
    for (k, h) in order.iter().enumerate() {
        let end = order.get(k + 1).map_or(text.len(), |n| n.line_start);
        values[h.field] = clean_value(&text[h.value_start..end]);
    }
    Ok(values)
}

#[derive(Debug, Clone, Copy)]
struct Hit {
    field: usize,
    /// Byte offset of the line holding the label.
    line_start: usize,
    /// Byte offset where the value begins.
    value_start: usize,
}

fn label_hits(text: &str, fields: &[&str]) -> Vec<Hit> {
    // Longest names first, so "Action Input" is not read as "Action".
    let mut by_len: Vec<usize> = (0..fields.len()).collect();
    by_len.sort_by_key(|&i| std::cmp::Reverse(fields[i].len()));
    let mut hits = Vec::new();
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        if let Some((field, offset)) = label_in_line(line, fields, &by_len) {
            hits.push(Hit {
                field,
                line_start,
                value_start: line_start + offset,
            });
        }
        line_start += line.len();
    }
    hits
}

fn is_decoration(c: char) -> bool {
    matches!(c, '#' | '*' | '_' | '>' | '-' | '`')
}

/// The field a line starts with and where its value begins in the line.
fn label_in_line(line: &str, fields: &[&str], by_len: &[usize]) -> Option<(usize, usize)> {
    let body = line.trim_start_matches(|c: char| c.is_whitespace() || is_decoration(c));
    let decorated = body.len() < line.trim_start().len();
    for &i in by_len {
        let name = fields[i];
        let Some(head) = body.get(..name.len()) else {
            continue;
        };
        if !head.eq_ignore_ascii_case(name) {
            continue;
        }
        let rest = &body[name.len()..];
        if rest.chars().next().is_some_and(|c| c.is_alphanumeric()) {
            continue;
        }
        let after_marks = rest.trim_start_matches(['*', '_', ' ']);
        if let Some(value) = after_marks.strip_prefix(':') {
            let value = value.trim_start_matches(['*', '_']);
            return Some((i, line.len() - value.len()));
        }
        // `### Action` or `**Action**` alone on its line.
        if decorated
            && after_marks
                .trim_matches(|c: char| c.is_whitespace() || is_decoration(c))
                .is_empty()
        {
            return Some((i, line.len()));
        }
    }
    None
}

/// The greedy choice: fields in order, each as late as possible.
fn choose_ordered(hits: &[Hit], n: usize) -> Option<Vec<Hit>> {
    let mut chosen = Vec::with_capacity(n);
    let mut limit = usize::MAX;
    for field in (0..n).rev() {
        let h = hits
            .iter()
            .rev()
            .find(|h| h.field == field && h.line_start < limit)?;
        limit = h.line_start;
        chosen.push(*h);
    }
    chosen.reverse();
    Some(chosen)
}

fn choose_any_order(hits: &[Hit], n: usize) -> Option<Vec<Hit>> {
    (0..n)
        .map(|field| hits.iter().rev().find(|h| h.field == field).copied())
        .collect()
}

/// Trims a value and drops markdown left at its edges by the label
/// (a closing `**`) or by a separator line before the next label.
fn clean_value(raw: &str) -> String {
    let mut v = raw.trim();
    loop {
        let before = v.len();
        v = v.trim_start_matches(['*', '_']).trim();
        if let Some(stripped) = v.strip_suffix("---") {
            v = stripped.trim_end();
        }
        v = v.trim_end_matches(['#', '>']).trim_end();
        if v.len() == before {
            break;
        }
    }
    v.to_string()
}

/// The action an `Action:` value names, matched against `names` exactly,
/// then without regard to case, quotes, backticks or extra spaces.
pub fn action_name<'a>(value: &str, names: &[&'a str]) -> Option<&'a str> {
    let first = value.lines().map(str::trim).find(|l| !l.is_empty())?;
    let norm = |s: &str| -> String {
        s.trim_matches(|c: char| {
            matches!(c, '`' | '*' | '"' | '\'' | '.' | ':') || c.is_whitespace()
        })
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase()
    };
    if let Some(n) = names.iter().find(|n| **n == first) {
        return Some(n);
    }
    let want = norm(first);
    names.iter().copied().find(|n| norm(n) == want)
}

/// Reads an `Action Input` value as the JSON object `info` takes: plain
/// JSON first, then JSON after a sanitising pass, then a lenient reading
/// that finds each usage key in turn. The keys must be exactly the usage's.
pub fn parse_action_input(raw: &str, info: &ActionInfo) -> Result<Map<String, Value>, String> {
    let keys: Vec<&str> = info.usage.iter().map(|a| a.key).collect();
    let text = strip_fence(raw);
    let object = outer_object(text).unwrap_or(text);
    let parsed = serde_json::from_str::<Value>(object)
        .ok()
        .or_else(|| serde_json::from_str::<Value>(&sanitise(object)).ok());
    match parsed {
        Some(Value::Object(map)) => {
            check_keys(&map, &keys, info.name)?;
            check_placeholders(&map, info)?;
            Ok(map)
        }
        Some(other) => Err(format!(
            "the input is JSON but not an object ({}); {} takes an object with the keys {}",
            kind_of(&other),
            info.name,
            quoted(&keys)
        )),
        None => match lenient(object, &keys) {
            Some(map) => {
                check_placeholders(&map, info)?;
                Ok(map)
            }
            None if !object.trim_start().starts_with('{') => Err(format!(
                "the input is not a JSON object; {} takes an object with the keys {}",
                info.name,
                quoted(&keys)
            )),
            None => Err(format!(
                "the input is not valid JSON and not every key of {} ({}) could be found in it",
                info.name,
                quoted(&keys)
            )),
        },
    }
}

/// Fails when a value is the action's usage placeholder: the description
/// the prompt shows in brackets for that key (`[a folder path relative to
/// the workspace; "." is the top folder]`), copied from the example instead
/// of replaced by a real value. Brackets, quotes, case and spacing are not
/// looked at; a bracketed start of the description counts too.
pub fn check_placeholders(map: &Map<String, Value>, info: &ActionInfo) -> Result<(), String> {
    fn norm(s: &str) -> String {
        s.chars()
            .filter(|c| !matches!(c, '[' | ']' | '"' | '\'' | '`'))
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    }
    for arg in info.usage {
        let Some(Value::String(value)) = map.get(arg.key) else {
            continue;
        };
        let v = value.trim();
        let placeholder = norm(arg.description);
        let got = norm(v);
        let bracketed = v.starts_with('[') && v.ends_with(']');
        let copied = got == placeholder
            || (bracketed && got.chars().count() >= 12 && placeholder.starts_with(&got));
        if copied && !got.is_empty() {
            return Err(format!(
                "the value of \"{}\" is the placeholder from the action's description \
                 ([{}]), copied from the example; replace it with a real value",
                arg.key, arg.description
            ));
        }
    }
    Ok(())
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn quoted(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("\"{k}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Fails unless `map` has exactly `keys`.
pub fn check_keys(map: &Map<String, Value>, keys: &[&str], action: &str) -> Result<(), String> {
    let missing: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| !map.contains_key(*k))
        .collect();
    let extra: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| !keys.contains(k))
        .collect();
    if missing.is_empty() && extra.is_empty() {
        return Ok(());
    }
    let mut why = Vec::new();
    if !missing.is_empty() {
        why.push(format!("it lacks {}", quoted(&missing)));
    }
    if !extra.is_empty() {
        why.push(format!("{} is not an input of {action}", quoted(&extra)));
    }
    Err(format!(
        "{}; {action} takes exactly the keys {}",
        why.join(" and "),
        quoted(keys)
    ))
}

/// The text inside a ``` fence, if the value is fenced.
fn strip_fence(raw: &str) -> &str {
    let t = raw.trim();
    let Some(rest) = t.strip_prefix("```") else {
        return t;
    };
    // Drop the info string (`json`) up to the end of the fence line.
    let body = match rest.find('\n') {
        Some(nl) if rest[..nl].trim().chars().all(|c| c.is_alphanumeric()) => &rest[nl + 1..],
        _ => rest.trim_start_matches(|c: char| c.is_alphabetic()),
    };
    match body.rfind("```") {
        Some(end) => body[..end].trim(),
        None => body.trim(),
    }
}

/// The span from the first `{` to the `}` that closes it (strings and
/// escapes respected); `None` without a balanced object.
fn outer_object(text: &str) -> Option<&str> {
    let start = text.find('{')?;
    let mut depth = 0i32;
    let mut in_str = false;
    let mut escaped = false;
    for (i, c) in text[start..].char_indices() {
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[start..start + i + 1]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Repairs the usual slips: triple-quoted strings, raw control characters
/// and stray backslashes inside strings, trailing commas, and a reply in
/// Python's single quotes.
pub fn sanitise(text: &str) -> String {
    let text = if !text.contains('"') {
        text.replace('\'', "\"")
    } else {
        text.to_string()
    };
    let text = triple_quotes(&text);
    let mut out = String::with_capacity(text.len() + 16);
    let mut in_str = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_str {
            match c {
                '\\' => match chars.peek() {
                    Some('"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't' | 'u') => {
                        out.push('\\');
                        out.push(chars.next().unwrap_or('\\'));
                    }
                    _ => out.push_str("\\\\"),
                },
                '"' => {
                    // A quote that does not end the string (the next
                    // non-space character is not `,` `}` `]` or `:`) is
                    // meant literally.
                    let rest: String = chars.clone().take_while(|c| c.is_whitespace()).collect();
                    let next = chars.clone().nth(rest.chars().count());
                    if matches!(next, None | Some(',' | '}' | ']' | ':')) {
                        in_str = false;
                        out.push('"');
                    } else {
                        out.push_str("\\\"");
                    }
                }
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        } else {
            match c {
                '"' => {
                    in_str = true;
                    out.push('"');
                }
                ',' => {
                    let next = chars.clone().find(|c| !c.is_whitespace());
                    if !matches!(next, Some('}' | ']')) {
                        out.push(',');
                    }
                }
                c => out.push(c),
            }
        }
    }
    out
}

/// `"""text"""` becomes a JSON string.
fn triple_quotes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("\"\"\"") {
        let after = &rest[open + 3..];
        let Some(close) = after.find("\"\"\"") else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(&Value::String(after[..close].to_string()).to_string());
        rest = &after[close + 3..];
    }
    out.push_str(rest);
    out
}

/// Finds `"key":` for each key in order; each value runs to the next key
/// (or the closing brace) and loses its surrounding quotes and comma.
fn lenient(text: &str, keys: &[&str]) -> Option<Map<String, Value>> {
    let body = text.trim();
    let body = body.strip_prefix('{').unwrap_or(body);
    let body = body.strip_suffix('}').unwrap_or(body);
    let mut starts = Vec::with_capacity(keys.len());
    let mut from = 0;
    for key in keys {
        let (label_at, value_at) = find_key(body, key, from)?;
        starts.push((label_at, value_at));
        from = value_at;
    }
    let mut map = Map::new();
    for (k, key) in keys.iter().enumerate() {
        let end = starts.get(k + 1).map_or(body.len(), |s| s.0);
        let raw = body[starts[k].1..end].trim();
        let raw = raw.strip_suffix(',').unwrap_or(raw).trim();
        let raw = raw
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .unwrap_or(raw);
        map.insert(key.to_string(), Value::String(unescape(raw)));
    }
    Some(map)
}

/// Where `"key"` (followed by a colon) starts, and where its value starts.
fn find_key(body: &str, key: &str, from: usize) -> Option<(usize, usize)> {
    let needle = format!("\"{key}\"");
    let mut at = from;
    while let Some(i) = body[at..].find(&needle) {
        let start = at + i;
        let after = &body[start + needle.len()..];
        let trimmed = after.trim_start();
        if let Some(value) = trimmed.strip_prefix(':') {
            return Some((start, body.len() - value.len()));
        }
        at = start + needle.len();
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('/') => out.push('/'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usage_placeholder_copied_from_the_example_is_refused_with_a_correction() {
        let info = crate::env::catalog::lookup("List Files").unwrap();
        for raw in [
            r#"{"dir_path": "[a folder path relative to the workspace; \".\" is the top folder]"}"#,
            r#"{"dir_path": "a folder path relative to the workspace; \".\" is the top folder"}"#,
            r#"{"dir_path": "[a folder path relative to the workspace]"}"#,
            // Not JSON at all, as a small model writes it.
            r#"{"dir_path": [a folder path relative to the workspace; "." is the top folder]}"#,
        ] {
            let err = parse_action_input(raw, info).unwrap_err();
            assert!(
                err.contains("placeholder") && err.contains("\"dir_path\""),
                "{raw}: {err}"
            );
        }
        // Real values pass, even ones that share words with the description.
        for ok in [r#"{"dir_path": "."}"#, r#"{"dir_path": "a folder"}"#] {
            assert!(parse_action_input(ok, info).is_ok(), "{ok}");
        }
    }

    use crate::env::catalog::lookup;

    const FIELDS: [&str; 6] = [
        "Reflection",
        "Research Plan and Status",
        "Fact Check",
        "Thought",
        "Action",
        "Action Input",
    ];

    fn edit() -> &'static ActionInfo {
        lookup("Edit Script (AI)").unwrap()
    }

    #[test]
    fn plain_labels_are_read_in_order() {
        let text = "Reflection: none yet\nResearch Plan and Status: 1. look\nFact Check: nothing\nThought: list\nAction: List Files\nAction Input: {\"dir_path\": \".\"}";
        let v = parse_entries(text, &FIELDS).unwrap();
        assert_eq!(v[0], "none yet");
        assert_eq!(v[1], "1. look");
        assert_eq!(v[4], "List Files");
        assert_eq!(v[5], "{\"dir_path\": \".\"}");
    }

    #[test]
    fn markdown_labels_and_a_preamble_are_tolerated() {
        let text = "Sure! Here is my answer.\n\n**Reflection:** fine\n### Research Plan and Status\n1. do it\n**Fact Check**: none\n- Thought: go\n**Action:** `List Files`\n## Action Input:\n```json\n{\"dir_path\": \".\"}\n```\n";
        let v = parse_entries(text, &FIELDS).unwrap();
        assert_eq!(v[0], "fine");
        assert_eq!(v[1], "1. do it");
        assert_eq!(v[2], "none");
        assert_eq!(v[3], "go");
        assert_eq!(
            action_name(&v[4], &["List Files", "Copy File"]),
            Some("List Files")
        );
        let input = parse_action_input(&v[5], lookup("List Files").unwrap()).unwrap();
        assert_eq!(input["dir_path"], ".");
    }

    #[test]
    fn a_label_quoted_inside_an_earlier_value_does_not_cut_it() {
        let text = "Reflection: ok\nResearch Plan and Status: steps\nThought: inside the plan\nFact Check: none\nThought: real\nAction: Final Answer\nAction Input: {\"final_answer\": \"x\"}";
        let v = parse_entries(text, &FIELDS).unwrap();
        assert!(v[1].contains("inside the plan"), "{v:?}");
        assert_eq!(v[3], "real");
    }

    #[test]
    fn a_missing_field_is_named() {
        let text = "Reflection: a\nThought: b\nAction: List Files\nAction Input: {}";
        let err = parse_entries(text, &FIELDS).unwrap_err();
        assert!(err.contains("Research Plan and Status"), "{err}");
        assert!(err.contains("Fact Check"), "{err}");
    }

    #[test]
    fn words_that_only_begin_like_a_label_are_not_labels() {
        let text = "Actions: none\nAction: Copy File\nAction Input: {\"source\": \"a\", \"destination\": \"b\"}";
        let v = parse_entries(text, &["Action", "Action Input"]).unwrap();
        assert_eq!(v[0], "Copy File");
    }

    #[test]
    fn action_names_match_loosely_but_not_wrongly() {
        let names = ["List Files", "Edit Script (AI)", "Edit Script Segment (AI)"];
        assert_eq!(
            action_name("**edit script (ai)**", &names),
            Some("Edit Script (AI)")
        );
        assert_eq!(action_name("`List  Files`.", &names), Some("List Files"));
        assert_eq!(action_name("Delete Files", &names), None);
    }

    #[test]
    fn broken_json_is_repaired_by_sanitising() {
        let raw = "{\n  \"script_name\": \"train.py\",\n  \"edit_instruction\": \"line one\nline \"two\" with C:\\path\",\n  \"save_name\": \"train.py\",\n}";
        let m = parse_action_input(raw, edit()).unwrap();
        assert_eq!(
            m["edit_instruction"],
            "line one\nline \"two\" with C:\\path"
        );
        let triple = "{\"script_name\": \"a.py\", \"edit_instruction\": \"\"\"add\n\"quoted\" lines\"\"\", \"save_name\": \"a.py\"}";
        let m = parse_action_input(triple, edit()).unwrap();
        assert_eq!(m["edit_instruction"], "add\n\"quoted\" lines");
    }

    #[test]
    fn the_lenient_reading_finds_keys_in_hopeless_json() {
        let raw = "{ \"script_name\": train.py, \"edit_instruction\": \"use {a: 1} ok\", \"save_name\": \"out.py\" ";
        let m = parse_action_input(raw, edit()).unwrap();
        assert_eq!(m["script_name"], "train.py");
        assert_eq!(m["edit_instruction"], "use {a: 1} ok");
        assert_eq!(m["save_name"], "out.py");
    }

    #[test]
    fn keys_must_match_the_usage_exactly() {
        let err = parse_action_input(
            "{\"script\": \"train.py\"}",
            lookup("Execute Script").unwrap(),
        )
        .unwrap_err();
        assert!(err.contains("\"script_name\""), "{err}");
        let err = parse_action_input(
            "{\"script_name\": \"a.py\", \"extra\": 1}",
            lookup("Execute Script").unwrap(),
        )
        .unwrap_err();
        assert!(err.contains("\"extra\""), "{err}");
        assert!(parse_action_input("just words", lookup("Execute Script").unwrap()).is_err());
        assert!(parse_action_input("[1, 2]", lookup("Execute Script").unwrap()).is_err());
    }

    #[test]
    fn python_style_quotes_and_trailing_prose_are_accepted() {
        let m = parse_action_input(
            "{'dir_path': 'data'}  then I will look",
            lookup("List Files").unwrap(),
        )
        .unwrap();
        assert_eq!(m["dir_path"], "data");
    }
}
