//! The Python stacks of the selected process, as lines of the detail pane: the named wait,
//! then each thread (main thread first) with its frames innermost first. Rendering only: the
//! stacks come from the reader thread as a message.

use ratatui::text::{Line, Span};

use crate::model::pystack::{StackError, main_thread_first};
use crate::model::state::ProcessView;
use crate::ui::app::App;

/// The lines for `proc` (none for a process that is not Python or not read yet).
pub fn lines(app: &App, proc: &ProcessView) -> Vec<Line<'static>> {
    let theme = app.theme;
    let Some(stacks) = app.selected_stacks().filter(|_| proc.is_alive()) else {
        return Vec::new();
    };
    let threads = match &stacks.stacks {
        Err(StackError::NotPython) => return Vec::new(),
        Err(err) => {
            return vec![Line::from(Span::styled(
                format!("python stack unreadable: {err}"),
                theme.error(),
            ))];
        }
        Ok(threads) => threads,
    };
    let mut lines = vec![Line::from(Span::styled(
        match &stacks.wait {
            Some(wait) => format!("python: waits in {wait}"),
            None => "python:".to_string(),
        },
        theme.header(),
    ))];
    for thread in main_thread_first(threads, proc.pid) {
        let name = thread.name.as_deref().unwrap_or("thread");
        let tid = thread.tid.map(|t| format!(" {t}")).unwrap_or_default();
        let state = if thread.active { "running" } else { "idle" };
        let gil = if thread.gil { " · GIL" } else { "" };
        lines.push(Line::from(Span::styled(
            format!("{name}{tid} ({state}{gil})"),
            theme.dim(),
        )));
        for frame in &thread.frames {
            lines.push(Line::from(format!(
                "  {} {}:{}",
                frame.function,
                frame.file_name(),
                frame.line
            )));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use crate::model::pystack::{ProcessStacks, PyFrame, StackError, ThreadStack};
    use crate::ui::app::{App, Msg};

    fn draw(app: &App) -> String {
        let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
        terminal
            .draw(|frame| {
                super::super::render(app, frame);
            })
            .expect("draw");
        crate::ui::screen_text(terminal.backend().buffer())
    }

    fn reading(pid: i32, stacks: Result<Vec<ThreadStack>, StackError>) -> Msg {
        Msg::PyStack(Box::new(ProcessStacks {
            pid,
            start_time: 1,
            stacks,
            wait: Some("Barrier.wait at train.py:42".into()),
        }))
    }

    fn frame(function: &str, file: &str, line: u32) -> PyFrame {
        PyFrame {
            function: function.into(),
            file: file.into(),
            line,
        }
    }

    #[test]
    fn the_selected_process_shows_its_threads_innermost_first() {
        let mut app = super::super::tests::sample_app();
        assert_eq!(app.stack_target(), Some((201, Some(1))));
        let main = ThreadStack {
            tid: Some(201),
            name: Some("MainThread".into()),
            frames: vec![
                frame("Barrier.wait", "/usr/lib/python3.11/threading.py", 697),
                frame("stage", "/home/me/train.py", 42),
            ],
            active: false,
            gil: false,
        };
        let helper = ThreadStack {
            tid: Some(205),
            name: Some("feeder".into()),
            frames: vec![frame("loop", "/home/me/train.py", 7)],
            active: true,
            gil: true,
        };
        app.update(reading(201, Ok(vec![helper, main])));
        let screen = draw(&app);
        assert!(
            screen.contains("python: waits in Barrier.wait at train.py:42"),
            "{screen}"
        );
        let main_at = screen.find("MainThread 201 (idle)").expect("main thread");
        let inner = screen.find("Barrier.wait threading.py:697").expect("inner");
        let outer = screen.find("stage train.py:42").expect("outer");
        let helper_at = screen.find("feeder 205 (running · GIL)").expect("helper");
        assert!(
            main_at < inner && inner < outer && outer < helper_at,
            "{screen}"
        );
        // A reading of another process is not shown for this one.
        let mut other = super::super::tests::sample_app();
        other.update(reading(202, Ok(Vec::new())));
        assert!(!draw(&other).contains("python:"));
    }

    #[test]
    fn an_unreadable_process_says_why_and_a_non_python_one_says_nothing() {
        let mut app = super::super::tests::sample_app();
        app.update(reading(201, Err(StackError::Permission("EPERM".into()))));
        let screen = draw(&app);
        assert!(
            screen.contains("python stack unreadable: permission denied:")
                && screen.contains("EPERM"),
            "{screen}"
        );
        app.update(reading(201, Err(StackError::NotPython)));
        assert!(!draw(&app).contains("python"));
    }
}
