//! The control socket (`docs/protocol.md`): one Unix socket per running session, served by
//! a tokio runtime on its own thread. It reaches the engine only through the `Action`
//! channel (in) and a tap on the event stream (out, [`hub`]), so the mio engine loop is
//! unchanged. On it: `ctl` requests, event subscriptions, hosted barriers ([`barrier`]),
//! program marks and watched shared objects ([`watch`]).

pub mod barrier;
pub mod client;
pub mod ctl;
pub mod hub;
mod line_reader;
pub mod protocol;
pub mod python;
mod ring;
mod server;
pub mod status;
pub mod watch;

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{Notify, mpsc};

use crate::supervise::channel::{EventTx, Tap};
use crate::supervise::{ActionTx, session_files};
use hub::{Hub, SharedEvent};

/// A bound control socket whose service has not started yet (the engine needs its tap
/// first; clients that connect meanwhile wait in the listen backlog).
pub struct Service {
    listener: UnixListener,
    path: PathBuf,
    hub: Arc<Hub>,
    lifecycle: mpsc::UnboundedReceiver<Arc<SharedEvent>>,
    title: String,
}

/// The running service; dropping it stops the thread and removes the socket file.
pub struct Running {
    path: PathBuf,
    shutdown: Arc<Notify>,
    thread: Option<JoinHandle<()>>,
}

impl Service {
    /// Binds `<socket dir>/<session_pid>.sock` (mode 0600).
    pub fn bind(session_pid: i32, title: &str) -> io::Result<Service> {
        let path = session_files::socket_path(session_pid)?;
        Service::bind_at(path, title)
    }

    /// Binds at `path`; a stale socket file there is replaced.
    pub fn bind_at(path: PathBuf, title: &str) -> io::Result<Service> {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        let (hub, lifecycle) = Hub::new();
        Ok(Service {
            listener,
            path,
            hub,
            lifecycle,
            title: title.to_string(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tap to give the engine (`EngineConfig::tap`).
    pub fn tap(&self) -> Tap {
        Tap(self.hub.clone())
    }

    /// Starts serving on its own thread.
    pub fn serve(
        self,
        actions: ActionTx,
        emitter: EventTx,
        engine_pid: i32,
    ) -> io::Result<Running> {
        let shutdown = Arc::new(Notify::new());
        let path = self.path.clone();
        let context = server::Context {
            hub: self.hub,
            actions,
            emitter,
            engine_pid,
            session_pid: session_files_pid(&self.path),
            title: self.title,
            socket: self.path.clone(),
        };
        let listener = self.listener;
        listener.set_nonblocking(true)?;
        let lifecycle = self.lifecycle;
        let stop = shutdown.clone();
        let thread = std::thread::Builder::new()
            .name("coord".into())
            .spawn(move || server::run(listener, context, lifecycle, stop))?;
        Ok(Running {
            path,
            shutdown,
            thread: Some(thread),
        })
    }
}

/// The session pid a socket is named after (`<pid>.sock`), or 0.
fn session_files_pid(path: &Path) -> i32 {
    path.file_stem()
        .and_then(|stem| stem.to_str())
        .and_then(|stem| stem.parse().ok())
        .unwrap_or(0)
}

impl Running {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}
