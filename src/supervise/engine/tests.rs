//! The engine's decisions against a fake OS (`fake_os.rs`): restart and backoff, the
//! restart limit, stop phases and escalation, ESRCH and EINTR, scaling, and what an exit
//! means for the session's status. No process is started and no time is waited: each test
//! moves the fake clock and runs the engine's turn (actions, timers, reaping, the stop
//! state machine) as its poll loop would.

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
        sim.engine.start_pools();
        sim
    }

    /// One turn of the engine's loop; true when the session is over.
    fn turn(&mut self) -> bool {
        self.engine.take_actions();
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

#[test]
fn restarts_with_doubling_backoff_until_max_restarts_then_failed() {
    let mut spec = pool("web", 1, RestartPolicy::Always);
    spec.policy.restart_limit = Some(RestartLimit {
        max_restarts: 2,
        window: Duration::from_secs(60),
    });
    let mut sim = Sim::started(vec![spec]);
    assert!(!sim.settle());
    assert_eq!(spawns(&sim.take()), vec![(0, 0)]);

    let first = sim.pid("web", 0);
    sim.os.exit(first, ExitStatus::Exited(1));
    assert!(!sim.settle());
    let events = sim.take();
    assert_eq!(exits(&events), vec![(first, ExitStatus::Exited(1))]);
    assert!(events.contains(&EventBody::Restart {
        pid: Some(first),
        pool: "web".into(),
        worker: 0,
        attempt: 1,
        delay_ms: 100,
    }));
    // Not a millisecond early.
    assert!(!sim.after(99 * MS));
    assert_eq!(spawns(&sim.take()), vec![]);
    assert!(!sim.after(MS));
    assert_eq!(spawns(&sim.take()), vec![(0, 1)]);

    let second = sim.pid("web", 0);
    sim.os.exit(second, ExitStatus::Exited(1));
    sim.settle();
    assert!(sim.take().iter().any(|e| matches!(
        e,
        EventBody::Restart {
            attempt: 2,
            delay_ms: 200,
            ..
        }
    )));
    assert!(!sim.after(200 * MS));
    assert_eq!(spawns(&sim.take()), vec![(0, 2)]);

    // The third end within the window: no third restart.
    sim.os.exit(sim.pid("web", 0), ExitStatus::Exited(1));
    assert!(sim.settle(), "every worker settled: the session ends");
    let events = sim.take();
    assert!(events.iter().any(|e| matches!(
        e,
        EventBody::WorkerFailed { reason, .. } if reason.contains("max_restarts")
    )));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, EventBody::Restart { .. }))
    );
    assert_eq!(sim.worker_state(0, 0), Some(WorkerState::Failed));
    assert_eq!(sim.engine.final_status(), 1);
}

#[test]
fn a_long_run_resets_the_backoff() {
    let mut sim = Sim::started(vec![pool("web", 1, RestartPolicy::OnFailure)]);
    sim.settle();
    for expected in [100, 200, 400] {
        sim.os.exit(sim.pid("web", 0), ExitStatus::Exited(1));
        sim.settle();
        let delays: Vec<u64> = sim
            .take()
            .iter()
            .filter_map(|e| match e {
                EventBody::Restart { delay_ms, .. } => Some(*delay_ms),
                _ => None,
            })
            .collect();
        assert_eq!(delays, vec![expected]);
        sim.after(Duration::from_millis(expected));
    }
    // Up for 10 s (the default reset_after): the next crash starts from 100 ms again.
    sim.os.advance(Duration::from_secs(10));
    sim.os.exit(sim.pid("web", 0), ExitStatus::Exited(1));
    sim.settle();
    assert!(sim.take().iter().any(|e| matches!(
        e,
        EventBody::Restart {
            attempt: 1,
            delay_ms: 100,
            ..
        }
    )));
}

