//! The two channels between the engine and whoever consumes it (headless printer or TUI):
//! events out, actions in. Events are never dropped: when the consumer falls behind by
//! `HIGH_WATER` events or `HIGH_WATER_BYTES` of output text the engine stops reading
//! children's pipes (their writes then block, as they would with any slow reader) until the
//! consumer is back under both `LOW_WATER` and `LOW_WATER_BYTES`. The byte bound matters for
//! long lines: 100,000 events of 64 KiB pieces would otherwise be 6.5 GB in flight.
//! Events travel in batches (every line of one read of a pipe is one batch), so a flood of
//! short lines costs one channel operation per read, not per line.

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
/// Bytes of output text in flight above which the engine pauses output capture.
pub const HIGH_WATER_BYTES: usize = 16 << 20;
/// Bytes of output text in flight below which a paused engine resumes.
pub const LOW_WATER_BYTES: usize = 4 << 20;

#[derive(Debug)]
struct Flow {
    pending: AtomicUsize,
    /// Output bytes of the events in flight ([`weight`] of each).
    pending_bytes: AtomicUsize,
    paused: AtomicBool,
    waker: Arc<Waker>,
    /// Times capture paused for a lagging consumer or tap (the metrics' backpressure pauses).
    pauses: AtomicU64,
}

/// What an event counts for in the byte bounds: the text of an output line.
pub fn weight(body: &EventBody) -> usize {
    match body {
        EventBody::Output { line, raw_hex, .. } => {
            line.len() + raw_hex.as_ref().map_or(0, String::len)
        }
        EventBody::OutputLines(lines) => lines.text_len(),
        // A segment's value: two hex digits a byte, capped like `record::shm` caps it.
        EventBody::Shm {
            value: Some(_),
            size,
            ..
        } => (*size as usize).saturating_mul(2).min(16 << 10),
        _ => 0,
    }
}

/// Events sent together, with the output bytes they count for in the flow control (summed
/// once, by the sender).
#[derive(Debug)]
pub struct Batch {
    pub events: Vec<Event>,
    count: usize,
    bytes: usize,
}

/// How many events `body` stands for in the flow control (the lines of a read count one each).
fn count(body: &EventBody) -> usize {
    match body {
        EventBody::OutputLines(lines) => lines.len(),
        _ => 1,
    }
}

/// Sees every event as it is sent, on the sending thread, before the primary consumer gets
/// it (the control socket's ring and subscribers). Must never block.
pub trait EventTap: Send + Sync {
    fn observe(&self, event: &Event);

    /// Sees a batch of events, in order.
    fn observe_all(&self, events: &[Event]) {
        for event in events {
            self.observe(event);
        }
    }

    /// True while the tap's own backlog is too large: the engine then pauses output capture
    /// as for a lagging consumer, and the tap wakes `waker` once it has caught up.
    fn congested(&self, _waker: &Arc<Waker>) -> bool {
        false
    }
}

/// A shared [`EventTap`].
#[derive(Clone)]
pub struct Tap(pub Arc<dyn EventTap>);

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tap")
    }
}

/// The engine's end of the event channel. Clones (the control socket's emitter) share the
/// channel, its flow control and its clock.
#[derive(Clone, Debug)]
pub struct EventTx {
    tx: Sender<Batch>,
    /// `exit` events sent with an unknown status.
    unknown_exits: Arc<AtomicU64>,
    flow: Arc<Flow>,
    clock: Instant,
    /// Bits of the largest `t` sent so far (non-negative f64 bits order like the numbers).
    last_t: Arc<AtomicU64>,
    tap: Option<Tap>,
}

