//! The action table: the 17 actions an agent can take, defined once.
//!
//! Names and argument keys are the original MLAgentBench's, exactly, so that
//! its agents, traces and analysis carry over. The descriptions, usage texts
//! and return-value texts are ours. Agents render their prompts and their
//! JSON-schema tools from this table; the environment dispatches on it and
//! writes it into `trace.json` as `action_infos`. Behaviour lives in
//! `env/actions/`, not here.

use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Deserialize, Serialize, Serializer};

/// What kind of JSON value an argument takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    Text,
    /// A line number; a string holding digits is accepted too.
    Integer,
}

/// One argument of an action: its exact JSON key and what to put there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arg {
    pub key: &'static str,
    pub description: &'static str,
    pub kind: ArgKind,
}

/// Which family an action belongs to (one file in `env/actions/` each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Files,
    Exec,
    Repl,
    Control,
    Understand,
    Edit,
    ResearchLog,
}

/// One action of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionInfo {
    /// The exact name an agent calls it by.
    pub name: &'static str,
    pub description: &'static str,
    /// Argument keys in the order they are shown.
    pub usage: &'static [Arg],
    pub return_value: &'static str,
    /// The original's Python function name (kept in trace.json).
    pub function: &'static str,
    /// A low-level (primitive) action; high-level ones are built on them.
    pub is_primitive: bool,
    /// Calls a language model (the fast or the edit model).
    pub uses_llm: bool,
    pub family: Family,
}

const fn text(key: &'static str, description: &'static str) -> Arg {
    Arg {
        key,
        description,
        kind: ArgKind::Text,
    }
}

const fn int(key: &'static str, description: &'static str) -> Arg {
    Arg {
        key,
        description,
        kind: ArgKind::Integer,
    }
}

pub const LIST_FILES: &str = "List Files";
pub const READ_FILE: &str = "Read File";
pub const WRITE_FILE: &str = "Write File";
pub const APPEND_FILE: &str = "Append File";
pub const COPY_FILE: &str = "Copy File";
pub const UNDO_EDIT_SCRIPT: &str = "Undo Edit Script";
pub const EXECUTE_SCRIPT: &str = "Execute Script";
pub const PYTHON_REPL: &str = "Python REPL";
pub const REQUEST_HELP: &str = "Request Help";
/// Not an action agents can take: the name of the step that records an
/// instruction typed by the person at the terminal (`--interactive`,
/// Ctrl-\).
pub const HUMAN_INSTRUCTION: &str = "Human Instruction";
pub const FINAL_ANSWER: &str = "Final Answer";
pub const UNDERSTAND_FILE: &str = "Understand File";
pub const APPEND_SUMMARY: &str = "Append Summary to Research Log";
pub const INSPECT_SCRIPT_LINES: &str = "Inspect Script Lines";
pub const EDIT_SCRIPT: &str = "Edit Script (AI)";
pub const EDIT_SCRIPT_SEGMENT: &str = "Edit Script Segment (AI)";
pub const REFLECTION: &str = "Reflection";
pub const RETRIEVAL: &str = "Retrieval from Research Log";

