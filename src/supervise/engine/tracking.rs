//! Lifecycle tracking inside the engine: the kernel process-events socket (drained before
//! every reap), the `/proc` scan that samples the tree and reconciles the kernel's view
//! with it, the dedupe of kernel exits against the engine's own reaping, the zombies and
//! orphans of every source (when a reported zombie is collected, who adopted an orphan), and
//! the session's description of the active source.

use crate::model::NoticeLevel;
use std::collections::{HashMap, HashSet};
use std::io;
use std::time::{Duration, Instant};

use mio::{Interest, Registry, Token};

use super::Engine;
use crate::inspect::proc::{self, ProcStat};
use crate::model::{EventBody, TrackSource};
use crate::supervise::reap::Reaped;
use crate::supervise::sampler::Request;
use crate::track::TrackMode;
use crate::track::kernel::{KernelTracker, LiveProc, ProcReader, ReapVerdict, Tracked};
use crate::track::netlink::{ConnectorError, ProcConnector, ProcMessage};

/// The token of the process-events socket in the engine's poll.
pub(super) const NETLINK: Token = Token(2);
/// Datagrams read per drain before the loop gets a turn (the rest: next iteration).
const DRAIN_BUDGET: usize = 4096;
/// While the tree is quiet (the last events read were none of its own), the socket's
/// readiness is taken at most this often: the machine's other processes then cost the engine
/// one wake-up per batch instead of one per event. Event times come from the kernel's
/// timestamps, and every reap drains the socket first, so nothing is reordered or misdated.
const QUIET_BATCH: Duration = Duration::from_millis(25);
/// A quiet batch larger than this ends the batching (the receive queue must not fill up;
/// at such rates each wake-up reads many events anyway).
const QUIET_BATCH_MAX: usize = 256;
/// Reconciliations after dropped events are at most this frequent.
const OVERFLOW_RECONCILE_GAP: Duration = Duration::from_millis(50);
/// With the kernel source, the full `/proc` scan that reconciles the tree runs at most this
/// often (and at once after dropped events); samples in between read only the tree's pids.
const FULL_SCAN_EVERY: Duration = Duration::from_secs(10);
/// At the end, how long to wait for the exit events of processes that already ended.
const FINAL_GRACE: Duration = Duration::from_millis(300);

/// The kernel source, when active.
pub(crate) struct KernelSource {
    connector: ProcConnector,
    tracker: KernelTracker,
    buffer: Vec<ProcMessage>,
    more: bool,
    /// Dropped-event episodes since the session began.
    overflows: u64,
    reconcile_due: Option<Instant>,
    last_reconcile: Option<Instant>,
    /// The last drain read events, none of them about the tree.
    quiet: bool,
    listening: Listening,
}

/// How the engine learns that the socket holds events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Listening {
    /// In the poll: each arrival wakes the loop.
    Polled,
    /// Out of the poll while a batch gathers (the tree is quiet); the loop wakes at `until`.
    Gathering { until: Instant },
    /// The batch is read on this turn; then gathering again if it was quiet, else back
    /// into the poll.
    Due,
}

impl std::fmt::Debug for KernelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelSource")
            .field("members", &self.tracker.live())
            .field("overflows", &self.overflows)
            .finish()
    }
}

/// Opens the source `mode` asks for, before any worker exists; with `auto` and no kernel
/// events, says why. `Err` only for `Kernel`.
pub(crate) fn open(
    mode: TrackMode,
    registry: &Registry,
    root: i32,
) -> io::Result<(Option<KernelSource>, Option<String>)> {
    let connector = match mode {
        TrackMode::Poll | TrackMode::Ptrace => return Ok((None, None)),
        TrackMode::Auto => match ProcConnector::open() {
            Ok(c) => c,
            Err(err) => {
                tracing::info!("kernel process events unavailable, polling /proc: {err}");
                return Ok((None, Some(err.to_string())));
            }
        },
        TrackMode::Kernel => ProcConnector::open().map_err(|err: ConnectorError| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                format!("--track kernel: {err}; try --track auto or --track poll"),
            )
        })?,
    };
    let mut source = KernelSource {
        connector,
        tracker: KernelTracker::new(root),
        buffer: Vec::with_capacity(1024),
        more: false,
        overflows: 0,
        reconcile_due: None,
        last_reconcile: None,
        quiet: false,
        listening: Listening::Polled,
    };
    registry.register(&mut source.connector, NETLINK, Interest::READABLE)?;
    Ok((Some(source), None))
}