/// The consumer's end of the event channel.
#[derive(Debug)]
pub struct EventRx {
    rx: Receiver<Batch>,
    flow: Arc<Flow>,
    /// The rest of a batch taken by the one-event methods.
    rest: std::sync::Mutex<std::collections::VecDeque<Event>>,
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
        pending_bytes: AtomicUsize::new(0),
        paused: AtomicBool::new(false),
        waker: waker.clone(),
        pauses: AtomicU64::new(0),
    });
    (
        EventTx {
            tx,
            flow: flow.clone(),
            clock,
            unknown_exits: Arc::new(AtomicU64::new(0)),
            last_t: Arc::new(AtomicU64::new(0)),
            tap: None,
        },
        EventRx {
            rx,
            flow,
            rest: Default::default(),
        },
        ActionTx {
            tx: action_tx,
            waker,
        },
        action_rx,
    )
}

impl EventTx {
    /// This sender with `tap` seeing every event it sends.
    pub fn with_tap(mut self, tap: Option<Tap>) -> EventTx {
        self.tap = tap;
        self
    }

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

    /// How many `exit` events so far had an unknown status.
    pub fn unknown_exits(&self) -> u64 {
        self.unknown_exits.load(Ordering::SeqCst)
    }

    /// The time to stamp events with now (never earlier than an event already sent).
    pub fn stamp(&self) -> f64 {
        let t = self.clock.elapsed().as_secs_f64();
        self.last_t.fetch_max(t.to_bits(), Ordering::SeqCst);
        t
    }

    /// Sends events that happened together (the lines of one read, stamped with
    /// [`EventTx::stamp`]) as one batch.
    pub fn emit_all(&self, batch: Vec<Event>) {
        if !batch.is_empty() {
            self.send_batch(batch);
        }
    }

    fn send(&self, t: f64, body: EventBody) {
        if let EventBody::Exit {
            status: crate::model::ExitStatus::Unknown,
            ..
        } = &body
        {
            self.unknown_exits.fetch_add(1, Ordering::SeqCst);
        }
        self.send_batch(vec![Event { t, body }]);
    }

    fn send_batch(&self, events: Vec<Event>) {
        let (count, bytes) = events.iter().fold((0, 0), |(n, bytes), e| {
            (n + count(&e.body), bytes + weight(&e.body))
        });
        self.flow.pending.fetch_add(count, Ordering::SeqCst);
        self.flow.pending_bytes.fetch_add(bytes, Ordering::SeqCst);
        if let Some(tap) = &self.tap {
            tap.0.observe_all(&events);
        }
        if self
            .tx
            .send(Batch {
                events,
                count,
                bytes,
            })
            .is_err()
        {
            // The consumer is gone; nobody will ack, so the books no longer matter.
            self.flow.pending.fetch_sub(count, Ordering::SeqCst);
        }
    }

