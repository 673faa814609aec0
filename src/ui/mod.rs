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
pub mod keymap;
pub mod replay;
pub mod rows;
pub mod theme;
pub mod view;

/// The text of a test terminal's screen, one line per row (render tests).
#[cfg(test)]
pub(crate) fn screen_text(buffer: &ratatui::buffer::Buffer) -> String {
    let mut text = String::new();
    for y in 0..buffer.area.height {
        for x in 0..buffer.area.width {
            text.push_str(buffer[(x, y)].symbol());
        }
        text.push('\n');
    }
    text
}

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

pub mod shm_view;
mod summary;

use crate::inspect::shm::decode::rules::FormatRule;
use crate::live::Readers;
use crate::model::Event;
use crate::record::Recorder;
use crate::supervise::EngineHandle;
use app::{App, Areas, Effect, Msg};

/// Shortest time between two frames.
const FRAME: Duration = Duration::from_millis(33);
/// Engine events applied per wake-up before the loop draws again (whole batches: at least
/// this many).
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
            if crate::inspect::pystack::in_guarded_read() {
                // Caught and reported as the process's stack error; the screen stays.
                tracing::warn!("{info}");
                return;
            }
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

/// Where the TUI's events come from.
pub enum Source<'a> {
    /// A running engine: actions go to it.
    Live(&'a EngineHandle),
    /// A recording played back; read-only.
    Replay(replay::Playback),
}

/// Runs the TUI until the session ends (live) or the person quits (replay); returns the
/// session's exit status. `readers` (a live session's, `None` in a replay) read what the
/// views ask for off the render path.
pub fn run(
    mut source: Source,
    readers: Option<Readers>,
    mut recorder: Option<Recorder>,
    scrollback: usize,
    title: &str,
    shm_rules: Vec<FormatRule>,
) -> anyhow::Result<i32> {
    let mut app = App::new(title.to_string(), scrollback, theme::Theme::from_env());
    app.shm_rules = shm_rules.into();
    let (mut terminal, guard) = TerminalGuard::enter().context("opening the terminal")?;
    let (input_tx, mut input_rx) = crossbeam_channel::bounded::<TermEvent>(256);
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
    let no_events = crossbeam_channel::never();
    let mut readers = readers.unwrap_or_else(Readers::idle);
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    // The terminal went away (hangup, EIO): nothing is drawn any more, the session stops
    // normally and every event still reaches the recording.
    let mut terminal_lost = false;
    let status = loop {
        if let Source::Replay(playback) = &mut source {
            let now = Instant::now();
            let due = playback.due(now);
            dirty |= !due.is_empty();
            for event in due {
                app.update(Msg::Engine(event));
            }
            let status = playback.status(now);
            if app.replay != Some(status) {
                dirty |= app.replay.is_none_or(|old| {
                    old.position != status.position
                        || old.paused != status.paused
                        || old.speed != status.speed
                });
                app.update(Msg::Replay(status));
            }
        }
        dirty &= !terminal_lost;
        if dirty && last_draw.is_none_or(|t| t.elapsed() >= FRAME) {
            match draw(&mut terminal, &app) {
                Ok(areas) => {
                    let effects = app.update(Msg::Layout(areas));
                    carry_out(&mut source, &mut app, effects);
                }
                Err(err) => {
                    terminal_lost = true;
                    if lose_terminal(&source, &err) {
                        break 1;
                    }
                }
            }
            dirty = false;
            last_draw = Some(Instant::now());
        }
        ask_readers(&mut app, &mut readers);
        let results = readers.results();
        let events = match &source {
            Source::Live(engine) => {
                if let Some(status) = app.finished {
                    break status;
                }
                engine.events.raw()
            }
            Source::Replay(_) => &no_events,
        };
        let mut timeout = if dirty {
            last_draw.map_or(Duration::ZERO, |t| FRAME.saturating_sub(t.elapsed()))
        } else {
            Duration::from_secs(3600)
        };
        if let Source::Replay(playback) = &source
            && let Some(due) = playback.next_due_in(Instant::now())
        {
            timeout = timeout.min(due);
        }
        crossbeam_channel::select! {
            recv(events) -> received => {
                let Source::Live(engine) = &source else { continue };
                let Ok(batch) = received else { break app.finished.unwrap_or(1) };
                let mut taken = 0;
                let mut next = Some(batch);
                while let Some(batch) = next.take() {
                    engine.events.ack(&batch);
                    taken += batch.events.len();
                    for event in batch.events {
                        record(&mut recorder, &event);
                        app.update(Msg::Engine(event));
                    }
                    if taken < EVENTS_PER_BATCH {
                        next = engine.events.raw().try_recv().ok();
                    }
                }
                if engine.events.is_empty()
                    && let Some(rec) = recorder.as_mut()
                {
                    rec.flush();
                }
                dirty = true;
            }
            recv(input_rx) -> received => {
                let Ok(event) = received else {
                    input_rx = crossbeam_channel::never();
                    continue;
                };
                let effects = match event {
                    TermEvent::Key(key) => app.update(Msg::Key(key)),
                    TermEvent::Mouse(mouse) => app.update(Msg::Mouse(mouse)),
                    _ => Vec::new(),
                };
                dirty = true;
                if carry_out(&mut source, &mut app, effects) {
                    // A replay that was watched to the end succeeded, whatever it recorded.
                    break 0;
                }
            }
            recv(results.roles) -> received => {
                if let Ok(evidence) = received {
                    dirty |= app.role_evidence != evidence;
                    app.update(Msg::RoleEvidence(evidence));
                }
            }
            recv(results.stacks) -> received => {
                if let Ok(stacks) = received {
                    app.update(Msg::PyStack(Box::new(stacks)));
                    dirty = true;
                }
            }
            recv(results.sync) -> received => {
                if let Ok(report) = received {
                    app.update(Msg::Sync(Box::new(report)));
                    dirty = true;
                }
            }
            recv(results.shm) -> received => {
                if let Ok(snapshot) = received {
                    app.update(Msg::Shm(Box::new(snapshot)));
                    dirty |= app.main_view == app::MainView::Shm;
                }
            }
            default(timeout) => {}
        }
    };
    if let Some(rec) = recorder
        && let Err(err) = rec.finish()
    {
        tracing::error!("recording failed: {err}");
    }
    // The terminal may have gone while nothing was drawn: showing the cursor tells.
    terminal_lost = terminal_lost || terminal.show_cursor().is_err();
    if terminal_lost {
        // Its drop would report the failure to show the cursor on a terminal that is gone.
        std::mem::forget(terminal);
    } else {
        drop(terminal);
    }
    drop(guard);
    if !terminal_lost {
        print_summary(&app);
    }
    Ok(status)
}

