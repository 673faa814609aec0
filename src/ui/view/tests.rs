use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::model::{Event, EventBody, ExitStatus, PoolInfo, ProcSample, TrackSource};
use crate::ui::app::{App, Msg};
use crate::ui::theme::Theme;

pub(crate) fn ev(t: f64, body: EventBody) -> Msg {
    Msg::Engine(Event { t, body })
}

/// A recorded session: a pool of two workers, one with a child killed by SIGTERM.
pub(crate) fn sample_app() -> App {
    let mut app = App::new("demo".into(), 100, Theme::monochrome());
    let msgs = vec![
        ev(
            0.0,
            EventBody::Session {
                pid: 100,
                version: "test".into(),
                pools: vec![PoolInfo {
                    name: "tour".into(),
                    size: 2,
                    argv: vec!["worker".into()],
                    restart: "never".into(),
                }],
                track: TrackSource::Poll,
                track_note: String::new(),
                stop_timeout: 5.0,
                started_unix: 0.0,
                metrics: None,
            },
        ),
        ev(
            0.1,
            EventBody::Spawn {
                pid: 201,
                ppid: 100,
                pool: "tour".into(),
                worker: 0,
                argv: vec!["worker".into(), "a".into()],
                start_time: Some(1),
                restarts: 0,
            },
        ),
        ev(
            0.1,
            EventBody::Spawn {
                pid: 202,
                ppid: 100,
                pool: "tour".into(),
                worker: 1,
                argv: vec!["worker".into(), "b".into()],
                start_time: Some(2),
                restarts: 0,
            },
        ),
        ev(
            0.2,
            EventBody::Fork {
                pid: 301,
                ppid: 201,
                start_time: Some(3),
                source: TrackSource::Engine,
            },
        ),
        ev(
            0.3,
            EventBody::Output {
                pid: 201,
                stream: crate::model::Stream::Stdout,
                line: "hello \x1b[31mred\x1b[0m".into(),
                raw_hex: None,
                seq: 1,
                partial: false,
            },
        ),
        ev(
            0.3,
            EventBody::Output {
                pid: 201,
                stream: crate::model::Stream::Stderr,
                line: "oops".into(),
                raw_hex: None,
                seq: 1,
                partial: false,
            },
        ),
        ev(
            0.9,
            EventBody::Sample {
                pid: None,
                procs: vec![
                    ProcSample {
                        pid: 201,
                        state: 'S',
                        cpu: 1.5,
                        rss_kb: 2048,
                        threads: 1,
                        pgid: 201,
                        sid: 1,
                        cwd: Some("/tmp".into()),
                        shares_pipe_of: None,
                    },
                    ProcSample {
                        pid: 202,
                        state: 'R',
                        cpu: 99.0,
                        rss_kb: 4096,
                        threads: 2,
                        pgid: 202,
                        sid: 1,
                        cwd: None,
                        shares_pipe_of: None,
                    },
                ],
            },
        ),
        ev(
            1.0,
            EventBody::Exit {
                pid: 301,
                ppid: 201,
                status: ExitStatus::Signaled {
                    signal: 15,
                    core_dumped: false,
                },
                pool: None,
                worker: None,
                source: TrackSource::Engine,
                zombie: false,
            },
        ),
    ];
    for msg in msgs {
        app.update(msg);
    }
    app
}

pub(crate) fn draw(app: &App, width: u16, height: u16) -> String {
    draw_with_areas(app, width, height).0
}

pub(crate) fn draw_with_areas(
    app: &App,
    width: u16,
    height: u16,
) -> (String, crate::ui::app::Areas) {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    let mut areas = crate::ui::app::Areas::default();
    terminal
        .draw(|frame| {
            areas = super::render(app, frame);
        })
        .unwrap();
    (crate::ui::screen_text(terminal.backend().buffer()), areas)
}

#[test]
fn tree_shows_pools_workers_children_and_endings() {
    let app = sample_app();
    let screen = draw(&app, 120, 30);
    assert!(screen.contains("pool tour"), "{screen}");
    assert!(screen.contains("201"), "{screen}");
    assert!(screen.contains("202"), "{screen}");
    assert!(screen.contains("301"), "{screen}");
    assert!(screen.contains("SIGTERM (-15 / 143)"), "{screen}");
    assert!(
        screen.contains("(fork-child) worker a"),
        "role of the un-exec'd child: {screen}"
    );
    assert!(screen.contains("sleeping"), "{screen}");
    assert!(screen.contains("running"), "{screen}");
    // Monochrome still tells ended from running by symbol and word.
    assert!(screen.contains("✗") && screen.contains("ended"), "{screen}");
}

