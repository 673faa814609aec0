//! The headless consumer: every event as one JSON line on stdout, handed to the recorder
//! ([`crate::record`]) too when the session records; under systemd it also feeds the
//! [`ServiceNotifier`] (`READY=1`, `STATUS=`, `WATCHDOG=1`, `STOPPING=1`).

use std::io::{self, BufWriter, Write};

use crate::model::{Action, Event, EventBody, printable};
use crate::notify::ServiceNotifier;
use crate::record::Recorder;
use crate::supervise::EngineHandle;

/// Writes one serialised event and its newline; the terminal controls serde_json leaves raw
/// (DEL, C1) are escaped, since stdout may be a terminal.
fn write_line(out: &mut impl Write, json: &[u8]) -> io::Result<()> {
    match std::str::from_utf8(json) {
        Ok(text) => out.write_all(printable::json(text).as_bytes())?,
        Err(_) => out.write_all(json)?,
    }
    out.write_all(b"\n")
}

/// The next event; with a notifier, waking for its start deadlines and watchdog meanwhile.
fn next_event(engine: &EngineHandle, notifier: Option<&mut ServiceNotifier>) -> Option<Event> {
    let Some(notifier) = notifier else {
        return engine.events.recv();
    };
    loop {
        let wait = notifier.wait(std::time::Instant::now());
        match engine.events.recv_timeout(wait) {
            Ok(event) => return Some(event),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => notifier.tick(),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return None,
        }
    }
}

/// Prints every event until the engine's `end`; returns the session's exit status.
pub fn print_events(
    engine: &EngineHandle,
    mut recorder: Option<Recorder>,
    samples: bool,
    mut notifier: Option<ServiceNotifier>,
) -> i32 {
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(256 * 1024, stdout.lock());
    let mut status = 1;
    let mut stdout_broken = false;
    let mut line = Vec::with_capacity(1024);
    while let Some(event) = next_event(engine, notifier.as_mut()) {
        if let Some(rec) = recorder.as_mut()
            && let Err(err) = rec.write(&event)
        {
            tracing::error!("recording failed: {err}");
            recorder = None;
        }
        let end = match event.body {
            EventBody::End { status: s, .. } => {
                status = s;
                true
            }
            _ => false,
        };
        let shown = samples || !matches!(event.body, EventBody::Sample { .. });
        if shown && !stdout_broken {
            line.clear();
            let written = serde_json::to_writer(&mut line, &event)
                .map_err(io::Error::from)
                .and_then(|()| write_line(&mut out, &line));
            if written.is_err() {
                // Nobody reads our output any more: stop the tree as if asked to quit.
                stdout_broken = true;
                engine.actions.send(Action::Quit);
            }
        }
        // The service manager hears of a change only after stdout shows its event.
        let notify = notifier.is_some()
            && !matches!(
                event.body,
                EventBody::Output { .. } | EventBody::Sample { .. }
            );
        if (end || notify || engine.events.raw().is_empty())
            && !stdout_broken
            && out.flush().is_err()
        {
            stdout_broken = true;
            engine.actions.send(Action::Quit);
        }
        if let Some(notifier) = notifier.as_mut() {
            notifier.on_event(&event);
        }
        if end {
            break;
        }
    }
    if let Some(rec) = recorder
        && let Err(err) = rec.finish()
    {
        tracing::error!("recording failed: {err}");
    }
    status
}