/// Converts kernel `CLOCK_MONOTONIC` nanoseconds to `Instant`s (the same clock on Linux).
struct KernelClock {
    mono_ns: u64,
    now: Instant,
}

impl KernelClock {
    fn read() -> KernelClock {
        let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        KernelClock {
            mono_ns: (ts.tv_sec as u64)
                .saturating_mul(1_000_000_000)
                .saturating_add(ts.tv_nsec as u64),
            now: Instant::now(),
        }
    }

    fn instant(&self, ns: u64) -> Instant {
        let ago = Duration::from_nanos(self.mono_ns.saturating_sub(ns));
        self.now.checked_sub(ago).unwrap_or(self.now)
    }
}

/// Takes out of a scan read earlier the processes reaped since, and their children (their
/// parent there is the dead one; the engine reported their adoption).
fn leave_out_reaped(all: &mut HashMap<i32, ProcStat>, reaped: &HashSet<i32>) {
    all.retain(|pid, stat| !reaped.contains(pid) && !reaped.contains(&stat.ppid));
}

impl Engine {
    /// The `track` and `track_note` of the session event.
    pub(super) fn track_description(&self) -> (TrackSource, String) {
        if self.ptrace.is_some() {
            return (
                TrackSource::Ptrace,
                "ptrace: workers are traced from their exec and every descendant is \
                 followed (fork, exec, exit with its exact status); forkscope is the \
                 program's one tracer (no gdb or strace on it), every fork, exec and signal \
                 costs a stop; stop signals (SIGSTOP, SIGTSTP) are not honoured; exec argv \
                 is read from /proc at the exec; threads are not tracked"
                    .into(),
            );
        }
        if self.kernel.is_some() {
            return (
                TrackSource::Kernel,
                "kernel process events (netlink proc connector) filtered to forkscope's tree: \
                 every fork, exec and exit with its exact status, even for processes that \
                 live microseconds; workers and orphans re-parented to forkscope are reaped \
                 by forkscope (source engine). Can miss: events the kernel drops under load \
                 (a notice says so; /proc is rescanned at once and what changed meanwhile is \
                 reported with source poll, exits with unknown status); exec argv is read \
                 from /proc afterwards, so a process that exec'd and ended at once shows only \
                 its name or [?]; threads are not tracked"
                    .into(),
            );
        }
        let why = match &self.kernel_unavailable {
            Some(reason) => format!(" (kernel process events unavailable: {reason})"),
            None => String::new(),
        };
        (
            TrackSource::Poll,
            format!(
                "workers and orphans re-parented to forkscope: exact; other descendants: \
                 /proc scanned every {:.1}s, so shorter-lived ones and their exit statuses \
                 are missed{why}",
                self.config.sample_interval.as_secs_f64()
            ),
        )
    }

    /// Whether the kernel socket still holds unread events.
    pub(super) fn kernel_pending(&self) -> bool {
        self.kernel
            .as_ref()
            .is_some_and(|k| k.more || k.reconcile_due.is_some_and(|at| at <= Instant::now()))
    }

