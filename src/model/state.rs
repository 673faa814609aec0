//! The state every view renders: a pure function of the events seen so far.
//!
//! `update(state, event)` is the only way the state changes (plus `clear_ended`, a view
//! choice). Process identity is (pid, start time): a reused pid becomes a new record.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::event::{Delivery, Event, EventBody, PoolInfo, ProcSample, SignalReason, TrackSource};
use super::exit::ExitStatus;
use super::output::{OutputLine, OutputLog};

/// A stable handle on one process record (pids are reused; these are not).
pub type ProcId = u64;

/// Samples of history kept per process for sparklines.
pub const HISTORY: usize = 60;

/// How forkscope knows a process: it started it, or found it below one it started. What the
/// process is to the program (a forkserver, a pool worker...) is `roles::ProcRole`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Started by forkscope as worker `worker` of `pool`.
    Worker { pool: String, worker: u32 },
    /// Forked by a worker or one of its descendants.
    Descendant,
}

/// A signal sent to a process, as the detail pane lists them.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalRecord {
    pub t: f64,
    pub signal: crate::model::signals::Sig,
    pub reason: SignalReason,
    pub result: Delivery,
}

/// How and when a process ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ended {
    pub t: f64,
    pub status: ExitStatus,
    pub source: TrackSource,
}

/// When and by whom a zombie was collected.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReapRecord {
    pub t: f64,
    /// The pid that reaped it: its parent, or forkscope.
    pub by: i32,
}

/// Everything known about one process.
#[derive(Clone, Debug)]
pub struct ProcessView {
    pub id: ProcId,
    pub pid: i32,
    pub ppid: i32,
    /// The record of the parent when it was known at birth (the one that forked it, even
    /// after it was adopted: see `tree_parent`).
    pub parent: Option<ProcId>,
    pub start_time: Option<u64>,
    pub argv: Vec<String>,
    pub origin: Origin,
    pub source: TrackSource,
    pub born: f64,
    pub ended: Option<Ended>,
    pub sample: Option<ProcSample>,
    pub cpu_history: VecDeque<f32>,
    pub rss_history: VecDeque<u64>,
    pub output: OutputLog,
    pub signals: Vec<SignalRecord>,
    pub execs: Vec<f64>,
    /// How many times this worker slot had been restarted when this process started.
    pub restarts: u32,
    /// Ended but not yet collected by its parent (an `exit` with `zombie`, no `reap` yet).
    pub zombie: bool,
    /// When and by whom it was collected, after a zombie phase.
    pub reaped: Option<ReapRecord>,
    /// The parent it had before it was re-parented (its first one, if adopted twice).
    pub adopted_from: Option<i32>,
    /// The record of its adoptive parent, when that is a process of the tree (not forkscope).
    pub adopted_by: Option<ProcId>,
}

impl ProcessView {
    pub fn is_alive(&self) -> bool {
        self.ended.is_none()
    }

    /// A stop or kill signal went out and the process is still running.
    pub fn is_stopping(&self) -> bool {
        self.is_alive()
            && self.signals.iter().any(|s| {
                s.result == Delivery::Sent
                    && matches!(
                        s.reason,
                        SignalReason::Stop | SignalReason::Escalation | SignalReason::Leftover
                    )
            })
    }

    /// Where the tree shows it: under its adoptive parent once adopted (none: forkscope's
    /// adopted group), else under the parent that forked it.
    pub fn tree_parent(&self) -> Option<ProcId> {
        if self.adopted_from.is_some() {
            self.adopted_by
        } else {
            self.parent
        }
    }

    /// Seconds it has waited, as a zombie, for its parent to collect it.
    pub fn zombie_for(&self, now: f64) -> Option<f64> {
        let ended = self.ended.filter(|_| self.zombie)?;
        Some((now - ended.t).max(0.0))
    }

    /// Ended (not with exit 0) after forkscope's own stopping sent it a signal (stop,
    /// escalation, leftover cleanup): not a failure of the program.
    pub fn stopped_by_forkscope(&self) -> bool {
        self.ended.is_some_and(|ended| {
            !ended.status.success()
                && self.signals.iter().any(|s| {
                    s.result == Delivery::Sent
                        && s.t <= ended.t
                        && matches!(
                            s.reason,
                            SignalReason::Stop | SignalReason::Escalation | SignalReason::Leftover
                        )
                })
        })
    }

