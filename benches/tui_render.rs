//! Cost of one TUI frame (rows + render into a 120x40 buffer) with many processes in the
//! state: the tree and the timeline, with 1,000 and 10,000 processes (one worker whose
//! children all ended). The reference is the frame budget (33 ms at 30 frames/s).
//!
//! Run: `cargo bench --bench tui_render` (results in docs/PERFORMANCE.md).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use forkscope::model::{Event, EventBody, ExitStatus, PoolInfo, TrackSource};
use forkscope::ui::app::{App, MainView, Msg};
use forkscope::ui::theme::Theme;
use forkscope::ui::view::render;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn app_with(processes: i32) -> App {
    let mut app = App::new("bench".into(), 10, Theme::monochrome());
    let mut feed = |t: f64, body: EventBody| {
        app.update(Msg::Engine(Event { t, body }));
    };
    feed(
        0.0,
        EventBody::Session {
            pid: 1,
            version: "bench".into(),
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
    );
    feed(
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
    );
    for n in 0..processes {
        let pid = 10 + n;
        let t = f64::from(n) / 1000.0;
        feed(
            t,
            EventBody::Fork {
                pid,
                ppid: 2,
                start_time: Some(pid as u64),
                source: TrackSource::Kernel,
            },
        );
        feed(
            t + 0.0005,
            EventBody::Exit {
                pid,
                ppid: 2,
                status: ExitStatus::Exited(n % 3),
                pool: None,
                worker: None,
                source: TrackSource::Kernel,
                zombie: false,
            },
        );
    }
    app
}

fn frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_120x40");
    for processes in [1_000, 10_000] {
        let mut app = app_with(processes);
        for view in [MainView::Tree, MainView::Timeline] {
            app.main_view = view;
            let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
            group.bench_with_input(
                BenchmarkId::new(format!("{view:?}"), processes),
                &app,
                |b, app| {
                    b.iter(|| {
                        terminal
                            .draw(|frame| {
                                render(app, frame);
                            })
                            .expect("draw");
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