/// Every action, low-level ones first, in the original's order.
pub static ACTIONS: [ActionInfo; 17] = [
    ActionInfo {
        name: LIST_FILES,
        description: "Show what a folder of the workspace contains.",
        usage: &[text(
            "dir_path",
            "a folder path relative to the workspace; \".\" is the top folder",
        )],
        return_value: "One entry per line. Folders end with \"/\", executables with \"*\" and links with \"@\".",
        function: "list_files",
        is_primitive: true,
        uses_llm: false,
        family: Family::Files,
    },
    ActionInfo {
        name: READ_FILE,
        description: "Return the whole text of a file in the workspace.",
        usage: &[text("file_name", "a file path relative to the workspace")],
        return_value: "The text of the file (very long files are shortened in the middle).",
        function: "read_file",
        is_primitive: true,
        uses_llm: false,
        family: Family::Files,
    },
    ActionInfo {
        name: WRITE_FILE,
        description: "Replace the text of a file in the workspace, creating it (and its folders) if needed.",
        usage: &[
            text("file_name", "a file path relative to the workspace"),
            text("content", "the complete new text of the file"),
        ],
        return_value: "A line saying that the file was written.",
        function: "write_file",
        is_primitive: true,
        uses_llm: false,
        family: Family::Files,
    },
    ActionInfo {
        name: APPEND_FILE,
        description: "Add text at the end of a file in the workspace, creating it if needed.",
        usage: &[
            text("file_name", "a file path relative to the workspace"),
            text("content", "the text to add at the end"),
        ],
        return_value: "A line saying that the text was appended.",
        function: "append_file",
        is_primitive: true,
        uses_llm: false,
        family: Family::Files,
    },
    ActionInfo {
        name: COPY_FILE,
        description: "Duplicate a file of the workspace under another path, for example to keep a version of a script before changing it.",
        usage: &[
            text("source", "path of the existing file, relative to the workspace"),
            text("destination", "path of the new copy, relative to the workspace"),
        ],
        return_value: "A line saying where the file was copied.",
        function: "copy_file",
        is_primitive: true,
        uses_llm: false,
        family: Family::Files,
    },
    ActionInfo {
        name: UNDO_EDIT_SCRIPT,
        description: "Put a script back the way it was before its most recent Edit Script (AI) or Edit Script Segment (AI).",
        usage: &[text("script_name", "path of the edited script, relative to the workspace")],
        return_value: "The text of the script after the edit was taken back, or a note that there was nothing to take back.",
        function: "undo_edit_script",
        is_primitive: true,
        uses_llm: false,
        family: Family::Edit,
    },
    ActionInfo {
        name: EXECUTE_SCRIPT,
        description: "Run a Python script of the workspace with `python -u`, inside the workspace folder.",
        usage: &[text("script_name", "path of the script, relative to the workspace (e.g. train.py)")],
        return_value: "What the script printed: its standard output, or its error output when it failed. Long output is shortened in the middle.",
        function: "execute_script",
        is_primitive: true,
        uses_llm: false,
        family: Family::Exec,
    },
    ActionInfo {
        name: PYTHON_REPL,
        description: "Run a few lines of Python in a session that keeps its variables from one call to the next; the current folder is the workspace.",
        usage: &[text("command", "the Python code to run")],
        return_value: "What the code printed, or the error it raised.",
        function: "python_repl",
        is_primitive: true,
        uses_llm: false,
        family: Family::Repl,
    },
    ActionInfo {
        name: REQUEST_HELP,
        description: "Ask the person supervising this run a question and wait for their reply.",
        usage: &[text("request", "what you need help with, stated so a person can act on it")],
        return_value: "The person's reply.",
        function: "request_help",
        is_primitive: true,
        uses_llm: false,
        family: Family::Control,
    },
    ActionInfo {
        name: FINAL_ANSWER,
        description: "Finish the task. Use it once, when the goal is met and the result is saved where the task asks for it.",
        usage: &[text("final_answer", "what you achieved and where the result is")],
        return_value: "Nothing; the run ends.",
        function: "<lambda>",
        is_primitive: true,
        uses_llm: false,
        family: Family::Control,
    },
    ActionInfo {
        name: UNDERSTAND_FILE,
        description: "Have a helper model read a whole file and report on what you ask about, so you need not read it all yourself.",
        usage: &[
            text("file_name", "a file path relative to the workspace"),
            text("things_to_look_for", "precisely what to find or summarise in the file"),
        ],
        return_value: "A description of what was found, with the relevant lines cited.",
        function: "understand_file",
        is_primitive: false,
        uses_llm: true,
        family: Family::Understand,
    },
    ActionInfo {
        name: APPEND_SUMMARY,
        description: "Add a note to research_log.log, the running record of this research.",
        usage: &[text("content", "the note to add")],
        return_value: "A line saying that the note was added.",
        function: "append_to_research_log",
        is_primitive: false,
        uses_llm: false,
        family: Family::ResearchLog,
    },
    ActionInfo {
        name: INSPECT_SCRIPT_LINES,
        description: "Show a range of lines of a script (at most 100 lines at a time).",
        usage: &[
            text("script_name", "path of the script, relative to the workspace"),
            int("start_line_number", "the first line to show, counting from 1"),
            int("end_line_number", "the last line to show"),
        ],
        return_value: "The lines asked for, with the script's total number of lines.",
        function: "inspect_script_lines",
        is_primitive: false,
        uses_llm: false,
        family: Family::Edit,
    },
    ActionInfo {
        name: EDIT_SCRIPT,
        description: "Have a helper model rewrite a script by following your instruction. The old version is kept for Undo Edit Script. A missing script starts out empty.",
        usage: &[
            text("script_name", "path of the script to change, relative to the workspace"),
            text("edit_instruction", "the change to make, described precisely, step by step"),
            text("save_name", "path where the changed script is saved"),
        ],
        return_value: "The unified diff between the old and the new script; check that the change is the one you meant.",
        function: "edit_script",
        is_primitive: false,
        uses_llm: true,
        family: Family::Edit,
    },
    ActionInfo {
        name: EDIT_SCRIPT_SEGMENT,
        description: "Like Edit Script (AI), but the helper model sees and rewrites only a range of lines; the rest of the script stays as it is.",
        usage: &[
            text("script_name", "path of the script to change, relative to the workspace"),
            int("start_line_number", "the first line of the range, counting from 1"),
            int("end_line_number", "the last line of the range"),
            text("edit_instruction", "the change to make, described precisely, step by step"),
            text("save_name", "path where the changed script is saved"),
        ],
        return_value: "The unified diff between the old and the new script; check that the change is the one you meant.",
        function: "edit_script_lines",
        is_primitive: false,
        uses_llm: true,
        family: Family::Edit,
    },
    ActionInfo {
        name: REFLECTION,
        description: "Have a helper model think over the research so far, as recorded in research_log.log.",
        usage: &[text("things_to_reflect_on", "what to think about, e.g. why a result is poor and what to try next")],
        return_value: "The reflection.",
        function: "reflection",
        is_primitive: false,
        uses_llm: true,
        family: Family::ResearchLog,
    },
    ActionInfo {
        name: RETRIEVAL,
        description: "Have a helper model pick out of research_log.log what matters for the current plan.",
        usage: &[text("current_plan", "the plan you are following now")],
        return_value: "The parts of the research log that bear on the plan, summarised.",
        function: "retrieval_from_research_log",
        is_primitive: false,
        uses_llm: true,
        family: Family::ResearchLog,
    },
];

