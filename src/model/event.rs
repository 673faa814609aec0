//! The event vocabulary: every fact forkscope learns becomes one `Event`.
//!
//! Events are what `--headless` prints (one JSON object per line), what `--record` writes and
//! what the TUI's state is built from. The JSON shape is the contract in `docs/events.md`:
//! every event has `t` (seconds since forkscope started), `kind` and `pid`.

use serde::{Deserialize, Serialize};

use super::exit::ExitStatus;
use super::signals::Sig;

/// One fact, stamped with the time forkscope learnt it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Seconds since forkscope started.
    pub t: f64,
    #[serde(flatten)]
    pub body: EventBody,
}

/// Which pipe a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Why forkscope sent a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignalReason {
    /// Asked for by a person (and, once the planned `ctl` exists, by its clients).
    User,
    /// The first, polite step of stopping (the pool's stop signal).
    Stop,
    /// The stop timeout ran out: SIGKILL for what remains of the tree.
    Escalation,
    /// A descendant still running after every worker ended.
    Leftover,
    /// Part of restarting a worker.
    Restart,
    /// Part of shrinking a pool.
    Scale,
}

/// What happened to a signal forkscope tried to send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    Sent,
    /// Not sent; the errno name (`ESRCH`, `EPERM`) or a reason such as "process already gone".
    Failed(String),
}

/// How much a `notice` matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoticeLevel {
    Info,
    Warning,
    Error,
}

impl NoticeLevel {
    /// The word used in JSON (`info`, `warning`, `error`).
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeLevel::Info => "info",
            NoticeLevel::Warning => "warning",
            NoticeLevel::Error => "error",
        }
    }
}

/// How a process's lifecycle facts were learnt (see `docs/tracking.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackSource {
    /// Forkscope spawned or reaped it itself: exact.
    Engine,
    /// The kernel's process-events connector: exact unless events were dropped.
    Kernel,
    /// ptrace: exact.
    Ptrace,
    /// Seen by scanning `/proc`: short-lived processes and exit statuses can be missed.
    Poll,
}

impl TrackSource {
    /// The name shown (and serialised): `engine`, `kernel`, `ptrace`, `poll`.
    pub fn label(self) -> &'static str {
        match self {
            TrackSource::Engine => "engine",
            TrackSource::Kernel => "kernel",
            TrackSource::Ptrace => "ptrace",
            TrackSource::Poll => "poll",
        }
    }
}

/// One process's reading from `/proc`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcSample {
    pub pid: i32,
    /// The `/proc/PID/stat` state letter: R, S, D, T, t, Z, X, I.
    pub state: char,
    /// Percent of one CPU since the previous sample.
    pub cpu: f32,
    pub rss_kb: u64,
    pub threads: u32,
    #[serde(default)]
    pub pgid: i32,
    #[serde(default)]
    pub sid: i32,
    /// Working directory, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// The process whose capture pipe this one's stdout or stderr is, when that is another
    /// process (a child sharing its worker's pipe): its lines are filed under that pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares_pipe_of: Option<i32>,
}

/// A pool as the session starts it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolInfo {
    pub name: String,
    pub size: u32,
    pub argv: Vec<String>,
    pub restart: String,
}

/// What happened at a hosted barrier (`forkscope barrier wait`, `forkscope.Barrier`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BarrierStep {
    /// A party arrived and waits.
    Arrive,
    /// The last party arrived: every waiter passes and the generation advances.
    Pass,
    /// The barrier broke (a party died or can no longer arrive, timeout, abort): every
    /// waiter is released with an error, and later waits fail until a reset.
    Break,
    /// The barrier was reset to a fresh, unbroken generation.
    Reset,
}

impl BarrierStep {
    /// The word used in JSON (`arrive`, `pass`, `break`, `reset`).
    pub fn as_str(self) -> &'static str {
        match self {
            BarrierStep::Arrive => "arrive",
            BarrierStep::Pass => "pass",
            BarrierStep::Break => "break",
            BarrierStep::Reset => "reset",
        }
    }
}

