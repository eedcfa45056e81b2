//! Prompt sets as a user meets them: `mlab prompts import-original` on a
//! fake checkout of the original (same files, variable names and
//! ActionInfo calls, made-up words), a run with `--prompts`, a set that
//! lacks a file, and the original runner's flags on `mlab run`.
// A failed step panics with its message, which is how a test or bench
// reports; clippy.toml allows this in #[test] functions only, so say it here
// for the helpers too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
mod env_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use env_support::{read_json, text, Toy};

fn fake_checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake_mlagentbench")
}

/// A scripted main model whose one reply is a research-agent Final Answer.
fn final_answer_model(toy: &Toy) -> String {
    let reply = "Reflection: r\nResearch Plan and Status: p\nFact Check: f\nThought: t\nAction: Final Answer\nAction Input: {\"final_answer\": \"done\"}";
    let line =
        serde_json::json!({"text": reply, "usage": {"input_tokens": 10, "output_tokens": 5}});
    let path = toy.path().join("main.jsonl");
    std::fs::write(&path, format!("{line}\n")).unwrap();
    format!("scripted:{}", path.display())
}

/// `mlab run` of the research agent on the toy task (unconfined).
fn research_run(toy: &Toy, extra: &[&str]) -> Command {
    let mut c = common::mlab();
    c.arg("--benchmarks-dir")
        .arg(toy.path().join("bench"))
        .args(["run", "--task", "toy"])
        .arg("--log-dir")
        .arg(toy.log())
        .arg("--work-dir")
        .arg(toy.path().join("work"))
        .arg("--python")
        .arg(common::real_python())
        .args(["--sandbox", "none"])
        .args(extra)
        .stdin(std::process::Stdio::null());
    c
}

fn import(out: &Path) -> Output {
    common::mlab()
        .args(["prompts", "import-original"])
        .arg(fake_checkout())
        .arg("--out")
        .arg(out)
        .arg("--python")
        .arg(common::real_python())
        .output()
        .unwrap()
}

