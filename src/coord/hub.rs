//! The fan-out of the event stream to the control socket. The engine's sender calls
//! [`Hub::observe`] for every event before the primary consumer (TUI or headless printer)
//! gets it; the hub never blocks and never touches the primary channel, so the primary
//! consumer's events and backpressure are exactly as without it. It keeps a bounded ring of
//! recent events (`events --from-start`), offers each event to the subscribers without
//! waiting (a subscriber whose queue is full is cut off, and told), and forwards the
//! lifecycle events (not output, not samples) to the service that folds them into `status`
//! and watches barrier parties.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use tokio::sync::mpsc;

use super::ring::Ring;
use crate::model::{Event, EventBody};
use crate::supervise::channel::EventTap;

/// Recent events kept for `events --from-start`.
pub const RING_EVENTS: usize = 20_000;
/// Bytes of output text the ring keeps at most (long lines would otherwise make 20,000
/// events a gigabyte).
pub const RING_BYTES: usize = 16 << 20;
/// Events a subscriber may lag behind before it is cut off.
pub const SUBSCRIBER_QUEUE: usize = 8_192;
/// Bytes of output text a subscriber may lag behind before it is cut off.
pub const SUBSCRIBER_BYTES: usize = 16 << 20;

/// One event shared by the ring and every subscriber, serialised once, when first needed.
#[derive(Debug)]
pub struct SharedEvent {
    pub event: Event,
    json: OnceLock<String>,
    weight: usize,
}

impl SharedEvent {
    /// An event shared by the ring and the subscribers, serialised when first needed.
    pub fn new(event: Event) -> SharedEvent {
        let weight = crate::supervise::channel::weight(&event.body);
        SharedEvent {
            event,
            json: OnceLock::new(),
            weight,
        }
    }

    /// Output bytes this event holds.
    pub fn weight(&self) -> usize {
        self.weight
    }

    /// The event as `--headless` prints it (without the newline).
    pub fn json(&self) -> &str {
        self.json
            .get_or_init(|| serde_json::to_string(&self.event).unwrap_or_default())
    }
}

/// A subscription: the backlog (ring contents, for `from_start`), then the live queue.
pub struct Subscription {
    pub backlog: Vec<Arc<SharedEvent>>,
    pub live: mpsc::Receiver<Arc<SharedEvent>>,
    /// Set when the hub dropped this subscriber for falling behind.
    pub cut_off: Arc<AtomicBool>,
    /// Output bytes queued for this subscriber; the receiver subtracts what it takes.
    pub queued_bytes: Arc<AtomicUsize>,
}

struct Subscriber {
    tx: mpsc::Sender<Arc<SharedEvent>>,
    cut_off: Arc<AtomicBool>,
    queued_bytes: Arc<AtomicUsize>,
}

struct Inner {
    ring: Ring,
    subscribers: Vec<Subscriber>,
}

/// See the module documentation.
pub struct Hub {
    inner: Mutex<Inner>,
    lifecycle: mpsc::UnboundedSender<Arc<SharedEvent>>,
}

impl Hub {
    /// A hub and the receiver of its lifecycle events.
    pub fn new() -> (Arc<Hub>, mpsc::UnboundedReceiver<Arc<SharedEvent>>) {
        let (lifecycle, rx) = mpsc::unbounded_channel();
        let hub = Hub {
            inner: Mutex::new(Inner {
                ring: Ring::new(RING_EVENTS, RING_BYTES),
                subscribers: Vec::new(),
            }),
            lifecycle,
        };
        (Arc::new(hub), rx)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Subscribes; with `from_start`, the ring's events come first, with no gap and no
    /// duplicate between them and the live queue.
    pub fn subscribe(&self, from_start: bool) -> Subscription {
        let (tx, live) = mpsc::channel(SUBSCRIBER_QUEUE);
        let cut_off = Arc::new(AtomicBool::new(false));
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let mut inner = self.lock();
        let backlog = if from_start {
            inner.ring.backlog()
        } else {
            Vec::new()
        };
        inner.subscribers.push(Subscriber {
            tx,
            cut_off: cut_off.clone(),
            queued_bytes: queued_bytes.clone(),
        });
        Subscription {
            backlog,
            live,
            cut_off,
            queued_bytes,
        }
    }

    /// Ends every subscription at the session's end: each subscriber still gets what is
    /// queued for it (the `end` included), then its live queue closes.
    pub fn close(&self) {
        self.lock().subscribers.clear();
    }

    /// Live subscribers (for tests and `status`).
    pub fn subscribers(&self) -> usize {
        self.lock().subscribers.len()
    }
}

/// Events the service folds (everything but output lines, samples and its own events).
fn is_lifecycle(body: &EventBody) -> bool {
    !matches!(
        body,
        EventBody::Output { .. }
            | EventBody::Sample { .. }
            | EventBody::Barrier { .. }
            | EventBody::Mark { .. }
            | EventBody::Watched { .. }
    )
}

impl EventTap for Hub {
    fn observe(&self, event: &Event) {
        self.observe_all(std::slice::from_ref(event));
    }

