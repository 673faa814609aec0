//! Collecting exited children inside the engine: the kernel's events first (so a reaped
//! orphan's birth is known), then the reap, each exit reported after the last output of its
//! pipes; workers go to their restart decision, other descendants become `exit` events (with
//! the `fork`, `exec` and `reparent` a source could not see).

use std::io;

use super::Engine;
use crate::model::{EventBody, TrackSource};
use crate::supervise::reap::Reaped;
use crate::track::kernel::ReapVerdict;

impl Engine {
    /// Reaps exited children and reports them, each after its last output. Only called
    /// while the consumer keeps up: an exit waits for the output before it, and output waits
    /// for the consumer, so meanwhile the zombie stays (the consumer wakes us).
    pub(super) fn reap(&mut self) {
        // Kernel events first: a reaped orphan's birth is then known.
        self.service_kernel();
        let (reaped, more) = if self.ptrace.is_some() {
            self.ptrace_reap()
        } else {
            match self.os.reap() {
                Ok(reaped) => reaped,
                // Interrupted: the next turn (at once) tries again.
                Err(err) if err.kind() == io::ErrorKind::Interrupted => (Vec::new(), true),
                Err(err) => {
                    tracing::warn!("reaping failed: {err}");
                    (Vec::new(), false)
                }
            }
        };
        self.more_to_reap = more;
        if reaped
            .iter()
            .any(|child| !self.by_pid.contains_key(&child.pid))
        {
            // Adopted descendants wrote into some worker's pipes (which, we cannot know):
            // read every pipe once, so their last lines come before their exits.
            self.captures.drain_all(self.poll.registry(), &self.events);
        }
        for child in reaped {
            self.on_reaped(child);
        }
    }

    fn on_reaped(&mut self, child: Reaped) {
        self.orphans_dirty = true;
        self.captures
            .drain_pid(self.poll.registry(), child.pid, &self.events);
        if let Some(worker) = self.by_pid.remove(&child.pid) {
            self.reaped_worker(&child);
            let adopted = self.adoptions_after(child.pid);
            self.worker_exited(worker, child.status);
            for event in adopted {
                self.events.emit(event);
            }
            return;
        }
        let (last_ppid, known) = match self.reaped_descendant(&child) {
            ReapVerdict::Report { ppid, known } => (ppid, known),
            ReapVerdict::AlreadyReported => {
                // A source reported its exit: it was a zombie, and forkscope collected it.
                self.events.emit(EventBody::Reap {
                    pid: child.pid,
                    by: self.me,
                });
                return;
            }
        };
        if known && last_ppid != self.me && last_ppid > 0 {
            // Its parent ended before it: it was adopted by forkscope, the subreaper.
            self.events.emit(EventBody::Reparent {
                pid: child.pid,
                from: last_ppid,
                to: self.me,
            });
        }
        if !known {
            // An orphan that lived and died unseen: report its birth too.
            let stat = child.stat.as_ref();
            self.events.emit(EventBody::Fork {
                pid: child.pid,
                ppid: self.me,
                start_time: stat.map(|s| s.start_time),
                source: TrackSource::Engine,
            });
            if let Some(stat) = stat {
                self.events.emit(EventBody::Exec {
                    pid: child.pid,
                    argv: vec![format!("[{}]", stat.comm)],
                    source: TrackSource::Engine,
                });
            }
        }
        self.events.emit(EventBody::Exit {
            pid: child.pid,
            ppid: self.me,
            status: child.status,
            pool: None,
            worker: None,
            source: TrackSource::Engine,
            zombie: false,
        });
        for event in self.adoptions_after(child.pid) {
            self.events.emit(event);
        }
    }
}
