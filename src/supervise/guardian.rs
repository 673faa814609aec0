//! The guardian: the reason a SIGKILLed forkscope leaves nothing running.
//!
//! Before any thread starts, forkscope forks. The original process (the pid the shell and
//! scripts see) becomes the guardian: a tiny single-threaded subreaper that forwards
//! termination signals to the engine (its only child) and waits. The child runs forkscope.
//! If the engine dies, its workers and orphans are re-parented to the guardian, which
//! SIGKILLs every descendant, reaps them, restores the terminal if the engine died abruptly,
//! and exits with the engine's status. If the guardian itself is killed, the engine gets
//! SIGTERM (PR_SET_PDEATHSIG, checked against the fork race) and stops the tree gracefully.

use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid};

use super::tree::{become_subreaper, signal_descendants};
use crate::model::ExitStatus;
use crate::model::signals::signal_name;

/// The guardian's pid, set in the engine after the split.
static GUARDIAN: std::sync::OnceLock<i32> = std::sync::OnceLock::new();

/// The pid the user sees for this session: the guardian's, or our own without one. Names of
/// session resources (`/dev/shm/forkscope-<pid>-NAME`) use it, so the guardian can clean up.
pub fn session_pid() -> i32 {
    GUARDIAN
        .get()
        .copied()
        .unwrap_or_else(|| std::process::id() as i32)
}

/// Signals that mean "stop": passed on to the engine, which stops the tree gracefully.
const FORWARDED: [Signal; 4] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];
/// Signals with no meaning for forkscope: taken and dropped, so they neither kill the
/// guardian nor reach an engine that has no use for them.
const SWALLOWED: [Signal; 2] = [Signal::SIGUSR1, Signal::SIGUSR2];

/// Splits into guardian and engine. Returns in the engine; the guardian never returns.
///
/// Must be called while the process has a single thread.
pub fn split() -> std::io::Result<()> {
    let mut handled = SigSet::empty();
    handled.add(Signal::SIGCHLD);
    for signal in FORWARDED.into_iter().chain(SWALLOWED) {
        handled.add(signal);
    }
    let mut previous = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&handled), Some(&mut previous))?;
    let saved_terminal = nix::sys::termios::tcgetattr(std::io::stdin()).ok();
    become_subreaper()?;
    let guardian = getpid();
    // SAFETY: single-threaded at this point (documented precondition), so fork is sound.
    match unsafe { fork() }? {
        ForkResult::Child => {
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&previous), None)?;
            // SAFETY: PR_SET_PDEATHSIG takes a signal number.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0) };
            let _ = GUARDIAN.set(guardian.as_raw());
            if getppid() != guardian {
                // The guardian died before PDEATHSIG was armed.
                nix::sys::signal::raise(Signal::SIGTERM)?;
            }
            Ok(())
        }
        ForkResult::Parent { child } => guard(child, &handled, saved_terminal),
    }
}

fn guard(engine: Pid, handled: &SigSet, terminal: Option<nix::sys::termios::Termios>) -> ! {
    // The engine is our unreaped child, so this pidfd is certainly for it.
    let engine_fd = super::pidfd::Pidfd::open(engine.as_raw()).ok();
    let mut engine_status = None;
    while engine_status.is_none() {
        let Ok(signal) = handled.wait() else { continue };
        if signal == Signal::SIGCHLD {
            engine_status = reap_until(engine);
        } else if FORWARDED.contains(&signal)
            && let Some(fd) = &engine_fd
        {
            let _ = fd.send(signal as i32);
        }
    }
    let status = engine_status.unwrap_or(ExitStatus::Unknown);
    if let ExitStatus::Signaled { signal, .. } = status {
        restore_terminal(terminal.as_ref());
        let _ = writeln!(
            std::io::stderr(),
            "forkscope: the engine died by {}; stopping what it left running",
            signal_name(signal)
        );
    }
    let killed = kill_everything_left();
    if killed > 0 {
        let _ = writeln!(
            std::io::stderr(),
            "forkscope: guardian killed {killed} leftover process(es)"
        );
    }
    // Segments of `--shm` (created before the split): the engine removes them when it ends
    // normally; if it was killed, this is the last chance. Only what the session created.
    let removed = super::shm::remove_created_segments();
    if removed > 0 && matches!(status, ExitStatus::Signaled { .. }) {
        let _ = writeln!(
            std::io::stderr(),
            "forkscope: guardian removed {removed} shared-memory segment(s) of the session"
        );
    }
    // The control socket of a killed engine (`coord/`): nobody else will remove it.
    super::session_files::remove_socket(getpid().as_raw());
    let code = match status {
        ExitStatus::Exited(code) => code,
        ExitStatus::Signaled { signal, .. } => 128 + signal,
        ExitStatus::Unknown => 1,
    };
    std::process::exit(code)
}

/// Reaps children; returns the engine's status once it has ended.
fn reap_until(engine: Pid) -> Option<ExitStatus> {
    let mut found = None;
    loop {
        let mut raw = 0;
        // SAFETY: plain waitpid with a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut raw, libc::WNOHANG) };
        if pid <= 0 {
            return found;
        }
        if pid == engine.as_raw() {
            found = Some(ExitStatus::from_wait_status(raw));
        }
    }
}

/// SIGKILLs every descendant until none is left (bounded to 10 s); returns how many.
fn kill_everything_left() -> usize {
    let me = getpid().as_raw();
    let mut done = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while super::tree::has_children() && Instant::now() < deadline {
        let _ = signal_descendants(me, libc::SIGKILL, &mut done);
        let _ = reap_until(Pid::from_raw(0));
        std::thread::sleep(Duration::from_millis(20));
    }
    done.len()
}

fn restore_terminal(saved: Option<&nix::sys::termios::Termios>) {
    let Some(saved) = saved else { return };
    let _ =
        nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, saved);
    let mut out = std::io::stdout();
    // Leave the alternate screen, show the cursor, stop mouse reporting.
    let _ = out.write_all(b"\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?25h\x1b[?1049l");
    let _ = out.flush();
}