#[test]
fn detail_and_output_of_selected_worker() {
    let app = sample_app();
    assert_eq!(app.selected_proc().map(|p| p.pid), Some(201));
    let screen = draw(&app, 120, 30);
    assert!(screen.contains("worker tour[0]"), "{screen}");
    assert!(screen.contains("hello red"), "{screen}");
    assert!(screen.contains("E▏oops"), "{screen}");
    assert!(screen.contains("cwd /tmp"), "{screen}");
}

#[test]
fn detail_names_signals_in_capitals() {
    let mut app = sample_app();
    let child = app
        .state
        .procs
        .values()
        .find(|p| p.pid == 301)
        .map(|p| p.id);
    app.selected = child.map(crate::ui::rows::RowKey::Proc);
    let screen = draw(&app, 120, 30);
    assert!(
        screen.contains("ended: SIGTERM (-15 / 143)"),
        "not SIGterm: {screen}"
    );
    assert!(screen.contains("(engine)"), "{screen}");
}

#[test]
fn fits_80x24_and_tiny_sizes_do_not_panic() {
    let app = sample_app();
    let screen = draw(&app, 80, 24);
    assert!(screen.contains("201"), "{screen}");
    assert!(screen.contains("SIGTERM"), "{screen}");
    for (w, h) in [
        (0, 0),
        (1, 1),
        (10, 3),
        (29, 7),
        (30, 8),
        (40, 10),
        (200, 5),
    ] {
        draw(&app, w, h);
    }
}

#[test]
fn help_overlay_lists_every_key() {
    let mut app = sample_app();
    app.overlay = crate::ui::app::Overlay::Help;
    let screen = draw(&app, 120, 30);
    for binding in crate::ui::keymap::KEYS {
        let key = binding.label;
        assert!(screen.contains(key), "missing {key} in\n{screen}");
    }
}

#[test]
fn signal_menu_and_confirmations_render() {
    let mut app = sample_app();
    app.overlay = crate::ui::app::Overlay::Signals { selected: 14 };
    let screen = draw(&app, 100, 40);
    assert!(screen.contains("▶  15 SIGTERM"), "{screen}");
    app.overlay = crate::ui::app::Overlay::Confirm(crate::ui::app::Confirm::Quit { running: 2 });
    let screen = draw(&app, 100, 30);
    assert!(screen.contains("Quit? 2 process(es)"), "{screen}");
}

#[test]
fn timeline_draws_bars_fork_arrows_and_endings() {
    let mut app = sample_app();
    app.main_view = crate::ui::app::MainView::Timeline;
    let screen = draw(&app, 120, 30);
    assert!(screen.contains("timeline"), "{screen}");
    assert!(screen.contains('━'), "bars: {screen}");
    assert!(screen.contains('┗'), "fork arrow into the child: {screen}");
    assert!(
        screen.contains('┬'),
        "fork arrow out of the parent: {screen}"
    );
    assert!(screen.contains('✗'), "the child's SIGTERM ending: {screen}");
    for (w, h) in [(0, 0), (20, 5), (40, 12), (80, 24)] {
        draw(&app, w, h);
    }
}

#[test]
fn timeline_chart_places_birth_and_death_by_time() {
    use crate::ui::view::timeline::{Window, chart};
    let app = sample_app();
    let rows = app.rows();
    let window = Window {
        start: 0.0,
        seconds_per_column: 0.1,
    };
    let grid = chart(&app, &rows, window, 20);
    let child_row = rows
        .iter()
        .position(|r| matches!(r.key, crate::ui::rows::RowKey::Proc(id) if app.state.procs[&id].pid == 301))
        .unwrap();
    // Born at 0.2 s (column 2), ended by SIGTERM at 1.0 s (column 10).
    assert_eq!(grid[child_row][2].0, '┗');
    assert_eq!(grid[child_row][10].0, '✗');
    assert_eq!(grid[child_row][5].0, '━');
    assert_eq!(grid[child_row][11].0, ' ');
    // Zoomed out so birth and death share a column: the ending still shows, after the arrow.
    let coarse = Window {
        start: 0.0,
        seconds_per_column: 2.0,
    };
    let grid = chart(&app, &rows, coarse, 20);
    assert_eq!(grid[child_row][0].0, '┗');
    assert_eq!(grid[child_row][1].0, '✗');
}

