//! Observers of the event stream for operators, outside the engine: per-pool log files with
//! rotation (`logs.rs`, `rotate.rs`) and Prometheus metrics (`metrics.rs`, served by
//! `server.rs`). Both are fed by one [`ObsTap`] in the engine's event sender, which also
//! passes every event on to the control socket's tap; `owners.rs` tells which worker a pid's
//! events belong to.

pub mod logs;
pub mod metrics;
pub mod owners;
pub mod rotate;
pub mod server;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use mio::Waker;

use crate::model::{Event, EventBody};
use crate::supervise::channel::EventTx;
use crate::supervise::channel::{EventTap, Tap};
use logs::{LogRouter, LogSpec, LogWriter};
use metrics::{EngineCounters, MetricsFold};
use owners::Owners;

/// What the tap folds, shared with the metrics server.
pub struct ObsState {
    owners: Owners,
    metrics: Option<MetricsFold>,
    logs: Option<LogRouter>,
    /// The logs a reload read, applied when its `reload` event passes.
    reloaded_logs: Option<Vec<(String, LogSpec)>>,
}

fn lock(state: &Mutex<ObsState>) -> MutexGuard<'_, ObsState> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The engine's tap when logs or metrics are on: folds, then passes the event on.
pub struct ObsTap {
    state: Arc<Mutex<ObsState>>,
    next: Option<Tap>,
}

impl EventTap for ObsTap {
    fn observe(&self, event: &Event) {
        if let Some(next) = &self.next {
            next.0.observe(event);
        }
        if let EventBody::OutputLines(lines) = &event.body {
            for body in lines.bodies() {
                self.apply(&Event { t: event.t, body });
            }
        } else {
            self.apply(event);
        }
    }

    fn congested(&self, waker: &Arc<Waker>) -> bool {
        if let Some(next) = &self.next
            && next.0.congested(waker)
        {
            return true;
        }
        lock(&self.state)
            .logs
            .as_ref()
            .is_some_and(|logs| logs.congested(waker))
    }
}

impl ObsTap {
    /// Folds one event into the metrics and routes its line to the logs.
    fn apply(&self, event: &Event) {
        let mut state = lock(&self.state);
        let ObsState {
            owners,
            metrics,
            logs,
            reloaded_logs,
        } = &mut *state;
        let spawned = owners.apply(&event.body);
        match &event.body {
            EventBody::Output {
                pid, stream, line, ..
            } => {
                let slot = owners.slot_of(*pid);
                if let (Some(logs), Some(slot)) = (logs.as_mut(), slot) {
                    logs.line(slot, event.t, *stream, line);
                }
                if let Some(metrics) = metrics {
                    metrics.apply(event, slot);
                }
            }
            EventBody::Sample { procs, .. } => {
                if let Some(metrics) = metrics {
                    metrics.apply(event, None);
                    let owned: Vec<_> = procs
                        .iter()
                        .map(|p| (owners.slot_of(p.pid).cloned(), p))
                        .collect();
                    metrics.sample(event.t, &owned);
                }
            }
            body => {
                if let Some(logs) = logs {
                    match body {
                        EventBody::Session { started_unix, .. } => logs.session(*started_unix),
                        EventBody::Spawn { .. } => {
                            if let Some(slot) = &spawned {
                                logs.spawned(slot);
                            }
                        }
                        EventBody::Exit {
                            pid, pool: Some(_), ..
                        } => {
                            if let Some(slot) = owners.slot_of(*pid) {
                                logs.exited(slot);
                            }
                        }
                        EventBody::Reload {
                            ok: true,
                            changed,
                            removed,
                            ..
                        } => {
                            if let Some(specs) = reloaded_logs.take() {
                                let restarting: Vec<String> =
                                    changed.iter().chain(removed).cloned().collect();
                                logs.reload(specs, &restarting);
                            }
                        }
                        EventBody::End { .. } => logs.end(),
                        _ => {}
                    }
                }
                if let Some(metrics) = metrics {
                    metrics.apply(event, spawned.as_ref());
                }
            }
        }
    }
}

