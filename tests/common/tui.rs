//! Driving the real forkscope binary inside a real terminal (tmux): start a shell, type a
//! command, send keys, read the screen. Each test gets its own tmux server socket; the
//! server (and so the shell and everything typed into it) carries a marker, and when the
//! server is killed at drop nothing carrying it may be left.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A tmux server with one window running bash.
pub struct Tmux {
    socket: String,
    pub dir: tempfile::TempDir,
    /// Carried by the server and everything started in it.
    pub marker: String,
}

impl Tmux {
    pub fn start(width: u16, height: u16) -> Tmux {
        let socket = format!(
            "forkscope-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let tmux = Tmux {
            socket,
            dir,
            marker: super::marker("tmux"),
        };
        let mut command = Command::new("tmux");
        // The tmux server's shell runs forkscope as users run it.
        let status = super::as_users_run(&mut command)
            .env(super::MARKER_VAR, &tmux.marker)
            .args([
                "-L",
                &tmux.socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "main",
            ])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .args(["bash", "--norc", "--noprofile"])
            .env("PS1", "$ ")
            .env_remove("NO_COLOR")
            .status()
            .expect("tmux must be installed (apt-get install tmux)");
        assert!(status.success(), "tmux new-session failed");
        tmux
    }

    /// Types a line of shell and presses Enter.
    pub fn type_line(&self, line: &str) {
        self.keys(&["-l", line]);
        self.keys(&["Enter"]);
    }

    /// `tmux send-keys` with raw key names (`Enter`, `Escape`, `y`, `-l text`).
    pub fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "main"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "main"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen satisfies `test`; panics with the last screen after `secs`.
    pub fn wait_screen(&self, what: &str, secs: u64, test: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let screen = self.screen();
            if test(&screen) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Appends every byte the pane's program writes to `path` (`tmux pipe-pane`).
    pub fn log_output(&self, path: &Path) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "pipe-pane", "-o", "-t", "main"])
            .arg(format!("cat >> '{}'", path.display()))
            .status()
            .expect("tmux pipe-pane");
        assert!(status.success());
    }

    /// The pane's title (what an OSC 0/2 sequence sets).
    pub fn pane_title(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "display-message", "-p", "-t", "main"])
            .arg("#{pane_title}")
            .output()
            .expect("tmux display-message");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Resizes the window (the terminal forkscope runs in).
    pub fn resize(&self, width: u16, height: u16) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "resize-window", "-t", "main"])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .status()
            .expect("tmux resize-window");
        assert!(status.success());
    }

    /// Closes the terminal as a user closing the window does: the pty goes away and
    /// everything in it gets the hangup.
    pub fn kill_session(&self) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "kill-session", "-t", "main"])
            .status()
            .expect("tmux kill-session");
        assert!(status.success());
    }

    /// The pane's terminal modes: (alternate screen on, any mouse reporting on, cursor shown).
    pub fn modes(&self) -> (bool, bool, bool) {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "display-message", "-p", "-t", "main"])
            .arg("#{alternate_on} #{mouse_any_flag} #{mouse_button_flag} #{mouse_standard_flag} #{cursor_flag}")
            .output()
            .expect("tmux display-message");
        let flags: Vec<bool> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(|flag| flag == "1")
            .collect();
        assert_eq!(flags.len(), 5, "tmux flags: {out:?}");
        (flags[0], flags[1] || flags[2] || flags[3], flags[4])
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .stderr(std::process::Stdio::null())
            .status();
        super::procs::report_leaks(&self.marker, super::procs::LEAK_GRACE);
    }
}

/// The status a shell printed with `echo EXIT:$?`, once it did: the typed command itself
/// shows `EXIT:$?`, never `EXIT:` and a digit.
pub fn shell_exit(screen: &str) -> Option<i32> {
    screen.match_indices("EXIT:").find_map(|(at, _)| {
        let digits: String = screen[at + 5..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    })
}

/// The shell line that prints [`RESTORED`] when the terminal's modes equal those saved: the
/// typed line shows `TERMINAL-''RESTORED`, so only the output matches.
pub const ECHO_RESTORED: &str = "echo TERMINAL-''RESTORED";
/// What [`ECHO_RESTORED`] prints.
pub const RESTORED: &str = "TERMINAL-RESTORED";

pub fn forkscope() -> &'static str {
    env!("CARGO_BIN_EXE_forkscope")
}

/// Reads a `--record` file (it is flushed after every batch of events).
pub fn recorded(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// Waits until the recording holds at least `count` events of `kind`; returns those.
pub fn wait_recorded(path: &Path, kind: &str, count: usize, secs: u64) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let found: Vec<Value> = recorded(path)
            .into_iter()
            .filter(|e| e["kind"] == kind)
            .collect();
        if found.len() >= count {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {count} {kind} events in {}: {:?}",
            path.display(),
            recorded(path)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `sleep` duration unique to this test, so its processes can be found (and must be gone).
pub fn marker() -> String {
    format!(
        "3{}.{}{}",
        COUNTER.fetch_add(1, Ordering::SeqCst) + 100,
        std::process::id(),
        7
    )
}
