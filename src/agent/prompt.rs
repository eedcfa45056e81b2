//! The text agents show the model: which actions the prompt lists, the
//! block describing each, the opening prompts of the research agent and of
//! the lighter agents, and the message sent after an unusable reply.
//!
//! The structure and the interface words (action names, argument keys,
//! the response field names) are the original's; the words come from the
//! run's prompt set (`crate::prompts`; mlab's own prose by default). Not
//! here: how replies are read (`parse`) or how history is added (each
//! agent).

use anyhow::{bail, Result};

use crate::env::catalog::{
    ActionInfo, APPEND_FILE, APPEND_SUMMARY, EDIT_SCRIPT_SEGMENT, PYTHON_REPL, READ_FILE,
    REFLECTION, RETRIEVAL, WRITE_FILE,
};
use crate::prompts::PromptSet;

/// Actions never listed unless asked for with --actions-add-to-prompt.
const ALWAYS_HIDDEN: [&str; 7] = [
    READ_FILE,
    WRITE_FILE,
    APPEND_FILE,
    RETRIEVAL,
    APPEND_SUMMARY,
    PYTHON_REPL,
    EDIT_SCRIPT_SEGMENT,
];

/// The actions a prompt lists: every available action except those always
/// hidden, Reflection only in retrieval mode, then the user's additions
/// and removals; in the order of the action table.
pub fn prompt_actions(
    available: &[&'static ActionInfo],
    retrieval: bool,
    add: &[String],
    remove: &[String],
) -> Vec<&'static ActionInfo> {
    available
        .iter()
        .copied()
        .filter(|a| {
            let hidden = ALWAYS_HIDDEN.contains(&a.name) || (a.name == REFLECTION && !retrieval);
            let added = add.iter().any(|n| n == a.name);
            let removed = remove.iter().any(|n| n == a.name);
            (!hidden || added) && !removed
        })
        .collect()
}

/// Checks the names given to --actions-add-to-prompt and
/// --actions-remove-from-prompt.
pub fn check_action_names(flag: &str, names: &[String]) -> Result<()> {
    let known: Vec<&str> = crate::env::catalog::ACTIONS
        .iter()
        .map(|a| a.name)
        .collect();
    for n in names {
        if !known.contains(&n.as_str()) {
            bail!(
                "{flag}: '{n}' is not an action; the actions are: {} (quote names with spaces)",
                known.join(", ")
            );
        }
    }
    Ok(())
}

/// One action as the prompt describes it: name, description, how to call
/// it with its exact keys, and what comes back.
pub fn tool_block(set: &PromptSet, info: &ActionInfo) -> String {
    set.tool_block(info)
}

pub fn tool_blocks(set: &PromptSet, infos: &[&ActionInfo]) -> String {
    infos
        .iter()
        .map(|i| set.tool_block(i))
        .collect::<Vec<_>>()
        .join(&set.render("tool_separator.txt", &[]))
}

/// The research agent's response fields, in order.
pub const RESEARCH_FIELDS: [&str; 6] = crate::prompts::FIELD_NAMES;

/// The "reply in this format" part of a prompt.
pub fn format_section(set: &PromptSet, fields: &[&str]) -> String {
    let mut lines = String::new();
    for f in fields {
        lines.push_str(&set.render(
            "format_field.txt",
            &[("field", f), ("description", set.field_description(f))],
        ));
        lines.push('\n');
    }
    set.render("format_section.txt", &[("fields", &lines)])
}

/// The research agent's opening prompt.
pub fn research_prompt(
    set: &PromptSet,
    tools: &[&ActionInfo],
    problem: &str,
    fields: &[&str],
) -> String {
    opening(set, "research_prompt.txt", tools, problem, fields)
}

/// The lighter agents' opening prompt (the original base agent's).
pub fn base_prompt(
    set: &PromptSet,
    tools: &[&ActionInfo],
    problem: &str,
    fields: &[&str],
) -> String {
    opening(set, "base_prompt.txt", tools, problem, fields)
}