/// What the operator asked for.
#[derive(Clone, Debug, Default)]
pub struct ObsOptions {
    /// `--metrics ADDR` and whether `--metrics-public` allows a non-loopback one.
    pub metrics: Option<(SocketAddr, bool)>,
    /// Pools with a `log`, by name.
    pub logs: Vec<(String, LogSpec)>,
}

/// Logs and metrics of a session, from before the engine starts until after it ended.
pub struct Observers {
    state: Arc<Mutex<ObsState>>,
    listener: Option<std::net::TcpListener>,
    writer: Option<LogWriter>,
    server: Option<server::MetricsServer>,
    /// The bound metrics address.
    pub metrics_addr: Option<SocketAddr>,
}

/// Checks and binds what `options` asks (a usage problem is `Err` with the message: exit
/// 2, nothing started); `Ok(None)` when nothing is asked. A `reloadable` session always has
/// a log writer: a reload may add a pool with a `log`.
pub fn prepare(
    options: &ObsOptions,
    pools: &[crate::supervise::PoolSpec],
    reloadable: bool,
) -> Result<Option<Observers>, String> {
    if options.metrics.is_none() && options.logs.is_empty() && !reloadable {
        return Ok(None);
    }
    let listener = match options.metrics {
        Some((addr, public)) => {
            server::check_addr(addr, public)?;
            Some(server::bind(addr)?)
        }
        None => None,
    };
    let metrics_addr = listener.as_ref().and_then(|l| l.local_addr().ok());
    logs::check_paths(&logs::pool_specs(pools, &options.logs))?;
    let (router, writer) = if options.logs.is_empty() && !reloadable {
        (None, None)
    } else {
        let specs: HashMap<String, LogSpec> = options.logs.iter().cloned().collect();
        let (router, writer) =
            logs::start(specs).map_err(|err| format!("starting the log writer: {err}"))?;
        (Some(router), Some(writer))
    };
    let state = ObsState {
        owners: Owners::default(),
        metrics: listener
            .is_some()
            .then(|| MetricsFold::new(metrics::host_name())),
        logs: router,
        reloaded_logs: None,
    };
    Ok(Some(Observers {
        state: Arc::new(Mutex::new(state)),
        listener,
        writer,
        server: None,
        metrics_addr,
    }))
}

impl Observers {
    /// The engine's tap: this, passing events on to `next` (the control socket's).
    pub fn tap(&self, next: Option<Tap>) -> Tap {
        Tap(Arc::new(ObsTap {
            state: self.state.clone(),
            next,
        }))
    }

    /// Checks the logs a reload read (a path that cannot be written refuses the reload) and
    /// keeps them for its `reload` event.
    pub fn log_reloader(
        &self,
    ) -> impl Fn(&[crate::supervise::PoolSpec], Vec<(String, LogSpec)>) -> Result<(), String>
    + Send
    + Sync
    + 'static {
        let state = self.state.clone();
        move |pools, specs| {
            logs::check_paths(&logs::pool_specs(pools, &specs))?;
            lock(&state).reloaded_logs = Some(specs);
            Ok(())
        }
    }

    /// Starts serving metrics once the engine runs (its sender has the pause count).
    pub fn serve(&mut self, emitter: EventTx) -> std::io::Result<()> {
        let Some(listener) = self.listener.take() else {
            return Ok(());
        };
        let errors = self.writer.as_ref().map(LogWriter::error_counter);
        let counters = Box::new(move || EngineCounters {
            backpressure_pauses: emitter.backpressure_pauses(),
            unknown_exits: emitter.unknown_exits(),
            log_write_errors: errors.as_ref().map_or(0, |e| e()),
        });
        self.server = Some(server::serve(listener, self.state.clone(), counters)?);
        Ok(())
    }

    /// After the engine's end: every log line on disk, the metrics server stopped.
    pub fn finish(mut self) {
        if let Some(writer) = self.writer.take() {
            writer.finish();
        }
        drop(self.server.take());
    }
}
