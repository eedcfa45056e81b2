//! The text agents show the model: which actions the prompt lists, the
//! block describing each, the opening prompts of the research agent and of
//! the lighter agents, and the message sent after an unusable reply.
//!
//! The structure and the interface words (action names, argument keys,
//! the response field names) are the original's; the prose is ours. Not
//! here: how replies are read (`parse`) or how history is added (each
//! agent).

use anyhow::{bail, Result};

use crate::env::catalog::{
    ActionInfo, APPEND_FILE, APPEND_SUMMARY, EDIT_SCRIPT_SEGMENT, PYTHON_REPL, READ_FILE,
    REFLECTION, RETRIEVAL, WRITE_FILE,
};

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
pub fn tool_block(info: &ActionInfo) -> String {
    let mut s = format!(
        "- {}:\n        {}\n        Usage:\n        ```\n",
        info.name, info.description
    );
    s.push_str(&format!(
        "        Action: {}\n        Action Input: {{\n",
        info.name
    ));
    for (i, arg) in info.usage.iter().enumerate() {
        let sep = if i + 1 < info.usage.len() { "," } else { "" };
        s.push_str(&format!(
            "            \"{}\": [{}]{sep}\n",
            arg.key, arg.description
        ));
    }
    s.push_str(&format!(
        "        }}\n        Observation: [{}]\n        ```\n",
        info.return_value
    ));
    s
}

pub fn tool_blocks(infos: &[&ActionInfo]) -> String {
    infos
        .iter()
        .map(|i| tool_block(i))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The research agent's response fields, in order.
pub const RESEARCH_FIELDS: [&str; 6] = [
    "Reflection",
    "Research Plan and Status",
    "Fact Check",
    "Thought",
    "Action",
    "Action Input",
];

/// What the model should write under each field.
pub fn field_description(field: &str) -> &'static str {
    match field {
        "Reflection" => "What the last observation tells you. If it shows an error, say what caused it and how you would find out more.",
        "Research Plan and Status" => "The whole high-level plan, the status of each of its steps and the results confirmed so far. Mark what is new since your previous reply with **double asterisks**. If nothing changed, repeat the previous version word for word. Keep the high-level plan unless you decide to revise it, and say so when you do.",
        "Fact Check" => "Every objective statement in the new parts of Research Plan and Status, each marked as a guess or as directly confirmed by an earlier observation (say which). A performance number counts as confirmed only once you have run the code that produced it.",
        "Thought" => "What you are about to do, and why.",
        "Action" => "The action to take: exactly one of the action names listed above.",
        "Action Input" => "The input of the action: a valid JSON object with exactly the keys its usage shows.",
        _ => "",
    }
}

/// The "reply in this format" part of a prompt.
pub fn format_section(fields: &[&str]) -> String {
    let mut s = String::from("Reply in exactly this format every time:\n");
    for f in fields {
        s.push_str(&format!("{f}: {}\n", field_description(f)));
    }
    s.push_str("Observation: \n```\nthe result of the action (you do not write this part)\n```\n");
    s
}

/// The research agent's opening prompt.
pub fn research_prompt(tools: &[&ActionInfo], problem: &str, fields: &[&str]) -> String {
    format!(
        "You are a careful research assistant. These are the actions you can take:\n\
         {tools}\n\
         Research Problem: {problem}\n\n\
         You know nothing about this problem yet. Keep to these instructions from start to finish:\n\
         - Begin by making a high-level plan for solving the problem and record it in Research Plan and Status. You may revise it later.\n\
         - Keep Research Plan and Status tidy: the high-level plan, the steps done and in progress, and short results with conclusions for each.\n\
         - Record in Research Plan and Status only progress that earlier observations confirm.\n\
         - Treat a performance number as known only after you have run the code that gives it.\n\
         - Before changing anything, design how you will measure progress and measure the starting point (the baseline).\n\
         - Work in straightforward steps; do not do more than the problem asks.\n\
         - Before you draw a conclusion, point to the observation that supports it.\n\
         - Do not try to install any new packages or libraries.\n\
         - Use Final Answer once, and only when the goal is met and the result is saved where the problem asks.\n\n\
         {format}",
        tools = tool_blocks(tools),
        problem = problem.trim_end(),
        format = format_section(fields),
    )
}

/// The lighter agents' opening prompt (the original base agent's).
pub fn base_prompt(tools: &[&ActionInfo], problem: &str, fields: &[&str]) -> String {
    format!(
        "You are a research assistant. These are the actions you can take:\n\
         {tools}\n\
         Research Problem: {problem}\n\n\
         {format}",
        tools = tool_blocks(tools),
        problem = problem.trim_end(),
        format = format_section(fields),
    )
}

/// Said before the first steps (when no retrieved summary is shown).
pub const BEGIN: &str = "\nNow begin.\n\n";

/// Appended to the prompt after an unusable reply.
pub fn correction(why: &str, fields: &[&str]) -> String {
    format!(
        "\n\nYour last reply could not be used: {why}. Reply again and include every one of these entries, each on its own line starting with its label: {}.\n\n",
        fields.join(", ")
    )
}

/// The observation when an Action Input could not be read.
pub fn input_error(err: &str, info: &ActionInfo) -> String {
    format!(
        "ActionInputParsingError: {err}\n{}",
        crate::env::invalid_input(info)
    )
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
        let b = tool_block(info);
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
        let p = research_prompt(&tools, "Make it better.\n", &RESEARCH_FIELDS);
        assert!(p.contains("Research Problem: Make it better.\n"));
        for f in RESEARCH_FIELDS {
            assert!(p.contains(&format!("\n{f}: ")), "{f}");
        }
        assert!(p.contains("- Understand File:"));
        assert!(!p.contains("- Read File:"));
    }
}
