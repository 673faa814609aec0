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

use crate::inspect::pystack::watch::{StackTarget, StackWatcher};
use crate::inspect::role_probe::RoleProbe;
use crate::inspect::shm::decode::rules::FormatRule;
use crate::inspect::shm::watch::{WatchRequest, Watcher};
use crate::inspect::sync::watch::{SyncRequest, SyncWatcher};
use crate::model::Event;
use crate::record::Recorder;
use crate::supervise::EngineHandle;
use app::{App, Areas, Effect, Msg};

/// How often the shared-memory view re-reads the segments.
const SHM_REFRESH: Duration = Duration::from_millis(500);
/// The most of one segment the view reads.
const SHM_MAX_BYTES: u64 = 64 << 20;
/// How often the role probe is asked about the tree (live sessions only).
const ROLE_PROBE_EVERY: Duration = Duration::from_secs(1);
/// How often the selected process's Python stacks are read.
const PYSTACK_REFRESH: Duration = Duration::from_secs(1);
/// How often the tree's waits are scanned (the WAITING ON column, the Sync view).
const SYNC_REFRESH: Duration = Duration::from_secs(1);
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
    let no_snapshots = crossbeam_channel::never();
    let mut shm_watcher: Option<Watcher> = None;
    let mut shm_request: Option<WatchRequest> = None;
    // Roles that need /proc (a Manager server's socket) are probed off the render path.
    let role_probe = match &source {
        Source::Live(_) => RoleProbe::spawn().ok(),
        Source::Replay(_) => None,
    };
    let no_answers = crossbeam_channel::never();
    let mut last_probe: Option<Instant> = None;
    let no_stacks = crossbeam_channel::never();
    let mut stack_watcher: Option<StackWatcher> = None;
    let mut stack_target: StackTarget = None;
    let no_reports = crossbeam_channel::never();
    let mut sync_watcher: Option<SyncWatcher> = None;
    let mut sync_request: Option<SyncRequest> = None;
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
        if let Some(probe) = &role_probe
            && last_probe.is_none_or(|t| t.elapsed() >= ROLE_PROBE_EVERY)
        {
            last_probe = Some(Instant::now());
            let procs = app.role_probe_procs();
            if procs.is_empty() {
                if app.role_evidence != Default::default() {
                    app.update(Msg::RoleEvidence(Default::default()));
                }
            } else {
                probe.ask(procs);
            }
        }
        let answers = role_probe.as_ref().map_or(&no_answers, |p| p.answers());
        let target = app.stack_target();
        if target != stack_target {
            if stack_watcher.is_none() && target.is_some() {
                stack_watcher = StackWatcher::spawn(PYSTACK_REFRESH).ok();
            }
            if let Some(watcher) = &stack_watcher {
                watcher.set(target);
            }
            stack_target = target;
        }
        let stack_reports = stack_watcher.as_ref().map_or(&no_stacks, |w| w.reports());
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
                let Ok(batch) = received else { break app.finished.unwrap_or(1) };
                let mut taken = 0;
                let mut next = Some(batch);
                while let Some(batch) = next.take() {
                    engine.events.ack(&batch);
                    taken += batch.len();
                    for event in batch {
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
            recv(answers) -> received => {
                if let Ok(evidence) = received {
                    dirty |= app.role_evidence != evidence;
                    app.update(Msg::RoleEvidence(evidence));
                }
            }
            recv(stack_reports) -> received => {
                if let Ok(stacks) = received {
                    app.update(Msg::PyStack(Box::new(stacks)));
                    dirty = true;
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
