//! Recording a session (`--record FILE`): the file writes, on a thread of their own so
//! neither the TUI nor the headless printer waits on the disk, and the shared-memory
//! watcher ([`shm`]) that turns the tree's segments into `shm` events while a session records.

pub mod shm;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use crate::model::Event;

/// Lines queued for the writer before `write` waits (backpressure, nothing is dropped).
const QUEUED_LINES: usize = 4096;

/// Writes events as JSON lines to a file, on its own thread. Dropping it writes what is
/// queued, flushes and joins the thread.
pub struct Recorder {
    lines: Option<Sender<Vec<u8>>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Recorder {
    pub fn create(path: &Path) -> io::Result<Recorder> {
        let file = File::create(path)?;
        let (tx, rx) = crossbeam_channel::bounded(QUEUED_LINES);
        let thread = std::thread::Builder::new()
            .name("forkscope-record".into())
            .spawn(move || write_lines(BufWriter::new(file), rx))?;
        Ok(Recorder {
            lines: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues one event; an error once the writer failed (it logged why).
    pub fn write(&mut self, event: &Event) -> io::Result<()> {
        let mut line = serde_json::to_vec(event)?;
        line.push(b'\n');
        match &self.lines {
            Some(tx) if tx.send(line).is_ok() => Ok(()),
            _ => Err(io::Error::other("the recording's writer stopped")),
        }
    }

    /// Waits until everything queued is in the file.
    pub fn finish(mut self) -> io::Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> io::Result<()> {
        self.lines = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the recording's writer panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            tracing::error!("recording failed: {err}");
        }
    }
}

/// Writes lines until the sender is gone, flushing whenever the queue runs empty.
fn write_lines(mut out: BufWriter<File>, lines: Receiver<Vec<u8>>) -> io::Result<()> {
    let result = (|| {
        while let Ok(line) = lines.recv() {
            out.write_all(&line)?;
            if lines.is_empty() {
                out.flush()?;
            }
        }
        out.flush()
    })();
    if let Err(err) = &result {
        tracing::error!("recording failed: {err}");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventBody;

    #[test]
    fn writes_every_event_as_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.jsonl");
        let mut recorder = Recorder::create(&path).unwrap();
        for n in 0..10_000 {
            let body = EventBody::Reap { pid: n, by: 1 };
            recorder.write(&Event { t: 0.5, body }).unwrap();
        }
        recorder.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 10_000);
        let last: Event = serde_json::from_str(lines[9_999]).unwrap();
        assert_eq!(last.body, EventBody::Reap { pid: 9_999, by: 1 });
    }
}
