//! End to end: the WAITING ON column and the Sync view (`w`) of the TUI over a real Python
//! `multiprocessing.Barrier(3)` with two waiters and a sleeper.

mod common;

use common::tui::{Tmux, forkscope, marker, wait_recorded};
use common::{Cleanup, assert_nothing_left};

const PROGRAM: &str = r#"
import multiprocessing as mp, sys, time
def waiter(b):
    b.wait()
def sleeper(b):
    time.sleep(600)
if __name__ == "__main__":
    b = mp.get_context("fork").Barrier(3)
    ps = [mp.Process(target=waiter, args=(b,)) for _ in range(2)]
    ps.append(mp.Process(target=sleeper, args=(b,)))
    for p in ps: p.start()
    for p in ps: p.join()
"#;

#[test]
fn waiting_column_and_sync_view_show_a_barrier() {
    // Tall: a pyenv shim leaves some forty ended processes above the children.
    let tmux = Tmux::start(160, 110);
    let marker = marker();
    let _cleanup = Cleanup(marker.clone());
    let script = tmux.path("barrier.py");
    std::fs::write(&script, PROGRAM).unwrap();
    let record = tmux.path("rec.jsonl");
    tmux.type_line(&format!(
        "{} run --record {} -- python3 {} {marker}; echo EXIT:$?",
        forkscope(),
        record.display(),
        script.display()
    ));
    wait_recorded(&record, "spawn", 1, 15);
    let screen = tmux.wait_screen("the tree's waits", 30, |s| {
        s.contains("WAITING ON")
            && s.matches("⧗ sem").count() >= 2
            && s.contains("⧗ join")
            && s.contains("⧗ sleep")
    });
    // Before any full scan a semaphore is named by its waiters only.
    assert!(screen.contains("(2 waiting)"), "{screen}");
    tmux.keys(&["w"]);
    let screen = tmux.wait_screen("the Sync view", 30, |s| {
        s.contains("BARRIERS") && s.contains("filling 2 arrived")
    });
    assert!(screen.contains("not waiting:"), "{screen}");
    assert!(screen.contains("no cycle"), "{screen}");
    tmux.keys(&["w"]);
    // Back in the tree, the full scan has taught the cheap one what the semaphore is.
    tmux.wait_screen("the barrier named in the tree", 10, |s| {
        s.contains("WAITING ON") && s.matches("(barrier, 2 waiting)").count() >= 2
    });
    tmux.keys(&["q"]);
    tmux.wait_screen("quit confirmation", 5, |s| s.contains("Quit?"));
    tmux.keys(&["y"]);
    tmux.wait_screen("exit", 15, |s| common::tui::shell_exit(s).is_some());
    assert_nothing_left(&marker);
}
