//! Supervision: spawning pools, reaping, restart policy, stop escalation, pidfd signalling,
//! output capture and the guardian. The engine runs on its own thread and speaks only in
//! events (out) and actions (in).

pub mod capture;
pub mod channel;
pub mod engine;
pub mod guardian;
pub mod launch;
pub mod launch_rules;
pub mod lines;
pub mod os;
pub mod pidfd;
pub mod python_hooks;
pub mod ready;
pub mod reap;
pub(crate) mod sampler;
pub mod session_files;
pub mod shm;
pub mod spawn;
pub mod steps;
pub mod tree;
pub mod wakeup;
mod watchdog;
pub mod worker_io;

use std::path::PathBuf;
use std::time::Duration;

use crate::model::policy::{PoolPolicy, RestartPolicy};

pub use channel::{ActionTx, EventRx};
pub use engine::{EngineHandle, start};

/// One pool of identical workers.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolSpec {
    pub name: String,
    pub size: u32,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub restart: RestartPolicy,
    /// The polite stop signal (default SIGTERM).
    pub stop_signal: i32,
    /// Buffering hints, pipes or a pty, stdin, Python hooks.
    pub io: worker_io::WorkerIo,
    /// Per-pool stop timeout, success codes, backoff, restart limit, start_secs.
    pub policy: PoolPolicy,
    /// `depends_on`, `ready`, `user`/`group`.
    pub launch: launch_rules::LaunchRules,
}

/// Re-reads the pools of a session (`forkscope up`'s file, merged with its command line) for
/// a reload; the error is what the person reads (`FILE:LINE:COL: ...`).
#[derive(Clone)]
pub struct Reloader(pub std::sync::Arc<dyn Fn() -> Result<Vec<PoolSpec>, String> + Send + Sync>);

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reloader")
    }
}

/// Everything the engine needs to run a session.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub pools: Vec<PoolSpec>,
    /// Time between the stop signal and SIGKILL, for pools without their own.
    pub stop_timeout: Duration,
    /// End the session once every worker has ended for good (`run --headless`).
    pub exit_when_done: bool,
    /// `/proc` sampling and polling interval.
    pub sample_interval: Duration,
    /// Extra environment for every worker (the `--shm` names today).
    pub extra_env: Vec<(String, String)>,
    /// Where descendants' lifecycle facts come from (`--track`).
    pub track: crate::track::TrackMode,
    /// Hold the workers at each lesson step they announce (`forkscope demo`).
    pub steps: Option<steps::StepConfig>,
    /// Pty size and Python hooks, shared by every spawn.
    pub io: worker_io::SessionIo,
    /// Sees every event before the consumer does (the control socket, `coord/`).
    pub tap: Option<channel::Tap>,
    /// Re-reads the pools on SIGHUP and `reload` (`up`); without it SIGHUP stops the session.
    pub reload: Option<Reloader>,
    /// The metrics address, announced in the `session` event (`--metrics`).
    pub metrics: Option<String>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            pools: Vec::new(),
            stop_timeout: Duration::from_secs(5),
            exit_when_done: true,
            sample_interval: Duration::from_secs(1),
            extra_env: Vec::new(),
            track: crate::track::TrackMode::default(),
            steps: None,
            io: worker_io::SessionIo::default(),
            tap: None,
            reload: None,
            metrics: None,
        }
    }
}
