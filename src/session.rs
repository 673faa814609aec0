//! Running a supervised session: turns the session's settings (`settings`) into an engine
//! configuration, splits off the guardian, starts the engine and hands it to the TUI or the
//! headless printer.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::headless::print_events;
use crate::model::printable;
use crate::record::Recorder;
use crate::settings::{Output, Supervision};
use crate::supervise::{self, EngineConfig, PoolSpec};

/// Everything a session needs besides its pools.
pub struct SessionOptions<'a> {
    pub supervision: &'a Supervision,
    pub output: &'a Output,
    pub log: Option<&'a Path>,
    pub title: String,
    /// Decoder rules for the TUI's shared-memory view (the config's `[[shm.layout]]`).
    pub shm_rules: Vec<crate::inspect::shm::decode::rules::FormatRule>,
    /// Hold the workers at their lesson steps (`forkscope demo`).
    pub steps: Option<supervise::steps::StepConfig>,
    /// Reads the pools again on SIGHUP and `ctl reload` (`forkscope up`).
    pub reload: Option<ReadPools>,
    /// Worker logs and `--metrics`.
    pub obs: crate::obs::ObsOptions,
}

/// What a reload of `forkscope up` reads: the pools and their logs, or the error to show.
pub type ReadPools = std::sync::Arc<
    dyn Fn() -> Result<(Vec<PoolSpec>, Vec<(String, crate::obs::logs::LogSpec)>), String>
        + Send
        + Sync,
>;

/// Bad usage found while setting up (a `--shm` name that is taken): exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Must run while the process is single-threaded: creates the `--shm` segments (so the
/// guardian knows exactly what the session created), then splits off the guardian and the
/// watchdog. `headless`: no TUI will own the terminal.
pub fn prepare(
    supervision: &Supervision,
    headless: bool,
) -> anyhow::Result<supervise::shm::OwnedSegments> {
    // From here a stop signal waits for a handler (the guardian's, the engine's) instead of
    // killing a process that has none yet.
    supervise::engine::hold_stop_signals();
    if let Err(err) = supervise::spawn::raise_fd_limit() {
        tracing::warn!("cannot raise the open-files limit: {err}");
    }
    // The session pid: ours now, the guardian's after the split (the guardian keeps it).
    let segments =
        supervise::shm::OwnedSegments::create(&supervision.shm, supervise::guardian::session_pid())
            .map_err(|err| match err.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    anyhow::Error::new(UsageError(format!("--shm: {err}")))
                }
                _ => anyhow::Error::new(err).context("creating --shm segments"),
            })?;
    if !supervision.no_guardian {
        let options = supervise::guardian::GuardOptions {
            tui: !headless,
            stop_timeout: Duration::try_from_secs_f64(supervision.stop_timeout).unwrap_or_default(),
        };
        supervise::guardian::split(options).context("starting the guardian process")?;
    }
    Ok(segments)
}

/// Runs pools until the session ends; returns the exit status.
/// `segments` (from [`prepare`]) are removed when the session ends.
pub fn run_pools(
    mut pools: Vec<PoolSpec>,
    options: SessionOptions,
    segments: supervise::shm::OwnedSegments,
    clock: Instant,
) -> anyhow::Result<i32> {
    init_logging(options.log);
    if let Err(err) = supervise::worker_io::resolve(&mut pools) {
        // A usage problem (--line-buffered without libstdbuf...): exit 2, nothing started.
        eprintln!("forkscope: {err}");
        return Ok(2);
    }
    // Logs and metrics: a bad address or log path is a usage problem, found before anything
    // starts.
    let mut observers = match crate::obs::prepare(&options.obs, &pools, options.reload.is_some()) {
        Ok(observers) => observers,
        Err(err) => {
            eprintln!("forkscope: {}", printable::lines(&err));
            return Ok(2);
        }
    };
    let track = options.supervision.track;
    let headless = options.output.view.headless;
    // Bound before the workers start, so one that connects at once waits in the backlog.
    let service =
        match crate::coord::Service::bind(supervise::guardian::session_pid(), &options.title) {
            Ok(service) => Some(service),
            Err(err) => {
                tracing::warn!("no control socket: {err}");
                None
            }
        };
    let mut extra_env = segments.env().to_vec();
    if let Some(service) = &service {
        extra_env.push((
            "FORKSCOPE_SOCKET".into(),
            service.path().to_string_lossy().into_owned(),
        ));
    }
    // systemd `Type=notify` (with NOTIFY_SOCKET set): a service runs headless.
    let notifier = headless
        .then(|| crate::notify::ServiceNotifier::from_env(&pools))
        .flatten();
    let config = EngineConfig {
        pools,
        stop_timeout: Duration::from_secs_f64(options.supervision.stop_timeout),
        exit_when_done: headless,
        sample_interval: Duration::from_secs_f64(options.output.sample_interval),
        track,
        extra_env,
        steps: options.steps,
        reload: options.reload.map(|read| {
            let stage_logs = observers.as_ref().map(crate::obs::Observers::log_reloader);
            supervise::Reloader(std::sync::Arc::new(move || {
                let (pools, logs) = read()?;
                if let Some(stage_logs) = &stage_logs {
                    stage_logs(&pools, logs)?;
                }
                Ok(pools)
            }))
        }),
        tap: {
            let coord_tap = service.as_ref().map(crate::coord::Service::tap);
            match &observers {
                Some(observers) => Some(observers.tap(coord_tap)),
                None => coord_tap,
            }
        },
        metrics: observers
            .as_ref()
            .and_then(|o| o.metrics_addr)
            .map(|addr| addr.to_string()),
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
            eprintln!("forkscope: {}", printable::lines(&err.to_string()));
            return Ok(2);
        }
        Err(err) => return Err(err).context("starting the engine"),
    };
    if let Some(observers) = observers.as_mut() {
        observers
            .serve(engine.emitter.clone())
            .context("serving --metrics")?;
    }
    let socket = match service {
        Some(service) => service
            .serve(
                engine.actions.clone(),
                engine.emitter.clone(),
                engine.engine_pid,
            )
            .map_err(|err| tracing::warn!("control socket not served: {err}"))
            .ok(),
        None => None,
    };
    // A recorded session records its shared memory's changes too (`shm` events).
    let shm_events = recorder.as_ref().and_then(|_| {
        crate::record::shm::ShmEvents::spawn(
            engine.engine_pid,
            engine.emitter.clone(),
            options.shm_rules.clone().into(),
            crate::record::shm::Bounds::default(),
        )
        .map_err(|err| tracing::warn!("shared memory not recorded: {err}"))
        .ok()
    });
    let status = if headless {
        print_events(&engine, recorder, options.output.view.samples, notifier)
    } else {
        crate::ui::run(
            crate::ui::Source::Live(&engine),
            Some(crate::live::Readers::live()),
            recorder,
            options.output.view.scrollback,
            &options.title,
            options.shm_rules,
        )?
    };
    drop(shm_events);
    engine.join();
    if let Some(observers) = observers {
        observers.finish();
    }
    // Removes the socket file; the guardian removes it if this process is killed instead.
    drop(socket);
    drop(segments);
    Ok(status)
}

/// The reload of `forkscope up`: the same file (or Procfile) and command line, read again.
pub fn up_reloader(args: crate::settings::Up) -> ReadPools {
    let args = std::sync::Arc::new(args);
    std::sync::Arc::new(move || {
        let plan = crate::config::up::plan(&args).map_err(|err| err.to_string())?;
        let mut pools = plan.pools;
        supervise::worker_io::resolve(&mut pools).map_err(|err| err.to_string())?;
        Ok((pools, plan.logs))
    })
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
