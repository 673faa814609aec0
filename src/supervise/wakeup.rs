//! Short scheduler slices for the threads an exit event passes through (the engine, the
//! headless printer): on a loaded machine the kernel then runs them as soon as they wake
//! instead of after the running tasks' slices. Since Linux 6.12 (EEVDF) an unprivileged
//! thread may ask for a shorter slice (`sched_attr.sched_runtime` with `SCHED_OTHER`): it
//! gets no more CPU than its share, only earlier. Older kernels ignore the request.

use std::cell::Cell;
use std::io;

/// The shortest slice the kernel accepts (0.1 ms).
const SLICE_NS: u64 = 100_000;

/// `struct sched_attr` (include/uapi/linux/sched/types.h), first version (56 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

thread_local! {
    /// This thread's attributes with the default slice, once it asked for a short one.
    static DEFAULT_SLICE: Cell<Option<SchedAttr>> = const { Cell::new(None) };
}

/// What a child of this thread must set to run with the default slice (children inherit
/// the short one), or `None` when this thread never asked for a short slice.
pub fn default_slice() -> Option<SchedAttr> {
    DEFAULT_SLICE.with(Cell::get)
}

/// Asks for the shortest slice for the calling thread, keeping its policy and nice value.
/// Only for `SCHED_OTHER` threads (a real-time or idle policy is left alone).
pub fn prefer_wakeups() -> io::Result<()> {
    let size = std::mem::size_of::<SchedAttr>() as u32;
    let mut attr = SchedAttr::default();
    // Raw libc: neither rustix nor nix wraps sched_getattr/sched_setattr (no glibc wrapper
    // either), so these are the system calls themselves.
    // SAFETY: tid 0 is the calling thread; `attr` is a writable sched_attr of `size` bytes.
    let got = unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            0,
            &raw mut attr,
            size as libc::c_uint,
            0,
        )
    };
    if got != 0 {
        return Err(io::Error::last_os_error());
    }
    if attr.policy != libc::SCHED_OTHER as u32 {
        return Ok(());
    }
    attr.size = size;
    DEFAULT_SLICE.with(|default| default.set(Some(SchedAttr { runtime: 0, ..attr })));
    attr.runtime = SLICE_NS;
    // SAFETY: as above; the kernel only reads `attr`.
    let set = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &raw const attr, 0) };
    if set != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_policy_and_nice() {
        let before = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        std::thread::spawn(move || {
            prefer_wakeups().unwrap();
            let after = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
            assert_eq!(before, after);
            assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_OTHER);
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
            let mut version = release
                .split(['.', '-'])
                .map(|n| n.parse::<u32>().unwrap_or(0));
            let (major, minor) = (version.next().unwrap(), version.next().unwrap());
            if (major, minor) >= (6, 12) {
                let sched = std::fs::read_to_string("/proc/thread-self/sched").unwrap();
                let slice = sched
                    .lines()
                    .find(|l| l.starts_with("se.slice"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|v| v.trim().parse::<u64>().unwrap());
                assert_eq!(slice, Some(SLICE_NS), "{sched}");
            }
        })
        .join()
        .unwrap();
    }
}