/// The action called `name`, if there is one.
pub fn lookup(name: &str) -> Option<&'static ActionInfo> {
    ACTIONS.iter().find(|a| a.name == name)
}

/// The actions a run offers: all of them, but Request Help only when a
/// person is there to answer (`--interactive`), as in the original.
pub fn enabled(interactive: bool) -> Vec<&'static ActionInfo> {
    ACTIONS
        .iter()
        .filter(|a| interactive || a.name != REQUEST_HELP)
        .collect()
}

impl ActionInfo {
    /// A JSON schema of the arguments, for native tool calling.
    pub fn json_schema(&self) -> serde_json::Value {
        let mut props = serde_json::Map::new();
        for arg in self.usage {
            let ty = match arg.kind {
                ArgKind::Text => "string",
                ArgKind::Integer => "integer",
            };
            props.insert(
                arg.key.to_string(),
                serde_json::json!({"type": ty, "description": arg.description}),
            );
        }
        let required: Vec<&str> = self.usage.iter().map(|a| a.key).collect();
        serde_json::json!({
            "type": "object",
            "properties": props,
            "required": required,
        })
    }

    /// The usage as a JSON object text, keys in order, each mapped to its
    /// description in brackets (how the original shows an action's input).
    pub fn usage_text(&self) -> String {
        let mut s = String::from("{\n");
        for (i, arg) in self.usage.iter().enumerate() {
            let sep = if i + 1 < self.usage.len() { "," } else { "" };
            s.push_str(&format!(
                "    \"{}\": [{}]{sep}\n",
                arg.key, arg.description
            ));
        }
        s.push('}');
        s
    }
}

