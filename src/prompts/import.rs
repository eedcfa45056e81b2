//! `mlab prompts import-original`: a prompt set with the original
//! MLAgentBench's own words, read from the user's checkout of it.
//!
//! mlab does not ship the original's text. This reads it from the Python
//! sources with Python's `ast` module (`import.py`: parsed, never run) and
//! writes a set: the research agent's and the base agent's opening prompts
//! (`initial_prompt` in `agents/agent_research.py` and `agents/agent.py`),
//! the response fields (`format_prompt_dict`), and every action's
//! description, argument texts and return value (the `ActionInfo(...)`
//! calls of `low_level_actions.py` and `high_level_actions.py`), laid out as
//! the original lays out its tool list. The rest (the messages the original
//! builds inside its functions) stays mlab's; ORIGIN.txt in the set says
//! which files are which.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::{escape, scan, ActionTexts, Piece, PromptSet, DEFAULT_FILES};

const SCRIPT: &str = include_str!("import.py");

/// What import.py prints.
#[derive(serde::Deserialize)]
struct Extracted {
    research_prompt: String,
    base_prompt: String,
    fields: BTreeMap<String, String>,
    actions: BTreeMap<String, ActionTexts>,
}

/// The files taken from the checkout; the others are mlab's.
const FROM_ORIGINAL: [&str; 9] = [
    "research_prompt.txt",
    "base_prompt.txt",
    "format_section.txt",
    "format_field.txt",
    "fields.toml",
    "actions.toml",
    "tool_block.txt",
    "tool_arg.txt",
    "tool_separator.txt",
];

/// Reads the checkout at `checkout` with `python` and writes the set into
/// `out` (a new or empty folder). Returns the set as written.
pub fn import_original(checkout: &Path, out: &Path, python: &Path) -> Result<PromptSet> {
    if !checkout.join("MLAgentBench").is_dir() {
        bail!(
            "{} is not a checkout of MLAgentBench: it has no MLAgentBench/ folder (give the folder that `git clone https://github.com/snap-stanford/MLAgentBench` made)",
            checkout.display()
        );
    }
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
    let output = Command::new(python)
        .arg("-I")
        .arg("-c")
        .arg(SCRIPT)
        .arg(checkout)
        .output()
        .with_context(|| {
            format!(
                "could not start {} to read the checkout (run install.sh, or set MLAB_PYTHON)",
                python.display()
            )
        })?;
    if !output.status.success() {
        bail!(
            "could not read the original's prompts from {}: {}",
            checkout.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let got: Extracted = serde_json::from_slice(&output.stdout)
        .context("the reader of the original's sources printed something unexpected")?;
    let files = set_files(got)?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "original".into());
    let set = PromptSet::from_files(&name, files.clone()).context(
        "the texts read from the checkout do not make a usable prompt set (is it a version of MLAgentBench with other actions?)",
    )?;
    std::fs::create_dir_all(out).with_context(|| format!("could not create {}", out.display()))?;
    for (f, text) in &files {
        let path = out.join(f);
        std::fs::write(&path, text)
            .with_context(|| format!("could not write {}", path.display()))?;
    }
    let origin = format!(
        "A prompt set for `mlab run --prompts {}`, written by `mlab prompts import-original {}`.\n\
         From the checkout (its own words): {}.\n\
         mlab's own words (the original builds these inside its functions): the other files.\n\
         SHA-256 of the set: {}\n",
        out.display(),
        checkout.display(),
        FROM_ORIGINAL.join(", "),
        set.hash()
    );
    std::fs::write(out.join("ORIGIN.txt"), origin)
        .with_context(|| format!("could not write {}", out.join("ORIGIN.txt").display()))?;
    Ok(set)
}

/// The set's files (each text with the final newline that loading drops).
fn set_files(got: Extracted) -> Result<BTreeMap<String, String>> {
    let mut files: BTreeMap<String, String> = DEFAULT_FILES
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    let mut put = |name: &str, text: String| {
        files.insert(name.to_string(), text + "\n");
    };
    put(
        "research_prompt.txt",
        opening(&got.research_prompt, "agent_research.py")?,
    );
    put(
        "base_prompt.txt",
        opening(&got.base_prompt, "agents/agent.py")?,
    );
    // The original joins "Field: description" lines with newlines and
    // writes a newline after them in its prompt, which `opening` took in.
    put("format_section.txt", "{fields}".into());
    put("format_field.txt", "{field}: {description}".into());
    // Its tool list: each block ends with a blank line, and blocks follow
    // one another directly.
    put(
        "tool_block.txt",
        "- {name}:\n        {description}\n        Usage:\n        ```\n        Action: {name}\n        Action Input: {{\n{args}        }}\n        Observation: [{return_value}]\n        ```\n\n".into(),
    );
    put(
        "tool_arg.txt",
        "            \"{key}\": [{description}]{comma}".into(),
    );
    put("tool_separator.txt", String::new());
    put(
        "fields.toml",
        toml::to_string(&got.fields).context("could not write fields.toml")?,
    );
    put(
        "actions.toml",
        toml::to_string(&got.actions).context("could not write actions.toml")?,
    );
    Ok(files)
}

/// An `initial_prompt` (a Python format string) as a template of ours.
fn opening(python_template: &str, file: &str) -> Result<String> {
    let mut out = String::new();
    let mut unknown = None;
    scan(python_template, |piece| match piece {
        Piece::Text(t) => out.push_str(&escape(t)),
        Piece::Var("tools_prompt") => out.push_str("{tools}"),
        // The original shows research_problem.txt as it is.
        Piece::Var("task_description") => out.push_str("{problem_raw}"),
        Piece::Var("format_prompt") => out.push_str("{format}"),
        Piece::Var(other) => unknown = Some(other.to_string()),
    });
    if let Some(v) = unknown {
        bail!("{file}: initial_prompt uses {{{v}}}, which mlab has no value for");
    }
    // The field lines end with a newline in mlab's rendering; the
    // original's template writes that newline after {format_prompt}.
    match out.find("{format}\n") {
        Some(i) => out.replace_range(i..i + "{format}\n".len(), "{format}"),
        None => bail!(
            "{file}: initial_prompt has no {{format_prompt}} followed by a line break; this version of MLAgentBench is laid out differently from the one mlab knows"
        ),
    }
    Ok(out)
}

/// Where `mlab prompts import-original` writes when no folder is given.
pub fn default_out() -> PathBuf {
    PathBuf::from("prompts-mlagentbench")
}