/// The facts themselves. `kind` is the tag in JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    /// The first event of every session: who forkscope is and how it tracks processes.
    Session {
        pid: i32,
        version: String,
        pools: Vec<PoolInfo>,
        track: TrackSource,
        /// What the active tracking source can miss, in words.
        track_note: String,
        stop_timeout: f64,
        /// Wall-clock time of `t = 0`, in seconds since the Unix epoch.
        #[serde(default)]
        started_unix: f64,
        /// The address `--metrics` serves on (the bound port when 0 was asked).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metrics: Option<String>,
    },
    /// A worker forkscope started.
    Spawn {
        pid: i32,
        ppid: i32,
        pool: String,
        worker: u32,
        argv: Vec<String>,
        #[serde(default)]
        start_time: Option<u64>,
        #[serde(default)]
        restarts: u32,
    },
    /// A worker could not be started (the command does not exist, is not executable...).
    SpawnFailed {
        pid: Option<i32>,
        pool: String,
        worker: u32,
        argv: Vec<String>,
        error: String,
    },
    /// A descendant appeared.
    Fork {
        pid: i32,
        ppid: i32,
        #[serde(default)]
        start_time: Option<u64>,
        source: TrackSource,
    },
    /// A process replaced its program.
    Exec {
        pid: i32,
        argv: Vec<String>,
        source: TrackSource,
    },
    /// A process ended. The status fields are flattened: `code`, `signal`, `core_dumped`,
    /// `python_exitcode`, `shell_status`.
    Exit {
        pid: i32,
        ppid: i32,
        #[serde(flatten)]
        status: ExitStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pool: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        worker: Option<u32>,
        source: TrackSource,
        /// The process is a zombie now, not yet collected by its parent: a `reap` event
        /// follows. False (absent) when it was already collected (by forkscope, source
        /// `engine`) or its end was only noticed once it was gone.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        zombie: bool,
    },
    /// A signal forkscope sent (or tried to).
    Signal {
        pid: i32,
        signal: Sig,
        reason: SignalReason,
        result: Delivery,
    },
    /// Lines of one read, inside forkscope only (the engine's channel and its taps): never
    /// serialised, it stands for one `output` event per line ([`OutputLines::bodies`]).
    #[serde(skip)]
    OutputLines(super::line_text::OutputLines),
    /// One line a worker (or a descendant sharing its pipes) wrote.
    Output {
        pid: i32,
        stream: Stream,
        /// The line without its newline; invalid UTF-8 replaced by U+FFFD here...
        line: super::LineText,
        /// ...and the exact bytes in hex, present only when the line was not valid UTF-8.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        raw_hex: Option<String>,
        /// 1-based number of this line on this stream of this process: a gap means loss.
        seq: u64,
        /// A piece of a line longer than the 64 KiB line limit; the last piece has `false`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        partial: bool,
    },
    /// A worker will be started again after `delay_ms`.
    Restart {
        pid: Option<i32>,
        pool: String,
        worker: u32,
        attempt: u32,
        delay_ms: u64,
    },
    /// A worker crashed too often in a row and will not be restarted.
    WorkerFailed {
        pid: Option<i32>,
        pool: String,
        worker: u32,
        reason: String,
    },
    /// A pool's target size changed.
    Scale {
        pid: Option<i32>,
        pool: String,
        from: u32,
        to: u32,
    },
    /// Forkscope began stopping the tree.
    Stopping { pid: Option<i32>, reason: String },
    /// A periodic `/proc` reading of every live process of the tree.
    Sample {
        pid: Option<i32>,
        procs: Vec<ProcSample>,
    },
    /// Something a person should know that is not a process fact.
    Notice {
        pid: Option<i32>,
        level: NoticeLevel,
        message: String,
    },
    /// A program announced a lesson step (a `@@forkscope-step` line on its stdout,
    /// `docs/teaching.md`); `n` counts the session's steps from 1.
    Step {
        pid: i32,
        n: u32,
        title: String,
        #[serde(default)]
        text: String,
        #[serde(default)]
        question: String,
        /// Forkscope holds the program at this step until `.`, `--auto` or the end.
        #[serde(default)]
        held: bool,
    },
    /// A held program was let go on past step `n`.
    StepRelease {
        pid: i32,
        n: u32,
        by: super::lesson::StepReleaser,
    },
    /// A hosted barrier's arrival, pass, break or reset (`docs/protocol.md`).
    Barrier {
        /// The arriving party (for `arrive`), else null.
        pid: Option<i32>,
        name: String,
        step: BarrierStep,
        /// Generations passed before this one (0 for the first).
        generation: u64,
        parties: u32,
        /// Parties waiting after this step.
        waiting: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pool: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        worker: Option<u32>,
        /// Why a barrier broke, in words.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A named instant a program marked (`forkscope.mark("label")`).
    Mark {
        pid: Option<i32>,
        label: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pool: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        worker: Option<u32>,
    },
    /// A value a program named with `forkscope.watch(obj, "name")` changed (or was first
    /// read): the control service reads watched objects a few times a second and emits
    /// this only when the value (or its error) differs from the last one emitted.
    Watched {
        /// The registering process.
        pid: i32,
        name: String,
        /// `value`, `array`, `barrier`, `lock`, `rlock`, `semaphore`, `event`, `condition`,
        /// `queue`, `shared_memory`, `shareable_list`.
        object: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        typecode: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        length: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parties: Option<u32>,
        /// The decoded value (a number, a list, or an object for primitives); null when
        /// unreadable.
        #[serde(default)]
        value: serde_json::Value,
        /// Why the value could not be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A shared-memory segment of the tree changed (or was first seen, or is gone): written
    /// while a session records (`docs/events.md`, bounds there). `pid` is null.
    Shm {
        pid: Option<i32>,
        name: String,
        segment: super::shm::SegmentKind,
        inode: u64,
        size: u64,
        /// Pids that map or hold it.
        #[serde(default)]
        pids: Vec<i32>,
        /// The decoded contents (`shm show --json`'s form); null when gone or over the
        /// size cap (then `truncated`).
        #[serde(default)]
        value: Option<super::shm::Decoded>,
        /// Byte ranges `[start, end)` that differ from this segment's previous `shm` event.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        changed: Vec<[u64; 2]>,
        /// Indexes of decoded items (list items, elements, fields) that differ.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        changed_items: Vec<usize>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        truncated: bool,
        /// No process of the tree maps or holds it any more.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        gone: bool,
    },
    /// The last event: nothing of the tree is left running.
    End {
        pid: Option<i32>,
        /// The exit status `forkscope run` returns.
        status: i32,
        /// How many `exit` events of the session had an unknown status (no source could
        /// tell how those processes ended); absent when none.
        #[serde(default, skip_serializing_if = "is_zero")]
        unknown_exits: u64,
    },
    /// A zombie (an `exit` with `zombie: true`) was collected: `by` is the pid that reaped
    /// it (its parent, or forkscope itself).
    Reap { pid: i32, by: i32 },
    /// An orphan was adopted: its parent `from` ended and it now is a child of `to` (forkscope
    /// as subreaper, another subreaper, or init).
    Reparent { pid: i32, from: i32, to: i32 },
    /// A pool's readiness check (`ready` in the config) passed (`ok`), or gave up after its
    /// timeout with the last `error`.
    Ready {
        pid: Option<i32>,
        pool: String,
        ok: bool,
        /// What was checked: `tcp 127.0.0.1:8080`, `file PATH`, `command "..."`.
        check: String,
        after_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The config was read again (SIGHUP, `ctl reload`): what changed, or why nothing did.
    Reload {
        pid: Option<i32>,
        ok: bool,
        /// Why the file was refused (`FILE:LINE:COL: ...`); the pools are then untouched.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(default)]
        added: Vec<String>,
        #[serde(default)]
        removed: Vec<String>,
        /// Pools whose command, env, cwd or policy changed: their workers restart.
        #[serde(default)]
        changed: Vec<String>,
        #[serde(default)]
        resized: Vec<String>,
        /// The pools after the reload (empty when refused).
        #[serde(default)]
        pools: Vec<PoolInfo>,
    },
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl EventBody {
    /// The `exit` of a descendant that is gone without any source knowing how it ended.
    pub fn unknown_exit(pid: i32, ppid: i32, source: TrackSource) -> EventBody {
        EventBody::Exit {
            pid,
            ppid,
            status: ExitStatus::Unknown,
            pool: None,
            worker: None,
            source,
            zombie: false,
        }
    }

    /// The `signal` event of sending `signo` to `pid`: sent, or failed with the error's words.
    pub fn signal<E: std::fmt::Display>(
        pid: i32,
        signo: i32,
        reason: SignalReason,
        result: Result<(), E>,
    ) -> EventBody {
        EventBody::Signal {
            pid,
            signal: Sig(signo),
            reason,
            result: match result {
                Ok(()) => Delivery::Sent,
                Err(err) => Delivery::Failed(err.to_string()),
            },
        }
    }

    /// A `notice` not about one process.
    pub fn notice(level: NoticeLevel, message: String) -> EventBody {
        EventBody::Notice {
            pid: None,
            level,
            message,
        }
    }

    /// The process the event is about, if any.
    pub fn pid(&self) -> Option<i32> {
        match self {
            EventBody::Session { pid, .. }
            | EventBody::Spawn { pid, .. }
            | EventBody::Fork { pid, .. }
            | EventBody::Exec { pid, .. }
            | EventBody::Exit { pid, .. }
            | EventBody::Signal { pid, .. }
            | EventBody::Output { pid, .. }
            | EventBody::OutputLines(super::line_text::OutputLines { pid, .. })
            | EventBody::Reap { pid, .. }
            | EventBody::Reparent { pid, .. }
            | EventBody::Step { pid, .. }
            | EventBody::StepRelease { pid, .. }
            | EventBody::Watched { pid, .. } => Some(*pid),
            EventBody::SpawnFailed { pid, .. }
            | EventBody::Restart { pid, .. }
            | EventBody::WorkerFailed { pid, .. }
            | EventBody::Scale { pid, .. }
            | EventBody::Stopping { pid, .. }
            | EventBody::Sample { pid, .. }
            | EventBody::Notice { pid, .. }
            | EventBody::Shm { pid, .. }
            | EventBody::End { pid, .. } => *pid,
            EventBody::Barrier { pid, .. } | EventBody::Mark { pid, .. } => *pid,
            EventBody::Ready { pid, .. } | EventBody::Reload { pid, .. } => *pid,
        }
    }
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