/// Serialised as the original's `ActionInfo` dataclass (trace.json), with
/// `usage` keys kept in table order.
impl Serialize for ActionInfo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Usage(&'static [Arg]);
        impl Serialize for Usage {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for a in self.0 {
                    m.serialize_entry(a.key, a.description)?;
                }
                m.end()
            }
        }
        let mut st = s.serialize_struct("ActionInfo", 6)?;
        st.serialize_field("name", self.name)?;
        st.serialize_field("description", self.description)?;
        st.serialize_field("usage", &Usage(self.usage))?;
        st.serialize_field("return_value", self.return_value)?;
        st.serialize_field("function", self.function)?;
        st.serialize_field("is_primitive", &self.is_primitive)?;
        st.end()
    }
}

/// An action an agent asks for. `args` is normally a JSON object; like the
/// original, a raw string is kept when the agent's input did not parse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub name: String,
    pub args: serde_json::Value,
}

impl Action {
    pub fn new(name: impl Into<String>, args: serde_json::Value) -> Action {
        Action {
            name: name.into(),
            args,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_the_original_names_and_keys() {
        let expect: &[(&str, &[&str], bool)] = &[
            ("List Files", &["dir_path"], true),
            ("Read File", &["file_name"], true),
            ("Write File", &["file_name", "content"], true),
            ("Append File", &["file_name", "content"], true),
            ("Copy File", &["source", "destination"], true),
            ("Undo Edit Script", &["script_name"], true),
            ("Execute Script", &["script_name"], true),
            ("Python REPL", &["command"], true),
            ("Request Help", &["request"], true),
            ("Final Answer", &["final_answer"], true),
            (
                "Understand File",
                &["file_name", "things_to_look_for"],
                false,
            ),
            ("Append Summary to Research Log", &["content"], false),
            (
                "Inspect Script Lines",
                &["script_name", "start_line_number", "end_line_number"],
                false,
            ),
            (
                "Edit Script (AI)",
                &["script_name", "edit_instruction", "save_name"],
                false,
            ),
            (
                "Edit Script Segment (AI)",
                &[
                    "script_name",
                    "start_line_number",
                    "end_line_number",
                    "edit_instruction",
                    "save_name",
                ],
                false,
            ),
            ("Reflection", &["things_to_reflect_on"], false),
            ("Retrieval from Research Log", &["current_plan"], false),
        ];
        assert_eq!(ACTIONS.len(), expect.len());
        for (info, (name, keys, prim)) in ACTIONS.iter().zip(expect) {
            assert_eq!(info.name, *name);
            let got: Vec<&str> = info.usage.iter().map(|a| a.key).collect();
            assert_eq!(&got, keys, "{name}");
            assert_eq!(info.is_primitive, *prim, "{name}");
        }
    }

    #[test]
    fn request_help_only_when_interactive() {
        assert_eq!(enabled(false).len(), 16);
        assert!(enabled(false).iter().all(|a| a.name != REQUEST_HELP));
        assert_eq!(enabled(true).len(), 17);
    }

    #[test]
    fn action_info_serialises_usage_in_table_order() {
        let info = lookup(WRITE_FILE).unwrap();
        let text = serde_json::to_string(info).unwrap();
        let file = text.find("\"file_name\"").unwrap();
        let content = text.find("\"content\"").unwrap();
        assert!(file < content, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["function"], "write_file");
        assert_eq!(v["is_primitive"], true);
    }

    #[test]
    fn json_schema_requires_every_key() {
        let s = lookup(INSPECT_SCRIPT_LINES).unwrap().json_schema();
        assert_eq!(s["required"].as_array().unwrap().len(), 3);
        assert_eq!(s["properties"]["start_line_number"]["type"], "integer");
    }
}
