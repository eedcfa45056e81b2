//! Model names: what the user writes after `--llm` and which provider it
//! means. Only parsing lives here; keys, URLs defaults and connections are
//! resolved when the backend is built (`metered::build_backend`).

use std::path::PathBuf;

/// A parsed model name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// Chat Completions; `base_url` from `openai:<model>@<url>` when given.
    OpenAi {
        model: String,
        base_url: Option<String>,
    },
    /// Messages API; `base_url` from `anthropic:<model>@<url>` when given.
    Anthropic {
        model: String,
        base_url: Option<String>,
    },
    /// Answers read in order from a JSONL file.
    Scripted(PathBuf),
    /// Answers recorded in an earlier run's `llm_calls.jsonl`.
    Replay(PathBuf),
    /// A person types the answers.
    Human,
}

const HELP: &str = "use gpt-*, o1*/o3*/o4*, claude-*, openai:<model>[@<base-url>] (any \
                    OpenAI-compatible server), anthropic:<model>, scripted:<file>, \
                    replay:<run log dir> or human";

impl Spec {
    pub fn parse(name: &str) -> anyhow::Result<Spec> {
        let name = name.trim();
        if name == "human" {
            return Ok(Spec::Human);
        }
        if let Some(path) = name.strip_prefix("scripted:") {
            anyhow::ensure!(
                !path.is_empty(),
                "scripted: needs a file, e.g. scripted:replies.jsonl"
            );
            return Ok(Spec::Scripted(PathBuf::from(path)));
        }
        if let Some(path) = name.strip_prefix("replay:") {
            anyhow::ensure!(
                !path.is_empty(),
                "replay: needs a run's log folder, e.g. replay:logs/run1"
            );
            return Ok(Spec::Replay(PathBuf::from(path)));
        }
        if let Some(rest) = name.strip_prefix("openai:") {
            let (model, base_url) = split_base_url(rest)?;
            return Ok(Spec::OpenAi { model, base_url });
        }
        if let Some(rest) = name.strip_prefix("anthropic:") {
            let (model, base_url) = split_base_url(rest)?;
            return Ok(Spec::Anthropic { model, base_url });
        }
        let openai_family = ["gpt-", "o1", "o3", "o4", "chatgpt-"];
        if openai_family.iter().any(|p| name.starts_with(p)) {
            return Ok(Spec::OpenAi {
                model: name.to_string(),
                base_url: None,
            });
        }
        if name.starts_with("claude-") {
            return Ok(Spec::Anthropic {
                model: name.to_string(),
                base_url: None,
            });
        }
        anyhow::bail!("unknown model name '{name}': {HELP}")
    }
}

impl Spec {
    /// The model's part of a configuration's identity: provider and model
    /// name, never the base URL, port or key, so that one model reached
    /// through two URLs is one configuration. A name whose provider its
    /// prefix already implies is kept bare (`openai:gpt-4o@http://...` is
    /// `gpt-4o`); others keep their provider (`openai:llama3`). A replay is
    /// the replay of the run it replays.
    pub fn identity(&self) -> String {
        match self {
            Spec::OpenAi { model, .. } => {
                bare_or("openai", model, |s| matches!(s, Spec::OpenAi { .. }))
            }
            Spec::Anthropic { model, .. } => {
                bare_or("anthropic", model, |s| matches!(s, Spec::Anthropic { .. }))
            }
            Spec::Scripted(path) => format!("scripted:{}", path.display()),
            Spec::Replay(dir) => format!("replay of {}", run_identity(dir)),
            Spec::Human => "human".into(),
        }
    }
}

fn bare_or(provider: &str, model: &str, same: impl Fn(&Spec) -> bool) -> String {
    match Spec::parse(model) {
        Ok(s) if same(&s) => model.to_string(),
        _ => format!("{provider}:{model}"),
    }
}

