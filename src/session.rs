//! Running a supervised session: turns `run`/`demo` arguments into an engine configuration,
//! splits off the guardian, starts the engine and hands it to the TUI or the headless printer.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cli::{OutputArgs, SupervisionArgs, TrackArg};
use crate::headless::{Recorder, print_events};
use crate::supervise::{self, EngineConfig, PoolSpec};
use crate::track::TrackMode;

/// Everything a session needs besides its pools.
pub struct SessionOptions<'a> {
    pub supervision: &'a SupervisionArgs,
    pub output: &'a OutputArgs,
    pub log: Option<&'a Path>,
    pub title: String,
    /// Decoder rules for the TUI's shared-memory view (the config's `[[shm.layout]]`).
    pub shm_rules: Vec<crate::inspect::shm::decode::rules::FormatRule>,
}

/// Must run while the process is single-threaded: splits off the guardian and the watchdog.
/// `headless`: no TUI will own the terminal.
pub fn prepare(supervision: &SupervisionArgs, headless: bool) -> anyhow::Result<()> {
    if let Err(err) = supervise::spawn::raise_fd_limit() {
        tracing::warn!("cannot raise the open-files limit: {err}");
    }
    if !supervision.no_guardian {
        let options = supervise::guardian::GuardOptions {
            tui: !headless,
            stop_timeout: Duration::try_from_secs_f64(supervision.stop_timeout).unwrap_or_default(),
        };
        supervise::guardian::split(options).context("starting the guardian process")?;
    }
    Ok(())
}

/// Runs pools until the session ends; returns the exit status.
pub fn run_pools(
    pools: Vec<PoolSpec>,
    options: SessionOptions,
    clock: Instant,
) -> anyhow::Result<i32> {
    init_logging(options.log);
    let track = match options.supervision.track {
        TrackArg::Auto => TrackMode::Auto,
        TrackArg::Kernel => TrackMode::Kernel,
        TrackArg::Poll => TrackMode::Poll,
        TrackArg::Ptrace => TrackMode::Ptrace,
    };
    let headless = options.output.view.headless;
    // Before any worker starts; removed when this guard drops (the session's end).
    let segments = supervise::shm::OwnedSegments::create(
        &options.supervision.shm,
        supervise::guardian::session_pid(),
    )
    .context("creating --shm segments")?;
    let config = EngineConfig {
        pools,
        stop_timeout: Duration::from_secs_f64(options.supervision.stop_timeout),
        exit_when_done: headless,
        sample_interval: Duration::from_secs_f64(options.output.sample_interval),
        track,
        extra_env: segments.env().to_vec(),
        ..EngineConfig::default()
    };
    let recorder = match &options.output.view.record {
        Some(path) => Some(
            Recorder::create(path).with_context(|| format!("cannot write {}", path.display()))?,
        ),
        None => None,
    };
    let engine = match supervise::start(config, clock) {
        Ok(engine) => engine,
        Err(err) if err.kind() == std::io::ErrorKind::Unsupported => {
            // `--track kernel` where the kernel will not tell: a usage problem, exit 2.
            eprintln!("forkscope: {err}");
            return Ok(2);
        }
        Err(err) => return Err(err).context("starting the engine"),
    };
    let status = if headless {
        print_events(&engine, recorder, options.output.view.samples)
    } else {
        crate::ui::run(
            crate::ui::Source::Live(&engine),
            recorder,
            options.output.view.scrollback,
            &options.title,
            options.shm_rules,
        )?
    };
    engine.join();
    drop(segments);
    Ok(status)
}

/// Logs go to a file or nowhere: the terminal belongs to the TUI or to the JSON stream.
fn init_logging(path: Option<&Path>) {
    let Some(path) = path else { return };
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FORKSCOPE_LOG_LEVEL")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
}

/// The pool a `run` command describes.
pub fn pool_from_run(args: &crate::cli::RunArgs) -> PoolSpec {
    let name = args.name.clone().unwrap_or_else(|| {
        Path::new(&args.command[0])
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "workers".into())
    });
    PoolSpec {
        name,
        size: args.workers,
        argv: args.command.clone(),
        env: Vec::new(),
        cwd: None,
        restart: args.supervision.restart.into(),
        stop_signal: args.supervision.stop_signal,
    }
}
