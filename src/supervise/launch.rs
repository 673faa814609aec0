//! The system call that starts a worker: one `clone(2)` with `CLONE_VM | CLONE_VFORK |
//! CLONE_PIDFD`, the child running on a stack of its own until `execve`. The kernel hands
//! back the pidfd in the same call; this thread is suspended until the child has exec'd (or
//! ended), so a failed exec is known, with its errno, when `launch` returns.
//!
//! The child shares forkscope's memory until `execve`: between `clone` and `execve` it only
//! makes system calls on data prepared here beforehand (no allocation, no lock, no panic).

use std::ffi::{CStr, CString, c_int, c_void};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};

/// The child's stack: it runs a handful of system calls, nothing recursive.
const STACK_SIZE: usize = 64 * 1024;

/// What the child does, all of it prepared by the parent.
pub struct Plan {
    /// The files to try `execve` on, in order (PATH already searched, as `execvp` would).
    pub candidates: Vec<CString>,
    pub argv: Vec<CString>,
    /// `NAME=value` entries: the worker's whole environment.
    pub envp: Vec<CString>,
    pub cwd: Option<CString>,
    /// The descriptors that become the worker's stdin, stdout and stderr.
    pub stdio: [RawFd; 3],
    /// `PTRACE_TRACEME` before `execve` (`--track ptrace`).
    pub trace: bool,
    /// The user, group and supplementary groups to take before `execve` (`user`/`group`).
    pub identity: Option<super::launch_rules::Identity>,
}

/// The step of the child that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Exec,
    Chdir,
    /// Taking the pool's user and group.
    Identity,
    /// Setting up the process group, descriptors, signals or tracing.
    Setup,
}

#[derive(Debug)]
pub enum LaunchError {
    /// `clone` itself failed (no child exists).
    Clone(io::Error),
    /// The child failed at `step` and ended (it is reaped already).
    Child(Step, io::Error),
}

/// A started worker: it has exec'd.
pub struct Launched {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

/// Shared between the parent and the child (same memory until `execve`). The child writes
/// `errno` and `step` only; the parent reads them once `clone` has returned, after the child
/// has exec'd or ended.
#[repr(C)]
struct Shared {
    candidates: *const *const libc::c_char,
    candidates_len: usize,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    stdio: [c_int; 3],
    trace: bool,
    /// `uid`, `gid` and `groups` are taken when this is set.
    switch_identity: bool,
    uid: libc::uid_t,
    gid: libc::gid_t,
    groups: *const libc::gid_t,
    groups_len: usize,
    reset: *const c_int,
    reset_len: usize,
    /// `sched_attr` with the default slice, when this thread has a short one.
    sched: *const super::wakeup::SchedAttr,
    errno: c_int,
    step: Step,
}

/// Signals whose handler the child resets to the default before it unblocks signals: a
/// handler of forkscope's running in the child, in forkscope's memory, would record a signal
/// forkscope never got. Those installed when the first worker starts (the engine installs
/// its own before), the engine's always, and SIGPIPE (which Rust ignores; workers get the
/// default, as `std::process::Command` gives).
fn handled_signals() -> &'static [c_int] {
    static HANDLED: OnceLock<Vec<c_int>> = OnceLock::new();
    HANDLED.get_or_init(|| {
        let always = [
            libc::SIGCHLD,
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGWINCH,
            libc::SIGPIPE,
        ];
        let mut set: Vec<c_int> = always.to_vec();
        for signo in 1..libc::SIGRTMAX() {
            if set.contains(&signo) || signo == libc::SIGKILL || signo == libc::SIGSTOP {
                continue;
            }
            // Raw libc: neither rustix nor nix reads a disposition without setting one.
            // SAFETY: a query (null new action) into a zeroed struct of the right type.
            let installed = unsafe {
                let mut old: libc::sigaction = std::mem::zeroed();
                libc::sigaction(signo, std::ptr::null(), &mut old) == 0
                    && old.sa_sigaction != libc::SIG_DFL
                    && old.sa_sigaction != libc::SIG_IGN
            };
            if installed {
                set.push(signo);
            }
        }
        set
    })
}

fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Starts the child described by `plan`. Signals are blocked in this thread for the
/// duration of the `clone` (the child starts with them blocked).
pub fn launch(plan: &Plan) -> Result<Launched, LaunchError> {
    let candidates = pointers(&plan.candidates);
    let argv = pointers(&plan.argv);
    let envp = pointers(&plan.envp);
    let reset = handled_signals();
    let sched = super::wakeup::default_slice();
    let mut shared = Shared {
        candidates: candidates.as_ptr(),
        candidates_len: plan.candidates.len(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: plan.cwd.as_deref().map_or(std::ptr::null(), CStr::as_ptr),
        stdio: plan.stdio,
        trace: plan.trace,
        switch_identity: plan.identity.is_some(),
        uid: plan.identity.as_ref().map_or(0, |id| id.uid),
        gid: plan.identity.as_ref().map_or(0, |id| id.gid),
        groups: plan
            .identity
            .as_ref()
            .map_or(std::ptr::null(), |id| id.groups.as_ptr()),
        groups_len: plan.identity.as_ref().map_or(0, |id| id.groups.len()),
        reset: reset.as_ptr(),
        reset_len: reset.len(),
        sched: sched.as_ref().map_or(std::ptr::null(), std::ptr::from_ref),
        errno: 0,
        step: Step::Exec,
    };
    let mut stack = vec![0u8; STACK_SIZE].into_boxed_slice();
    // The stack grows down: the child starts at its 16-byte aligned top.
    let top = {
        let end = stack.as_mut_ptr_range().end as usize;
        (end & !15) as *mut c_void
    };
    let mut old = SigSet::empty();
    pthread_sigmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut old),
    )
    .map_err(|e| LaunchError::Clone(e.into()))?;
    let mut pidfd: c_int = -1;
    // Raw libc: neither rustix nor nix offers clone with CLONE_PIDFD (nix's `clone` passes no
    // parent_tid, where the kernel writes the pidfd), nor vfork semantics on a fresh stack.
    // SAFETY: `child` runs on `stack` (alive until clone returns: CLONE_VFORK suspends this
    // thread until the child has exec'd or exited) and only reads `shared` and the vectors it
    // points into, all alive and unmoved until then; it writes `shared.errno`/`step` only.
    let pid = unsafe {
        libc::clone(
            child,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD,
            (&raw mut shared).cast::<c_void>(),
            &raw mut pidfd,
        )
    };
    let clone_error = io::Error::last_os_error();
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    drop(stack);
    if pid == -1 {
        return Err(LaunchError::Clone(clone_error));
    }
    // SAFETY: the kernel wrote a new close-on-exec pidfd that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    // SAFETY: the child has exec'd or exited (CLONE_VFORK): it no longer writes `shared`.
    let (errno, step) = unsafe {
        (
            std::ptr::read_volatile(&raw const shared.errno),
            std::ptr::read_volatile(&raw const shared.step),
        )
    };
    if errno != 0 {
        // It ended with 127 after the failure: collect it here, so no exit is reported.
        if let Some(pid) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
        }
        return Err(LaunchError::Child(
            step,
            io::Error::from_raw_os_error(errno),
        ));
    }
    Ok(Launched { pid, pidfd })
}

/// The child, between `clone` and `execve`: never returns unless something failed.
extern "C" fn child(arg: *mut c_void) -> c_int {
    let shared = arg.cast::<Shared>();
    // SAFETY: `arg` is the parent's `Shared`, valid while the parent is suspended.
    let (step, errno) = unsafe { prepare_and_exec(&*shared) };
    // SAFETY: as above; the parent reads these only after this process has ended.
    unsafe {
        std::ptr::write_volatile(&raw mut (*shared).errno, errno);
        std::ptr::write_volatile(&raw mut (*shared).step, step);
        libc::_exit(127)
    }
}

/// Raw libc throughout: this runs in a vfork child, where only direct system calls on
/// prepared data are safe; each is a thin wrapper that neither allocates nor locks.
unsafe fn prepare_and_exec(shared: &Shared) -> (Step, c_int) {
    let errno = || {
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL)
    };
    // SAFETY (whole function): pointers and lengths come from live vectors in the parent.
    unsafe {
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        for i in 0..shared.reset_len {
            libc::sigaction(*shared.reset.add(i), &default, std::ptr::null_mut());
        }
        if !shared.sched.is_null() {
            // The engine's short slice is not the worker's (best effort: a kernel without
            // custom slices never set one).
            libc::syscall(libc::SYS_sched_setattr, 0, shared.sched, 0);
        }
        if libc::setpgid(0, 0) != 0 {
            return (Step::Setup, errno());
        }
        let mut stdio = shared.stdio;
        for fd in stdio.iter_mut() {
            // Out of 0..=2 first, or one dup2 could overwrite the next one's source.
            if *fd < 3 {
                *fd = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 3);
                if *fd < 0 {
                    return (Step::Setup, errno());
                }
            }
        }
        for (target, fd) in stdio.iter().enumerate() {
            if libc::dup2(*fd, target as c_int) < 0 {
                return (Step::Setup, errno());
            }
        }
        if !shared.cwd.is_null() && libc::chdir(shared.cwd) != 0 {
            return (Step::Chdir, errno());
        }
        // setgroups, setgid, then setuid: the order that keeps the right to each step. Direct
        // system calls: glibc's wrappers would signal every thread of forkscope, whose memory
        // this child shares, to change their credentials too.
        if shared.switch_identity
            && (libc::syscall(libc::SYS_setgroups, shared.groups_len, shared.groups) != 0
                || libc::syscall(libc::SYS_setgid, shared.gid) != 0
                || libc::syscall(libc::SYS_setuid, shared.uid) != 0)
        {
            return (Step::Identity, errno());
        }
        if shared.trace
            && libc::ptrace(
                libc::PTRACE_TRACEME,
                0,
                std::ptr::null_mut::<c_void>(),
                std::ptr::null_mut::<c_void>(),
            ) == -1
        {
            return (Step::Setup, errno());
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        // As execvp: go on past a file that is not there; remember a refusal.
        let mut result = libc::ENOENT;
        let mut denied = false;
        for i in 0..shared.candidates_len {
            libc::execve(*shared.candidates.add(i), shared.argv, shared.envp);
            result = errno();
            match result {
                libc::EACCES => denied = true,
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
                _ => return (Step::Exec, result),
            }
        }
        (Step::Exec, if denied { libc::EACCES } else { result })
    }
}
