//! User intentions: one serde-tagged vocabulary, used today by the keymap; the planned
//! control socket and `ctl` will speak the same.
//!
//! The UI never touches a process; it emits an `Action`, the supervisor carries it out and
//! reports what happened as events.

use serde::{Deserialize, Serialize};

/// Something a person (or a script) asks the supervisor to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Send `signal` (a number) to `pid`; `start_time` pins the identity when known, so a
    /// reused pid is never hit.
    Signal {
        pid: i32,
        signal: i32,
        #[serde(default)]
        start_time: Option<u64>,
    },
    /// Stop the worker of this pid (or start it again if it has ended) and start it afresh.
    Restart { pool: String, worker: u32 },
    /// Set a pool's size.
    Scale { pool: String, size: u32 },
    /// Stop everything and end the session.
    Quit,
    /// Let a demo held at a lesson step go on to the next one.
    NextStep,
    /// The TUI's output pane is now `cols` x `rows` characters: workers' ptys take this size.
    OutputPaneSize { cols: u16, rows: u16 },
    /// Read the config file again and apply it (`forkscope up`): a `reload` event says what
    /// changed, or why the file was refused.
    Reload,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_json() {
        let action: Action =
            serde_json::from_str(r#"{"action":"signal","pid":12,"signal":15}"#).unwrap();
        assert_eq!(
            action,
            Action::Signal {
                pid: 12,
                signal: 15,
                start_time: None
            }
        );
        let json = serde_json::to_string(&Action::Scale {
            pool: "w".into(),
            size: 3,
        })
        .unwrap();
        assert_eq!(json, r#"{"action":"scale","pool":"w","size":3}"#);
    }
}
