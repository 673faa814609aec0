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
