//! The kernel's process-events connector (`NETLINK_CONNECTOR`, group `CN_IDX_PROC`): the
//! socket, the subscription (`PROC_CN_MCAST_LISTEN`, confirmed by the kernel's ack) and a pure
//! parser that turns datagrams into typed [`ProcEvent`]s and never panics on any bytes.
//!
//! The connector reports every process of the system; filtering to forkscope's tree is the
//! job of [`crate::track::kernel`]. It works only in the initial pid and user namespaces,
//! and older kernels need CAP_NET_ADMIN; [`ProcConnector::open`] says why when it fails.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

const NETLINK_CONNECTOR: libc::c_int = 11;
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_CN_MCAST_IGNORE: u32 = 2;
const NLMSG_HDRLEN: usize = 16;
const CN_MSG_LEN: usize = 20;
const NLMSG_DONE: u16 = 3;
const NLMSG_ERROR: u16 = 2;

/// `proc_event.what` values forkscope uses.
pub const PROC_EVENT_NONE: u32 = 0;
pub const PROC_EVENT_FORK: u32 = 0x1;
pub const PROC_EVENT_EXEC: u32 = 0x2;
pub const PROC_EVENT_EXIT: u32 = 0x8000_0000;

/// Socket receive buffer asked for (the kernel may grant less without privileges).
const RCVBUF: libc::c_int = 8 << 20;
/// How long the kernel has to acknowledge the subscription.
const ACK_TIMEOUT: Duration = Duration::from_millis(500);

/// One process event, as the kernel describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcEvent {
    /// The kernel's answer to a (un)subscription; `err` is an errno, 0 for success.
    Ack { seq: u32, ack: u32, err: u32 },
    /// A task was created. `child_pid != child_tgid` means a thread.
    Fork {
        parent_pid: i32,
        parent_tgid: i32,
        child_pid: i32,
        child_tgid: i32,
    },
    /// A process replaced its program.
    Exec { pid: i32, tgid: i32 },
    /// A task ended. `pid != tgid` means a thread. `exit_code` is the raw wait status;
    /// `exit_signal` is the signal the parent gets (SIGCHLD), not the one that killed it.
    /// The parent fields are missing on kernels before 4.18.
    Exit {
        pid: i32,
        tgid: i32,
        exit_code: u32,
        exit_signal: u32,
        parent_pid: Option<i32>,
        parent_tgid: Option<i32>,
    },
    /// Any other kind (uid, gid, sid, ptrace, comm, coredump changes).
    Other { what: u32 },
}

/// One event and when it happened (`CLOCK_MONOTONIC`, nanoseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcMessage {
    pub timestamp_ns: u64,
    pub event: ProcEvent,
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    let raw = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes([raw[0], raw[1]]))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let raw = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes([raw[0], raw[1], raw[2], raw[3]]))
}

fn i32_at(bytes: &[u8], at: usize) -> Option<i32> {
    u32_at(bytes, at).map(|v| v as i32)
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    let raw = bytes.get(at..at.checked_add(8)?)?;
    let mut buf = [0u8; 8];
    buf.copy_from_slice(raw);
    Some(u64::from_ne_bytes(buf))
}

/// Parses one datagram from the connector socket: zero or more netlink messages, each
/// carrying one connector message. Malformed or foreign parts are skipped, never a panic.
pub fn parse_datagram(bytes: &[u8]) -> Vec<ProcMessage> {
    let mut out = Vec::new();
    let mut offset = 0usize;
    // Each message is at least a header long, so this loop is bounded by the length.
    while offset + NLMSG_HDRLEN <= bytes.len() {
        let Some(len) = u32_at(bytes, offset).map(|l| l as usize) else {
            break;
        };
        let Some(kind) = u16_at(bytes, offset + 4) else {
            break;
        };
        if len < NLMSG_HDRLEN || len > bytes.len() - offset {
            break;
        }
        let payload = &bytes[offset + NLMSG_HDRLEN..offset + len];
        if kind == NLMSG_DONE
            && let Some(message) = parse_connector(payload)
        {
            out.push(message);
        } else if kind == NLMSG_ERROR {
            // Not sent on this socket in practice; ignored.
        }
        // NLMSG_ALIGN: messages are padded to 4 bytes.
        let step = (len + 3) & !3;
        offset = match offset.checked_add(step) {
            Some(next) => next,
            None => break,
        };
    }
    out
}