    /// Ended without exit 0 and not because forkscope stopped it.
    pub fn failed(&self) -> bool {
        self.ended.is_some_and(|e| !e.status.success()) && !self.stopped_by_forkscope()
    }

    /// Seconds alive (until now, or until the end).
    pub fn age(&self, now: f64) -> f64 {
        self.ended.map_or(now, |e| e.t) - self.born
    }

    pub fn command(&self) -> String {
        self.argv.join(" ")
    }

    /// The command with the program's directory left out (`python3 train.py`).
    pub fn short_command(&self) -> String {
        let mut parts = self.argv.iter();
        let Some(program) = parts.next() else {
            return String::new();
        };
        let name = program.rsplit('/').next().unwrap_or(program);
        std::iter::once(name)
            .chain(parts.map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A worker slot of a pool.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkerSlot {
    pub current: Option<ProcId>,
    pub restarts: u32,
    pub failed: Option<String>,
    pub restart_pending: Option<u64>,
}

/// A pool and its worker slots.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolView {
    pub info: PoolInfo,
    pub workers: BTreeMap<u32, WorkerSlot>,
}

/// Instants kept for the timeline.
pub const INSTANTS: usize = 10_000;

/// A named instant: a hosted barrier's step or a program's mark.
#[derive(Clone, Debug, PartialEq)]
pub struct Instant {
    pub t: f64,
    /// The process it is drawn on (the arriving party, the marking process), if any.
    pub pid: Option<i32>,
    /// `barrier NAME pass #3`, `mark LABEL`.
    pub label: String,
    pub kind: InstantKind,
    /// The barrier's name, for barrier steps.
    pub barrier: Option<String>,
}

/// What an [`Instant`] is, for its glyph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstantKind {
    Barrier(super::event::BarrierStep),
    Mark,
}

/// Everything the views render.
#[derive(Clone, Debug, Default)]
pub struct State {
    /// Shared memory as the `shm` events tell it (recorded sessions).
    pub shm: crate::model::shm_record::ShmRecord,
    pub engine_pid: Option<i32>,
    pub version: String,
    pub track: Option<TrackSource>,
    pub track_note: String,
    pub stop_timeout: f64,
    /// Wall-clock time of `t = 0` (seconds since the Unix epoch; 0 when unknown).
    pub started_unix: f64,
    /// Time of the newest event.
    pub now: f64,
    pub procs: BTreeMap<ProcId, ProcessView>,
    live: HashMap<i32, ProcId>,
    /// The newest record of each pid, live or ended (output can arrive after an exit).
    newest: HashMap<i32, ProcId>,
    /// Ended records in the order they ended, for forgetting the oldest.
    ended_order: VecDeque<ProcId>,
    /// Ended records kept at most (the oldest beyond this are forgotten).
    pub max_ended: usize,
    /// Ended records forgotten to respect `max_ended`.
    pub forgotten: u64,
    next_id: ProcId,
    pub pools: Vec<PoolView>,
    pub notices: VecDeque<(f64, crate::model::NoticeLevel, String)>,
    /// Barrier steps and program marks, newest last (bounded), for the timeline.
    pub instants: VecDeque<Instant>,
    /// Hosted barriers by name, folded from `barrier` events.
    pub hosted_barriers: BTreeMap<String, super::named::HostedBarrier>,
    /// Objects named with `forkscope.watch`, by name, with their last values.
    pub watched: BTreeMap<String, super::named::WatchedObject>,
    pub stopping: Option<String>,
    pub ended: Option<i32>,
    /// Lines of scrollback kept per process.
    pub output_lines: usize,
    /// The steps a demo announced.
    pub lesson: super::lesson::Lesson,
}

const NOTICES: usize = 200;
/// Ended processes kept for the views (a fork-per-request server would grow without end).
pub const DEFAULT_MAX_ENDED: usize = 10_000;

impl State {
    pub fn new(output_lines: usize) -> State {
        State {
            output_lines,
            max_ended: DEFAULT_MAX_ENDED,
            ..State::default()
        }
    }

