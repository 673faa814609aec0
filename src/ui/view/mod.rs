//! Rendering: a pure function of the `App` into a frame. Layout: a header line, the process
//! tree, then the detail pane beside the output pane, then the status line; overlays on top.

mod detail;
pub(crate) mod lesson;
mod named;
mod output;
mod overlay;
mod pystack;
mod sync;
pub(crate) mod timeline;
mod tree;

use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::app::{App, Areas, InputMode};

/// Below this size only a one-line summary is drawn.
const MIN_WIDTH: u16 = 30;
const MIN_HEIGHT: u16 = 8;

/// Draws the whole TUI; returns where the panes went (for mouse hits).
pub fn render(app: &App, frame: &mut Frame) -> Areas {
    let area = frame.area();
    if area.width == 0 || area.height == 0 {
        return Areas::default();
    }
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "forkscope: {} running — enlarge the terminal",
            app.state.live_count()
        );
        frame.render_widget(Paragraph::new(text), area);
        return Areas::default();
    }
    let [header, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(4),
        Constraint::Length(1),
    ])
    .areas(area);
    let tree_share = if body.height >= 20 { 55 } else { 50 };
    let [main_area, bottom] = Layout::vertical([
        Constraint::Percentage(tree_share),
        Constraint::Percentage(100 - tree_share),
    ])
    .areas(body);
    let direction = if bottom.width >= 80 {
        Direction::Horizontal
    } else {
        Direction::Vertical
    };
    let bottom_split = [Constraint::Percentage(40), Constraint::Percentage(60)];
    let [detail_area, output_area] = Layout::default()
        .direction(direction)
        .constraints(bottom_split)
        .areas(bottom);

    let (tree_area, lesson_area) = split_lesson(app, main_area);
    render_header(app, frame, header);
    if app.main_view == super::app::MainView::Shm {
        render_shm(app, frame, body);
        render_status(app, frame, status);
        overlay::render(app, frame, area);
        return Areas::default();
    }
    if app.main_view == super::app::MainView::Sync {
        sync::render(app, frame, body);
        render_status(app, frame, status);
        overlay::render(app, frame, area);
        return Areas::default();
    }
    let tree_offset = match app.main_view {
        super::app::MainView::Tree | super::app::MainView::Shm | super::app::MainView::Sync => {
            tree::render(app, frame, tree_area)
        }
        super::app::MainView::Timeline => timeline::render(app, frame, tree_area),
    };
    if let Some(area) = lesson_area {
        lesson::render(app, frame, area);
    }
    detail::render(app, frame, detail_area);
    output::render(app, frame, output_area);
    render_status(app, frame, status);
    overlay::render(app, frame, area);
    Areas {
        tree: tree_area,
        tree_offset,
        output: output_area,
    }
}

/// The tree's area and, in a demo with steps, the lesson panel's beside it (or below it on
/// a narrow terminal).
fn split_lesson(app: &App, area: Rect) -> (Rect, Option<Rect>) {
    if !lesson::visible(app) {
        return (area, None);
    }
    let [tree, panel] = if area.width >= 90 {
        Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)]).areas(area)
    } else {
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area)
    };
    (tree, Some(panel))
}

fn render_header(app: &App, frame: &mut Frame, area: Rect) {
    let theme = app.theme;
    let live = app.state.live_count();
    let ended: Vec<_> = app.state.procs.values().filter_map(|p| p.ended).collect();
    let failed = app.state.procs.values().filter(|p| p.failed()).count();
    let stopped = app
        .state
        .procs
        .values()
        .filter(|p| p.stopped_by_forkscope())
        .count();
    let track = app
        .state
        .track
        .map(|t| format!("{t:?}").to_lowercase())
        .unwrap_or_else(|| "-".into());
    let mut spans = vec![
        Span::styled(" forkscope ", theme.header()),
        Span::styled(format!("● {live} running"), theme.ok()),
        Span::raw(format!(" · ○ {} ended", ended.len())),
    ];
    if app.state.forgotten > 0 {
        spans.push(Span::styled(
            format!(" ({} oldest forgotten)", app.state.forgotten),
            theme.dim(),
        ));
    }
    if failed > 0 {
        spans.push(Span::raw(" · "));
        spans.push(Span::styled(
            format!("✗ {failed} not exit 0"),
            theme.error(),
        ));
    }
    if stopped > 0 {
        spans.push(Span::raw(format!(" · {stopped} stopped by forkscope")));
    }
    if let Some(reason) = &app.state.stopping
        && app.finished.is_none()
        && (app.quitting || live > 0)
    {
        spans.push(Span::styled(
            format!(" │ ◐ stopping ({reason})"),
            theme.condition(super::format::Condition::Stopping),
        ));
    }
    if let Some(replay) = &app.replay {
        let state = if replay.paused {
            "‖ paused"
        } else {
            "▶ playing"
        };
        spans.push(Span::styled(
            format!(
                " │ replay {state} {}x · event {}/{} · t={:.2}s",
                replay.speed, replay.position, replay.total, replay.t
            ),
            theme.header(),
        ));
    }
    spans.push(Span::raw(format!(" │ track: {track} │ {}", app.title)));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn render_shm(app: &App, frame: &mut Frame, area: Rect) {
    let named_height = named::panel_height(&app.state, area);
    let [named_area, area] =
        Layout::vertical([Constraint::Length(named_height), Constraint::Fill(1)]).areas(area);
    named::render_panel(&app.state, app.theme, frame, named_area);
    let Some(snapshot) = &app.shm.snapshot else {
        let waiting = Paragraph::new(if app.replay.is_some() {
            "no shared-memory changes in this recording (shm events)"
        } else {
            "reading the shared memory of the supervised tree…"
        })
        .block(ratatui::widgets::Block::bordered().title(" shared memory · m back "));
        frame.render_widget(waiting, area);
        return;
    };
    let rows = area.height.saturating_sub(2) as usize;
    let mut panel = crate::ui::shm_view::ShmPanel::from_snapshot(
        snapshot,
        app.shm.selected,
        app.shm.scroll,
        rows,
    );
    panel.no_color = !app.theme.color;
    crate::ui::shm_view::render(frame, area, &panel);
}

fn render_status(app: &App, frame: &mut Frame, area: Rect) {
    let theme = app.theme;
    let line = match app.input {
        InputMode::Filter => Line::from(vec![
            Span::styled("filter: ", theme.header()),
            Span::raw(format!("{}▏", app.filter)),
            Span::styled("  (Enter keeps it, Esc clears)", theme.dim()),
        ]),
        InputMode::OutputSearch => Line::from(vec![
            Span::styled("search output: ", theme.header()),
            Span::raw(format!("{}▏", app.output_search)),
            Span::styled(
                "  (Enter keeps it, n/N next/previous, Esc clears)",
                theme.dim(),
            ),
        ]),
        InputMode::Normal => match &app.status {
            Some(status) if status.error => {
                Line::from(Span::styled(format!("✗ {}", status.text), theme.error()))
            }
            Some(status) => Line::from(Span::raw(format!("» {}", status.text))),
            None => Line::from(Span::styled(
                "q quit · t TERM · K KILL · s signals · r restart · +/- scale · / filter · Tab output · ? help",
                theme.dim(),
            )),
        },
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// A rectangle of at most `width` x `height` centred in `area`.
pub(super) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_lifecycle;