#[test]
fn stop_sends_the_stop_signal_and_ends_without_sigkill() {
    let mut sim = Sim::started(vec![pool("web", 2, RestartPolicy::Always)]);
    sim.settle();
    let (a, b) = (sim.pid("web", 0), sim.pid("web", 1));
    // `b` has a handler that exits 0.
    sim.os
        .react(b, SIGTERM, Reaction::Exit(ExitStatus::Exited(0)));
    sim.take();
    assert!(
        sim.act(Action::Quit),
        "both ended at SIGTERM: the session ends"
    );
    let events = sim.take();
    assert!(matches!(events[0], EventBody::Stopping { .. }));
    assert_eq!(
        signals(&events),
        vec![sig(a, "SIGTERM", "stop"), sig(b, "SIGTERM", "stop")]
    );
    assert_eq!(
        exits(&events),
        vec![(a, killed(SIGTERM)), (b, ExitStatus::Exited(0))]
    );
    // Quitting: `always` restarts nothing.
    assert_eq!(spawns(&events), vec![]);
    assert!(sim.os.attempts().iter().all(|a| a.signo != SIGKILL));
    // Killed by its stop signal is not a success.
    assert_eq!(sim.engine.final_status(), 1);
}

#[test]
fn a_worker_that_ignores_sigterm_gets_sigkill_at_the_stop_timeout() {
    let mut sim = Sim::started(vec![pool("web", 1, RestartPolicy::Never)]);
    sim.settle();
    let pid = sim.pid("web", 0);
    sim.os.react(pid, SIGTERM, Reaction::Ignore);
    sim.take();
    assert!(!sim.act(Action::Quit));
    assert_eq!(signals(&sim.take()), vec![sig(pid, "SIGTERM", "stop")]);
    assert!(!sim.after(4999 * MS));
    assert_eq!(sim.take(), vec![], "nothing happens before the timeout");
    assert!(sim.os.is_running(pid));
    assert!(sim.after(MS));
    let events = sim.take();
    assert_eq!(signals(&events), vec![sig(pid, "SIGKILL", "escalation")]);
    assert_eq!(exits(&events), vec![(pid, killed(SIGKILL))]);
    assert!(notices(&events)[0].contains("stop timeout (5.0s) reached"));
}

#[test]
fn each_pool_is_killed_at_its_own_stop_timeout() {
    let mut fast = pool("fast", 1, RestartPolicy::Never);
    fast.policy.stop_timeout = Some(Duration::from_secs(1));
    let mut sim = Sim::started(vec![fast, pool("slow", 1, RestartPolicy::Never)]);
    sim.settle();
    let (f, s) = (sim.pid("fast", 0), sim.pid("slow", 0));
    sim.os.react(f, SIGTERM, Reaction::Ignore);
    sim.os.react(s, SIGTERM, Reaction::Ignore);
    sim.act(Action::Quit);
    sim.take();
    assert!(!sim.after(Duration::from_secs(1)));
    let events = sim.take();
    assert_eq!(signals(&events), vec![sig(f, "SIGKILL", "escalation")]);
    assert!(sim.os.is_running(s));
    assert!(!sim.after(3999 * MS));
    assert!(sim.after(MS), "the slow pool at the session's 5 s");
    assert_eq!(signals(&sim.take()), vec![sig(s, "SIGKILL", "escalation")]);
}

#[test]
fn the_sweep_kills_descendants_left_behind_and_survives_one_that_vanished() {
    let mut sim = Sim::started(vec![pool("web", 1, RestartPolicy::Never)]);
    sim.settle();
    let worker = sim.pid("web", 0);
    // A child that ignores SIGTERM, and a grandchild that ends on its own just as the
    // sweep finds it.
    let child = sim.os.fork(worker);
    let grandchild = sim.os.fork(child);
    sim.os.react(child, SIGTERM, Reaction::Ignore);
    sim.os
        .react(grandchild, SIGKILL, Reaction::Vanish(ExitStatus::Exited(0)));
    sim.take();
    sim.act(Action::Quit);
    let events = sim.take();
    // The worker died at SIGTERM; its child, now the engine's (subreaper), is an orphan
    // and gets the stop signal too.
    assert_eq!(
        signals(&events),
        vec![
            sig(worker, "SIGTERM", "stop"),
            sig(child, "SIGTERM", "leftover")
        ]
    );
    // At the stop timeout: the SIGKILL sweep of the whole tree, then the end.
    assert!(!sim.after(4999 * MS));
    assert!(sim.after(MS));
    let events = sim.take();
    assert_eq!(
        signals(&events),
        vec![
            sig(child, "SIGKILL", "escalation"),
            Sig {
                failed: Some(SignalError::Gone.to_string()),
                ..sig(grandchild, "SIGKILL", "escalation")
            }
        ]
    );
    assert_eq!(
        exits(&events),
        vec![
            (child, killed(SIGKILL)),
            (grandchild, ExitStatus::Exited(0))
        ]
    );
}

