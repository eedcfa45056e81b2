//! Where mlab keeps its own files: the install home, the task venv and the
//! installed benchmarks folder.

use std::path::PathBuf;

/// `$MLAB_HOME`, else `$XDG_DATA_HOME/mlab`, else `~/.local/share/mlab`.
pub fn mlab_home() -> PathBuf {
    if let Some(h) = std::env::var_os("MLAB_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h);
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("mlab");
    }
    home_dir().join(".local/share/mlab")
}

pub fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// The Python of the venv that install.sh makes.
pub fn venv_python() -> PathBuf {
    mlab_home().join("venv/bin/python")
}

/// The benchmarks folder that install.sh links into the home.
pub fn installed_benchmarks() -> PathBuf {
    mlab_home().join("benchmarks")
}
