//! Stopping: the stop signal, SIGKILL at each pool's timeout and in the sweep, orphans,
//! ESRCH, EINTR.

use std::time::Duration;

use super::*;

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
    let (mut sim, pid) = Sim::one_worker(RestartPolicy::Never);
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
fn at_a_pool_timeout_the_worker_is_killed_before_the_descendants_found_below_it() {
    let (mut sim, worker) = Sim::one_worker(RestartPolicy::Never);
    let child = sim.os.fork(worker);
    sim.os.react(worker, SIGTERM, Reaction::Ignore);
    sim.os.react(child, SIGTERM, Reaction::Ignore);
    sim.act(Action::Quit);
    sim.take();
    assert!(sim.after(Duration::from_secs(5)));
    let events = sim.take();
    // The child, re-parented to the engine once the worker died, is still killed: by its
    // identity, found while it hung below the worker.
    assert_eq!(
        signals(&events),
        vec![
            sig(worker, "SIGKILL", "escalation"),
            sig(child, "SIGKILL", "escalation")
        ]
    );
    assert_eq!(
        exits(&events),
        vec![(worker, killed(SIGKILL)), (child, killed(SIGKILL))]
    );
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
    let (mut sim, worker) = Sim::one_worker(RestartPolicy::Never);
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
    let (mut sim, pid) = Sim::one_worker(RestartPolicy::Always);
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
    let (mut sim, worker) = Sim::one_worker(RestartPolicy::Never);
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
