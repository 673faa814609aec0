//! Restart policies through the real binary: `on-failure` with exponential backoff and the
//! crash-loop limit, `always` (exit 0 too), `never`, and quitting while a restart is pending.

mod common;

use std::time::Instant;

use common::*;
use serde_json::Value;

fn field_u64(events: &[&Value], name: &str) -> Vec<u64> {
    events.iter().map(|e| e[name].as_u64().unwrap()).collect()
}

#[test]
fn on_failure_backs_off_then_marks_the_worker_failed() {
    let m = marker("crashloop");
    let started = Instant::now();
    let mut fs = Forkscope::start(
        &m,
        &[
            "run",
            "--headless",
            "--restart",
            "on-failure",
            "--",
            "sh",
            "-c",
            "exit 3",
        ],
    );
    let (code, events) = fs.finish_clean(secs(9.0));
    let took = started.elapsed();
    assert_eq!(code, 1);
    let restarts = of_kind(&events, "restart");
    assert_eq!(
        field_u64(&restarts, "delay_ms"),
        vec![100, 200, 400, 800, 1600]
    );
    assert_eq!(field_u64(&restarts, "attempt"), vec![1, 2, 3, 4, 5]);
    // Six runs: the first and five restarts, each reported with its exit.
    let spawns = of_kind(&events, "spawn");
    assert_eq!(field_u64(&spawns, "restarts"), vec![0, 1, 2, 3, 4, 5]);
    assert!(spawns.iter().all(|s| s["worker"] == 0 && s["pool"] == "sh"));
    let exits = of_kind(&events, "exit");
    assert_eq!(exits.len(), 6);
    assert!(exits.iter().all(|e| e["code"] == 3));
    // Each restart comes after the exit it follows, and the next spawn waits for the delay.
    for (i, restart) in restarts.iter().enumerate() {
        assert_eq!(restart["pid"], exits[i]["pid"]);
        let waited = spawns[i + 1]["t"].as_f64().unwrap() - restart["t"].as_f64().unwrap();
        let delay = restart["delay_ms"].as_f64().unwrap() / 1000.0;
        assert!(
            waited >= delay - 0.005,
            "spawn {} came {waited}s after a {delay}s delay",
            i + 1
        );
    }
    let failed = of_kind(&events, "worker_failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["pool"], "sh");
    assert_eq!(failed[0]["worker"], 0);
    assert_eq!(failed[0]["pid"], exits[5]["pid"]);
    assert!(failed[0]["reason"].as_str().unwrap().contains("crash loop"));
    // 100+200+400+800+1600 ms of backoff.
    assert!(took >= secs(3.1), "{took:?}");
}

#[test]
fn on_failure_does_not_restart_a_success() {
    let (code, events) = run_clean(
        "onfailok",
        &[
            "run",
            "-n",
            "2",
            "--headless",
            "--restart",
            "on-failure",
            "--",
            "true",
        ],
        secs(8.0),
    );
    assert_eq!(code, 0);
    assert!(of_kind(&events, "restart").is_empty());
    assert_eq!(of_kind(&events, "spawn").len(), 2);
}

#[test]
fn always_restarts_exit_zero_and_quit_cancels_the_pending_restart() {
    let m = marker("always");
    let mut fs = Forkscope::start(
        &m,
        &["run", "--headless", "--restart", "always", "--", "true"],
    );
    let restarts = fs.wait_kind("restart", 2, secs(5.0));
    assert_eq!(restarts[0]["delay_ms"], 100);
    assert_eq!(restarts[1]["delay_ms"], 200);
    fs.signal(libc::SIGTERM);
    let (code, events) = fs.finish_clean(secs(8.0));
    let exits = of_kind(&events, "exit");
    assert!(exits.iter().all(|e| e["code"] == 0), "{}", dump(&events));
    // Every spawn has its exit; no spawn after the stop began.
    let stop_at = events
        .iter()
        .position(|e| kind(e) == "stopping")
        .expect("stopping");
    let spawns = of_kind(&events, "spawn");
    assert_eq!(spawns.len(), exits.len());
    assert!(
        events[stop_at..].iter().all(|e| kind(e) != "spawn"),
        "{}",
        dump(&events)
    );
    // Every run exited 0.
    assert_eq!(code, 0);
}

#[test]
fn never_does_not_restart() {
    let (code, events) = run_clean(
        "never",
        &[
            "run",
            "-n",
            "2",
            "--headless",
            "--restart",
            "never",
            "--",
            "sh",
            "-c",
            "exit 9",
        ],
        secs(8.0),
    );
    assert_eq!(code, 1);
    assert!(of_kind(&events, "restart").is_empty());
    assert!(of_kind(&events, "worker_failed").is_empty());
    assert_eq!(of_kind(&events, "spawn").len(), 2);
    assert_eq!(of_kind(&events, "exit").len(), 2);
}

#[test]
fn the_default_is_never() {
    let (_, events) = run_clean(
        "defaultnever",
        &["run", "--headless", "--", "sh", "-c", "exit 1"],
        secs(8.0),
    );
    assert_eq!(
        of_kind(&events, "session")[0]["pools"][0]["restart"],
        "never"
    );
    assert!(of_kind(&events, "restart").is_empty());
}

#[test]
fn a_command_that_does_not_exist_crash_loops_into_failed() {
    let (code, events) = run_clean(
        "missingrestart",
        &[
            "run",
            "--headless",
            "--restart",
            "on-failure",
            "--",
            "/nonexistent/fks-nothing",
        ],
        secs(9.0),
    );
    assert_eq!(code, 1);
    assert_eq!(of_kind(&events, "spawn_failed").len(), 6);
    assert_eq!(of_kind(&events, "restart").len(), 5);
    assert_eq!(of_kind(&events, "worker_failed").len(), 1);
    assert!(of_kind(&events, "spawn").is_empty());
}