fn opening(
    set: &PromptSet,
    file: &str,
    tools: &[&ActionInfo],
    problem: &str,
    fields: &[&str],
) -> String {
    set.render(
        file,
        &[
            ("tools", &tool_blocks(set, tools)),
            ("problem", problem.trim_end()),
            ("problem_raw", problem),
            ("format", &format_section(set, fields)),
        ],
    )
}

/// Said before the first steps (when no retrieved summary is shown).
pub fn begin(set: &PromptSet) -> String {
    set.render("begin.txt", &[])
}

/// Appended to the prompt after an unusable reply.
pub fn correction(set: &PromptSet, why: &str, fields: &[&str]) -> String {
    set.render(
        "correction.txt",
        &[("why", why), ("fields", &fields.join(", "))],
    )
}

/// Shown before the recent steps when a summary of the research log was
/// retrieved.
pub fn retrieval_context(set: &PromptSet, summary: &str, window: usize) -> String {
    set.render(
        "retrieval_context.txt",
        &[("summary", summary), ("window", &window.to_string())],
    )
}

/// The observation when an Action Input could not be read.
pub fn input_error(set: &PromptSet, err: &str, info: &ActionInfo) -> String {
    format!("{INPUT_ERROR_PREFIX}: {err}\n{}", set.invalid_input(info))
}

/// Prefix of the observation of an unreadable Action Input.
pub const INPUT_ERROR_PREFIX: &str = "ActionInputParsingError";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::catalog::{
        enabled, lookup, COPY_FILE, EDIT_SCRIPT, EXECUTE_SCRIPT, FINAL_ANSWER,
        INSPECT_SCRIPT_LINES, LIST_FILES, UNDERSTAND_FILE, UNDO_EDIT_SCRIPT,
    };

    /// The research agent's default prompt actions, in the original's order.
    const DEFAULT_PROMPT_ACTIONS: [&str; 8] = [
        LIST_FILES,
        COPY_FILE,
        UNDO_EDIT_SCRIPT,
        EXECUTE_SCRIPT,
        FINAL_ANSWER,
        UNDERSTAND_FILE,
        INSPECT_SCRIPT_LINES,
        EDIT_SCRIPT,
    ];

    #[test]
    fn default_prompt_lists_the_original_eight_actions_in_order() {
        let names: Vec<&str> = prompt_actions(&enabled(false), false, &[], &[])
            .iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names, DEFAULT_PROMPT_ACTIONS);
    }

    #[test]
    fn retrieval_adds_reflection_and_flags_add_and_remove() {
        let names: Vec<&str> = prompt_actions(
            &enabled(false),
            true,
            &["Python REPL".into()],
            &["Copy File".into()],
        )
        .iter()
        .map(|a| a.name)
        .collect();
        assert!(names.contains(&"Reflection"));
        assert!(names.contains(&"Python REPL"));
        assert!(!names.contains(&"Copy File"));
        assert!(check_action_names("--actions-add-to-prompt", &["Fly".into()]).is_err());
    }

    #[test]
    fn a_tool_block_shows_name_keys_and_return_value() {
        let info = lookup("Edit Script (AI)").unwrap();
        let b = tool_block(&crate::prompts::default_set(), info);
        assert!(b.starts_with("- Edit Script (AI):\n"), "{b}");
        assert!(b.contains("Action: Edit Script (AI)\n"));
        for key in [
            "\"script_name\": [",
            "\"edit_instruction\": [",
            "\"save_name\": [",
        ] {
            assert!(b.contains(key), "{key} missing in {b}");
        }
        assert!(b.contains(&format!("Observation: [{}]", info.return_value)));
    }

    #[test]
    fn research_prompt_has_problem_instructions_and_all_fields() {
        let tools = prompt_actions(&enabled(false), false, &[], &[]);
        let p = research_prompt(
            &crate::prompts::default_set(),
            &tools,
            "Make it better.\n",
            &RESEARCH_FIELDS,
        );
        assert!(p.contains("Research Problem: Make it better.\n"));
        for f in RESEARCH_FIELDS {
            assert!(p.contains(&format!("\n{f}: ")), "{f}");
        }
        assert!(p.contains("- Understand File:"));
        assert!(!p.contains("- Read File:"));
    }
}
