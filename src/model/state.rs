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

/// What a process is to the supervised program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Started by forkscope as worker `worker` of `pool`.
    Worker { pool: String, worker: u32 },
    /// Forked by a worker or one of its descendants.
    Descendant,
}

/// A signal sent to a process, as the detail pane lists them.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalRecord {
    pub t: f64,
    pub signal: String,
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
    pub role: Role,
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
    pub notices: VecDeque<(f64, String, String)>,
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
        role: Role,
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
                role,
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

    fn notice(&mut self, t: f64, level: &str, message: String) {
        self.notices.push_back((t, level.to_string(), message));
        while self.notices.len() > NOTICES {
            self.notices.pop_front();
        }
    }
}

/// Applies one event to the state.
pub fn update(state: &mut State, event: &Event) {
    let t = event.t;
    state.now = state.now.max(t);
    match &event.body {
        EventBody::Session {
            pid,
            version,
            pools,
            track,
            track_note,
            stop_timeout,
            started_unix,
        } => {
            state.started_unix = *started_unix;
            state.engine_pid = Some(*pid);
            state.version = version.clone();
            state.track = Some(*track);
            state.track_note = track_note.clone();
            state.stop_timeout = *stop_timeout;
            state.pools = pools
                .iter()
                .map(|info| PoolView {
                    info: info.clone(),
                    workers: BTreeMap::new(),
                })
                .collect();
        }
        EventBody::Spawn {
            pid,
            ppid,
            pool,
            worker,
            argv,
            start_time,
            restarts,
        } => {
            let role = Role::Worker {
                pool: pool.clone(),
                worker: *worker,
            };
            let id = state.add_process(t, *pid, *ppid, *start_time, role, TrackSource::Engine);
            if let Some(proc) = state.procs.get_mut(&id) {
                proc.argv = argv.clone();
                proc.restarts = *restarts;
            }
            if let Some(pool) = state.pool_mut(pool) {
                let slot = pool.workers.entry(*worker).or_default();
                slot.current = Some(id);
                slot.restarts = *restarts;
                slot.failed = None;
                slot.restart_pending = None;
            }
        }
        EventBody::SpawnFailed {
            pool,
            worker,
            argv,
            error,
            ..
        } => {
            let message = format!("{pool}[{worker}]: could not start {argv:?}: {error}");
            state.notice(t, "error", message);
            if let Some(pool) = state.pool_mut(pool) {
                pool.workers.entry(*worker).or_default().failed = Some(error.clone());
            }
        }
        EventBody::Fork {
            pid,
            ppid,
            start_time,
            source,
        } => {
            let known = state
                .live
                .get(pid)
                .and_then(|id| state.procs.get(id))
                .is_some_and(|p| start_time.is_none() || p.start_time == *start_time);
            if !known {
                let id = state.add_process(t, *pid, *ppid, *start_time, Role::Descendant, *source);
                // A fork child runs its parent's program until it execs: same argv.
                let inherited = state
                    .procs
                    .get(&id)
                    .and_then(|p| p.parent)
                    .and_then(|parent| state.procs.get(&parent))
                    .map(|parent| parent.argv.clone());
                if let (Some(argv), Some(proc)) = (inherited, state.procs.get_mut(&id)) {
                    proc.argv = argv;
                }
            }
        }
        EventBody::Exec { pid, argv, .. } => {
            if let Some(proc) = state.live.get(pid).and_then(|id| state.procs.get_mut(id)) {
                proc.argv = argv.clone();
                proc.execs.push(t);
            }
        }
        EventBody::Exit {
            pid,
            ppid,
            status,
            source,
            zombie,
            ..
        } => {
            if let Some(id) = state.live.remove(pid)
                && let Some(proc) = state.procs.get_mut(&id)
            {
                proc.ended = Some(Ended {
                    t,
                    status: *status,
                    source: *source,
                });
                proc.zombie = *zombie;
                if proc.ppid != *ppid && *ppid > 0 {
                    // Adopted without a `reparent` event (e.g. a recording from before them).
                    proc.adopted_from.get_or_insert(proc.ppid);
                    proc.ppid = *ppid;
                }
                state.note_ended(id);
            }
        }
        EventBody::Reap { pid, by } => {
            if let Some(proc) = state
                .newest
                .get(pid)
                .and_then(|id| state.procs.get_mut(id))
                .filter(|p| p.zombie)
            {
                proc.zombie = false;
                proc.reaped = Some(ReapRecord { t, by: *by });
            }
        }
        EventBody::Reparent { pid, from, to } => {
            let new_parent = state
                .live
                .get(to)
                .copied()
                .filter(|_| Some(*to) != state.engine_pid && to != pid);
            if let Some(proc) = state.live.get(pid).and_then(|id| state.procs.get_mut(id)) {
                proc.adopted_from.get_or_insert(*from);
                proc.ppid = *to;
                proc.adopted_by = new_parent;
            }
        }
        EventBody::Signal {
            pid,
            signal,
            reason,
            result,
        } => {
            if let Some(id) = state.id_for_pid(*pid)
                && let Some(proc) = state.procs.get_mut(&id)
            {
                proc.signals.push(SignalRecord {
                    t,
                    signal: signal.clone(),
                    reason: *reason,
                    result: result.clone(),
                });
            }
        }
        EventBody::Output {
            pid,
            stream,
            line,
            seq,
            partial,
            ..
        } => {
            if let Some(id) = state.id_for_pid(*pid)
                && let Some(proc) = state.procs.get_mut(&id)
            {
                proc.output.push(OutputLine {
                    stream: *stream,
                    text: line.clone(),
                    seq: *seq,
                    partial: *partial,
                    t,
                });
            }
        }
        EventBody::Restart {
            pool,
            worker,
            delay_ms,
            ..
        } => {
            if let Some(pool) = state.pool_mut(pool) {
                pool.workers.entry(*worker).or_default().restart_pending = Some(*delay_ms);
            }
        }
        EventBody::WorkerFailed {
            pool,
            worker,
            reason,
            ..
        } => {
            state.notice(t, "error", format!("{pool}[{worker}] failed: {reason}"));
            if let Some(pool) = state.pool_mut(pool) {
                pool.workers.entry(*worker).or_default().failed = Some(reason.clone());
            }
        }
        EventBody::Scale { pool, to, .. } => {
            if let Some(pool) = state.pool_mut(pool) {
                pool.info.size = *to;
            }
        }
        EventBody::Stopping { reason, .. } => state.stopping = Some(reason.clone()),
        EventBody::Sample { procs, .. } => {
            for sample in procs {
                if let Some(proc) = state
                    .live
                    .get(&sample.pid)
                    .and_then(|id| state.procs.get_mut(id))
                {
                    push_bounded(&mut proc.cpu_history, sample.cpu);
                    push_bounded(&mut proc.rss_history, sample.rss_kb);
                    proc.sample = Some(sample.clone());
                }
            }
        }
        EventBody::Notice { level, message, .. } => state.notice(t, level, message.clone()),
        EventBody::Step { .. } | EventBody::StepRelease { .. } => {
            state.lesson.apply(t, &event.body)
        }
        EventBody::Barrier {
            pid,
            name,
            step,
            generation,
            parties,
            waiting,
            reason,
            ..
        } => {
            let why = reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            super::named::fold_barrier(
                &mut state.hosted_barriers,
                super::named::BarrierStepFacts {
                    pid: *pid,
                    name,
                    step: *step,
                    generation: *generation,
                    parties: *parties,
                    waiting: *waiting,
                    reason: reason.as_deref(),
                },
            );
            let label = format!("barrier {name} {} #{generation}{why}", step.as_str());
            state.push_instant(Instant {
                t,
                pid: *pid,
                label,
                kind: InstantKind::Barrier(*step),
                barrier: Some(name.clone()),
            });
        }
        EventBody::Watched {
            pid,
            name,
            object,
            typecode,
            length,
            parties,
            value,
            error,
        } => super::named::fold_watched(
            &mut state.watched,
            super::named::WatchedObject {
                name: name.clone(),
                pid: *pid,
                object: object.clone(),
                typecode: typecode.clone(),
                length: *length,
                parties: *parties,
                value: value.clone(),
                error: error.clone(),
            },
        ),
        EventBody::Mark { pid, label, .. } => state.push_instant(Instant {
            t,
            pid: *pid,
            label: format!("mark {label}"),
            kind: InstantKind::Mark,
            barrier: None,
        }),
        EventBody::End { status, .. } => {
            state.ended = Some(*status);
            // `end` means nothing of the tree runs any more. A process whose exit was never
            // learnt (reaped by its own parent between two /proc scans) ended too, how is
            // unknown.
            let still_live: Vec<ProcId> = state.live.drain().map(|(_, id)| id).collect();
            for id in still_live {
                if let Some(proc) = state.procs.get_mut(&id)
                    && proc.ended.is_none()
                {
                    proc.ended = Some(Ended {
                        t,
                        status: ExitStatus::Unknown,
                        source: TrackSource::Engine,
                    });
                    state.note_ended(id);
                }
            }
            // Nothing of the tree is left: no zombie either.
            for proc in state.procs.values_mut() {
                proc.zombie = false;
            }
        }
    }
}

fn push_bounded<T>(history: &mut VecDeque<T>, value: T) {
    history.push_back(value);
    while history.len() > HISTORY {
        history.pop_front();
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
