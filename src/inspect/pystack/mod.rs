//! Python stacks of live processes, read from outside with the `py-spy` crate: no pause of the
//! target (`LockingStrategy::NonBlocking`), one `PythonSpy` kept per process identity
//! `(pid, start_time)` because making one (finding the interpreter in memory) is the costly
//! part. Every failure is a [`StackError`] naming why; a panic inside py-spy is caught and
//! becomes [`StackError::Crashed`].

pub mod wait;
pub mod watch;

use std::cell::Cell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::os::unix::fs::MetadataExt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use py_spy::config::LockingStrategy;
use py_spy::{Config, PythonSpy, StackTrace};

use super::proc;
use crate::model::pystack::{ProcessStacks, PyFrame, StackError, ThreadStack};

/// Largest source file read to name a wait from its line.
const MAX_SOURCE_BYTES: u64 = 4 << 20;
/// Reads of one process tried with the same spy before it is dropped and made again (a
/// non-blocking read can meet the interpreter half-way through an update).
const ATTEMPTS: usize = 3;

thread_local! {
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

/// True while this thread is inside a py-spy call whose panic will be caught. A panic hook
/// that owns the terminal (the TUI's) checks it so that a caught panic does not tear the
/// screen down.
pub fn in_guarded_read() -> bool {
    GUARDED.with(Cell::get)
}

/// Runs `f`, turning a panic into [`StackError::Crashed`].
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, StackError> {
    GUARDED.with(|g| g.set(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(false));
    result.map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_string());
        tracing::warn!("py-spy panicked: {message}");
        StackError::Crashed(message)
    })
}

/// The executable's (device, inode): it changes when the process execs another program.
fn exe_identity(pid: i32) -> Option<(u64, u64)> {
    let meta = std::fs::metadata(format!("/proc/{pid}/exe")).ok()?;
    Some((meta.dev(), meta.ino()))
}

/// The cheap check first: is the executable `python*`, or does the process map a
/// `libpython`? Errors say why the process could not be looked at.
pub fn is_python(pid: i32) -> Result<bool, StackError> {
    match std::fs::read_link(format!("/proc/{pid}/exe")) {
        Ok(exe) => {
            let name = exe.file_name().map(|n| n.to_string_lossy().into_owned());
            if name.is_some_and(|n| n.starts_with("python")) {
                return Ok(true);
            }
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(StackError::Vanished);
        }
        Err(_) => {}
    }
    match std::fs::read_to_string(format!("/proc/{pid}/maps")) {
        Ok(maps) => Ok(maps.lines().any(|l| l.contains("/libpython"))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(StackError::Vanished),
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(StackError::Permission(format!("reading /proc/{pid}/maps")))
        }
        Err(err) => Err(StackError::Other(format!("/proc/{pid}/maps: {err}"))),
    }
}

/// What py-spy's error means, checking whether the process is still the same one.
fn classify(pid: i32, start_time: u64, err: &anyhow::Error) -> StackError {
    if proc::read_stat(pid).map(|s| s.start_time).ok() != Some(start_time) {
        return StackError::Vanished;
    }
    let text = format!("{err:#}");
    let lower = text.to_lowercase();
    if lower.contains("unsupported version") {
        StackError::UnsupportedVersion(text)
    } else if lower.contains("permission denied") || lower.contains("operation not permitted") {
        StackError::Permission(text)
    } else {
        StackError::Other(text)
    }
}

fn thread_stack(trace: StackTrace) -> ThreadStack {
    ThreadStack {
        tid: trace.os_thread_id,
        name: trace.thread_name,
        frames: trace
            .frames
            .into_iter()
            .map(|f| PyFrame {
                function: f.name,
                file: f.filename,
                line: u32::try_from(f.line).unwrap_or(0),
            })
            .collect(),
        active: trace.active,
        gil: trace.owns_gil,
    }
}

struct CachedSpy {
    spy: PythonSpy,
    exe: Option<(u64, u64)>,
}

/// Reads Python stacks, keeping one spy per live process identity.
#[derive(Default)]
pub struct StackReader {
    spies: HashMap<(i32, u64), CachedSpy>,
}

impl StackReader {
    pub fn new() -> StackReader {
        StackReader::default()
    }

    /// How many spies are kept (one per Python process read and still alive).
    pub fn cached(&self) -> usize {
        self.spies.len()
    }

    fn config() -> Config {
        Config {
            blocking: LockingStrategy::NonBlocking,
            ..Config::default()
        }
    }

    /// The Python stacks of every thread of `pid`.
    pub fn read(&mut self, pid: i32) -> Result<Vec<ThreadStack>, StackError> {
        let start_time = proc::read_stat(pid)
            .map_err(|_| StackError::Vanished)?
            .start_time;
        self.read_identity(pid, start_time)
    }

