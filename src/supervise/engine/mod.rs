//! The engine: one thread, one `mio` poll loop over signals (SIGCHLD, SIGTERM, SIGINT,
//! SIGHUP), the action waker and every capture pipe, with timers for restarts, sampling and
//! stop escalation computed into the poll timeout. Nothing here busy-waits.

mod actions;
#[cfg(test)]
mod fake_os;
mod launch;
mod ptrace;
mod reaping;
mod reload;
mod sampling;
mod shared_pipes;
mod signals;
mod stop;
#[cfg(test)]
mod tests;
mod tracking;
mod workers;

use crate::model::NoticeLevel;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use super::EngineConfig;
use super::capture::Captures;
use super::channel::{ActionTx, EventRx, EventTx, channels};
use super::os::{Os, RealOs};
use super::python_hooks::{self, HooksServer};
use super::tree::become_subreaper;
use crate::model::policy::RestartTracker;
use crate::model::signals::signal_name;
use crate::model::{Action, EventBody, ExitStatus};
use crate::track::poll::PollTracker;
use tracking::{KernelSource, NETLINK};

/// How often zombies reported by a source are looked at in `/proc` (when there are any):
/// a `reap` is seen at most this late (or one sample interval, if shorter).
const ZOMBIE_CHECK_EVERY: Duration = Duration::from_millis(250);

pub use signals::hold_stop_signals;
use signals::release_stop_signals;
pub(crate) use stop::Phase;

const SIGNALS: Token = Token(0);
const WAKER: Token = Token(1);
/// While the consumer lags it wakes the engine when it catches up; this is a safety net.
const CONGESTION_NET: Duration = Duration::from_millis(100);

/// A running engine, seen from its consumer.
pub struct EngineHandle {
    pub events: EventRx,
    pub actions: ActionTx,
    /// Another sender on the event channel, for facts learnt outside the engine (the control
    /// socket's barriers and marks).
    pub emitter: EventTx,
    pub engine_pid: i32,
    thread: Option<JoinHandle<()>>,
}

impl EngineHandle {
    /// Waits for the engine thread (after its `end` event).
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the engine thread. Makes this process a child subreaper first, and subscribes to
/// kernel process events (per `config.track`) before any worker exists. With
/// `TrackMode::Kernel` and no kernel events, fails with `ErrorKind::Unsupported`.
pub fn start(config: EngineConfig, clock: Instant) -> io::Result<EngineHandle> {
    become_subreaper()?;
    let poll = Poll::new()?;
    let me = std::process::id() as i32;
    let (kernel, unavailable) = tracking::open(config.track, poll.registry(), me)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let mut signals = Signals::new([SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT])?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)?;
    // Handled from here on: a stop signal that came during start-up is delivered now.
    release_stop_signals();
    let mut config = config;
    let hooks = start_python_hooks(&mut config, me, &waker);
    let sampler = super::sampler::Sampler::start(waker.clone());
    let ready_waker = waker.clone();
    let (events_tx, events_rx, actions_tx, actions_rx) = channels(waker, clock);
    let events_tx = events_tx.with_tap(config.tap.clone());
    let emitter = events_tx.clone();
    // Before any worker exists: they inherit the gate's read end.
    let gate = config.steps.map(super::steps::StepGate::open).transpose()?;
    if let Some(gate) = &gate {
        config.extra_env.push(gate.env());
    }
    let mut engine = Engine::new(config, poll, signals, events_tx, actions_rx, me);
    engine.os = Box::new(RealOs);
    engine.captures.steps.held = gate.is_some();
    engine.gate = gate;
    engine.hooks = hooks;
    engine.sampler = Some(sampler);
    engine.launcher.checks = crate::supervise::ready::Checks::new(Arc::new(move || {
        let _ = ready_waker.wake();
    }));
    engine.kernel = kernel;
    engine.kernel_unavailable = unavailable;
    if engine.config.track == crate::track::TrackMode::Ptrace {
        engine.ptrace = Some(ptrace::Tracer::default());
    }
    let since_clock = clock.elapsed().as_secs_f64();
    engine.started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() - since_clock);
    let thread = std::thread::Builder::new()
        .name("engine".into())
        .spawn(move || engine.run())?;
    Ok(EngineHandle {
        events: events_rx,
        actions: actions_tx,
        emitter,
        engine_pid: me,
        thread: Some(thread),
    })
}

