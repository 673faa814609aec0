//! Unit tests of [`Readiness`] (what is sent after which events, with time moved by hand:
//! spawns, `start_secs`, `ready` checks, one-shot jobs, reloads)
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

fn ready(pool: &str, ok: bool) -> Event {
    event(EventBody::Ready {
        pid: None,
        pool: pool.into(),
        ok,
        check: "tcp 127.0.0.1:8080".into(),
        after_ms: 10,
        error: None,
    })
}

#[test]
fn a_pool_with_a_ready_check_is_started_only_when_it_passes() {
    let now = Instant::now();
    let mut api = pool("api", 1, 0.0);
    api.launch.ready = Some(crate::supervise::launch_rules::ReadyCheck {
        probe: crate::supervise::launch_rules::Probe::File("x".into()),
        timeout: Duration::from_secs(1),
        interval: Duration::from_millis(100),
        dir: ".".into(),
    });
    let mut readiness = Readiness::new(&[api.clone(), pool("web", 1, 0.0)]);
    readiness.on_event(&spawn("api", 0, 10), now);
    assert_eq!(
        readiness.on_event(&spawn("web", 0, 11), now),
        vec![Message::Status("starting: api 1/1, web 1/1 running".into())]
    );
    assert_eq!(
        readiness.on_event(&ready("api", true), now),
        vec![
            Message::Status("api 1/1, web 1/1 running".into()),
            Message::Ready
        ]
    );
    // A check that gave up never lets READY=1 out.
    let mut readiness = Readiness::new(&[api]);
    readiness.on_event(&spawn("api", 0, 10), now);
    readiness.on_event(&ready("api", false), now);
    assert!(!readiness.poll(now).contains(&Message::Ready));
}

#[test]
fn a_one_shot_job_that_succeeds_is_started_before_its_start_secs() {
    let now = Instant::now();
    let mut readiness = Readiness::new(&[pool("migrate", 1, 5.0), pool("web", 1, 0.0)]);
    readiness.on_event(&spawn("migrate", 0, 10), now);
    readiness.on_event(&spawn("web", 0, 11), now);
    let mut done = exit("migrate", 0, 10);
    if let EventBody::Exit { status, .. } = &mut done.body {
        *status = ExitStatus::Exited(0);
    }
    let sent = readiness.on_event(&done, now + Duration::from_millis(100));
    assert!(sent.contains(&Message::Ready), "{sent:?}");
    // A failure before start_secs is not a start.
    let mut readiness = Readiness::new(&[pool("migrate", 1, 5.0)]);
    readiness.on_event(&spawn("migrate", 0, 10), now);
    let sent = readiness.on_event(&exit("migrate", 0, 10), now);
    assert!(!sent.contains(&Message::Ready), "{sent:?}");
}

#[test]
fn the_status_follows_a_reload() {
    let now = Instant::now();
    let mut readiness = Readiness::new(&[pool("web", 1, 0.0), pool("old", 1, 0.0)]);
    readiness.on_event(&spawn("web", 0, 10), now);
    readiness.on_event(&spawn("old", 0, 11), now);
    let info = |name: &str, size: u32| crate::model::PoolInfo {
        name: name.into(),
        size,
        argv: Vec::new(),
        restart: "never".into(),
    };
    let reload = event(EventBody::Reload {
        pid: None,
        ok: true,
        error: None,
        added: vec!["new".into()],
        removed: vec!["old".into()],
        changed: Vec::new(),
        resized: vec!["web".into()],
        pools: vec![info("web", 2), info("new", 1)],
    });
    assert_eq!(
        readiness.on_event(&reload, now),
        vec![Message::Status("web 1/2, new 0/1 running".into())]
    );
}
