//! The TUI's state and its pure `update`: messages in (engine events, keys, mouse), effects
//! out (actions for the supervisor). Rendering reads this; nothing here touches the OS.

use std::collections::HashSet;

use crossterm::event::{KeyEvent, MouseEvent};
use ratatui::layout::Rect;

use super::replay::{Control, ReplayStatus};
use super::rows::{Row, RowKey, visible_rows};
use super::theme::Theme;
use crate::inspect::pystack::watch::StackTarget;
use crate::inspect::shm::decode::Format;
use crate::inspect::shm::watch::WatchRequest;
use crate::inspect::sync::watch::{SyncRequest, SyncSnapshot};
use crate::model::pystack::ProcessStacks;
use crate::model::shm::ShmSnapshot;
use crate::model::signals::signal_name;
use crate::model::state::{ProcId, ProcessView};
use crate::model::sync::SyncReport;
use crate::model::{Action, Delivery, Event, EventBody, SignalReason, State, update};

/// Everything that can happen to the TUI.
#[derive(Clone, Debug)]
pub enum Msg {
    Engine(Event),
    Key(KeyEvent),
    Mouse(MouseEvent),
    /// Where the last frame put each pane (for mouse hits).
    Layout(Areas),
    /// Where playback stands (replay only).
    Replay(ReplayStatus),
    /// A fresh reading of the tree's shared memory (from the watcher thread).
    Shm(Box<ShmSnapshot>),
    /// Which processes listen on multiprocessing sockets (from the role probe thread).
    RoleEvidence(crate::inspect::role_probe::RoleEvidence),
    /// A fresh reading of the selected process's Python stacks (from the stack reader).
    PyStack(Box<ProcessStacks>),
    /// A fresh scan of what the tree waits on (from the sync watcher thread).
    Sync(Box<SyncSnapshot>),
}

/// What the TUI asks of the outside world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Engine(Action),
    Replay(Control),
}

/// The main pane: the process tree or the timeline of the same rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MainView {
    Tree,
    Timeline,
    /// The shared-memory inspector over the whole body.
    Shm,
    /// Barriers, locks, semaphores, channels and deadlocks (`w`).
    Sync,
}

/// What the sync watcher last reported.
#[derive(Clone, Debug, Default)]
pub struct SyncState {
    /// The latest scan (waits of every thread; the rest only when `full`).
    pub latest: Option<SyncReport>,
    /// The latest full scan (semaphores, barriers, channels, deadlocks).
    pub full: Option<SyncReport>,
    /// First line of the Sync view shown.
    pub scroll: usize,
}

impl SyncState {
    /// What `pid`'s main thread waits on, per the latest scan.
    pub fn wait_of(&self, pid: i32) -> Option<&crate::model::sync::BlockedOn> {
        self.latest.as_ref()?.process(pid).map(|p| &p.blocked_on)
    }
}

/// The shared-memory view: the latest snapshot and what is selected in it.
#[derive(Clone, Debug, Default)]
pub struct ShmState {
    pub snapshot: Option<ShmSnapshot>,
    /// Index into the snapshot's segments.
    pub selected: usize,
    /// First decoded row shown.
    pub scroll: usize,
}

/// Zoom and scroll of the timeline.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TimelineState {
    /// None: fit the whole session in the width.
    pub seconds_per_column: Option<f64>,
    pub start: f64,
}

/// Which pane keys scroll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    Tree,
    Output,
}

/// Where typed characters go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputMode {
    Normal,
    Filter,
    OutputSearch,
}

/// A question that needs `y` before anything happens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confirm {
    Kill {
        pid: i32,
        start_time: Option<u64>,
        command: String,
    },
    Quit {
        running: usize,
    },
}

/// What is drawn over the panes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overlay {
    None,
    Help,
    Confirm(Confirm),
    /// The signal menu, with the highlighted entry.
    Signals {
        selected: usize,
    },
}

/// The status line: the outcome of the last action, or a notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub error: bool,
}