    /// Records that `id` ended, forgetting the oldest ended records beyond `max_ended`.
    fn note_ended(&mut self, id: ProcId) {
        self.ended_order.push_back(id);
        let limit = if self.max_ended == 0 {
            DEFAULT_MAX_ENDED
        } else {
            self.max_ended
        };
        while self.ended_order.len() > limit {
            let Some(old) = self.ended_order.pop_front() else {
                break;
            };
            if self.procs.get(&old).is_some_and(|p| p.ended.is_some()) {
                self.procs.remove(&old);
                self.forgotten += 1;
            }
        }
    }

    /// The live record for `pid`, or the newest ended one.
    pub fn find_pid(&self, pid: i32) -> Option<&ProcessView> {
        self.id_for_pid(pid).and_then(|id| self.procs.get(&id))
    }

    fn id_for_pid(&self, pid: i32) -> Option<ProcId> {
        self.live
            .get(&pid)
            .or_else(|| self.newest.get(&pid))
            .copied()
            .filter(|id| self.procs.contains_key(id))
    }

    pub fn pool(&self, name: &str) -> Option<&PoolView> {
        self.pools.iter().find(|p| p.info.name == name)
    }

    fn pool_mut(&mut self, name: &str) -> Option<&mut PoolView> {
        self.pools.iter_mut().find(|p| p.info.name == name)
    }

    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    /// Forgets every ended process (the tree keeps them, dimmed, until this).
    pub fn clear_ended(&mut self) {
        self.procs.retain(|_, p| p.ended.is_none());
        self.ended_order.clear();
        let procs = &self.procs;
        self.newest.retain(|_, id| procs.contains_key(id));
    }

    fn add_process(
        &mut self,
        t: f64,
        pid: i32,
        ppid: i32,
        start_time: Option<u64>,
        origin: Origin,
        source: TrackSource,
    ) -> ProcId {
        if let Some(old) = self.live.remove(&pid)
            && let Some(stale) = self.procs.get_mut(&old)
            && stale.ended.is_none()
        {
            stale.ended = Some(Ended {
                t,
                status: ExitStatus::Unknown,
                source,
            });
            self.note_ended(old);
        }
        let parent = self.live.get(&ppid).copied();
        self.next_id += 1;
        let id = self.next_id;
        let max_lines = if self.output_lines == 0 {
            super::output::DEFAULT_LINES
        } else {
            self.output_lines
        };
        self.procs.insert(
            id,
            ProcessView {
                id,
                pid,
                ppid,
                parent,
                start_time,
                argv: Vec::new(),
                origin,
                source,
                born: t,
                ended: None,
                sample: None,
                cpu_history: VecDeque::new(),
                rss_history: VecDeque::new(),
                output: OutputLog::with_capacity(max_lines, super::output::DEFAULT_BYTES),
                signals: Vec::new(),
                execs: Vec::new(),
                restarts: 0,
                zombie: false,
                reaped: None,
                adopted_from: None,
                adopted_by: None,
            },
        );
        self.live.insert(pid, id);
        self.newest.insert(pid, id);
        id
    }

    fn push_instant(&mut self, instant: Instant) {
        self.instants.push_back(instant);
        while self.instants.len() > INSTANTS {
            self.instants.pop_front();
        }
    }

    /// The newest record of `pid`, live or ended.
    pub fn newest_record(&self, pid: i32) -> Option<ProcId> {
        self.newest.get(&pid).copied()
    }

    fn notice(&mut self, t: f64, level: crate::model::NoticeLevel, message: String) {
        self.notices.push_back((t, level, message));
        while self.notices.len() > NOTICES {
            self.notices.pop_front();
        }
    }
}

fn push_bounded<T>(history: &mut VecDeque<T>, value: T) {
    history.push_back(value);
    while history.len() > HISTORY {
        history.pop_front();
    }
}

mod update;
pub use update::{update, update_output};

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
