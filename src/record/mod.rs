//! Recording a session (`--record FILE`): the file writes, on a thread of their own so
//! neither the TUI nor the headless printer waits on the disk, the JSON-lines encoder both
//! write with ([`json`]), the reading of a recording back ([`read`]), and the shared-memory
//! watcher ([`shm`]) that turns the tree's segments into `shm` events while a session
//! records.

pub(crate) mod json;
pub mod read;
pub mod shm;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use crate::model::Event;
use json::JsonLines;

/// Blocks queued for the writer before `write` waits (backpressure, nothing is dropped).
const QUEUED_BLOCKS: usize = 64;

/// Bytes of JSON lines gathered before they are handed to the writer.
const BLOCK: usize = 256 << 10;

/// Writes events as JSON lines to a file, on its own thread. Dropping it writes what is
/// queued, flushes and joins the thread.
pub struct Recorder {
    json: JsonLines,
    pending: Vec<u8>,
    lines: Option<Sender<Vec<u8>>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Recorder {
    pub fn create(path: &Path) -> io::Result<Recorder> {
        let file = File::create(path)?;
        let (tx, rx) = crossbeam_channel::bounded(QUEUED_BLOCKS);
        let thread = std::thread::Builder::new()
            .name("forkscope-record".into())
            .spawn(move || write_lines(BufWriter::new(file), rx))?;
        Ok(Recorder {
            json: JsonLines::default(),
            pending: Vec::with_capacity(BLOCK),
            lines: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues one event (written once a block is full or at [`Recorder::flush`]); an error
    /// once the writer failed (it logged why).
    pub fn write(&mut self, event: &Event) -> io::Result<()> {
        self.json.write(&mut self.pending, event)?;
        if self.pending.len() >= BLOCK {
            self.send_pending()?;
        }
        Ok(())
    }

    /// Hands what is gathered to the writer: call it when the consumer has caught up, so a
    /// quiet session's recording is never behind by more than the writer's queue.
    pub fn flush(&mut self) {
        if let Err(err) = self.send_pending() {
            tracing::error!("recording failed: {err}");
        }
    }

    fn send_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let block = std::mem::replace(&mut self.pending, Vec::with_capacity(BLOCK));
        match &self.lines {
            Some(tx) if tx.send(block).is_ok() => Ok(()),
            _ => Err(io::Error::other("the recording's writer stopped")),
        }
    }

    /// Waits until everything queued is in the file.
    pub fn finish(mut self) -> io::Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> io::Result<()> {
        let sent = self.send_pending();
        self.lines = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the recording's writer panicked")),
            None => Ok(()),
        }
        .and(sent)
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
