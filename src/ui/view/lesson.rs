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
    } else if app.state.ended.is_some()
        || app.finished.is_some()
        || app.state.find_pid(step.pid).is_some_and(|p| !p.is_alive())
    {
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

#[cfg(test)]
mod tests {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::super::tests::sample_app;
    use crate::model::lesson::StepReleaser;
    use crate::model::{Action, Event, EventBody};
    use crate::ui::app::{App, Effect, MainView, Msg};

    fn draw(app: &App, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal
            .draw(|frame| {
                crate::ui::view::render(app, frame);
            })
            .unwrap();
        crate::ui::screen_text(terminal.backend().buffer())
    }

    fn step(app: &mut App, t: f64, n: u32, title: &str) {
        app.update(Msg::Engine(Event {
            t,
            body: EventBody::Step {
                pid: 201,
                n,
                title: title.into(),
                text: "pid 301 is a child of 201.\u{1b}[2J Look at the tree.".into(),
                question: "Who reaps it?".into(),
                held: true,
            },
        }));
    }

    fn key(app: &mut App, c: char) -> Vec<Effect> {
        app.update(Msg::Key(KeyEvent::new(
            KeyCode::Char(c),
            KeyModifiers::NONE,
        )))
    }

    #[test]
    fn panel_beside_the_tree_shows_the_step_and_e_hides_it() {
        let mut app = sample_app();
        assert!(
            !draw(&app, 120, 40).contains("lesson"),
            "no steps, no panel"
        );
        step(&mut app, 0.5, 1, "A child process");
        step(&mut app, 0.6, 2, "Its ending");
        let screen = draw(&app, 120, 40);
        assert!(screen.contains("lesson · step 2"), "{screen}");
        assert!(screen.contains("Its ending"), "{screen}");
        assert!(screen.contains("? Who reaps it?"), "{screen}");
        assert!(
            screen.contains("waiting: press . for the next step"),
            "{screen}"
        );
        assert!(
            screen.contains("1. A child process"),
            "earlier steps listed: {screen}"
        );
        assert!(
            !screen.contains('\u{1b}'),
            "escapes from the program are dropped"
        );
        // Beside the tree: the tree's title and the panel's share a screen line.
        assert!(
            screen
                .lines()
                .any(|l| l.contains("processes (") && l.contains("lesson ·")),
            "{screen}"
        );
        key(&mut app, 'e');
        assert!(!draw(&app, 120, 40).contains("lesson ·"));
        key(&mut app, 'e');
        let narrow = draw(&app, 70, 40);
        assert!(
            narrow.contains("lesson · step 2"),
            "below the tree when narrow: {narrow}"
        );
        for (w, h) in [(0, 0), (30, 8), (40, 10)] {
            draw(&app, w, h);
        }
    }

    #[test]
    fn dot_asks_the_engine_only_while_a_step_is_held() {
        let mut app = sample_app();
        assert!(key(&mut app, '.').is_empty(), "no steps in this session");
        assert!(app.status.as_ref().is_some_and(|s| s.error));
        step(&mut app, 0.5, 1, "One");
        assert_eq!(key(&mut app, '.'), vec![Effect::Engine(Action::NextStep)]);
        app.update(Msg::Engine(Event {
            t: 0.7,
            body: EventBody::StepRelease {
                pid: 201,
                n: 1,
                by: StepReleaser::Key,
            },
        }));
        assert!(key(&mut app, '.').is_empty(), "released: nothing waits");
        assert!(draw(&app, 120, 40).contains("running to the next step"));
    }

    #[test]
    fn timeline_marks_each_step() {
        let mut app = sample_app();
        step(&mut app, 0.5, 1, "One");
        app.main_view = MainView::Timeline;
        let screen = draw(&app, 120, 40);
        assert!(screen.contains('▼'), "{screen}");
        assert!(screen.contains('┊'), "{screen}");
    }
}