/// Pane rectangles of the last frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Areas {
    pub tree: Rect,
    /// First tree row drawn (scroll offset) in that frame.
    pub tree_offset: usize,
    pub output: Rect,
}

/// The TUI's whole state.
#[derive(Debug)]
pub struct App {
    pub state: State,
    pub title: String,
    pub theme: Theme,
    pub selected: Option<RowKey>,
    pub folded: HashSet<RowKey>,
    pub filter: String,
    pub input: InputMode,
    pub focus: Focus,
    pub overlay: Overlay,
    pub status: Option<Status>,
    /// Lines scrolled up from the newest output line; 0 follows new output.
    pub output_scroll: usize,
    pub output_search: String,
    pub quitting: bool,
    /// The session's exit status, once the engine's `end` arrived.
    pub finished: Option<i32>,
    pub areas: Areas,
    pub main_view: MainView,
    pub timeline: TimelineState,
    /// Set when the TUI plays a recording instead of watching a live engine.
    pub replay: Option<ReplayStatus>,
    pub shm: ShmState,
    /// Decoder rules (the config's `[[shm.layout]]`) for the shared-memory view.
    pub shm_rules: std::sync::Arc<[crate::inspect::shm::decode::rules::FormatRule]>,
    /// The latest role-probe answer: the multiprocessing sockets each process listens on and
    /// what its Python stack says it is.
    pub role_evidence: crate::inspect::role_probe::RoleEvidence,
    /// `e` hid the lesson panel.
    pub lesson_hidden: bool,
    /// The latest Python stacks read for the selected process.
    pub pystack: Option<ProcessStacks>,
    pub sync: SyncState,
}

impl App {
    pub fn new(title: String, scrollback: usize, theme: Theme) -> App {
        App {
            state: State::new(scrollback),
            title,
            theme,
            selected: None,
            folded: HashSet::new(),
            filter: String::new(),
            input: InputMode::Normal,
            focus: Focus::Tree,
            overlay: Overlay::None,
            status: None,
            output_scroll: 0,
            output_search: String::new(),
            quitting: false,
            finished: None,
            areas: Areas::default(),
            main_view: MainView::Tree,
            timeline: TimelineState::default(),
            replay: None,
            shm: ShmState::default(),
            shm_rules: std::sync::Arc::from(Vec::new()),
            role_evidence: Default::default(),
            lesson_hidden: false,
            pystack: None,
            sync: SyncState::default(),
        }
    }

    /// The role of a process: `model::roles::classify`, as `inspect` uses it, with what the
    /// role probe found.
    pub fn role_of(
        &self,
        proc: &crate::model::state::ProcessView,
    ) -> crate::model::roles::ProcRole {
        let evidence = &self.role_evidence;
        let listening = evidence
            .listening
            .get(&proc.pid)
            .map_or(&[][..], Vec::as_slice);
        let hint = evidence.stack_hints.get(&proc.pid).copied();
        crate::model::roles::role_in_state(&self.state, proc.id, listening, hint)
    }

    /// The live descendants (pid, start time) whose role could depend on the sockets they
    /// listen on or on their Python stack.
    pub fn role_probe_procs(&self) -> Vec<(i32, u64)> {
        use crate::model::roles::ProcRole;
        self.state
            .procs
            .values()
            .filter(|p| p.is_alive() && matches!(p.origin, crate::model::state::Origin::Descendant))
            .filter(|p| {
                matches!(
                    crate::model::roles::role_in_state(&self.state, p.id, &[], None),
                    ProcRole::ForkChild | ProcRole::SpawnChild | ProcRole::ForkserverChild
                )
            })
            .filter_map(|p| Some((p.pid, p.start_time?)))
            .collect()
    }

    /// The rows the tree shows now.
    pub fn rows(&self) -> Vec<Row> {
        visible_rows(&self.state, &self.folded, &self.filter)
    }

    /// Index of the selected row among `rows`.
    pub fn selected_index(&self, rows: &[Row]) -> Option<usize> {
        let key = self.selected.as_ref()?;
        rows.iter().position(|r| &r.key == key)
    }

