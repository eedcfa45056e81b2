use super::*;
use crate::agent::prompt::{
    base_prompt, begin, correction, input_error, prompt_actions, research_prompt,
    retrieval_context, tool_blocks, RESEARCH_FIELDS,
};
use crate::env::catalog::{enabled, offered};

/// What the code rendered before the prompts moved into files
/// (tests/fixtures/prompts_mlab, written by the code of that time).
fn before(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/prompts_mlab")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const PROBLEM: &str = "Make the model in train.py better.\nKeep submission.csv.\n";

#[test]
fn the_default_set_renders_every_prompt_exactly_as_the_code_did_before() {
    let set = default_set();
    let tools = prompt_actions(&enabled(false), false, &[], &[]);
    assert_eq!(
        research_prompt(&set, &tools, PROBLEM, &RESEARCH_FIELDS),
        before("research_default.txt")
    );
    let tools2 = prompt_actions(
        &enabled(true),
        true,
        &["Python REPL".into()],
        &["Copy File".into()],
    );
    assert_eq!(
        research_prompt(
            &set,
            &tools2,
            PROBLEM,
            &["Thought", "Action", "Action Input"]
        ),
        before("research_retrieval_fields.txt")
    );
    assert_eq!(
        base_prompt(&set, &tools, PROBLEM, &["Action", "Action Input"]),
        before("base_simple.txt")
    );
    assert_eq!(
        base_prompt(
            &set,
            &tools,
            PROBLEM,
            &["Thought", "Action", "Action Input"]
        ),
        before("base_react.txt")
    );
    let all = enabled(true);
    assert_eq!(tool_blocks(&set, &all), before("tool_blocks_all.txt"));
    assert_eq!(begin(&set), before("begin.txt"));
    assert_eq!(
        correction(&set, "the reply has no Action", &RESEARCH_FIELDS),
        before("correction.txt")
    );
    let mut inv = String::new();
    for a in &all {
        inv.push_str(&input_error(&set, "expected value at line 1 column 1", a));
        inv.push_str("\n=====\n");
        inv.push_str(&set.invalid_input(a));
        inv.push_str("\n=====\n");
    }
    assert_eq!(inv, before("input_errors_all.txt"));
    assert_eq!(
        serde_json::to_string_pretty(&all).unwrap() + "\n",
        before("action_infos.json")
    );
    let schemas: Vec<serde_json::Value> = all.iter().map(|a| a.json_schema()).collect();
    assert_eq!(
        serde_json::to_string_pretty(&schemas).unwrap() + "\n",
        before("json_schemas.json")
    );
    assert_eq!(
        retrieval_context(&set, "SUMMARY", 3),
        before("retrieval_context.txt")
    );
    let action = "Action: List Files\nAction Input: {\"dir_path\": \".\"}";
    assert_eq!(
        set.render(
            "summarize_block.txt",
            &[
                ("action", action),
                ("from", "10000"),
                ("to", "20000"),
                ("text", "BLOCK")
            ]
        ),
        before("summarize_block.txt")
    );
    let parts: String = ["A", "B"]
        .iter()
        .enumerate()
        .map(|(i, s)| {
            set.render(
                "summarize_part.txt",
                &[("n", &(i + 1).to_string()), ("summary", s)],
            )
        })
        .collect();
    assert_eq!(
        set.render(
            "summarize_merge.txt",
            &[("action", action), ("parts", &parts)]
        ),
        before("summarize_merge.txt")
    );
    assert_eq!(
        set.render(
            "step_summary.txt",
            &[
                ("reply", "Thought: t\nAction: List Files\n"),
                ("observation", "a\nb")
            ]
        ),
        before("step_summary.txt")
    );
}

#[test]
fn templates_fill_names_and_keep_other_braces() {
    assert_eq!(render("a {x} b", &[("x", "1")]), "a 1 b");
    assert_eq!(render("{{x}} {x}", &[("x", "1")]), "{x} 1");
    assert_eq!(
        render("json {\"k\": 1} and { alone }", &[]),
        "json {\"k\": 1} and { alone }"
    );
    // A value is inserted as it is, never read as a template.
    assert_eq!(render("{x}", &[("x", "{y}")]), "{y}");
    assert_eq!(placeholders("{a}{{b}}{c_1} {D}"), vec!["a", "c_1"]);
    assert_eq!(render(&escape("{x} }}"), &[("x", "no")]), "{x} }}");
}

fn default_files_map() -> BTreeMap<String, String> {
    DEFAULT_FILES
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
}

fn write_set(dir: &Path, files: &BTreeMap<String, String>) {
    std::fs::create_dir_all(dir).unwrap();
    for (n, t) in files {
        std::fs::write(dir.join(n), t).unwrap();
    }
}

#[test]
fn a_folder_copy_of_the_default_set_is_the_default_set() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("copy");
    write_set(&dir, &default_files_map());
    let set = PromptSet::load(&dir).unwrap();
    assert_eq!(set.name(), "copy");
    assert_eq!(set.hash(), default_set().hash());
    assert!(set.is_default());
}

#[test]
fn a_set_that_lacks_a_file_is_refused_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut files = default_files_map();
    files.remove("correction.txt");
    write_set(tmp.path(), &files);
    let err = format!("{:#}", PromptSet::load(tmp.path()).unwrap_err());
    assert!(err.contains("no readable correction.txt"), "{err}");
    assert!(err.contains("src/prompts/default"), "{err}");
}

#[test]
fn a_set_with_an_unknown_placeholder_or_action_is_refused() {
    let mut files = default_files_map();
    files.insert("begin.txt".into(), "Go {now}\n".into());
    let err = format!("{:#}", PromptSet::from_files("x", files).unwrap_err());
    assert!(err.contains("begin.txt uses {now}"), "{err}");

    let mut files = default_files_map();
    let actions = files["actions.toml"].replace("\"Copy File\"", "\"Clone File\"");
    files.insert("actions.toml".into(), actions);
    let err = format!("{:#}", PromptSet::from_files("x", files).unwrap_err());
    assert!(err.contains("no [\"Copy File\"] section"), "{err}");

    let mut files = default_files_map();
    let actions = files["actions.toml"].replace("dir_path = ", "folder = ");
    files.insert("actions.toml".into(), actions);
    let err = format!("{:#}", PromptSet::from_files("x", files).unwrap_err());
    assert!(err.contains("no entry for the argument dir_path"), "{err}");
}

#[test]
fn another_set_changes_the_prompt_the_actions_and_the_hash() {
    let mut files = default_files_map();
    files.insert(
        "research_prompt.txt".into(),
        "OTHER WORDS\n{tools}\nProblem: {problem}\n{format}\n".into(),
    );
    let actions = files["actions.toml"].replace(
        "description = \"Show what a folder of the workspace contains.\"",
        "description = \"Lists a {folder}.\"",
    );
    files.insert("actions.toml".into(), actions);
    let set = PromptSet::from_files("other", files).unwrap();
    assert!(!set.is_default());
    assert_ne!(set.hash(), default_set().hash());
    let tools = prompt_actions(&offered(set.actions(), false), false, &[], &[]);
    let p = research_prompt(&set, &tools, "Do it.", &RESEARCH_FIELDS);
    assert!(
        p.starts_with("OTHER WORDS\n- List Files:\n        Lists a {folder}.\n"),
        "{p}"
    );
    assert!(p.contains("Problem: Do it.\n"), "{p}");
    // The built-in table keeps mlab's words.
    assert_eq!(
        crate::env::catalog::lookup("List Files")
            .unwrap()
            .description,
        "Show what a folder of the workspace contains."
    );
}
