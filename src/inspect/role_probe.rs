//! Evidence for roles that argv cannot give, gathered for the TUI off its render path: a
//! `Manager` server is a fork or spawn child listening on a `pymp-*/listener-*` socket, and a
//! `multiprocessing.Pool` or `ProcessPoolExecutor` worker is one whose Python stack is in the
//! pool's worker function. The thread answers each request (the fork/spawn children the TUI
//! asks about) with the multiprocessing listener paths of each, from one read of
//! `/proc/net/unix` and, only if any such socket exists on the system, the asked pids' `fd/`
//! links; and with the stack hint of each, read once per process identity and cached (a
//! process not yet in a worker function is read again on later requests, at most
//! [`STACK_READS`] times). `inspect` reads the same facts directly.

use std::collections::HashMap;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::pystack::StackReader;
use crate::model::pystack::StackError;
use crate::model::roles::{StackHint, stack_hint};

/// pid → the multiprocessing listener sockets it listens on (only pids with some).
pub type Listening = HashMap<i32, Vec<String>>;

/// Reads of one process's stack before it is taken for no pool worker (one per request, so
/// about one per second: a worker reaches its worker function well within that).
pub const STACK_READS: u32 = 5;

/// One answer: what the asked processes listen on and what their stacks say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleEvidence {
    pub listening: Listening,
    /// pid → the worker kind its Python stack shows (only pids with one).
    pub stack_hints: HashMap<i32, StackHint>,
}

/// The probing thread; it ends when this is dropped.
pub struct RoleProbe {
    requests: Sender<Vec<(i32, u64)>>,
    answers: Receiver<RoleEvidence>,
}

impl RoleProbe {
    pub fn spawn() -> std::io::Result<RoleProbe> {
        let (requests, asked) = crossbeam_channel::bounded::<Vec<(i32, u64)>>(1);
        let (answer, answers) = crossbeam_channel::bounded(1);
        std::thread::Builder::new()
            .name("role-probe".into())
            .spawn(move || {
                let mut stacks = StackHints::default();
                for procs in asked {
                    let pids: Vec<i32> = procs.iter().map(|&(pid, _)| pid).collect();
                    let evidence = RoleEvidence {
                        listening: probe(&pids),
                        stack_hints: stacks.hints(&procs),
                    };
                    if answer.send(evidence).is_err() {
                        break;
                    }
                }
            })?;
        Ok(RoleProbe { requests, answers })
    }

    /// Asks about `procs` (pid, start time); dropped if a request is still pending (the next
    /// one will come).
    pub fn ask(&self, procs: Vec<(i32, u64)>) {
        if let Err(TrySendError::Disconnected(_)) = self.requests.try_send(procs) {
            tracing::warn!("the role probe thread is gone");
        }
    }

    pub fn answers(&self) -> &Receiver<RoleEvidence> {
        &self.answers
    }
}

/// What is known of one process's stack.
#[derive(Clone, Copy, Debug)]
enum Verdict {
    Final(Option<StackHint>),
    /// Read this many times without a worker frame.
    Pending(u32),
}

/// The stack hints of processes by identity, each read until known.
#[derive(Default)]
struct StackHints {
    reader: StackReader,
    verdicts: HashMap<(i32, u64), Verdict>,
}

impl StackHints {
    fn hints(&mut self, procs: &[(i32, u64)]) -> HashMap<i32, StackHint> {
        self.verdicts.retain(|key, _| procs.contains(key));
        let mut hints = HashMap::new();
        for &(pid, start_time) in procs {
            let verdict = match self.verdicts.get(&(pid, start_time)) {
                Some(Verdict::Final(hint)) => Verdict::Final(*hint),
                Some(Verdict::Pending(reads)) => self.read(pid, start_time, *reads),
                None => self.read(pid, start_time, 0),
            };
            if let Verdict::Final(Some(hint)) = verdict {
                hints.insert(pid, hint);
            }
            self.verdicts.insert((pid, start_time), verdict);
        }
        hints
    }

    fn read(&mut self, pid: i32, start_time: u64, reads: u32) -> Verdict {
        let verdict = match self.reader.read_identity(pid, start_time) {
            Ok(threads) => match stack_hint(&threads) {
                Some(hint) => Verdict::Final(Some(hint)),
                None if reads + 1 >= STACK_READS => Verdict::Final(None),
                None => Verdict::Pending(reads + 1),
            },
            Err(StackError::NotPython | StackError::Vanished | StackError::Permission(_)) => {
                Verdict::Final(None)
            }
            Err(_) if reads + 1 >= STACK_READS => Verdict::Final(None),
            Err(_) => Verdict::Pending(reads + 1),
        };
        if matches!(verdict, Verdict::Final(_)) {
            self.reader.forget(pid, start_time);
        }
        verdict
    }
}

/// The multiprocessing listener sockets of each of `pids`.
pub fn probe(pids: &[i32]) -> Listening {
    let sockets: HashMap<u64, String> = super::unix::listening_sockets()
        .into_iter()
        .filter(|(_, path)| crate::model::roles::is_mp_listener(path))
        .collect();
    if sockets.is_empty() {
        return Listening::new();
    }
    pids.iter()
        .filter_map(|&pid| {
            let paths = super::unix::listening_paths(pid, &sockets);
            (!paths.is_empty()).then_some((pid, paths))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real process, killed and reaped on drop.
    struct Child(std::process::Child);

    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn identity(child: &Child) -> (i32, u64) {
        let pid = child.0.id() as i32;
        let stat = crate::inspect::proc::read_stat(pid).expect("stat");
        (pid, stat.start_time)
    }

    #[test]
    fn a_stack_without_a_worker_frame_is_read_a_bounded_number_of_times() {
        // The interpreter itself, not a pyenv shim's shell.
        let out = std::process::Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3");
        let interpreter = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let python = Child(
            std::process::Command::new(interpreter)
                .args(["-c", "import time; time.sleep(60)"])
                .spawn()
                .expect("python"),
        );
        let sleeper = Child(
            std::process::Command::new("sleep")
                .arg("60")
                .spawn()
                .expect("sleep"),
        );
        let procs = [identity(&python), identity(&sleeper)];
        // Wait (10 s at most) until its stack can be read: past the interpreter's start.
        let mut reader = StackReader::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while reader.read_identity(procs[0].0, procs[0].1).is_err() {
            assert!(std::time::Instant::now() < deadline, "no stack");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let mut hints = StackHints::default();
        for read in 1..STACK_READS {
            assert!(hints.hints(&procs).is_empty());
            let verdict = hints.verdicts.get(&procs[0]).copied();
            assert!(
                matches!(verdict, Some(Verdict::Pending(n)) if n == read),
                "{verdict:?}"
            );
        }
        for _ in 0..2 {
            assert!(hints.hints(&procs).is_empty());
        }
        for key in &procs {
            assert!(
                matches!(hints.verdicts.get(key), Some(Verdict::Final(None))),
                "{key:?}: {:?}",
                hints.verdicts.get(key)
            );
        }
        // Settled verdicts keep no spy; forgotten processes drop their verdicts.
        assert_eq!(hints.reader.cached(), 0);
        hints.hints(&procs[..1]);
        assert_eq!(hints.verdicts.len(), 1);
    }
}
