//! How a pool is launched (`docs/config.md`): the pools it waits for (`depends_on`), the
//! readiness check that says it is up (`ready`), and the user and group its workers run as
//! (`user`/`group`, applied in the child between `clone` and `execve`: `launch.rs`).

use std::path::PathBuf;
use std::time::Duration;

/// A pool's launch rules; the default waits for nothing, checks nothing, keeps our identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LaunchRules {
    /// Pools that must be started before this one starts (and stop after it).
    pub depends_on: Vec<String>,
    pub ready: Option<ReadyCheck>,
    pub identity: Option<Identity>,
}

/// A readiness check: tried every `interval` until it passes or `timeout` passes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadyCheck {
    pub probe: Probe,
    pub timeout: Duration,
    pub interval: Duration,
    /// Where a relative file is looked for and a command runs.
    pub dir: PathBuf,
}

/// What a readiness check tries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// A TCP connection to this address is accepted.
    Tcp(std::net::SocketAddr),
    /// This file exists.
    File(PathBuf),
    /// `sh -c` this line exits 0.
    Command(String),
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Probe::Tcp(addr) => write!(f, "tcp {addr}"),
            Probe::File(path) => write!(f, "file {}", path.display()),
            Probe::Command(line) => write!(f, "command {line:?}"),
        }
    }
}

/// The user and group workers run as (resolved when the config is read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (the user's, from the group database).
    pub groups: Vec<u32>,
}
