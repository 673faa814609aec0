//! The built-in demos (the README's main job): they need no Python or config, end as they
//! say, and show what they promise.

mod common;

use common::*;

#[test]
fn list_names_every_demo_and_unknown_names_exit_2() {
    let out = common::command_output(
        std::process::Command::new(bin()).args(["demo", "--list"]),
        common::secs(60.0),
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["tour", "ignore-term", "crashloop", "flood"] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing from\n{text}"
        );
    }
    let out = common::command_output(
        std::process::Command::new(bin()).args(["demo", "nosuch"]),
        common::secs(60.0),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--list"));
    let out = common::command_output(
        std::process::Command::new(bin()).args(["demo", "--pace", "0", "--headless"]),
        common::secs(60.0),
    );
    assert_eq!(out.status.code(), Some(2), "a pace of 0 is refused");
}

#[test]
fn tour_shows_every_way_a_child_ends() {
    let m = marker("demotour");
    let mut fs = Forkscope::start(&m, &["demo", "--headless", "--pace", "0.1"]);
    let (code, events) = fs.finish_clean(secs(20.0));
    assert_eq!(code, 0, "every tour worker exits 0: {}", dump(&events));
    let workers = spawned_pids(&events);
    assert_eq!(workers.len(), 4);
    let endings: Vec<(Option<i64>, Option<&str>)> = of_kind(&events, "exit")
        .iter()
        .filter(|e| !workers.contains(&pid_of(e)))
        .map(|e| (e["code"].as_i64(), e["signal"].as_str()))
        .collect();
    // Per round: a child exits 0, one exits 7, one SIGTERMs itself, one segfaults, a middle
    // child exits 0 leaving an orphan that exits 3, and a zombie child exits 0. Three rounds.
    for (what, wanted, per_round) in [
        ("exit 0", (Some(0), None), 3),
        ("exit 7", (Some(7), None), 1),
        ("SIGTERM", (None, Some("SIGTERM")), 1),
        ("SIGSEGV", (None, Some("SIGSEGV")), 1),
        ("the orphan's exit 3", (Some(3), None), 1),
    ] {
        assert_eq!(
            endings.iter().filter(|e| **e == wanted).count(),
            3 * per_round,
            "{what}: {endings:?}"
        );
    }
    assert_eq!(endings.len(), 3 * 7, "nothing else ended: {endings:?}");
    // The orphan says who adopted it: forkscope's engine, the subreaper.
    let engine = fs.engine_pid();
    let adopted = format!("re-parented to pid {engine}");
    let lines: Vec<String> = of_kind(&events, "output")
        .iter()
        .map(|e| e["line"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        lines.iter().filter(|l| l.contains(&adopted)).count(),
        3,
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.contains("it is a zombie (Z)")));
    // Worker 0 tells the lesson, one step per round, without holding anyone.
    let narrator = of_kind(&events, "spawn")
        .into_iter()
        .find(|s| s["worker"] == 0)
        .map(pid_of)
        .unwrap();
    let steps = of_kind(&events, "step");
    let told: Vec<(i64, bool, i32)> = steps
        .iter()
        .map(|s| {
            (
                s["n"].as_i64().unwrap(),
                s["held"].as_bool().unwrap(),
                pid_of(s),
            )
        })
        .collect();
    assert_eq!(
        told,
        [
            (1, false, narrator),
            (2, false, narrator),
            (3, false, narrator)
        ]
    );
    assert_eq!(steps[1]["title"], "fork() returns twice");
}

#[test]
fn crashloop_backs_off_then_gives_up() {
    let (code, events) = run_clean(
        "democrash",
        &["demo", "crashloop", "--headless"],
        secs(15.0),
    );
    assert_eq!(code, 1);
    let delays: Vec<i64> = of_kind(&events, "restart")
        .iter()
        .map(|e| e["delay_ms"].as_i64().unwrap())
        .collect();
    assert_eq!(delays, vec![100, 200, 400, 800, 1600]);
    assert_eq!(of_kind(&events, "worker_failed").len(), 1);
}

#[test]
fn ignore_term_escalates_to_sigkill_on_quit() {
    let m = marker("demoignore");
    let mut fs = Forkscope::start(
        &m,
        &[
            "demo",
            "ignore-term",
            "--headless",
            "--stop-timeout",
            "0.5",
            "--pace",
            "0.1",
        ],
    );
    let child_line = fs.wait_event("the child's announcement", secs(5.0), |e| {
        kind(e) == "output"
            && e["line"]
                .as_str()
                .unwrap_or("")
                .contains("I ignore SIGTERM")
    });
    let child: i32 = child_line["line"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .parse()
        .unwrap();
    fs.signal(libc::SIGTERM);
    let (code, events) = fs.finish_clean(secs(8.0));
    assert_eq!(code, 1);
    let exit = exit_of(&events, child).expect("the stubborn child's exit");
    assert_eq!(exit["signal"], "SIGKILL", "{}", dump(&events));
    assert!(
        of_kind(&events, "signal")
            .iter()
            .any(|s| pid_of(s) == child && s["reason"] == "escalation")
    );
}
