//! The keymap as data: [`KEYS`] is the one table `input.rs` dispatches through and the help
//! overlay lists. A key maps to a [`Command`] (serde-tagged, like the engine's `Action`s that
//! the process commands turn into); a row may bind several keys and is shown as one line.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::{Deserialize, Serialize};

/// What a key does in the TUI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    Up,
    Down,
    PageUp,
    PageDown,
    First,
    Last,
    Fold,
    SwitchFocus,
    Search,
    NextMatch,
    PreviousMatch,
    ClearFilter,
    /// SIGTERM to the selected process (an engine `Action::Signal`).
    Terminate,
    /// SIGKILL to the selected process, after a confirmation.
    Kill,
    SignalMenu,
    /// `Action::Restart` of the selected worker.
    Restart,
    /// `Action::Scale` of the selected pool by +1 / -1.
    Grow,
    Shrink,
    Follow,
    ToggleTimeline,
    ToggleShm,
    /// The Sync view: who waits for what.
    ToggleSync,
    TimelineLeft,
    TimelineRight,
    ZoomIn,
    ZoomOut,
    Fit,
    ReplayPause,
    ReplayStep,
    ReplaySlower,
    ReplayFaster,
    ClearEnded,
    /// `Action::NextStep`: let a demo held at a lesson step go on.
    NextStep,
    /// Hide or show the lesson panel.
    ToggleLesson,
    Help,
    /// `Action::Quit` (after a confirmation when processes run).
    Quit,
}

impl Command {
    /// Commands that ask the supervisor to act on processes (refused in a replay).
    pub fn acts_on_processes(self) -> bool {
        matches!(
            self,
            Command::Terminate
                | Command::Kill
                | Command::SignalMenu
                | Command::Restart
                | Command::Grow
                | Command::Shrink
        )
    }
}

/// A key as the table writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A character typed without Ctrl (Shift is part of the character: `K`, `+`).
    Char(char),
    Ctrl(char),
    Code(KeyCode),
}

impl Key {
    fn matches(self, event: &KeyEvent) -> bool {
        let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
        match self {
            Key::Char(c) => !ctrl && event.code == KeyCode::Char(c),
            Key::Ctrl(c) => ctrl && event.code == KeyCode::Char(c),
            Key::Code(code) => event.code == code,
        }
    }
}

/// Where a row applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Context {
    Always,
    /// Only while the timeline is shown.
    Timeline,
    /// Only while replaying a recording.
    Replay,
}

/// One row of the table: its keys and what each does, as the help shows it.
pub struct Binding {
    pub label: &'static str,
    pub help: &'static str,
    pub context: Context,
    pub keys: &'static [(Key, Command)],
}

const fn row(label: &'static str, help: &'static str, keys: &'static [(Key, Command)]) -> Binding {
    Binding {
        label,
        help,
        context: Context::Always,
        keys,
    }
}

use Command as C;
use Key::{Char, Code, Ctrl};

