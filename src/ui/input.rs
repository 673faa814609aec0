//! Keys and mouse to changes of the TUI state and actions for the supervisor. Keys go
//! through the table of `keymap.rs` (the help overlay shows exactly that table).

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind};
use ratatui::layout::Position;

use super::app::{App, Confirm, Effect, Focus, InputMode, MainView, Overlay};
use super::keymap::{self, Command};
use super::replay::Control;
use super::rows::{RowKey, pool_of};
use crate::model::Action;
use crate::model::signals::all_signals;

impl App {
    pub(super) fn on_key(&mut self, key: KeyEvent) -> Vec<crate::ui::app::Effect> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        match self.overlay.clone() {
            Overlay::Help => {
                self.overlay = Overlay::None;
                return Vec::new();
            }
            Overlay::Confirm(confirm) => return self.on_confirm(confirm, key),
            Overlay::Signals { selected } => return self.on_signal_menu(selected, key),
            Overlay::None => {}
        }
        match self.input {
            InputMode::Filter | InputMode::OutputSearch => {
                self.on_text_input(key);
                Vec::new()
            }
            InputMode::Normal => self.on_normal_key(key),
        }
    }

    fn on_normal_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let timeline = self.main_view == MainView::Timeline;
        let Some(command) = keymap::lookup(&key, timeline, self.replay.is_some()) else {
            return Vec::new();
        };
        if self.replay.is_some() {
            let control = match command {
                Command::Quit => Some(Control::Quit),
                Command::ReplayPause => Some(Control::TogglePause),
                Command::ReplayStep => Some(Control::Step),
                Command::ReplayFaster => Some(Control::Faster),
                Command::ReplaySlower => Some(Control::Slower),
                _ => None,
            };
            if let Some(control) = control {
                return vec![Effect::Replay(control)];
            }
            if command.acts_on_processes() {
                self.warn("replay is read-only: signals, restarts and scaling need a live session");
                return Vec::new();
            }
        }
        if self.main_view == MainView::Timeline && self.on_timeline_command(command) {
            return Vec::new();
        }
        if self.main_view == MainView::Shm && self.on_shm_command(command) {
            return Vec::new();
        }
        if self.main_view == MainView::Sync && self.on_sync_command(command) {
            return Vec::new();
        }
        self.run_command(command)
    }

    fn run_command(&mut self, command: Command) -> Vec<Effect> {
        match command {
            Command::ToggleTimeline => {
                self.main_view = match self.main_view {
                    MainView::Tree => MainView::Timeline,
                    MainView::Timeline | MainView::Shm | MainView::Sync => MainView::Tree,
                }
            }
            Command::ToggleShm => {
                self.main_view = match self.main_view {
                    MainView::Shm => MainView::Tree,
                    _ => MainView::Shm,
                };
            }
            Command::ToggleSync => {
                if self.replay.is_some() {
                    self.warn("waits are read live: not available in a replay");
                } else {
                    self.main_view = match self.main_view {
                        MainView::Sync => MainView::Tree,
                        _ => MainView::Sync,
                    };
                    self.sync.scroll = 0;
                }
            }
            Command::Quit => return self.ask_quit(),
            Command::Help => self.overlay = Overlay::Help,
            Command::Search => {
                if self.focus == Focus::Output {
                    self.output_search.clear();
                    self.input = InputMode::OutputSearch;
                } else {
                    self.filter.clear();
                    self.input = InputMode::Filter;
                }
            }
            Command::ClearFilter => {
                self.filter.clear();
                self.output_search.clear();
                self.status = None;
            }
            Command::SwitchFocus => {
                self.focus = match self.focus {
                    Focus::Tree => Focus::Output,
                    Focus::Output => Focus::Tree,
                }
            }
            Command::Up => self.scroll(-1),
            Command::Down => self.scroll(1),
            Command::PageUp => self.scroll(-10),
            Command::PageDown => self.scroll(10),
            Command::First => self.scroll(isize::MIN / 2),
            Command::Last => self.scroll(isize::MAX / 2),
            Command::Fold => self.toggle_fold(),
            Command::Terminate => return self.signal_selected(libc::SIGTERM),
            Command::Kill => self.ask_kill(),
            Command::SignalMenu => {
                if self.selected_proc().is_some_and(|p| p.is_alive()) {
                    self.overlay = Overlay::Signals { selected: 14 };
                } else {
                    self.warn("select a running process to signal");
                }
            }
            Command::Restart => return self.restart_selected(),
            Command::Grow => return self.scale_selected(1),
            Command::Shrink => return self.scale_selected(-1),
            Command::Follow => {
                self.output_scroll = 0;
                self.say("following new output");
            }
            Command::ClearEnded => {
                self.state.clear_ended();
                self.say("cleared ended processes");
            }
            Command::NextStep => return self.next_step(),
            Command::ToggleLesson => {
                self.lesson_hidden = !self.lesson_hidden;
                self.say(if self.lesson_hidden {
                    "lesson panel hidden (e shows it)"
                } else {
                    "lesson panel shown"
                });
            }
            Command::NextMatch => self.jump_to_match(true),
            Command::PreviousMatch => self.jump_to_match(false),
            Command::TimelineLeft
            | Command::TimelineRight
            | Command::ZoomIn
            | Command::ZoomOut
            | Command::Fit
            | Command::ReplayPause
            | Command::ReplayStep
            | Command::ReplaySlower
            | Command::ReplayFaster => {}
        }
        Vec::new()
    }

    /// `.` in a live demo: let the program go on past the step it waits at.
    fn next_step(&mut self) -> Vec<Effect> {
        let lesson = &self.state.lesson;
        if lesson.steps.is_empty() {
            self.warn("no lesson steps in this session (`.` steps a demo or a replay)");
            return Vec::new();
        }
        if lesson.waiting().is_none() {
            self.say("no step is waiting: the demo is still running");
            return Vec::new();
        }
        self.say("next step…");
        vec![Effect::Engine(Action::NextStep)]
    }

    /// Commands of the shared-memory view; false if the command is not one of them.
    fn on_shm_command(&mut self, command: Command) -> bool {
        let count = self.shm.snapshot.as_ref().map_or(0, |s| s.segments.len());
        let selected = self.shm.selected;
        match command {
            Command::Up => self.shm.selected = selected.saturating_sub(1),
            Command::Down => self.shm.selected = (selected + 1).min(count.saturating_sub(1)),
            Command::PageDown => self.shm.scroll += 10,
            Command::PageUp => self.shm.scroll = self.shm.scroll.saturating_sub(10),
            Command::First => self.shm.scroll = 0,
            _ => return false,
        }
        if self.shm.selected != selected {
            self.shm.scroll = 0;
            self.replay_shm();
        }
        true
    }

    /// Scrolling of the Sync view; false if the command is not one of them.
    fn on_sync_command(&mut self, command: Command) -> bool {
        let scroll = &mut self.sync.scroll;
        match command {
            Command::Up => *scroll = scroll.saturating_sub(1),
            Command::Down => *scroll += 1,
            Command::PageDown => *scroll += 10,
            Command::PageUp => *scroll = scroll.saturating_sub(10),
            Command::First => *scroll = 0,
            _ => return false,
        }
        true
    }

    /// Zoom and scroll of the timeline; false if the command is not one of them.
    fn on_timeline_command(&mut self, command: Command) -> bool {
        let columns = self.areas.tree.width.saturating_sub(21).max(1) as f64;
        let fit = (self.state.now.max(1.0) * 1.02) / columns;
        let spc = self.timeline.seconds_per_column.unwrap_or(fit);
        match command {
            Command::TimelineLeft => {
                self.timeline.seconds_per_column = Some(spc);
                self.timeline.start = (self.timeline.start - 10.0 * spc).max(0.0);
            }
            Command::TimelineRight => {
                self.timeline.seconds_per_column = Some(spc);
                self.timeline.start += 10.0 * spc;
            }
            Command::ZoomIn => self.timeline.seconds_per_column = Some((spc / 2.0).max(1e-5)),
            Command::ZoomOut => self.timeline.seconds_per_column = Some((spc * 2.0).min(3600.0)),
            Command::Fit => self.timeline = Default::default(),
            _ => return false,
        }
        true
    }

    fn on_text_input(&mut self, key: KeyEvent) {
        let filtering = self.input == InputMode::Filter;
        let text = if filtering {
            &mut self.filter
        } else {
            &mut self.output_search
        };
        match key.code {
            KeyCode::Esc => {
                text.clear();
                self.input = InputMode::Normal;
            }
            KeyCode::Enter => self.input = InputMode::Normal,
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char(c)
                if !key.modifiers.contains(KeyModifiers::CONTROL) && text.len() < 200 =>
            {
                text.push(c);
            }
            _ => {}
        }
        if filtering {
            let first = self
                .rows()
                .into_iter()
                .find(|r| matches!(r.key, RowKey::Proc(_)));
            if let Some(row) = first {
                self.selected = Some(row.key);
            }
        } else {
            self.jump_to_match(true);
        }
    }

    fn on_confirm(&mut self, confirm: Confirm, key: KeyEvent) -> Vec<Effect> {
        self.overlay = Overlay::None;
        if !matches!(key.code, KeyCode::Char('y') | KeyCode::Char('Y')) {
            self.say("cancelled");
            return Vec::new();
        }
        match confirm {
            Confirm::Kill {
                pid, start_time, ..
            } => {
                self.say(format!("sending SIGKILL to pid {pid}…"));
                vec![Effect::Engine(Action::Signal {
                    pid,
                    signal: libc::SIGKILL,
                    start_time,
                })]
            }
            Confirm::Quit { .. } => self.quit(),
        }
    }

    fn on_signal_menu(&mut self, selected: usize, key: KeyEvent) -> Vec<Effect> {
        let count = all_signals().count();
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => {
                self.overlay = Overlay::Signals {
                    selected: selected.saturating_sub(1),
                }
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.overlay = Overlay::Signals {
                    selected: (selected + 1).min(count - 1),
                }
            }
            KeyCode::Enter => {
                self.overlay = Overlay::None;
                if let Some((signo, _)) = all_signals().nth(selected) {
                    if signo == libc::SIGKILL {
                        self.ask_kill();
                        return Vec::new();
                    }
                    return self.signal_selected(signo);
                }
            }
            _ => self.overlay = Overlay::None,
        }
        Vec::new()
    }

    fn ask_quit(&mut self) -> Vec<Effect> {
        if self.quitting {
            self.say("already stopping…");
            return Vec::new();
        }
        let running = self.state.live_count();
        if running == 0 {
            return self.quit();
        }
        self.overlay = Overlay::Confirm(Confirm::Quit { running });
        Vec::new()
    }

    fn quit(&mut self) -> Vec<Effect> {
        self.quitting = true;
        self.say("stopping every process…");
        vec![Effect::Engine(Action::Quit)]
    }

    fn ask_kill(&mut self) {
        match self.selected_proc() {
            Some(proc) if proc.is_alive() => {
                self.overlay = Overlay::Confirm(Confirm::Kill {
                    pid: proc.pid,
                    start_time: proc.start_time,
                    command: proc.command(),
                })
            }
            Some(proc) => {
                let text = format!("pid {} has already ended", proc.pid);
                self.warn(text)
            }
            None => self.warn("select a process first"),
        }
    }

    fn restart_selected(&mut self) -> Vec<Effect> {
        let worker = self
            .selected_proc_id()
            .and_then(|id| self.state.procs.get(&id))
            .and_then(|proc| match &proc.origin {
                crate::model::state::Origin::Worker { pool, worker } => {
                    Some((pool.clone(), *worker))
                }
                _ => None,
            });
        match worker {
            Some((pool, worker)) => {
                self.say(format!("restarting {pool}[{worker}]…"));
                vec![Effect::Engine(Action::Restart { pool, worker })]
            }
            None => {
                self.warn("r restarts workers: select a worker row");
                Vec::new()
            }
        }
    }

    fn scale_selected(&mut self, delta: i64) -> Vec<Effect> {
        let pool = match &self.selected {
            Some(RowKey::Pool(name)) => Some(name.clone()),
            Some(RowKey::Proc(id)) => pool_of(&self.state, *id).map(|(pool, _)| pool),
            _ => None,
        };
        let Some(name) = pool else {
            self.warn("select a pool or one of its processes to resize it");
            return Vec::new();
        };
        let Some(size) = self.state.pool(&name).map(|p| p.info.size) else {
            return Vec::new();
        };
        let target = size as i64 + delta;
        if target < 0 {
            self.warn(format!("pool {name} has no worker left to remove"));
            return Vec::new();
        }
        vec![Effect::Engine(Action::Scale {
            pool: name,
            size: target as u32,
        })]
    }

    fn toggle_fold(&mut self) {
        if let Some(key) = self.selected.clone()
            && !self.folded.remove(&key)
        {
            self.folded.insert(key);
        }
    }

    /// Moves the selection (tree focus) or scrolls the output (output focus).
    pub(super) fn scroll(&mut self, delta: isize) {
        if self.focus == Focus::Output {
            let lines = self.selected_proc().map_or(0, |p| p.output.len());
            let up = -delta;
            self.output_scroll =
                (self.output_scroll as isize + up).clamp(0, lines as isize) as usize;
            return;
        }
        let rows = self.rows();
        if rows.is_empty() {
            return;
        }
        let current = self.selected_index(&rows).unwrap_or(0) as isize;
        let next = (current.saturating_add(delta)).clamp(0, rows.len() as isize - 1) as usize;
        self.selected = Some(rows[next].key.clone());
        self.output_scroll = 0;
    }

    /// Scrolls the output pane to the next (or previous) line matching the search.
    fn jump_to_match(&mut self, older: bool) {
        let needle = self.output_search.to_lowercase();
        if needle.is_empty() {
            return;
        }
        let Some(proc) = self.selected_proc() else {
            return;
        };
        let log = &proc.output;
        let total = log.len();
        let hit =
            |line: &crate::model::output::OutputLine| line.text.to_lowercase().contains(&needle);
        // Distance from the bottom of each line: 0 is the newest. One pass over the lines.
        let found = if older {
            let from =
                self.output_scroll + usize::from(self.output_scroll > 0 || !self.search_hit_at(0));
            let end = total.saturating_sub(from);
            log.range(0..end)
                .enumerate()
                .filter(|(_, line)| hit(line))
                .last()
                .map(|(index, _)| total - 1 - index)
        } else {
            let start = total.saturating_sub(self.output_scroll);
            log.range(start..total)
                .position(|line| hit(&line))
                .map(|offset| total - 1 - (start + offset))
        };
        match found {
            Some(back) => self.output_scroll = back,
            None => self.warn(format!("no more matches for {:?}", self.output_search)),
        }
    }

    fn search_hit_at(&self, back: usize) -> bool {
        let needle = self.output_search.to_lowercase();
        self.selected_proc().is_some_and(|p| {
            back < p.output.len()
                && p.output
                    .line(p.output.len() - 1 - back)
                    .is_some_and(|line| line.text.to_lowercase().contains(&needle))
        })
    }

    pub(super) fn on_mouse(&mut self, mouse: MouseEvent) -> Vec<Effect> {
        let at = Position::new(mouse.column, mouse.row);
        let in_output = self.areas.output.contains(at);
        match mouse.kind {
            MouseEventKind::ScrollUp | MouseEventKind::ScrollDown => {
                let delta = if mouse.kind == MouseEventKind::ScrollUp {
                    -3
                } else {
                    3
                };
                let focus = self.focus;
                self.focus = if in_output {
                    Focus::Output
                } else {
                    Focus::Tree
                };
                self.scroll(delta);
                self.focus = focus;
            }
            MouseEventKind::Down(_) => {
                if in_output {
                    self.focus = Focus::Output;
                } else if self.areas.tree.contains(at) {
                    self.focus = Focus::Tree;
                    // One header line inside the border.
                    let first = self.areas.tree.y + 2;
                    if mouse.row >= first {
                        let index = (mouse.row - first) as usize + self.areas.tree_offset;
                        if let Some(row) = self.rows().get(index) {
                            self.selected = Some(row.key.clone());
                            self.output_scroll = 0;
                        }
                    }
                }
            }
            _ => {}
        }
        Vec::new()
    }
}
