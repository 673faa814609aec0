//! The ptrace source (`--track ptrace`): every worker calls `PTRACE_TRACEME` before its exec,
//! so the engine thread is the tracer of the whole tree from the first instruction; options
//! `TRACEFORK|TRACEVFORK|TRACECLONE|TRACEEXEC|EXITKILL` then attach every descendant
//! automatically. In this mode the engine's reaping goes through [`Engine::ptrace_reap`],
//! which handles ptrace stops as well as exits (a tracer's `wait` sees both):
//!
//! - fork/vfork/clone event stops → `fork` (threads, from `CLONE_THREAD`, are excluded);
//! - exec event stops → `exec` with argv from `/proc`;
//! - a tracee's death is reported to the tracer with its exact wait status → `exit` for
//!   descendants that are not the engine's own children (those are reaped and reported by
//!   the engine, as in every mode);
//! - a new tracee's initial SIGSTOP is swallowed, and held until its parent's fork event is
//!   read, so its `fork` always comes first;
//! - other signals are delivered as they came. A stop signal (SIGSTOP, SIGTSTP...) that
//!   would put a tracee in group-stop is resumed at once: with `TRACEME`-style tracing a
//!   stopped tracee would not see a later SIGCONT (documented in `docs/tracking.md`).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use nix::sys::ptrace::{self, Options};

use super::Engine;
use crate::inspect::proc::{read_cmdline, read_stat};
use crate::model::{EventBody, ExitStatus, TrackSource};
use crate::supervise::reap::{BATCH, Peeked, Reaped, peek_with};
use crate::track::kernel::LiveProc;
use crate::track::zombies::{ZombieSet, adopted_children};

/// What the tracer remembers between stops.
#[derive(Debug, Default)]
pub(crate) struct Tracer {
    /// Workers stopped (or about to stop) at their first exec, waiting for the options.
    awaiting_options: HashSet<i32>,
    /// New tasks announced by their parent's event whose initial SIGSTOP is still to come.
    expect_initial: HashSet<i32>,
    /// New tasks stopped before their parent's fork event was read, since when.
    held: HashMap<i32, Instant>,
    /// Processes followed (workers and reported births): pid → parent.
    processes: HashMap<i32, i32>,
    /// Threads: tid → tgid.
    threads: HashMap<i32, i32>,
    /// Exits reported from a tracer notification: zombies of their real parent, until it
    /// collects them (gone from `/proc`) or the engine reaps the same identity (an orphan
    /// re-parented as a zombie).
    reported: ZombieSet,
    /// Processes that forked (whose end may leave orphans to look for).
    parents: HashSet<i32>,
}

impl Tracer {
    /// The processes followed (workers and every reported descendant).
    pub(crate) fn followed(&self) -> Vec<i32> {
        self.processes.keys().copied().collect()
    }

    /// A worker was spawned with `PTRACE_TRACEME`.
    pub(crate) fn adopt_worker(&mut self, pid: i32) {
        self.awaiting_options.insert(pid);
    }

    /// The engine reaped `pid`: `None` if a tracer notification already reported its exit,
    /// else its parent and whether its birth was reported.
    pub(crate) fn on_reaped(&mut self, pid: i32, start: Option<u64>) -> Option<(i32, bool)> {
        if self.reported.collected_by_engine(pid, start) {
            return None;
        }
        self.parents.remove(&pid);
        Some(match self.processes.remove(&pid) {
            Some(parent) => (parent, true),
            None => (0, false),
        })
    }

    pub(crate) fn zombies_waiting(&self) -> usize {
        self.reported.len()
    }

    /// The reported zombies (see [`ZombieSet`]).
    pub(crate) fn zombies(&mut self) -> &mut ZombieSet {
        &mut self.reported
    }

    /// `parent` ended: its followed children adopted by another process since, as
    /// `reparent` events (their parent is updated).
    pub(crate) fn adopt_children_of(&mut self, parent: i32) -> Vec<EventBody> {
        if !self.parents.remove(&parent) {
            return Vec::new();
        }
        let children: Vec<(i32, Option<u64>)> = self
            .processes
            .iter()
            .filter(|(_, p)| **p == parent)
            .map(|(pid, _)| (*pid, None))
            .collect();
        let processes = &mut self.processes;
        adopted_children(&LiveProc, parent, children, |pid, to| {
            processes.insert(pid, to);
        })
    }
}

