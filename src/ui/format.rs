//! Text for numbers: sizes, durations, process states and how a process ended.

use crate::model::state::ProcessView;

/// `812K`, `2.1M`, `1.5G` from kibibytes.
pub fn kib(kb: u64) -> String {
    if kb < 1024 {
        format!("{kb}K")
    } else if kb < 1024 * 1024 {
        format!("{:.1}M", kb as f64 / 1024.0)
    } else {
        format!("{:.1}G", kb as f64 / (1024.0 * 1024.0))
    }
}

/// `850ms`, `12s`, `3m05s`, `2h03m`.
pub fn duration(seconds: f64) -> String {
    let seconds = seconds.max(0.0);
    if seconds < 1.0 {
        format!("{}ms", (seconds * 1000.0) as u64)
    } else if seconds < 60.0 {
        format!("{}s", seconds as u64)
    } else if seconds < 3600.0 {
        let s = seconds as u64;
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        let m = seconds as u64 / 60;
        format!("{}h{:02}m", m / 60, m % 60)
    }
}

/// What a process is doing, in a word that needs no colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    Running,
    Sleeping,
    DiskWait,
    Stopped,
    Zombie,
    /// A stop signal went out; still alive.
    Stopping,
    /// Ended with `exit 0`.
    EndedOk,
    /// Ended otherwise (non-zero code, signal, unknown).
    EndedBad,
    /// Alive, no sample yet.
    Starting,
}

impl Condition {
    pub fn of(proc: &ProcessView) -> Condition {
        if let Some(ended) = proc.ended {
            return if proc.zombie {
                Condition::Zombie
            } else if ended.status.success() {
                Condition::EndedOk
            } else {
                Condition::EndedBad
            };
        }
        if proc.is_stopping() {
            return Condition::Stopping;
        }
        match proc.sample.as_ref().map(|s| s.state) {
            Some('R') => Condition::Running,
            Some('S') | Some('I') => Condition::Sleeping,
            Some('D') => Condition::DiskWait,
            Some('T') | Some('t') => Condition::Stopped,
            Some('Z') | Some('X') => Condition::Zombie,
            _ => Condition::Starting,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Condition::Running => "running",
            Condition::Sleeping => "sleeping",
            Condition::DiskWait => "disk wait",
            Condition::Stopped => "stopped",
            Condition::Zombie => "zombie",
            Condition::Stopping => "stopping",
            Condition::EndedOk | Condition::EndedBad => "ended",
            Condition::Starting => "started",
        }
    }

    /// A symbol that carries the meaning without colour.
    pub fn symbol(self) -> &'static str {
        match self {
            Condition::Running => "●",
            Condition::Sleeping => "●",
            Condition::DiskWait => "◆",
            Condition::Stopped => "‖",
            Condition::Zombie => "Z",
            Condition::Stopping => "◐",
            Condition::EndedOk => "○",
            Condition::EndedBad => "✗",
            Condition::Starting => "·",
        }
    }
}

/// The "how it ended" column: `exit 7`, `SIGTERM (-15 / 143)`, or empty while alive.
pub fn ending(proc: &ProcessView) -> String {
    proc.ended.map(|e| e.status.describe()).unwrap_or_default()
}

/// As [`ending`], and for a zombie how long it has waited for its parent to reap it:
/// `exit 0 · zombie 1s`.
pub fn ending_at(proc: &ProcessView, now: f64) -> String {
    match proc.zombie_for(now) {
        Some(waited) => format!("{} · zombie {}", ending(proc), duration(waited)),
        None => ending(proc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(kib(812), "812K");
        assert_eq!(kib(2150), "2.1M");
        assert_eq!(duration(0.25), "250ms");
        assert_eq!(duration(185.0), "3m05s");
        assert_eq!(duration(7380.0), "2h03m");
        assert_eq!(duration(-3.0), "0ms");
    }
}
