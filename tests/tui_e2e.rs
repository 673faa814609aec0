//! End to end: the real binary in tmux, keys sent, the screen read.

mod common;

use common::tui::{Tmux, forkscope, marker, wait_recorded};
use common::{Cleanup, alive, assert_nothing_left};

/// Starts `forkscope run -n N -- sleep MARKER` in tmux, saving the terminal mode before and
/// after; returns the worker pids once all are on screen.
fn start_pool(tmux: &Tmux, workers: usize, marker: &str) -> Vec<i32> {
    let record = tmux.path("rec.jsonl");
    tmux.type_line(&format!(
        "stty -g > {before}; {bin} run -n {workers} --stop-timeout 2 --record {rec} -- sleep {marker}; \
         echo EXIT:$?; stty -g > {after}; cmp -s {before} {after} && {restored}",
        before = tmux.path("before").display(),
        after = tmux.path("after").display(),
        bin = forkscope(),
        rec = record.display(),
        restored = common::tui::ECHO_RESTORED,
    ));
    let spawns = wait_recorded(&record, "spawn", workers, 15);
    let pids: Vec<i32> = spawns
        .iter()
        .map(|e| e["pid"].as_i64().unwrap() as i32)
        .collect();
    tmux.wait_screen("every worker pid on screen", 10, |screen| {
        pids.iter().all(|pid| screen.contains(&pid.to_string()))
    });
    pids
}

fn select_pid(tmux: &Tmux, pid: i32) {
    tmux.keys(&["/"]);
    tmux.keys(&["-l", &pid.to_string()]);
    tmux.keys(&["Enter"]);
    tmux.wait_screen("filter applied", 5, |s| {
        s.contains(&format!("matching \"{pid}\""))
    });
}

fn quit(tmux: &Tmux) {
    tmux.keys(&["q"]);
    tmux.wait_screen("quit confirmation", 5, |s| s.contains("Quit?"));
    tmux.keys(&["y"]);
    tmux.wait_screen("forkscope exit", 15, |s| {
        common::tui::shell_exit(s).is_some()
    });
}

#[test]
fn filter_then_t_ends_exactly_that_worker() {
    let tmux = Tmux::start(120, 40);
    let marker = marker();
    let _cleanup = Cleanup(marker.clone());
    let pids = start_pool(&tmux, 3, &marker);
    let target = pids[1];
    select_pid(&tmux, target);
    tmux.keys(&["t"]);
    let screen = tmux.wait_screen("SIGTERM shown for the worker", 10, |s| {
        s.contains("SIGTERM (-15 / 143)")
    });
    assert!(screen.contains(&target.to_string()), "{screen}");
    assert!(!alive(target), "target {target} still alive");
    assert!(
        alive(pids[0]) && alive(pids[2]),
        "other workers must live: {pids:?}"
    );
    let signals = wait_recorded(&tmux.path("rec.jsonl"), "signal", 1, 5);
    assert!(
        signals
            .iter()
            .all(|s| s["pid"] == target && s["reason"] == "user"),
        "{signals:?}"
    );
    tmux.keys(&["Escape"]);
    quit(&tmux);
    assert_nothing_left(&marker);
}

#[test]
fn kill_asks_first_and_then_kills() {
    let tmux = Tmux::start(120, 40);
    let marker = marker();
    let _cleanup = Cleanup(marker.clone());
    let pids = start_pool(&tmux, 2, &marker);
    let target = pids[0];
    select_pid(&tmux, target);
    tmux.keys(&["K"]);
    tmux.wait_screen("kill confirmation", 5, |s| {
        s.contains("Send SIGKILL to pid")
    });
    tmux.keys(&["n"]);
    tmux.wait_screen("cancelled", 5, |s| s.contains("cancelled"));
    assert!(alive(target), "n must not kill");
    tmux.keys(&["K"]);
    tmux.wait_screen("kill confirmation", 5, |s| {
        s.contains("Send SIGKILL to pid")
    });
    tmux.keys(&["y"]);
    tmux.wait_screen("SIGKILL shown", 10, |s| s.contains("SIGKILL (-9 / 137)"));
    assert!(!alive(target));
    assert!(alive(pids[1]));
    tmux.keys(&["Escape"]);
    quit(&tmux);
    assert_nothing_left(&marker);
}

