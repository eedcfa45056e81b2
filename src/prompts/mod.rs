//! Prompt sets: the words the model-driven agents show the model, as data.
//!
//! A prompt set is a folder of text templates and two TOML tables (see
//! [`FILES`] and docs/prompts.md): the research agent's and the lighter
//! agents' opening prompts, the response-format section, the block that
//! describes each action, the texts of every action (description, what each
//! argument takes, what comes back), the message after an unusable reply,
//! the input-error message and the fast model's summary prompts. mlab's own
//! set is `src/prompts/default/`, built into the binary; `mlab run
//! --prompts DIR` runs with another (every file must be there), and `mlab
//! prompts import-original` writes one from a checkout of the original.
//!
//! Templates use one syntax: `{name}` is replaced by the value called
//! `name` (each file allows its own names, listed in [`FILES`]), `{{` and
//! `}}` stand for `{` and `}`, and any other brace is kept as it is. One
//! final newline of a file is dropped, so that editors that add one do not
//! change the prompt.
//!
//! What stays in the code: action names and argument keys, response field
//! names, and the layout the parsers rely on (the
//! `ActionInputParsingError` prefix, the `[Observation]:` marker).

pub mod import;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{LazyLock, Mutex};

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::env::catalog::{ActionInfo, Arg, ACTIONS};

/// Every file of a prompt set, with the placeholders its template may use
/// (the two `.toml` files are tables, not templates).
pub const FILES: [(&str, &[&str]); 19] = [
    (
        "research_prompt.txt",
        &["tools", "problem", "problem_raw", "format"],
    ),
    (
        "base_prompt.txt",
        &["tools", "problem", "problem_raw", "format"],
    ),
    ("format_section.txt", &["fields"]),
    ("format_field.txt", &["field", "description"]),
    ("fields.toml", &[]),
    ("actions.toml", &[]),
    (
        "tool_block.txt",
        &["name", "description", "args", "return_value"],
    ),
    (
        "tool_arg.txt",
        &["key", "description", "description_json", "comma"],
    ),
    ("tool_separator.txt", &[]),
    ("usage.txt", &["args"]),
    (
        "usage_arg.txt",
        &["key", "description", "description_json", "comma"],
    ),
    ("invalid_input.txt", &["name", "usage"]),
    ("begin.txt", &[]),
    ("retrieval_context.txt", &["summary", "window"]),
    ("correction.txt", &["why", "fields"]),
    ("summarize_block.txt", &["action", "from", "to", "text"]),
    ("summarize_part.txt", &["n", "summary"]),
    ("summarize_merge.txt", &["action", "parts"]),
    ("step_summary.txt", &["reply", "observation"]),
];

/// The response fields a set describes (the research agent's six).
pub const FIELD_NAMES: [&str; 6] = [
    "Reflection",
    "Research Plan and Status",
    "Fact Check",
    "Thought",
    "Action",
    "Action Input",
];

/// The name of mlab's own set.
pub const DEFAULT_NAME: &str = "mlab";

macro_rules! default_files {
    ($($f:literal),* $(,)?) => {
        [$(($f, include_str!(concat!("default/", $f)))),*]
    };
}

/// mlab's own set, built into the binary.
const DEFAULT_FILES: [(&str, &str); 19] = default_files!(
    "research_prompt.txt",
    "base_prompt.txt",
    "format_section.txt",
    "format_field.txt",
    "fields.toml",
    "actions.toml",
    "tool_block.txt",
    "tool_arg.txt",
    "tool_separator.txt",
    "usage.txt",
    "usage_arg.txt",
    "invalid_input.txt",
    "begin.txt",
    "retrieval_context.txt",
    "correction.txt",
    "summarize_block.txt",
    "summarize_part.txt",
    "summarize_merge.txt",
    "step_summary.txt",
);

/// A loaded, checked prompt set.
pub struct PromptSet {
    name: String,
    hash: String,
    /// Template files by name, final newline dropped.
    texts: BTreeMap<String, String>,
    fields: BTreeMap<String, String>,
    /// The action table with this set's texts, in the table's order.
    actions: &'static [ActionInfo],
}

impl std::fmt::Debug for PromptSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromptSet")
            .field("name", &self.name)
            .field("hash", &self.hash)
            .finish()
    }
}

static DEFAULT: LazyLock<std::sync::Arc<PromptSet>> = LazyLock::new(|| {
    let files = DEFAULT_FILES
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    match PromptSet::from_files(DEFAULT_NAME, files) {
        Ok(set) => std::sync::Arc::new(set),
        // The built-in set is checked by the tests; a broken one is a
        // build mistake, not something a user can fix.
        Err(e) => panic!("mlab's built-in prompt set is broken: {e:#}"),
    }
});

/// mlab's own set.
pub fn default_set() -> std::sync::Arc<PromptSet> {
    DEFAULT.clone()
}