    /// The next instant the tracker wants the loop to wake.
    pub(super) fn tracking_deadline(&self) -> Option<Instant> {
        let kernel = self.kernel.as_ref()?;
        let gathering = match kernel.listening {
            Listening::Gathering { until } => Some(until),
            Listening::Polled | Listening::Due => None,
        };
        match (kernel.reconcile_due, gathering) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The socket is readable: while the tree is quiet, it leaves the poll and the loop
    /// reads it every [`QUIET_BATCH`] instead (the reap path still drains it every turn).
    pub(super) fn on_kernel_readable(&mut self) {
        let Some(kernel) = self.kernel.as_mut() else {
            return;
        };
        if !kernel.quiet || kernel.listening != Listening::Polled {
            return;
        }
        match self.poll.registry().deregister(&mut kernel.connector) {
            Ok(()) => {
                kernel.listening = Listening::Gathering {
                    until: Instant::now() + QUIET_BATCH,
                }
            }
            Err(err) => tracing::debug!("kernel events stay in the poll: {err}"),
        }
    }

    /// At the start of a turn: a gathered batch is due to be read.
    pub(super) fn kernel_batch_due(&mut self) {
        if let Some(kernel) = self.kernel.as_mut()
            && let Listening::Gathering { until } = kernel.listening
            && until <= Instant::now()
        {
            kernel.listening = Listening::Due;
        }
    }

    /// Drains the kernel socket, then reconciles with `/proc` if events were dropped.
    /// Called before every reap.
    pub(super) fn service_kernel(&mut self) {
        self.drain_kernel();
        if self
            .kernel
            .as_ref()
            .and_then(|k| k.reconcile_due)
            .is_some_and(|at| at <= Instant::now())
        {
            self.scan_tree();
        }
    }

    /// Reads kernel events (bounded) and emits those about the tree.
    fn drain_kernel(&mut self) {
        let Some(kernel) = self.kernel.as_mut() else {
            return;
        };
        let mut messages = std::mem::take(&mut kernel.buffer);
        messages.clear();
        let drained = match kernel.connector.drain(&mut messages, DRAIN_BUDGET) {
            Ok(d) => d,
            Err(err) => {
                tracing::warn!("reading kernel process events failed: {err}");
                Default::default()
            }
        };
        kernel.more = drained.more;
        let clock = KernelClock::read();
        let mut about_tree = 0usize;
        for message in &messages {
            for tracked in kernel.tracker.on_message(message, &LiveProc) {
                about_tree += 1;
                if let EventBody::Exit { pid, .. } = tracked.body {
                    // A process with pipes of its own: its last lines before its exit.
                    self.captures
                        .drain_pid(self.poll.registry(), pid, &self.events);
                }
                emit_tracked(&self.events, &clock, tracked);
            }
        }
        if !messages.is_empty() {
            kernel.quiet = about_tree == 0 && messages.len() <= QUIET_BATCH_MAX;
        }
        if kernel.listening == Listening::Due {
            // A quiet batch: gather the next one; nothing at all, or the tree's own events:
            // back to waking at each arrival.
            kernel.listening = if kernel.quiet && !messages.is_empty() {
                Listening::Gathering {
                    until: Instant::now() + QUIET_BATCH,
                }
            } else {
                let registry = self.poll.registry();
                match registry.register(&mut kernel.connector, NETLINK, Interest::READABLE) {
                    Ok(()) => Listening::Polled,
                    Err(err) => {
                        tracing::warn!("kernel events back into the poll failed: {err}");
                        Listening::Gathering {
                            until: Instant::now() + QUIET_BATCH,
                        }
                    }
                }
            };
        }
        kernel.buffer = messages;
        if drained.overflowed {
            kernel.quiet = false;
            kernel.overflows += 1;
            let now = Instant::now();
            let earliest = kernel
                .last_reconcile
                .map_or(now, |at| at + OVERFLOW_RECONCILE_GAP);
            kernel.reconcile_due = Some(kernel.reconcile_due.map_or(earliest, |d| d.min(earliest)));
            let count = kernel.overflows;
            self.notice(
                NoticeLevel::Warning,
                format!(
                    "the kernel dropped process events (receive queue full, episode {count}); \
                     reconciling the tree with /proc"
                ),
            );
        }
    }

    /// Samples the tree: asks the sampler thread for the tree's pids (an exact source) or
    /// for a scan of `/proc` (polling). With the kernel source, the periodic full scan that
    /// reconciles its view with `/proc` is read by the sampler too (the engine would stall
    /// milliseconds on it, and every exit meanwhile with it), and compared when it comes
    /// back ([`Engine::reconcile_read_earlier`]).
    pub(super) fn sample(&mut self) {
        self.drain_kernel();
        let Some(members) = self.exact_members() else {
            self.request_sample(Request::Tree { root: self.me });
            return;
        };
        let full_scan_due = self.kernel.as_ref().is_some_and(|k| {
            k.last_reconcile
                .is_none_or(|at| at.elapsed() >= FULL_SCAN_EVERY)
        });
        self.request_sample(if full_scan_due {
            Request::MembersAndAll(members)
        } else {
            Request::Members(members)
        });
    }

    /// The tree's live processes as an exact source knows them (workers included); `None`
    /// when polling, which has to scan all of `/proc` to find them.
    pub(super) fn exact_members(&self) -> Option<Vec<(i32, Option<u64>)>> {
        let mut members: Vec<(i32, Option<u64>)> = if let Some(tracer) = &self.ptrace {
            tracer
                .followed()
                .into_iter()
                .map(|pid| (pid, None))
                .collect()
        } else {
            self.kernel.as_ref()?.tracker.member_identities()
        };
        members.extend(self.by_pid.keys().map(|pid| (*pid, None)));
        // Known start times first, so deduplication keeps them.
        members.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        members.dedup_by_key(|(pid, _)| *pid);
        Some(members)
    }

    /// Reconciles the kernel's view of the tree with a scan of `/proc`.
    fn scan_tree(&mut self) {
        self.drain_kernel();
        match proc::scan_all() {
            Ok(all) => self.reconcile_with(&all),
            Err(err) => tracing::warn!("scanning /proc failed: {err}"),
        }
    }

    /// Reconciles with a scan of `/proc` the sampler read: the children reaped while it was
    /// read, and their children (adopted since), are left out of it, since their entries
    /// there are older than what the engine reported of them; so are the descendants it
    /// shows that the tracker does not know and that are gone by now (their parents reaped
    /// them meanwhile, after the tracker reported their exits).
    pub(super) fn reconcile_read_earlier(
        &mut self,
        mut all: HashMap<i32, ProcStat>,
        reaped: &HashSet<i32>,
    ) {
        leave_out_reaped(&mut all, reaped);
        if let Some(kernel) = &self.kernel {
            let known: HashSet<i32> = kernel
                .tracker
                .member_identities()
                .into_iter()
                .map(|(pid, _)| pid)
                .collect();
            let gone: Vec<i32> = proc::descendants_in(&all, self.me)
                .into_iter()
                .filter(|stat| {
                    !known.contains(&stat.pid)
                        && LiveProc
                            .stat(stat.pid)
                            .is_none_or(|now| now.start_time != stat.start_time)
                })
                .map(|stat| stat.pid)
                .collect();
            for pid in gone {
                all.remove(&pid);
            }
        }
        self.reconcile_with(&all);
    }

    /// Compares the kernel's view of the tree with `all`, a scan of `/proc`.
    fn reconcile_with(&mut self, all: &HashMap<i32, ProcStat>) {
        let tree = proc::descendants_in(all, self.me);
        if self.ptrace.is_some() {
            self.release_held_tracees();
            return;
        }
        if self.kernel.is_none() {
            return;
        }
        // Events queued while /proc was read are applied before comparing. If the socket
        // still holds events, comparing now would misreport them: try again next turn.
        self.drain_kernel();
        let by_pid = &self.by_pid;
        if let Some(kernel) = self.kernel.as_mut()
            && kernel.more
        {
            kernel.reconcile_due = Some(Instant::now());
        } else if let Some(kernel) = self.kernel.as_mut() {
            let repairs = kernel
                .tracker
                .reconcile(all, &tree, &LiveProc, |pid| by_pid.contains_key(&pid));
            let clock = KernelClock::read();
            for tracked in repairs {
                emit_tracked(&self.events, &clock, tracked);
            }
            kernel.last_reconcile = Some(Instant::now());
            kernel.reconcile_due = None;
        }
    }

    /// Decides how a reaped non-worker child is reported: `AlreadyReported` when a source
    /// reported its exit (it was a zombie, now collected by forkscope), else its last known
    /// parent and whether its birth was reported.
    pub(super) fn reaped_descendant(&mut self, child: &Reaped) -> ReapVerdict {
        self.reaped_while_sampling(child.pid);
        let start = child.stat.as_ref().map(|s| s.start_time);
        if let Some(tracer) = self.ptrace.as_mut() {
            self.tracker.forget(child.pid);
            return match tracer.on_reaped(child.pid, start) {
                None => ReapVerdict::AlreadyReported,
                Some((ppid, known)) => ReapVerdict::Report {
                    ppid: if known { ppid } else { self.me },
                    known,
                },
            };
        }
        if let Some(kernel) = self.kernel.as_mut() {
            self.tracker.forget(child.pid);
            return kernel.tracker.on_reaped(child.pid, start);
        }
        if self.tracker.zombies().collected_by_engine(child.pid, start) {
            return ReapVerdict::AlreadyReported;
        }
        match self.tracker.forget(child.pid) {
            Some(ppid) => ReapVerdict::Report { ppid, known: true },
            None => ReapVerdict::Report {
                ppid: self.me,
                known: false,
            },
        }
    }

    /// A worker was reaped: its exit is the engine's; keep the kernel's set in step.
    pub(super) fn reaped_worker(&mut self, child: &Reaped) {
        self.reaped_while_sampling(child.pid);
        self.tracker.forget(child.pid);
        if let Some(kernel) = self.kernel.as_mut() {
            let start = child.stat.as_ref().map(|s| s.start_time);
            let _ = kernel.tracker.on_reaped(child.pid, start);
        }
    }

    /// `dead` was reaped by forkscope: its children that were adopted since (by forkscope or
    /// another subreaper), as `reparent` events.
    pub(super) fn adoptions_after(&mut self, dead: i32) -> Vec<EventBody> {
        if let Some(tracer) = self.ptrace.as_mut() {
            return tracer.adopt_children_of(dead);
        }
        if let Some(kernel) = self.kernel.as_mut() {
            return kernel.tracker.adopt_children_of(dead, &LiveProc);
        }
        self.tracker.adopt_children_of(dead)
    }

    /// Zombies whose exit a source reported and whose reap is not seen yet.
    pub(super) fn zombies_waiting(&self) -> usize {
        if let Some(tracer) = &self.ptrace {
            return tracer.zombies_waiting();
        }
        if let Some(kernel) = &self.kernel {
            return kernel.tracker.zombies_waiting();
        }
        self.tracker.zombies_waiting()
    }

    /// Reads each waiting zombie's `/proc` entry; a `reap` for each one gone.
    pub(super) fn check_zombies(&mut self) {
        let reaps = if let Some(tracer) = self.ptrace.as_mut() {
            tracer.zombies().check(&LiveProc)
        } else if self.kernel.is_some() {
            // Exits still queued come first: a reap must follow its exit.
            self.drain_kernel();
            match self.kernel.as_mut() {
                Some(kernel) => kernel.tracker.check_zombies(&LiveProc),
                None => Vec::new(),
            }
        } else {
            self.tracker.zombies().check(&LiveProc)
        };
        for reap in reaps {
            self.events.emit(reap);
        }
    }

    /// The session is ending and nothing of the tree runs: read the last kernel events
    /// (a process's exit message is queued just after it became a zombie, so it can trail
    /// its parent's reap), then give every process still listed an unknown exit.
    pub(super) fn finish_tracking(&mut self) {
        if let Some(tracer) = self.ptrace.as_mut() {
            // Every tracee's end was reported to the tracer; its zombies are gone now.
            for reap in tracer.zombies().finish() {
                self.events.emit(reap);
            }
            return;
        }
        if self.kernel.is_none() {
            // Poll: one last scan reports whatever ended since the previous one.
            if let Ok(scan) = self.tracker.scan(self.me) {
                for event in scan.events {
                    self.events.emit(event);
                }
            }
            for reap in self.tracker.zombies().finish() {
                self.events.emit(reap);
            }
            return;
        }
        let deadline = Instant::now() + FINAL_GRACE;
        loop {
            self.drain_kernel();
            let Some(kernel) = self.kernel.as_mut() else {
                return;
            };
            if kernel.tracker.live() == 0 || Instant::now() >= deadline {
                for body in kernel.tracker.finish() {
                    self.events.emit(body);
                }
                return;
            }
            use rustix::event::{PollFd, PollFlags, Timespec, poll};
            let mut fds = [PollFd::new(&kernel.connector, PollFlags::IN)];
            let ten_ms = Timespec {
                tv_sec: 0,
                tv_nsec: 10_000_000,
            };
            // A short bounded wait for the socket; an error or EINTR only ends it early.
            let _ = poll(&mut fds, Some(&ten_ms));
        }
    }
}

fn emit_tracked(events: &crate::supervise::channel::EventTx, clock: &KernelClock, t: Tracked) {
    match t.timestamp_ns {
        Some(ns) => events.emit_at(clock.instant(ns), t.body),
        None => events.emit(t.body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scan_read_earlier_loses_the_reaped_and_their_children() {
        let mut all: HashMap<i32, ProcStat> = [
            ProcStat::fixture(10, 1, 5),
            ProcStat::fixture(11, 10, 6),
            ProcStat::fixture(12, 11, 7),
            ProcStat::fixture(20, 1, 8),
        ]
        .into_iter()
        .map(|stat| (stat.pid, stat))
        .collect();
        leave_out_reaped(&mut all, &HashSet::from([10]));
        let mut left: Vec<i32> = all.into_keys().collect();
        left.sort_unstable();
        // 12's parent is alive: its entry stands.
        assert_eq!(left, vec![12, 20]);
    }
}
