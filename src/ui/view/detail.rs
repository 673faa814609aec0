//! The detail pane: everything known about the selected process, with CPU and memory history.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline, Wrap};

use crate::model::Delivery;
use crate::model::state::{Origin, ProcessView};
use crate::ui::app::App;
use crate::ui::format::{Condition, duration, kib};
use crate::ui::rows::RowKey;

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let theme = app.theme;
    let block = Block::default().borders(Borders::ALL).title(" detail ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let Some(proc) = app.selected_proc() else {
        let text = match &app.selected {
            Some(RowKey::Pool(name)) => pool_text(app, name),
            Some(RowKey::Adopted) => vec![Line::from(
                "Orphans: their parent ended, so the kernel re-parented them to forkscope, \
                 a child subreaper, which reaps them and reports exactly how they ended.",
            )],
            _ => vec![Line::from("no process selected")],
        };
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), inner);
        return;
    };
    let graphs = proc.is_alive() && !proc.cpu_history.is_empty() && inner.height >= 8;
    let [text_area, graph_area] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(if graphs { 2 } else { 0 }),
    ])
    .areas(inner);
    let condition = Condition::of(proc);
    let mut lines = vec![Line::from(vec![
        Span::styled(
            format!("{} {} ", condition.symbol(), condition.word()),
            theme.condition(condition),
        ),
        Span::raw(format!("pid {}  ppid {}", proc.pid, proc.ppid)),
    ])];
    if let Some(sample) = &proc.sample {
        lines.push(Line::from(format!(
            "pgid {}  sid {}  threads {}",
            sample.pgid, sample.sid, sample.threads
        )));
    }
    lines.push(Line::from(match &proc.origin {
        Origin::Worker { pool, worker } => {
            format!("worker {pool}[{worker}] · restarts {}", proc.restarts)
        }
        Origin::Descendant => format!(
            "{} · seen by {}",
            app.role_of(proc).label(),
            proc.source.label()
        ),
    }));
    lines.push(Line::from(format!(
        "started {} · {} {}",
        started_at(app, proc),
        if proc.is_alive() { "up" } else { "lived" },
        duration(proc.age(app.state.now))
    )));
    if let Some(ended) = proc.ended {
        let style = theme.condition(condition);
        lines.push(Line::from(Span::styled(
            format!(
                "ended: {} at +{:.3}s ({})",
                ended.status.describe(),
                ended.t,
                ended.source.label()
            ),
            style,
        )));
    }
    lines.extend(zombie_and_adoption_lines(app, proc));
    if let Some(sample) = proc.sample.as_ref().filter(|_| proc.is_alive()) {
        lines.push(Line::from(format!(
            "CPU {:.1}%  RSS {}",
            sample.cpu,
            kib(sample.rss_kb)
        )));
        if let Some(cwd) = &sample.cwd {
            lines.push(Line::from(format!("cwd {cwd}")));
        }
    }
    if proc.is_alive() {
        lines.extend(super::sync::detail_lines(app, proc.pid));
    }
    lines.extend(super::pystack::lines(app, proc));
    lines.push(Line::from(format!("argv {:?}", proc.argv)));
    for signal in proc.signals.iter().rev().take(4) {
        let outcome = match &signal.result {
            Delivery::Sent => "sent".to_string(),
            Delivery::Failed(why) => format!("failed: {why}"),
        };
        lines.push(Line::from(
            format!(
                "+{:.1}s {} by {:?}: {outcome}",
                signal.t, signal.signal, signal.reason
            )
            .replace("by User", "by you")
            .replace("by Stop", "by stop")
            .replace("by Escalation", "by escalation"),
        ));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), text_area);
    if graphs {
        let [cpu_area, rss_area] =
            Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(graph_area);
        let width = cpu_area.width.saturating_sub(5) as usize;
        let cpu: Vec<u64> = tail(&proc.cpu_history, width)
            .map(|c| (c * 10.0) as u64)
            .collect();
        let rss: Vec<u64> = tail(&proc.rss_history, width).copied().collect();
        spark(frame, cpu_area, "CPU ", &cpu, theme);
        spark(frame, rss_area, "RSS ", &rss, theme);
    }
}

/// Its zombie phase (waiting for, or collected by, its parent) and where it was adopted.
fn zombie_and_adoption_lines(app: &App, proc: &ProcessView) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if let Some(waited) = proc.zombie_for(app.state.now) {
        lines.push(Line::from(Span::styled(
            format!(
                "zombie for {}: waiting for its parent {} to reap it",
                duration(waited),
                proc.ppid
            ),
            app.theme.condition(Condition::Zombie),
        )));
    }
    if let (Some(reaped), Some(ended)) = (proc.reaped, proc.ended) {
        let by = if Some(reaped.by) == app.state.engine_pid {
            format!("forkscope ({})", reaped.by)
        } else {
            reaped.by.to_string()
        };
        lines.push(Line::from(format!(
            "reaped by {by} at +{:.3}s, after {} as a zombie",
            reaped.t,
            duration(reaped.t - ended.t)
        )));
    }
    if let Some(from) = proc.adopted_from {
        lines.push(Line::from(format!(
            "adopted: its parent {from} ended; re-parented to {}",
            proc.ppid
        )));
    }
    lines
}

fn tail<T>(history: &std::collections::VecDeque<T>, width: usize) -> impl Iterator<Item = &T> {
    history.iter().skip(history.len().saturating_sub(width))
}

fn spark(frame: &mut Frame, area: Rect, label: &str, data: &[u64], theme: crate::ui::theme::Theme) {
    let [label_area, graph] =
        Layout::horizontal([Constraint::Length(4), Constraint::Min(1)]).areas(area);
    frame.render_widget(Paragraph::new(label).style(theme.dim()), label_area);
    frame.render_widget(Sparkline::default().data(data).style(theme.ok()), graph);
}

fn started_at(app: &App, proc: &ProcessView) -> String {
    let relative = format!("+{:.3}s", proc.born);
    if app.state.started_unix <= 0.0 {
        return relative;
    }
    let unix = (app.state.started_unix + proc.born) as i64;
    let (h, m, s) = ((unix / 3600) % 24, (unix / 60) % 60, unix % 60);
    format!("{relative} ({h:02}:{m:02}:{s:02} UTC)")
}

fn pool_text(app: &App, name: &str) -> Vec<Line<'static>> {
    let Some(pool) = app.state.pool(name) else {
        return vec![Line::from(format!("pool {name}"))];
    };
    let mut lines = vec![
        Line::from(format!(
            "pool {name} · {} workers · restart {}",
            pool.info.size, pool.info.restart
        )),
        Line::from(format!("command {:?}", pool.info.argv)),
    ];
    for (index, slot) in &pool.workers {
        let mut text = format!("worker {index}: restarts {}", slot.restarts);
        if let Some(failed) = &slot.failed {
            text.push_str(&format!(" · failed: {failed}"));
        }
        if let Some(delay) = slot.restart_pending {
            text.push_str(&format!(" · restart in {delay}ms"));
        }
        lines.push(Line::from(text));
    }
    lines.push(Line::from("+ / - grow or shrink this pool"));
    lines
}
