//! The Python helper (`import forkscope`, `assets/python/forkscope/__init__.py`), shipped
//! inside the binary and written out on demand to a per-user directory that
//! `forkscope python-path` prints and `run --python-helper` puts on the workers' PYTHONPATH.

use std::io;
use std::path::{Path, PathBuf};

const HELPER: &str = include_str!("../../assets/python/forkscope/__init__.py");

/// Writes the helper (when missing or different) and returns the directory to put on
/// PYTHONPATH.
pub fn write_helper() -> io::Result<PathBuf> {
    let dir = crate::supervise::session_files::socket_dir()?
        .join(format!("python-{}", env!("CARGO_PKG_VERSION")));
    let package = dir.join("forkscope");
    std::fs::create_dir_all(&package)?;
    let file = package.join("__init__.py");
    if std::fs::read_to_string(&file).ok().as_deref() != Some(HELPER) {
        // Written aside and renamed, so a Python starting meanwhile never reads half a file.
        let partial = package.join(format!(".__init__.py.{}", std::process::id()));
        std::fs::write(&partial, HELPER)?;
        std::fs::rename(&partial, &file)?;
    }
    Ok(dir)
}

/// `PYTHONPATH` with `dir` first, keeping what the environment already had.
pub fn pythonpath_entry(dir: &Path) -> (String, String) {
    let mut value = dir.to_string_lossy().into_owned();
    if let Some(existing) = std::env::var_os("PYTHONPATH").filter(|p| !p.is_empty()) {
        value.push(':');
        value.push_str(&existing.to_string_lossy());
    }
    ("PYTHONPATH".into(), value)
}
