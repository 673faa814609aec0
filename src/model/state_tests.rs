//! Unit tests of the state model.
use super::*;
use crate::model::BarrierStep;

fn ev(t: f64, body: EventBody) -> Event {
    Event { t, body }
}

fn spawn(t: f64, pid: i32, worker: u32) -> Event {
    ev(
        t,
        EventBody::Spawn {
            pid,
            ppid: 1,
            pool: "main".into(),
            worker,
            argv: vec!["sleep".into(), "9".into()],
            start_time: Some(100 + pid as u64),
            restarts: 0,
        },
    )
}

#[test]
fn builds_tree_and_ends_processes() {
    let mut state = State::new(100);
    update(&mut state, &spawn(0.1, 10, 0));
    update(
        &mut state,
        &ev(
            0.2,
            EventBody::Fork {
                pid: 11,
                ppid: 10,
                start_time: Some(5),
                source: TrackSource::Poll,
            },
        ),
    );
    let worker = state.find_pid(10).unwrap().id;
    let child = state.find_pid(11).unwrap();
    assert_eq!(
        child.parent,
        Some(worker),
        "the fork links the child to its parent"
    );
    let kids = [child.id];
    update(
        &mut state,
        &ev(
            0.3,
            EventBody::Exit {
                pid: 11,
                ppid: 10,
                status: ExitStatus::Exited(7),
                pool: None,
                worker: None,
                source: TrackSource::Engine,
                zombie: false,
            },
        ),
    );
    let child = &state.procs[&kids[0]];
    assert_eq!(child.ended.map(|e| e.status), Some(ExitStatus::Exited(7)));
    assert_eq!(state.live_count(), 1);
    state.clear_ended();
    assert_eq!(state.procs.len(), 1);
}

#[test]
fn reused_pid_is_a_new_process() {
    let mut state = State::new(100);
    update(&mut state, &spawn(0.1, 10, 0));
    update(
        &mut state,
        &ev(
            0.2,
            EventBody::Fork {
                pid: 10,
                ppid: 1,
                start_time: Some(999),
                source: TrackSource::Poll,
            },
        ),
    );
    assert_eq!(state.procs.len(), 2);
    let first = state.procs.values().next().unwrap();
    assert_eq!(first.ended.map(|e| e.status), Some(ExitStatus::Unknown));
}

#[test]
fn output_goes_to_the_process_scrollback() {
    let mut state = State::new(2);
    update(&mut state, &spawn(0.1, 10, 0));
    for seq in 1..=3 {
        update(
            &mut state,
            &ev(
                0.2,
                EventBody::Output {
                    pid: 10,
                    stream: super::super::event::Stream::Stdout,
                    line: format!("line {seq}").into(),
                    raw_hex: None,
                    seq,
                    partial: false,
                },
            ),
        );
    }
    let proc = state.find_pid(10).unwrap();
    assert_eq!(proc.output.len(), 2);
    assert_eq!(proc.output.evicted, 1);
}

#[test]
fn only_the_newest_ended_records_are_kept() {
    let mut state = State::new(10);
    state.max_ended = 3;
    update(&mut state, &spawn(0.0, 10, 0));
    for pid in 100..110 {
        let fork = EventBody::Fork {
            pid,
            ppid: 10,
            start_time: Some(pid as u64),
            source: TrackSource::Kernel,
        };
        update(&mut state, &ev(0.1, fork));
        let exit = EventBody::Exit {
            pid,
            ppid: 10,
            status: ExitStatus::Exited(0),
            pool: None,
            worker: None,
            source: TrackSource::Kernel,
            zombie: false,
        };
        update(&mut state, &ev(0.2, exit));
    }
    let kept: Vec<i32> = state.procs.values().map(|p| p.pid).collect();
    assert_eq!(
        kept,
        vec![10, 107, 108, 109],
        "the live worker and the 3 newest ended"
    );
    assert_eq!(state.forgotten, 7);
    assert!(state.find_pid(101).is_none());
}

fn fork_of(t: f64, pid: i32, ppid: i32) -> Event {
    ev(
        t,
        EventBody::Fork {
            pid,
            ppid,
            start_time: Some(pid as u64),
            source: TrackSource::Kernel,
        },
    )
}

fn exit_of(t: f64, pid: i32, ppid: i32, zombie: bool) -> Event {
    ev(
        t,
        EventBody::Exit {
            pid,
            ppid,
            status: ExitStatus::Exited(0),
            pool: None,
            worker: None,
            source: TrackSource::Kernel,
            zombie,
        },
    )
}

#[test]
fn a_zombie_waits_from_its_exit_until_its_reap() {
    let mut state = State::new(100);
    update(&mut state, &spawn(0.1, 10, 0));
    update(&mut state, &fork_of(0.2, 11, 10));
    update(&mut state, &exit_of(0.3, 11, 10, true));
    update(
        &mut state,
        &ev(
            1.3,
            EventBody::Notice {
                pid: None,
                level: crate::model::NoticeLevel::Info,
                message: "time passes".into(),
            },
        ),
    );
    let child = state.find_pid(11).unwrap();
    assert!(!child.is_alive(), "a zombie has ended");
    assert!(child.zombie);
    assert_eq!(child.zombie_for(state.now), Some(1.0));
    update(&mut state, &ev(1.8, EventBody::Reap { pid: 11, by: 10 }));
    let child = state.find_pid(11).unwrap();
    assert!(!child.zombie);
    assert_eq!(child.zombie_for(state.now), None);
    assert_eq!(child.reaped, Some(ReapRecord { t: 1.8, by: 10 }));
    // A second reap of the same pid (or one of a process never a zombie) changes nothing.
    update(&mut state, &ev(1.9, EventBody::Reap { pid: 11, by: 1 }));
    assert_eq!(state.find_pid(11).unwrap().reaped.map(|r| r.by), Some(10));
}