#[test]
fn timeline_shows_barrier_steps_and_marks_on_their_rows() {
    use crate::model::BarrierStep;
    use crate::ui::view::timeline::{Window, chart};
    let mut app = sample_app();
    let barrier = |t: f64, pid: Option<i32>, step: BarrierStep| {
        ev(
            t,
            EventBody::Barrier {
                pid,
                name: "b".into(),
                step,
                generation: 0,
                parties: 1,
                waiting: 1,
                pool: None,
                worker: None,
                reason: None,
            },
        )
    };
    app.update(barrier(0.35, Some(201), BarrierStep::Arrive));
    app.update(barrier(0.55, None, BarrierStep::Pass));
    app.update(ev(
        0.75,
        EventBody::Mark {
            pid: Some(201),
            label: "epoch".into(),
            pool: None,
            worker: None,
        },
    ));
    let rows = app.rows();
    let window = Window {
        start: 0.0,
        seconds_per_column: 0.1,
    };
    let grid = chart(&app, &rows, window, 20);
    let row = rows
        .iter()
        .position(|r| matches!(r.key, crate::ui::rows::RowKey::Proc(id) if app.state.procs[&id].pid == 201))
        .unwrap();
    assert_eq!(grid[row][3].0, '▹');
    assert_eq!(grid[row][5].0, '‖');
    assert_eq!(grid[row][7].0, '★');
}

#[test]
fn replay_is_read_only() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut app = sample_app();
    app.update(Msg::Replay(crate::ui::replay::ReplayStatus {
        paused: false,
        speed: 1.0,
        position: 3,
        total: 9,
        t: 0.5,
    }));
    let key = |c| Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    assert!(app.update(key('t')).is_empty());
    assert!(
        app.status
            .as_ref()
            .is_some_and(|s| s.error && s.text.contains("read-only"))
    );
    assert_eq!(
        app.update(key('p')),
        vec![crate::ui::app::Effect::Replay(
            crate::ui::replay::Control::TogglePause
        )]
    );
    let screen = draw(&app, 120, 30);
    assert!(
        screen.contains("replay ▶ playing 1x · event 3/9"),
        "{screen}"
    );
}

#[test]
fn mouse_click_selects_the_row_under_it_and_wheel_scrolls_output() {
    use crossterm::event::{KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
    let mut app = sample_app();
    let (screen, areas) = draw_with_areas(&app, 120, 30);
    app.update(Msg::Layout(areas));
    let row = screen
        .lines()
        .position(|l| l.contains("202") && l.contains("[tour:1]"))
        .unwrap() as u16;
    let click = MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: 10,
        row,
        modifiers: KeyModifiers::NONE,
    };
    app.update(Msg::Mouse(click));
    assert_eq!(app.selected_proc().map(|p| p.pid), Some(202));
    // Back to the worker with output; the wheel over the output pane scrolls it.
    let row = screen
        .lines()
        .position(|l| l.contains("201") && l.contains("[tour:0]"))
        .unwrap() as u16;
    app.update(Msg::Mouse(MouseEvent { row, ..click }));
    assert_eq!(app.selected_proc().map(|p| p.pid), Some(201));
    let wheel = MouseEvent {
        kind: MouseEventKind::ScrollUp,
        column: areas.output.x + 2,
        row: areas.output.y + 2,
        modifiers: KeyModifiers::NONE,
    };
    app.update(Msg::Mouse(wheel));
    assert_eq!(
        app.output_scroll, 2,
        "two lines of output: scrolled to the top"
    );
    assert_eq!(
        app.focus,
        crate::ui::app::Focus::Tree,
        "the wheel does not steal focus"
    );
}

