//! Restart policy: whether, and after how long, an ended worker is started again.
//!
//! A pure state machine per worker: exponential backoff from 100 ms doubling to 30 s, reset
//! after 10 s of uptime, and a crash-loop limit after which the worker is marked failed. Each
//! pool's [`PoolPolicy`] (config `[[pool]]` keys) adjusts it: its own backoff, exit codes that
//! are not failures, a limit of restarts within a window, and a minimum uptime for a start to
//! count (`start_secs`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

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

    fn wants_restart(self, failed: bool) -> bool {
        match self {
            RestartPolicy::Never => false,
            RestartPolicy::OnFailure => failed,
            RestartPolicy::Always => true,
        }
    }
}

/// At most `max_restarts` restarts within any `window` (config `max_restarts`,
/// `restart_window`); the next one marks the worker failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartLimit {
    pub max_restarts: u32,
    pub window: Duration,
}

/// A pool's supervision policy besides `restart` and `stop_signal`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolPolicy {
    /// Time between this pool's stop signal and SIGKILL; `None`: the session's.
    pub stop_timeout: Option<Duration>,
    /// Exit codes that are not failures (`[0]` unless the config says).
    pub success_codes: Vec<i32>,
    pub backoff: Backoff,
    pub restart_limit: Option<RestartLimit>,
    /// A run shorter than this is a failed start, whatever its exit status.
    pub start_secs: Duration,
}

impl Default for PoolPolicy {
    fn default() -> Self {
        PoolPolicy {
            stop_timeout: None,
            success_codes: vec![0],
            backoff: Backoff::default(),
            restart_limit: None,
            start_secs: Duration::ZERO,
        }
    }
}

impl PoolPolicy {
    /// Whether `status` is a success for this pool (a listed exit code; a signal never is).
    pub fn is_success(&self, status: ExitStatus) -> bool {
        matches!(status, ExitStatus::Exited(code) if self.success_codes.contains(&code))
    }