#[test]
fn esrch_when_the_worker_ended_just_before_its_stop_signal() {
    let mut sim = Sim::started(vec![pool("web", 1, RestartPolicy::Always)]);
    sim.settle();
    let pid = sim.pid("web", 0);
    sim.os
        .react(pid, SIGTERM, Reaction::Vanish(ExitStatus::Exited(0)));
    sim.take();
    assert!(sim.act(Action::Quit));
    let events = sim.take();
    assert_eq!(
        signals(&events),
        vec![Sig {
            failed: Some("ESRCH: process already gone".into()),
            ..sig(pid, "SIGTERM", "stop")
        }]
    );
    // Its own status, reaped as usual; no escalation.
    assert_eq!(exits(&events), vec![(pid, ExitStatus::Exited(0))]);
    assert!(sim.os.attempts().iter().all(|a| a.signo != SIGKILL));
    assert_eq!(sim.engine.final_status(), 0);
}

#[test]
fn eintr_on_a_signal_is_retried_a_bounded_number_of_times() {
    let mut sim = Sim::started(vec![pool("web", 2, RestartPolicy::Never)]);
    sim.settle();
    let (a, b) = (sim.pid("web", 0), sim.pid("web", 1));
    sim.take();
    sim.os.interrupt_next_sends(2);
    sim.act(Action::Restart {
        pool: "web".into(),
        worker: 0,
    });
    assert_eq!(signals(&sim.take())[0], sig(a, "SIGTERM", "restart"));
    let tries: Vec<_> = sim.os.attempts().into_iter().map(|t| t.result).collect();
    assert_eq!(
        tries,
        vec![
            Err(SignalError::Interrupted),
            Err(SignalError::Interrupted),
            Ok(())
        ]
    );
    // Interrupted every time: reported, not retried forever.
    sim.os.interrupt_next_sends(100);
    sim.act(Action::Signal {
        pid: b,
        signal: libc::SIGUSR1,
        start_time: None,
    });
    assert_eq!(
        signals(&sim.take()),
        vec![Sig {
            failed: Some(SignalError::Interrupted.to_string()),
            ..sig(b, "SIGUSR1", "user")
        }]
    );
    assert_eq!(sim.os.attempts().len(), 3 + 4);
    assert!(sim.os.is_running(b));
}

#[test]
fn eintr_while_reaping_or_walking_the_tree_is_tried_again() {
    let mut sim = Sim::started(vec![pool("web", 1, RestartPolicy::Never)]);
    sim.settle();
    let worker = sim.pid("web", 0);
    let child = sim.os.fork(worker);
    sim.os.react(worker, SIGTERM, Reaction::Ignore);
    sim.os.react(child, SIGTERM, Reaction::Ignore);
    sim.take();

    sim.act(Action::Quit);
    sim.take();
    // The first SIGKILL sweep's walk of /proc is interrupted: the next round (50 ms
    // later) walks again and finds the child.
    sim.os.interrupt_next_walk();
    sim.os.interrupt_next_walk();
    assert!(!sim.after(Duration::from_secs(5)));
    let events = sim.take();
    assert_eq!(signals(&events), vec![sig(worker, "SIGKILL", "escalation")]);
    assert_eq!(exits(&events), vec![(worker, killed(SIGKILL))]);
    assert!(sim.os.is_running(child));

    // The next round finds the child; reaping it is interrupted once: the engine's next
    // turn comes at once (no wait for another SIGCHLD) and reports its exit.
    sim.os.interrupt_next_reap();
    sim.os.advance(Duration::from_millis(50));
    assert!(!sim.turn());
    assert_eq!(
        signals(&sim.take()),
        vec![sig(child, "SIGKILL", "escalation")]
    );
    assert_eq!(sim.engine.next_timeout(), Duration::ZERO);
    assert!(sim.settle());
    assert_eq!(exits(&sim.take()), vec![(child, killed(SIGKILL))]);
}

