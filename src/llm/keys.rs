//! API keys: where they come from, and keeping them out of everything else.
//!
//! A key is read from the environment, then from the original's key files in
//! the working directory. Once read it lives only inside `ApiKey`, whose
//! `Debug` hides it, and it is registered so that `redact` can scrub it from
//! any text we write (server error messages may echo it). `secret_env_vars`
//! names the variables the sandbox must drop from every child process.

use std::fmt;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

/// Variables that hold secrets of the LLM providers; never pass them to a
/// process the agent causes to run.
pub fn secret_env_vars() -> &'static [&'static str] {
    &[
        "OPENAI_API_KEY",
        "OPENAI_ORG_ID",
        "OPENAI_ORGANIZATION",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
    ]
}

/// A provider key (and OpenAI organisation), never shown.
#[derive(Clone)]
pub struct ApiKey {
    key: String,
    org: Option<String>,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<hidden>)")
    }
}

impl ApiKey {
    pub fn new(key: &str, org: Option<&str>) -> ApiKey {
        let key = key.trim().to_string();
        register(&key);
        ApiKey {
            key,
            org: org.map(|o| o.trim().to_string()).filter(|o| !o.is_empty()),
        }
    }

    pub fn secret(&self) -> &str {
        &self.key
    }

    pub fn org(&self) -> Option<&str> {
        self.org.as_deref()
    }
}

/// The OpenAI key: `$OPENAI_API_KEY`, else `openai_api_key.txt` in `dir`
/// holding `org:key` or `key`.
pub fn openai(dir: &Path) -> anyhow::Result<Option<ApiKey>> {
    if let Some(key) = env_key("OPENAI_API_KEY") {
        let org = std::env::var("OPENAI_ORG_ID").ok();
        return Ok(Some(ApiKey::new(&key, org.as_deref())));
    }
    let Some(text) = read_key_file(&dir.join("openai_api_key.txt"))? else {
        return Ok(None);
    };
    Ok(Some(match text.split_once(':') {
        Some((org, key)) => ApiKey::new(key, Some(org)),
        None => ApiKey::new(&text, None),
    }))
}

/// The Anthropic key: `$ANTHROPIC_API_KEY`, else `claude_api_key.txt` in `dir`.
pub fn anthropic(dir: &Path) -> anyhow::Result<Option<ApiKey>> {
    if let Some(key) = env_key("ANTHROPIC_API_KEY") {
        return Ok(Some(ApiKey::new(&key, None)));
    }
    Ok(read_key_file(&dir.join("claude_api_key.txt"))?.map(|k| ApiKey::new(&k, None)))
}

pub fn missing_openai() -> anyhow::Error {
    anyhow::anyhow!(
        "no OpenAI API key: set OPENAI_API_KEY, or write the key (or org:key) into \
         openai_api_key.txt in the current directory"
    )
}

pub fn missing_anthropic() -> anyhow::Error {
    anyhow::anyhow!(
        "no Anthropic API key: set ANTHROPIC_API_KEY, or write the key into \
         claude_api_key.txt in the current directory"
    )
}

fn env_key(var: &str) -> Option<String> {
    std::env::var(var)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn read_key_file(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let text = text.trim().to_string();
            // The path may be shown; the content never is.
            anyhow::ensure!(
                !text.is_empty(),
                "{} is empty: put the API key in it, or remove it",
                path.display()
            );
            Ok(Some(text))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}

fn registry() -> &'static Mutex<Vec<String>> {
    static KEYS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    KEYS.get_or_init(|| Mutex::new(Vec::new()))
}

fn register(key: &str) {
    // Very short strings would blank out ordinary words; no real key is that short.
    if key.len() < 8 {
        return;
    }
    let mut keys = registry().lock().unwrap_or_else(|e| e.into_inner());
    if !keys.iter().any(|k| k == key) {
        keys.push(key.to_string());
    }
}

/// Replaces every key we know of in `text` (for everything written to logs:
/// an agent may well have printed a key file into its prompt).
pub fn redact_keys(text: &str) -> std::borrow::Cow<'_, str> {
    let keys = registry().lock().unwrap_or_else(|e| e.into_inner());
    let mut out = std::borrow::Cow::Borrowed(text);
    for key in keys.iter() {
        if out.contains(key.as_str()) {
            out = std::borrow::Cow::Owned(out.replace(key.as_str(), "<hidden key>"));
        }
    }
    out
}

/// For server error messages: known keys, and any word that looks like a
/// masked key (servers echo keys as `sk-abc*****wxyz`).
pub fn redact(text: &str) -> String {
    let out = redact_keys(text);
    if !out.contains("***") {
        return out.into_owned();
    }
    out.split(' ')
        .map(|word| {
            if word.contains("***") {
                "<hidden key>"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_give_key_and_organisation() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("claude_api_key.txt"),
            "  sk-ant-file-123456\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("openai_api_key.txt"),
            "org-abc:sk-file-98765432\n",
        )
        .unwrap();
        // The environment wins over files; only check files when it is unset.
        if std::env::var_os("ANTHROPIC_API_KEY").is_none() {
            let k = anthropic(dir.path()).unwrap().unwrap();
            assert_eq!(k.secret(), "sk-ant-file-123456");
        }
        if std::env::var_os("OPENAI_API_KEY").is_none() {
            let k = openai(dir.path()).unwrap().unwrap();
            assert_eq!(k.secret(), "sk-file-98765432");
            assert_eq!(k.org(), Some("org-abc"));
        }
    }

    #[test]
    fn debug_output_hides_the_key() {
        let k = ApiKey::new("sk-debug-secret-4242", Some("org-x"));
        let shown = format!("{k:?}");
        assert!(!shown.contains("sk-debug-secret-4242"), "{shown}");
    }

    #[test]
    fn redact_scrubs_known_and_masked_keys() {
        let _k = ApiKey::new("sk-redact-me-0000111", None);
        let text =
            "Incorrect API key provided: sk-redact-me-0000111. Also sk-abc***********wxyz here";
        let clean = redact(text);
        assert!(!clean.contains("sk-redact-me-0000111"), "{clean}");
        assert!(!clean.contains("wxyz"), "{clean}");
        assert!(clean.contains("Incorrect API key provided"), "{clean}");
    }

    #[test]
    fn missing_key_errors_name_both_ways() {
        let e = missing_openai().to_string();
        assert!(
            e.contains("OPENAI_API_KEY") && e.contains("openai_api_key.txt"),
            "{e}"
        );
        let e = missing_anthropic().to_string();
        assert!(
            e.contains("ANTHROPIC_API_KEY") && e.contains("claude_api_key.txt"),
            "{e}"
        );
    }
}
