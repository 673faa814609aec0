//! The end-of-session summary printed after the TUI closes (outside ratatui, so every text
//! from outside goes through `model::printable`).

use crate::model::printable;
use crate::ui::app::App;

/// The end-of-session summary: processes that failed, those forkscope stopped (counted apart:
/// not the program's failures), and workers that could not start, with why. Argv is the
/// processes' own choice: it is printed escaped (`printable::argv`).
pub fn lines(app: &App) -> Vec<String> {
    const SHOWN: usize = 20;
    let line = |p: &crate::model::state::ProcessView| {
        let status = p.ended.map(|e| e.status.describe()).unwrap_or_default();
        format!(
            "  pid {:>7}  {:<24} {}",
            p.pid,
            status,
            printable::argv(&p.argv)
        )
    };
    let procs = || app.state.procs.values();
    let failures: Vec<String> = procs().filter(|p| p.failed()).map(line).collect();
    let stopped: Vec<String> = procs()
        .filter(|p| p.stopped_by_forkscope())
        .map(line)
        .collect();
    let not_started: Vec<String> = app
        .state
        .pools
        .iter()
        .flat_map(|pool| {
            pool.workers.iter().filter_map(move |(index, slot)| {
                let error = slot.failed.as_ref()?;
                Some(format!(
                    "  {}[{index}] could not start {}: {}",
                    printable::one_line(&pool.info.name),
                    printable::argv(&pool.info.argv),
                    printable::one_line(error)
                ))
            })
        })
        .collect();
    let unknown = procs()
        .filter(|p| {
            p.ended
                .is_some_and(|e| e.status == crate::model::ExitStatus::Unknown)
        })
        .count();
    let total = app.state.procs.len();
    let mut lines = Vec::new();
    if total == 0 && !not_started.is_empty() {
        lines.push("forkscope: the program could not start".to_string());
    } else {
        let mut head = format!(
            "forkscope: {total} process(es) seen, {} did not exit 0",
            failures.len()
        );
        if !stopped.is_empty() {
            head.push_str(&format!(", stopped by forkscope: {}", stopped.len()));
        }
        if unknown > 0 {
            head.push_str(&format!(", {unknown} with an unknown status"));
        }
        lines.push(head);
    }
    for (title, list) in [
        (None, &failures),
        (Some(" stopped by forkscope:"), &stopped),
        (Some(" could not start:"), &not_started),
    ] {
        if list.is_empty() {
            continue;
        }
        lines.extend(title.map(str::to_string));
        lines.extend(list.iter().take(SHOWN).cloned());
        if list.len() > SHOWN {
            lines.push(format!("  … and {} more", list.len() - SHOWN));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, EventBody, ExitStatus, PoolInfo, SignalReason, TrackSource};
    use crate::ui::app::Msg;

    fn app(bodies: Vec<EventBody>) -> App {
        let mut app = App::new("t".into(), 100, crate::ui::theme::Theme::monochrome());
        app.update(Msg::Engine(Event {
            t: 0.0,
            body: EventBody::Session {
                pid: 100,
                version: "test".into(),
                pools: vec![PoolInfo {
                    name: "p".into(),
                    size: 1,
                    argv: vec!["/tmp".into()],
                    restart: "never".into(),
                }],
                track: TrackSource::Kernel,
                track_note: String::new(),
                stop_timeout: 5.0,
                started_unix: 0.0,
                metrics: None,
            },
        }));
        for (i, body) in bodies.into_iter().enumerate() {
            app.update(Msg::Engine(Event {
                t: 0.1 * (i + 1) as f64,
                body,
            }));
        }
        app
    }

    #[test]
    fn a_program_that_could_not_start_says_why() {
        let app = app(vec![EventBody::SpawnFailed {
            pid: None,
            pool: "p".into(),
            worker: 0,
            argv: vec!["/tmp".into()],
            error: "/tmp: is a directory".into(),
        }]);
        let lines = lines(&app);
        assert_eq!(
            lines[0], "forkscope: the program could not start",
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("p[0] could not start /tmp: /tmp: is a directory")),
            "{lines:?}"
        );
    }

    #[test]
    fn what_forkscope_stopped_is_counted_apart() {
        let fork = |pid| EventBody::Fork {
            pid,
            ppid: 100,
            start_time: Some(pid as u64),
            source: TrackSource::Kernel,
        };
        let exit = |pid, status| EventBody::Exit {
            pid,
            ppid: 100,
            status,
            pool: None,
            worker: None,
            source: TrackSource::Kernel,
            zombie: false,
        };
        let sigterm = ExitStatus::Signaled {
            signal: 15,
            core_dumped: false,
        };
        let app = app(vec![
            fork(301),
            fork(302),
            EventBody::Signal {
                pid: 301,
                signal: crate::model::signals::Sig(libc::SIGTERM),
                reason: SignalReason::Leftover,
                result: crate::model::Delivery::Sent,
            },
            exit(301, sigterm),
            exit(302, ExitStatus::Exited(3)),
        ]);
        let lines = lines(&app);
        assert_eq!(
            lines[0], "forkscope: 2 process(es) seen, 1 did not exit 0, stopped by forkscope: 1",
            "{lines:?}"
        );
        let stopped_at = lines
            .iter()
            .position(|l| l.contains("stopped by forkscope:") && l.starts_with(' '));
        let stopped_at = stopped_at.expect("a stopped section");
        assert!(lines[stopped_at + 1].contains("pid     301"), "{lines:?}");
        assert!(
            lines[1].contains("pid     302") && lines[1].contains("exit 3"),
            "{lines:?}"
        );
    }
}
