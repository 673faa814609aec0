//! How a process ended: the tagged exit status and its two numeric conventions.
//!
//! `ExitStatus` keeps the distinction that supervisord and Go's `ExitCode()` lose: a process
//! either exited with a code, or was killed by a signal (maybe dumping core). Python reports
//! the latter as `exitcode == -N`, shells as `128 + N`; both are derived here, never stored.

use serde::{Deserialize, Serialize};

use super::signals::signal_name;

/// The exact way a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "ExitFields", try_from = "ExitFields")]
pub enum ExitStatus {
    /// `exit(code)` or a return from `main`.
    Exited(i32),
    /// Killed by a signal.
    Signaled { signal: i32, core_dumped: bool },
    /// The process is gone but no source could tell how (e.g. `/proc` polling only).
    Unknown,
}

impl ExitStatus {
    /// Decodes a raw `wait(2)` status word (as `waitpid` or the kernel's proc connector give it).
    pub fn from_wait_status(raw: i32) -> ExitStatus {
        if libc::WIFEXITED(raw) {
            ExitStatus::Exited(libc::WEXITSTATUS(raw))
        } else if libc::WIFSIGNALED(raw) {
            ExitStatus::Signaled {
                signal: libc::WTERMSIG(raw),
                core_dumped: libc::WCOREDUMP(raw),
            }
        } else {
            ExitStatus::Unknown
        }
    }

    /// The exit code, when the process exited normally.
    pub fn code(self) -> Option<i32> {
        match self {
            ExitStatus::Exited(code) => Some(code),
            _ => None,
        }
    }

    /// The signal number, when the process was killed by one.
    pub fn signal(self) -> Option<i32> {
        match self {
            ExitStatus::Signaled { signal, .. } => Some(signal),
            _ => None,
        }
    }

    /// Python's `Process.exitcode`: the code, or `-signo`.
    pub fn python_exitcode(self) -> Option<i32> {
        match self {
            ExitStatus::Exited(code) => Some(code),
            ExitStatus::Signaled { signal, .. } => Some(-signal),
            ExitStatus::Unknown => None,
        }
    }

    /// The shell's `$?`: the code, or `128 + signo`.
    pub fn shell_status(self) -> Option<i32> {
        match self {
            ExitStatus::Exited(code) => Some(code),
            ExitStatus::Signaled { signal, .. } => Some(128 + signal),
            ExitStatus::Unknown => None,
        }
    }

    /// True only for `exit 0`.
    pub fn success(self) -> bool {
        self == ExitStatus::Exited(0)
    }

    /// Human text: `exit 0`, `exit 7`, `SIGTERM (-15 / 143)`, `SIGSEGV core (-11 / 139)`.
    pub fn describe(self) -> String {
        match self {
            ExitStatus::Exited(code) => format!("exit {code}"),
            ExitStatus::Signaled {
                signal,
                core_dumped,
            } => {
                let core = if core_dumped { " core" } else { "" };
                format!(
                    "{}{core} (-{signal} / {})",
                    signal_name(signal),
                    128 + signal
                )
            }
            ExitStatus::Unknown => "status unknown".to_string(),
        }
    }
}

/// The flat JSON shape of an exit status, as the event contract in `docs/events.md` gives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExitFields {
    pub code: Option<i32>,
    pub signal: Option<String>,
    #[serde(default)]
    pub signo: Option<i32>,
    #[serde(default)]
    pub core_dumped: bool,
    pub python_exitcode: Option<i32>,
    pub shell_status: Option<i32>,
}

impl From<ExitStatus> for ExitFields {
    fn from(status: ExitStatus) -> Self {
        let (core_dumped, signal) = match status {
            ExitStatus::Signaled {
                signal,
                core_dumped,
            } => (core_dumped, Some(signal)),
            _ => (false, None),
        };
        ExitFields {
            code: status.code(),
            signal: signal.map(|s| signal_name(s).to_string()),
            signo: signal,
            core_dumped,
            python_exitcode: status.python_exitcode(),
            shell_status: status.shell_status(),
        }
    }
}

impl TryFrom<ExitFields> for ExitStatus {
    type Error = String;

    fn try_from(fields: ExitFields) -> Result<Self, Self::Error> {
        match (fields.code, fields.signo, fields.signal.as_deref()) {
            (Some(code), None, None) => Ok(ExitStatus::Exited(code)),
            (None, Some(signal), _) => Ok(ExitStatus::Signaled {
                signal,
                core_dumped: fields.core_dumped,
            }),
            (None, None, Some(name)) => super::signals::signal_number(name)
                .map(|signal| ExitStatus::Signaled {
                    signal,
                    core_dumped: fields.core_dumped,
                })
                .ok_or_else(|| format!("unknown signal name {name:?}")),
            (None, None, None) => Ok(ExitStatus::Unknown),
            (Some(_), _, _) => Err("exit status has both a code and a signal".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_wait_statuses() {
        assert_eq!(ExitStatus::from_wait_status(7 << 8), ExitStatus::Exited(7));
        assert_eq!(
            ExitStatus::from_wait_status(libc::SIGTERM),
            ExitStatus::Signaled {
                signal: 15,
                core_dumped: false
            }
        );
        assert_eq!(
            ExitStatus::from_wait_status(libc::SIGSEGV | 0x80),
            ExitStatus::Signaled {
                signal: 11,
                core_dumped: true
            }
        );
    }

    #[test]
    fn both_conventions() {
        let term = ExitStatus::Signaled {
            signal: 15,
            core_dumped: false,
        };
        assert_eq!(term.python_exitcode(), Some(-15));
        assert_eq!(term.shell_status(), Some(143));
        assert_eq!(term.describe(), "SIGTERM (-15 / 143)");
        assert_eq!(ExitStatus::Exited(7).describe(), "exit 7");
        let segv = ExitStatus::Signaled {
            signal: 11,
            core_dumped: true,
        };
        assert_eq!(segv.describe(), "SIGSEGV core (-11 / 139)");
    }

    #[test]
    fn json_round_trip() {
        for status in [
            ExitStatus::Exited(0),
            ExitStatus::Exited(255),
            ExitStatus::Signaled {
                signal: 9,
                core_dumped: false,
            },
            ExitStatus::Signaled {
                signal: 6,
                core_dumped: true,
            },
            ExitStatus::Unknown,
        ] {
            let json = serde_json::to_string(&status).unwrap();
            let back: ExitStatus = serde_json::from_str(&json).unwrap();
            assert_eq!(back, status, "{json}");
        }
        let json = serde_json::to_value(ExitStatus::Signaled {
            signal: 15,
            core_dumped: false,
        })
        .unwrap();
        assert_eq!(json["signal"], "SIGTERM");
        assert_eq!(json["code"], serde_json::Value::Null);
        assert_eq!(json["python_exitcode"], -15);
        assert_eq!(json["shell_status"], 143);
    }
}
