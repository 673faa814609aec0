//! Naming what a Python stack waits on: `Barrier.wait at train.py:42`. Pure: it looks at the
//! frames (innermost first) and, for waits that have no Python frame of their own (`time.sleep`,
//! a C-level `lock.acquire()`), at the text of the innermost line.
//!
//! The rule: walk out from the innermost frame through the standard library; the outermost
//! well-known blocking frame there is the primitive the program called (`Pool.map` rather than
//! the `Condition.wait` it ends in), and the first frame outside the standard library is where.

use crate::model::pystack::{PyFrame, ThreadStack, main_thread_first};

/// Well-known blocking functions by file: (qualified name, what to call it).
#[rustfmt::skip]
const KNOWN: &[(&str, &[(&str, &str)])] = &[
    ("/threading.py", &[
        ("Barrier.wait", "Barrier.wait"),
        ("Barrier._wait", "Barrier.wait"),
        ("Condition.wait", "Condition.wait"),
        ("Condition.wait_for", "Condition.wait"),
        ("Event.wait", "Event.wait"),
        ("Semaphore.acquire", "Semaphore.acquire"),
        ("Semaphore.__enter__", "Semaphore.acquire"),
        ("Thread.join", "Thread.join"),
        ("Thread._wait_for_tstate_lock", "Thread.join"),
    ]),
    ("/multiprocessing/synchronize.py", &[
        ("SemLock.__enter__", "Lock.acquire"),
        ("Condition.wait", "Condition.wait"),
        ("Condition.wait_for", "Condition.wait"),
        ("Condition.__enter__", "Condition.acquire"),
        ("Event.wait", "Event.wait"),
    ]),
    ("/multiprocessing/queues.py", &[
        ("Queue.get", "Queue.get"),
        ("Queue.put", "Queue.put"),
        ("JoinableQueue.join", "JoinableQueue.join"),
        ("SimpleQueue.get", "SimpleQueue.get"),
    ]),
    ("/multiprocessing/connection.py", &[
        ("_ConnectionBase.recv", "Connection.recv"),
        ("_ConnectionBase.recv_bytes", "Connection.recv_bytes"),
        ("_ConnectionBase.send", "Connection.send"),
        ("_ConnectionBase.send_bytes", "Connection.send_bytes"),
        ("_ConnectionBase.poll", "Connection.poll"),
        ("Listener.accept", "Listener.accept"),
        ("wait", "connection.wait"),
    ]),
    ("/multiprocessing/process.py", &[
        ("BaseProcess.join", "Process.join"),
    ]),
    ("/multiprocessing/pool.py", &[
        ("Pool.map", "Pool.map"),
        ("Pool.starmap", "Pool.starmap"),
        ("Pool.apply", "Pool.apply"),
        ("Pool.join", "Pool.join"),
        ("ApplyResult.get", "AsyncResult.get"),
        ("ApplyResult.wait", "AsyncResult.wait"),
        ("IMapIterator.next", "Pool.imap"),
    ]),
    ("/multiprocessing/managers.py", &[
        ("BaseProxy._callmethod", "Manager proxy call"),
    ]),
    ("/queue.py", &[
        ("Queue.get", "Queue.get"),
        ("Queue.put", "Queue.put"),
        ("Queue.join", "Queue.join"),
    ]),
    ("/concurrent/futures/_base.py", &[
        ("Future.result", "Future.result"),
        ("Future.exception", "Future.exception"),
        ("wait", "futures.wait"),
        ("as_completed", "futures.as_completed"),
        ("Executor.map.<locals>.result_iterator", "Executor.map"),
    ]),
    ("/concurrent/futures/thread.py", &[
        ("ThreadPoolExecutor.shutdown", "Executor.shutdown"),
    ]),
    ("/concurrent/futures/process.py", &[
        ("ProcessPoolExecutor.shutdown", "Executor.shutdown"),
    ]),
    ("/subprocess.py", &[
        ("Popen.wait", "Popen.wait"),
        ("Popen.communicate", "Popen.communicate"),
        ("run", "subprocess.run"),
        ("call", "subprocess.call"),
        ("check_call", "subprocess.check_call"),
        ("check_output", "subprocess.check_output"),
    ]),
    ("/selectors.py", &[
        ("_PollLikeSelector.select", "select"),
        ("SelectSelector.select", "select"),
    ]),
    ("/socket.py", &[
        ("socket.accept", "socket.accept"),
    ]),
    ("/asyncio/base_events.py", &[
        ("BaseEventLoop.run_forever", "asyncio event loop"),
    ]),
];

