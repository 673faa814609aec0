//! Render tests of what the lifecycle adds to the views: zombies, adopted orphans, shared
//! pipes, and the output pane's size sent to the engine.

use super::tests::{draw, draw_with_areas, ev, sample_app};
use crate::model::{EventBody, ExitStatus, ProcSample, TrackSource};
use crate::ui::app::{App, Msg};

/// The sample session plus a child of worker 202 that forks a grandchild and ends, left a
/// zombie, its grandchild adopted by forkscope (pid 100).
fn zombie_app() -> App {
    let mut app = sample_app();
    let fork = |t, pid, ppid| {
        ev(
            t,
            EventBody::Fork {
                pid,
                ppid,
                start_time: Some(pid as u64),
                source: TrackSource::Kernel,
            },
        )
    };
    let msgs = [
        ev(
            1.0,
            EventBody::Output {
                pid: 202,
                stream: crate::model::Stream::Stdout,
                line: "from worker b".into(),
                raw_hex: None,
                seq: 1,
                partial: false,
            },
        ),
        fork(1.1, 302, 202),
        fork(1.2, 303, 302),
        ev(
            1.5,
            EventBody::Exit {
                pid: 302,
                ppid: 202,
                status: ExitStatus::Exited(0),
                pool: None,
                worker: None,
                source: TrackSource::Kernel,
                zombie: true,
            },
        ),
        ev(
            1.5,
            EventBody::Reparent {
                pid: 303,
                from: 302,
                to: 100,
            },
        ),
        ev(
            3.5,
            EventBody::Notice {
                pid: None,
                level: crate::model::NoticeLevel::Info,
                message: "later".into(),
            },
        ),
    ];
    for msg in msgs {
        app.update(msg);
    }
    app
}

#[test]
fn a_zombie_is_shown_as_zombie_with_its_status_and_wait_until_reaped() {
    let mut app = zombie_app();
    let screen = draw(&app, 130, 30);
    assert!(screen.contains("zombie"), "{screen}");
    assert!(screen.contains("exit 0 · zombie 2s"), "{screen}");
    let row = |app: &App, pid| {
        app.rows()
            .iter()
            .position(|r| matches!(r.key, crate::ui::rows::RowKey::Proc(id) if app.state.procs[&id].pid == pid))
            .unwrap()
    };
    use crate::ui::view::timeline::{Window, chart};
    let window = Window {
        start: 0.0,
        seconds_per_column: 0.5,
    };
    // Exit at 1.5 s (column 3), still a zombie now (3.5 s, column 7): a dotted tail.
    let grid = chart(&app, &app.rows(), window, 12);
    let zombie = row(&app, 302);
    assert_eq!(grid[zombie][3].0, 'Z');
    assert_eq!(grid[zombie][5].0, '┄');
    assert_eq!(grid[zombie][7].0, '┄');
    app.update(ev(2.5, EventBody::Reap { pid: 302, by: 202 }));
    let screen = draw(&app, 130, 30);
    assert!(!screen.contains("zombie 2s"), "{screen}");
    assert!(
        screen.contains("○") && screen.contains("exit 0"),
        "{screen}"
    );
    // The tail ends at the reap (2.5 s, column 5).
    let grid = chart(&app, &app.rows(), window, 12);
    assert_eq!(grid[zombie][3].0, '○');
    assert_eq!(grid[zombie][5].0, '┄');
    assert_eq!(grid[zombie][6].0, ' ');
    // The detail pane says who reaped it and after how long.
    app.selected = Some(crate::ui::rows::RowKey::Proc(
        app.state.find_pid(302).unwrap().id,
    ));
    let screen = draw(&app, 130, 30);
    assert!(
        screen.contains("reaped by 202 at +2.500s, after 1s"),
        "{screen}"
    );
}

