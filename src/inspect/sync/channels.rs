//! Pipes and sockets between the processes of a tree: the ends each process holds (from
//! descriptor tables), socket peers and queues (sock_diag), bytes waiting in a pipe
//! (`FIONREAD` on a borrowed duplicate of a read end, `pidfd_getfd`), and the threads blocked
//! on each. The assembly is pure; [`pipe_bytes`] is the one live read.

use std::collections::{BTreeMap, HashMap};

use crate::model::sync::{Channel, ChannelBlocked, ChannelEnd, ProcessWaits, WaitKind};

use super::fds::{FdTable, FdTarget};
use super::sockdiag::UnixSocket;

/// Bytes waiting in the pipe behind `fd` of `pid`: a duplicate of the descriptor is taken
/// with `pidfd_getfd` (needs ptrace access, as for our own descendants), asked `FIONREAD`,
/// and closed at once. `None` when not allowed or gone.
pub fn pipe_bytes(pid: i32, fd: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let pid = rustix::process::Pid::from_raw(pid)?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()?;
    let dup =
        rustix::process::pidfd_getfd(&pidfd, fd, rustix::process::PidfdGetfdFlags::empty()).ok()?;
    rustix::io::ioctl_fionread(&dup).ok()
}

/// The key of a socket's channel and its peer inode.
fn socket_key(inode: u64, unix: &HashMap<u32, UnixSocket>) -> (u64, Option<u64>) {
    let peer = u32::try_from(inode)
        .ok()
        .and_then(|i| unix.get(&i))
        .and_then(|s| s.peer)
        .map(u64::from);
    match peer {
        Some(p) => (inode.min(p), Some(inode.max(p))),
        None => (inode, None),
    }
}

/// Every pipe and socket the tables hold, with their ends, queues and blocked threads.
/// `pipe_bytes(pid, fd)` answers FIONREAD for a pipe end.
pub fn assemble(
    tables: &BTreeMap<i32, FdTable>,
    unix: &HashMap<u32, UnixSocket>,
    waits: &[ProcessWaits],
    pipe_bytes: &mut dyn FnMut(i32, i32) -> Option<u64>,
) -> Vec<Channel> {
    let mut channels: BTreeMap<(bool, u64), Channel> = BTreeMap::new();
    for (pid, table) in tables {
        for (fd, entry) in table {
            let (is_socket, key, peer, inode) = match entry.target {
                FdTarget::Pipe(i) => (false, i, None, i),
                FdTarget::Socket(i) => {
                    let (key, peer) = socket_key(i, unix);
                    (true, key, peer, i)
                }
                _ => continue,
            };
            let channel = channels.entry((is_socket, key)).or_insert_with(|| Channel {
                inode: key,
                kind: if is_socket { "socket" } else { "pipe" }.into(),
                peer_inode: peer,
                ends: Vec::new(),
                bytes_waiting: None,
                blocked: Vec::new(),
            });
            channel.ends.push(ChannelEnd {
                pid: *pid,
                fd: *fd,
                mode: entry.mode.unwrap_or("?").to_string(),
                inode,
            });
        }
    }
    let mut out: Vec<Channel> = channels.into_values().collect();
    for channel in &mut out {
        finish(channel, unix, waits, tables, pipe_bytes);
    }
    out
}

fn finish(
    channel: &mut Channel,
    unix: &HashMap<u32, UnixSocket>,
    waits: &[ProcessWaits],
    tables: &BTreeMap<i32, FdTable>,
    pipe_bytes: &mut dyn FnMut(i32, i32) -> Option<u64>,
) {
    let inodes: Vec<u64> = std::iter::once(channel.inode)
        .chain(channel.peer_inode)
        .collect();
    if channel.kind == "socket" {
        let known = |i: &u64| u32::try_from(*i).ok().and_then(|i| unix.get(&i));
        let both_held = inodes
            .iter()
            .all(|i| channel.ends.iter().any(|e| e.inode == *i));
        if known(&channel.inode).is_some() {
            channel.kind = if channel.peer_inode.is_some() && both_held {
                "socketpair"
            } else {
                "unix-socket"
            }
            .into();
            channel.bytes_waiting = inodes
                .iter()
                .map(|i| known(i).and_then(|s| s.rqueue).map(u64::from))
                .try_fold(0u64, |sum, q| q.map(|q| sum + q));
        }
    } else {
        let reader = channel
            .ends
            .iter()
            .find(|e| e.mode == "r")
            .or(channel.ends.first());
        channel.bytes_waiting = reader.and_then(|e| pipe_bytes(e.pid, e.fd));
    }
    for process in waits {
        let table = tables.get(&process.pid);
        for thread in &process.threads {
            let d = &thread.blocked_on.details;
            let direct = d.inode.is_some_and(|i| inodes.contains(&i))
                && matches!(
                    thread.blocked_on.kind,
                    WaitKind::PipeRead
                        | WaitKind::PipeWrite
                        | WaitKind::SocketRecv
                        | WaitKind::SocketSend
                );
            let polled = !d.fds.is_empty()
                && d.fds.iter().any(|fd| {
                    table
                        .and_then(|t| t.get(fd))
                        .is_some_and(|f| match f.target {
                            FdTarget::Pipe(i) | FdTarget::Socket(i) => inodes.contains(&i),
                            _ => false,
                        })
                });
            if direct || polled {
                channel.blocked.push(ChannelBlocked {
                    pid: process.pid,
                    tid: thread.tid,
                    kind: thread.blocked_on.kind.clone(),
                });
            }
        }
    }
}

/// The pids that can end a wait on `inode` (the other end's holders): for a pipe read, the
/// writers; a pipe write, the readers; a socket, the holders of its peer (or, without a
/// known peer, the other holders of it).
pub fn peers_of(channels: &[Channel], kind: &WaitKind, inode: u64, waiter: i32) -> Vec<i32> {
    let Some(channel) = channels
        .iter()
        .find(|c| c.inode == inode || c.peer_inode == Some(inode))
    else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = channel
        .ends
        .iter()
        .filter(|e| match kind {
            WaitKind::PipeRead => e.mode.contains('w'),
            WaitKind::PipeWrite => e.mode.contains('r'),
            _ => match channel.peer_inode {
                Some(_) => e.inode != inode,
                None => e.pid != waiter,
            },
        })
        .map(|e| e.pid)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

#[cfg(test)]
#[path = "channels_tests.rs"]
mod tests;