    /// Like [`read`](Self::read) for a known identity: a process with the same pid but another
    /// start time is [`StackError::Vanished`].
    pub fn read_identity(
        &mut self,
        pid: i32,
        start_time: u64,
    ) -> Result<Vec<ThreadStack>, StackError> {
        self.spies.retain(|&(p, s), _| p != pid || s == start_time);
        if proc::read_stat(pid).map(|s| s.start_time).ok() != Some(start_time) {
            self.spies.retain(|&(p, _), _| p != pid);
            return Err(StackError::Vanished);
        }
        let key = (pid, start_time);
        let exe = exe_identity(pid);
        if self.spies.get(&key).is_some_and(|c| c.exe != exe) {
            // It exec'd: the interpreter the spy found is gone.
            self.spies.remove(&key);
        }
        // A spy made earlier that fails now (an exec into the same binary, a torn read) gets
        // one more chance as a fresh spy.
        let reused = self.spies.contains_key(&key);
        match self.read_with_spy(key, exe) {
            Err(err) if reused && err != StackError::Vanished => self.read_with_spy(key, exe),
            result => result,
        }
    }

    /// Reads with the cached spy of `key` (made first if there is none); a spy that fails
    /// [`ATTEMPTS`] times in a row, or panics, is dropped.
    fn read_with_spy(
        &mut self,
        key: (i32, u64),
        exe: Option<(u64, u64)>,
    ) -> Result<Vec<ThreadStack>, StackError> {
        let (pid, start_time) = key;
        if let Entry::Vacant(slot) = self.spies.entry(key) {
            if !is_python(pid)? {
                return Err(StackError::NotPython);
            }
            let config = Self::config();
            let spy = guarded(|| PythonSpy::new(pid, &config))?
                .map_err(|err| classify(pid, start_time, &err))?;
            slot.insert(CachedSpy { spy, exe });
        }
        let mut last = StackError::Vanished;
        for _ in 0..ATTEMPTS {
            let Some(cached) = self.spies.get_mut(&key) else {
                break;
            };
            match guarded(|| cached.spy.get_stack_traces()) {
                Ok(Ok(traces)) => return Ok(traces.into_iter().map(thread_stack).collect()),
                Ok(Err(err)) => last = classify(pid, start_time, &err),
                Err(crash) => {
                    last = crash;
                    break;
                }
            }
            if last == StackError::Vanished {
                break;
            }
        }
        self.spies.remove(&key);
        Err(last)
    }

    /// The stacks of `pid` with the wait they name (the `inspect` and TUI reading).
    pub fn read_process(&mut self, pid: i32, start_time: u64) -> ProcessStacks {
        let stacks = self.read_identity(pid, start_time);
        let wait = stacks
            .as_ref()
            .ok()
            .and_then(|threads| wait::process_wait(pid, threads, |f| source_line(pid, f)));
        ProcessStacks {
            pid,
            start_time,
            stacks,
            wait,
        }
    }

    /// Drops every spy but the one of `(pid, start_time)`.
    pub fn keep_only(&mut self, pid: i32, start_time: u64) {
        self.spies.retain(|&key, _| key == (pid, start_time));
    }

    /// Drops the spy of `(pid, start_time)`, if one is kept.
    pub fn forget(&mut self, pid: i32, start_time: u64) {
        self.spies.remove(&(pid, start_time));
    }

    /// Drops the spies of processes that ended (or whose pid now names another process).
    pub fn forget_ended(&mut self) {
        self.spies.retain(|&(pid, start_time), _| {
            proc::read_stat(pid).is_ok_and(|s| s.start_time == start_time)
        });
    }
}

/// The text of a frame's line, read through the process's root (bounded; `None` for
/// `<string>` and files that cannot be read).
pub fn source_line(pid: i32, frame: &PyFrame) -> Option<String> {
    if !frame.file.starts_with('/') || frame.line == 0 {
        return None;
    }
    let path = format!("/proc/{pid}/root{}", frame.file);
    let meta = std::fs::metadata(&path).ok()?;
    if !meta.is_file() || meta.len() > MAX_SOURCE_BYTES {
        return None;
    }
    let text = std::fs::read(&path).ok()?;
    let index = usize::try_from(frame.line).ok()?.checked_sub(1)?;
    let line = text.split(|&b| b == b'\n').nth(index)?;
    Some(String::from_utf8_lossy(line).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_a_guarded_read_is_an_error() {
        assert!(!in_guarded_read());
        let crashed = guarded(|| -> u32 {
            assert!(in_guarded_read());
            panic!("odd memory")
        });
        assert_eq!(crashed, Err(StackError::Crashed("odd memory".into())));
        assert!(!in_guarded_read());
        assert_eq!(guarded(|| 7), Ok(7));
    }

    #[test]
    fn this_test_process_is_not_python() {
        let me = std::process::id() as i32;
        assert_eq!(is_python(me), Ok(false));
        assert_eq!(StackReader::new().read(me), Err(StackError::NotPython));
    }
}