#[test]
fn an_adopted_orphan_is_under_forkscope_marked_with_its_old_parent() {
    let mut app = zombie_app();
    let rows = app.rows();
    let orphan = app.state.find_pid(303).unwrap().id;
    let adopted = rows
        .iter()
        .position(|r| r.key == crate::ui::rows::RowKey::Adopted)
        .expect("an adopted group");
    let at = rows
        .iter()
        .position(|r| r.key == crate::ui::rows::RowKey::Proc(orphan))
        .unwrap();
    assert!(at > adopted, "the orphan is in the adopted group");
    let screen = draw(&app, 130, 30);
    assert!(screen.contains("↰302"), "{screen}");
    app.selected = Some(crate::ui::rows::RowKey::Proc(orphan));
    let screen = draw(&app, 130, 30);
    assert!(
        screen.contains("adopted: its parent 302 ended; re-parented to 100"),
        "{screen}"
    );
    // It still writes into its worker's pipes: the output pane shows the worker's log.
    assert!(screen.contains("from worker b"), "{screen}");
}

#[test]
fn a_child_sharing_its_workers_pipe_is_marked_shared_pipe() {
    let mut app = sample_app();
    app.update(ev(
        1.1,
        EventBody::Fork {
            pid: 302,
            ppid: 201,
            start_time: Some(4),
            source: TrackSource::Engine,
        },
    ));
    let mut child = ProcSample {
        pid: 302,
        state: 'S',
        cpu: 0.0,
        rss_kb: 1024,
        threads: 1,
        pgid: 201,
        sid: 1,
        cwd: None,
        shares_pipe_of: Some(201),
    };
    app.update(ev(
        1.2,
        EventBody::Sample {
            pid: None,
            procs: vec![child.clone()],
        },
    ));
    let screen = draw(&app, 160, 30);
    assert!(
        screen.contains("shared pipe: 1 other live process(es) write here"),
        "{screen}"
    );
    child.shares_pipe_of = None;
    app.update(ev(
        2.2,
        EventBody::Sample {
            pid: None,
            procs: vec![child],
        },
    ));
    assert!(!draw(&app, 160, 30).contains("shared pipe"));
}

#[test]
fn a_new_output_pane_size_goes_to_the_engine_once() {
    use crate::model::Action;
    use crate::ui::app::Effect;
    let mut app = sample_app();
    let (_, areas) = draw_with_areas(&app, 120, 30);
    let effects = app.update(Msg::Layout(areas));
    let expected = Action::OutputPaneSize {
        cols: areas.output.width - 2,
        rows: areas.output.height - 2,
    };
    assert_eq!(effects, vec![Effect::Engine(expected)]);
    assert!(app.update(Msg::Layout(areas)).is_empty(), "same size again");
}

#[test]
fn output_search_steps_through_matches_across_reads() {
    use crate::model::{OutputLines, Stream};
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut app = sample_app();
    // Worker 201 already has "hello red" and "oops"; then one read of four lines, then one.
    let read = OutputLines::of_lines(
        201,
        Stream::Stdout,
        2,
        &["alpha 3", "beta", "ALPHA 5", "gamma"],
    );
    app.update(ev(1.0, EventBody::OutputLines(read)));
    app.update(ev(
        1.1,
        EventBody::Output {
            pid: 201,
            stream: Stream::Stdout,
            line: "last".into(),
            raw_hex: None,
            seq: 6,
            partial: false,
        },
    ));
    app.selected = Some(crate::ui::rows::RowKey::Proc(
        app.state.find_pid(201).unwrap().id,
    ));
    assert_eq!(app.selected_proc().map(|p| p.output.len()), Some(7));
    let key = |code| Msg::Key(KeyEvent::new(code, KeyModifiers::NONE));
    app.update(key(KeyCode::Tab));
    app.output_search = "alpha".into();
    // Lines from the newest: 0 last, 1 gamma, 2 ALPHA 5, 3 beta, 4 alpha 3, 5 oops, 6 hello.
    app.update(key(KeyCode::Char('n')));
    assert_eq!(app.output_scroll, 2);
    app.update(key(KeyCode::Char('n')));
    assert_eq!(app.output_scroll, 4);
    app.update(key(KeyCode::Char('n')));
    assert_eq!(app.output_scroll, 4, "no older match: it stays");
    assert!(
        app.status
            .as_ref()
            .is_some_and(|s| s.text.contains("no more matches"))
    );
    app.update(key(KeyCode::Char('N')));
    assert_eq!(app.output_scroll, 2);
    let screen = draw(&app, 120, 30);
    assert!(screen.contains("ALPHA 5"), "{screen}");
}