#[test]
fn import_original_writes_the_checkouts_words_and_a_run_shows_them_exactly() {
    let toy = Toy::new();
    let set = toy.path().join("paperset");
    let out = import(&set);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(set.join("ORIGIN.txt").exists());

    let model = final_answer_model(&toy);
    let set_arg = set.display().to_string();
    let out = research_run(
        &toy,
        &[
            "--agent",
            "research",
            "--llm",
            &model,
            "--prompts",
            &set_arg,
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    // The prompt is what the original's code would build from these
    // sources: its template, its tool blocks back to back, the research
    // problem as read, the fields joined by line breaks.
    let block = |name: &str, keys: &[&str]| {
        let args: Vec<String> = keys
            .iter()
            .map(|k| format!("\"{k}\": [fake {k} text for {name}]"))
            .collect();
        format!(
            "- {name}:\n        FAKE-DESC of {name}. Second part.\n        Usage:\n        ```\n        Action: {name}\n        Action Input: {{\n            {}\n        }}\n        Observation: [fake return of {name}]\n        ```\n\n",
            args.join(",\n            ")
        )
    };
    let tools = [
        block("List Files", &["dir_path"]),
        block("Copy File", &["source", "destination"]),
        block("Undo Edit Script", &["script_name"]),
        block("Execute Script", &["script_name"]),
        block("Final Answer", &["final_answer"]),
        block("Understand File", &["file_name", "things_to_look_for"]),
        block(
            "Inspect Script Lines",
            &["script_name", "start_line_number", "end_line_number"],
        ),
        block(
            "Edit Script (AI)",
            &["script_name", "edit_instruction", "save_name"],
        ),
    ]
    .concat();
    let expected = format!(
        "FAKE-RESEARCH opening. Tools follow:\n{tools}\n\nResearch Problem: Make a submission.\n\n\nFAKE rule one. Braces {{like this}} stay.\n\nAnswer like this:\nReflection: fake reflection words\nResearch Plan and Status: fake plan words\nFact Check: fake fact words\nThought: fake thought words\nAction: fake action words\nAction Input: fake input words\nObservation: \n```\nfake result\n```\n\n"
    );
    let main_log = std::fs::read_to_string(toy.log().join("agent_log/main_log")).unwrap();
    assert!(
        main_log.contains(&expected),
        "main_log lacks the expected prompt:\n{expected}\n---- main_log:\n{main_log}"
    );

    let run = toy_run_json(&toy);
    assert_eq!(run["prompt_set"], "paperset");
    let hash = run["prompt_set_hash"].as_str().unwrap();
    assert_eq!(hash.len(), 64, "{hash}");
    assert!(
        run["config"]
            .as_str()
            .unwrap()
            .ends_with("[prompts paperset]"),
        "{}",
        run["config"]
    );
    assert_eq!(run["flags"]["prompts"], set_arg.as_str());
    // trace.json carries the set's action texts.
    let trace = read_json(&toy.log().join("env_log/trace.json"));
    assert_eq!(
        trace["action_infos"]["List Files"]["description"],
        "FAKE-DESC of List Files. Second part."
    );

    // A second import never writes over a set.
    let again = import(&set);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("not empty"),
        "{}",
        text(&again.stderr)
    );
}

fn toy_run_json(toy: &Toy) -> serde_json::Value {
    read_json(&toy.log().join("run.json"))
}

#[test]
fn a_run_with_mlabs_own_set_records_it_and_keeps_the_config() {
    let toy = Toy::new();
    let model = final_answer_model(&toy);
    let out = research_run(&toy, &["--agent", "research", "--llm", &model])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run = toy_run_json(&toy);
    assert_eq!(run["prompt_set"], "mlab");
    assert!(!run["config"].as_str().unwrap().contains("prompts"));
}

#[test]
fn a_prompt_set_that_lacks_a_file_is_refused_naming_it_before_anything_is_made() {
    let toy = Toy::new();
    let set = toy.path().join("mine");
    let out = common::mlab()
        .args(["prompts", "export-default"])
        .arg(&set)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::remove_file(set.join("tool_block.txt")).unwrap();
    let model = final_answer_model(&toy);
    let set_arg = set.display().to_string();
    let out = research_run(
        &toy,
        &[
            "--agent",
            "research",
            "--llm",
            &model,
            "--prompts",
            &set_arg,
        ],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("tool_block.txt"), "{err}");
    assert!(!toy.path().join("work").exists(), "a workspace was made");
    assert!(!toy.log().join("run.json").exists());
}

#[test]
fn the_original_runners_model_flags_are_aliases_of_mlabs() {
    let toy = Toy::new();
    let model = final_answer_model(&toy);
    let out = research_run(
        &toy,
        &[
            "--agent-type",
            "ResearchAgent",
            "--llm-name",
            &model,
            "--fast-llm-name",
            &model,
            "--edit-script-llm-name",
            &model,
            "--edit-script-llm-max-tokens",
            "123",
            "--agent-max-steps",
            "4",
            "--max-steps-in-context",
            "2",
            "--max-observation-steps-in-context",
            "1",
            "--max-retries",
            "2",
            "--actions-remove-from-prompt",
            "Copy File",
            "--actions-add-to-prompt",
            "Python REPL",
            "--valid-format-entires",
            "Thought",
            "Action",
            "Action Input",
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run = toy_run_json(&toy);
    assert_eq!(run["agent"], "research");
    for role in ["main", "fast", "edit"] {
        assert_eq!(run["llm"][role], model.as_str(), "{role}");
    }
    let flags = &run["flags"];
    assert_eq!(flags["edit_script_max_tokens"], 123);
    assert_eq!(flags["agent_max_steps"], 4);
    assert_eq!(flags["max_steps_in_context"], 2);
    assert_eq!(flags["max_observation_steps_in_context"], 1);
    assert_eq!(flags["max_retries"], 2);
    assert_eq!(flags["actions_remove_from_prompt"][0], "Copy File");
    assert_eq!(flags["actions_add_to_prompt"][0], "Python REPL");
    let main_log = std::fs::read_to_string(toy.log().join("agent_log/main_log")).unwrap();
    assert!(main_log.contains("- Python REPL:"), "{main_log}");
    assert!(!main_log.contains("- Copy File:"), "{main_log}");
}

#[test]
fn the_original_runners_langchain_choices_are_refused_with_what_to_use_instead() {
    let toy = Toy::new();
    let model = final_answer_model(&toy);
    let out = research_run(
        &toy,
        &[
            "--llm",
            &model,
            "--langchain-agent",
            "zero-shot-react-description",
        ],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("--langchain-agent"), "{err}");
    assert!(err.contains("--agent react"), "{err}");
    assert!(!toy.log().exists(), "a log folder was made");

    for (agent, hint) in [
        ("LangChainAgent", "LangChain"),
        ("AutoGPTAgent", "Auto-GPT"),
    ] {
        let out = research_run(&toy, &["--llm", &model, "--agent-type", agent])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{agent}");
        let err = text(&out.stderr);
        assert!(err.contains(hint), "{err}");
        assert!(err.contains("external"), "{err}");
    }
}

/// The ```jsonl blocks of docs/scripted-models.md, in order.
fn doc_blocks() -> Vec<String> {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scripted-models.md"),
    )
    .unwrap();
    let mut blocks = Vec::new();
    let mut rest = doc.as_str();
    while let Some(i) = rest.find("```jsonl\n") {
        let body = &rest[i + "```jsonl\n".len()..];
        let end = body.find("\n```\n").unwrap();
        blocks.push(format!("{}\n", &body[..end]));
        rest = &body[end..];
    }
    blocks
}

#[test]
fn the_scripted_models_doc_example_runs_as_documented() {
    let blocks = doc_blocks();
    assert_eq!(
        blocks.len(),
        4,
        "main, fast, edit and the failing fast line"
    );
    let toy = Toy::new();
    let file = |name: &str, text: &str| {
        let p = toy.path().join(name);
        std::fs::write(&p, text).unwrap();
        format!("scripted:{}", p.display())
    };
    let main = file("main.jsonl", &blocks[0]);
    let fast = file("fast.jsonl", &blocks[1]);
    let edit = file("edit.jsonl", &blocks[2]);
    let args = [
        "--agent",
        "research",
        "--llm",
        &main,
        "--fast-llm",
        &fast,
        "--edit-script-llm",
        &edit,
    ];
    let out = research_run(&toy, &args).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run = toy_run_json(&toy);
    assert_eq!(run["exit_reason"], "final_answer");
    assert_eq!(run["tokens"]["input"], 1800 + 2100 + 500 + 2400 + 300);
    assert_eq!(run["tokens"]["output"], 60 + 70 + 12 + 40 + 30);
    let ws = toy.ws();
    let script = std::fs::read_to_string(ws.join("train.py")).unwrap();
    assert!(script.ends_with("print('done')\n"), "{script}");
    let obs = toy.observations();
    assert_eq!(
        obs[0],
        "The script prints training and writes submission.csv."
    );

    // The failing helper: Understand File's observation is the error and
    // the run goes on.
    let toy = Toy::new();
    let main = {
        let p = toy.path().join("main.jsonl");
        std::fs::write(&p, &blocks[0]).unwrap();
        format!("scripted:{}", p.display())
    };
    let fast = {
        let p = toy.path().join("fast.jsonl");
        std::fs::write(&p, &blocks[3]).unwrap();
        format!("scripted:{}", p.display())
    };
    let edit = {
        let p = toy.path().join("edit.jsonl");
        std::fs::write(&p, &blocks[2]).unwrap();
        format!("scripted:{}", p.display())
    };
    let out = research_run(
        &toy,
        &[
            "--agent",
            "research",
            "--llm",
            &main,
            "--fast-llm",
            &fast,
            "--edit-script-llm",
            &edit,
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let obs = toy.observations();
    assert!(obs[0].starts_with("LLMError: "), "{}", obs[0]);
    assert!(obs[0].contains("the helper model is down"), "{}", obs[0]);
    assert_eq!(toy_run_json(&toy)["exit_reason"], "final_answer");
}

#[test]
fn the_scripted_models_doc_lists_every_error_the_grammar_accepts() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scripted-models.md"),
    )
    .unwrap();
    for kind in [
        "prompt_too_long",
        "refused",
        "unreachable",
        "empty_reply",
        "refusal",
        "content_filter",
        "unusable_reply",
    ] {
        assert!(
            doc.contains(&format!("| `{kind}` |")),
            "{kind} undocumented"
        );
    }
    // And a kind the doc does not list is refused by the grammar.
    let toy = Toy::new();
    let p = toy.path().join("bad.jsonl");
    std::fs::write(&p, "{\"error\": \"timeout\"}\n").unwrap();
    let model = format!("scripted:{}", p.display());
    let out = research_run(&toy, &["--agent", "research", "--llm", &model])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("error must be prompt_too_long"), "{err}");
}
