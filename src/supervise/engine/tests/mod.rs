//! The engine's decisions against a fake OS (`fake_os.rs`): restart and backoff, the
//! restart limit, scaling and what an exit means (`workers.rs`); scaling a pool that waits
//! for its dependencies and retiring at a pool's stop timeout (`scaling.rs`); stop phases and
//! escalation, ESRCH and EINTR (`stopping.rs`). No process is started and no time is waited:
//! each test moves the fake clock and runs the engine's turn (actions, timers, reaping, the
//! stop state machine) as its poll loop would. This file is the harness.

mod scaling;
mod stopping;
mod workers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Poll, Waker};
use signal_hook_mio::v1_0::Signals;

use super::fake_os::{ENGINE, FakeOs, Reaction};
use super::{Engine, WAKER, WorkerState};
use crate::model::policy::{PoolPolicy, RestartLimit, RestartPolicy};
use crate::model::{Action, EventBody, ExitStatus};
use crate::supervise::channel::{ActionTx, EventRx, channels};
use crate::supervise::pidfd::SignalError;
use crate::supervise::{EngineConfig, PoolSpec};

const SIGTERM: i32 = libc::SIGTERM;
const SIGKILL: i32 = libc::SIGKILL;
/// Turns without moving the clock before a test gives up waiting for the engine to settle.
const TURNS: usize = 20;

fn killed(signal: i32) -> ExitStatus {
    ExitStatus::Signaled {
        signal,
        core_dumped: false,
    }
}

fn pool(name: &str, size: u32, restart: RestartPolicy) -> PoolSpec {
    PoolSpec {
        name: name.into(),
        size,
        argv: vec!["fake".into()],
        env: Vec::new(),
        cwd: None,
        restart,
        stop_signal: SIGTERM,
        io: Default::default(),
        policy: PoolPolicy::default(),
        launch: Default::default(),
    }
}

/// A `signal` event as plain facts (read from its JSON, the form users see).
#[derive(Debug, PartialEq, Eq)]
struct Sig {
    pid: i32,
    signal: String,
    reason: String,
    /// `None`: sent; else why not.
    failed: Option<String>,
}

struct Sim {
    engine: Engine,
    os: FakeOs,
    events: EventRx,
    actions: ActionTx,
    seen: Vec<EventBody>,
}

impl Sim {
    fn new(pools: Vec<PoolSpec>) -> Sim {
        let poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).unwrap());
        let signals = Signals::new(Vec::<i32>::new()).unwrap();
        let (events_tx, events, actions, actions_rx) = channels(waker, Instant::now());
        let config = EngineConfig {
            pools,
            stop_timeout: Duration::from_secs(5),
            exit_when_done: true,
            // Never due: sampling reads the real /proc, which is not under test here.
            sample_interval: Duration::from_secs(24 * 3600),
            track: crate::track::TrackMode::Poll,
            ..EngineConfig::default()
        };
        let mut engine = Engine::new(config, poll, signals, events_tx, actions_rx, ENGINE);
        let os = FakeOs::new();
        engine.os = Box::new(os.clone());
        Sim {
            engine,
            os,
            events,
            actions,
            seen: Vec::new(),
        }
    }

    /// A session whose workers were just started.
    fn started(pools: Vec<PoolSpec>) -> Sim {
        let mut sim = Sim::new(pools);
        sim.engine.launch_step();
        sim
    }

    /// A session of one pool `web` with one worker, started; its pid.
    fn one_worker(restart: RestartPolicy) -> (Sim, i32) {
        let mut sim = Sim::started(vec![pool("web", 1, restart)]);
        sim.settle();
        let pid = sim.pid("web", 0);
        (sim, pid)
    }

    /// One turn of the engine's loop; true when the session is over.
    fn turn(&mut self) -> bool {
        self.engine.take_actions();
        self.engine.launch_step();
        self.engine.run_timers();
        let over = self.engine.step_phase(false);
        while let Ok(event) = self.events.try_recv() {
            self.seen.push(event.body);
        }
        over
    }

    /// Turns until one ends the session or nothing changes any more (bounded).
    fn settle(&mut self) -> bool {
        for _ in 0..TURNS {
            let before = self.seen.len();
            if self.turn() {
                return true;
            }
            if self.seen.len() == before && !self.engine.more_to_reap {
                return false;
            }
        }
        panic!("the engine did not settle in {TURNS} turns");
    }

    /// Moves the clock by `by`, then settles.
    fn after(&mut self, by: Duration) -> bool {
        self.os.advance(by);
        self.settle()
    }

    fn act(&mut self, action: Action) -> bool {
        assert!(self.actions.send(action));
        self.settle()
    }

    /// Events since the last call.
    fn take(&mut self) -> Vec<EventBody> {
        std::mem::take(&mut self.seen)
    }

    fn pid(&self, pool: &str, index: u32) -> i32 {
        self.os.pid_of(pool, index)
    }

    fn worker_state(&self, pool: usize, index: u32) -> Option<WorkerState> {
        self.engine.pools[pool].workers.get(&index).map(|w| w.state)
    }
}

fn signals(events: &[EventBody]) -> Vec<Sig> {
    events
        .iter()
        .filter(|e| matches!(e, EventBody::Signal { .. }))
        .map(|e| {
            let v = serde_json::to_value(e).unwrap();
            Sig {
                pid: v["pid"].as_i64().unwrap() as i32,
                signal: v["signal"].as_str().unwrap().into(),
                reason: v["reason"].as_str().unwrap().into(),
                failed: v["result"]["failed"].as_str().map(String::from),
            }
        })
        .collect()
}

fn sig(pid: i32, signal: &str, reason: &str) -> Sig {
    Sig {
        pid,
        signal: signal.into(),
        reason: reason.into(),
        failed: None,
    }
}

fn exits(events: &[EventBody]) -> Vec<(i32, ExitStatus)> {
    events
        .iter()
        .filter_map(|e| match e {
            EventBody::Exit { pid, status, .. } => Some((*pid, *status)),
            _ => None,
        })
        .collect()
}

/// `(worker index, restarts)` of each `spawn`.
fn spawns(events: &[EventBody]) -> Vec<(u32, u32)> {
    events
        .iter()
        .filter_map(|e| match e {
            EventBody::Spawn {
                worker, restarts, ..
            } => Some((*worker, *restarts)),
            _ => None,
        })
        .collect()
}

fn notices(events: &[EventBody]) -> Vec<String> {
    events
        .iter()
        .filter(|e| matches!(e, EventBody::Notice { .. }))
        .map(|e| serde_json::to_value(e).unwrap()["message"].to_string())
        .collect()
}

const MS: Duration = Duration::from_millis(1);
