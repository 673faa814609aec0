//! Closing the terminal forkscope runs in (tmux kill-session: SIGHUP, then EIO on the tty) is a
//! normal stop: every worker's exit and the `end` reach the recording, nothing is left
//! running, and nothing is reported as an error.

mod common;

use common::tui::{Tmux, forkscope, marker, recorded, wait_recorded};
use common::{Cleanup, assert_nothing_left, marked_processes, secs, wait_for};
use serde_json::Value;

/// Starts `forkscope run -n 2 EXTRA` in tmux with workers that take half a second to stop
/// (long enough for the TUI to find its terminal gone), closes the terminal once both run
/// (and, for the TUI, are drawn), and returns the recording once it has its `end`.
fn close_terminal_under(extra: &str) -> (Tmux, Vec<Value>, String) {
    let tmux = Tmux::start(100, 30);
    let marker = marker();
    let _cleanup = Cleanup(marker.clone());
    let record = tmux.path("rec.jsonl");
    let stderr = tmux.path("stderr.txt");
    tmux.type_line(&format!(
        "{bin} run -n 2 {extra} --record {rec} -- \
         sh -c 'trap \"sleep 0.5; exit 0\" TERM; sleep {marker} & wait' 2> {err}",
        bin = forkscope(),
        rec = record.display(),
        err = stderr.display(),
    ));
    let mut workers = Vec::new();
    wait_for("both workers running", secs(15.0), || {
        workers = marked_processes(&marker)
            .into_iter()
            .filter(|(_, what)| what.starts_with("sh "))
            .map(|(pid, _)| pid)
            .collect();
        workers.len() == 2
    });
    if extra.is_empty() {
        tmux.wait_screen("every worker pid on screen", 10, |screen| {
            workers.iter().all(|pid| screen.contains(&pid.to_string()))
        });
    } else {
        // The headless recording is written at the end: the stream on the tty shows the start.
        tmux.wait_screen("the JSON stream on screen", 10, |screen| {
            screen.contains("spawn")
        });
    }
    tmux.kill_session();
    // The stop after a hangup takes milliseconds; 20 s is margin for a loaded machine.
    wait_recorded(&record, "end", 1, 20);
    let events = recorded(&record);
    for pid in &workers {
        assert!(
            events
                .iter()
                .any(|e| e["kind"] == "exit" && e["pid"].as_i64() == Some(i64::from(*pid))),
            "no exit for worker {pid}: {events:?}"
        );
    }
    assert_eq!(events.last().unwrap()["kind"], "end", "{events:?}");
    let stopping: Vec<&Value> = events.iter().filter(|e| e["kind"] == "stopping").collect();
    assert_eq!(stopping.len(), 1, "{events:?}");
    assert_eq!(stopping[0]["reason"], "received SIGHUP");
    assert_nothing_left(&marker);
    let errors = std::fs::read_to_string(&stderr).unwrap_or_default();
    (tmux, events, errors)
}

#[test]
fn closing_the_terminal_of_the_tui_records_every_exit_and_the_end() {
    let (_tmux, events, stderr) = close_terminal_under("");
    assert!(stderr.is_empty(), "a hangup is no error: {stderr}");
    // forkscope's own helpers (crossterm forks `tput` when the tty has no size) are not part
    // of the supervised tree: the only children of the engine that exit are the workers.
    let engine = events[0]["pid"].clone();
    let spawned: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "spawn")
        .map(|e| &e["pid"])
        .collect();
    // Orphans adopted by forkscope (a `reparent` to the engine) end as its children too.
    let adopted: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "reparent" && e["to"] == engine)
        .map(|e| &e["pid"])
        .collect();
    for exit in events.iter().filter(|e| e["kind"] == "exit") {
        assert!(
            exit["ppid"] != engine
                || spawned.contains(&&exit["pid"])
                || adopted.contains(&&exit["pid"]),
            "an exit of a child of forkscope that is no worker: {exit}"
        );
    }
}

#[test]
fn closing_the_terminal_of_a_headless_run_records_every_exit_and_the_end() {
    let (_tmux, _events, stderr) = close_terminal_under("--headless");
    assert!(stderr.is_empty(), "a hangup is no error: {stderr}");
}
