//! The timeline: one row per process (the tree's rows, in the tree's order), a bar from birth
//! to death coloured by how it ended, a dotted tail for the time it was a zombie (until its
//! parent reaped it), fork arrows from parent to child, exec marks, signals as ticks, lesson
//! steps as dotted lines (▼ on the axis), barrier steps and program marks on their processes'
//! rows, with zoom and scroll. The picture of "8 processes ran in parallel and the pool
//! reused them".

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use std::collections::HashMap;

use crate::model::BarrierStep;
use crate::model::state::{InstantKind, ProcId, ProcessView};
use crate::ui::app::{App, Focus};
use crate::ui::format::Condition;
use crate::ui::rows::{Row, RowKey};
use crate::ui::theme::Theme;

/// Width of the label column (tree lines and pid).
const LABEL: u16 = 18;

/// The visible time window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub start: f64,
    pub seconds_per_column: f64,
}

impl Window {
    /// The window for `columns` columns: the whole session (fit) or the app's zoom.
    pub fn of(app: &App, columns: usize) -> Window {
        let columns = columns.max(1) as f64;
        match app.timeline.seconds_per_column {
            Some(spc) => Window {
                start: app.timeline.start.max(0.0),
                seconds_per_column: spc,
            },
            None => Window {
                start: 0.0,
                seconds_per_column: (app.state.now.max(1.0) * 1.02) / columns,
            },
        }
    }

    fn column(&self, t: f64) -> f64 {
        (t - self.start) / self.seconds_per_column
    }
}

/// One cell of the chart.
pub type Cell = (char, Style);

/// Builds the chart cells for `rows` (pure; the renderer only prints them).
pub fn chart(app: &App, rows: &[Row], window: Window, width: usize) -> Vec<Vec<Cell>> {
    let theme = app.theme;
    let mut grid: Vec<Vec<Cell>> = vec![vec![(' ', Style::default()); width]; rows.len()];
    let positions: std::collections::HashMap<&RowKey, usize> = rows
        .iter()
        .enumerate()
        .map(|(y, row)| (&row.key, y))
        .collect();
    let index_of = |id| positions.get(&RowKey::Proc(id)).copied();
    let in_range = |column: f64| column >= 0.0 && (column as usize) < width;
    for (y, row) in rows.iter().enumerate() {
        let RowKey::Proc(id) = row.key else { continue };
        let Some(proc) = app.state.procs.get(&id) else {
            continue;
        };
        let style = theme.condition(Condition::of(proc));
        let born = window.column(proc.born);
        let end = window.column(proc.ended.map_or(app.state.now, |e| e.t));
        let first = born.max(0.0).floor() as usize;
        let last = end.min(width as f64 - 1.0).floor();
        if last >= 0.0 {
            for cell in grid[y].iter_mut().take(last as usize + 1).skip(first) {
                *cell = ('━', style);
            }
        }
        let zombie_until = match (proc.ended, proc.reaped) {
            (Some(_), Some(reaped)) => Some(reaped.t),
            (Some(_), None) if proc.zombie => Some(app.state.now),
            _ => None,
        };
        if let Some(until) = zombie_until {
            let zombie_style = theme.condition(Condition::Zombie);
            let from = (end.floor() + 1.0).max(0.0) as usize;
            let to = window.column(until).min(width as f64 - 1.0).floor();
            if to >= 0.0 {
                for cell in grid[y].iter_mut().take(to as usize + 1).skip(from) {
                    *cell = ('┄', zombie_style);
                }
            }
        }
        for t in &proc.execs {
            let column = window.column(*t);
            if in_range(column) {
                grid[y][column as usize] = ('◆', style);
            }
        }
        for signal in &proc.signals {
            let column = window.column(signal.t);
            if in_range(column) {
                grid[y][column as usize] = ('↯', theme.condition(Condition::Stopping));
            }
        }
        if proc.ended.is_some() && in_range(end) {
            grid[y][end as usize] = (
                Condition::of(proc).symbol().chars().next().unwrap_or('x'),
                style,
            );
        }
        // The fork arrow: down from the parent's row to the child's birth (not for an adopted
        // process: the row above it now is not the one that forked it).
        if let Some(parent_row) = proc
            .parent
            .filter(|_| proc.adopted_from.is_none())
            .and_then(index_of)
            && in_range(born)
            && parent_row < y
        {
            let x = born as usize;
            let arrow = theme.dim();
            grid[parent_row][x] = ('┬', arrow);
            for line in grid.iter_mut().take(y).skip(parent_row + 1) {
                let through = match line[x].0 {
                    ' ' => '│',
                    '┗' | '┣' => '┣',
                    '│' => '│',
                    _ => '┼',
                };
                line[x] = (through, arrow);
            }
            let ended_here = proc.ended.is_some() && end.floor() as usize == x;
            grid[y][x] = ('┗', arrow);
            // A process that lived less than a column: its ending goes right after the arrow.
            if ended_here && x + 1 < width {
                grid[y][x + 1] = (
                    Condition::of(proc).symbol().chars().next().unwrap_or('x'),
                    style,
                );
            }
        }
    }
    // Lesson steps: a dotted line down the chart where each step was announced.
    for step in &app.state.lesson.steps {
        let column = window.column(step.t);
        if in_range(column) {
            for line in grid.iter_mut() {
                if line[column as usize].0 == ' ' {
                    line[column as usize] = ('┊', theme.dim());
                }
            }
        }
    }
    draw_instants(app, &index_of, window, &mut grid);
    grid
}