/// Starts the Python hooks' server when a pool wants it; without it workers run unhooked.
fn start_python_hooks(
    config: &mut EngineConfig,
    me: i32,
    waker: &Arc<Waker>,
) -> Option<HooksServer> {
    if !python_hooks::wanted(&config.pools) {
        return None;
    }
    let waker = waker.clone();
    match HooksServer::start(
        me,
        Arc::new(move || {
            let _ = waker.wake();
        }),
    ) {
        Ok(server) => {
            config.io.python_hooks = Some(server.paths().clone());
            Some(server)
        }
        Err(err) => {
            tracing::warn!("python hooks unavailable: {err}");
            None
        }
    }
}

/// Where a worker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WorkerState {
    /// Queued for its first start (`Engine::starting`).
    Starting,
    Running,
    /// Will be started again at this instant.
    Waiting(Instant),
    /// Ended for good (policy said so, or the session is quitting).
    Ended,
    /// Crash loop or spawn failure: given up on.
    Failed,
}

#[derive(Debug)]
struct Worker {
    pid: Option<i32>,
    pidfd: Option<super::pidfd::Pidfd>,
    start_time: Option<u64>,
    started: Instant,
    restarts: u32,
    tracker: RestartTracker,
    state: WorkerState,
    last: Option<ExitStatus>,
    spawn_failed: bool,
    restart_now: bool,
    retiring: bool,
}

impl Worker {
    fn new() -> Worker {
        Worker {
            pid: None,
            pidfd: None,
            start_time: None,
            started: Instant::now(),
            restarts: 0,
            tracker: RestartTracker::default(),
            state: WorkerState::Ended,
            last: None,
            spawn_failed: false,
            restart_now: false,
            retiring: false,
        }
    }
}

#[derive(Debug)]
struct Pool {
    spec: super::PoolSpec,
    target: u32,
    workers: BTreeMap<u32, Worker>,
    /// While stopping: when this pool's workers still running get SIGKILL.
    kill_at: Option<Instant>,
    /// Dependencies, readiness, removal by a reload.
    launch: launch::PoolLaunch,
}

/// (pool index, worker index)
type WorkerRef = (usize, u32);

pub(crate) struct Engine {
    config: EngineConfig,
    /// Spawning, reaping, signalling, `/proc` reads: the real OS, or a fake in tests.
    os: Box<dyn Os>,
    me: i32,
    poll: Poll,
    signals: Signals,
    events: EventTx,
    actions: Receiver<Action>,
    captures: Captures,
    pools: Vec<Pool>,
    by_pid: HashMap<i32, WorkerRef>,
    tracker: PollTracker,
    /// Kernel process events, when that source is active.
    kernel: Option<KernelSource>,
    /// Why `auto` fell back to polling.
    kernel_unavailable: Option<String>,
    /// The ptrace source, when active.
    ptrace: Option<ptrace::Tracer>,
    phase: Phase,
    quit: bool,
    next_sample: Instant,
    more_to_reap: bool,
    /// Identities already sent the polite stop signal in this stop.
    stop_signalled: HashSet<(i32, u64)>,
    /// Identities already sent SIGKILL in this stop.
    kill_signalled: HashSet<(i32, u64)>,
    /// The longest stop timeout of the pools being stopped (the whole-tree sweep's).
    stop_timeout_in_force: Duration,
    /// Children changed since orphans were last looked for.
    orphans_dirty: bool,
    /// Wall-clock time of the event clock's zero.
    started_unix: f64,
    /// When waiting zombies are next looked at.
    next_zombie_check: Instant,
    /// Holds a demo at its lesson steps (`forkscope demo`).
    gate: Option<super::steps::StepGate>,
    /// Where Python processes hand over pipes of their own.
    hooks: Option<HooksServer>,
    /// Workers not started yet: started a few at a time between turns of the loop, so
    /// exits and signals are not held up by the start of a big pool.
    starting: VecDeque<WorkerRef>,
    /// The `/proc` reads of samples, off this thread.
    sampler: Option<super::sampler::Sampler>,
    /// Pids reaped while a sample was being read (its reading of them is stale).
    reaped_while_sampling: Vec<i32>,
    /// Readiness checks and workers stopped by a reload.
    launcher: launch::Launcher,
}