/// Parses a `cn_msg` holding a `proc_event`.
fn parse_connector(cn: &[u8]) -> Option<ProcMessage> {
    let idx = u32_at(cn, 0)?;
    let val = u32_at(cn, 4)?;
    if idx != CN_IDX_PROC || val != CN_VAL_PROC {
        return None;
    }
    let seq = u32_at(cn, 8)?;
    let ack = u32_at(cn, 12)?;
    let len = u16_at(cn, 16)? as usize;
    let data = cn.get(CN_MSG_LEN..CN_MSG_LEN.checked_add(len)?)?;
    parse_proc_event(data, seq, ack)
}

/// Parses a `struct proc_event`: what, cpu, timestamp, then the union at offset 16.
fn parse_proc_event(data: &[u8], seq: u32, ack: u32) -> Option<ProcMessage> {
    let what = u32_at(data, 0)?;
    let timestamp_ns = u64_at(data, 8)?;
    const D: usize = 16;
    let event = match what {
        PROC_EVENT_NONE => ProcEvent::Ack {
            seq,
            ack,
            err: u32_at(data, D)?,
        },
        PROC_EVENT_FORK => ProcEvent::Fork {
            parent_pid: i32_at(data, D)?,
            parent_tgid: i32_at(data, D + 4)?,
            child_pid: i32_at(data, D + 8)?,
            child_tgid: i32_at(data, D + 12)?,
        },
        PROC_EVENT_EXEC => ProcEvent::Exec {
            pid: i32_at(data, D)?,
            tgid: i32_at(data, D + 4)?,
        },
        PROC_EVENT_EXIT => ProcEvent::Exit {
            pid: i32_at(data, D)?,
            tgid: i32_at(data, D + 4)?,
            exit_code: u32_at(data, D + 8)?,
            exit_signal: u32_at(data, D + 12)?,
            parent_pid: i32_at(data, D + 16),
            parent_tgid: i32_at(data, D + 20),
        },
        other => ProcEvent::Other { what: other },
    };
    Some(ProcMessage {
        timestamp_ns,
        event,
    })
}

/// Builds the datagram that (un)subscribes: nlmsghdr + cn_msg + `op` (+ event filter).
fn control_message(port: u32, seq: u32, op: u32, filter: Option<u32>) -> Vec<u8> {
    let data_len: usize = if filter.is_some() { 8 } else { 4 };
    let total = NLMSG_HDRLEN + CN_MSG_LEN + data_len;
    let mut msg = Vec::with_capacity(total);
    msg.extend_from_slice(&(total as u32).to_ne_bytes());
    msg.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    msg.extend_from_slice(&0u16.to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&port.to_ne_bytes());
    msg.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    msg.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    // The kernel answers with `ack + 1`: our seq identifies our ack among other listeners'.
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&(data_len as u16).to_ne_bytes());
    msg.extend_from_slice(&0u16.to_ne_bytes());
    msg.extend_from_slice(&op.to_ne_bytes());
    if let Some(events) = filter {
        msg.extend_from_slice(&events.to_ne_bytes());
    }
    msg
}

/// Why the connector cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("cannot open a NETLINK_CONNECTOR socket: {0}")]
    Socket(io::Error),
    #[error(
        "cannot join the kernel's process-events group: {0} (older kernels need CAP_NET_ADMIN)"
    )]
    Bind(io::Error),
    #[error("cannot subscribe to process events: {0}")]
    Send(io::Error),
    #[error("the kernel refused the process-events subscription: {0}")]
    Refused(io::Error),
    #[error(
        "the kernel did not acknowledge the process-events subscription within {0:?} \
         (kernel without CONFIG_PROC_EVENTS, or not in the initial pid/user namespace)"
    )]
    NoAck(Duration),
}

/// What one [`ProcConnector::drain`] call found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// The kernel dropped events since the last call (ENOBUFS).
    pub overflowed: bool,
    /// The budget ran out before the socket was empty: call again soon.
    pub more: bool,
}

/// A subscribed process-events socket (non-blocking, close-on-exec).
#[derive(Debug)]
pub struct ProcConnector {
    fd: OwnedFd,
    port: u32,
    buffer: Vec<u8>,
}

