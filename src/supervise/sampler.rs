//! The sampler: reads the tree's `/proc` entries on its own thread, so that the engine loop
//! never waits behind a sample (with 10,000 processes a sample takes tens of milliseconds).
//! The engine sends a [`Request`] at each sample tick (never more than one outstanding),
//! the thread answers with a [`Reading`] and wakes the engine's poll; the engine turns it
//! into `sample` events (and, when polling, lifecycle events) on its own thread, after
//! dropping what it learnt ended meanwhile. Reads go through one
//! [`StatReader`](crate::inspect::stat_reader::StatReader) kept across samples. If the thread
//! cannot be started, the same reads run inline.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use mio::Waker;

use crate::inspect::proc::{self, ProcStat};
use crate::inspect::stat_reader::StatReader;

/// What to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// These processes (pid, start time when known): an exact source knows the tree.
    Members(Vec<(i32, Option<u64>)>),
    /// Every process of `/proc`, keeping the descendants of `root` (polling).
    Tree { root: i32 },
    /// These processes, and every process of `/proc` in [`Reading::all`]: the kernel
    /// source's periodic reconciliation, read here so that the engine never stalls on it.
    MembersAndAll(Vec<(i32, Option<u64>)>),
}

/// What a request found: the processes read, parents first for [`Request::Tree`], and the
/// pipe inodes behind their fds 1 and 2.
#[derive(Debug, Default)]
pub(crate) struct Reading {
    pub tree: Vec<ProcStat>,
    pub pipes: HashMap<i32, [Option<u64>; 2]>,
    pub tree_request: bool,
    /// Every process of `/proc`, for [`Request::MembersAndAll`] (`None` if unreadable).
    pub all: Option<HashMap<i32, ProcStat>>,
}

/// Does the reads of one request.
pub(crate) fn read(reader: &mut StatReader, request: &Request) -> Reading {
    let mut reading = Reading::default();
    match request {
        Request::Members(members) => read_members(reader, members, &mut reading),
        Request::MembersAndAll(members) => {
            reading.all = proc::scan_all().ok();
            read_members(reader, members, &mut reading);
        }
        Request::Tree { root } => {
            reading.tree_request = true;
            let mut all = HashMap::new();
            let mut pipes = HashMap::new();
            for pid in proc::list_pids().unwrap_or_default() {
                if let Some(read) = reader.read(pid, None) {
                    pipes.insert(pid, read.pipes);
                    all.insert(pid, read.stat);
                }
            }
            reading.tree = proc::descendants_in(&all, *root);
            reading.pipes = reading
                .tree
                .iter()
                .filter_map(|s| Some((s.pid, pipes.remove(&s.pid)?)))
                .collect();
        }
    }
    reader.end_round();
    reading
}

fn read_members(reader: &mut StatReader, members: &[(i32, Option<u64>)], reading: &mut Reading) {
    for (pid, start) in members {
        if let Some(read) = reader.read(*pid, *start) {
            reading.pipes.insert(*pid, read.pipes);
            reading.tree.push(read.stat);
        }
    }
}

enum Mode {
    Thread {
        requests: Option<Sender<Request>>,
        readings: Receiver<Reading>,
        thread: Option<JoinHandle<()>>,
    },
    Inline {
        reader: StatReader,
        ready: Option<Reading>,
    },
}

/// The engine's handle on the sampler.
pub(crate) struct Sampler {
    mode: Mode,
    outstanding: bool,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler")
            .field("outstanding", &self.outstanding)
            .finish()
    }
}

impl Sampler {
    /// Starts the thread; `waker` wakes the engine's poll when a reading is ready.
    pub(crate) fn start(waker: Arc<Waker>) -> Sampler {
        let (req_tx, req_rx) = crossbeam_channel::bounded::<Request>(1);
        let (read_tx, read_rx) = crossbeam_channel::bounded::<Reading>(1);
        let spawned = std::thread::Builder::new()
            .name("forkscope-sampler".into())
            .spawn(move || {
                let mut reader = StatReader::new();
                // Ends when the engine drops its sender.
                while let Ok(request) = req_rx.recv() {
                    if read_tx.send(read(&mut reader, &request)).is_err() {
                        return;
                    }
                    let _ = waker.wake();
                }
            });
        let mode = match spawned {
            Ok(thread) => Mode::Thread {
                requests: Some(req_tx),
                readings: read_rx,
                thread: Some(thread),
            },
            Err(err) => {
                tracing::warn!("no sampler thread ({err}): sampling on the engine thread");
                Mode::Inline {
                    reader: StatReader::new(),
                    ready: None,
                }
            }
        };
        Sampler {
            mode,
            outstanding: false,
        }
    }

    /// Asks for a reading unless one is still being taken; whether it was asked.
    pub(crate) fn request(&mut self, request: Request) -> bool {
        if self.outstanding {
            return false;
        }
        match &mut self.mode {
            Mode::Thread { requests, .. } => {
                let Some(tx) = requests else { return false };
                if tx.try_send(request).is_err() {
                    return false;
                }
            }
            Mode::Inline { reader, ready } => *ready = Some(read(reader, &request)),
        }
        self.outstanding = true;
        true
    }

    /// Whether a request is being answered.
    pub(crate) fn outstanding(&self) -> bool {
        self.outstanding
    }

    /// The reading, once ready.
    pub(crate) fn take(&mut self) -> Option<Reading> {
        let reading = match &mut self.mode {
            Mode::Thread { readings, .. } => match readings.try_recv() {
                Ok(reading) => Some(reading),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => {
                    self.outstanding = false;
                    None
                }
            },
            Mode::Inline { ready, .. } => ready.take(),
        };
        if reading.is_some() {
            self.outstanding = false;
        }
        reading
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        if let Mode::Thread {
            requests,
            readings,
            thread,
        } = &mut self.mode
        {
            *requests = None;
            // A reading being sent must not block the thread's exit.
            while readings.try_recv().is_ok() {}
            if let Some(thread) = thread.take() {
                let _ = thread.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_on_its_thread_and_wakes_the_poll() {
        let mut poll = mio::Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(7)).unwrap());
        let mut sampler = Sampler::start(waker);
        let me = std::process::id() as i32;
        assert!(sampler.request(Request::Members(vec![(me, None), (-5, None)])));
        assert!(
            !sampler.request(Request::Tree { root: me }),
            "one at a time"
        );
        let mut events = mio::Events::with_capacity(4);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let reading = loop {
            poll.poll(&mut events, Some(std::time::Duration::from_secs(1)))
                .unwrap();
            if let Some(reading) = sampler.take() {
                break reading;
            }
            assert!(std::time::Instant::now() < deadline, "no reading");
        };
        assert_eq!(reading.tree.len(), 1);
        assert_eq!(reading.tree[0].pid, me);
        assert!(!sampler.outstanding());
        assert!(sampler.request(Request::Tree { root: 1 }));
        drop(sampler);
    }

    #[test]
    fn members_and_all_reads_both() {
        let mut reader = StatReader::new();
        let me = std::process::id() as i32;
        let reading = read(&mut reader, &Request::MembersAndAll(vec![(me, None)]));
        assert_eq!(reading.tree.len(), 1);
        let all = reading.all.expect("a scan of /proc");
        assert!(
            all.contains_key(&me) && all.contains_key(&1),
            "{:?}",
            all.keys()
        );
        let members = read(&mut reader, &Request::Members(vec![(me, None)]));
        assert!(members.all.is_none());
    }
}
