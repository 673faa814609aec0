//! Per-pool policy from the config through the real binary (issue 13): each pool's own stop
//! timeout escalates at its own time (measured from the events' `t`), `success_codes` are
//! not failures (no restart, exit status 0), `max_restarts` marks a pool failed and an exit
//! before `start_secs` is a failed start.

mod common;

use common::*;
use serde_json::Value;

fn t(event: &Value) -> f64 {
    event["t"].as_f64().expect("t")
}

/// The pid of the (only) worker of `pool`.
fn pool_pid(events: &[Value], pool: &str) -> i32 {
    let spawns: Vec<&Value> = of_kind(events, "spawn")
        .into_iter()
        .filter(|e| e["pool"] == pool)
        .collect();
    assert_eq!(spawns.len(), 1, "{pool}: {}", dump(events));
    pid_of(spawns[0])
}

/// The time of the SIGKILL sent to `pid`.
fn kill_time(events: &[Value], pid: i32) -> f64 {
    let kills: Vec<&Value> = events
        .iter()
        .filter(|e| kind(e) == "signal" && pid_of(e) == pid && e["signal"] == "SIGKILL")
        .collect();
    assert_eq!(kills.len(), 1, "one SIGKILL for {pid}: {}", dump(events));
    assert_eq!(kills[0]["reason"], "escalation", "{}", dump(events));
    t(kills[0])
}

#[test]
fn each_pool_escalates_at_its_own_stop_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Both ignore SIGTERM; `quick` has 0.5 s, `patient` 3 s, the session default (10 s) is
    // used by neither.
    let body = "trap '' TERM; echo ready; while :; do sleep 0.1; done";
    let config = write_config(
        dir.path(),
        &format!(
            "[[pool]]\nname = \"quick\"\nshell = true\ncommand = \"{body}\"\nstop_timeout = 0.5\n\n\
             [[pool]]\nname = \"patient\"\nshell = true\ncommand = \"{body}\"\nstop_timeout = \"3s\"\n"
        ),
    );
    let m = marker("poolstop");
    let mut fs = Forkscope::start(
        &m,
        &["up", "-f", &config, "--headless", "--stop-timeout", "10"],
    );
    fs.wait_until("both pools ready", secs(10.0), |events| {
        events
            .iter()
            .filter(|e| kind(e) == "output" && e["line"] == "ready")
            .count()
            == 2
    });
    fs.signal(libc::SIGTERM);
    let (code, events) = fs.finish_clean(secs(20.0));
    assert_eq!(code, 1, "killed workers are failures: {}", dump(&events));
    let stopping = t(of_kind(&events, "stopping")[0]);
    let quick = kill_time(&events, pool_pid(&events, "quick")) - stopping;
    let patient = kill_time(&events, pool_pid(&events, "patient")) - stopping;
    // Lower bounds are the timeouts (less 50 ms for the events' clock); upper bounds allow
    // 2.5 s of scheduling delay on a loaded machine, still below the next timeout.
    assert!(
        (0.45..3.0).contains(&quick),
        "quick killed {quick:.3}s after stopping: {}",
        dump(&events)
    );
    assert!(
        (2.95..5.5).contains(&patient),
        "patient killed {patient:.3}s after stopping: {}",
        dump(&events)
    );
    let notices: Vec<String> = of_kind(&events, "notice")
        .iter()
        .filter_map(|e| e["message"].as_str().map(String::from))
        .collect();
    assert!(
        notices
            .iter()
            .any(|n| n.contains("pool \"quick\": stop timeout (0.5s)")),
        "{notices:?}"
    );
}

#[test]
fn success_codes_are_neither_restarted_nor_failures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        r#"
[[pool]]
name = "three"
command = ["sh", "-c", "exit 3"]
restart = "on-failure"
success_codes = [0, 3]

[[pool]]
name = "zero"
command = ["sh", "-c", "exit 0"]
restart = "on-failure"
"#,
    );
    let (code, events) = run_clean("poolok", &["up", "-f", &config, "--headless"], secs(10.0));
    assert_eq!(code, 0, "exit 3 is a success here: {}", dump(&events));
    assert_eq!(of_kind(&events, "spawn").len(), 2, "{}", dump(&events));
    assert!(of_kind(&events, "restart").is_empty(), "{}", dump(&events));
    let three = pool_pid(&events, "three");
    assert_eq!(
        exit_of(&events, three).expect("exit")["code"].as_i64(),
        Some(3)
    );
}

#[test]
fn max_restarts_and_start_secs_fail_the_pool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        r#"
[[pool]]
name = "flaky"
command = ["sh", "-c", "exit 4"]
restart = "always"
success_codes = [0, 3]
max_restarts = 2
restart_window = "1m"
backoff = { initial = "10ms", max = "20ms" }

[[pool]]
name = "early"
command = ["sh", "-c", "exit 0"]
start_secs = 5
"#,
    );
    let (code, events) = run_clean("poolfail", &["up", "-f", &config, "--headless"], secs(15.0));
    assert_eq!(code, 1, "{}", dump(&events));
    let flaky_spawns = of_kind(&events, "spawn")
        .iter()
        .filter(|e| e["pool"] == "flaky")
        .count();
    assert_eq!(
        flaky_spawns,
        3,
        "a start and two restarts: {}",
        dump(&events)
    );
    let delays: Vec<u64> = of_kind(&events, "restart")
        .iter()
        .filter_map(|e| e["delay_ms"].as_u64())
        .collect();
    assert_eq!(
        delays,
        vec![10, 20],
        "the pool's backoff: {}",
        dump(&events)
    );
    let failed: Vec<(String, String)> = of_kind(&events, "worker_failed")
        .iter()
        .map(|e| {
            (
                e["pool"].as_str().unwrap_or_default().to_string(),
                e["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(failed.len(), 2, "{}", dump(&events));
    assert!(
        failed
            .iter()
            .any(|(p, r)| p == "flaky" && r.contains("max_restarts")),
        "{failed:?}"
    );
    assert!(
        failed
            .iter()
            .any(|(p, r)| p == "early" && r.contains("failed start")),
        "{failed:?}"
    );
}