impl Engine {
    fn new(
        config: EngineConfig,
        poll: Poll,
        signals: Signals,
        events: EventTx,
        actions: Receiver<Action>,
        me: i32,
    ) -> Engine {
        let pools = config.pools.iter().cloned().map(Pool::new).collect();
        Engine {
            next_sample: Instant::now() + config.sample_interval,
            config,
            os: Box::new(RealOs),
            me,
            poll,
            signals,
            events,
            actions,
            captures: Captures::new(),
            pools,
            by_pid: HashMap::new(),
            tracker: PollTracker::for_engine(me),
            kernel: None,
            kernel_unavailable: None,
            ptrace: None,
            phase: Phase::Running,
            quit: false,
            more_to_reap: false,
            stop_signalled: HashSet::new(),
            kill_signalled: HashSet::new(),
            stop_timeout_in_force: Duration::ZERO,
            orphans_dirty: false,
            started_unix: 0.0,
            next_zombie_check: Instant::now(),
            gate: None,
            hooks: None,
            starting: VecDeque::new(),
            sampler: None,
            reaped_while_sampling: Vec::new(),
            launcher: launch::Launcher::default(),
        }
    }

    fn run(mut self) {
        if let Err(err) = super::wakeup::prefer_wakeups() {
            tracing::debug!("no short scheduler slice for the engine: {err}");
        }
        self.emit_session();
        // Pools without dependencies start now; the others once theirs are started.
        self.launch_step();
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = self.next_timeout();
            if let Err(err) = self.poll.poll(&mut events, Some(timeout))
                && err.kind() != io::ErrorKind::Interrupted
            {
                tracing::error!("poll failed: {err}");
                self.notice(
                    NoticeLevel::Error,
                    format!("engine poll failed: {err}; stopping"),
                );
                self.begin_stop("engine error".into(), true);
            }
            self.kernel_batch_due();
            for event in events.iter() {
                match event.token() {
                    SIGNALS => self.on_signals(),
                    NETLINK => self.on_kernel_readable(),
                    WAKER => {}
                    token => {
                        self.captures.mark_ready(token);
                    }
                }
            }
            // Before any exit is handled: a process's own pipes are read before its end.
            self.take_own_pipes();
            // An exit is reported before the turn's other work (a sample, starts, pipes).
            if self.more_to_reap && !self.events.congested() {
                self.reap();
            }
            self.take_actions();
            self.take_sample();
            self.launch_step();
            // One decision for the whole turn: reading may fill the channel again, and the
            // reaping after it must still happen (a flood must not starve it).
            let congested = self.events.congested();
            if !congested {
                self.captures.service(self.poll.registry(), &self.events);
            }
            self.hold_announced_steps();
            self.run_timers();
            if self.step_phase(congested) {
                break;
            }
        }
        // Whatever the tree wrote last (nothing of it runs now), then the end.
        self.wait_for_consumer(&mut events);
        self.captures.drain_all(self.poll.registry(), &self.events);
        self.finish_tracking();
        let status = self.final_status();
        let unknown_exits = self.events.unknown_exits();
        if unknown_exits > 0 {
            self.notice(
                NoticeLevel::Warning,
                format!(
                    "{unknown_exits} process(es) ended with an unknown status: no source could                      tell how (events the kernel dropped, a process seen only by a /proc scan);                      their `exit` events have code and signal null"
                ),
            );
        }
        self.events.emit(EventBody::End {
            pid: Some(self.me),
            status,
            unknown_exits,
        });
    }

    /// Starts every pool's workers.
    /// Captures the pipes Python processes handed over, each under its own pid.
    fn take_own_pipes(&mut self) {
        let Some(hooks) = &self.hooks else { return };
        let registry = self.poll.registry();
        for own in hooks.take() {
            for (stream, fd) in own.pipes {
                if let Err(err) = self.captures.add(registry, own.pid, stream, fd) {
                    tracing::warn!("cannot capture the pipes of {}: {err}", own.pid);
                }
            }
        }
    }

    /// Blocks while the consumer lags (it wakes the engine when it catches up).
    fn wait_for_consumer(&mut self, events: &mut Events) {
        while self.events.congested() {
            if let Err(err) = self.poll.poll(events, Some(CONGESTION_NET))
                && err.kind() != io::ErrorKind::Interrupted
            {
                tracing::error!("poll failed: {err}");
                return;
            }
        }
    }

    fn emit_session(&self) {
        let (track, track_note) = self.track_description();
        let pools = self.pools.iter().map(Pool::info).collect();
        self.events.emit(EventBody::Session {
            pid: self.me,
            version: env!("CARGO_PKG_VERSION").to_string(),
            pools,
            track,
            track_note,
            stop_timeout: self.config.stop_timeout.as_secs_f64(),
            started_unix: self.started_unix,
            metrics: self.config.metrics.clone(),
        });
    }

    fn next_timeout(&self) -> Duration {
        let congested = self.events.congested();
        if self.kernel_pending()
            || !self.starting.is_empty()
            || ((self.more_to_reap || self.captures.has_hot()) && !congested)
        {
            return Duration::ZERO;
        }
        let now = self.os.now();
        let mut next = self.next_sample;
        if let Some(at) = self.tracking_deadline() {
            next = next.min(at);
        }
        if self.zombies_waiting() > 0 {
            next = next.min(self.next_zombie_check);
        }
        for pool in &self.pools {
            for worker in pool.workers.values() {
                if let WorkerState::Waiting(at) = worker.state {
                    next = next.min(at);
                }
            }
        }
        if let Some(at) = self.phase.deadline() {
            next = next.min(at);
        }
        if let Some(at) = self.pools.iter().filter_map(|p| p.kill_at).min() {
            next = next.min(at);
        }
        if let Some(at) = self.gate.as_ref().and_then(|g| g.deadline()) {
            next = next.min(at);
        }
        if let Some(at) = self.launch_deadline() {
            next = next.min(at);
        }
        let mut timeout = next.saturating_duration_since(now);
        if congested {
            timeout = timeout.min(CONGESTION_NET);
        }
        timeout
    }

    fn on_signals(&mut self) {
        let pending: Vec<i32> = self.signals.pending().collect();
        for signal in pending {
            if signal == SIGCHLD {
                self.more_to_reap = true;
            } else if signal == SIGHUP && self.config.reload.is_some() {
                // `up`: SIGHUP reads the config again (`run` and `demo` stop on it).
                self.reload("received SIGHUP");
            } else {
                self.begin_stop(format!("received {}", signal_name(signal)), true);
            }
        }
    }

    fn run_timers(&mut self) {
        self.start_queued();
        let now = self.os.now();
        let due: Vec<WorkerRef> = self
            .pools
            .iter()
            .enumerate()
            .flat_map(|(p, pool)| {
                pool.workers.iter().filter_map(move |(i, w)| match w.state {
                    WorkerState::Waiting(at) if at <= now => Some((p, *i)),
                    _ => None,
                })
            })
            .collect();
        for worker in due {
            if let Some(w) = self.worker_mut(worker) {
                w.restarts += 1;
            }
            self.start_worker(worker);
        }
        if let Some(released) = self.gate.as_mut().and_then(|g| g.release_due(now)) {
            self.report_release(released);
        }
        if now >= self.next_sample {
            self.sample();
            self.next_sample = now + self.config.sample_interval;
        }
        if now >= self.next_zombie_check && self.zombies_waiting() > 0 {
            self.check_zombies();
            self.next_zombie_check = now + ZOMBIE_CHECK_EVERY.min(self.config.sample_interval);
        }
    }

    fn notice(&self, level: NoticeLevel, message: String) {
        self.events.emit(EventBody::notice(level, message));
    }

    fn worker_mut(&mut self, (pool, index): WorkerRef) -> Option<&mut Worker> {
        self.pools.get_mut(pool)?.workers.get_mut(&index)
    }
}
