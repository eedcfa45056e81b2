//! Finding the benchmarks folder and the tasks in it.
//!
//! Lookup order: `--benchmarks-dir`, then `$MLAB_BENCHMARKS`, then
//! `./benchmarks`, then the folder installed by install.sh.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::Task;
use crate::paths;

/// Where the task folders are looked for.
#[derive(Debug, Clone, Default)]
pub struct Locations {
    /// `--benchmarks-dir`; None: `$MLAB_BENCHMARKS`, then `./benchmarks`,
    /// then the installed folder.
    pub benchmarks_dir: Option<PathBuf>,
}

/// The benchmarks folder in use, with where it came from.
pub fn benchmarks_root(locations: &Locations) -> Result<PathBuf> {
    find_benchmarks_root(locations.benchmarks_dir.as_deref())
}

/// The folder holding the task folders: `dir` (`--benchmarks-dir`) when
/// given, else $MLAB_BENCHMARKS, ./benchmarks, the installed folder.
pub fn find_benchmarks_root(dir: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = dir {
        if !dir.is_dir() {
            bail!("--benchmarks-dir {} is not a folder", dir.display());
        }
        return Ok(dir.to_path_buf());
    }
    if let Some(dir) = std::env::var_os("MLAB_BENCHMARKS").filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(dir);
        if !dir.is_dir() {
            bail!("MLAB_BENCHMARKS={} is not a folder", dir.display());
        }
        return Ok(dir);
    }
    let local = PathBuf::from("benchmarks");
    if local.is_dir() {
        return Ok(local);
    }
    let installed = paths::installed_benchmarks();
    if installed.is_dir() {
        return Ok(installed);
    }
    bail!(
        "no benchmarks folder found: pass --benchmarks-dir DIR, set MLAB_BENCHMARKS, \
         run from the repository root, or run ./install.sh (it links {})",
        installed.display()
    )
}

/// A folder that looks like a task but failed to load, with the reason.
pub type BrokenTask = (PathBuf, anyhow::Error);

/// Every loadable task under `root`, sorted by name, plus the folders that
/// look like tasks but failed to load.
pub fn all_tasks(root: &Path) -> Result<(Vec<Task>, Vec<BrokenTask>)> {
    let mut tasks = Vec::new();
    let mut broken = Vec::new();
    let entries =
        std::fs::read_dir(root).with_context(|| format!("could not list {}", root.display()))?;
    for entry in entries {
        let path = entry?.path();
        if !path.is_dir() || !looks_like_task(&path) {
            continue;
        }
        match Task::load(&path) {
            Ok(t) => tasks.push(t),
            Err(e) => broken.push((path, e)),
        }
    }
    tasks.sort_by(|a, b| a.name().cmp(b.name()));
    broken.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((tasks, broken))
}

fn looks_like_task(dir: &Path) -> bool {
    dir.join("task.toml").exists() || dir.join("env").is_dir()
}

/// Loads task `name` from `root`; an unknown name gets the list of known
/// tasks and the closest one.
pub fn find_task(root: &Path, name: &str) -> Result<Task> {
    let dir = root.join(name);
    if !name.is_empty() && !name.contains('/') && looks_like_task(&dir) {
        return Task::load(&dir);
    }
    let (tasks, _) = all_tasks(root)?;
    let names: Vec<&str> = tasks.iter().map(|t| t.name()).collect();
    let mut msg = format!("unknown task '{name}' in {}", root.display());
    if let Some(best) = closest(name, &names) {
        msg.push_str(&format!(". Did you mean '{best}'?"));
    }
    if names.is_empty() {
        msg.push_str(". That folder holds no tasks.");
    } else {
        msg.push_str(&format!(" Known tasks: {}", names.join(", ")));
    }
    bail!(msg)
}

/// The known name nearest to `name`, if it is near enough to be a typo.
pub fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = name.to_lowercase();
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(&lower, &k.to_lowercase()), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_suggests_typos_only() {
        let known = ["digits", "titanic", "ames-housing"];
        assert_eq!(closest("digts", &known), Some("digits"));
        assert_eq!(closest("Titanic", &known), Some("titanic"));
        assert_eq!(closest("zzzzqq", &known), None);
    }
}