#[test]
fn quit_stops_everything_and_restores_the_terminal() {
    let tmux = Tmux::start(100, 30);
    let marker = marker();
    let _cleanup = Cleanup(marker.clone());
    let pids = start_pool(&tmux, 3, &marker);
    quit(&tmux);
    let screen = tmux.wait_screen("terminal restored", 10, |s| {
        s.contains(common::tui::RESTORED)
    });
    assert!(
        screen.contains("EXIT:1"),
        "workers were killed by SIGTERM: {screen}"
    );
    assert!(
        screen.contains("SIGTERM (-15 / 143)"),
        "summary lists how they ended: {screen}"
    );
    assert_nothing_left(&marker);
    for pid in pids {
        assert!(!alive(pid));
    }
    tmux.type_line("echo still-usable");
    tmux.wait_screen("shell usable", 5, |s| s.contains("\nstill-usable"));
}

#[test]
fn sigterm_to_forkscope_stops_the_tree_and_restores_the_terminal() {
    let tmux = Tmux::start(100, 30);
    let marker = marker();
    let _cleanup = Cleanup(marker.clone());
    start_pool(&tmux, 2, &marker);
    let session = &wait_recorded(&tmux.path("rec.jsonl"), "session", 1, 5)[0];
    let engine = session["pid"].as_i64().unwrap() as i32;
    // The guardian leads the job's process group, which the engine is in.
    let guardian = common::read_stat(engine).unwrap().pgrp;
    // SAFETY: the guardian is the forkscope this test started.
    assert_eq!(unsafe { libc::kill(guardian, libc::SIGTERM) }, 0);
    tmux.wait_screen("terminal restored", 15, |s| {
        s.contains(common::tui::RESTORED)
    });
    assert_nothing_left(&marker);
}

#[test]
fn help_signal_menu_scale_and_restart() {
    let tmux = Tmux::start(120, 45);
    let marker = marker();
    let _cleanup = Cleanup(marker.clone());
    let record = tmux.path("rec.jsonl");
    let pids = start_pool(&tmux, 2, &marker);
    tmux.keys(&["?"]);
    tmux.wait_screen("help", 5, |s| {
        s.contains("signal menu") && s.contains("restart the selected worker")
    });
    tmux.keys(&["x"]);
    tmux.wait_screen("help closed", 5, |s| !s.contains("any key closes"));

    // The signal menu opens on SIGTERM; five up is SIGUSR1, whose default action ends sleep.
    select_pid(&tmux, pids[0]);
    tmux.keys(&["s"]);
    tmux.wait_screen("signal menu", 5, |s| {
        s.contains(&format!("signal pid {}", pids[0]))
    });
    for _ in 0..5 {
        tmux.keys(&["k"]);
    }
    tmux.keys(&["Enter"]);
    tmux.wait_screen("SIGUSR1 ending", 10, |s| s.contains("SIGUSR1 (-10 / 138)"));
    tmux.keys(&["Escape"]);

    // Restart the second worker: a new spawn with restarts = 1.
    select_pid(&tmux, pids[1]);
    tmux.keys(&["r"]);
    let spawns = wait_recorded(&record, "spawn", 3, 10);
    let restarted = spawns
        .iter()
        .find(|s| s["restarts"] == 1)
        .expect("a restarted worker");
    assert_eq!(restarted["worker"], 1);
    tmux.keys(&["Escape"]);

    // Grow the pool by one: a worker with index 2 appears.
    tmux.keys(&["g"]);
    tmux.keys(&["+"]);
    let spawns = wait_recorded(&record, "spawn", 4, 10);
    assert!(spawns.iter().any(|s| s["worker"] == 2), "{spawns:?}");
    tmux.wait_screen("pool of 3", 5, |s| s.contains("3 workers"));
    quit(&tmux);
    assert_nothing_left(&marker);
}

