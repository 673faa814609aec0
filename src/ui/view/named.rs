//! Named shared objects in the views: hosted barriers (from `barrier` events) and the
//! objects a program named with `forkscope.watch` (from `watched` events), as lines for the
//! Sync view and as a panel above the shared-memory view. Renders the model; reads nothing.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::model::named::WatchedObject;
use crate::model::state::State;
use crate::ui::theme::Theme;

fn waiting_pids(list: &[i32]) -> String {
    let shown: Vec<String> = list.iter().take(12).map(i32::to_string).collect();
    let more = list.len().saturating_sub(12);
    match (shown.is_empty(), more) {
        (true, _) => String::new(),
        (false, 0) => format!("  pids {}", shown.join(" ")),
        (false, more) => format!("  pids {} +{more}", shown.join(" ")),
    }
}

/// `counter      Value('i') = 42`.
fn object_line(object: &WatchedObject, theme: Theme) -> Line<'static> {
    let text = format!(
        "  {:<14} {}{}",
        object.name,
        object.type_words(),
        object.value_words()
    );
    if object.error.is_some() {
        Line::from(Span::styled(text, theme.dim()))
    } else {
        Line::from(text)
    }
}

/// The Sync view's hosted barriers and watched primitives (empty when there are none).
pub fn sync_lines(state: &State, theme: Theme) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let heading = |text: &str| Line::from(Span::styled(text.to_string(), theme.header()));
    if !state.hosted_barriers.is_empty() {
        out.push(heading("HOSTED BARRIERS"));
        for b in state.hosted_barriers.values() {
            let text = format!(
                "  {:<14} {}/{} waiting  gen {}  {}{}",
                b.name,
                b.waiting,
                b.parties,
                b.generation,
                b.state_words(),
                waiting_pids(&b.waiting_pids)
            );
            out.push(if b.broken.is_some() {
                Line::from(Span::styled(text, theme.error()))
            } else {
                Line::from(text)
            });
        }
    }
    let primitives: Vec<&WatchedObject> = state.watched.values().filter(|w| w.is_sync()).collect();
    if !primitives.is_empty() {
        out.push(heading("WATCHED PRIMITIVES (forkscope.watch)"));
        out.extend(primitives.into_iter().map(|w| object_line(w, theme)));
    }
    out
}

/// Every watched object by name, with its type and last value.
pub fn object_lines(state: &State, theme: Theme) -> Vec<Line<'static>> {
    state
        .watched
        .values()
        .map(|w| object_line(w, theme))
        .collect()
}

/// The height the named-objects panel wants above the shared-memory view (0 when none).
pub fn panel_height(state: &State, area: Rect) -> u16 {
    if state.watched.is_empty() {
        return 0;
    }
    (state.watched.len() as u16)
        .saturating_add(2)
        .min(area.height / 2)
}

/// The named-objects panel of the shared-memory view.
pub fn render_panel(state: &State, theme: Theme, frame: &mut Frame, area: Rect) {
    if area.width < 4 || area.height < 3 {
        return;
    }
    let block = Block::bordered().title(" named objects (forkscope.watch) ");
    frame.render_widget(
        Paragraph::new(object_lines(state, theme)).block(block),
        area,
    );
}

#[cfg(test)]
mod tests {
    use crate::model::{BarrierStep, Event, EventBody};
    use crate::ui::app::{App, MainView};
    use crate::ui::view::tests::draw;

    fn watched(
        name: &str,
        object: &str,
        typecode: Option<&str>,
        value: serde_json::Value,
    ) -> EventBody {
        EventBody::Watched {
            pid: 201,
            name: name.into(),
            object: object.into(),
            typecode: typecode.map(str::to_string),
            length: Some(5),
            parties: Some(3),
            value,
            error: None,
        }
    }

    fn barrier(
        pid: Option<i32>,
        step: BarrierStep,
        waiting: u32,
        reason: Option<&str>,
    ) -> EventBody {
        EventBody::Barrier {
            pid,
            name: "start".into(),
            step,
            generation: 2,
            parties: 3,
            waiting,
            pool: None,
            worker: None,
            reason: reason.map(str::to_string),
        }
    }

    fn app_with_named() -> App {
        let mut app = crate::ui::view::tests::sample_app();
        for (i, body) in [
            watched("counter", "value", Some("i"), serde_json::json!(42)),
            watched(
                "weights",
                "array",
                Some("d"),
                serde_json::json!([0.5, 1.0, 1.5, 2.0, 2.5]),
            ),
            watched(
                "gate",
                "barrier",
                None,
                serde_json::json!({"state": "filling", "n_waiting": 2, "broken": false}),
            ),
            watched(
                "mutex",
                "lock",
                None,
                serde_json::json!({"locked": true, "waiters": 1}),
            ),
            barrier(Some(201), BarrierStep::Arrive, 1, None),
            barrier(Some(202), BarrierStep::Arrive, 2, None),
        ]
        .into_iter()
        .enumerate()
        {
            app.update(crate::ui::app::Msg::Engine(Event {
                t: 1.0 + i as f64 * 0.1,
                body,
            }));
        }
        app
    }

    /// Zero-size and tiny areas render without panicking.
    fn draw_tiny(app: &App) {
        for (w, h) in [(0, 0), (100, 0), (0, 30), (3, 2), (20, 5)] {
            draw(app, w, h);
        }
    }

    #[test]
    fn shm_view_names_watched_objects_with_types_and_values() {
        let mut app = app_with_named();
        app.main_view = MainView::Shm;
        let screen = draw(&app, 100, 30);
        assert!(screen.contains("named objects"), "{screen}");
        assert!(
            screen.contains("counter        Value('i') = 42"),
            "{screen}"
        );
        assert!(
            screen.contains("weights        Array('d', 5) = [0.5,1.0,1.5,2.0,2.5]"),
            "{screen}"
        );
        assert!(
            screen.contains("gate           Barrier(3): 2 waiting"),
            "{screen}"
        );
        draw_tiny(&app);
    }

    #[test]
    fn sync_view_lists_hosted_barriers_and_watched_primitives() {
        let mut app = app_with_named();
        app.main_view = MainView::Sync;
        let screen = draw(&app, 100, 30);
        assert!(screen.contains("HOSTED BARRIERS"), "{screen}");
        assert!(
            screen.contains("start          2/3 waiting  gen 2  filling  pids 201 202"),
            "{screen}"
        );
        assert!(
            screen.contains("mutex          Lock: locked, 1 waiting"),
            "{screen}"
        );
        assert!(
            screen.contains("gate           Barrier(3): 2 waiting"),
            "{screen}"
        );
        assert!(
            !screen.contains("counter"),
            "values are not primitives: {screen}"
        );

        app.update(crate::ui::app::Msg::Engine(Event {
            t: 2.0,
            body: barrier(None, BarrierStep::Break, 0, Some("pid 202 died")),
        }));
        let screen = draw(&app, 100, 30);
        assert!(
            screen.contains("start          0/3 waiting  gen 2  broken: pid 202 died"),
            "{screen}"
        );
        draw_tiny(&app);
    }
}
