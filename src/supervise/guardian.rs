//! The guardian and the watchdog: the reason a SIGKILLed forkscope leaves nothing running.
//!
//! Before any thread starts, forkscope forks twice: guardian → watchdog → engine.
//! - The guardian is the original process (the pid the shell and scripts see, in the job's
//!   process group): a tiny single-threaded subreaper that forwards termination signals down
//!   and exits with the session's status.
//! - The watchdog (`watchdog.rs`) leaves the job's process group, so `kill -9 %1` (SIGKILL
//!   to the group: guardian and engine) does not reach it. It is the engine's parent and a
//!   subreaper: whatever the engine leaves when it dies comes to the watchdog, which
//!   SIGKILLs it all and restores the terminal.
//! - The engine goes back into the job's process group (the TUI must be in the terminal's
//!   foreground group) and runs forkscope.
//!
//! Deaths by SIGKILL, and who cleans up (docs/ARCHITECTURE.md lists them with their tests):
//! engine → the watchdog; guardian → the watchdog gets SIGTERM (PR_SET_PDEATHSIG) and passes
//! it on, the engine stops the tree gracefully; guardian and engine → the watchdog;
//! watchdog → the engine gets SIGTERM and stops gracefully, the guardian (now its parent)
//! waits for it and sweeps; watchdog and engine → the guardian sweeps at once; watchdog and
//! guardian → the engine stops gracefully.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::unistd::{ForkResult, Pid, fork, getpgrp, getpid};
use rustix::termios::Termios;

use super::tree::become_subreaper;
use super::watchdog::{
    FORWARDED, SWALLOWED, announce_abrupt_end, exit_code, forward_until_exit, kill_everything_left,
    restore_terminal,
};
use crate::model::ExitStatus;

/// The guardian's pid, set in the engine after the split.
static GUARDIAN: std::sync::OnceLock<i32> = std::sync::OnceLock::new();

/// How long past the stop timeout the guardian waits for an engine whose watchdog was killed
/// (the engine's own SIGKILL sweeps take up to 10 s).
const ENGINE_GRACE: Duration = Duration::from_secs(12);

/// The pid the user sees for this session: the guardian's, or our own without one. Names of
/// session resources (`/dev/shm/forkscope-<pid>-NAME`) use it, so the guardian can clean up.
pub fn session_pid() -> i32 {
    GUARDIAN
        .get()
        .copied()
        .unwrap_or_else(|| std::process::id() as i32)
}

/// What the guardian and the watchdog need to know about the session.
#[derive(Clone, Copy, Debug)]
pub struct GuardOptions {
    /// The TUI will own the terminal: restore it if forkscope dies abruptly.
    pub tui: bool,
    /// The session's `--stop-timeout`.
    pub stop_timeout: Duration,
}

/// Splits into guardian, watchdog and engine. Returns in the engine; the others never return.
///
/// Must be called while the process has a single thread.
pub fn split(options: GuardOptions) -> std::io::Result<()> {
    let mut handled = SigSet::empty();
    handled.add(Signal::SIGCHLD);
    for signal in FORWARDED.into_iter().chain(SWALLOWED) {
        handled.add(signal);
    }
    let mut previous = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&handled), Some(&mut previous))?;
    let saved_terminal = if options.tui {
        rustix::termios::tcgetattr(std::io::stdin()).ok()
    } else {
        None
    };
    become_subreaper()?;
    let guardian = getpid();
    let job = getpgrp();
    let (engine_pid_rx, engine_pid_tx) = nix::unistd::pipe()?;
    // SAFETY: single-threaded at this point (documented precondition), so fork is sound.
    match unsafe { fork() }? {
        ForkResult::Child => {
            drop(engine_pid_rx);
            let _ = GUARDIAN.set(guardian.as_raw());
            super::watchdog::start(
                guardian,
                job,
                engine_pid_tx,
                (&handled, &previous),
                saved_terminal,
            )
        }
        ForkResult::Parent { child } => {
            drop(engine_pid_tx);
            let engine = read_engine_pid(engine_pid_rx);
            guard(
                child,
                engine,
                &handled,
                saved_terminal,
                options.stop_timeout,
            )
        }
    }
}

/// The engine's pid, as the watchdog tells it (none if the watchdog died first).
fn read_engine_pid(pipe: OwnedFd) -> Option<Pid> {
    let mut bytes = [0u8; 4];
    std::fs::File::from(pipe).read_exact(&mut bytes).ok()?;
    Some(Pid::from_raw(i32::from_ne_bytes(bytes)))
}

fn guard(
    watchdog: Pid,
    engine: Option<Pid>,
    handled: &SigSet,
    terminal: Option<Termios>,
    stop_timeout: Duration,
) -> ! {
    let mut status = forward_until_exit(watchdog, handled);
    if let ExitStatus::Signaled { signal, .. } = status {
        // The watchdog was killed. The engine (if alive) got SIGTERM from its parent's death
        // and stops the tree; it is our child now.
        announce_abrupt_end("watchdog", signal);
        let engine_status = engine.and_then(|pid| wait_engine(pid, handled, stop_timeout));
        match engine_status {
            Some(engine_status @ ExitStatus::Exited(_)) => status = engine_status,
            Some(ExitStatus::Signaled { signal, .. }) => {
                restore_terminal(terminal.as_ref());
                announce_abrupt_end("engine", signal);
            }
            _ => restore_terminal(terminal.as_ref()),
        }
    }
    let killed = kill_everything_left();
    if killed > 0 {
        eprint_quiet(&format!(
            "forkscope: guardian killed {killed} leftover process(es)"
        ));
    }
    // Segments of `--shm` (created before the split): the engine removes them when it ends
    // normally; if it was killed, this is the last chance. Only what the session created.
    let removed = super::shm::remove_created_segments();
    if removed > 0 && matches!(status, ExitStatus::Signaled { .. }) {
        eprint_quiet(&format!(
            "forkscope: guardian removed {removed} shared-memory segment(s) of the session"
        ));
    }
    // The control socket of a killed engine (`coord/`): nobody else will remove it.
    super::session_files::remove_socket(getpid().as_raw());
    std::process::exit(exit_code(status))
}

/// Waits for the engine, re-parented to the guardian, to end its graceful stop; its status,
/// or none if it is gone already or takes longer than the stop could.
fn wait_engine(engine: Pid, handled: &SigSet, stop_timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + stop_timeout + ENGINE_GRACE;
    loop {
        let pid = rustix::process::Pid::from_raw(engine.as_raw())?;
        match rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG) {
            Ok(None) => {}
            Ok(Some((_, status))) => return Some(ExitStatus::from_wait_status(status.as_raw())),
            // Not our child: it ended (reaped by the watchdog) before the watchdog died.
            Err(_) => return None,
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        if let Some(signal) = super::watchdog::wait_signal(handled, left)
            && FORWARDED.contains(&signal)
        {
            // Our unreaped child now, so its pid is certainly the engine's.
            let _ = nix::sys::signal::kill(engine, signal);
        }
    }
}

fn eprint_quiet(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}
