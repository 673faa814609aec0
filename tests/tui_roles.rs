//! The TUI names roles with the same function as `inspect`: a multiprocessing `Manager`
//! server is `manager-server` in the tree (found by the socket it listens on, read off the
//! render path), not `fork-child`.

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
    tmux.keys(&["q"]);
    let screen = tmux.wait_screen("quit asked or done", 20, |s| {
        s.contains("Quit?") || s.contains("EXIT:")
    });
    if !screen.contains("EXIT:") {
        tmux.keys(&["y"]);
    }
    tmux.wait_screen("forkscope exit", 20, |s| s.contains("EXIT:"));
}
