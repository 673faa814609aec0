//! The lesson panel beside the tree in a demo: the current step's title, what is happening,
//! the question for the class, whether the demo waits for `.`, and the steps so far.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use crate::model::lesson::Lesson;
use crate::ui::app::App;

/// Whether the panel is drawn: the session has steps and `e` has not hidden it.
pub fn visible(app: &App) -> bool {
    !app.lesson_hidden && !app.state.lesson.steps.is_empty()
}

/// Text from a program, without anything a terminal would act on.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The panel's lines (pure: the render tests read them).
pub fn lines(lesson: &Lesson, app: &App) -> Vec<Line<'static>> {
    let theme = app.theme;
    let Some(step) = lesson.current() else {
        return Vec::new();
    };
    let mut lines = vec![
        Line::from(Span::styled(clean(&step.words.title), theme.header())),
        Line::from(""),
    ];
    for paragraph in step.words.text.split('\n') {
        lines.push(Line::from(clean(paragraph)));
    }
    if !step.words.question.is_empty() {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(
            format!("? {}", clean(&step.words.question)),
            theme.highlight(),
        )));
    }
    lines.push(Line::from(""));
    let state = if lesson.waiting().is_some() {
        Span::styled("‖ waiting: press . for the next step", theme.ok())
    } else if app.state.ended.is_some() || app.finished.is_some() {
        Span::styled("■ the demo has ended", theme.dim())
    } else if step.held {
        Span::styled("▶ running to the next step…", theme.dim())
    } else {
        Span::styled("▶ running straight through", theme.dim())
    };
    lines.push(Line::from(state));
    let earlier: Vec<_> = lesson.steps.iter().rev().skip(1).take(8).collect();
    if !earlier.is_empty() {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled("earlier steps:", theme.dim())));
        for old in earlier.into_iter().rev() {
            lines.push(Line::from(Span::styled(
                format!("{:>3}. {}", old.n, clean(&old.words.title)),
                theme.dim(),
            )));
        }
    }
    lines
}

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let lesson = &app.state.lesson;
    let title = match lesson.current() {
        Some(step) => format!(" lesson · step {} · . next · e hide ", step.n),
        None => " lesson ".to_string(),
    };
    let block = Block::default().borders(Borders::ALL).title(title);
    let panel = Paragraph::new(lines(lesson, app))
        .block(block)
        .wrap(Wrap { trim: false });
    frame.render_widget(panel, area);
}
