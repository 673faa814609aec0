//! Unix socket peers and queue lengths through netlink `sock_diag` (`NETLINK_SOCK_DIAG`,
//! `SOCK_DIAG_BY_FAMILY` for `AF_UNIX` with `UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN`): one dump of
//! every Unix socket of the network namespace, parsed by a pure, never-panicking parser.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

const NETLINK_SOCK_DIAG: libc::c_int = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const UDIAG_SHOW_PEER: u32 = 0x4;
const UDIAG_SHOW_RQLEN: u32 = 0x10;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_RQLEN: u16 = 4;
const NLMSG_HDR: usize = 16;
/// `struct unix_diag_msg`: family, type, state, pad, ino, cookie[2].
const UNIX_DIAG_MSG: usize = 16;

/// What sock_diag says about one Unix socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnixSocket {
    pub inode: u32,
    /// `SOCK_STREAM` 1, `SOCK_DGRAM` 2, `SOCK_SEQPACKET` 5.
    pub sock_type: u8,
    pub peer: Option<u32>,
    /// Bytes queued for reading (a listener: connections waiting).
    pub rqueue: Option<u32>,
    pub wqueue: Option<u32>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// What one datagram of the dump held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub sockets: Vec<UnixSocket>,
    /// `NLMSG_DONE` was seen (the dump is complete).
    pub done: bool,
    /// An `NLMSG_ERROR` with this errno.
    pub error: Option<i32>,
}

/// Parses one datagram of a sock_diag dump. Never panics, whatever the bytes.
pub fn parse(bytes: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    let mut at = 0;
    while let (Some(len), Some(kind)) = (u32_at(bytes, at), u16_at(bytes, at + 4)) {
        let len = len as usize;
        if len < NLMSG_HDR || at.saturating_add(len) > bytes.len() {
            break;
        }
        let body = &bytes[at + NLMSG_HDR..at + len];
        match kind {
            NLMSG_DONE => parsed.done = true,
            NLMSG_ERROR => {
                let errno = u32_at(body, 0).map(|e| -(e as i32)).unwrap_or(0);
                if errno != 0 {
                    parsed.error = Some(errno);
                }
            }
            SOCK_DIAG_BY_FAMILY => {
                if let Some(s) = parse_socket(body) {
                    parsed.sockets.push(s);
                }
            }
            _ => {}
        }
        at += align4(len);
    }
    parsed
}

fn parse_socket(body: &[u8]) -> Option<UnixSocket> {
    let mut socket = UnixSocket {
        sock_type: *body.get(1)?,
        inode: u32_at(body, 4)?,
        ..UnixSocket::default()
    };
    let mut at = UNIX_DIAG_MSG;
    while let (Some(len), Some(kind)) = (u16_at(body, at), u16_at(body, at + 2)) {
        let len = len as usize;
        if len < 4 || at + len > body.len() {
            break;
        }
        let payload = &body[at + 4..at + len];
        match kind {
            UNIX_DIAG_PEER => socket.peer = u32_at(payload, 0).filter(|p| *p != 0),
            UNIX_DIAG_RQLEN => {
                socket.rqueue = u32_at(payload, 0);
                socket.wqueue = u32_at(payload, 4);
            }
            _ => {}
        }
        at += align4(len);
    }
    Some(socket)
}

/// The dump request: nlmsghdr + `struct unix_diag_req`.
fn request(seq: u32) -> Vec<u8> {
    let len = (NLMSG_HDR + 24) as u32;
    let mut b = Vec::with_capacity(len as usize);
    b.extend(len.to_ne_bytes());
    b.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    b.extend(((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
    b.extend(seq.to_ne_bytes());
    b.extend(0u32.to_ne_bytes());
    b.push(libc::AF_UNIX as u8); // sdiag_family
    b.push(0); // sdiag_protocol
    b.extend(0u16.to_ne_bytes()); // pad
    b.extend(u32::MAX.to_ne_bytes()); // udiag_states: all
    b.extend(0u32.to_ne_bytes()); // udiag_ino
    b.extend((UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN).to_ne_bytes());
    b.extend(u32::MAX.to_ne_bytes()); // cookie: none
    b.extend(u32::MAX.to_ne_bytes());
    b
}

/// Dumps every Unix socket: inode → facts. Bounded to 2 s and 1,000,000 sockets.
pub fn dump() -> io::Result<HashMap<u32, UnixSocket>> {
    // SAFETY: plain socket(2); the fd is owned at once.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            NETLINK_SOCK_DIAG,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    let timeout = libc::timeval {
        tv_sec: 0,
        tv_usec: 500_000,
    };
    // SAFETY: setsockopt with a timeval we own.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    let req = request(1);
    // SAFETY: sending a buffer we own to the kernel (the default destination of netlink).
    let sent = unsafe { libc::send(sock.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut found = HashMap::new();
    let mut buf = vec![0u8; 64 << 10];
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && found.len() < 1_000_000 {
        // SAFETY: receiving into a buffer we own.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        let parsed = parse(&buf[..n as usize]);
        if let Some(errno) = parsed.error {
            return Err(io::Error::from_raw_os_error(errno));
        }
        for s in parsed.sockets {
            found.insert(s.inode, s);
        }
        if parsed.done || n == 0 {
            return Ok(found);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        "sock_diag dump did not finish",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_socketpair_peer_and_queue() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        use std::io::Write;
        (&a).write_all(b"hello").unwrap();
        let ino = |s: &std::os::unix::net::UnixStream| {
            use std::os::unix::fs::MetadataExt;
            let path = format!("/proc/self/fd/{}", s.as_raw_fd());
            std::fs::metadata(path).unwrap().ino() as u32
        };
        let all = dump().unwrap();
        let (ia, ib) = (ino(&a), ino(&b));
        assert_eq!(all[&ia].peer, Some(ib));
        assert_eq!(all[&ib].peer, Some(ia));
        assert_eq!(all[&ib].rqueue, Some(5));
        assert_eq!(all[&ia].sock_type, 1);
        drop(b);
    }

    #[test]
    fn parses_a_crafted_message() {
        let mut msg = Vec::new();
        let body_len = UNIX_DIAG_MSG + 8 + 12;
        msg.extend(((NLMSG_HDR + body_len) as u32).to_ne_bytes());
        msg.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        msg.extend([0u8; 10]);
        msg.extend([1u8, 1, 1, 0]);
        msg.extend(77u32.to_ne_bytes());
        msg.extend([0u8; 8]);
        msg.extend(8u16.to_ne_bytes());
        msg.extend(UNIX_DIAG_PEER.to_ne_bytes());
        msg.extend(78u32.to_ne_bytes());
        msg.extend(12u16.to_ne_bytes());
        msg.extend(UNIX_DIAG_RQLEN.to_ne_bytes());
        msg.extend(3u32.to_ne_bytes());
        msg.extend(0u32.to_ne_bytes());
        msg.extend(16u32.to_ne_bytes());
        msg.extend(NLMSG_DONE.to_ne_bytes());
        msg.extend([0u8; 10]);
        let parsed = parse(&msg);
        assert!(parsed.done);
        assert_eq!(
            parsed.sockets,
            vec![UnixSocket {
                inode: 77,
                sock_type: 1,
                peer: Some(78),
                rqueue: Some(3),
                wqueue: Some(0)
            }]
        );
        assert_eq!(request(1).len(), 40);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = parse(&bytes);
        }
    }
}