impl PromptSet {
    /// Reads the set in `dir`; every file of [`FILES`] must be there. Its
    /// name is the folder's name.
    pub fn load(dir: &Path) -> Result<PromptSet> {
        if !dir.is_dir() {
            bail!(
                "--prompts {}: not a folder; give a folder holding a prompt set (mlab's own is src/prompts/default in the source; `mlab prompts import-original` writes one)",
                dir.display()
            );
        }
        let mut files = BTreeMap::new();
        for (f, _) in FILES {
            let path = dir.join(f);
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "the prompt set {} has no readable {f}; a set needs every one of these files: {} (copy the missing one from src/prompts/default)",
                    dir.display(),
                    FILES.map(|(n, _)| n).join(", ")
                )
            })?;
            files.insert(f.to_string(), text);
        }
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| dir.display().to_string());
        PromptSet::from_files(&name, files)
            .with_context(|| format!("the prompt set {} cannot be used", dir.display()))
    }

    /// Checks and builds a set from its files' texts.
    pub fn from_files(name: &str, files: BTreeMap<String, String>) -> Result<PromptSet> {
        let mut hasher = Sha256::new();
        let mut texts = BTreeMap::new();
        for (f, allowed) in FILES {
            let raw = files
                .get(f)
                .ok_or_else(|| anyhow!("{f} is missing from the prompt set"))?;
            hasher.update(f.as_bytes());
            hasher.update([0]);
            hasher.update(raw.as_bytes());
            hasher.update([0]);
            let text = raw.strip_suffix('\n').unwrap_or(raw).to_string();
            if f.ends_with(".txt") {
                for p in placeholders(&text) {
                    if !allowed.contains(&p.as_str()) {
                        bail!(
                            "{f} uses {{{p}}}, which it cannot; its placeholders are: {} (write {{{{ and }}}} for literal braces)",
                            if allowed.is_empty() { "none".to_string() } else { allowed.iter().map(|a| format!("{{{a}}}")).collect::<Vec<_>>().join(", ") }
                        );
                    }
                }
            }
            texts.insert(f.to_string(), text);
        }
        let hash = format!("{:x}", hasher.finalize());
        let fields: BTreeMap<String, String> = toml::from_str(&texts["fields.toml"])
            .context("fields.toml is not a TOML table of field name = \"description\"")?;
        for f in FIELD_NAMES {
            if !fields.contains_key(f) {
                bail!("fields.toml has no description for the field \"{f}\"");
            }
        }
        if let Some(extra) = fields.keys().find(|k| !FIELD_NAMES.contains(&k.as_str())) {
            bail!(
                "fields.toml describes \"{extra}\", which is not a response field; the fields are: {}",
                FIELD_NAMES.join(", ")
            );
        }
        let actions = action_table(&texts["actions.toml"], &hash)?;
        Ok(PromptSet {
            name: name.to_string(),
            hash,
            texts,
            fields,
            actions,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 over the set's files (names and exact texts), hex.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Whether this set is word for word mlab's own (whatever its name).
    pub fn is_default(&self) -> bool {
        self.hash == DEFAULT.hash
    }

    /// Every action, with this set's texts, in the table's order.
    pub fn actions(&self) -> &'static [ActionInfo] {
        self.actions
    }

    /// The action called `name`, with this set's texts.
    pub fn action(&self, name: &str) -> Option<&'static ActionInfo> {
        self.actions.iter().find(|a| a.name == name)
    }

    /// The template `file` with `vars` filled in.
    pub fn render(&self, file: &str, vars: &[(&str, &str)]) -> String {
        render(self.texts.get(file).map(String::as_str).unwrap_or(""), vars)
    }

    /// What the model should write under a response field.
    pub fn field_description(&self, field: &str) -> &str {
        self.fields.get(field).map(String::as_str).unwrap_or("")
    }

    /// One action as the prompt describes it.
    pub fn tool_block(&self, info: &ActionInfo) -> String {
        let args = self.arg_lines("tool_arg.txt", info.usage);
        self.render(
            "tool_block.txt",
            &[
                ("name", info.name),
                ("description", info.description),
                ("args", &args),
                ("return_value", info.return_value),
            ],
        )
    }

    /// An action's usage: each key with what it takes.
    pub fn usage_text(&self, info: &ActionInfo) -> String {
        let args = self.arg_lines("usage_arg.txt", info.usage);
        self.render("usage.txt", &[("args", &args)])
    }

    /// The message for an action input that is not what the action takes.
    pub fn invalid_input(&self, info: &ActionInfo) -> String {
        let usage = self.usage_text(info);
        self.render(
            "invalid_input.txt",
            &[("name", info.name), ("usage", &usage)],
        )
    }

    fn arg_lines(&self, file: &str, usage: &[Arg]) -> String {
        let mut s = String::new();
        for (i, arg) in usage.iter().enumerate() {
            let comma = if i + 1 < usage.len() { "," } else { "" };
            let json = serde_json::to_string(arg.description).unwrap_or_default();
            s.push_str(&self.render(
                file,
                &[
                    ("key", arg.key),
                    ("description", arg.description),
                    ("description_json", &json),
                    ("comma", comma),
                ],
            ));
            // One final newline is dropped from each file; an argument
            // line is a line.
            s.push('\n');
        }
        s
    }
}