/// C-level waits that leave no Python frame: (text on the line, what to call it).
const ON_THE_LINE: &[(&str, &str)] = &[
    ("sleep(", "time.sleep"),
    (".acquire(", "Lock.acquire"),
    ("with ", "Lock.acquire"),
    ("input(", "input"),
];

/// Whether a frame belongs to the standard library rather than to the program.
pub fn is_stdlib(frame: &PyFrame) -> bool {
    let file = frame.file.as_str();
    if file.starts_with("<frozen ") {
        return true;
    }
    if file.contains("-packages/") {
        return false;
    }
    file.contains("/lib/python") || file.contains("/lib64/python")
}

/// The friendly name of a well-known blocking frame. Interpreters before 3.11 give only the
/// bare function name: it matches when it names one entry of that file alone.
fn known_name(frame: &PyFrame) -> Option<&'static str> {
    let (_, entries) = KNOWN
        .iter()
        .find(|(suffix, _)| frame.file.ends_with(suffix))?;
    if let Some((_, name)) = entries.iter().find(|(q, _)| *q == frame.function) {
        return Some(name);
    }
    if frame.function.contains('.') {
        return None;
    }
    let mut bare = entries
        .iter()
        .filter(|(q, _)| q.rsplit('.').next() == Some(frame.function.as_str()));
    match (bare.next(), bare.next()) {
        (Some((_, name)), None) => Some(name),
        _ => None,
    }
}

fn location(frame: &PyFrame) -> String {
    format!("{}:{}", frame.file_name(), frame.line)
}

/// What a stack (innermost first) waits on, or `None` when it is not a wait forkscope knows.
/// `innermost_line` is the source text of the innermost frame's line, when it could be read;
/// it is used only when no standard-library frame says more, so pass it for idle threads only.
pub fn name_wait(frames: &[PyFrame], innermost_line: Option<&str>) -> Option<String> {
    let user = frames.iter().position(|f| !is_stdlib(f));
    let library = &frames[..user.unwrap_or(frames.len())];
    let primitive = library.iter().rev().find_map(known_name);
    if let Some(primitive) = primitive {
        // Where: the user's frame, else the frame that called the primitive.
        let called_from = match user {
            Some(index) => frames.get(index),
            None => library
                .iter()
                .rposition(|f| known_name(f).is_some())
                .and_then(|index| frames.get(index + 1).or(frames.get(index))),
        };
        return Some(match called_from {
            Some(frame) => format!("{primitive} at {}", location(frame)),
            None => primitive.to_string(),
        });
    }
    if !library.is_empty() {
        return None;
    }
    let innermost = frames.first()?;
    let code = innermost_line?.split('#').next().unwrap_or_default();
    let (_, name) = ON_THE_LINE.iter().find(|(text, _)| code.contains(text))?;
    Some(format!("{name} at {}", location(innermost)))
}

/// What a process waits on: its main thread's wait (the thread whose id is the pid), else the
/// first other thread's. `line_of` gives the text of a frame's line, when it can be read.
pub fn process_wait(
    pid: i32,
    threads: &[ThreadStack],
    mut line_of: impl FnMut(&PyFrame) -> Option<String>,
) -> Option<String> {
    main_thread_first(threads, pid).find_map(|thread| {
        let line = if thread.active {
            None
        } else {
            thread.frames.first().and_then(&mut line_of)
        };
        name_wait(&thread.frames, line.as_deref())
    })
}

#[cfg(test)]
#[path = "wait_tests.rs"]
mod tests;
