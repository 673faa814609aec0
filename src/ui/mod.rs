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

use crate::headless::Recorder;
use crate::inspect::shm::decode::rules::FormatRule;
use crate::inspect::shm::watch::{WatchRequest, Watcher};
use crate::inspect::sync::watch::{SyncRequest, SyncWatcher};
use crate::model::Event;
use crate::supervise::EngineHandle;
use app::{App, Areas, Effect, Msg};

/// How often the shared-memory view re-reads the segments.
const SHM_REFRESH: Duration = Duration::from_millis(500);
/// The most of one segment the view reads.
const SHM_MAX_BYTES: u64 = 64 << 20;
/// How often the tree's waits are scanned (the WAITING ON column, the Sync view).
const SYNC_REFRESH: Duration = Duration::from_secs(1);
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

/// Where the TUI's events come from.
pub enum Source<'a> {
    /// A running engine: actions go to it.
    Live(&'a EngineHandle),
    /// A recording played back; read-only.
    Replay(replay::Playback),
}

/// Runs the TUI until the session ends (live) or the person quits (replay); returns the
/// session's exit status.
pub fn run(
    mut source: Source,
    mut recorder: Option<Recorder>,
    scrollback: usize,
    title: &str,
    shm_rules: Vec<FormatRule>,
) -> anyhow::Result<i32> {
    let mut app = App::new(title.to_string(), scrollback, theme::Theme::from_env());
    app.shm_rules = shm_rules.into();
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
    let no_events = crossbeam_channel::never();
    let no_snapshots = crossbeam_channel::never();
    let mut shm_watcher: Option<Watcher> = None;
    let mut shm_request: Option<WatchRequest> = None;
    let no_reports = crossbeam_channel::never();
    let mut sync_watcher: Option<SyncWatcher> = None;
    let mut sync_request: Option<SyncRequest> = None;
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
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
        if dirty && last_draw.is_none_or(|t| t.elapsed() >= FRAME) {
            let mut areas = Areas::default();
            terminal.draw(|frame| areas = view::render(&app, frame))?;
            app.update(Msg::Layout(areas));
            dirty = false;
            last_draw = Some(Instant::now());
        }
        if let Some(request) = app.shm_request()
            && shm_request.as_ref() != Some(&request)
        {
            if shm_watcher.is_none() {
                shm_watcher = Watcher::spawn(SHM_REFRESH, SHM_MAX_BYTES).ok();
            }
            if let Some(watcher) = &shm_watcher {
                watcher.set(request.clone());
            }
            shm_request = Some(request);
        }
        let snapshots = shm_watcher
            .as_ref()
            .map_or(&no_snapshots, |w| w.snapshots());
        if let Some(request) = app.sync_request()
            && sync_request.as_ref() != Some(&request)
        {
            if sync_watcher.is_none() {
                sync_watcher = SyncWatcher::spawn(SYNC_REFRESH).ok();
            }
            if let Some(watcher) = &sync_watcher {
                watcher.set(request.clone());
            }
            sync_request = Some(request);
        }
        let sync_reports = sync_watcher.as_ref().map_or(&no_reports, |w| w.reports());
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
                let Ok(event) = received else { continue };
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
            recv(sync_reports) -> received => {
                if let Ok(report) = received {
                    app.update(Msg::Sync(Box::new(report)));
                    dirty = true;
                }
            }
            recv(snapshots) -> received => {
                if let Ok(snapshot) = received {
                    app.update(Msg::Shm(Box::new(snapshot)));
                    dirty |= app.main_view == app::MainView::Shm;
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