    /// True when output capture should pause; arms the consumer's wake-up in that case.
    pub fn congested(&self) -> bool {
        if let Some(tap) = &self.tap
            && tap.0.congested(&self.flow.waker)
        {
            return true;
        }
        if !self.flow.over_high_water() {
            return false;
        }
        let was_paused = self.flow.paused.swap(true, Ordering::SeqCst);
        if !self.flow.over_high_water() {
            self.flow.paused.store(false, Ordering::SeqCst);
            return false;
        }
        if !was_paused {
            self.flow.pauses.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// How many times output capture paused because the consumer lagged.
    pub fn backpressure_pauses(&self) -> u64 {
        self.flow.pauses.load(Ordering::Relaxed)
    }

    /// Seconds since forkscope started.
    pub fn now(&self) -> f64 {
        self.clock.elapsed().as_secs_f64()
    }
}

impl EventRx {
    pub fn recv(&self) -> Option<Event> {
        if let Some(event) = self.take_rest() {
            return Some(event);
        }
        let batch = self.rx.recv().ok()?;
        self.ack(&batch);
        self.keep_rest(batch.events)
    }

    pub fn recv_timeout(&self, timeout: Duration) -> Result<Event, RecvTimeoutError> {
        if let Some(event) = self.take_rest() {
            return Ok(event);
        }
        let batch = self.rx.recv_timeout(timeout)?;
        self.ack(&batch);
        self.keep_rest(batch.events)
            .ok_or(RecvTimeoutError::Timeout)
    }

    pub fn try_recv(&self) -> Result<Event, TryRecvError> {
        if let Some(event) = self.take_rest() {
            return Ok(event);
        }
        let batch = self.rx.try_recv()?;
        self.ack(&batch);
        self.keep_rest(batch.events).ok_or(TryRecvError::Empty)
    }

    /// The next batch of events (the rest of one taken by [`EventRx::recv`] first), the lines
    /// of a read still together as one `OutputLines` event.
    pub fn recv_batch(&self) -> Option<Vec<Event>> {
        if let Some(rest) = self.take_all_rest() {
            return Some(rest);
        }
        let batch = self.rx.recv().ok()?;
        self.ack(&batch);
        Some(batch.events)
    }

    /// [`EventRx::recv_batch`] waiting at most `timeout`.
    pub fn recv_batch_timeout(&self, timeout: Duration) -> Result<Vec<Event>, RecvTimeoutError> {
        if let Some(rest) = self.take_all_rest() {
            return Ok(rest);
        }
        let batch = self.rx.recv_timeout(timeout)?;
        self.ack(&batch);
        Ok(batch.events)
    }

    /// Whether no event is waiting.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty() && self.rest.lock().map_or(true, |rest| rest.is_empty())
    }

    /// The raw receiver of batches, for `select!`; call [`EventRx::ack`] for every batch
    /// taken from it (and do not mix with the one-event methods).
    pub fn raw(&self) -> &Receiver<Batch> {
        &self.rx
    }

    /// Marks a batch as consumed, waking a paused engine once the backlog is small.
    pub fn ack(&self, batch: &Batch) {
        let (n, bytes) = (batch.count, batch.bytes);
        let before_bytes = self.flow.pending_bytes.fetch_sub(bytes, Ordering::SeqCst);
        let before = self.flow.pending.fetch_sub(n, Ordering::SeqCst);
        let low = before.saturating_sub(n) <= LOW_WATER
            && before_bytes.saturating_sub(bytes) <= LOW_WATER_BYTES;
        if low && self.flow.paused.swap(false, Ordering::SeqCst) {
            let _ = self.flow.waker.wake();
        }
    }

    fn take_rest(&self) -> Option<Event> {
        self.rest.lock().ok()?.pop_front()
    }

    fn take_all_rest(&self) -> Option<Vec<Event>> {
        let mut rest = self.rest.lock().ok()?;
        (!rest.is_empty()).then(|| rest.drain(..).collect())
    }

    /// The first event of `batch`; the others wait for the next calls. The lines of a read
    /// come out as one `output` event each.
    fn keep_rest(&self, batch: Vec<Event>) -> Option<Event> {
        let mut rest = self.rest.lock().ok()?;
        for Event { t, body } in batch {
            match body {
                EventBody::OutputLines(lines) => {
                    rest.extend(lines.bodies().map(|body| Event { t, body }));
                }
                body => rest.push_back(Event { t, body }),
            }
        }
        rest.pop_front()
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
            line: "x".repeat(bytes).into(),
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
            let batch = rx.raw().try_recv().unwrap();
            rx.ack(&batch);
            taken += batch.events.len();
        }
        assert_eq!(taken, 1);
        while rx.try_recv().is_ok() {}
        assert_eq!(rx.flow.pending.load(Ordering::SeqCst), 0);
        assert_eq!(rx.flow.pending_bytes.load(Ordering::SeqCst), 0);
        assert!(!rx.flow.paused.load(Ordering::SeqCst));
    }

    #[test]
    fn kernel_stamped_events_never_go_back_in_time() {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(1)).unwrap());
        let clock = Instant::now();
        let (tx, rx, _actions, _action_rx) = channels(waker, clock);
        let pid = |pid| EventBody::Notice {
            pid: Some(pid),
            level: crate::model::NoticeLevel::Info,
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
