//! Unit tests of the state model.
use super::*;

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
                    line: format!("line {seq}"),
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
