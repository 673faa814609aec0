//! The kernel's process-events connector (`NETLINK_CONNECTOR`, group `CN_IDX_PROC`): the
//! socket, the subscription (`PROC_CN_MCAST_LISTEN`, confirmed by the kernel's ack) and a pure
//! parser that turns datagrams into typed [`ProcEvent`]s and never panics on any bytes.
//!
//! The connector reports every process of the system; filtering to forkscope's tree is the
//! job of [`crate::track::kernel`]; what it never uses (threads, other kinds) the kernel
//! drops before queueing it ([`super::netlink_filter`]), and the rest is read up to 64
//! datagrams per `recvmmsg`. It works only in the initial pid and user namespaces,
//! and older kernels need CAP_NET_ADMIN; [`ProcConnector::open`] says why when it fails.

use std::io;
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, MultiHeaders, NetlinkAddr, recvmmsg};
use rustix::event::{PollFd, PollFlags};
use rustix::net;

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
const RCVBUF: usize = 8 << 20;
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

/// Datagrams one `recvmmsg` takes.
const BATCH: usize = 64;
/// Room for one datagram (a `proc_event` datagram is under 100 bytes).
const SLOT: usize = 512;

/// A subscribed process-events socket (non-blocking, close-on-exec), with the kernel-side
/// filter of [`super::netlink_filter`] attached.
#[derive(Debug)]
pub struct ProcConnector {
    fd: OwnedFd,
    port: u32,
    /// `BATCH` slots of `SLOT` bytes, filled by one `recvmmsg`.
    buffer: Vec<u8>,
}

impl ProcConnector {
    /// Opens the socket, attaches the filter, joins the group and subscribes, waiting for
    /// the kernel's ack.
    pub fn open() -> Result<ProcConnector, ConnectorError> {
        let fd = net::socket_with(
            net::AddressFamily::NETLINK,
            net::SocketType::DGRAM,
            net::SocketFlags::NONBLOCK | net::SocketFlags::CLOEXEC,
            Some(net::netlink::CONNECTOR),
        )
        .map_err(|e| ConnectorError::Socket(e.into()))?;
        // Before the subscription, so that no unfiltered event is ever queued. Without it
        // (a kernel without socket filters) every event is read, as before. Bench hook:
        // `FORKSCOPE_NETLINK_NO_FILTER=1` leaves it out (benches/track_idle_cpu.sh).
        if std::env::var_os("FORKSCOPE_NETLINK_NO_FILTER").is_none()
            && let Err(err) = super::netlink_filter::attach(fd.as_fd())
        {
            tracing::info!("process events: no kernel-side filter: {err}");
        }
        net::bind(&fd, &net::netlink::SocketAddrNetlink::new(0, CN_IDX_PROC))
            .map_err(|e| ConnectorError::Bind(e.into()))?;
        set_receive_buffer(fd.as_fd());
        let port = net::getsockname(&fd)
            .ok()
            .and_then(|a| net::netlink::SocketAddrNetlink::try_from(a).ok())
            .map_or(0, |a| a.pid());
        let mut connector = ProcConnector {
            fd,
            port,
            buffer: vec![0; BATCH * SLOT],
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
        let kernel = net::netlink::SocketAddrNetlink::new(0, 0);
        net::sendto(&self.fd, &msg, net::SendFlags::empty(), &kernel)?;
        Ok(())
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
            let mut pfd = [PollFd::new(&self.fd, PollFlags::IN)];
            let timeout = rustix::event::Timespec::try_from(left).ok();
            let _ = rustix::event::poll(&mut pfd, timeout.as_ref());
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

    /// Reads up to `budget` datagrams without blocking (in batches of up to 64 per system
    /// call), appending their events to `out`.
    pub fn drain(&mut self, out: &mut Vec<ProcMessage>, budget: usize) -> io::Result<Drained> {
        let mut status = Drained::default();
        let mut left = budget;
        // Each pass reads at least one datagram or returns: bounded by `budget`.
        while left > 0 {
            let want = left.min(BATCH);
            let received = {
                let mut slots: Vec<[IoSliceMut<'_>; 1]> = self
                    .buffer
                    .chunks_mut(SLOT)
                    .take(want)
                    .map(|slot| [IoSliceMut::new(slot)])
                    .collect();
                let mut headers = MultiHeaders::<NetlinkAddr>::preallocate(want, None);
                // nix: rustix has no recvmmsg.
                match recvmmsg(
                    self.fd.as_raw_fd(),
                    &mut headers,
                    slots.iter_mut(),
                    MsgFlags::MSG_DONTWAIT,
                    None,
                ) {
                    Ok(results) => results
                        .map(|r| (r.bytes, r.address.map(|a| a.pid())))
                        .collect::<Vec<_>>(),
                    Err(Errno::EAGAIN) => return Ok(status),
                    // Each costs budget too, so the loop stays bounded.
                    Err(Errno::EINTR) => {
                        left -= 1;
                        continue;
                    }
                    Err(Errno::ENOBUFS) => {
                        status.overflowed = true;
                        left -= 1;
                        continue;
                    }
                    Err(err) => return Err(err.into()),
                }
            };
            if received.is_empty() {
                return Ok(status);
            }
            left = left.saturating_sub(received.len());
            for (slot, (bytes, from)) in self.buffer.chunks(SLOT).zip(&received) {
                // Only the kernel (port 0) speaks for the connector.
                if *from != Some(0) {
                    continue;
                }
                out.extend(parse_datagram(&slot[..(*bytes).min(SLOT)]));
            }
            if received.len() < want {
                return Ok(status);
            }
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
fn set_receive_buffer(fd: BorrowedFd<'_>) {
    let size = std::env::var("FORKSCOPE_NETLINK_RCVBUF")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|v| *v > 0)
        .unwrap_or(RCVBUF);
    if net::sockopt::set_socket_recv_buffer_size_force(fd, size).is_err() {
        let _ = net::sockopt::set_socket_recv_buffer_size(fd, size);
    }
}

#[cfg(test)]
#[path = "netlink_tests.rs"]
mod tests;
