//! The Python hooks' side in forkscope: a private 0700 directory holding the bootstrap
//! (`sitecustomize.py`, shipped in the binary) and a Unix socket where Python processes of the
//! tree hand over the read ends of pipes of their own. A small thread accepts them, checks
//! the sender (`SO_PEERCRED`: same user, the pid it claims, a descendant of the engine) and
//! passes the pipes to the engine, which captures them under that pid.

use std::io::{self, IoSliceMut, Write};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

use super::tree::descends_from;
use super::worker_io::HooksPaths;
use crate::model::Stream;

/// The bootstrap written into the private directory.
const SITECUSTOMIZE: &str = include_str!("python_hooks/sitecustomize.py");

/// A process's own pipes, accepted and waiting to be captured.
pub struct OwnPipes {
    pub pid: i32,
    pub pipes: Vec<(Stream, OwnedFd)>,
}

/// The running hooks server; removes its directory when dropped.
pub struct HooksServer {
    paths: HooksPaths,
    received: Receiver<OwnPipes>,
    listener: Option<OwnedFd>,
}

impl HooksServer {
    /// Creates the directory and the socket and starts the accepting thread. `wake` is
    /// called after each accepted registration (the engine's poll waker).
    pub fn start(engine_pid: i32, wake: Arc<dyn Fn() + Send + Sync>) -> io::Result<HooksServer> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("forkscope-hooks-{engine_pid}-{nanos:08x}"));
        // Fails if it exists: the directory is ours alone.
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let paths = HooksPaths {
            socket: dir.join("output.sock"),
            dir,
        };
        let server = (|| {
            std::fs::write(paths.dir.join("sitecustomize.py"), SITECUSTOMIZE)?;
            let listener = UnixListener::bind(&paths.socket)?;
            let shutdown_handle = OwnedFd::from(listener.try_clone()?);
            let (tx, rx) = crossbeam_channel::unbounded();
            std::thread::Builder::new()
                .name("python-hooks".into())
                .spawn(move || serve(listener, engine_pid, tx, wake))?;
            Ok::<_, io::Error>((shutdown_handle, rx))
        })();
        match server {
            Ok((listener, received)) => Ok(HooksServer {
                paths,
                received,
                listener: Some(listener),
            }),
            Err(err) => {
                let _ = std::fs::remove_dir_all(&paths.dir);
                Err(err)
            }
        }
    }

    pub fn paths(&self) -> &HooksPaths {
        &self.paths
    }

    /// Registrations accepted since the last call.
    pub fn take(&self) -> impl Iterator<Item = OwnPipes> + '_ {
        self.received.try_iter()
    }
}

impl Drop for HooksServer {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.take() {
            // Wakes the thread's accept with an error: it ends.
            let _ = rustix::net::shutdown(&listener, rustix::net::Shutdown::Both);
        }
        let _ = std::fs::remove_dir_all(&self.paths.dir);
    }
}

fn serve(
    listener: UnixListener,
    engine_pid: i32,
    tx: Sender<OwnPipes>,
    wake: Arc<dyn Fn() + Send + Sync>,
) {
    for connection in listener.incoming() {
        let Ok(mut stream) = connection else {
            return;
        };
        let accepted = match receive(&stream, engine_pid) {
            Ok(own) => {
                let sent = tx.send(own).is_ok();
                wake();
                sent
            }
            Err(err) => {
                tracing::debug!("python hook refused: {err}");
                false
            }
        };
        // The process switches to its pipes only after this answer.
        let _ = stream.write_all(if accepted { b"1" } else { b"0" });
    }
}

/// One registration: `"PID FD,FD"` with one pipe read end per listed fd (1 stdout, 2 stderr).
fn receive(stream: &UnixStream, engine_pid: i32) -> io::Result<OwnPipes> {
    let refuse = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut bytes = [0u8; 64];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(
        stream,
        &mut [IoSliceMut::new(&mut bytes)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fds: Vec<OwnedFd> = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    let text = std::str::from_utf8(&bytes[..got.bytes.min(bytes.len())])
        .map_err(|_| refuse("not UTF-8"))?;
    let (pid, streams) = parse_request(text).ok_or_else(|| refuse("malformed request"))?;
    let peer = rustix::net::sockopt::socket_peercred(stream)?;
    if peer.pid.as_raw_nonzero().get() != pid || peer.uid != rustix::process::getuid() {
        return Err(refuse("the sender is not the process it claims to be"));
    }
    if streams.len() != fds.len() {
        return Err(refuse("fd count does not match"));
    }
    for fd in &fds {
        let stat = rustix::fs::fstat(fd)?;
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::Fifo {
            return Err(refuse("not a pipe"));
        }
    }
    if !descends_from(pid, engine_pid) {
        return Err(refuse("not a process of the supervised tree"));
    }
    Ok(OwnPipes {
        pid,
        pipes: streams.into_iter().zip(fds).collect(),
    })
}

/// `"1234 1,2"` -> (1234, [stdout, stderr]).
fn parse_request(text: &str) -> Option<(i32, Vec<Stream>)> {
    let (pid, fds) = text.trim().split_once(' ')?;
    let pid: i32 = pid.parse().ok().filter(|p| *p > 0)?;
    let mut streams = Vec::new();
    for fd in fds.split(',') {
        let stream = match fd {
            "1" => Stream::Stdout,
            "2" => Stream::Stderr,
            _ => return None,
        };
        if streams.contains(&stream) {
            return None;
        }
        streams.push(stream);
    }
    Some((pid, streams))
}

/// Whether the bootstrap should be offered: some pool wants it and has pipes to share.
pub fn wanted(pools: &[super::PoolSpec]) -> bool {
    pools.iter().any(|p| p.io.python_hooks && !p.io.pty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn requests() {
        assert_eq!(
            parse_request("12 1,2"),
            Some((12, vec![Stream::Stdout, Stream::Stderr]))
        );
        assert_eq!(parse_request("12 2"), Some((12, vec![Stream::Stderr])));
        assert_eq!(parse_request("12 1,1"), None);
        assert_eq!(parse_request("-3 1"), None);
        assert_eq!(parse_request("12 3"), None);
        assert_eq!(parse_request("12"), None);
    }

    proptest! {
        #[test]
        fn garbage_never_panics(text in ".{0,64}") {
            let _ = parse_request(&text);
        }
    }
}