#[test]
fn scaling_up_adds_the_next_indices_and_down_retires_the_highest() {
    let mut sim = Sim::started(vec![pool("web", 2, RestartPolicy::Always)]);
    sim.settle();
    sim.take();
    sim.act(Action::Scale {
        pool: "web".into(),
        size: 4,
    });
    let events = sim.take();
    assert_eq!(spawns(&events), vec![(2, 0), (3, 0)]);
    // Worker 1 crashed and waits for its restart: scaling down removes it at once.
    let one = sim.pid("web", 1);
    sim.os.exit(one, ExitStatus::Exited(1));
    sim.settle();
    sim.take();
    let (two, three) = (sim.pid("web", 2), sim.pid("web", 3));
    sim.act(Action::Scale {
        pool: "web".into(),
        size: 1,
    });
    let events = sim.take();
    assert_eq!(
        signals(&events),
        vec![sig(two, "SIGTERM", "scale"), sig(three, "SIGTERM", "scale")]
    );
    assert_eq!(
        exits(&events),
        vec![(two, killed(SIGTERM)), (three, killed(SIGTERM))]
    );
    // `always`, yet nothing restarts: retired, not crashed.
    assert!(!sim.after(Duration::from_secs(60)));
    assert_eq!(spawns(&sim.take()), vec![]);
    let left: Vec<u32> = sim.engine.pools[0].workers.keys().copied().collect();
    assert_eq!(left, vec![0]);
    assert_eq!(sim.os.spawns(), 4);
}

#[test]
fn a_restart_action_restarts_at_once_without_backoff() {
    let mut sim = Sim::started(vec![pool("web", 1, RestartPolicy::Never)]);
    sim.settle();
    let old = sim.pid("web", 0);
    sim.take();
    sim.act(Action::Restart {
        pool: "web".into(),
        worker: 0,
    });
    let events = sim.take();
    assert_eq!(signals(&events), vec![sig(old, "SIGTERM", "restart")]);
    assert_eq!(spawns(&events), vec![(0, 1)]);
    assert_ne!(sim.pid("web", 0), old);
}

#[test]
fn what_an_exit_means_for_the_session_status() {
    // (pool's success codes, how its one worker ends, final status)
    let cases = [
        (vec![0], ExitStatus::Exited(0), 0),
        (vec![0], ExitStatus::Exited(3), 1),
        (vec![0, 3], ExitStatus::Exited(3), 0),
        (vec![0, 3], killed(libc::SIGSEGV), 1),
        (vec![0], killed(SIGTERM), 1),
    ];
    for (codes, status, expected) in cases {
        let mut spec = pool("job", 1, RestartPolicy::OnFailure);
        spec.policy.success_codes = codes.clone();
        let mut sim = Sim::started(vec![spec]);
        sim.settle();
        sim.os.exit(sim.pid("job", 0), status);
        let over = sim.settle();
        let restarted = sim
            .take()
            .iter()
            .any(|e| matches!(e, EventBody::Restart { .. }));
        assert_eq!(
            (over, restarted, sim.engine.final_status()),
            (expected == 0, expected != 0, expected),
            "success codes {codes:?}, {status:?}"
        );
    }
}

#[test]
fn a_spawn_failure_is_a_failed_run_and_fails_the_session() {
    let mut sim = Sim::new(vec![pool("job", 1, RestartPolicy::Never)]);
    sim.os.fail_next_spawns(1);
    sim.engine.start_pools();
    assert!(sim.settle());
    let events = sim.take();
    assert!(events.iter().any(|e| matches!(
        e,
        EventBody::SpawnFailed { error, .. } if error.contains("no such program")
    )));
    assert_eq!(sim.worker_state(0, 0), Some(WorkerState::Failed));
    assert_eq!(sim.engine.final_status(), 1);
}
