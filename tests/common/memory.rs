//! Watching the memory of a process under test from a thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::status_kb;

/// Watches a process's memory from a thread: the peak of `VmHWM`, and a safety valve that
/// SIGKILLs it above `kill_above_kb` (a runaway must not take the machine's memory).
pub struct MemoryWatch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<(u64, bool)>>,
}

impl MemoryWatch {
    /// Starts watching `pid` (a process this test started, carrying its marker).
    pub fn start(pid: i32, kill_above_kb: u64) -> MemoryWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let (mut peak, mut killed) = (0, false);
                while !stop.load(Ordering::SeqCst) {
                    let Some(hwm) = status_kb(pid, "VmHWM") else {
                        break;
                    };
                    peak = peak.max(hwm);
                    if status_kb(pid, "VmRSS").unwrap_or(0) > kill_above_kb && !killed {
                        // SAFETY: kill(2) on a process of this test (see `start`).
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                        killed = true;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                (peak, killed)
            })
        };
        MemoryWatch {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops watching; returns (peak VmHWM in KiB, whether the valve killed the process).
    pub fn finish(mut self) -> (u64, bool) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or((0, false))
    }
}
