//! `forkscope up`: the config file merged with the command line into what a session needs.
//! Flags given on the command line win over the file: `--stop-timeout`, `--sample-interval`
//! and `--track` replace the session-wide keys; `--restart` and `--stop-signal` replace every
//! pool's value; `--shm NAME:SIZE` adds a segment (or resizes the file's segment NAME).
//! `--procfile` reads a Procfile (and its `.env`) instead of the config file.

use std::path::Path;

use super::procfile::{DEFAULT_PORT_BASE, ProcfileSource};
use super::{Config, ConfigError, DEFAULT_FILE, Located, load};
use crate::inspect::shm::decode::rules::FormatRule;
use crate::model::policy::RestartPolicy;
use crate::settings::{Output, Supervision, Up};
use crate::supervise::PoolSpec;
use crate::supervise::shm::ShmSpec;
use crate::track::TrackMode;

/// Defaults where neither the file nor the command line says (as `run`'s).
const DEFAULT_STOP_TIMEOUT: f64 = 5.0;
const DEFAULT_SAMPLE_INTERVAL: f64 = 1.0;

/// Everything `up` runs with.
#[derive(Debug)]
pub struct UpPlan {
    pub pools: Vec<PoolSpec>,
    pub supervision: Supervision,
    pub output: Output,
    /// The file's `[[shm.layout]]` rules, for the TUI's shared-memory view.
    pub layouts: Vec<FormatRule>,
    pub title: String,
    /// Pools with a `log` (the file's, then `--worker-log*`).
    pub logs: Vec<(String, crate::obs::logs::LogSpec)>,
}

/// Loads the config `up` names (or `./forkscope.toml`, or the `--procfile`) and merges the
/// command line into it.
pub fn plan(args: &Up) -> Result<UpPlan, ConfigError> {
    if let Some(procfile) = &args.procfile {
        let config = super::procfile::load(&ProcfileSource {
            procfile,
            env_file: args.env_file.as_deref(),
            port_base: args.port_base.unwrap_or(DEFAULT_PORT_BASE),
        })?;
        return merge(config, args);
    }
    let (path, explicit) = match &args.file {
        Some(p) => (p.as_path(), true),
        None => (Path::new(DEFAULT_FILE), false),
    };
    let config = load(path, explicit)?;
    merge(config, args)
}

/// Merges the command line into a loaded config. A config without pools is an error here.
pub fn merge(config: Config, args: &Up) -> Result<UpPlan, ConfigError> {
    if config.pools.is_empty() {
        return Err(ConfigError::At(Box::new(Located {
            path: config.path.display().to_string(),
            line: 1,
            col: 1,
            message: "no [[pool]] table: `up` needs at least one pool \
                      ([[pool]] with name and command)"
                .into(),
            excerpt: String::new(),
        })));
    }
    let mut pools = config.pools;
    for pool in &mut pools {
        if let Some(restart) = args.restart {
            pool.restart = restart;
        }
        if let Some(signal) = args.stop_signal {
            pool.stop_signal = signal;
        }
        args.io.apply_to(&mut pool.io);
    }
    let mut shm: Vec<ShmSpec> = config.segments;
    for spec in &args.shm {
        match shm.iter_mut().find(|s| s.name == spec.name) {
            Some(existing) => existing.size = spec.size,
            None => shm.push(spec.clone()),
        }
    }
    let supervision = Supervision {
        stop_timeout: args
            .stop_timeout
            .or(config.stop_timeout)
            .unwrap_or(DEFAULT_STOP_TIMEOUT),
        // Per pool (already in `pools`); the session-wide values are only defaults.
        restart: args.restart.unwrap_or(RestartPolicy::Never),
        stop_signal: args.stop_signal.unwrap_or(libc::SIGTERM),
        track: args.track.or(config.track).unwrap_or(TrackMode::Auto),
        shm,
        no_guardian: args.no_guardian,
    };
    let output = Output {
        view: args.view.clone(),
        sample_interval: args
            .sample_interval
            .or(config.sample_interval)
            .unwrap_or(DEFAULT_SAMPLE_INTERVAL),
    };
    let names: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
    let title = format!("up {} ({})", config.path.display(), names.join(", "));
    let mut logs = config.logs;
    let pool_names: Vec<String> = pools.iter().map(|p| p.name.clone()).collect();
    args.worker_log.apply_to(&pool_names, &mut logs);
    Ok(UpPlan {
        pools,
        supervision,
        output,
        layouts: config.layouts,
        title,
        logs,
    })
}
