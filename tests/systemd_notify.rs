//! systemd `Type=notify` through the real binary: the test binds a unix datagram socket and
//! gives it as NOTIFY_SOCKET. `READY=1` comes once every pool is started (after the spawn
//! events, and not before a pool's `start_secs`), `STATUS=` lines describe the pools,
//! `WATCHDOG=1` comes at half of WATCHDOG_USEC, `STOPPING=1` when the session stops.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::*;

/// The socket a service manager would listen on.
struct Manager {
    socket: UnixDatagram,
    path: String,
    _dir: tempfile::TempDir,
    /// Every datagram received so far.
    seen: Vec<String>,
}

impl Manager {
    fn bind() -> Manager {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        Manager {
            socket,
            path: path.to_string_lossy().into_owned(),
            _dir: dir,
            seen: Vec::new(),
        }
    }

    /// Datagrams until one contains `line`, within `timeout`; panics without it.
    fn until(&mut self, line: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.seen.push(text.clone());
                if text.lines().any(|l| l == line) {
                    return text;
                }
            }
        }
        panic!("no {line} within {timeout:?}; got {:?}", self.seen);
    }

    /// Every datagram already waiting.
    fn drain(&mut self) {
        self.socket.set_nonblocking(true).expect("nonblocking");
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = self.socket.recv(&mut buf) {
            self.seen
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        self.socket.set_nonblocking(false).expect("blocking");
    }

    fn count(&self, line: &str) -> usize {
        self.seen
            .iter()
            .filter(|d| d.lines().any(|l| l == line))
            .count()
    }
}

fn start(manager: &Manager, marker_name: &str, args: &[&str], watchdog_usec: &str) -> Forkscope {
    let m = marker(marker_name);
    Forkscope::start_with(
        &m,
        args,
        StartOptions {
            env: vec![
                ("NOTIFY_SOCKET".into(), manager.path.clone()),
                ("WATCHDOG_USEC".into(), watchdog_usec.into()),
            ],
            ..StartOptions::default()
        },
    )
}

#[test]
fn up_headless_is_ready_after_every_pool_started_and_pings_the_watchdog() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("forkscope.toml");
    std::fs::write(
        &config,
        "[[pool]]\nname = \"web\"\ncommand = [\"sleep\", \"30\"]\nworkers = 2\n\n\
         [[pool]]\nname = \"slow\"\ncommand = [\"sleep\", \"30\"]\nstart_secs = 2\n",
    )
    .expect("write config");
    let mut manager = Manager::bind();
    let config = config.to_string_lossy().into_owned();
    // WATCHDOG_USEC = 0.4 s: a ping every 0.2 s.
    let mut fs = start(
        &manager,
        "notifyup",
        &["up", "-f", &config, "--headless"],
        "400000",
    );
    fs.wait_kind("spawn", 3, secs(10.0));
    manager.drain();
    // `slow` must stay up 2 s: the test saw its spawn well within that (the margin).
    assert_eq!(manager.count("READY=1"), 0, "{:?}", manager.seen);
    let ready = manager.until("READY=1", secs(10.0));
    assert!(
        ready.contains("STATUS=web 2/2, slow 1/1 running"),
        "{ready:?}"
    );
    assert!(
        manager
            .seen
            .iter()
            .any(|d| d.contains("STATUS=starting: web 2/2, slow 0/1 running")
                || d.contains("STATUS=starting: web 2/2, slow 1/1 running")),
        "{:?}",
        manager.seen
    );
    fs.signal(libc::SIGTERM);
    manager.until("STOPPING=1", secs(10.0));
    let (code, events) = fs.finish_clean(secs(15.0));
    assert_eq!(code, 1, "{}", dump(&events));
    manager.drain();
    assert_eq!(manager.count("READY=1"), 1, "{:?}", manager.seen);
    // At least 2 s from start to READY at one ping per 0.2 s: 5 pings or more (10 expected).
    let pings = manager.count("WATCHDOG=1");
    assert!(pings >= 5, "{pings} watchdog pings: {:?}", manager.seen);
}

#[test]
fn run_headless_notifies_too_and_without_a_watchdog_never_pings() {
    let mut manager = Manager::bind();
    let mut fs = start(
        &manager,
        "notifyrun",
        &["run", "-n", "2", "--headless", "--", "sleep", "30"],
        "",
    );
    let ready = manager.until("READY=1", secs(10.0));
    assert!(ready.contains("STATUS=sleep 2/2 running"), "{ready:?}");
    fs.wait_kind("spawn", 2, secs(5.0));
    fs.signal(libc::SIGTERM);
    let stopping = manager.until("STOPPING=1", secs(10.0));
    assert!(stopping.contains("STATUS=stopping: "), "{stopping:?}");
    fs.finish_clean(secs(15.0));
    manager.drain();
    assert_eq!(manager.count("WATCHDOG=1"), 0, "{:?}", manager.seen);
}