fn options() -> Options {
    Options::PTRACE_O_TRACEFORK
        | Options::PTRACE_O_TRACEVFORK
        | Options::PTRACE_O_TRACECLONE
        | Options::PTRACE_O_TRACEEXEC
        | Options::PTRACE_O_EXITKILL
}

fn task(pid: i32) -> nix::unistd::Pid {
    nix::unistd::Pid::from_raw(pid)
}

/// Resumes a stopped tracee, delivering `signal` (0: none).
///
/// Raw libc: nix's `ptrace::cont` takes its `Signal` enum, which has no real-time signals
/// (a tracee's SIGRTMIN would be lost), and rustix has no ptrace.
fn resume(pid: i32, signal: i32) {
    // SAFETY: PTRACE_CONT on a tracee of this thread, stopped; errors (it died) are harmless.
    unsafe {
        libc::ptrace(
            libc::PTRACE_CONT,
            pid,
            std::ptr::null_mut::<libc::c_void>(),
            signal as libc::c_long as *mut libc::c_void,
        )
    };
}

fn event_message(pid: i32) -> Option<i32> {
    ptrace::getevent(task(pid))
        .ok()
        .map(|message| message as i32)
}

/// A group-stop (as opposed to a signal-delivery-stop): GETSIGINFO fails with EINVAL.
fn is_group_stop(pid: i32) -> bool {
    ptrace::getsiginfo(task(pid)) == Err(nix::errno::Errno::EINVAL)
}

/// Consumes the state change of task `pid` just peeked at; its raw wait status.
fn consume(pid: i32) -> Option<i32> {
    use rustix::process::{Pid, WaitOptions, waitpid};
    // rustix has no `__WALL` (tracees that are threads need it); it passes the bits on to
    // wait4 as they are.
    let all = WaitOptions::from_bits_retain(libc::__WALL as u32);
    match waitpid(Pid::from_raw(pid), WaitOptions::NOHANG | all) {
        Ok(Some((task, status))) if task.as_raw_nonzero().get() == pid => Some(status.as_raw()),
        _ => None,
    }
}

