//! Workers: restart and backoff, the restart limit, the restart action, scaling, and what
//! an exit means for the session's status.

use std::time::Duration;

use super::*;

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
    let (mut sim, old) = Sim::one_worker(RestartPolicy::Never);
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
    sim.engine.launch_step();
    assert!(sim.settle());
    let events = sim.take();
    assert!(events.iter().any(|e| matches!(
        e,
        EventBody::SpawnFailed { error, .. } if error.contains("no such program")
    )));
    assert_eq!(sim.worker_state(0, 0), Some(WorkerState::Failed));
    assert_eq!(sim.engine.final_status(), 1);
}
