//! The headless consumer: every event as one JSON line on stdout, handed to the recorder
//! ([`crate::record`]) too when the session records; under systemd it also feeds the
//! [`ServiceNotifier`] (`READY=1`, `STATUS=`, `WATCHDOG=1`, `STOPPING=1`).

use std::io::{self, Write};

use crate::model::{Action, Event, EventBody};
use crate::notify::ServiceNotifier;
use crate::record::Recorder;
use crate::supervise::EngineHandle;

use crate::record::json::JsonLines;

/// Bytes of JSON gathered before a write to stdout.
const OUT_BUFFER: usize = 1 << 20;

/// The next batch of events; with a notifier, waking for its start deadlines and watchdog
/// meanwhile.
fn next_batch(engine: &EngineHandle, notifier: Option<&mut ServiceNotifier>) -> Option<Vec<Event>> {
    let Some(notifier) = notifier else {
        return engine.events.recv_batch();
    };
    loop {
        let wait = notifier.wait(std::time::Instant::now());
        match engine.events.recv_batch_timeout(wait) {
            Ok(batch) => return Some(batch),
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
    if let Err(err) = crate::supervise::wakeup::prefer_wakeups() {
        tracing::debug!("no short scheduler slice for the printer: {err}");
    }
    let mut out = Stdout {
        pending: Vec::with_capacity(OUT_BUFFER + 64 * 1024),
        stdout: io::stdout().lock(),
    };
    let mut json = JsonLines::default();
    let mut status = 1;
    let mut stdout_broken = false;
    'batches: while let Some(batch) = next_batch(engine, notifier.as_mut()) {
        let last = batch.len();
        for (i, event) in batch.iter().enumerate() {
            if let Some(rec) = recorder.as_mut()
                && let Err(err) = rec.write(event)
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
            if shown && !stdout_broken && out.write(&mut json, event).is_err() {
                // Nobody reads our output any more: stop the tree as if asked to quit.
                stdout_broken = true;
                engine.actions.send(Action::Quit);
            }
            // The service manager hears of a change only after stdout shows its event.
            let notify = notifier.is_some()
                && !matches!(
                    event.body,
                    EventBody::Output { .. } | EventBody::OutputLines(_) | EventBody::Sample { .. }
                );
            let caught_up = i + 1 == last && engine.events.is_empty();
            if caught_up && let Some(rec) = recorder.as_mut() {
                rec.flush();
            }
            if (end || notify || caught_up) && !stdout_broken && out.flush().is_err() {
                stdout_broken = true;
                engine.actions.send(Action::Quit);
            }
            if let Some(notifier) = notifier.as_mut() {
                notifier.on_event(event);
            }
            if end {
                break 'batches;
            }
        }
    }
    if let Some(rec) = recorder
        && let Err(err) = rec.finish()
    {
        tracing::error!("recording failed: {err}");
    }
    status
}

/// Stdout written in blocks of [`OUT_BUFFER`]: events are serialised straight into the block.
struct Stdout {
    pending: Vec<u8>,
    stdout: io::StdoutLock<'static>,
}

impl Stdout {
    fn write(&mut self, json: &mut JsonLines, event: &Event) -> io::Result<()> {
        json.write(&mut self.pending, event)?;
        if self.pending.len() >= OUT_BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let written = self.stdout.write_all(&self.pending);
        self.pending.clear();
        written.and_then(|()| self.stdout.flush())
    }
}
