//! Holding the stop signals from start-up until the engine handles them.

/// The stop signals the engine handles (and `hold_stop_signals` holds until it does).
fn stop_signals() -> nix::sys::signal::SigSet {
    use nix::sys::signal::Signal;
    let mut set = nix::sys::signal::SigSet::empty();
    for signal in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        set.add(signal);
    }
    set
}

/// Blocks the stop signals in the calling thread (and the threads it starts) until
/// [`super::start`] handles them: a SIGTERM during start-up then stops the session normally, with
/// its `end`, instead of killing the process before it has a handler. Call it while the
/// process is single-threaded.
pub fn hold_stop_signals() {
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        Some(&stop_signals()),
        None,
    );
}

pub(super) fn release_stop_signals() {
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_UNBLOCK,
        Some(&stop_signals()),
        None,
    );
}