    /// The selected process, if a process row is selected.
    pub fn selected_proc(&self) -> Option<&ProcessView> {
        match &self.selected {
            Some(RowKey::Proc(id)) => self.state.procs.get(id),
            _ => None,
        }
    }

    pub fn selected_proc_id(&self) -> Option<ProcId> {
        self.selected_proc().map(|p| p.id)
    }

    pub(super) fn say(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: false,
        });
    }

    pub(super) fn warn_engine_gone(&mut self) {
        self.warn("the engine has ended: nothing more can be done to the processes");
    }

    pub(super) fn warn(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: true,
        });
    }

    /// Applies one message; returns what the outside world must do.
    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Engine(event) => {
                if let Some(event) = crate::model::state::update_output(&mut self.state, event) {
                    self.on_engine(&event);
                }
                Vec::new()
            }
            Msg::Key(key) => {
                let effects = self.on_key(key);
                self.read_only(effects)
            }
            Msg::Mouse(mouse) => self.on_mouse(mouse),
            Msg::Layout(areas) => {
                let resized = (areas.output.width, areas.output.height)
                    != (self.areas.output.width, self.areas.output.height);
                self.areas = areas;
                // Inside the pane's border; the engine sizes the workers' ptys to it.
                let (cols, rows) = (
                    areas.output.width.saturating_sub(2),
                    areas.output.height.saturating_sub(2),
                );
                if resized && cols > 0 && rows > 0 {
                    vec![Effect::Engine(Action::OutputPaneSize { cols, rows })]
                } else {
                    Vec::new()
                }
            }
            Msg::Replay(status) => {
                self.replay = Some(status);
                Vec::new()
            }
            Msg::RoleEvidence(evidence) => {
                self.role_evidence = evidence;
                Vec::new()
            }
            Msg::PyStack(stacks) => {
                self.pystack = Some(*stacks);
                Vec::new()
            }
            Msg::Shm(snapshot) => {
                let count = snapshot.segments.len();
                self.shm.snapshot = Some(*snapshot);
                self.shm.selected = self.shm.selected.min(count.saturating_sub(1));
                Vec::new()
            }
            Msg::Sync(snapshot) => {
                let SyncSnapshot { report, full } = *snapshot;
                if full {
                    self.sync.full = Some(report.clone());
                }
                self.sync.latest = Some(report);
                Vec::new()
            }
        }
    }

    /// Whose Python stacks the reader should read: the selected live process, in a live
    /// session.
    pub fn stack_target(&self) -> StackTarget {
        if self.replay.is_some() {
            return None;
        }
        let proc = self.selected_proc().filter(|p| p.is_alive())?;
        Some((proc.pid, proc.start_time))
    }

    /// The stacks read for the selected process, if the latest reading is of it.
    pub fn selected_stacks(&self) -> Option<&ProcessStacks> {
        let proc = self.selected_proc()?;
        self.pystack
            .as_ref()
            .filter(|s| s.pid == proc.pid && proc.start_time.is_none_or(|t| t == s.start_time))
    }

    /// What the sync watcher should scan in a live session: every living process of the
    /// tree, each thread's wait (the WAITING ON column); the full scan while the Sync view
    /// is open.
    pub fn sync_request(&self) -> Option<SyncRequest> {
        if self.replay.is_some() {
            return None;
        }
        let mut pids: Vec<i32> = self
            .state
            .procs
            .values()
            .filter(|p| p.is_alive())
            .map(|p| p.pid)
            .collect();
        pids.sort_unstable();
        Some(SyncRequest {
            pids,
            full: self.main_view == MainView::Sync,
        })
    }

    /// What the shared-memory watcher should read, while its view is open in a live session.
    pub fn shm_request(&self) -> Option<WatchRequest> {
        if self.main_view != MainView::Shm || self.replay.is_some() {
            return None;
        }
        let mut pids: Vec<i32> = self
            .state
            .procs
            .values()
            .filter(|p| p.is_alive())
            .map(|p| p.pid)
            .collect();
        pids.sort_unstable();
        let selected = self
            .shm
            .snapshot
            .as_ref()
            .and_then(|s| s.segments.get(self.shm.selected))
            .map(|segment| segment.id);
        Some(WatchRequest {
            pids,
            selected,
            format: Format::Auto,
            rules: self.shm_rules.clone(),
        })
    }

    /// A replay has no engine: actions on processes are refused, with a reason.
    fn read_only(&mut self, effects: Vec<Effect>) -> Vec<Effect> {
        if self.replay.is_none() {
            return effects;
        }
        let before = effects.len();
        let kept: Vec<Effect> = effects
            .into_iter()
            .filter(|e| matches!(e, Effect::Replay(_)))
            .collect();
        if kept.len() < before {
            self.warn("replay is read-only: signals, restarts and scaling need a live session");
        }
        kept
    }

    /// A replay's shared-memory view shows what the recording's `shm` events tell.
    pub(super) fn replay_shm(&mut self) {
        if self.replay.is_some() && !self.state.shm.is_empty() {
            self.shm.snapshot = Some(self.state.shm.snapshot(self.shm.selected));
        }
    }

    fn on_engine(&mut self, event: &Event) {
        update(&mut self.state, event);
        match &event.body {
            EventBody::Shm { .. } => self.replay_shm(),
            EventBody::Signal {
                pid,
                signal,
                reason: SignalReason::User,
                result,
            } => match result {
                Delivery::Sent => self.say(format!("{signal} sent to pid {pid}")),
                Delivery::Failed(why) => self.warn(format!("{signal} to pid {pid} failed: {why}")),
            },
            EventBody::Spawn {
                pid,
                pool,
                worker,
                restarts,
                ..
            } if *restarts > 0 => self.say(format!("{pool}[{worker}] restarted as pid {pid}")),
            EventBody::Scale { pool, from, to, .. } => {
                self.say(format!("pool {pool}: {from} → {to} workers"))
            }
            EventBody::Notice { level, message, .. } => {
                if *level == crate::model::NoticeLevel::Error {
                    self.warn(message.clone())
                } else {
                    self.say(message.clone())
                }
            }
            EventBody::SpawnFailed {
                pool,
                worker,
                error,
                ..
            } => self.warn(format!("{pool}[{worker}] could not start: {error}")),
            EventBody::WorkerFailed {
                pool,
                worker,
                reason,
                ..
            } => self.warn(format!("{pool}[{worker}] failed: {reason}")),
            EventBody::Stopping { reason, .. } => self.say(format!(
                "stopping: {reason} (SIGKILL after {:.1}s)",
                self.state.stop_timeout
            )),
            EventBody::End { status, .. } => self.finished = Some(*status),
            _ => {}
        }
        if self.selected.is_none() || !self.selection_exists() {
            self.selected = self
                .rows()
                .into_iter()
                .find(|r| matches!(r.key, RowKey::Proc(_)))
                .map(|r| r.key);
        }
    }

    fn selection_exists(&self) -> bool {
        match &self.selected {
            Some(RowKey::Proc(id)) => self.state.procs.contains_key(id),
            Some(_) => true,
            None => false,
        }
    }

    /// Sends `signo` to the selected process.
    pub(super) fn signal_selected(&mut self, signo: i32) -> Vec<Effect> {
        let Some(proc) = self.selected_proc() else {
            self.warn("select a process first");
            return Vec::new();
        };
        if !proc.is_alive() {
            let text = format!(
                "pid {} has already ended ({})",
                proc.pid,
                super::format::ending(proc)
            );
            self.warn(text);
            return Vec::new();
        }
        let action = Action::Signal {
            pid: proc.pid,
            signal: signo,
            start_time: proc.start_time,
        };
        let text = format!("sending {} to pid {}…", signal_name(signo), proc.pid);
        self.say(text);
        vec![Effect::Engine(action)]
    }
}
