//! The Python demos: one stdlib-only file each in `assets/demos/`, built into the binary,
//! written to a private directory when run (spawned workers re-import their main module
//! from a file) and run with the real `python3` found on `PATH`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::supervise::PoolSpec;

/// One Python demo.
pub struct PyDemo {
    pub name: &'static str,
    pub summary: &'static str,
    pub source: &'static str,
}

macro_rules! py_demo {
    ($name:literal, $summary:literal) => {
        PyDemo {
            name: $name,
            summary: $summary,
            source: include_str!(concat!("../../assets/demos/demo_", $name, ".py")),
        }
    };
}

pub const PY_DEMOS: &[PyDemo] = &[
    py_demo!(
        "process",
        "Python: Process start/join/is_alive/exitcode; os.fork returning twice, two copies of a variable"
    ),
    py_demo!(
        "endings",
        "Python: exit(3), an exception, terminate, kill, a segfault, a clean exit: exitcode and $?"
    ),
    py_demo!(
        "pool",
        "Python: Pool.map against a serial loop (speedup, CPUs), apply_async, ProcessPoolExecutor"
    ),
    py_demo!(
        "queue",
        "Python: producers and consumers on a Queue, a poison pill, a consumer blocked in get()"
    ),
    py_demo!(
        "pipe",
        "Python: a three-stage Pipe pipeline, then the same pipeline hung on an end nobody writes"
    ),
    py_demo!(
        "shared",
        "Python: Value/Array counters with and without the lock (lost updates), a live ShareableList"
    ),
    py_demo!(
        "sync",
        "Python: a Barrier with a late party, an Event, Semaphore(2) limiting a crowd, a Lock held too long"
    ),
    py_demo!(
        "manager",
        "Python: a Manager dict shared by workers, and the server process that holds it"
    ),
    py_demo!(
        "start-methods",
        "Python: fork, spawn and forkserver side by side; the resource tracker cleans a leaked segment"
    ),
    py_demo!(
        "zombie-orphan",
        "Python: a zombie that stays until its parent waits; an orphan adopted by the subreaper"
    ),
];

/// Finds a Python demo by name.
pub fn find(name: &str) -> Option<&'static PyDemo> {
    PY_DEMOS.iter().find(|d| d.name == name)
}

/// Why a Python demo cannot run.
#[derive(Debug, thiserror::Error)]
pub enum PythonDemoError {
    #[error(
        "this demo needs Python 3, and no `python3` is on PATH: install Python 3 \
         (e.g. `apt install python3`, `dnf install python3`, `brew install python`) \
         or run the built-in tour, which needs nothing: `forkscope demo`"
    )]
    NoPython,
    #[error("{path}: {source}")]
    Script {
        path: String,
        source: std::io::Error,
    },
}

/// The `python3` on `PATH`, as an executable file.
pub fn python_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("python3"))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The interpreter behind `python3` (a pyenv shim forks a shell before Python: the demo's
/// tree is clearer without it). Falls back to the `python3` found on `PATH`.
pub fn interpreter() -> Result<PathBuf, PythonDemoError> {
    let on_path = python_on_path().ok_or(PythonDemoError::NoPython)?;
    let real = std::process::Command::new(&on_path)
        .args(["-c", "import sys; print(sys.executable)"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        .filter(|p| p.is_absolute() && p.is_file());
    Ok(real.unwrap_or(on_path))
}

/// A demo's source written to a private directory, removed when this is dropped.
#[derive(Debug)]
pub struct Script {
    pub path: PathBuf,
    dir: Option<PathBuf>,
}

impl Script {
    /// Writes a built-in demo to `$TMPDIR/forkscope-demo-PID/NAME.py`.
    pub fn write(demo: &PyDemo) -> Result<Script, PythonDemoError> {
        let dir = std::env::temp_dir().join(format!("forkscope-demo-{}", std::process::id()));
        let path = dir.join(format!("demo_{}.py", demo.name));
        let failed = |source| PythonDemoError::Script {
            path: path.display().to_string(),
            source,
        };
        private_dir(&dir).map_err(failed)?;
        std::fs::write(&path, demo.source).map_err(failed)?;
        Ok(Script {
            path,
            dir: Some(dir),
        })
    }

    /// A teacher's own demo file, run where it is (never removed).
    pub fn existing(path: &Path) -> Result<Script, PythonDemoError> {
        let path = std::path::absolute(path).map_err(|source| PythonDemoError::Script {
            path: path.display().to_string(),
            source,
        })?;
        if let Err(source) = std::fs::File::open(&path) {
            return Err(PythonDemoError::Script {
                path: path.display().to_string(),
                source,
            });
        }
        Ok(Script { path, dir: None })
    }
}

/// Makes `dir` mode 0700, or accepts it if it is already a directory (not a symlink) of
/// ours that nobody else can write: nothing is ever written through someone else's link.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            let meta = std::fs::symlink_metadata(dir)?;
            let me = rustix::process::getuid().as_raw();
            if meta.is_dir() && meta.uid() == me && meta.mode() & 0o022 == 0 {
                Ok(())
            } else {
                Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "exists and is not a private directory of this user",
                ))
            }
        }
        other => other,
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The one-worker pool that runs `script` with `python`; `pace` scales its pauses.
pub fn pool(name: &str, python: &Path, script: &Script, stop_signal: i32, pace: f64) -> PoolSpec {
    PoolSpec {
        name: name.to_string(),
        size: 1,
        argv: vec![
            python.to_string_lossy().into_owned(),
            script.path.to_string_lossy().into_owned(),
        ],
        env: vec![(super::PACE_ENV.to_string(), pace.to_string())],
        cwd: None,
        io: Default::default(),
        policy: Default::default(),
        launch: Default::default(),
        restart: crate::model::policy::RestartPolicy::Never,
        stop_signal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_demo_is_short_readable_and_speaks_the_step_protocol() {
        for demo in PY_DEMOS {
            let lines = demo.source.lines().count();
            assert!(lines < 80, "{}: {lines} lines", demo.name);
            assert!(demo.source.contains("@@forkscope-step"), "{}", demo.name);
            assert!(demo.source.contains("FORKSCOPE_STEP_FD"), "{}", demo.name);
            assert!(
                demo.source.starts_with("\"\"\""),
                "{}: a docstring first",
                demo.name
            );
            assert!(demo.summary.starts_with("Python: "), "{}", demo.name);
            for line in demo.source.lines() {
                assert!(line.chars().count() <= 100, "{}: {line}", demo.name);
            }
        }
    }

    #[test]
    fn the_directory_is_private_and_never_a_link() {
        let base = tempfile::tempdir().unwrap();
        let fresh = base.path().join("fresh");
        private_dir(&fresh).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        private_dir(&fresh).unwrap();
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&fresh, &link).unwrap();
        assert!(private_dir(&link).is_err());
        std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(private_dir(&fresh).is_err(), "writable by others");
    }

    #[test]
    fn a_script_is_removed_with_its_directory() {
        let script = Script::write(&PY_DEMOS[0]).unwrap();
        let dir = script.path.parent().unwrap().to_path_buf();
        assert_eq!(
            std::fs::read_to_string(&script.path).unwrap(),
            PY_DEMOS[0].source
        );
        drop(script);
        assert!(!dir.exists());
    }
}
