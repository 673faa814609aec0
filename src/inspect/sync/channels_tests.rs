//! Channel assembly from fake descriptor tables.

use super::*;
use crate::inspect::sync::fds::Fd;
use crate::model::sync::{BlockedOn, ThreadWait};

fn table(entries: &[(i32, FdTarget, &'static str)]) -> FdTable {
    entries
        .iter()
        .map(|(fd, t, m)| {
            (
                *fd,
                Fd {
                    target: t.clone(),
                    mode: Some(m),
                },
            )
        })
        .collect()
}

fn waiting(pid: i32, kind: WaitKind, inode: u64) -> ProcessWaits {
    let mut b = BlockedOn::new(kind);
    b.details.inode = Some(inode);
    ProcessWaits {
        pid,
        blocked_on: b.clone(),
        threads: vec![ThreadWait {
            tid: pid,
            blocked_on: b,
        }],
    }
}

#[test]
fn pipe_ends_readers_writers_and_blocked() {
    let tables = BTreeMap::from([
        (
            10,
            table(&[(3, FdTarget::Pipe(500), "r"), (4, FdTarget::Pipe(500), "w")]),
        ),
        (11, table(&[(5, FdTarget::Pipe(500), "r")])),
        (
            12,
            table(&[
                (7, FdTarget::Pipe(500), "w"),
                (1, FdTarget::Path("/dev/null".into()), "w"),
            ]),
        ),
    ]);
    let waits = vec![waiting(11, WaitKind::PipeRead, 500)];
    let mut asked = Vec::new();
    let channels = assemble(&tables, &HashMap::new(), &waits, &mut |pid, fd| {
        asked.push((pid, fd));
        Some(12)
    });
    assert_eq!(channels.len(), 1);
    let c = &channels[0];
    assert_eq!((c.kind.as_str(), c.inode, c.ends.len()), ("pipe", 500, 4));
    assert_eq!(c.bytes_waiting, Some(12));
    assert_eq!(asked, vec![(10, 3)]);
    assert_eq!(c.blocked.len(), 1);
    assert_eq!(c.blocked[0].pid, 11);
    assert_eq!(
        peers_of(&channels, &WaitKind::PipeRead, 500, 11),
        vec![10, 12]
    );
    assert_eq!(
        peers_of(&channels, &WaitKind::PipeWrite, 500, 12),
        vec![10, 11]
    );
    assert!(peers_of(&channels, &WaitKind::PipeRead, 999, 11).is_empty());
}

#[test]
fn socketpairs_are_one_channel_with_a_peer() {
    let tables = BTreeMap::from([
        (10, table(&[(3, FdTarget::Socket(601), "rw")])),
        (11, table(&[(4, FdTarget::Socket(600), "rw")])),
        (12, table(&[(5, FdTarget::Socket(700), "rw")])),
    ]);
    let unix = HashMap::from([
        (
            600,
            UnixSocket {
                inode: 600,
                sock_type: 1,
                peer: Some(601),
                rqueue: Some(0),
                wqueue: Some(0),
            },
        ),
        (
            601,
            UnixSocket {
                inode: 601,
                sock_type: 1,
                peer: Some(600),
                rqueue: Some(7),
                wqueue: Some(0),
            },
        ),
    ]);
    let waits = vec![waiting(11, WaitKind::SocketRecv, 600)];
    let channels = assemble(&tables, &unix, &waits, &mut |_, _| None);
    assert_eq!(channels.len(), 2);
    let pair = channels.iter().find(|c| c.inode == 600).unwrap();
    assert_eq!(
        (pair.kind.as_str(), pair.peer_inode),
        ("socketpair", Some(601))
    );
    assert_eq!(pair.bytes_waiting, Some(7));
    assert_eq!(pair.blocked[0].pid, 11);
    assert_eq!(
        peers_of(&channels, &WaitKind::SocketRecv, 600, 11),
        vec![10]
    );
    let other = channels.iter().find(|c| c.inode == 700).unwrap();
    assert_eq!((other.kind.as_str(), other.bytes_waiting), ("socket", None));
}

#[test]
fn reads_bytes_in_own_pipe() {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let (r, w) = rustix::pipe::pipe().unwrap();
    std::fs::File::from(w).write_all(b"abc").unwrap();
    let me = std::process::id() as i32;
    assert_eq!(pipe_bytes(me, r.as_raw_fd()), Some(3));
    assert_eq!(pipe_bytes(me, 100_000), None);
    assert_eq!(pipe_bytes(-1, 0), None);
}
