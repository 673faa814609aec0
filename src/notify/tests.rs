//! Unit tests of [`Readiness`] (what is sent after which events, with time moved by hand)
//! and of the watchdog interval.

use std::time::{Duration, Instant};

use super::*;
use crate::model::{ExitStatus, TrackSource};

fn pool(name: &str, size: u32, start_secs: f64) -> PoolSpec {
    PoolSpec {
        name: name.into(),
        size,
        argv: vec!["true".into()],
        env: Vec::new(),
        cwd: None,
        restart: Default::default(),
        stop_signal: libc::SIGTERM,
        io: Default::default(),
        policy: crate::model::policy::PoolPolicy {
            start_secs: Duration::from_secs_f64(start_secs),
            ..Default::default()
        },
        launch: Default::default(),
    }
}

fn event(body: EventBody) -> Event {
    Event { t: 0.0, body }
}

fn spawn(pool: &str, worker: u32, pid: i32) -> Event {
    event(EventBody::Spawn {
        pid,
        ppid: 1,
        pool: pool.into(),
        worker,
        argv: Vec::new(),
        start_time: None,
        restarts: 0,
    })
}

fn exit(pool: &str, worker: u32, pid: i32) -> Event {
    event(EventBody::Exit {
        pid,
        ppid: 1,
        status: ExitStatus::Exited(1),
        pool: Some(pool.into()),
        worker: Some(worker),
        source: TrackSource::Engine,
        zombie: false,
    })
}

#[test]
fn ready_once_every_worker_of_every_pool_is_spawned() {
    let now = Instant::now();
    let mut readiness = Readiness::new(&[pool("web", 2, 0.0), pool("job", 1, 0.0)]);
    assert_eq!(
        readiness.on_event(&spawn("web", 0, 10), now),
        vec![Message::Status("starting: web 1/2, job 0/1 running".into())]
    );
    readiness.on_event(&spawn("web", 1, 11), now);
    assert_eq!(
        readiness.on_event(&spawn("job", 0, 12), now),
        vec![
            Message::Status("web 2/2, job 1/1 running".into()),
            Message::Ready
        ]
    );
    // A later exit changes the status, never READY again.
    assert_eq!(
        readiness.on_event(&exit("job", 0, 12), now),
        vec![Message::Status("web 2/2, job 0/1 running".into())]
    );
    assert_eq!(
        readiness.on_event(&spawn("job", 0, 13), now),
        vec![Message::Status("web 2/2, job 1/1 running".into())]
    );
}

#[test]
fn start_secs_holds_ready_back_and_an_early_exit_resets_it() {
    let now = Instant::now();
    let mut readiness = Readiness::new(&[pool("web", 1, 2.0)]);
    readiness.on_event(&spawn("web", 0, 10), now);
    assert_eq!(
        readiness.next_deadline(),
        Some(now + Duration::from_secs(2))
    );
    assert!(readiness.poll(now + Duration::from_secs(1)).is_empty());
    // Exits before start_secs: not started; the next run starts the clock again.
    readiness.on_event(&exit("web", 0, 10), now + Duration::from_secs(1));
    let later = now + Duration::from_secs(3);
    readiness.on_event(&spawn("web", 0, 11), later);
    assert!(
        !readiness
            .poll(later + Duration::from_secs(1))
            .contains(&Message::Ready)
    );
    assert!(
        readiness
            .poll(later + Duration::from_secs(2))
            .contains(&Message::Ready)
    );
    assert_eq!(readiness.next_deadline(), None);
}

#[test]
fn stopping_is_sent_once() {
    let now = Instant::now();
    let mut readiness = Readiness::new(&[pool("web", 1, 0.0)]);
    readiness.on_event(&spawn("web", 0, 10), now);
    let stopping = event(EventBody::Stopping {
        pid: None,
        reason: "SIGTERM".into(),
    });
    assert_eq!(
        readiness.on_event(&stopping, now),
        vec![
            Message::Stopping,
            Message::Status("stopping: SIGTERM".into())
        ]
    );
    assert!(readiness.on_event(&stopping, now).is_empty());
    assert!(readiness.on_event(&exit("web", 0, 10), now).is_empty());
}

#[test]
fn watchdog_interval_is_half_and_for_this_session_only() {
    let ours = [100, 99];
    assert_eq!(
        watchdog_interval(Some("2000000"), None, &ours),
        Some(Duration::from_secs(1))
    );
    assert_eq!(
        watchdog_interval(Some("2000000"), Some("99"), &ours),
        Some(Duration::from_secs(1))
    );
    assert_eq!(watchdog_interval(Some("2000000"), Some("7"), &ours), None);
    assert_eq!(watchdog_interval(Some("0"), None, &ours), None);
    assert_eq!(watchdog_interval(Some("soon"), None, &ours), None);
    assert_eq!(watchdog_interval(None, None, &ours), None);
}
