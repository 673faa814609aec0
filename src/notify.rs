//! systemd notification (`Type=notify`, `docs/systemd.md`) from the headless consumer: it
//! reacts to the engine's events, never to the UI. `READY=1` once every pool is started as
//! `depends_on` means it (each worker up for its pool's `start_secs` or ended with a success
//! code, and the pool's `ready` check passed), `STATUS=` when the summary of
//! running workers changes, `WATCHDOG=1` at half of `WATCHDOG_USEC`, `STOPPING=1` when the
//! session begins to stop. Nothing is sent without `NOTIFY_SOCKET`. Sending goes through the
//! `sd-notify` crate; [`Readiness`] is the pure part that decides what to send.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

use crate::model::policy::PoolPolicy;
use crate::model::{Event, EventBody};
use crate::supervise::PoolSpec;

/// What to tell the service manager.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Ready,
    Status(String),
    Stopping,
}

/// One worker slot as the events show it.
#[derive(Clone, Copy, Debug)]
struct Slot {
    pid: Option<i32>,
    since: Instant,
    started: bool,
}

/// What readiness needs of one pool.
#[derive(Debug)]
struct PoolGate {
    size: u32,
    policy: PoolPolicy,
    /// No `ready` check, or it passed.
    checked: bool,
}

/// Which workers are started and running, from the events alone.
#[derive(Debug)]
pub struct Readiness {
    pools: BTreeMap<String, PoolGate>,
    order: Vec<String>,
    slots: HashMap<(String, u32), Slot>,
    ready_sent: bool,
    stopping: bool,
    last_status: Option<String>,
    /// The earliest `start_secs` deadline of a running worker (kept by `poll`).
    deadline: Option<Instant>,
}

impl Readiness {
    pub fn new(pools: &[PoolSpec]) -> Readiness {
        Readiness {
            pools: pools
                .iter()
                .map(|p| {
                    let gate = PoolGate {
                        size: p.size,
                        policy: p.policy.clone(),
                        checked: p.launch.ready.is_none(),
                    };
                    (p.name.clone(), gate)
                })
                .collect(),
            order: pools.iter().map(|p| p.name.clone()).collect(),
            slots: HashMap::new(),
            ready_sent: false,
            stopping: false,
            last_status: None,
            deadline: None,
        }
    }

    /// Takes one event in at `now`; returns what to send.
    pub fn on_event(&mut self, event: &Event, now: Instant) -> Vec<Message> {
        let mut out = Vec::new();
        match &event.body {
            EventBody::Spawn {
                pid, pool, worker, ..
            } => {
                let start_secs = self.start_secs(pool);
                let slot = self.slots.entry((pool.clone(), *worker)).or_insert(Slot {
                    pid: None,
                    since: now,
                    started: false,
                });
                slot.pid = Some(*pid);
                slot.since = now;
                slot.started |= start_secs.is_zero();
            }
            EventBody::Exit {
                pool: Some(pool),
                worker: Some(worker),
                pid,
                status,
                ..
            } => {
                // A one-shot job that succeeded is started, as for `depends_on`.
                let success = self
                    .pools
                    .get(pool)
                    .is_some_and(|p| p.policy.is_success(*status));
                if let Some(slot) = self.slots.get_mut(&(pool.clone(), *worker))
                    && slot.pid == Some(*pid)
                {
                    slot.pid = None;
                    slot.started |= success;
                }
            }
            EventBody::Scale { pool, to, .. } => {
                if let Some(entry) = self.pools.get_mut(pool) {
                    entry.size = *to;
                }
            }
            EventBody::Ready { pool, ok, .. } => {
                if let Some(entry) = self.pools.get_mut(pool) {
                    entry.checked = *ok;
                }
            }
            EventBody::Reload {
                ok: true,
                pools,
                removed,
                ..
            } => self.reloaded(pools, removed),
            EventBody::Stopping { .. } | EventBody::End { .. } if !self.stopping => {
                self.stopping = true;
                self.deadline = None;
                out.push(Message::Stopping);
                let why = match &event.body {
                    EventBody::Stopping { reason, .. } => reason.clone(),
                    _ => "every worker ended".to_string(),
                };
                let status = format!("stopping: {why}");
                self.last_status = Some(status.clone());
                out.push(Message::Status(status));
                return out;
            }
            _ => {}
        }
        out.extend(self.poll(now));
        out
    }

    /// Start deadlines passed by `now`, and the messages they cause.
    pub fn poll(&mut self, now: Instant) -> Vec<Message> {
        if self.stopping {
            return Vec::new();
        }
        for ((pool, _), slot) in self.slots.iter_mut() {
            let start_secs = self
                .pools
                .get(pool)
                .map_or(Duration::ZERO, |p| p.policy.start_secs);
            if slot.pid.is_some() && now.saturating_duration_since(slot.since) >= start_secs {
                slot.started = true;
            }
        }
        let mut out = Vec::new();
        let all_started = self.pools.iter().all(|(name, gate)| {
            gate.checked
                && (0..gate.size).all(|i| {
                    self.slots
                        .get(&(name.clone(), i))
                        .is_some_and(|s| s.started)
                })
        });
        let status = self.summary(all_started);
        if self.last_status.as_ref() != Some(&status) {
            self.last_status = Some(status.clone());
            out.push(Message::Status(status));
        }
        if all_started && !self.ready_sent {
            self.ready_sent = true;
            out.push(Message::Ready);
        }
        self.deadline = self
            .slots
            .iter()
            .filter(|(_, s)| s.pid.is_some() && !s.started)
            .filter_map(|((pool, _), s)| {
                self.pools.get(pool).map(|p| s.since + p.policy.start_secs)
            })
            .min();
        out
    }