/// The configuration of the run recorded in `dir` (a replay's source):
/// its run.json `config`, else its agent and main model, else the folder.
pub fn run_identity(dir: &std::path::Path) -> String {
    let meta = std::fs::read_to_string(dir.join("run.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    let Some(meta) = meta else {
        return format!("the run in {}", dir.display());
    };
    if let Some(c) = meta["config"].as_str() {
        return c.to_string();
    }
    let agent = meta["agent"].as_str().unwrap_or("unknown agent");
    match meta["llm"]["main"].as_str() {
        Some(main) => format!("{agent} ({})", model_identity(main)),
        None => agent.to_string(),
    }
}

/// `Spec::identity` of a model name as written; a name that is not one
/// (a run of another program) is kept, less any `@<url>`.
pub fn model_identity(name: &str) -> String {
    match Spec::parse(name) {
        Ok(spec) => spec.identity(),
        Err(_) => split_base_url(name)
            .map(|(m, _)| m)
            .unwrap_or_else(|_| name.to_string()),
    }
}

/// Splits `model@http(s)://...`; an `@` not followed by a URL stays part of
/// the model name (some servers use `@` in names).
fn split_base_url(rest: &str) -> anyhow::Result<(String, Option<String>)> {
    let (model, url) = match rest.rfind("@http://").or_else(|| rest.rfind("@https://")) {
        Some(at) => (&rest[..at], Some(rest[at + 1..].to_string())),
        None => (rest, None),
    };
    anyhow::ensure!(
        !model.is_empty(),
        "the model name is missing: write e.g. openai:gpt-4o or openai:llama3@http://localhost:8000/v1"
    );
    Ok((model.to_string(), url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openai(model: &str, url: Option<&str>) -> Spec {
        Spec::OpenAi {
            model: model.into(),
            base_url: url.map(Into::into),
        }
    }

    #[test]
    fn prefixes_choose_the_provider() {
        for name in ["gpt-4o", "gpt-3.5-turbo", "o1-mini", "o3", "o4-mini"] {
            assert_eq!(Spec::parse(name).unwrap(), openai(name, None), "{name}");
        }
        assert_eq!(
            Spec::parse("claude-3-5-sonnet-latest").unwrap(),
            Spec::Anthropic {
                model: "claude-3-5-sonnet-latest".into(),
                base_url: None
            }
        );
    }

    #[test]
    fn explicit_providers_and_base_urls_are_split() {
        assert_eq!(
            Spec::parse("openai:llama3@http://127.0.0.1:8000/v1").unwrap(),
            openai("llama3", Some("http://127.0.0.1:8000/v1"))
        );
        assert_eq!(
            Spec::parse("openai:org/model@v2").unwrap(),
            openai("org/model@v2", None)
        );
        assert_eq!(
            Spec::parse("anthropic:claude-x").unwrap(),
            Spec::Anthropic {
                model: "claude-x".into(),
                base_url: None
            }
        );
        assert_eq!(
            Spec::parse("scripted:a.jsonl").unwrap(),
            Spec::Scripted("a.jsonl".into())
        );
        assert_eq!(
            Spec::parse("replay:logs/r1").unwrap(),
            Spec::Replay("logs/r1".into())
        );
        assert_eq!(Spec::parse("human").unwrap(), Spec::Human);
    }

    #[test]
    fn identity_leaves_out_the_base_url_and_keeps_the_provider_where_needed() {
        let id = |n: &str| Spec::parse(n).unwrap().identity();
        assert_eq!(
            id("openai:llama3@http://127.0.0.1:8000/v1"),
            "openai:llama3"
        );
        assert_eq!(id("openai:llama3@http://10.0.0.2:9999/v1"), "openai:llama3");
        assert_eq!(id("openai:llama3"), "openai:llama3");
        assert_eq!(id("openai:gpt-4o@https://proxy.example/v1"), "gpt-4o");
        assert_eq!(id("gpt-4o"), "gpt-4o");
        assert_eq!(id("anthropic:mine@http://localhost:4000"), "anthropic:mine");
        assert_eq!(id("anthropic:claude-x@http://localhost:4000"), "claude-x");
        assert_eq!(
            id("anthropic:claude-3-5-haiku-latest"),
            "claude-3-5-haiku-latest"
        );
        assert_eq!(model_identity("m1@http://x:1"), "m1");
        assert_eq!(model_identity("m1"), "m1");
    }

    #[test]
    fn unknown_or_empty_names_are_refused_with_the_accepted_forms() {
        let err = Spec::parse("llama3").unwrap_err().to_string();
        assert!(err.contains("unknown model name 'llama3'"), "{err}");
        assert!(err.contains("openai:<model>[@<base-url>]"), "{err}");
        assert!(Spec::parse("openai:@http://x").is_err());
        assert!(Spec::parse("scripted:").is_err());
    }
}
