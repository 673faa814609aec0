//! Plain descriptions of what the processes of a tree wait on: per-thread waits, POSIX
//! semaphores and the Python primitives they form, barriers, pipes and sockets between
//! processes, and the waits-for findings (deadlock cycles, barriers that cannot fill). What
//! `inspect::sync` produces, `inspect --json` prints and the TUI renders. No I/O here.

use serde::{Serialize, Serializer};

/// What kind of wait a thread is in. JSON: `futex`, `pipe-read`, ..., `other:<syscall>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum WaitKind {
    Futex,
    PipeRead,
    PipeWrite,
    SocketRecv,
    SocketSend,
    ChildWait,
    Sleep,
    Poll,
    Select,
    Epoll,
    Running,
    /// Stopped by a signal or a tracer (`T`/`t`).
    Stopped,
    Zombie,
    /// A syscall forkscope does not interpret (its name, or `#NR`).
    Other(String),
    /// The thread vanished or its files could not be read.
    Unknown,
}

impl WaitKind {
    /// The JSON name.
    pub fn label(&self) -> String {
        match self {
            WaitKind::Futex => "futex".into(),
            WaitKind::PipeRead => "pipe-read".into(),
            WaitKind::PipeWrite => "pipe-write".into(),
            WaitKind::SocketRecv => "socket-recv".into(),
            WaitKind::SocketSend => "socket-send".into(),
            WaitKind::ChildWait => "child-wait".into(),
            WaitKind::Sleep => "sleep".into(),
            WaitKind::Poll => "poll".into(),
            WaitKind::Select => "select".into(),
            WaitKind::Epoll => "epoll".into(),
            WaitKind::Running => "running".into(),
            WaitKind::Stopped => "stopped".into(),
            WaitKind::Zombie => "zombie".into(),
            WaitKind::Other(name) => format!("other:{name}"),
            WaitKind::Unknown => "unknown".into(),
        }
    }

    /// True when the thread makes progress without another process acting: running, a
    /// sleep, a syscall we do not interpret (conservative), or unknown.
    pub fn can_progress_alone(&self) -> bool {
        matches!(
            self,
            WaitKind::Running | WaitKind::Sleep | WaitKind::Other(_) | WaitKind::Unknown
        )
    }
}

impl Serialize for WaitKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.label())
    }
}

/// The facts behind a wait; only what applies is present.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WaitDetails {
    /// The syscall's name (`futex`, `read`, ...), absent when not in a syscall.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syscall: Option<String>,
    /// The kernel function the thread sleeps in (`wchan`), when readable and not `0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wchan: Option<String>,
    /// The file descriptor the syscall is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd: Option<i32>,
    /// The descriptors a poll/select/epoll waits on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fds: Vec<i32>,
    /// The inode of the pipe or socket the fd refers to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inode: Option<u64>,
    /// Futex: the address waited on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<u64>,
    /// Futex: `shared` or `private` (a private futex cannot be in shared memory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub futex_scope: Option<&'static str>,
    /// Futex in shared memory: the segment's name and the offset inside it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Futex on a semaphore: its inode (the key of the top-level `semaphores` list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub semaphore: Option<u64>,
    /// Child wait: the child waited for; absent with `any_child`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child: Option<i32>,
    /// Child wait: any child (`-1`), or any of a process group (then `pgid`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub any_child: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pgid: Option<i32>,
    /// A wait with a time limit: seconds left (sleep, poll, timed futex) where computable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_secs: Option<f64>,
    /// The full duration asked for (relative sleeps and timeouts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<f64>,
    /// The wait has a time limit (even when its length is not known).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub timed: bool,
    /// Pipes and sockets: the processes holding the other end (may include the waiter).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<i32>,
}

/// What one thread waits on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BlockedOn {
    pub kind: WaitKind,
    /// A short name of the object: `sem 62 (barrier wait)`, `pipe:[27446]`, `pid 4318`.
    pub object: Option<String>,
    pub details: WaitDetails,
    /// Seconds the thread has been in this wait, when known (`since_source` says how).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_secs: Option<f64>,
    /// `sched` (the kernel's last-ran time) or `sampled` (first sample that saw this wait).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_source: Option<&'static str>,
    /// What the wait means in Python terms (`Barrier.wait at train.py:42`), filled from a
    /// Python stack by another module when one is available.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python: Option<String>,
}

impl BlockedOn {
    pub fn new(kind: WaitKind) -> BlockedOn {
        BlockedOn {
            kind,
            object: None,
            details: WaitDetails::default(),
            blocked_secs: None,
            since_source: None,
            python: None,
        }
    }

