//! The clap structs turned into the plain settings below (`settings`, `supervise::PoolSpec`):
//! the only way the rest of the crate learns what the command line said.

use std::path::Path;

use super::{IoArgs, OutputArgs, RunArgs, SupervisionArgs, UpArgs, ViewArgs, WorkerLogArgs};
use crate::settings::{IoFlags, Output, Supervision, Up, View, WorkerLogFlags};
use crate::supervise::PoolSpec;

impl From<&SupervisionArgs> for Supervision {
    fn from(args: &SupervisionArgs) -> Self {
        Supervision {
            stop_timeout: args.stop_timeout,
            restart: args.restart,
            stop_signal: args.stop_signal,
            track: args.track,
            shm: args.shm.clone(),
            no_guardian: args.no_guardian,
        }
    }
}

impl From<&ViewArgs> for View {
    fn from(args: &ViewArgs) -> Self {
        View {
            headless: args.headless,
            record: args.record.clone(),
            samples: args.samples,
            scrollback: args.scrollback,
        }
    }
}

impl From<&OutputArgs> for Output {
    fn from(args: &OutputArgs) -> Self {
        Output {
            view: (&args.view).into(),
            sample_interval: args.sample_interval,
        }
    }
}

impl From<&IoArgs> for IoFlags {
    fn from(args: &IoArgs) -> Self {
        IoFlags {
            buffered: args.buffered,
            line_buffered: args.line_buffered,
            pty: args.pty,
            stdin: args.stdin,
            no_python_hooks: args.no_python_hooks,
        }
    }
}

impl From<&WorkerLogArgs> for WorkerLogFlags {
    fn from(args: &WorkerLogArgs) -> Self {
        WorkerLogFlags {
            template: args.worker_log.clone(),
            max_bytes: args.worker_log_max,
            keep: args.worker_log_keep,
        }
    }
}

impl From<&UpArgs> for Up {
    fn from(args: &UpArgs) -> Self {
        Up {
            file: args.file.clone(),
            stop_timeout: args.stop_timeout,
            restart: args.restart,
            stop_signal: args.stop_signal,
            track: args.track,
            shm: args.shm.clone(),
            no_guardian: args.no_guardian,
            view: (&args.view).into(),
            sample_interval: args.sample_interval,
            io: (&args.io).into(),
            procfile: args.procfile.clone(),
            port_base: args.port_base,
            env_file: args.env_file.clone(),
            worker_log: (&args.worker_log).into(),
        }
    }
}

impl RunArgs {
    /// The pool a `run` command describes.
    pub fn pool(&self) -> PoolSpec {
        let name = self.name.clone().unwrap_or_else(|| {
            Path::new(&self.command[0])
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "workers".into())
        });
        PoolSpec {
            name,
            size: self.workers,
            argv: self.command.clone(),
            env: Vec::new(),
            cwd: None,
            restart: self.supervision.restart,
            stop_signal: self.supervision.stop_signal,
            io: IoFlags::from(&self.io).worker_io(),
            policy: Default::default(),
            launch: Default::default(),
        }
    }
}
