//! The watchdog: a single-threaded subreaper outside the job's process group, parent of the
//! engine. When the engine dies, everything it left comes to the watchdog, which SIGKILLs it
//! all, restores the terminal if the engine died abruptly, and exits with the engine's
//! status. Stop signals it receives (and SIGTERM when the guardian dies) go to the engine.
//! Also the helpers the guardian shares with it.

use std::collections::HashSet;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, sigprocmask};
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid, setpgid};
use rustix::termios::Termios;

use super::tree::{become_subreaper, signal_descendants};
use crate::model::ExitStatus;
use crate::model::signals::signal_name;

/// Signals that mean "stop": passed on towards the engine, which stops the tree gracefully.
pub(super) const FORWARDED: [Signal; 4] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];
/// Signals with no meaning for forkscope: taken and dropped, so they neither kill the
/// guardian nor reach an engine that has no use for them.
pub(super) const SWALLOWED: [Signal; 2] = [Signal::SIGUSR1, Signal::SIGUSR2];

/// Runs in the guardian's child: leaves the job's process group, forks the engine (which
/// returns from here) and watches it (never returns). `masks`: (handled, previous).
pub(super) fn start(
    guardian: Pid,
    job: Pid,
    engine_pid_tx: OwnedFd,
    (handled, previous): (&SigSet, &SigSet),
    terminal: Option<Termios>,
) -> std::io::Result<()> {
    die_with_parent(guardian)?;
    // Out of the job's process group: SIGKILL to the group does not reach the watchdog.
    setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
    become_subreaper()?;
    let watchdog = getpid();
    // SAFETY: the watchdog is single-threaded (forked from the single-threaded guardian).
    match unsafe { fork() }? {
        ForkResult::Child => {
            drop(engine_pid_tx);
            // Back into the job's group: the TUI must be in the terminal's foreground group.
            let _ = setpgid(Pid::from_raw(0), job);
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(previous), None)?;
            die_with_parent(watchdog)?;
            Ok(())
        }
        ForkResult::Parent { child } => {
            // Both sides set the group, so it is set whichever runs first.
            let _ = setpgid(child, job);
            // Restoring the terminal from outside its foreground group must not stop us.
            // SAFETY: setting a signal to SIG_IGN installs no handler.
            let _ = unsafe { nix::sys::signal::signal(Signal::SIGTTOU, SigHandler::SigIgn) };
            let _ = std::fs::File::from(engine_pid_tx).write_all(&child.as_raw().to_ne_bytes());
            watch(child, guardian, handled, terminal)
        }
    }
}

/// SIGTERM when `parent` dies (PR_SET_PDEATHSIG), checked against the fork race.
fn die_with_parent(parent: Pid) -> std::io::Result<()> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))?;
    if getppid() != parent {
        // The parent died before PDEATHSIG was armed.
        nix::sys::signal::raise(Signal::SIGTERM)?;
    }
    Ok(())
}

/// Passes stop signals on to `child` (our only child) until it ends; its status.
pub(super) fn forward_until_exit(child: Pid, handled: &SigSet) -> ExitStatus {
    // An unreaped child of ours, so this pidfd is certainly for it.
    let child_fd = super::pidfd::Pidfd::open(child.as_raw()).ok();
    loop {
        let Ok(signal) = handled.wait() else { continue };
        if signal == Signal::SIGCHLD {
            if let Some(status) = reap_until(child) {
                return status;
            }
        } else if FORWARDED.contains(&signal)
            && let Some(fd) = &child_fd
        {
            let _ = fd.send(signal as i32);
        }
    }
}

fn watch(engine: Pid, guardian: Pid, handled: &SigSet, terminal: Option<Termios>) -> ! {
    let status = forward_until_exit(engine, handled);
    if let ExitStatus::Signaled { signal, .. } = status {
        restore_terminal(terminal.as_ref());
        announce_abrupt_end("engine", signal);
    }
    let killed = kill_everything_left();
    if killed > 0 {
        let _ = writeln!(
            std::io::stderr(),
            "forkscope: watchdog killed {killed} leftover process(es)"
        );
    }
    // What the session created, in case the guardian died with the engine (SIGKILL of the
    // job's process group): only the `--shm` segments of this session, and its socket.
    super::shm::remove_created_segments();
    super::session_files::remove_socket(guardian.as_raw());
    std::process::exit(exit_code(status))
}

pub(super) fn announce_abrupt_end(who: &str, signal: i32) {
    let _ = writeln!(
        std::io::stderr(),
        "forkscope: the {who} died by {}; stopping what it left running",
        signal_name(signal)
    );
}

/// The exit code that tells how `status` ended (128 + signal for a signal).
pub(super) fn exit_code(status: ExitStatus) -> i32 {
    match status {
        ExitStatus::Exited(code) => code,
        ExitStatus::Signaled { signal, .. } => 128 + signal,
        ExitStatus::Unknown => 1,
    }
}

/// Waits up to `timeout` for one of the blocked signals in `set`.
pub(super) fn wait_signal(set: &SigSet, timeout: Duration) -> Option<Signal> {
    // Raw libc: nix has no `sigtimedwait`, and rustix's (`runtime::kernel_sigtimedwait`) is
    // an unsafe internal of its own runtime, not meant for programs on libc.
    let timeout = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: sigtimedwait with a valid set, no siginfo wanted, and a valid timeout.
    let signo = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &timeout) };
    Signal::try_from(signo).ok()
}

/// Reaps children; returns `target`'s status once it has ended.
pub(super) fn reap_until(target: Pid) -> Option<ExitStatus> {
    let mut found = None;
    loop {
        let Ok(Some((pid, status))) = rustix::process::wait(rustix::process::WaitOptions::NOHANG)
        else {
            return found;
        };
        if pid.as_raw_nonzero().get() == target.as_raw() {
            found = Some(ExitStatus::from_wait_status(status.as_raw()));
        }
    }
}

/// SIGKILLs every descendant until none is left (bounded to 10 s); returns how many.
pub(super) fn kill_everything_left() -> usize {
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

/// Puts back the terminal modes saved before the TUI started, leaves the alternate screen,
/// shows the cursor and stops mouse reporting.
pub(super) fn restore_terminal(saved: Option<&Termios>) {
    let Some(saved) = saved else { return };
    let _ = rustix::termios::tcsetattr(
        std::io::stdin(),
        rustix::termios::OptionalActions::Now,
        saved,
    );
    let mut out = std::io::stdout();
    let _ = out
        .write_all(b"\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1015l\x1b[?1006l\x1b[?25h\x1b[?1049l");
    let _ = out.flush();
}
