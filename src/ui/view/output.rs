//! The output pane: the selected process's captured lines, newest at the bottom, stderr
//! marked, child colours kept, search matches highlighted, scrollback and follow mode.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::model::Stream;
use crate::model::state::{Origin, ProcessView};
use crate::ui::ansi::styled_line;
use crate::ui::app::{App, Focus};

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let theme = app.theme;
    let (source, shared) = match app.selected_proc() {
        Some(proc) => output_owner(app, proc),
        None => (None, false),
    };
    let mut title = match source {
        Some(proc) => {
            let log = &proc.output;
            let mut t = format!(" output · pid {} · {} lines", proc.pid, log.received);
            if log.evicted > 0 {
                t.push_str(&format!(" ({} oldest dropped)", log.evicted));
            }
            if shared {
                t.push_str(" · shared pipe: this process's lines are filed here");
            }
            let writers = live_writers_sharing(app, proc.pid);
            if writers > 0 {
                t.push_str(&format!(
                    " · shared pipe: {writers} other live process(es) write here"
                ));
            }
            t
        }
        None => " output ".to_string(),
    };
    title.push_str(if app.output_scroll == 0 {
        " · following "
    } else {
        " · scrolled (f follows) "
    });
    let block = Block::default()
        .borders(Borders::ALL)
        .title(title)
        .border_style(theme.focus_border(app.focus == Focus::Output));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(proc) = source else {
        return;
    };
    let height = inner.height as usize;
    if height == 0 {
        return;
    }
    let end = proc.output.len().saturating_sub(app.output_scroll);
    let start = end.saturating_sub(height);
    let needle = app.output_search.to_lowercase();
    let shown: Vec<Line> = proc
        .output
        .range(start..end)
        .map(|line| {
            let stderr = line.stream == Stream::Stderr;
            let marker = if stderr {
                Span::styled("E▏", theme.stderr())
            } else {
                Span::styled(" ▏", theme.dim())
            };
            let mut styled = styled_line(&line.text, Default::default(), theme.color);
            if !needle.is_empty() && line.text.to_lowercase().contains(&needle) {
                styled = styled.style(theme.highlight());
            }
            let mut spans = vec![marker];
            spans.extend(styled.spans);
            if line.partial {
                spans.push(Span::styled("↩", theme.dim()));
            }
            Line::from(spans)
        })
        .collect();
    frame.render_widget(Paragraph::new(shown), inner);
}

/// Live processes whose stdout or stderr is `owner`'s capture pipe (from the samples).
fn live_writers_sharing(app: &App, owner: i32) -> usize {
    app.state
        .procs
        .values()
        .filter(|p| p.is_alive())
        .filter(|p| p.sample.as_ref().and_then(|s| s.shares_pipe_of) == Some(owner))
        .count()
}

/// Descendants write into their worker's pipes: show the worker's log for them (the pipe's
/// owner when the samples say whose pipe it is).
fn output_owner<'a>(app: &'a App, proc: &'a ProcessView) -> (Option<&'a ProcessView>, bool) {
    if let Some(owner) = proc
        .sample
        .as_ref()
        .and_then(|s| s.shares_pipe_of)
        .and_then(|pid| app.state.find_pid(pid))
    {
        return (Some(owner), true);
    }
    if !proc.output.is_empty() || matches!(proc.origin, Origin::Worker { .. }) {
        return (Some(proc), false);
    }
    let mut current = proc;
    for _ in 0..128 {
        let Some(parent) = current.parent.and_then(|id| app.state.procs.get(&id)) else {
            break;
        };
        if matches!(parent.origin, Origin::Worker { .. }) {
            return (Some(parent), true);
        }
        current = parent;
    }
    (Some(proc), false)
}
