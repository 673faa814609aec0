//! Restart policy: whether, and after how long, an ended worker is started again.
//!
//! A pure state machine per worker: exponential backoff from 100 ms doubling to 30 s, reset
//! after 10 s of uptime, and a crash-loop limit after which the worker is marked failed.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::exit::ExitStatus;

/// When a pool's workers are started again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never (the default for `run`).
    #[default]
    Never,
    /// Only when the worker did not `exit 0`.
    OnFailure,
    /// Whatever the exit status.
    Always,
}

impl RestartPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::Never => "never",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Always => "always",
        }
    }

    fn wants_restart(self, status: ExitStatus) -> bool {
        match self {
            RestartPolicy::Never => false,
            RestartPolicy::OnFailure => !status.success(),
            RestartPolicy::Always => true,
        }
    }
}

/// The backoff schedule and crash-loop limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// A worker that ran at least this long starts its next crash loop from scratch.
    pub reset_after: Duration,
    /// Quick restarts in a row allowed before the worker is marked failed.
    pub crash_loop_limit: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(10),
            crash_loop_limit: 5,
        }
    }
}

/// What to do with a worker that just ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Start it again after `delay`; `attempt` counts restarts in the current crash loop.
    Restart { delay: Duration, attempt: u32 },
    /// Leave it ended; the policy does not ask for a restart.
    Done,
    /// Stop trying: it crashed `attempts` times in a row.
    Failed { reason: String },
}

/// Per-worker memory of the current crash loop.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestartTracker {
    streak: u32,
    next_delay: Option<Duration>,
}

impl RestartTracker {
    /// Decides after an exit (or a spawn failure, with zero uptime).
    pub fn on_exit(
        &mut self,
        policy: RestartPolicy,
        status: ExitStatus,
        uptime: Duration,
        backoff: &Backoff,
    ) -> Decision {
        if !policy.wants_restart(status) {
            return Decision::Done;
        }
        if uptime >= backoff.reset_after {
            *self = RestartTracker::default();
        }
        if self.streak >= backoff.crash_loop_limit {
            return Decision::Failed {
                reason: format!(
                    "crash loop: ended {} times in a row within {:?} of starting",
                    self.streak + 1,
                    backoff.reset_after
                ),
            };
        }
        self.streak += 1;
        let delay = self.next_delay.unwrap_or(backoff.initial);
        self.next_delay = Some((delay * 2).min(backoff.max));
        Decision::Restart {
            delay,
            attempt: self.streak,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Duration = Duration::from_millis(5);

    fn fail() -> ExitStatus {
        ExitStatus::Exited(1)
    }

    #[test]
    fn never_and_on_failure() {
        let backoff = Backoff::default();
        let mut tracker = RestartTracker::default();
        assert_eq!(
            tracker.on_exit(RestartPolicy::Never, fail(), QUICK, &backoff),
            Decision::Done
        );
        assert_eq!(
            tracker.on_exit(
                RestartPolicy::OnFailure,
                ExitStatus::Exited(0),
                QUICK,
                &backoff
            ),
            Decision::Done
        );
        assert!(matches!(
            tracker.on_exit(RestartPolicy::OnFailure, fail(), QUICK, &backoff),
            Decision::Restart { .. }
        ));
    }

    #[test]
    fn backoff_doubles_caps_and_fails() {
        let backoff = Backoff {
            crash_loop_limit: 12,
            ..Backoff::default()
        };
        let mut tracker = RestartTracker::default();
        let mut delays = Vec::new();
        for _ in 0..12 {
            match tracker.on_exit(RestartPolicy::Always, fail(), QUICK, &backoff) {
                Decision::Restart { delay, .. } => delays.push(delay.as_millis()),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            delays,
            vec![
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000
            ]
        );
        assert!(matches!(
            tracker.on_exit(RestartPolicy::Always, fail(), QUICK, &backoff),
            Decision::Failed { .. }
        ));
    }

    #[test]
    fn long_uptime_resets_the_loop() {
        let backoff = Backoff::default();
        let mut tracker = RestartTracker::default();
        for _ in 0..backoff.crash_loop_limit {
            tracker.on_exit(RestartPolicy::Always, fail(), QUICK, &backoff);
        }
        let after_long_run = tracker.on_exit(
            RestartPolicy::Always,
            fail(),
            Duration::from_secs(11),
            &backoff,
        );
        assert_eq!(
            after_long_run,
            Decision::Restart {
                delay: Duration::from_millis(100),
                attempt: 1
            }
        );
    }
}
