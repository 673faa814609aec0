//! The Sync view (`w`): deadlocks and barriers that cannot fill first, then barriers, the
//! multiprocessing primitives, semaphores, channels between processes, and every process's
//! wait, after the hosted barriers and watched primitives ([`super::named`]). Renders the
//! sync watcher's last full report and the model; reads nothing itself.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::model::sync::{Channel, Confidence, SyncReport};
use crate::ui::app::App;
use crate::ui::theme::Theme;

fn pids(list: &[i32]) -> String {
    let shown: Vec<String> = list.iter().take(12).map(i32::to_string).collect();
    let more = list.len().saturating_sub(12);
    if more > 0 {
        format!("{} +{more}", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

fn guess(confidence: Confidence) -> &'static str {
    match confidence {
        Confidence::Confirmed => "",
        Confidence::Guess => " (guess)",
    }
}

fn secs(s: Option<f64>) -> String {
    s.map(|s| format!(" for {s:.0}s")).unwrap_or_default()
}

fn ends(c: &Channel) -> String {
    let shown: Vec<String> = c
        .ends
        .iter()
        .take(8)
        .map(|e| format!("{}:{}{}", e.pid, e.fd, e.mode))
        .collect();
    let more = c.ends.len().saturating_sub(8);
    if more > 0 {
        format!("{} +{more}", shown.join(" "))
    } else {
        shown.join(" ")
    }
}

/// The lines of the view, from a full report.
pub fn lines(report: &SyncReport, theme: Theme) -> Vec<Line<'static>> {
    let mut out: Vec<Line<'static>> = Vec::new();
    let heading = |text: &str| Line::from(Span::styled(text.to_string(), theme.header()));
    out.push(heading("WAITS-FOR"));
    let stuck_barriers: Vec<_> = report
        .barriers
        .iter()
        .filter(|b| b.can_never_fill)
        .collect();
    if report.deadlocks.is_empty() && stuck_barriers.is_empty() {
        out.push(Line::from(Span::styled(
            "  no cycle: every blocked process waits for one that can proceed",
            theme.dim(),
        )));
    }
    for d in &report.deadlocks {
        out.push(Line::from(Span::styled(
            format!(
                "  ✗ DEADLOCK {}: {}{}",
                pids(&d.pids),
                d.cycle.join("; "),
                if d.guess {
                    " (lock holders guessed)"
                } else {
                    ""
                }
            ),
            theme.error(),
        )));
    }
    for b in stuck_barriers {
        out.push(Line::from(Span::styled(
            format!(
                "  ✗ barrier sem {} can never fill: {} exited while {} wait",
                b.semaphore,
                pids(&b.exited),
                pids(&b.waiting)
            ),
            theme.error(),
        )));
    }
    out.push(heading("BARRIERS"));
    for b in &report.barriers {
        let missing: Vec<String> = b
            .missing
            .iter()
            .map(|m| match &m.blocked_on {
                Some(w) => format!("{} {}", m.pid, w.short(m.pid)),
                None => m.pid.to_string(),
            })
            .collect();
        out.push(Line::from(format!(
            "  sem {}  {} {} arrived · waiting {}{} · not waiting: {}{}",
            b.semaphore,
            b.state.as_deref().unwrap_or("state ?"),
            b.arrived.map_or("?".into(), |a| a.to_string()),
            pids(&b.waiting),
            secs(b.waiting_secs),
            missing.join(", "),
            guess(b.confidence)
        )));
    }
    out.push(heading("LOCKS, EVENTS, CONDITIONS, QUEUES"));
    for p in &report.primitives {
        let sems: Vec<String> = p.semaphores.iter().map(u64::to_string).collect();
        let waiting = if p.waiting.is_empty() {
            String::new()
        } else {
            format!(" · waiting {}", pids(&p.waiting))
        };
        out.push(Line::from(format!(
            "  {:<14} sems {:<20} {}{waiting}{}",
            p.kind,
            sems.join(","),
            p.state.as_deref().unwrap_or("-"),
            guess(p.confidence)
        )));
    }
    out.push(heading("SEMAPHORES"));
    for s in &report.semaphores {
        let value = |v: Option<u32>| v.map_or("?".into(), |v| v.to_string());
        out.push(Line::from(format!(
            "  sem {:<8} {:<20} value {:<10} waiters {:<3} blocked [{}] {}",
            s.inode,
            s.kind.as_deref().unwrap_or("-"),
            value(s.value),
            value(s.waiters),
            pids(&s.blocked),
            s.name
        )));
    }
    out.push(heading("CHANNELS (shared by two processes or waited on)"));
    for c in &report.channels {
        let holders: std::collections::BTreeSet<i32> = c.ends.iter().map(|e| e.pid).collect();
        if holders.len() < 2 && c.blocked.is_empty() {
            continue;
        }
        let blocked: Vec<String> = c
            .blocked
            .iter()
            .map(|b| format!("{} {}", b.pid, b.kind.label()))
            .collect();
        let bytes = c.bytes_waiting.map_or("? B".into(), |b| format!("{b} B"));
        let blocked = if blocked.is_empty() {
            String::new()
        } else {
            format!(" · blocked: {}", blocked.join(", "))
        };
        out.push(Line::from(format!(
            "  {}:[{}] {bytes} waiting · ends {}{blocked}",
            c.kind,
            c.inode,
            ends(c)
        )));
    }
    out.push(heading("PROCESSES"));
    for p in &report.processes {
        let wait = &p.blocked_on;
        out.push(Line::from(format!(
            "  {:>7}  {:<12} {}{}",
            p.pid,
            wait.kind.label(),
            wait.short(p.pid),
            secs(wait.blocked_secs)
        )));
    }
    out
}

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let block = Block::bordered().title(" who waits for what · w back · j/k scroll ");
    let mut all = super::named::sync_lines(&app.state, app.theme);
    match &app.sync.full {
        Some(report) => all.extend(lines(report, app.theme)),
        None => all.push(Line::from("scanning the waits of the supervised tree…")),
    }
    let scroll = app.sync.scroll.min(all.len().saturating_sub(1));
    let shown: Vec<Line> = all.into_iter().skip(scroll).collect();
    frame.render_widget(Paragraph::new(shown).block(block), area);
}