/// Hands the readers what the views ask for now (each request only when it changed).
fn ask_readers(app: &mut App, readers: &mut Readers) {
    if let Some(request) = app.shm_request() {
        readers.watch_shm(request);
    }
    if readers.roles_due() {
        let procs = app.role_probe_procs();
        if procs.is_empty() {
            if app.role_evidence != Default::default() {
                app.update(Msg::RoleEvidence(Default::default()));
            }
        } else {
            readers.probe_roles(procs);
        }
    }
    readers.watch_stacks(app.stack_target());
    if let Some(request) = app.sync_request() {
        readers.watch_sync(request);
    }
}

/// Draws a frame; returns where the panes went.
fn draw(terminal: &mut Terminal<CrosstermBackend<Stdout>>, app: &App) -> io::Result<Areas> {
    // A hung-up terminal has no size; asked anyway, crossterm would fork `tput` to guess one.
    rustix::termios::tcgetwinsize(io::stdout())?;
    let mut areas = Areas::default();
    terminal.draw(|frame| areas = view::render(app, frame))?;
    Ok(areas)
}

/// The terminal cannot be written any more: a live session stops as if asked to quit (its
/// end still reaches the recording); true when the loop should end now (a replay).
fn lose_terminal(source: &Source, err: &io::Error) -> bool {
    tracing::warn!("the terminal is gone ({err}): stopping the session");
    match source {
        Source::Live(engine) => {
            engine.actions.send(crate::model::Action::Quit);
            false
        }
        Source::Replay(_) => true,
    }
}

/// Sends actions to the engine or controls playback; true when the replay should end.
fn carry_out(source: &mut Source, app: &mut App, effects: Vec<Effect>) -> bool {
    for effect in effects {
        match (effect, &mut *source) {
            (Effect::Engine(action), Source::Live(engine)) => {
                let sent = engine.actions.send(action);
                if !sent {
                    app.warn_engine_gone();
                }
            }
            (Effect::Replay(replay::Control::Quit), Source::Replay(_)) => return true,
            (Effect::Replay(control), Source::Replay(playback)) => {
                if let Some(event) = playback.control(control, Instant::now()) {
                    app.update(Msg::Engine(event));
                }
            }
            _ => {}
        }
    }
    false
}

fn record(recorder: &mut Option<Recorder>, event: &Event) {
    if let Some(rec) = recorder.as_mut()
        && let Err(err) = rec.write(event)
    {
        tracing::error!("recording failed: {err}");
        *recorder = None;
    }
}

/// After the TUI closes: the summary, so the story survives.
fn print_summary(app: &App) {
    for line in summary::lines(app) {
        println!("{line}");
    }
}