/// The thread-group id of a live task, from `/proc/TID/status`.
fn tgid_of(tid: i32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

impl Engine {
    /// Releases new tracees held for their parent's fork event longer than a second: the
    /// parent was killed between the fork and its event stop (SIGKILL skips the stop). They
    /// are reported from `/proc` and let run. Called at every sample tick.
    pub(super) fn release_held_tracees(&mut self) {
        let Some(tracer) = self.ptrace.as_mut() else {
            return;
        };
        let stale: Vec<i32> = tracer
            .held
            .iter()
            .filter(|(_, since)| since.elapsed() > Duration::from_secs(1))
            .map(|(pid, _)| *pid)
            .collect();
        for pid in stale {
            tracer.held.remove(&pid);
            let stat = read_stat(pid).ok();
            let thread = tgid_of(pid).is_some_and(|tgid| tgid != pid);
            if thread {
                tracer.threads.insert(pid, tgid_of(pid).unwrap_or(pid));
            } else if let Some(stat) = stat {
                tracer.processes.insert(pid, stat.ppid);
                self.events.emit(EventBody::Fork {
                    pid,
                    ppid: stat.ppid,
                    start_time: Some(stat.start_time),
                    source: TrackSource::Ptrace,
                });
            }
            resume(pid, 0);
        }
    }

    /// Reaps in ptrace mode: handles every stop and exit a tracer's `wait` reports and
    /// returns the engine's own children that ended (as `reap_exited` does).
    pub(super) fn ptrace_reap(&mut self) -> (Vec<Reaped>, bool) {
        let mut reaped = Vec::new();
        for _ in 0..BATCH * 4 {
            let Peeked::Changed { pid, code } =
                peek_with(libc::WEXITED | libc::WSTOPPED | libc::__WALL)
            else {
                return (reaped, false);
            };
            let exited = matches!(code, libc::CLD_EXITED | libc::CLD_KILLED | libc::CLD_DUMPED);
            let stat = if exited { read_stat(pid).ok() } else { None };
            let Some(raw) = consume(pid) else {
                // Not consumable (e.g. a stop this wait does not take): leave it for now
                // rather than peek at it again and again.
                return (reaped, false);
            };
            if libc::WIFSTOPPED(raw) {
                self.on_ptrace_stop(pid, raw);
            } else if (libc::WIFEXITED(raw) || libc::WIFSIGNALED(raw))
                && let Some(child) = self.on_tracee_death(pid, raw, stat)
            {
                reaped.push(child);
                if reaped.len() >= BATCH {
                    return (reaped, true);
                }
            }
        }
        (reaped, true)
    }

    fn on_tracee_death(
        &mut self,
        pid: i32,
        raw: i32,
        stat: Option<crate::inspect::proc::ProcStat>,
    ) -> Option<Reaped> {
        let tracer = self.ptrace.as_mut()?;
        tracer.expect_initial.remove(&pid);
        tracer.held.remove(&pid);
        if tracer.threads.remove(&pid).is_some() {
            return None; // a thread ended
        }
        let status = ExitStatus::from_wait_status(raw);
        let ours =
            stat.as_ref().is_some_and(|s| s.ppid == self.me) || self.by_pid.contains_key(&pid);
        if ours {
            // The engine's own child: this wait reaped it; the engine reports it.
            return Some(Reaped { pid, status, stat });
        }
        let parent = tracer.processes.remove(&pid);
        let ppid = stat.as_ref().map_or(parent.unwrap_or(0), |s| s.ppid);
        // The tracer's wait consumed the death notice; the real parent collects the zombie.
        tracer
            .reported
            .insert(pid, stat.as_ref().map(|s| s.start_time), ppid);
        self.events.emit(EventBody::Exit {
            pid,
            ppid,
            status,
            pool: None,
            worker: None,
            source: TrackSource::Ptrace,
            zombie: true,
        });
        // Its children were re-parented before the tracer was told.
        for adopted in tracer.adopt_children_of(pid) {
            self.events.emit(adopted);
        }
        None
    }

    fn on_ptrace_stop(&mut self, pid: i32, raw: i32) {
        let me = self.me;
        let Some(tracer) = self.ptrace.as_mut() else {
            resume(pid, 0);
            return;
        };
        let signal = libc::WSTOPSIG(raw);
        let event = (raw >> 16) & 0xff;
        if event != 0 {
            match event {
                libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE => {
                    if let Some(child) = event_message(pid) {
                        let parent = tracer.threads.get(&pid).copied().unwrap_or(pid);
                        let thread = event == libc::PTRACE_EVENT_CLONE
                            && tgid_of(child).is_some_and(|tgid| tgid != child);
                        if thread {
                            tracer.threads.insert(child, parent);
                        } else {
                            tracer.processes.insert(child, parent);
                            tracer.parents.insert(parent);
                            let reused = tracer.reported.pid_reused(child);
                            if let Some(reap) = reused {
                                self.events.emit(reap);
                            }
                            self.events.emit(EventBody::Fork {
                                pid: child,
                                ppid: parent,
                                start_time: read_stat(child).ok().map(|s| s.start_time),
                                source: TrackSource::Ptrace,
                            });
                        }
                        if tracer.held.remove(&child).is_some() {
                            resume(child, 0);
                        } else {
                            tracer.expect_initial.insert(child);
                        }
                    }
                }
                libc::PTRACE_EVENT_EXEC => {
                    if let Some(former) = event_message(pid)
                        && former != pid
                    {
                        tracer.threads.remove(&former);
                    }
                    let argv = read_cmdline(pid)
                        .ok()
                        .filter(|a| !a.is_empty())
                        .unwrap_or_else(|| vec!["[?]".into()]);
                    self.events.emit(EventBody::Exec {
                        pid,
                        argv,
                        source: TrackSource::Ptrace,
                    });
                }
                _ => {}
            }
            resume(pid, 0);
            return;
        }
        if signal == libc::SIGTRAP && tracer.awaiting_options.remove(&pid) {
            // A worker at its first exec: from now on, follow everything it starts.
            let _ = ptrace::setoptions(task(pid), options());
            tracer.processes.insert(pid, me);
            resume(pid, 0);
            return;
        }
        if signal == libc::SIGSTOP {
            // A new tracee's initial stop: swallowed. Before its parent's fork event names
            // it, it waits, so that its `fork` comes before anything it does.
            if tracer.expect_initial.remove(&pid) {
                resume(pid, 0);
                return;
            }
            let known = tracer.processes.contains_key(&pid) || tracer.threads.contains_key(&pid);
            if !known {
                tracer.held.insert(pid, Instant::now());
                return;
            }
        }
        let stop_signal = matches!(
            signal,
            libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
        );
        if stop_signal && is_group_stop(pid) {
            resume(pid, 0);
            return;
        }
        resume(pid, signal);
    }
}
