//! The step gate of a demo: forkscope holds a program at each lesson step it announces and
//! lets it go on when a person presses `.` (the `next_step` action) or `--auto` runs out.
//!
//! The program gets the read end of a pipe as `FORKSCOPE_STEP_FD` and reads one byte after
//! each step line; forkscope writes that byte. Forkscope writes only while a step is held, so
//! the pipe never fills and an early `.` is never saved up for a later step. If forkscope
//! goes away its write end closes and the program reads end-of-file: it runs straight on,
//! so no side can wait for the other forever.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::model::lesson::StepReleaser;

/// The environment variable that carries the read end's descriptor number.
pub const STEP_FD_ENV: &str = "FORKSCOPE_STEP_FD";

/// How steps are released.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepConfig {
    /// Release each step by itself this long after it was announced.
    pub auto: Option<Duration>,
}

/// The pipe and the step it holds.
#[derive(Debug)]
pub struct StepGate {
    /// Inherited by the workers (no close-on-exec); kept open here so a write never fails
    /// with EPIPE while the session lives.
    read: OwnedFd,
    /// Close-on-exec and non-blocking: only forkscope can write, and never waits to.
    write: OwnedFd,
    auto: Option<Duration>,
    held: Option<HeldStep>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct HeldStep {
    pid: i32,
    n: u32,
    release_at: Option<Instant>,
}

/// A step that was let go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Released {
    pub pid: i32,
    pub n: u32,
    pub by: StepReleaser,
}

impl StepGate {
    /// Makes the pipe. Must run before the workers are spawned.
    pub fn open(config: StepConfig) -> io::Result<StepGate> {
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        rustix::io::fcntl_setfd(&read, rustix::io::FdFlags::empty())?;
        rustix::io::ioctl_fionbio(&write, true)?;
        Ok(StepGate {
            read,
            write,
            auto: config.auto,
            held: None,
        })
    }

    /// The variable the workers need to find the pipe.
    pub fn env(&self) -> (String, String) {
        (STEP_FD_ENV.to_string(), self.read.as_raw_fd().to_string())
    }

    /// A step was announced by `pid`: it now waits to be released.
    pub fn on_step(&mut self, pid: i32, n: u32, now: Instant) {
        self.held = Some(HeldStep {
            pid,
            n,
            release_at: self.auto.map(|after| now + after),
        });
    }

    /// When `--auto` releases the held step.
    pub fn deadline(&self) -> Option<Instant> {
        self.held.and_then(|h| h.release_at)
    }

    /// Releases the held step if `--auto` says it is time.
    pub fn release_due(&mut self, now: Instant) -> Option<Released> {
        if self.deadline().is_some_and(|at| at <= now) {
            self.release(StepReleaser::Auto)
        } else {
            None
        }
    }

    /// Releases the held step; None when no step is held.
    pub fn release(&mut self, by: StepReleaser) -> Option<Released> {
        let held = self.held.take()?;
        match rustix::io::write(&self.write, b".") {
            Ok(_) => {}
            // Full (nothing reads: the program is gone) or interrupted: nobody waits then.
            Err(err) => tracing::warn!("releasing step {}: {err}", held.n),
        }
        Some(Released {
            pid: held.pid,
            n: held.n,
            by,
        })
    }

    /// Whether a step is held.
    pub fn is_holding(&self) -> bool {
        self.held.is_some()
    }

    #[cfg(test)]
    fn read_end(&self) -> &OwnedFd {
        &self.read
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_byte_per_held_step_and_none_when_nothing_is_held() {
        let mut gate = StepGate::open(StepConfig::default()).unwrap();
        assert_eq!(gate.release(StepReleaser::Key), None);
        gate.on_step(5, 1, Instant::now());
        let released = gate.release(StepReleaser::Key).unwrap();
        assert_eq!((released.pid, released.n), (5, 1));
        assert_eq!(gate.release(StepReleaser::Key), None, "released once");
        rustix::io::ioctl_fionbio(gate.read_end(), true).unwrap();
        let mut buffer = [0u8; 8];
        assert_eq!(rustix::io::read(gate.read_end(), &mut buffer).unwrap(), 1);
        assert!(
            rustix::io::read(gate.read_end(), &mut buffer).is_err(),
            "no byte saved up"
        );
    }

    #[test]
    fn auto_releases_after_its_delay() {
        let mut gate = StepGate::open(StepConfig {
            auto: Some(Duration::from_secs(2)),
        })
        .unwrap();
        let start = Instant::now();
        gate.on_step(5, 3, start);
        assert_eq!(gate.deadline(), Some(start + Duration::from_secs(2)));
        assert_eq!(gate.release_due(start + Duration::from_secs(1)), None);
        let released = gate.release_due(start + Duration::from_secs(2)).unwrap();
        assert_eq!(released.by, StepReleaser::Auto);
        assert!(!gate.is_holding());
    }

    #[test]
    fn the_read_end_is_inherited_and_the_write_end_is_not() {
        let gate = StepGate::open(StepConfig::default()).unwrap();
        let inherited = |fd: &OwnedFd| {
            !rustix::io::fcntl_getfd(fd)
                .unwrap()
                .contains(rustix::io::FdFlags::CLOEXEC)
        };
        assert!(inherited(&gate.read));
        assert!(!inherited(&gate.write));
        assert_eq!(gate.env().1, gate.read.as_raw_fd().to_string());
    }
}