    /// Whether a run of `uptime` ended before it counted as started.
    pub fn is_failed_start(&self, uptime: Duration) -> bool {
        uptime < self.start_secs
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

/// Per-worker memory of the current crash loop and of recent restarts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestartTracker {
    streak: u32,
    next_delay: Option<Duration>,
    /// When recent restarts were decided (only kept with a [`RestartLimit`]).
    recent: VecDeque<Instant>,
}

impl RestartTracker {
    /// Decides after an exit (or a spawn failure, with zero uptime) at `now`.
    pub fn on_exit(
        &mut self,
        policy: RestartPolicy,
        status: ExitStatus,
        uptime: Duration,
        now: Instant,
        pool: &PoolPolicy,
    ) -> Decision {
        let failed_start = pool.is_failed_start(uptime);
        if !policy.wants_restart(failed_start || !pool.is_success(status)) {
            return if failed_start {
                Decision::Failed {
                    reason: failed_start_reason(uptime, pool.start_secs),
                }
            } else {
                Decision::Done
            };
        }
        let backoff = &pool.backoff;
        if uptime >= backoff.reset_after {
            self.streak = 0;
            self.next_delay = None;
        }
        if let Some(limit) = pool.restart_limit {
            while self
                .recent
                .front()
                .is_some_and(|at| now.saturating_duration_since(*at) >= limit.window)
            {
                self.recent.pop_front();
            }
            if self.recent.len() >= limit.max_restarts as usize {
                return Decision::Failed {
                    reason: format!(
                        "max_restarts: {} restarts within {:?} already",
                        self.recent.len(),
                        limit.window
                    ),
                };
            }
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
        if pool.restart_limit.is_some() {
            self.recent.push_back(now);
        }
        let delay = self.next_delay.unwrap_or(backoff.initial);
        self.next_delay = Some((delay * 2).min(backoff.max));
        Decision::Restart {
            delay,
            attempt: self.streak,
        }
    }
}

fn failed_start_reason(uptime: Duration, start_secs: Duration) -> String {
    format!(
        "failed start: ended after {:.2}s, before start_secs ({:.2}s)",
        uptime.as_secs_f64(),
        start_secs.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Duration = Duration::from_millis(5);

    fn fail() -> ExitStatus {
        ExitStatus::Exited(1)
    }

    /// `on_exit` at a fixed instant (the window tests move time themselves).
    fn decide(
        tracker: &mut RestartTracker,
        policy: RestartPolicy,
        status: ExitStatus,
        uptime: Duration,
        pool: &PoolPolicy,
    ) -> Decision {
        tracker.on_exit(policy, status, uptime, Instant::now(), pool)
    }

    #[test]
    fn never_and_on_failure() {
        let pool = PoolPolicy::default();
        let mut tracker = RestartTracker::default();
        assert_eq!(
            decide(&mut tracker, RestartPolicy::Never, fail(), QUICK, &pool),
            Decision::Done
        );
        assert_eq!(
            decide(
                &mut tracker,
                RestartPolicy::OnFailure,
                ExitStatus::Exited(0),
                QUICK,
                &pool
            ),
            Decision::Done
        );
        assert!(matches!(
            decide(&mut tracker, RestartPolicy::OnFailure, fail(), QUICK, &pool),
            Decision::Restart { .. }
        ));
    }

    #[test]
    fn success_codes_are_not_failures() {
        let pool = PoolPolicy {
            success_codes: vec![0, 3],
            ..PoolPolicy::default()
        };
        let mut tracker = RestartTracker::default();
        let mut after_exit = |code| {
            let status = ExitStatus::Exited(code);
            decide(&mut tracker, RestartPolicy::OnFailure, status, QUICK, &pool)
        };
        assert_eq!(after_exit(3), Decision::Done);
        assert_eq!(after_exit(0), Decision::Done);
        assert!(matches!(after_exit(4), Decision::Restart { .. }));
        let killed = ExitStatus::Signaled {
            signal: 15,
            core_dumped: false,
        };
        assert!(!pool.is_success(killed));
        assert!(PoolPolicy::default().is_success(ExitStatus::Exited(0)));
        assert!(!PoolPolicy::default().is_success(ExitStatus::Exited(3)));
    }

    #[test]
    fn backoff_doubles_caps_and_fails() {
        let pool = PoolPolicy {
            backoff: Backoff {
                crash_loop_limit: 12,
                ..Backoff::default()
            },
            ..PoolPolicy::default()
        };
        let mut tracker = RestartTracker::default();
        let mut delays = Vec::new();
        for _ in 0..12 {
            match decide(&mut tracker, RestartPolicy::Always, fail(), QUICK, &pool) {
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
            decide(&mut tracker, RestartPolicy::Always, fail(), QUICK, &pool),
            Decision::Failed { .. }
        ));
    }

    #[test]
    fn a_pool_backoff_replaces_the_schedule() {
        let pool = PoolPolicy {
            backoff: Backoff {
                initial: Duration::from_millis(30),
                max: Duration::from_millis(100),
                ..Backoff::default()
            },
            ..PoolPolicy::default()
        };
        let mut tracker = RestartTracker::default();
        let delays: Vec<u128> = (0..4)
            .map(
                |_| match decide(&mut tracker, RestartPolicy::Always, fail(), QUICK, &pool) {
                    Decision::Restart { delay, .. } => delay.as_millis(),
                    other => panic!("unexpected {other:?}"),
                },
            )
            .collect();
        assert_eq!(delays, vec![30, 60, 100, 100]);
    }

    #[test]
    fn long_uptime_resets_the_loop() {
        let pool = PoolPolicy::default();
        let mut tracker = RestartTracker::default();
        for _ in 0..pool.backoff.crash_loop_limit {
            decide(&mut tracker, RestartPolicy::Always, fail(), QUICK, &pool);
        }
        let after_long_run = decide(
            &mut tracker,
            RestartPolicy::Always,
            fail(),
            Duration::from_secs(11),
            &pool,
        );
        assert_eq!(
            after_long_run,
            Decision::Restart {
                delay: Duration::from_millis(100),
                attempt: 1
            }
        );
    }

    #[test]
    fn max_restarts_within_the_window_then_failed() {
        let pool = PoolPolicy {
            restart_limit: Some(RestartLimit {
                max_restarts: 3,
                window: Duration::from_secs(60),
            }),
            ..PoolPolicy::default()
        };
        // Long runs: the crash-loop rule never fires, only the window limit.
        let long = Duration::from_secs(20);
        let start = Instant::now();
        let mut tracker = RestartTracker::default();
        for minute_tenth in 0..3 {
            let now = start + Duration::from_secs(10 * minute_tenth);
            assert!(matches!(
                tracker.on_exit(RestartPolicy::Always, fail(), long, now, &pool),
                Decision::Restart { .. }
            ));
        }
        let fourth = start + Duration::from_secs(40);
        assert!(matches!(
            tracker.on_exit(RestartPolicy::Always, fail(), long, fourth, &pool),
            Decision::Failed { reason } if reason.contains("max_restarts")
        ));
    }

    #[test]
    fn restarts_older_than_the_window_are_forgotten() {
        let pool = PoolPolicy {
            restart_limit: Some(RestartLimit {
                max_restarts: 2,
                window: Duration::from_secs(30),
            }),
            ..PoolPolicy::default()
        };
        let long = Duration::from_secs(20);
        let start = Instant::now();
        let mut tracker = RestartTracker::default();
        for at in [0, 20, 50, 70, 90] {
            // At 50 the restart at 0 has left the window, at 70 the one at 20, ...
            let now = start + Duration::from_secs(at);
            assert!(
                matches!(
                    tracker.on_exit(RestartPolicy::Always, fail(), long, now, &pool),
                    Decision::Restart { .. }
                ),
                "restart at {at}s"
            );
        }
        let crowded = start + Duration::from_secs(95);
        assert!(matches!(
            tracker.on_exit(RestartPolicy::Always, fail(), long, crowded, &pool),
            Decision::Failed { .. }
        ));
    }

    #[test]
    fn an_exit_before_start_secs_is_a_failed_start() {
        let pool = PoolPolicy {
            start_secs: Duration::from_secs(2),
            ..PoolPolicy::default()
        };
        let mut tracker = RestartTracker::default();
        let clean = ExitStatus::Exited(0);
        let early = Duration::from_secs(1);
        // Even exit 0: with `never` the worker is failed, with `on-failure` it is restarted.
        assert!(matches!(
            decide(&mut tracker, RestartPolicy::Never, clean, early, &pool),
            Decision::Failed { reason } if reason.contains("start_secs")
        ));
        assert!(matches!(
            decide(&mut tracker, RestartPolicy::OnFailure, clean, early, &pool),
            Decision::Restart { .. }
        ));
        let late = Duration::from_secs(3);
        assert_eq!(
            decide(&mut tracker, RestartPolicy::OnFailure, clean, late, &pool),
            Decision::Done
        );
    }
}