    /// A short human form for a table cell: `sem 62 (barrier, 2 waiting)`, `recv ← 4312
    /// pipe`, `join 4318`, `sleep 598s left`. `pid` is the waiter (left out of peers).
    pub fn short(&self, pid: i32) -> String {
        let d = &self.details;
        let peers: Vec<String> = d
            .peers
            .iter()
            .filter(|p| **p != pid)
            .take(3)
            .map(i32::to_string)
            .collect();
        let peers = if peers.is_empty() {
            String::new()
        } else if d.peers.iter().filter(|p| **p != pid).count() > 3 {
            format!("{},…", peers.join(","))
        } else {
            peers.join(",")
        };
        let object = self.object.as_deref().unwrap_or("");
        let channel = |verb: &str, arrow: &str, what: &str| {
            if peers.is_empty() {
                format!("{verb} {object}")
            } else {
                format!("{verb} {arrow} {peers} {what}")
            }
        };
        let secs = |s: f64| {
            if s >= 10.0 {
                format!("{s:.0}s")
            } else {
                format!("{s:.1}s")
            }
        };
        match &self.kind {
            WaitKind::Futex => match d.futex_scope {
                Some("private") => "futex (private)".into(),
                _ => object.to_string(),
            },
            WaitKind::PipeRead => channel("recv", "←", "pipe"),
            WaitKind::PipeWrite => channel("send", "→", "pipe"),
            WaitKind::SocketRecv => channel("recv", "←", "socket"),
            WaitKind::SocketSend => channel("send", "→", "socket"),
            WaitKind::ChildWait => match d.child {
                Some(child) => format!("join {child}"),
                None => "wait any child".into(),
            },
            WaitKind::Sleep => match (d.remaining_secs, d.duration_secs) {
                (Some(left), _) => format!("sleep {} left", secs(left)),
                (None, Some(total)) => format!("sleep {}", secs(total)),
                _ => "sleep".into(),
            },
            WaitKind::Poll | WaitKind::Select | WaitKind::Epoll => {
                let kind = self.kind.label();
                if peers.is_empty() {
                    format!("{kind} {object}").trim_end().to_string()
                } else {
                    format!("{kind} ← {peers}")
                }
            }
            WaitKind::Running => "running".into(),
            WaitKind::Unknown => "?".into(),
            other => format!("{} {object}", other.label()).trim_end().to_string(),
        }
    }

    /// The identity used to tell whether consecutive samples show the same wait.
    pub fn identity(&self) -> String {
        let d = &self.details;
        format!(
            "{}|{:?}|{:?}|{:?}|{:?}|{:?}",
            self.kind.label(),
            d.semaphore.or(d.inode),
            d.address,
            d.child,
            d.fd,
            d.fds
        )
    }
}

/// One thread and its wait.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ThreadWait {
    pub tid: i32,
    pub blocked_on: BlockedOn,
}

/// One process: its main thread's wait (`blocked_on`) and every thread's.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProcessWaits {
    pub pid: i32,
    pub blocked_on: BlockedOn,
    pub threads: Vec<ThreadWait>,
}

/// A thread blocked on an object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Blocker {
    pub pid: i32,
    pub tid: i32,
}

/// One POSIX (glibc) semaphore the tree maps, matched across processes by (device, inode).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Semaphore {
    pub inode: u64,
    pub device: String,
    pub name: String,
    pub deleted: bool,
    /// The count (`None` when the bytes could not be read or do not look like a sem_t).
    pub value: Option<u32>,
    /// glibc's waiter count (threads inside `sem_wait`).
    pub waiters: Option<u32>,
    pub pids: Vec<i32>,
    /// Pids with a thread blocked on it (futex on its address).
    pub blocked: Vec<i32>,
    pub blocked_threads: Vec<Blocker>,
    /// Its role when recognised: `lock`, `rlock`, `semaphore`, `condition.lock`,
    /// `condition.sleeping`, `condition.woken`, `condition.wait`, `event.flag`,
    /// `queue.rlock`, `queue.wlock`, `queue.slots`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Index of the primitive (in `primitives`) it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primitive: Option<usize>,
}

/// How sure a grouping is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Confidence {
    /// The memory proves it (e.g. a barrier's counters match its waiters).
    Confirmed,
    /// Consistent with the creation order and values, not proven.
    Guess,
}

/// A Python `multiprocessing` primitive made of semaphores.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Primitive {
    /// `lock`, `rlock`, `lock-or-rlock`, `semaphore`, `event`, `condition`, `barrier`, `queue`.
    pub kind: String,
    /// Inodes of its semaphores, in creation order.
    pub semaphores: Vec<u64>,
    pub confidence: Confidence,
    /// Why it was grouped this way.
    pub reason: String,
    /// Pids blocked on any of its semaphores.
    pub waiting: Vec<i32>,
    /// Pids that map it.
    pub pids: Vec<i32>,
    /// Locks: value 0 means held. Events: the flag is set. Semaphores: the count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Queues: the pipe it reads (inode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipe: Option<u64>,
}