/// The detail pane's lines about `pid`: its wait (and other threads' waits), and its
/// channels with the processes at their other ends (from the last full scan).
pub fn detail_lines(app: &App, pid: i32) -> Vec<Line<'static>> {
    let theme = app.theme;
    let mut out = Vec::new();
    let Some(process) = app.sync.latest.as_ref().and_then(|r| r.process(pid)) else {
        return out;
    };
    let wait = &process.blocked_on;
    out.push(Line::from(vec![
        Span::styled("waiting on ", theme.dim()),
        Span::raw(format!("⧗ {}{}", wait.short(pid), secs(wait.blocked_secs))),
    ]));
    if let Some(python) = &wait.python {
        out.push(Line::from(format!("  {python}")));
    }
    for t in process.threads.iter().filter(|t| t.tid != pid).take(3) {
        out.push(Line::from(Span::styled(
            format!("  thread {}: {}", t.tid, t.blocked_on.short(pid)),
            theme.dim(),
        )));
    }
    let Some(full) = &app.sync.full else {
        out.push(Line::from(Span::styled(
            "channels: press w to scan them",
            theme.dim(),
        )));
        return out;
    };
    for c in full.channels.iter() {
        let Some(mine) = c.ends.iter().find(|e| e.pid == pid) else {
            continue;
        };
        let others: Vec<String> = c
            .ends
            .iter()
            .filter(|e| e.pid != pid && (c.peer_inode.is_none() || e.inode != mine.inode))
            .map(|e| format!("{}{}", e.pid, e.mode))
            .take(6)
            .collect();
        if others.is_empty() {
            continue;
        }
        out.push(Line::from(format!(
            "{}:[{}] fd {} {} ↔ {}",
            c.kind,
            c.inode,
            mine.fd,
            mine.mode,
            others.join(" ")
        )));
    }
    out
}

