//! The TUI: a ratatui app over the engine. `app` holds the state and its pure `update`,
//! `view` renders it, `input` maps keys to intentions; this module owns the terminal and the
//! loop that feeds messages in and carries effects (actions) out to the supervisor.
//!
//! The loop redraws only when something changed, at most ~30 frames a second, and sleeps
//! otherwise: it wakes for engine events and input only.

pub mod ansi;
pub mod app;
pub mod format;
pub mod input;
pub mod rows;
pub mod theme;
pub mod view;

use std::io::{self, Stdout, Write};
use std::time::{Duration, Instant};

use anyhow::Context;
use crossterm::event::{DisableMouseCapture, EnableMouseCapture, Event as TermEvent};
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use crossterm::{cursor, execute};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::headless::Recorder;
use crate::model::Event;
use crate::supervise::EngineHandle;
use app::{App, Areas, Effect, Msg};

/// Shortest time between two frames.
const FRAME: Duration = Duration::from_millis(33);
/// Engine events applied per wake-up before the loop draws again.
const EVENTS_PER_BATCH: usize = 20_000;

/// Puts the terminal back however the TUI ends (return, error, panic).
struct TerminalGuard;

impl TerminalGuard {
    fn enter() -> io::Result<(Terminal<CrosstermBackend<Stdout>>, TerminalGuard)> {
        enable_raw_mode()?;
        let guard = TerminalGuard;
        let mut stdout = io::stdout();
        execute!(
            stdout,
            EnterAlternateScreen,
            EnableMouseCapture,
            cursor::Hide
        )?;
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
        Ok((Terminal::new(CrosstermBackend::new(stdout))?, guard))
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn restore_terminal() {
    let _ = disable_raw_mode();
    let mut stdout = io::stdout();
    let _ = execute!(
        stdout,
        DisableMouseCapture,
        LeaveAlternateScreen,
        cursor::Show
    );
    let _ = stdout.flush();
}

/// Runs the TUI until the engine's `end`; returns the session's exit status.
pub fn run(
    engine: &EngineHandle,
    mut recorder: Option<Recorder>,
    scrollback: usize,
    title: &str,
) -> anyhow::Result<i32> {
    let mut app = App::new(title.to_string(), scrollback, theme::Theme::from_env());
    let (mut terminal, guard) = TerminalGuard::enter().context("opening the terminal")?;
    let (input_tx, input_rx) = crossbeam_channel::bounded::<TermEvent>(256);
    std::thread::Builder::new()
        .name("input".into())
        .spawn(move || {
            while let Ok(event) = crossterm::event::read() {
                if input_tx.send(event).is_err() {
                    break;
                }
            }
        })
        .context("starting the input thread")?;

    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    let status = loop {
        if dirty && last_draw.is_none_or(|t| t.elapsed() >= FRAME) {
            let mut areas = Areas::default();
            terminal.draw(|frame| areas = view::render(&app, frame))?;
            app.update(Msg::Layout(areas));
            dirty = false;
            last_draw = Some(Instant::now());
        }
        if let Some(status) = app.finished {
            break status;
        }
        let timeout = if dirty {
            last_draw.map_or(Duration::ZERO, |t| FRAME.saturating_sub(t.elapsed()))
        } else {
            Duration::from_secs(3600)
        };
        crossbeam_channel::select! {
            recv(engine.events.raw()) -> received => {
                let Ok(event) = received else { break app.finished.unwrap_or(1) };
                engine.events.ack(1);
                record(&mut recorder, &event);
                app.update(Msg::Engine(event));
                for _ in 0..EVENTS_PER_BATCH {
                    let Ok(event) = engine.events.raw().try_recv() else { break };
                    engine.events.ack(1);
                    record(&mut recorder, &event);
                    app.update(Msg::Engine(event));
                }
                if let Some(rec) = recorder.as_mut() {
                    let _ = rec.flush();
                }
                dirty = true;
            }
            recv(input_rx) -> received => {
                if let Ok(event) = received {
                    let effects = match event {
                        TermEvent::Key(key) => app.update(Msg::Key(key)),
                        TermEvent::Mouse(mouse) => app.update(Msg::Mouse(mouse)),
                        _ => Vec::new(),
                    };
                    for effect in effects {
                        match effect {
                            Effect::Engine(action) => {
                                engine.actions.send(action);
                            }
                        }
                    }
                    dirty = true;
                }
            }
            default(timeout) => {}
        }
    };
    drop(terminal);
    drop(guard);
    if let Some(mut rec) = recorder {
        let _ = rec.flush();
    }
    print_summary(&app);
    Ok(status)
}

fn record(recorder: &mut Option<Recorder>, event: &Event) {
    if let Some(rec) = recorder.as_mut()
        && let Err(err) = rec.write(event)
    {
        tracing::error!("recording failed: {err}");
        *recorder = None;
    }
}

/// After the TUI closes: one line per worker that did not exit 0, so the story survives.
fn print_summary(app: &App) {
    let failures: Vec<String> = app
        .state
        .procs
        .values()
        .filter_map(|p| {
            let ended = p.ended?;
            (!ended.status.success()).then(|| {
                format!(
                    "  pid {:>7}  {:<24} {}",
                    p.pid,
                    ended.status.describe(),
                    p.command()
                )
            })
        })
        .collect();
    let total = app.state.procs.len();
    println!(
        "forkscope: {total} process(es) seen, {} did not exit 0",
        failures.len()
    );
    for line in failures.iter().take(20) {
        println!("{line}");
    }
    if failures.len() > 20 {
        println!("  … and {} more", failures.len() - 20);
    }
}