/// A process that maps a barrier without waiting on it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MissingParty {
    pub pid: i32,
    pub blocked_on: Option<BlockedOn>,
}

/// A `multiprocessing.Barrier`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Barrier {
    /// The inode of its Condition's wait semaphore (the one waiters block on).
    pub semaphore: u64,
    /// `filling`, `draining`, `resetting`, `broken`, or unknown when its arena slot was
    /// not found.
    pub state: Option<String>,
    /// `_count`: parties arrived (while filling).
    pub arrived: Option<i32>,
    /// The arena and offset its two int32 were read from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arena: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arena_offset: Option<u64>,
    pub waiting: Vec<i32>,
    /// Seconds the longest waiter has waited, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_secs: Option<f64>,
    /// Processes that map it but do not wait: probably the parties not yet arrived (the
    /// program's parent also maps it; `parties` lives only in Python memory).
    pub missing: Vec<MissingParty>,
    /// Pids seen mapping it earlier that have exited since (scans that keep history only).
    pub exited: Vec<i32>,
    /// A party exited while others wait: it can never fill (a guess, see `exited`).
    pub can_never_fill: bool,
    pub confidence: Confidence,
}

/// One process's end of a channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChannelEnd {
    pub pid: i32,
    pub fd: i32,
    /// `r`, `w` or `rw` (from the fd's open flags; sockets are `rw`).
    pub mode: String,
    /// The inode of this end (the two sockets of a socketpair differ).
    pub inode: u64,
}

/// A pipe, socketpair or connected Unix socket between processes of the tree.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Channel {
    /// The pipe's inode, or the lower of the two socket inodes.
    pub inode: u64,
    /// `pipe`, `socketpair` (both ends in the tree), `unix-socket` (one end), `socket`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_inode: Option<u64>,
    pub ends: Vec<ChannelEnd>,
    /// Bytes queued for reading (pipe: FIONREAD through a borrowed fd; socket: the
    /// receive queues from sock_diag); `None` when unknown.
    pub bytes_waiting: Option<u64>,
    /// Threads blocked reading or writing it (or polling it).
    pub blocked: Vec<ChannelBlocked>,
}

/// A thread blocked on a channel.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChannelBlocked {
    pub pid: i32,
    pub tid: i32,
    pub kind: WaitKind,
}

/// A set of processes none of which can proceed without another of the set.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Deadlock {
    pub pids: Vec<i32>,
    /// One cycle, as `pid waits-for pid (via what)` steps.
    pub cycle: Vec<String>,
    /// True when an edge rests on a guessed holder (a lock's holder is not in memory).
    pub guess: bool,
}

/// Everything one sync scan found.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SyncReport {
    pub processes: Vec<ProcessWaits>,
    pub semaphores: Vec<Semaphore>,
    pub primitives: Vec<Primitive>,
    pub barriers: Vec<Barrier>,
    pub channels: Vec<Channel>,
    pub deadlocks: Vec<Deadlock>,
}

impl SyncReport {
    /// The semaphore with this inode.
    pub fn semaphore(&self, inode: u64) -> Option<&Semaphore> {
        self.semaphores.iter().find(|s| s.inode == inode)
    }

    pub fn process(&self, pid: i32) -> Option<&ProcessWaits> {
        self.processes.iter().find(|p| p.pid == pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms() {
        let mut b = BlockedOn::new(WaitKind::PipeRead);
        b.object = Some("pipe:[9]".into());
        assert_eq!(b.short(1), "recv pipe:[9]");
        b.details.peers = vec![1, 4312];
        assert_eq!(b.short(1), "recv ← 4312 pipe");
        b.details.peers = vec![2, 3, 4, 5];
        assert_eq!(b.short(1), "recv ← 2,3,4,… pipe");
        let mut b = BlockedOn::new(WaitKind::ChildWait);
        b.details.child = Some(4318);
        assert_eq!(b.short(1), "join 4318");
        let mut b = BlockedOn::new(WaitKind::Sleep);
        b.details.remaining_secs = Some(598.4);
        assert_eq!(b.short(1), "sleep 598s left");
        let mut b = BlockedOn::new(WaitKind::Futex);
        b.object = Some("sem 3 (barrier, 2 waiting)".into());
        assert_eq!(b.short(1), "sem 3 (barrier, 2 waiting)");
        assert_eq!(
            BlockedOn::new(WaitKind::Other("read".into())).short(1),
            "other:read"
        );
        let mut same = b.clone();
        same.object = Some("sem 3 (barrier, 1 waiting)".into());
        assert_eq!(b.identity(), same.identity());
        same.details.address = Some(8);
        assert_ne!(b.identity(), same.identity());
    }
}