    fn observe_all(&self, events: &[Event]) {
        let mut inner = self.lock();
        if inner.subscribers.is_empty() {
            // Nobody to hand events to: the lines of a read stay one entry.
            for event in events {
                if inner.ring.push_lines(event) {
                    continue;
                }
                let shared = Arc::new(SharedEvent::new(event.clone()));
                if is_lifecycle(&shared.event.body) {
                    let _ = self.lifecycle.send(shared.clone());
                }
                inner.ring.push_shared(shared);
            }
            return;
        }
        for event in events {
            match &event.body {
                EventBody::OutputLines(lines) => {
                    for body in lines.bodies() {
                        self.hand_out(&mut inner, Event { t: event.t, body });
                    }
                }
                _ => self.hand_out(&mut inner, event.clone()),
            }
        }
    }
}

impl Hub {
    /// Keeps `event` in the ring and queues it for every subscriber (cutting off those whose
    /// queue is full).
    fn hand_out(&self, inner: &mut Inner, event: Event) {
        let shared = Arc::new(SharedEvent::new(event));
        if is_lifecycle(&shared.event.body) {
            let _ = self.lifecycle.send(shared.clone());
        }
        inner.ring.push_shared(shared.clone());
        let weight = shared.weight;
        inner.subscribers.retain(|sub| {
            let queued = sub.queued_bytes.fetch_add(weight, Ordering::SeqCst) + weight;
            let full = queued > SUBSCRIBER_BYTES
                || match sub.tx.try_send(shared.clone()) {
                    Ok(()) => false,
                    Err(mpsc::error::TrySendError::Full(_)) => true,
                    Err(mpsc::error::TrySendError::Closed(_)) => return false,
                };
            if full {
                sub.cut_off.store(true, Ordering::SeqCst);
            }
            !full
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(n: usize) -> Event {
        Event {
            t: n as f64,
            body: EventBody::Notice {
                pid: None,
                level: crate::model::NoticeLevel::Info,
                message: n.to_string(),
            },
        }
    }

    #[test]
    fn ring_is_bounded_and_from_start_has_no_gap() {
        let (hub, _lifecycle) = Hub::new();
        for n in 0..RING_EVENTS + 10 {
            hub.observe(&notice(n));
        }
        let mut sub = hub.subscribe(true);
        assert_eq!(sub.backlog.len(), RING_EVENTS);
        assert_eq!(sub.backlog[0].event.t, 10.0);
        hub.observe(&notice(99_999));
        assert_eq!(sub.live.try_recv().unwrap().event.t, 99_999.0);
    }

    #[test]
    fn a_slow_subscriber_is_cut_off_and_others_are_not() {
        let (hub, _lifecycle) = Hub::new();
        let slow = hub.subscribe(false);
        let mut fast = hub.subscribe(false);
        for n in 0..SUBSCRIBER_QUEUE + 1 {
            hub.observe(&notice(n));
            while fast.live.try_recv().is_ok() {}
        }
        assert!(slow.cut_off.load(Ordering::SeqCst));
        assert!(!fast.cut_off.load(Ordering::SeqCst));
        assert_eq!(hub.subscribers(), 1);
    }

    #[test]
    fn long_lines_bound_the_ring_and_the_queues_by_bytes() {
        let (hub, _lifecycle) = Hub::new();
        let slow = hub.subscribe(false);
        let line = Event {
            t: 0.0,
            body: EventBody::Output {
                pid: 1,
                stream: crate::model::Stream::Stdout,
                line: "x".repeat(64 * 1024).into(),
                raw_hex: None,
                seq: 1,
                partial: true,
            },
        };
        for _ in 0..(RING_BYTES / (64 * 1024)) * 2 {
            hub.observe(&line);
        }
        let sub = hub.subscribe(true);
        let kept: usize = sub.backlog.iter().map(|e| e.weight()).sum();
        assert!(kept <= RING_BYTES && kept > RING_BYTES / 2, "{kept}");
        assert!(slow.cut_off.load(Ordering::SeqCst), "cut off by bytes");
    }
}