#[test]
fn an_exit_without_zombie_is_final_and_end_collects_every_zombie() {
    let mut state = State::new(100);
    update(&mut state, &spawn(0.1, 10, 0));
    update(&mut state, &fork_of(0.2, 11, 10));
    update(&mut state, &fork_of(0.2, 12, 10));
    update(&mut state, &exit_of(0.3, 11, 10, false));
    update(&mut state, &exit_of(0.3, 12, 10, true));
    assert!(!state.find_pid(11).unwrap().zombie);
    assert!(state.find_pid(12).unwrap().zombie);
    update(
        &mut state,
        &ev(
            0.5,
            EventBody::End {
                pid: None,
                status: 0,
                unknown_exits: 0,
            },
        ),
    );
    assert!(state.procs.values().all(|p| !p.zombie && !p.is_alive()));
}

#[test]
fn a_reparented_orphan_moves_to_its_new_parent_and_keeps_its_origin() {
    let mut state = State::new(100);
    update(
        &mut state,
        &ev(
            0.0,
            EventBody::Session {
                pid: 1,
                version: "t".into(),
                pools: vec![],
                track: TrackSource::Kernel,
                track_note: String::new(),
                stop_timeout: 1.0,
                started_unix: 0.0,
                metrics: None,
            },
        ),
    );
    update(&mut state, &spawn(0.1, 10, 0));
    update(&mut state, &fork_of(0.2, 11, 10));
    update(&mut state, &fork_of(0.3, 12, 11));
    update(&mut state, &fork_of(0.3, 13, 11));
    let worker = state.find_pid(10).unwrap().id;
    update(&mut state, &exit_of(0.4, 11, 10, true));
    // Adopted by forkscope (the engine, pid 1): a root of the tree, the adopted group.
    let to_engine = EventBody::Reparent {
        pid: 12,
        from: 11,
        to: 1,
    };
    update(&mut state, &ev(0.4, to_engine));
    // Adopted by a subreaper inside the tree: under it.
    let to_worker = EventBody::Reparent {
        pid: 13,
        from: 11,
        to: 10,
    };
    update(&mut state, &ev(0.4, to_worker));
    let orphan = state.find_pid(12).unwrap();
    assert_eq!(
        (orphan.ppid, orphan.tree_parent(), orphan.adopted_from),
        (1, None, Some(11))
    );
    let middle = state.find_pid(11).map(|p| p.id);
    assert_eq!(orphan.parent, middle, "the one that forked it stays known");
    let other = state.find_pid(13).unwrap();
    assert_eq!(
        (other.ppid, other.tree_parent(), other.adopted_from),
        (10, Some(worker), Some(11))
    );
    // Its exit names the parent it had when it died.
    update(&mut state, &exit_of(0.9, 12, 1, false));
    assert_eq!(state.find_pid(12).unwrap().ppid, 1);
    // A reparent of an unknown pid, or to itself, is harmless.
    update(
        &mut state,
        &ev(
            1.0,
            EventBody::Reparent {
                pid: 99,
                from: 1,
                to: 2,
            },
        ),
    );
    update(
        &mut state,
        &ev(
            1.0,
            EventBody::Reparent {
                pid: 13,
                from: 10,
                to: 13,
            },
        ),
    );
    assert_eq!(state.find_pid(13).unwrap().tree_parent(), None);
}

#[test]
fn an_exit_naming_another_parent_marks_the_adoption() {
    // A recording without `reparent` events: the exit's ppid still tells.
    let mut state = State::new(100);
    update(&mut state, &spawn(0.1, 10, 0));
    update(&mut state, &fork_of(0.2, 11, 10));
    update(&mut state, &exit_of(0.5, 11, 1, false));
    let orphan = state.find_pid(11).unwrap();
    assert_eq!((orphan.ppid, orphan.adopted_from), (1, Some(10)));
}

#[test]
fn barrier_and_watched_events_fold_into_named_objects_after_a_json_round_trip() {
    let barrier =
        |pid: Option<i32>, step: BarrierStep, generation: u64, waiting: u32| EventBody::Barrier {
            pid,
            name: "start".into(),
            step,
            generation,
            parties: 2,
            waiting,
            pool: None,
            worker: None,
            reason: None,
        };
    let recorded = [
        barrier(Some(7), BarrierStep::Arrive, 0, 1),
        barrier(Some(8), BarrierStep::Arrive, 0, 2),
        barrier(None, BarrierStep::Pass, 0, 0),
        barrier(Some(8), BarrierStep::Arrive, 1, 1),
        EventBody::Watched {
            pid: 7,
            name: "counter".into(),
            object: "value".into(),
            typecode: Some("i".into()),
            length: None,
            parties: None,
            value: serde_json::json!(42),
            error: None,
        },
    ];
    let mut state = State::new(10);
    for (i, body) in recorded.into_iter().enumerate() {
        // As a recording replays it: through its JSON line.
        let line = serde_json::to_string(&ev(i as f64, body)).unwrap();
        update(&mut state, &serde_json::from_str(&line).unwrap());
    }
    let start = &state.hosted_barriers["start"];
    assert_eq!((start.waiting, start.generation), (1, 1));
    assert_eq!(start.waiting_pids, vec![8]);
    assert_eq!(start.state_words(), "filling");
    let counter = &state.watched["counter"];
    assert_eq!(
        counter.type_words() + &counter.value_words(),
        "Value('i') = 42"
    );
}