/// The WAITING ON cell of the tree: `⧗ sem 3 (barrier, 2 waiting)`, empty when running or
/// unknown.
pub fn waiting_cell(app: &App, pid: i32) -> String {
    match app.sync.wait_of(pid) {
        Some(w)
            if !matches!(
                w.kind,
                crate::model::sync::WaitKind::Running | crate::model::sync::WaitKind::Unknown
            ) =>
        {
            format!("⧗ {}", w.short(pid))
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::inspect::sync::watch::SyncSnapshot;
    use crate::model::sync::{
        Barrier, BlockedOn, ChannelEnd, Deadlock, MissingParty, ProcessWaits, ThreadWait, WaitKind,
    };
    use crate::ui::app::{MainView, Msg};

    fn waits(pid: i32, b: BlockedOn) -> ProcessWaits {
        ProcessWaits {
            pid,
            threads: vec![ThreadWait {
                tid: pid,
                blocked_on: b.clone(),
            }],
            blocked_on: b,
        }
    }

    fn report() -> SyncReport {
        let mut on_sem = BlockedOn::new(WaitKind::Futex);
        on_sem.object = Some("sem 62 (barrier, 1 waiting)".into());
        on_sem.details.semaphore = Some(62);
        let mut reading = BlockedOn::new(WaitKind::PipeRead);
        reading.object = Some("pipe:[9]".into());
        reading.details.peers = vec![201];
        SyncReport {
            processes: vec![waits(201, on_sem), waits(202, reading)],
            barriers: vec![Barrier {
                semaphore: 62,
                state: Some("filling".into()),
                arrived: Some(1),
                arena: None,
                arena_offset: None,
                waiting: vec![201],
                waiting_secs: Some(3.0),
                missing: vec![MissingParty {
                    pid: 202,
                    blocked_on: None,
                }],
                exited: vec![203],
                can_never_fill: true,
                confidence: Confidence::Confirmed,
            }],
            channels: vec![Channel {
                inode: 9,
                kind: "pipe".into(),
                peer_inode: None,
                ends: vec![
                    ChannelEnd {
                        pid: 201,
                        fd: 4,
                        mode: "w".into(),
                        inode: 9,
                    },
                    ChannelEnd {
                        pid: 202,
                        fd: 3,
                        mode: "r".into(),
                        inode: 9,
                    },
                ],
                bytes_waiting: Some(0),
                blocked: vec![],
            }],
            deadlocks: vec![Deadlock {
                pids: vec![201, 202],
                cycle: vec!["201 waits for 202 (sem 1)".into()],
                guess: true,
            }],
            ..SyncReport::default()
        }
    }

    fn draw(app: &App, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal
            .draw(|frame| {
                crate::ui::view::render(app, frame);
            })
            .unwrap();
        crate::ui::screen_text(terminal.backend().buffer())
    }

    #[test]
    fn tree_column_detail_and_view() {
        let mut app = crate::ui::view::tests::sample_app();
        let before = draw(&app, 140, 40);
        assert!(!before.contains("WAITING ON"), "{before}");
        app.update(Msg::Sync(Box::new(SyncSnapshot {
            report: report(),
            full: true,
        })));
        let screen = draw(&app, 140, 40);
        assert!(screen.contains("WAITING ON"), "{screen}");
        assert!(screen.contains("⧗ sem 62 (barrier, 1 waiting)"), "{screen}");
        assert!(screen.contains("⧗ recv pipe:[9]") || screen.contains("⧗ recv ← 201 pipe"));
        app.main_view = MainView::Sync;
        let screen = draw(&app, 140, 40);
        assert!(screen.contains("✗ DEADLOCK 201, 202"), "{screen}");
        assert!(screen.contains("can never fill: 203 exited"), "{screen}");
        assert!(screen.contains("filling 1 arrived"), "{screen}");
        assert!(
            screen.contains("pipe:[9] 0 B waiting · ends 201:4w 202:3r"),
            "{screen}"
        );
        for (w, h) in [(0, 0), (1, 1), (20, 5)] {
            draw(&app, w, h);
        }
    }

    #[test]
    fn detail_lines_name_the_wait_and_the_peers() {
        let mut app = crate::ui::view::tests::sample_app();
        assert!(detail_lines(&app, 202).is_empty());
        app.update(Msg::Sync(Box::new(SyncSnapshot {
            report: report(),
            full: false,
        })));
        let text: Vec<String> = detail_lines(&app, 202)
            .iter()
            .map(|l| l.to_string())
            .collect();
        assert_eq!(text[0], "waiting on ⧗ recv ← 201 pipe");
        assert!(text[1].contains("press w"), "{text:?}");
        app.update(Msg::Sync(Box::new(SyncSnapshot {
            report: report(),
            full: true,
        })));
        let text: Vec<String> = detail_lines(&app, 202)
            .iter()
            .map(|l| l.to_string())
            .collect();
        assert_eq!(text[1], "pipe:[9] fd 3 r ↔ 201w");
        assert_eq!(waiting_cell(&app, 201), "⧗ sem 62 (barrier, 1 waiting)");
        assert_eq!(waiting_cell(&app, 999), "");
    }

    #[test]
    fn w_toggles_the_view_and_asks_for_full_scans() {
        use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
        let mut app = crate::ui::view::tests::sample_app();
        assert_eq!(app.sync_request().map(|r| r.full), Some(false));
        app.update(Msg::Key(KeyEvent::new(
            KeyCode::Char('w'),
            KeyModifiers::NONE,
        )));
        assert_eq!(app.main_view, MainView::Sync);
        assert_eq!(app.sync_request().map(|r| r.full), Some(true));
        app.update(Msg::Key(KeyEvent::new(
            KeyCode::Char('j'),
            KeyModifiers::NONE,
        )));
        assert_eq!(app.sync.scroll, 1);
        app.update(Msg::Key(KeyEvent::new(
            KeyCode::Char('w'),
            KeyModifiers::NONE,
        )));
        assert_eq!(app.main_view, MainView::Tree);
    }
}
