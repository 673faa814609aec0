//! The two channels between the engine and whoever consumes it (headless printer or TUI):
//! events out, actions in. Events are never dropped: when the consumer falls behind by
//! `HIGH_WATER` events the engine stops reading children's pipes (their writes then block,
//! as they would with any slow reader) until the consumer is back under `LOW_WATER`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use mio::Waker;

use crate::model::{Action, Event, EventBody};

/// Events in flight above which the engine pauses output capture.
pub const HIGH_WATER: usize = 100_000;
/// Events in flight below which a paused engine resumes.
pub const LOW_WATER: usize = 20_000;

#[derive(Debug)]
struct Flow {
    pending: AtomicUsize,
    paused: AtomicBool,
    waker: Arc<Waker>,
}

/// The engine's end of the event channel.
#[derive(Debug)]
pub struct EventTx {
    tx: Sender<Event>,
    flow: Arc<Flow>,
    clock: Instant,
    /// Bits of the largest `t` sent so far (non-negative f64 bits order like the numbers).
    last_t: AtomicU64,
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
    let flow = Arc::new(Flow {
        pending: AtomicUsize::new(0),
        paused: AtomicBool::new(false),
        waker: waker.clone(),
    });
    (
        EventTx {
            tx,
            flow: flow.clone(),
            clock,
            last_t: AtomicU64::new(0),
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
        let t = self.clock.elapsed().as_secs_f64();
        self.last_t.fetch_max(t.to_bits(), Ordering::SeqCst);
        self.send(t, body);
    }

    /// Sends one event that happened at `when` (a kernel timestamp), never stamped earlier
    /// than an event already sent, so `t` stays non-decreasing in the stream.
    pub fn emit_at(&self, when: Instant, body: EventBody) {
        let t = when.saturating_duration_since(self.clock).as_secs_f64();
        let previous = self.last_t.fetch_max(t.to_bits(), Ordering::SeqCst);
        self.send(t.max(f64::from_bits(previous)), body);
    }

    fn send(&self, t: f64, body: EventBody) {
        self.flow.pending.fetch_add(1, Ordering::SeqCst);
        let event = Event { t, body };
        if self.tx.send(event).is_err() {
            self.flow.pending.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// True when output capture should pause; arms the consumer's wake-up in that case.
    pub fn congested(&self) -> bool {
        if self.flow.pending.load(Ordering::SeqCst) < HIGH_WATER {
            return false;
        }
        self.flow.paused.store(true, Ordering::SeqCst);
        if self.flow.pending.load(Ordering::SeqCst) < HIGH_WATER {
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
        let before = self.flow.pending.fetch_sub(n, Ordering::SeqCst);
        if before.saturating_sub(n) <= LOW_WATER && self.flow.paused.swap(false, Ordering::SeqCst) {
            let _ = self.flow.waker.wake();
        }
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

    #[test]
    fn kernel_stamped_events_never_go_back_in_time() {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(1)).unwrap());
        let clock = Instant::now();
        let (tx, rx, _actions, _action_rx) = channels(waker, clock);
        let pid = |pid| EventBody::Notice {
            pid: Some(pid),
            level: "info".into(),
            message: String::new(),
        };
        std::thread::sleep(Duration::from_millis(5));
        tx.emit(pid(1));
        // A kernel event from before the last one sent is stamped with the last time...
        tx.emit_at(clock, pid(2));
        // ...one from after it keeps its own time.
        let later = Instant::now() + Duration::from_millis(50);
        tx.emit_at(later, pid(3));
        let t: Vec<f64> = (0..3).map(|_| rx.try_recv().unwrap().t).collect();
        assert!(t[0] >= 0.005);
        assert_eq!(t[1], t[0]);
        assert!((t[2] - later.duration_since(clock).as_secs_f64()).abs() < 1e-9);
    }
}