/// The time axis, with `▼` where each lesson step was announced.
fn axis_with_steps(app: &App, window: Window, width: usize) -> String {
    let mut chars: Vec<char> = axis(window, width).chars().collect();
    for step in &app.state.lesson.steps {
        let column = window.column(step.t);
        if column >= 0.0 && (column as usize) < chars.len() {
            chars[column as usize] = '▼';
        }
    }
    chars.into_iter().collect()
}

/// Barrier arrivals (`▹`) on the arriving party's row, the pass (`‖`) or break (`✗`) on the
/// rows of that generation's parties, program marks (`★`) on the marking process's row.
fn draw_instants(
    app: &App,
    index_of: &dyn Fn(ProcId) -> Option<usize>,
    window: Window,
    grid: &mut [Vec<Cell>],
) {
    let theme = app.theme;
    let width = grid.first().map_or(0, Vec::len);
    let mut put = |pid: i32, t: f64, glyph: char, style: Style| {
        let column = window.column(t);
        let row = app.state.newest_record(pid).and_then(index_of);
        if let Some(y) = row
            && column >= 0.0
            && (column as usize) < width
        {
            grid[y][column as usize] = (glyph, style);
        }
    };
    let mut arrivals: HashMap<&str, Vec<i32>> = HashMap::new();
    for instant in &app.state.instants {
        let style = theme.header();
        match (instant.kind, instant.barrier.as_deref(), instant.pid) {
            (InstantKind::Mark, _, Some(pid)) => put(pid, instant.t, '★', style),
            (InstantKind::Barrier(BarrierStep::Arrive), Some(name), Some(pid)) => {
                arrivals.entry(name).or_default().push(pid);
                put(pid, instant.t, '▹', style);
            }
            (
                InstantKind::Barrier(step @ (BarrierStep::Pass | BarrierStep::Break)),
                Some(name),
                _,
            ) => {
                let (glyph, style) = if step == BarrierStep::Pass {
                    ('‖', style)
                } else {
                    ('✗', theme.condition(Condition::Stopping))
                };
                for pid in arrivals.remove(name).unwrap_or_default() {
                    put(pid, instant.t, glyph, style);
                }
            }
            _ => {}
        }
    }
}

fn label(app: &App, row: &Row) -> Line<'static> {
    let theme = app.theme;
    let indent = "  ".repeat(row.depth.saturating_sub(1));
    match &row.key {
        RowKey::Pool(name) => Line::from(Span::styled(format!("pool {name}"), theme.pool())),
        RowKey::Adopted => Line::from(Span::styled("adopted", theme.pool())),
        RowKey::Proc(id) => match app.state.procs.get(id) {
            Some(proc) => proc_label(proc, indent, theme),
            None => Line::from("?"),
        },
    }
}

fn proc_label(proc: &ProcessView, indent: String, theme: Theme) -> Line<'static> {
    let condition = Condition::of(proc);
    Line::from(vec![
        Span::raw(indent),
        Span::styled(
            format!("{} ", condition.symbol()),
            theme.condition(condition),
        ),
        Span::raw(proc.pid.to_string()),
    ])
}

fn axis(window: Window, width: usize) -> String {
    let mut axis = vec![' '; width];
    let step = 12;
    let mut x = 0;
    while x < width {
        let label = format!(
            "|{}",
            short_time(window.start + x as f64 * window.seconds_per_column)
        );
        for (offset, c) in label.chars().enumerate() {
            if x + offset < width {
                axis[x + offset] = c;
            }
        }
        x += step;
    }
    axis.into_iter().collect()
}

fn short_time(t: f64) -> String {
    if t < 10.0 {
        format!("{t:.2}s")
    } else if t < 100.0 {
        format!("{t:.1}s")
    } else {
        format!("{t:.0}s")
    }
}

/// Draws the timeline in place of the tree; returns the first row shown.
pub fn render(app: &App, frame: &mut Frame, area: Rect) -> usize {
    let theme = app.theme;
    let rows = app.rows();
    let width = area.width.saturating_sub(LABEL + 3) as usize;
    let window = Window::of(app, width);
    let title = format!(
        " timeline · {}–{} · z/Z zoom · ←/→ scroll · 0 fit · v tree ",
        short_time(window.start),
        short_time(window.start + width as f64 * window.seconds_per_column)
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .title(title)
        .border_style(theme.focus_border(app.focus == Focus::Tree));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height < 2 || width == 0 {
        return 0;
    }
    let visible = inner.height as usize - 1;
    let selected = app.selected_index(&rows);
    let offset = match selected {
        Some(index) if index >= visible => index + 1 - visible,
        _ => 0,
    };
    // Only the rows on screen are charted (a parent scrolled off above gets no arrow).
    let shown = &rows[offset.min(rows.len())..(offset + visible).min(rows.len())];
    let grid = chart(app, shown, window, width);
    let mut lines = vec![Line::from(vec![
        Span::styled(
            format!("{:<w$} ", "PID", w = LABEL as usize),
            theme.header(),
        ),
        Span::styled(axis_with_steps(app, window, width), theme.dim()),
    ])];
    for (line_index, row) in shown.iter().enumerate() {
        let index = offset + line_index;
        let mut spans = label(app, row).spans;
        let used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
        spans.push(Span::raw(
            " ".repeat((LABEL as usize + 1).saturating_sub(used)),
        ));
        for (c, style) in &grid[line_index] {
            spans.push(Span::styled(c.to_string(), *style));
        }
        let mut line = Line::from(spans);
        if Some(index) == selected {
            line = line.style(theme.selected());
        }
        lines.push(line);
    }
    frame.render_widget(Paragraph::new(lines), inner);
    offset
}
