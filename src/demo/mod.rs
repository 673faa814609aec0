//! Classroom demos: small pools of forkscope's own binary (`forkscope __demo-worker NAME`) that
//! fork, exit, crash, orphan and ignore signals on purpose (no Python or config needed), and
//! the Python demos of `python.rs`, which step through a lesson (`docs/teaching.md`).

pub mod python;
pub mod worker;

/// The source of the built-in demos' workers, for `forkscope demo --print`.
pub const WORKER_SOURCE: &str = include_str!("worker.rs");

/// What `forkscope demo NAME` names.
pub enum Chosen {
    /// A demo built from forkscope's own binary.
    Builtin(&'static Demo),
    /// A Python demo shipped in the binary.
    Python(&'static python::PyDemo),
    /// A teacher's own Python file (a NAME ending in `.py`).
    File(std::path::PathBuf),
}

/// Finds what `name` names: a built-in demo, a Python demo, or a `.py` file.
pub fn choose(name: &str) -> Option<Chosen> {
    if let Some(demo) = find(name) {
        return Some(Chosen::Builtin(demo));
    }
    if let Some(demo) = python::find(name) {
        return Some(Chosen::Python(demo));
    }
    name.ends_with(".py")
        .then(|| Chosen::File(std::path::PathBuf::from(name)))
}

/// Every demo as `--list` shows it: name and one line of what it shows.
pub fn catalogue() -> Vec<(&'static str, &'static str)> {
    DEMOS
        .iter()
        .map(|d| (d.name, d.summary))
        .chain(python::PY_DEMOS.iter().map(|d| (d.name, d.summary)))
        .collect()
}

use crate::model::policy::RestartPolicy;
use crate::supervise::PoolSpec;

/// One demo: what it shows and the pool that shows it.
pub struct Demo {
    pub name: &'static str,
    pub summary: &'static str,
    pub workers: u32,
    pub restart: RestartPolicy,
}

pub const DEMOS: &[Demo] = &[
    Demo {
        name: "tour",
        summary: "four workers: fork returning twice, exit codes, SIGTERM, SIGSEGV, an orphan, a zombie",
        workers: 4,
        restart: RestartPolicy::Never,
    },
    Demo {
        name: "ignore-term",
        summary: "a worker whose child ignores SIGTERM: quit and watch the stop escalate to SIGKILL",
        workers: 1,
        restart: RestartPolicy::Never,
    },
    Demo {
        name: "crashloop",
        summary: "a worker that exits 1 at once, restarted with backoff until marked failed",
        workers: 1,
        restart: RestartPolicy::OnFailure,
    },
    Demo {
        name: "flood",
        summary: "a worker writing lines as fast as it can: scrollback stays bounded, nothing blocks",
        workers: 1,
        restart: RestartPolicy::Never,
    },
];

/// Finds a demo by name.
pub fn find(name: &str) -> Option<&'static Demo> {
    DEMOS.iter().find(|d| d.name == name)
}

/// The environment variable that carries `--pace` to the demo workers.
pub const PACE_ENV: &str = "FORKSCOPE_DEMO_PACE";

/// The pool that runs `demo` with this very binary; `pace` scales the demo's pauses.
pub fn pool(demo: &Demo, stop_signal: i32, pace: f64) -> std::io::Result<PoolSpec> {
    let exe = std::env::current_exe()?;
    Ok(PoolSpec {
        name: demo.name.to_string(),
        size: demo.workers,
        argv: vec![
            exe.to_string_lossy().into_owned(),
            "__demo-worker".into(),
            demo.name.into(),
        ],
        env: vec![(PACE_ENV.to_string(), pace.to_string())],
        cwd: None,
        restart: demo.restart,
        stop_signal,
        io: Default::default(),
        policy: Default::default(),
        launch: Default::default(),
    })
}