impl ProcConnector {
    /// Opens the socket, joins the group and subscribes, waiting for the kernel's ack.
    pub fn open() -> Result<ProcConnector, ConnectorError> {
        // SAFETY: plain socket(2) call.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                NETLINK_CONNECTOR,
            )
        };
        if raw < 0 {
            return Err(ConnectorError::Socket(io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_nl is plain data; zeroed is a valid value.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        addr.nl_groups = CN_IDX_PROC;
        let addr_len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        // SAFETY: `addr` is a valid sockaddr_nl of `addr_len` bytes.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                addr_len,
            )
        };
        if rc < 0 {
            return Err(ConnectorError::Bind(io::Error::last_os_error()));
        }
        set_receive_buffer(fd.as_raw_fd());
        let mut bound: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        let mut len = addr_len;
        // SAFETY: getsockname writes at most `len` bytes into `bound`.
        unsafe {
            libc::getsockname(
                fd.as_raw_fd(),
                (&mut bound as *mut libc::sockaddr_nl).cast(),
                &mut len,
            )
        };
        let mut connector = ProcConnector {
            fd,
            port: bound.nl_pid,
            buffer: vec![0; 64 * 1024],
        };
        let seq = std::process::id().rotate_left(16)
            ^ (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0));
        connector
            .send(seq, PROC_CN_MCAST_LISTEN, None)
            .map_err(ConnectorError::Send)?;
        connector.wait_ack(seq)?;
        // Kernels since 6.6 can filter by event type; older ones ignore this message.
        let wanted = PROC_EVENT_FORK | PROC_EVENT_EXEC | PROC_EVENT_EXIT;
        let _ = connector.send(seq.wrapping_add(1), PROC_CN_MCAST_LISTEN, Some(wanted));
        Ok(connector)
    }

    fn send(&self, seq: u32, op: u32, filter: Option<u32>) -> io::Result<()> {
        let msg = control_message(self.port, seq, op, filter);
        // SAFETY: sockaddr_nl is plain data; zeroed addresses the kernel (nl_pid 0).
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `msg` and `kernel` are valid for the lengths given.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    fn wait_ack(&mut self, seq: u32) -> Result<(), ConnectorError> {
        let deadline = Instant::now() + ACK_TIMEOUT;
        let mut messages = Vec::new();
        // Bounded by the deadline; each pass waits for readability.
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ConnectorError::NoAck(ACK_TIMEOUT));
            }
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, left.as_millis().max(1) as libc::c_int) };
            messages.clear();
            if let Err(err) = self.drain(&mut messages, 256) {
                return Err(ConnectorError::Refused(err));
            }
            for message in &messages {
                // Recent kernels put their own counter in `seq`; `ack` is ours plus one.
                if let ProcEvent::Ack { ack, err, .. } = message.event
                    && ack == seq.wrapping_add(1)
                {
                    return if err == 0 {
                        Ok(())
                    } else {
                        Err(ConnectorError::Refused(io::Error::from_raw_os_error(
                            err as i32,
                        )))
                    };
                }
            }
        }
    }

    /// Reads up to `budget` datagrams without blocking, appending their events to `out`.
    pub fn drain(&mut self, out: &mut Vec<ProcMessage>, budget: usize) -> io::Result<Drained> {
        let mut status = Drained::default();
        for _ in 0..budget {
            // SAFETY: sockaddr_nl is plain data.
            let mut from: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
            let mut from_len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
            // SAFETY: the buffer and address are valid for the lengths given.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    self.buffer.as_mut_ptr().cast(),
                    self.buffer.len(),
                    0,
                    (&mut from as *mut libc::sockaddr_nl).cast(),
                    &mut from_len,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                match err.raw_os_error() {
                    Some(libc::EAGAIN) => return Ok(status),
                    Some(libc::EINTR) => continue,
                    Some(libc::ENOBUFS) => {
                        status.overflowed = true;
                        continue;
                    }
                    _ => return Err(err),
                }
            }
            // Only the kernel (port 0) speaks for the connector.
            if from.nl_pid != 0 {
                continue;
            }
            let len = (n as usize).min(self.buffer.len());
            out.extend(parse_datagram(&self.buffer[..len]));
        }
        status.more = true;
        Ok(status)
    }
}

impl Drop for ProcConnector {
    fn drop(&mut self) {
        let _ = self.send(0, PROC_CN_MCAST_IGNORE, None);
    }
}

impl AsRawFd for ProcConnector {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for ProcConnector {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl mio::event::Source for ProcConnector {
    fn register(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        mio::unix::SourceFd(&self.fd.as_raw_fd()).register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        mio::unix::SourceFd(&self.fd.as_raw_fd()).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        mio::unix::SourceFd(&self.fd.as_raw_fd()).deregister(registry)
    }
}

/// Test hook: `FORKSCOPE_NETLINK_RCVBUF=BYTES` shrinks the receive buffer so that tests can
/// make the kernel drop events and check the reconciliation.
fn set_receive_buffer(fd: RawFd) {
    let size = std::env::var("FORKSCOPE_NETLINK_RCVBUF")
        .ok()
        .and_then(|v| v.parse::<libc::c_int>().ok())
        .filter(|v| *v > 0)
        .unwrap_or(RCVBUF);
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    for option in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: `size` is a valid c_int option value.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                (&size as *const libc::c_int).cast(),
                len,
            )
        };
        if rc == 0 {
            return;
        }
    }
}

#[cfg(test)]
#[path = "netlink_tests.rs"]
mod tests;