/// Every key. Earlier rows win when two match.
pub const KEYS: &[Binding] = &[
    Binding {
        label: "p . < >",
        help: "replay: pause, step one event, slower, faster",
        context: Context::Replay,
        keys: &[
            (Char('p'), C::ReplayPause),
            (Char('.'), C::ReplayStep),
            (Char('<'), C::ReplaySlower),
            (Char('>'), C::ReplayFaster),
        ],
    },
    Binding {
        label: "←/→ h/l z/Z 0",
        help: "timeline: scroll, zoom in/out, fit the whole session",
        context: Context::Timeline,
        keys: &[
            (Code(KeyCode::Left), C::TimelineLeft),
            (Char('h'), C::TimelineLeft),
            (Code(KeyCode::Right), C::TimelineRight),
            (Char('l'), C::TimelineRight),
            (Char('z'), C::ZoomIn),
            (Char('Z'), C::ZoomOut),
            (Char('0'), C::Fit),
        ],
    },
    row(
        "↑/k ↓/j",
        "move the selection (or scroll the output pane when it has focus)",
        &[
            (Code(KeyCode::Up), C::Up),
            (Char('k'), C::Up),
            (Code(KeyCode::Down), C::Down),
            (Char('j'), C::Down),
        ],
    ),
    row(
        "PgUp/PgDn g/G",
        "page up/down, first/last",
        &[
            (Code(KeyCode::PageUp), C::PageUp),
            (Code(KeyCode::PageDown), C::PageDown),
            (Code(KeyCode::Home), C::First),
            (Char('g'), C::First),
            (Code(KeyCode::End), C::Last),
            (Char('G'), C::Last),
        ],
    ),
    row(
        "Enter/Space",
        "fold or unfold the selected subtree",
        &[(Code(KeyCode::Enter), C::Fold), (Char(' '), C::Fold)],
    ),
    row(
        "Tab",
        "switch focus between the tree and the output pane",
        &[
            (Code(KeyCode::Tab), C::SwitchFocus),
            (Code(KeyCode::BackTab), C::SwitchFocus),
        ],
    ),
    row(
        "/",
        "filter the tree by pid or command (in the output pane: search)",
        &[(Char('/'), C::Search)],
    ),
    row(
        "n / N",
        "next / previous search match in the output",
        &[(Char('n'), C::NextMatch), (Char('N'), C::PreviousMatch)],
    ),
    row(
        "Esc",
        "clear the filter and the search",
        &[(Code(KeyCode::Esc), C::ClearFilter)],
    ),
    row(
        "t",
        "send SIGTERM to the selected process",
        &[(Char('t'), C::Terminate)],
    ),
    row(
        "K",
        "send SIGKILL to the selected process (asks y)",
        &[(Char('K'), C::Kill)],
    ),
    row(
        "s / F9",
        "signal menu: any signal to the selected process",
        &[
            (Char('s'), C::SignalMenu),
            (Code(KeyCode::F(9)), C::SignalMenu),
        ],
    ),
    row(
        "r",
        "restart the selected worker",
        &[(Char('r'), C::Restart)],
    ),
    row(
        "+ / -",
        "grow / shrink the selected pool by one worker",
        &[
            (Char('+'), C::Grow),
            (Char('='), C::Grow),
            (Char('-'), C::Shrink),
        ],
    ),
    row("f", "follow the newest output", &[(Char('f'), C::Follow)]),
    row(
        "v",
        "switch between the tree and the timeline",
        &[(Char('v'), C::ToggleTimeline)],
    ),
    row(
        "m",
        "shared memory: segments, decoded contents, attach matrix (j/k select)",
        &[(Char('m'), C::ToggleShm)],
    ),
    row(
        "w",
        "who waits for what: deadlocks, barriers, locks, semaphores, channels (j/k scroll)",
        &[(Char('w'), C::ToggleSync)],
    ),
    row(
        "c",
        "clear ended processes from the tree",
        &[(Char('c'), C::ClearEnded)],
    ),
    row(
        ". / e",
        "demo: go on to the next lesson step / hide or show the lesson panel",
        &[(Char('.'), C::NextStep), (Char('e'), C::ToggleLesson)],
    ),
    row("?", "this help", &[(Char('?'), C::Help)]),
    row(
        "q / Ctrl-C",
        "quit: stop every process (asks y if any is running)",
        &[(Char('q'), C::Quit), (Ctrl('c'), C::Quit)],
    ),
    row("mouse", "click selects, wheel scrolls", &[]),
];

/// The command `event` means, given whether the timeline is shown and a replay runs.
pub fn lookup(event: &KeyEvent, timeline: bool, replay: bool) -> Option<Command> {
    KEYS.iter()
        .filter(|binding| match binding.context {
            Context::Always => true,
            Context::Timeline => timeline,
            Context::Replay => replay,
        })
        .flat_map(|binding| binding.keys.iter())
        .find(|(key, _)| key.matches(event))
        .map(|(_, command)| *command)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn context_rows_apply_only_in_their_context() {
        let z = key(KeyCode::Char('z'), KeyModifiers::NONE);
        assert_eq!(lookup(&z, false, false), None);
        assert_eq!(lookup(&z, true, false), Some(Command::ZoomIn));
        let p = key(KeyCode::Char('p'), KeyModifiers::NONE);
        assert_eq!(lookup(&p, false, true), Some(Command::ReplayPause));
        let ctrl_c = key(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(lookup(&ctrl_c, false, false), Some(Command::Quit));
        let c = key(KeyCode::Char('c'), KeyModifiers::NONE);
        assert_eq!(lookup(&c, false, false), Some(Command::ClearEnded));
        let shift_k = key(KeyCode::Char('K'), KeyModifiers::SHIFT);
        assert_eq!(lookup(&shift_k, false, false), Some(Command::Kill));
    }

    #[test]
    fn commands_are_serde_tagged() {
        let json = serde_json::to_string(&Command::ZoomIn).unwrap();
        assert_eq!(json, r#"{"command":"zoom_in"}"#);
        let back: Command = serde_json::from_str(r#"{"command":"quit"}"#).unwrap();
        assert_eq!(back, Command::Quit);
    }

    #[test]
    fn no_key_is_bound_twice_in_one_context() {
        let mut seen = std::collections::HashSet::new();
        for binding in KEYS {
            for (key, _) in binding.keys {
                assert!(
                    seen.insert((format!("{key:?}"), binding.context)),
                    "{key:?} bound twice"
                );
            }
        }
    }
}
