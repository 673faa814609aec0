//! Scaling through `resize_pool` (the `scale` action, as a reload's resize): a pool not yet
//! launched because of `depends_on` only changes its target, and starts at that size once
//! its dependencies are started; a worker retired by a scale-down that ignores its stop
//! signal gets SIGKILL, with its descendants, at its pool's own `stop_timeout`.

use std::time::Duration;

use super::*;

/// Worker indexes spawned in `pool`, in order.
fn spawned_in(events: &[EventBody], name: &str) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match e {
            EventBody::Spawn { pool, worker, .. } if pool == name => Some(*worker),
            _ => None,
        })
        .collect()
}

#[test]
fn scaling_a_pool_waiting_for_its_dependencies_does_not_start_it() {
    let mut db = pool("db", 1, RestartPolicy::Always);
    db.policy.start_secs = Duration::from_secs(10);
    let mut web = pool("web", 1, RestartPolicy::Always);
    web.launch.depends_on = vec!["db".into()];
    let mut sim = Sim::started(vec![db, web]);
    sim.settle();
    assert_eq!(spawned_in(&sim.take(), "db"), vec![0]);

    sim.act(Action::Scale {
        pool: "web".into(),
        size: 3,
    });
    sim.act(Action::Scale {
        pool: "web".into(),
        size: 2,
    });
    let events = sim.take();
    assert_eq!(spawned_in(&events, "web"), Vec::<u32>::new(), "{events:?}");
    let scales: Vec<(u32, u32)> = events
        .iter()
        .filter_map(|e| match e {
            EventBody::Scale { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect();
    assert_eq!(scales, vec![(1, 3), (3, 2)]);
    assert!(sim.engine.pools[1].workers.is_empty());

    // db has run start_secs: web starts, at the size it was scaled to.
    assert!(!sim.after(9999 * MS));
    assert_eq!(spawned_in(&sim.take(), "web"), Vec::<u32>::new());
    assert!(!sim.after(MS));
    assert_eq!(spawned_in(&sim.take(), "web"), vec![0, 1]);
    assert_eq!(sim.os.spawns(), 3);
}

#[test]
fn a_worker_retired_by_scale_down_gets_sigkill_at_its_pools_stop_timeout() {
    let mut web = pool("web", 2, RestartPolicy::Always);
    web.policy.stop_timeout = Some(Duration::from_secs(2));
    let mut sim = Sim::started(vec![web]);
    sim.settle();
    let (kept, stubborn) = (sim.pid("web", 0), sim.pid("web", 1));
    let child = sim.os.fork(stubborn);
    sim.os.react(stubborn, SIGTERM, Reaction::Ignore);
    sim.os.react(child, SIGTERM, Reaction::Ignore);
    sim.take();
    sim.act(Action::Scale {
        pool: "web".into(),
        size: 1,
    });
    assert_eq!(
        signals(&sim.take()),
        vec![sig(stubborn, "SIGTERM", "scale")]
    );
    // The pool's 2 s, not the session's 5 s; not a millisecond early.
    assert!(!sim.after(1999 * MS));
    assert_eq!(sim.take(), vec![]);
    assert!(sim.os.is_running(stubborn) && sim.os.is_running(child));
    assert!(!sim.after(MS));
    let events = sim.take();
    let killed_now: Vec<i32> = signals(&events)
        .into_iter()
        .filter(|s| s.signal == "SIGKILL" && s.failed.is_none())
        .map(|s| s.pid)
        .collect();
    assert_eq!(killed_now, vec![stubborn, child], "{events:?}");
    assert!(exits(&events).contains(&(stubborn, killed(SIGKILL))));
    assert!(
        notices(&events)
            .iter()
            .any(|n| n.contains("stop timeout reached: SIGKILL")),
        "{events:?}"
    );
    assert!(!sim.os.is_running(stubborn) && !sim.os.is_running(child));
    // Retired, not crashed: `always` starts nothing, and worker 0 was never touched.
    assert!(!sim.after(Duration::from_secs(60)));
    assert_eq!(spawns(&sim.take()), vec![]);
    assert!(sim.os.is_running(kept));
    assert_eq!(
        sim.engine.pools[0]
            .workers
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        vec![0]
    );
}
