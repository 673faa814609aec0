//! The plain settings a session runs with: what the command line (`cli.rs`, which converts
//! its clap structs into these) and the config file (`config/up.rs`) are turned into, and
//! what `session.rs` reads. No clap here: the arrows point down to this module.

use std::path::PathBuf;

use crate::model::policy::RestartPolicy;
use crate::obs::logs::LogSpec;
use crate::supervise::shm::ShmSpec;
use crate::supervise::worker_io::{Buffering, StdinMode, WorkerIo};
use crate::track::TrackMode;

/// How workers are stopped and restarted, and what the session creates for them.
#[derive(Clone, Debug, PartialEq)]
pub struct Supervision {
    /// Seconds between the stop signal and SIGKILL.
    pub stop_timeout: f64,
    pub restart: RestartPolicy,
    /// The polite stop signal.
    pub stop_signal: i32,
    pub track: TrackMode,
    /// Shared-memory segments created before the workers start.
    pub shm: Vec<ShmSpec>,
    /// Run without the guardian process (tests of the guardian itself).
    pub no_guardian: bool,
}

/// How the session is shown and recorded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct View {
    /// No TUI: JSON lines on stdout.
    pub headless: bool,
    /// Also write every event to this file.
    pub record: Option<PathBuf>,
    /// With `headless`, also print `sample` events.
    pub samples: bool,
    /// Lines of output kept per process in the TUI.
    pub scrollback: usize,
}

/// How the session is shown, recorded and sampled.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Output {
    pub view: View,
    /// Seconds between `/proc` samples of the tree.
    pub sample_interval: f64,
}

/// Output flags given on the command line; each one given overrides a pool's setting.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IoFlags {
    pub buffered: bool,
    pub line_buffered: bool,
    pub pty: bool,
    pub stdin: Option<StdinMode>,
    pub no_python_hooks: bool,
}

impl IoFlags {
    /// Applies the flags given to a pool's settings (flags not given change nothing).
    pub fn apply_to(&self, io: &mut WorkerIo) {
        if self.buffered {
            io.buffering = Buffering::Buffered;
        }
        if self.line_buffered {
            io.buffering = Buffering::LineBuffered { libstdbuf: None };
        }
        if self.pty {
            io.pty = true;
        }
        if let Some(stdin) = self.stdin {
            io.stdin = stdin;
        }
        if self.no_python_hooks {
            io.python_hooks = false;
        }
    }

    /// Output settings of `run` and `demo`: live, pipes, Python hooks on, then the flags.
    pub fn worker_io(&self) -> WorkerIo {
        let mut io = WorkerIo {
            python_hooks: true,
            ..Default::default()
        };
        self.apply_to(&mut io);
        io
    }
}

/// Worker-log flags given on the command line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkerLogFlags {
    /// Every pool gets a log with this template.
    pub template: Option<String>,
    pub max_bytes: Option<u64>,
    pub keep: Option<u32>,
}

impl WorkerLogFlags {
    /// Applies the flags to the pools' logs: a template gives every pool one, the size flags
    /// change every log there is.
    pub fn apply_to(&self, pools: &[String], specs: &mut Vec<(String, LogSpec)>) {
        if let Some(template) = &self.template {
            specs.clear();
            for pool in pools {
                specs.push((pool.clone(), LogSpec::new(template.clone())));
            }
        }
        for (_, spec) in specs.iter_mut() {
            if let Some(max) = self.max_bytes {
                spec.max_bytes = max;
            }
            if let Some(keep) = self.keep {
                spec.keep = keep;
            }
        }
    }
}

/// What `forkscope up` asks for: where the pools come from, and the command line's
/// overrides of the file (`None`: the file's value, else the default).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Up {
    /// The config file (default: ./forkscope.toml).
    pub file: Option<PathBuf>,
    pub stop_timeout: Option<f64>,
    pub restart: Option<RestartPolicy>,
    pub stop_signal: Option<i32>,
    pub track: Option<TrackMode>,
    /// Segments to add (or resize, by name).
    pub shm: Vec<ShmSpec>,
    pub no_guardian: bool,
    pub view: View,
    pub sample_interval: Option<f64>,
    pub io: IoFlags,
    /// A Procfile instead of the config file, with its port base and environment file.
    pub procfile: Option<PathBuf>,
    pub port_base: Option<u16>,
    pub env_file: Option<PathBuf>,
    pub worker_log: WorkerLogFlags,
}
