//! Choosing the Python interpreter that runs task scripts.
//!
//! Order: an explicit `--python`, then `$MLAB_PYTHON`, then the venv that
//! install.sh made, then `python3` on PATH.

use std::path::{Path, PathBuf};

use crate::paths;

#[derive(Debug, Clone)]
pub struct Python {
    pub path: PathBuf,
    /// Where the choice came from, for messages ("--python", "MLAB_PYTHON", ...).
    pub source: &'static str,
}

pub fn resolve(explicit: Option<&Path>) -> Python {
    if let Some(p) = explicit {
        return Python {
            path: p.to_path_buf(),
            source: "--python",
        };
    }
    if let Some(p) = std::env::var_os("MLAB_PYTHON").filter(|v| !v.is_empty()) {
        return Python {
            path: PathBuf::from(p),
            source: "MLAB_PYTHON",
        };
    }
    let venv = paths::venv_python();
    if venv.exists() {
        return Python {
            path: venv,
            source: "the install.sh venv",
        };
    }
    Python {
        path: PathBuf::from("python3"),
        source: "python3 on PATH",
    }
}

/// Python modules that failed to import, from a `ModuleNotFoundError` line
/// in a script's output ("No module named 'pandas'").
pub fn missing_module(output: &str) -> Option<String> {
    output.lines().rev().find_map(|line| {
        let rest = line.split("No module named ").nth(1)?.trim_start();
        // `'pkg.sub'` as Python writes it, or a bare name a script wrote.
        let name = match rest.chars().next()? {
            q @ ('\'' | '"') => rest[1..].split(q).next()?,
            _ => rest
                .split(|c: char| c.is_whitespace() || matches!(c, ':' | ',' | ';' | ')'))
                .next()?,
        };
        let top = name.split('.').next()?.to_string();
        (!top.is_empty()).then_some(top)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_module_is_read_from_a_traceback() {
        let out = "Traceback (most recent call last):\n  File \"x\", line 1\nModuleNotFoundError: No module named 'sklearn.datasets'\n";
        assert_eq!(missing_module(out).as_deref(), Some("sklearn"));
        assert_eq!(missing_module("all fine\n"), None);
        // A script's own message after the module name is not part of it.
        let own =
            "error: No module named 'clrs': install the CLRS library first (pip install -r x)";
        assert_eq!(missing_module(own).as_deref(), Some("clrs"));
        assert_eq!(
            missing_module("No module named torch; see README").as_deref(),
            Some("torch")
        );
    }
}