/// Writes mlab's own set into `out` (a new or empty folder).
pub fn export_default(out: &Path) -> Result<()> {
    if out.exists()
        && std::fs::read_dir(out)
            .with_context(|| format!("could not read {}", out.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} already exists and is not empty; give a new folder (nothing in it is replaced)",
            out.display()
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("could not create {}", out.display()))?;
    for (f, text) in DEFAULT_FILES {
        let path = out.join(f);
        std::fs::write(&path, text)
            .with_context(|| format!("could not write {}", path.display()))?;
    }
    Ok(())
}

/// The placeholders a template uses, in order.
pub fn placeholders(template: &str) -> Vec<String> {
    let mut found = Vec::new();
    scan(template, |piece| {
        if let Piece::Var(name) = piece {
            found.push(name.to_string());
        }
    });
    found
}

/// Fills `{name}` placeholders; `{{` and `}}` are literal braces; a
/// placeholder without a value is left as written.
pub fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    scan(template, |piece| match piece {
        Piece::Text(t) => out.push_str(t),
        Piece::Var(name) => match vars.iter().find(|(k, _)| *k == name) {
            Some((_, v)) => out.push_str(v),
            None => {
                out.push('{');
                out.push_str(name);
                out.push('}');
            }
        },
    });
    out
}

/// Writes `text` so that a template shows it word for word.
pub fn escape(text: &str) -> String {
    text.replace('{', "{{").replace('}', "}}")
}

enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

fn scan<'a>(template: &'a str, mut each: impl FnMut(Piece<'a>)) {
    let b = template.as_bytes();
    let mut i = 0;
    let mut start = 0;
    while i < b.len() {
        let c = b[i];
        if (c == b'{' || c == b'}') && b.get(i + 1) == Some(&c) {
            each(Piece::Text(&template[start..i + 1]));
            i += 2;
            start = i;
            continue;
        }
        if c == b'{' {
            let name_len = b[i + 1..]
                .iter()
                .take_while(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || **x == b'_')
                .count();
            if name_len > 0 && b.get(i + 1 + name_len) == Some(&b'}') {
                each(Piece::Text(&template[start..i]));
                each(Piece::Var(&template[i + 1..i + 1 + name_len]));
                i += name_len + 2;
                start = i;
                continue;
            }
        }
        i += 1;
    }
    each(Piece::Text(&template[start..]));
}

/// One action's texts in actions.toml.
#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct ActionTexts {
    description: String,
    return_value: String,
    usage: BTreeMap<String, String>,
}

/// Tables already built, by set hash: each is built once per process.
static TABLES: LazyLock<Mutex<BTreeMap<String, &'static [ActionInfo]>>> =
    LazyLock::new(|| Mutex::new(BTreeMap::new()));

/// The action table with the texts of actions.toml; every action and every
/// argument must be described, and nothing else.
fn action_table(toml_text: &str, hash: &str) -> Result<&'static [ActionInfo]> {
    let mut texts: BTreeMap<String, ActionTexts> = toml::from_str(toml_text).context(
        "actions.toml is not a table of [\"Action Name\"] sections with description, return_value and a usage table",
    )?;
    if let Ok(tables) = TABLES.lock() {
        if let Some(t) = tables.get(hash) {
            return Ok(t);
        }
    }
    let mut table = Vec::with_capacity(ACTIONS.len());
    for a in ACTIONS.iter() {
        let Some(mut t) = texts.remove(a.name) else {
            bail!("actions.toml has no [\"{}\"] section", a.name);
        };
        let mut usage = Vec::with_capacity(a.usage.len());
        for arg in a.usage {
            let Some(d) = t.usage.remove(arg.key) else {
                bail!(
                    "actions.toml: [\"{}\".usage] has no entry for the argument {}",
                    a.name,
                    arg.key
                );
            };
            usage.push(Arg {
                description: leak(d),
                ..*arg
            });
        }
        if let Some(k) = t.usage.keys().next() {
            bail!(
                "actions.toml: [\"{}\".usage] has {k}, which is not one of its arguments ({})",
                a.name,
                a.usage.iter().map(|u| u.key).collect::<Vec<_>>().join(", ")
            );
        }
        table.push(ActionInfo {
            description: leak(t.description),
            return_value: leak(t.return_value),
            usage: Box::leak(usage.into_boxed_slice()),
            ..*a
        });
    }
    if let Some(k) = texts.keys().next() {
        bail!(
            "actions.toml has a section [\"{k}\"], which is not an action; the actions are: {}",
            ACTIONS
                .iter()
                .map(|a| a.name)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let table: &'static [ActionInfo] = Box::leak(table.into_boxed_slice());
    if let Ok(mut tables) = TABLES.lock() {
        tables.insert(hash.to_string(), table);
    }
    Ok(table)
}

/// Action texts live as long as the process (each set's table is built
/// once), like the built-in table they replace.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[cfg(test)]
mod tests;