#[test]
fn replay_plays_a_recording_paused_and_stepped() {
    let tmux = Tmux::start(120, 40);
    let record = tmux.path("demo.jsonl");
    let status = common::command_output(
        std::process::Command::new(forkscope())
            .args(["run", "-n", "2", "--headless", "--record"])
            .arg(&record)
            .args([
                "--",
                "sh",
                "-c",
                "echo hello-from-$FORKSCOPE_WORKER; exit 3",
            ])
            .stdin(std::process::Stdio::null()),
        common::secs(60.0),
    )
    .status;
    assert_eq!(status.code(), Some(1));
    let spawns = wait_recorded(&record, "spawn", 2, 1);
    tmux.type_line(&format!(
        "{} replay --paused {}; echo EXIT:$?",
        forkscope(),
        record.display()
    ));
    tmux.wait_screen("paused replay", 10, |s| {
        s.contains("‖ paused") && s.contains("event 0/")
    });
    // Step through every event: both workers appear and end with exit 3.
    for _ in 0..40 {
        tmux.keys(&["."]);
    }
    let screen = tmux.wait_screen("both exits replayed", 10, |s| {
        s.matches("exit 3").count() >= 2
    });
    for spawn in &spawns {
        assert!(screen.contains(&spawn["pid"].to_string()), "{screen}");
    }
    tmux.keys(&["t"]);
    tmux.wait_screen("read-only refusal", 5, |s| s.contains("read-only"));
    tmux.keys(&["v"]);
    tmux.wait_screen("timeline", 5, |s| s.contains("timeline ·"));
    tmux.keys(&["q"]);
    tmux.wait_screen("replay exit", 5, |s| s.contains("EXIT:0"));
}

#[test]
fn replay_of_a_bad_file_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"t\":0.1,\"kind\":\"notice\",\"pid\":null,\"level\":\"info\",\"message\":\"x\"}\nnot json\n").unwrap();
    let out = common::command_output(
        std::process::Command::new(forkscope())
            .arg("replay")
            .arg(&bad),
        common::secs(60.0),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.jsonl:2:"), "{stderr}");
}

/// Waits until the recording holds an event `matches` accepts; returns it.
fn wait_recorded_event(
    path: &std::path::Path,
    what: &str,
    secs: u64,
    matches: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(found) = common::tui::recorded(path).into_iter().find(&matches) {
            return found;
        }
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The tour's zombie lesson, seen in the TUI: its child is drawn `zombie` with its status and
/// wait until its parent reaps it (pace 2: it waits 3 s), then as ended.
#[test]
fn the_tour_zombie_is_drawn_as_a_zombie_until_its_parent_reaps_it() {
    let tmux = Tmux::start(130, 40);
    let record = tmux.path("rec.jsonl");
    tmux.type_line(&format!(
        "{bin} demo --pace 2 --record {rec}; echo EXIT:$?",
        bin = forkscope(),
        rec = record.display(),
    ));
    let worker3 = wait_recorded_event(&record, "the spawn of worker 3", 15, |e| {
        e["kind"] == "spawn" && e["worker"] == 3
    })["pid"]
        .clone();
    let exit = wait_recorded_event(&record, "the zombie's exit", 15, |e| {
        e["kind"] == "exit" && e["zombie"] == true && e["ppid"] == worker3
    });
    let zombie = exit["pid"].as_i64().unwrap() as i32;
    select_pid(&tmux, zombie);
    let row_of = |screen: &str| -> String {
        screen
            .lines()
            .find(|l| l.contains(&format!(" {zombie} ")) && !l.contains("matching"))
            .unwrap_or_default()
            .to_string()
    };
    let screen = tmux.wait_screen("the zombie's row", 10, |s| {
        let row = row_of(s);
        row.contains("zombie") && row.contains("exit 0 · zombie")
    });
    assert!(row_of(&screen).contains("Z "), "{screen}");
    let reap = wait_recorded_event(&record, "the zombie's reap", 15, |e| {
        e["kind"] == "reap" && e["pid"] == zombie
    });
    assert_eq!(reap["by"], worker3);
    tmux.wait_screen("the reaped child drawn as ended", 10, |s| {
        let row = row_of(s);
        row.contains("ended") && row.contains("exit 0") && !row.contains("zombie")
    });
    tmux.keys(&["Escape"]);
    quit(&tmux);
}