#[test]
fn shm_view_waits_for_its_first_reading() {
    let mut app = sample_app();
    app.main_view = crate::ui::app::MainView::Shm;
    let screen = draw(&app, 100, 30);
    assert!(screen.contains("reading the shared memory"), "{screen}");
    assert!(app.shm_request().is_some_and(|r| r.pids == vec![201, 202]));
    let rule = crate::inspect::shm::decode::rules::FormatRule {
        pattern: "psm_*".into(),
        format: crate::inspect::shm::decode::Format::Hex,
        origin: "forkscope.toml:2:1".into(),
    };
    app.shm_rules = vec![rule.clone()].into();
    assert!(
        app.shm_request().is_some_and(|r| r.rules[..] == [rule]),
        "the config's layouts reach the watcher"
    );
    app.main_view = crate::ui::app::MainView::Tree;
    assert!(
        app.shm_request().is_none(),
        "no watching unless the view is open"
    );
    for (w, h) in [(0, 0), (10, 4), (80, 24)] {
        app.main_view = crate::ui::app::MainView::Shm;
        draw(&app, w, h);
    }
}

#[test]
fn ten_thousand_processes_are_all_rows_and_render() {
    let mut app = App::new("big".into(), 10, Theme::monochrome());
    app.update(ev(
        0.0,
        EventBody::Session {
            pid: 1,
            version: "t".into(),
            pools: vec![PoolInfo {
                name: "p".into(),
                size: 1,
                argv: vec!["w".into()],
                restart: "never".into(),
            }],
            track: TrackSource::Kernel,
            track_note: String::new(),
            stop_timeout: 1.0,
            started_unix: 0.0,
            metrics: None,
        },
    ));
    app.update(ev(
        0.0,
        EventBody::Spawn {
            pid: 2,
            ppid: 1,
            pool: "p".into(),
            worker: 0,
            argv: vec!["w".into()],
            start_time: Some(1),
            restarts: 0,
        },
    ));
    for n in 0..10_000 {
        let pid = 10 + n;
        app.update(ev(
            0.1,
            EventBody::Fork {
                pid,
                ppid: 2,
                start_time: Some(pid as u64),
                source: TrackSource::Kernel,
            },
        ));
        app.update(ev(
            0.2,
            EventBody::Exit {
                pid,
                ppid: 2,
                status: ExitStatus::Exited(0),
                pool: None,
                worker: None,
                source: TrackSource::Kernel,
                zombie: false,
            },
        ));
    }
    // Every process is a row (pool + worker + 10,000 children), and both views draw them.
    let rows = app.rows();
    assert_eq!(rows.len(), 2 + 10_000);
    assert!(rows.iter().all(|r| r.depth <= 2));
    let screen = draw(&app, 120, 40);
    assert!(screen.contains("processes (10002)"), "{screen}");
    app.main_view = crate::ui::app::MainView::Timeline;
    let screen = draw(&app, 120, 40);
    assert!(screen.contains("timeline"), "{screen}");
    // How long a frame takes is measured by `cargo bench --bench tui_render`.
}

#[test]
fn a_replay_shows_the_recorded_shared_memory() {
    use crate::model::shm::{Decoded, ListItem, SegmentKind};
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut app = sample_app();
    app.update(Msg::Replay(crate::ui::replay::ReplayStatus {
        paused: false,
        speed: 1.0,
        position: 3,
        total: 9,
        t: 0.5,
    }));
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('m'),
        KeyModifiers::NONE,
    )));
    assert_eq!(app.main_view, crate::ui::app::MainView::Shm);
    let screen = draw(&app, 100, 30);
    assert!(screen.contains("no shared-memory changes"), "{screen}");
    let shm = |t, v| {
        ev(
            t,
            EventBody::Shm {
                pid: None,
                name: "psm_rec".into(),
                segment: SegmentKind::Posix,
                inode: 7,
                size: 64,
                pids: vec![201],
                value: Some(Decoded::ShareableList {
                    layout: "3.9+".into(),
                    items: vec![ListItem::Int { value: v }],
                }),
                changed: vec![],
                changed_items: if v > 1 { vec![0] } else { vec![] },
                truncated: false,
                gone: false,
            },
        )
    };
    app.update(shm(0.6, 1));
    app.update(shm(0.7, 2));
    let screen = draw(&app, 100, 30);
    assert!(
        screen.contains("psm_rec") && screen.contains("* [0] 2"),
        "{screen}"
    );
}
