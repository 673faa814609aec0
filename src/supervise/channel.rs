//! The two channels between the engine and whoever consumes it (headless printer or TUI):
//! events out, actions in. Events are never dropped: when the consumer falls behind by
//! `HIGH_WATER` events or `HIGH_WATER_BYTES` of output text the engine stops reading
//! children's pipes (their writes then block, as they would with any slow reader) until the
//! consumer is back under both `LOW_WATER` and `LOW_WATER_BYTES`. The byte bound matters for
//! long lines: 100,000 events of 64 KiB pieces would otherwise be 6.5 GB in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use mio::Waker;

use crate::model::{Action, Event, EventBody};

/// Events in flight above which the engine pauses output capture.
pub const HIGH_WATER: usize = 100_000;
/// Events in flight below which a paused engine resumes.
pub const LOW_WATER: usize = 20_000;
/// Bytes of output text in flight above which the engine pauses output capture.
pub const HIGH_WATER_BYTES: usize = 16 << 20;
/// Bytes of output text in flight below which a paused engine resumes.
pub const LOW_WATER_BYTES: usize = 4 << 20;

#[derive(Debug)]
struct Flow {
    pending: AtomicUsize,
    /// Output bytes of the events in flight.
    pending_bytes: AtomicUsize,
    /// The weight (output bytes) of every event in flight, in channel order, so that
    /// `ack(n)` (which only knows a count) can give back the right number of bytes.
    weights_tx: Sender<usize>,
    weights_rx: Receiver<usize>,
    paused: AtomicBool,
    waker: Arc<Waker>,
}

/// The engine's end of the event channel.
#[derive(Debug)]
pub struct EventTx {
    tx: Sender<Event>,
    flow: Arc<Flow>,
    clock: Instant,
}

/// The consumer's end of the event channel.
#[derive(Debug)]
pub struct EventRx {
    rx: Receiver<Event>,
    flow: Arc<Flow>,
}

/// Sends actions to the engine and wakes it.
#[derive(Clone, Debug)]
pub struct ActionTx {
    tx: Sender<Action>,
    waker: Arc<Waker>,
}

/// Makes the channels; `clock` is the instant event times count from.
pub fn channels(
    waker: Arc<Waker>,
    clock: Instant,
) -> (EventTx, EventRx, ActionTx, Receiver<Action>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let (action_tx, action_rx) = crossbeam_channel::unbounded();
    let (weights_tx, weights_rx) = crossbeam_channel::unbounded();
    let flow = Arc::new(Flow {
        pending: AtomicUsize::new(0),
        pending_bytes: AtomicUsize::new(0),
        weights_tx,
        weights_rx,
        paused: AtomicBool::new(false),
        waker: waker.clone(),
    });
    (
        EventTx {
            tx,
            flow: flow.clone(),
            clock,
        },
        EventRx { rx, flow },
        ActionTx {
            tx: action_tx,
            waker,
        },
        action_rx,
    )
}

impl EventTx {
    /// Stamps and sends one event.
    pub fn emit(&self, body: EventBody) {
        let weight = match &body {
            EventBody::Output { line, raw_hex, .. } => {
                line.len() + raw_hex.as_ref().map_or(0, String::len)
            }
            _ => 0,
        };
        self.flow.pending.fetch_add(1, Ordering::SeqCst);
        self.flow.pending_bytes.fetch_add(weight, Ordering::SeqCst);
        // The weight goes first: once the consumer holds the event, its weight is queued.
        let _ = self.flow.weights_tx.send(weight);
        let event = Event {
            t: self.clock.elapsed().as_secs_f64(),
            body,
        };
        if self.tx.send(event).is_err() {
            // The consumer is gone; nobody will ack, so the books no longer matter.
            self.flow.pending.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// True when output capture should pause; arms the consumer's wake-up in that case.
    pub fn congested(&self) -> bool {
        if !self.flow.over_high_water() {
            return false;
        }
        self.flow.paused.store(true, Ordering::SeqCst);
        if !self.flow.over_high_water() {
            self.flow.paused.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Seconds since forkscope started.
    pub fn now(&self) -> f64 {
        self.clock.elapsed().as_secs_f64()
    }
}

impl EventRx {
    pub fn recv(&self) -> Option<Event> {
        let event = self.rx.recv().ok()?;
        self.ack(1);
        Some(event)
    }

    pub fn recv_timeout(&self, timeout: Duration) -> Result<Event, RecvTimeoutError> {
        let event = self.rx.recv_timeout(timeout)?;
        self.ack(1);
        Ok(event)
    }

    pub fn try_recv(&self) -> Result<Event, TryRecvError> {
        let event = self.rx.try_recv()?;
        self.ack(1);
        Ok(event)
    }

    /// The raw receiver, for `select!`; call [`EventRx::ack`] for every event taken from it.
    pub fn raw(&self) -> &Receiver<Event> {
        &self.rx
    }

    /// Marks `n` events as consumed, waking a paused engine once the backlog is small.
    pub fn ack(&self, n: usize) {
        let bytes: usize = (0..n)
            .map_while(|_| self.flow.weights_rx.try_recv().ok())
            .sum();
        let before_bytes = self.flow.pending_bytes.fetch_sub(bytes, Ordering::SeqCst);
        let before = self.flow.pending.fetch_sub(n, Ordering::SeqCst);
        let low = before.saturating_sub(n) <= LOW_WATER
            && before_bytes.saturating_sub(bytes) <= LOW_WATER_BYTES;
        if low && self.flow.paused.swap(false, Ordering::SeqCst) {
            let _ = self.flow.waker.wake();
        }
    }
}

impl Flow {
    fn over_high_water(&self) -> bool {
        self.pending.load(Ordering::SeqCst) >= HIGH_WATER
            || self.pending_bytes.load(Ordering::SeqCst) >= HIGH_WATER_BYTES
    }
}

impl ActionTx {
    /// Queues an action; false if the engine has ended.
    pub fn send(&self, action: Action) -> bool {
        let sent = self.tx.send(action).is_ok();
        let _ = self.waker.wake();
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Stream;

    fn output(bytes: usize) -> EventBody {
        EventBody::Output {
            pid: 1,
            stream: Stream::Stdout,
            line: "x".repeat(bytes),
            raw_hex: None,
            seq: 1,
            partial: true,
        }
    }

    #[test]
    fn long_lines_congest_by_bytes_not_count() {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let (tx, rx, _actions, _action_rx) = channels(waker, Instant::now());
        let piece = 64 * 1024;
        let mut sent = 0;
        while !tx.congested() {
            tx.emit(output(piece));
            sent += 1;
            assert!(sent < 1000, "never congested: bytes are not counted");
        }
        assert_eq!(sent, HIGH_WATER_BYTES / piece);
        // Taking events through the raw receiver plus ack(1) gives the bytes back.
        let mut taken = 0;
        while tx.congested() {
            rx.raw().try_recv().unwrap();
            rx.ack(1);
            taken += 1;
        }
        assert_eq!(taken, 1);
        while rx.try_recv().is_ok() {}
        assert_eq!(rx.flow.pending.load(Ordering::SeqCst), 0);
        assert_eq!(rx.flow.pending_bytes.load(Ordering::SeqCst), 0);
        assert!(!rx.flow.paused.load(Ordering::SeqCst));
    }
}
