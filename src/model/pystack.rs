//! Python stacks as plain data: the frames of each thread of one process, read from outside
//! (by `inspect::pystack`), or the reason they could not be read.

use serde::Serialize;

/// One Python frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PyFrame {
    /// The function's qualified name where the interpreter keeps one (`Barrier.wait` on
    /// CPython 3.11+), else its bare name.
    pub function: String,
    /// The file as the interpreter knows it (usually absolute; `<string>` for `-c`).
    pub file: String,
    /// The line being executed (0 when unknown).
    pub line: u32,
}

impl PyFrame {
    /// The file's last path component.
    pub fn file_name(&self) -> &str {
        self.file.rsplit('/').next().unwrap_or(&self.file)
    }
}

/// One Python thread of a process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ThreadStack {
    /// The OS thread id (what `/proc/PID/task/` lists); none when the interpreter does not say.
    pub tid: Option<u64>,
    /// The Python thread name (`MainThread`, ...), when it could be read.
    pub name: Option<String>,
    /// Innermost first.
    pub frames: Vec<PyFrame>,
    /// Running (or runnable) rather than waiting, as the OS and py-spy tell.
    pub active: bool,
    /// Holds the GIL.
    pub gil: bool,
}

/// Why a process's Python stacks could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StackError {
    #[error("not a Python process")]
    NotPython,
    #[error("unsupported Python version: {0}")]
    UnsupportedVersion(String),
    #[error("permission denied: {0}")]
    Permission(String),
    #[error("the process is gone")]
    Vanished,
    /// The reader panicked on what it found in the process's memory (caught).
    #[error("the stack reader failed on this process's memory: {0}")]
    Crashed(String),
    #[error("{0}")]
    Other(String),
}

/// The stacks of one process at one moment, as the TUI receives them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessStacks {
    pub pid: i32,
    pub start_time: u64,
    pub stacks: Result<Vec<ThreadStack>, StackError>,
    /// What the process waits on, named from its stacks (`Barrier.wait at train.py:42`).
    pub wait: Option<String>,
}

/// The threads with the main one (whose thread id is the pid) first, the others in order.
pub fn main_thread_first(threads: &[ThreadStack], pid: i32) -> impl Iterator<Item = &ThreadStack> {
    let main_tid = u64::try_from(pid).ok();
    let is_main = move |t: &&ThreadStack| t.tid.is_some() && t.tid == main_tid;
    threads
        .iter()
        .filter(is_main)
        .chain(threads.iter().filter(move |t| !is_main(t)))
}
