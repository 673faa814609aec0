//! Overlays: the help listing every key, confirmations, and the signal menu.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::centered;
use crate::model::signals::all_signals;
use crate::ui::app::{App, Confirm, Overlay};
use crate::ui::keymap::KEYS;

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let theme = app.theme;
    match &app.overlay {
        Overlay::None => {}
        Overlay::Help => {
            let mut lines: Vec<Line> = KEYS
                .iter()
                .map(|binding| {
                    Line::from(vec![
                        Span::styled(format!("{:>14}  ", binding.label), theme.header()),
                        Span::raw(binding.help),
                    ])
                })
                .collect();
            lines.push(Line::from(""));
            lines.push(Line::from(Span::styled(
                "States: ● running/sleeping  ◐ stopping  ‖ stopped  Z zombie  ○ exit 0  ✗ failed",
                theme.dim(),
            )));
            lines.push(Line::from(Span::styled(
                "Z: ended, not yet reaped by its parent · ↰N: adopted after its parent N ended",
                theme.dim(),
            )));
            lines.push(Line::from(Span::styled(
                "any key closes this help",
                theme.dim(),
            )));
            let box_area = centered(area, 100, lines.len() as u16 + 4);
            frame.render_widget(Clear, box_area);
            frame.render_widget(
                Paragraph::new(lines)
                    .block(Block::default().borders(Borders::ALL).title(" keys "))
                    .wrap(Wrap { trim: false }),
                box_area,
            );
        }
        Overlay::Confirm(confirm) => {
            let question = match confirm {
                Confirm::Kill { pid, command, .. } => {
                    format!("Send SIGKILL to pid {pid} ({command})? It cannot clean up.  y / n")
                }
                Confirm::Quit { running } => format!(
                    "Quit? {running} process(es) still running will be stopped \
                     (stop signal, then SIGKILL after {:.1}s).  y / n",
                    app.state.stop_timeout
                ),
            };
            let box_area = centered(area, 64, 5);
            frame.render_widget(Clear, box_area);
            frame.render_widget(
                Paragraph::new(question)
                    .style(theme.header())
                    .block(Block::default().borders(Borders::ALL).title(" confirm "))
                    .wrap(Wrap { trim: true }),
                box_area,
            );
        }
        Overlay::Signals { selected } => {
            let target = app.selected_proc().map(|p| p.pid).unwrap_or(0);
            let signals: Vec<(i32, &str)> = all_signals().collect();
            let height = (signals.len() as u16 + 2).min(area.height);
            let visible = height.saturating_sub(2) as usize;
            let offset = selected.saturating_sub(visible.saturating_sub(1));
            let lines: Vec<Line> = signals
                .iter()
                .enumerate()
                .skip(offset)
                .take(visible)
                .map(|(index, (number, name))| {
                    let text = format!("{number:>3} {name}");
                    if index == *selected {
                        Line::from(Span::styled(format!("▶ {text}"), theme.selected()))
                    } else {
                        Line::from(format!("  {text}"))
                    }
                })
                .collect();
            let box_area = centered(area, 30, height);
            frame.render_widget(Clear, box_area);
            frame.render_widget(
                Paragraph::new(lines).block(
                    Block::default()
                        .borders(Borders::ALL)
                        .title(format!(" signal pid {target} ")),
                ),
                box_area,
            );
        }
    }
}
