//! The process tree: pools, workers and descendants, one row each, with how each one ended.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Row as TableRow, Table};

use crate::ui::app::{App, Focus};
use crate::ui::format::{Condition, duration, ending_at, kib};
use crate::ui::rows::{Row, RowKey, adoption_mark};

/// Columns dropped first when the terminal is narrow.
struct Columns {
    ppid: bool,
    rss: bool,
    age: bool,
    cpu: bool,
    /// WAITING ON: shown once the sync watcher has reported (live sessions).
    waiting: bool,
}

impl Columns {
    fn for_width(width: u16) -> Columns {
        Columns {
            ppid: width >= 110,
            age: width >= 96,
            rss: width >= 88,
            cpu: width >= 72,
            waiting: false,
        }
    }
}

/// Draws the tree; returns the first row shown (scroll offset).
pub fn render(app: &App, frame: &mut Frame, area: Rect) -> usize {
    let theme = app.theme;
    let rows = app.rows();
    let selected = app.selected_index(&rows);
    let title = if app.filter.is_empty() {
        format!(" processes ({}) ", rows.len())
    } else {
        format!(" processes matching {:?} ", app.filter)
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .title(title)
        .border_style(theme.focus_border(app.focus == Focus::Tree));
    let inner_height = area.height.saturating_sub(3) as usize;
    let offset = match selected {
        Some(index) if inner_height > 0 && index >= inner_height => index + 1 - inner_height,
        _ => 0,
    };
    let mut columns = Columns::for_width(area.width);
    columns.waiting = app.sync.latest.is_some() && area.width >= 80;
    let mut header = vec!["PID"];
    if columns.ppid {
        header.push("PPID");
    }
    header.push("STATE");
    if columns.cpu {
        header.push("CPU%");
    }
    if columns.rss {
        header.push("RSS");
    }
    if columns.age {
        header.push("AGE");
    }
    header.push("ENDED");
    if columns.waiting {
        header.push("WAITING ON");
    }
    header.push("COMMAND");
    let mut widths = vec![Constraint::Length(18)];
    if columns.ppid {
        widths.push(Constraint::Length(7));
    }
    widths.push(Constraint::Length(10));
    if columns.cpu {
        widths.push(Constraint::Length(6));
    }
    if columns.rss {
        widths.push(Constraint::Length(7));
    }
    if columns.age {
        widths.push(Constraint::Length(7));
    }
    widths.push(Constraint::Length(20));
    if columns.waiting {
        widths.push(Constraint::Length(34));
    }
    widths.push(Constraint::Min(8));

    let table_rows: Vec<TableRow> = rows
        .iter()
        .enumerate()
        .skip(offset)
        .take(inner_height.max(1))
        .map(|(index, row)| {
            let mut table_row = row_cells(app, row, &columns);
            if Some(index) == selected {
                table_row = table_row.style(theme.selected());
            }
            table_row
        })
        .collect();
    let table = Table::new(table_rows, widths)
        .header(TableRow::new(header).style(theme.header()))
        .block(block)
        .column_spacing(1);
    frame.render_widget(table, area);
    offset
}

fn tree_prefix(row: &Row) -> String {
    let mut prefix = "  ".repeat(row.depth.saturating_sub(1));
    if row.depth > 0 {
        prefix.push_str(if row.last { "└" } else { "├" });
    }
    prefix.push(if row.has_children {
        if row.folded { '▸' } else { '▾' }
    } else if row.depth > 0 {
        '─'
    } else {
        ' '
    });
    prefix
}

fn row_cells<'a>(app: &'a App, row: &Row, columns: &Columns) -> TableRow<'a> {
    let theme = app.theme;
    match &row.key {
        RowKey::Pool(name) => {
            let pool = app.state.pool(name);
            let (size, restart) = pool
                .map(|p| (p.info.size, p.info.restart.clone()))
                .unwrap_or((0, String::new()));
            let running = app
                .state
                .procs
                .values()
                .filter(|p| {
                    p.is_alive()
                        && crate::ui::rows::pool_of(&app.state, p.id)
                            .is_some_and(|(n, _)| &n == name)
                })
                .count();
            let label = format!("{} pool {name}", tree_prefix(row));
            let workers = if size == 1 { "worker" } else { "workers" };
            let summary = format!("{size} {workers} · restart {restart} · {running} running");
            let mut cells = vec![Cell::from(label).style(theme.pool())];
            cells.extend(blank_cells(columns));
            cells.push(Cell::from(""));
            cells.push(Cell::from(summary).style(theme.dim()));
            TableRow::new(cells)
        }
        RowKey::Adopted => {
            let label = format!("{} adopted", tree_prefix(row));
            let mut cells = vec![Cell::from(label).style(theme.pool())];
            cells.extend(blank_cells(columns));
            cells.push(Cell::from(""));
            cells.push(
                Cell::from("orphans re-parented to forkscope (subreaper)").style(theme.dim()),
            );
            TableRow::new(cells)
        }
        RowKey::Proc(id) => {
            let Some(proc) = app.state.procs.get(id) else {
                return TableRow::new(vec![Cell::from("?")]);
            };
            let condition = Condition::of(proc);
            let style = theme.condition(condition);
            let pid = Line::from(vec![
                Span::raw(tree_prefix(row)),
                Span::styled(format!("{} ", condition.symbol()), style),
                Span::raw(proc.pid.to_string()),
            ]);
            let mut cells = vec![Cell::from(pid)];
            if columns.ppid {
                cells.push(Cell::from(proc.ppid.to_string()));
            }
            cells.push(Cell::from(condition.word()).style(style));
            let sample = proc.sample.as_ref().filter(|_| proc.is_alive());
            if columns.cpu {
                cells.push(Cell::from(
                    sample.map(|s| format!("{:.1}", s.cpu)).unwrap_or_default(),
                ));
            }
            if columns.rss {
                cells.push(Cell::from(
                    sample.map(|s| kib(s.rss_kb)).unwrap_or_default(),
                ));
            }
            if columns.age {
                cells.push(Cell::from(duration(proc.age(app.state.now))));
            }
            cells.push(Cell::from(ending_at(proc, app.state.now)).style(style));
            if columns.waiting {
                let cell = if proc.is_alive() {
                    super::sync::waiting_cell(app, proc.pid)
                } else {
                    String::new()
                };
                cells.push(Cell::from(cell).style(theme.dim()));
            }
            let mut command = proc.short_command();
            match &proc.origin {
                crate::model::state::Origin::Worker { pool, worker } => {
                    command = format!("[{pool}:{worker}] {command}");
                }
                crate::model::state::Origin::Descendant => {
                    let role = app.role_of(proc);
                    if role != crate::model::roles::ProcRole::Process {
                        command = format!("({}) {command}", role.label());
                    }
                }
            }
            if let Some(mark) = adoption_mark(proc) {
                command = format!("{mark} {command}");
            }
            cells.push(Cell::from(command));
            let row_style = if proc.is_alive() || proc.zombie {
                Style::default()
            } else {
                theme.dim()
            };
            TableRow::new(cells).style(row_style)
        }
    }
}

fn blank_cells(columns: &Columns) -> Vec<Cell<'static>> {
    let count = 1 + [
        columns.ppid,
        columns.cpu,
        columns.rss,
        columns.age,
        columns.waiting,
    ]
    .iter()
    .filter(|c| **c)
    .count();
    vec![Cell::from(""); count]
}
