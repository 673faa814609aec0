//! Roles and endings the TUI tells: it names roles with the same function as `inspect` (a
//! multiprocessing `Manager` server is `manager-server` in the tree, found by the socket it
//! listens on, read off the render path, not `fork-child`), and a Python forkserver that
//! forkscope's own cleanup SIGTERMs is "stopped by forkscope", not a failure of the program.

mod common;
mod lifecycle_support;
mod tui;

use lifecycle_support::python;
use tui::{Tmux, forkscope, wait_recorded};

/// A Manager under fork; says `ready PID` and waits (at most 60 s) for the flag file.
const PROGRAM: &str = r#"
import multiprocessing as mp, os, sys, time
if __name__ == "__main__":
    mp.set_start_method("fork")
    manager = mp.Manager()
    shared = manager.dict()
    print("ready", manager._process.pid, flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
        time.sleep(0.05)
    manager.shutdown()
"#;

#[test]
fn the_tree_names_the_manager_server() {
    let tmux = Tmux::start(160, 30);
    let script = tmux.path("manager.py");
    std::fs::write(&script, PROGRAM).expect("script");
    let flag = tmux.path("go");
    let record = tmux.path("rec.jsonl");
    tmux.type_line(&format!(
        "{bin} run --record {rec} -- {py} {script} {flag}; echo EXIT:$?",
        bin = forkscope(),
        rec = record.display(),
        py = python(),
        script = script.display(),
        flag = flag.display(),
    ));
    let ready = wait_recorded(&record, "output", 1, 60);
    let manager = ready[0]["line"]
        .as_str()
        .and_then(|l| l.strip_prefix("ready "))
        .expect("ready PID")
        .to_string();
    let screen = tmux.wait_screen("the manager's role", 20, |s| {
        s.lines()
            .any(|l| l.contains(&manager) && l.contains("(manager-server)"))
    });
    assert!(!screen.contains("(fork-child)"), "{screen}");
    std::fs::write(&flag, b"").expect("flag");
    quit(&tmux);
}

/// Runs one child under the forkserver start method and ends; the forkserver is left for
/// forkscope's leftover cleanup.
const FORKSERVER: &str = r#"
import multiprocessing as mp
def work():
    print("child ran", flush=True)
if __name__ == "__main__":
    mp.set_start_method("forkserver")
    p = mp.Process(target=work)
    p.start()
    p.join()
"#;

/// Presses q (and y if asked) and waits for the shell's `EXIT:`; returns the screen.
fn quit(tmux: &Tmux) -> String {
    tmux.keys(&["q"]);
    let screen = tmux.wait_screen("quit asked or done", 20, |s| {
        s.contains("Quit?") || s.contains("EXIT:")
    });
    if !screen.contains("EXIT:") {
        tmux.keys(&["y"]);
    }
    tmux.wait_screen("forkscope exit", 20, |s| s.contains("EXIT:"))
}

#[test]
fn what_forkscope_stopped_is_not_a_failure() {
    let tmux = Tmux::start(160, 30);
    let script = tmux.path("forkserver.py");
    std::fs::write(&script, FORKSERVER).expect("script");
    let record = tmux.path("rec.jsonl");
    tmux.type_line(&format!(
        "{bin} run --record {rec} -- {py} {script}; echo EXIT:$?",
        bin = forkscope(),
        rec = record.display(),
        py = python(),
        script = script.display(),
    ));
    // The TUI stays open: wait until every process that appeared has ended.
    let all_ended = |events: &[serde_json::Value]| {
        let born = events
            .iter()
            .filter(|e| e["kind"] == "spawn" || e["kind"] == "fork");
        let mut born = born.map(|e| e["pid"].clone()).peekable();
        born.peek().is_some()
            && born.all(|pid| {
                events
                    .iter()
                    .any(|e| e["kind"] == "exit" && e["pid"] == pid)
            })
            && events.iter().any(|e| e["kind"] == "stopping")
    };
    common::wait_for("every process ended", common::secs(60.0), || {
        all_ended(&tui::recorded(&record))
    });
    let stopped: Vec<serde_json::Value> = tui::recorded(&record)
        .into_iter()
        .filter(|e| e["kind"] == "signal" && e["reason"] == "leftover")
        .collect();
    let screen = quit(&tmux);
    if stopped.is_empty() {
        // The forkserver went by itself before the cleanup: nothing to count apart.
        assert!(screen.contains(" 0 did not exit 0"), "{screen}");
        return;
    }
    assert!(
        screen.contains(" 0 did not exit 0, stopped by forkscope: "),
        "the cleanup's SIGTERM is not the program's failure: {screen}"
    );
}