    fn start_secs(&self, pool: &str) -> Duration {
        self.pools
            .get(pool)
            .map_or(Duration::ZERO, |p| p.policy.start_secs)
    }

    /// The pools after a reload, for the status (an added pool's policy is not in the
    /// event: it counts as started once its workers are spawned).
    fn reloaded(&mut self, pools: &[crate::model::PoolInfo], removed: &[String]) {
        for name in removed {
            self.pools.remove(name);
        }
        for info in pools {
            let gate = self.pools.entry(info.name.clone()).or_insert(PoolGate {
                size: info.size,
                policy: PoolPolicy::default(),
                checked: true,
            });
            gate.size = info.size;
        }
        self.order = pools.iter().map(|p| p.name.clone()).collect();
    }

    /// When a running worker reaches its `start_secs` next.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// `web 2/2, worker 1/1 running` (and `starting:` until every worker is started).
    fn summary(&self, all_started: bool) -> String {
        let pools: Vec<String> = self
            .order
            .iter()
            .map(|name| {
                let size = self.pools.get(name).map_or(0, |p| p.size);
                let running = self
                    .slots
                    .iter()
                    .filter(|((pool, i), s)| pool == name && *i < size && s.pid.is_some())
                    .count();
                format!("{name} {running}/{size}")
            })
            .collect();
        let lead = if all_started || self.ready_sent {
            ""
        } else {
            "starting: "
        };
        format!("{lead}{} running", pools.join(", "))
    }
}

/// The notifier of a session run by systemd: [`Readiness`] plus the watchdog and the socket.
#[derive(Debug)]
pub struct ServiceNotifier {
    readiness: Readiness,
    /// Half of `WATCHDOG_USEC`, when the watchdog is on for this session.
    watchdog: Option<Duration>,
    next_ping: Instant,
}

impl ServiceNotifier {
    /// A notifier when `NOTIFY_SOCKET` is set, else `None`.
    pub fn from_env(pools: &[PoolSpec]) -> Option<ServiceNotifier> {
        std::env::var_os("NOTIFY_SOCKET")?;
        let watchdog = watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            &[
                std::process::id() as i32,
                crate::supervise::guardian::session_pid(),
            ],
        );
        Some(ServiceNotifier {
            readiness: Readiness::new(pools),
            watchdog,
            next_ping: Instant::now(),
        })
    }

    /// How long the consumer may block before [`ServiceNotifier::tick`] is due.
    pub fn wait(&self, now: Instant) -> Duration {
        let mut next = self.readiness.next_deadline();
        if self.watchdog.is_some() {
            next = Some(next.map_or(self.next_ping, |n| n.min(self.next_ping)));
        }
        next.map_or(Duration::from_secs(3600), |at| {
            at.saturating_duration_since(now)
        })
    }

    pub fn on_event(&mut self, event: &Event) {
        let now = Instant::now();
        // Output and samples change nothing here: only a start deadline may have passed
        // (checked cheaply, since an output flood leaves no time for `tick`).
        let messages = match event.body {
            EventBody::Output { .. } | EventBody::OutputLines(_) | EventBody::Sample { .. } => {
                if self.readiness.next_deadline().is_some_and(|at| now >= at) {
                    self.readiness.poll(now)
                } else {
                    Vec::new()
                }
            }
            _ => self.readiness.on_event(event, now),
        };
        self.send(&messages);
        self.ping_if_due(now);
    }

    /// Start deadlines and the watchdog, when no event came.
    pub fn tick(&mut self) {
        let now = Instant::now();
        let messages = self.readiness.poll(now);
        self.send(&messages);
        self.ping_if_due(now);
    }

    fn ping_if_due(&mut self, now: Instant) {
        if let Some(every) = self.watchdog
            && now >= self.next_ping
        {
            self.next_ping = now + every;
            send(&[NotifyState::Watchdog]);
        }
    }

    fn send(&self, messages: &[Message]) {
        let states: Vec<NotifyState> = messages
            .iter()
            .map(|m| match m {
                Message::Ready => NotifyState::Ready,
                Message::Status(text) => NotifyState::Status(text),
                Message::Stopping => NotifyState::Stopping,
            })
            .collect();
        if !states.is_empty() {
            send(&states);
        }
    }
}

fn send(states: &[NotifyState]) {
    if let Err(err) = sd_notify::notify(states) {
        tracing::warn!("systemd notification failed: {err}");
    }
}

/// Half of `WATCHDOG_USEC` when it is set and meant for one of `pids` (`WATCHDOG_PID`,
/// when set, names the guardian, the service's main process, not the session).
pub fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, pids: &[i32]) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|u| *u > 0)?;
    if let Some(pid) = pid {
        let pid: i32 = pid.trim().parse().ok()?;
        if !pids.contains(&pid) {
            return None;
        }
    }
    Some(Duration::from_micros(usec) / 2)
}

#[cfg(test)]
mod tests;
