//! Evidence for roles that argv cannot give, gathered for the TUI off its render path: a
//! `Manager` server is a fork or spawn child listening on a `pymp-*/listener-*` socket. The
//! thread answers each request (the pids the TUI asks about) with the multiprocessing
//! listener paths of each, from one read of `/proc/net/unix` and, only if any such socket
//! exists on the system, the asked pids' `fd/` links. `inspect` reads the same facts directly.

use std::collections::HashMap;

use crossbeam_channel::{Receiver, Sender, TrySendError};

/// pid → the multiprocessing listener sockets it listens on (only pids with some).
pub type Listening = HashMap<i32, Vec<String>>;

/// The probing thread; it ends when this is dropped.
pub struct RoleProbe {
    requests: Sender<Vec<i32>>,
    answers: Receiver<Listening>,
}

impl RoleProbe {
    pub fn spawn() -> std::io::Result<RoleProbe> {
        let (requests, asked) = crossbeam_channel::bounded::<Vec<i32>>(1);
        let (answer, answers) = crossbeam_channel::bounded(1);
        std::thread::Builder::new()
            .name("role-probe".into())
            .spawn(move || {
                for pids in asked {
                    if answer.send(probe(&pids)).is_err() {
                        break;
                    }
                }
            })?;
        Ok(RoleProbe { requests, answers })
    }

    /// Asks about `pids`; dropped if a request is still pending (the next one will come).
    pub fn ask(&self, pids: Vec<i32>) {
        if let Err(TrySendError::Disconnected(_)) = self.requests.try_send(pids) {
            tracing::warn!("the role probe thread is gone");
        }
    }

    pub fn answers(&self) -> &Receiver<Listening> {
        &self.answers
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
