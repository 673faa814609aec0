//! End to end: the real TUI in tmux shows the selected Python worker's stack (its wait, then
//! its frames innermost first) in the detail pane, read off the render path.

mod common;

use common::python;
use common::tui::{Tmux, forkscope, marker};
use common::{Cleanup, assert_nothing_left};

const NAP: &str = "import sys, time\n\ndef nap():\n    time.sleep(600)\n\nnap()\n";

#[test]
fn the_detail_pane_shows_the_python_stack_of_the_selected_worker() {
    let tmux = Tmux::start(140, 45);
    let marker = marker();
    let _cleanup = Cleanup(marker.clone());
    let script = tmux.path("nap.py");
    std::fs::write(&script, NAP).expect("write");
    tmux.type_line(&format!(
        "{bin} run --stop-timeout 2 -- {python} {script} {marker}; echo EXIT:$?",
        bin = forkscope(),
        python = python(),
        script = script.display(),
    ));
    // 60 s: the interpreter starts, then the reader's first reading (at most a second apart).
    // Everything in one capture: a capture can fall between two parts of one redraw.
    let screen = tmux.wait_screen("the Python wait and stack in the detail pane", 60, |s| {
        s.contains("python: waits in time.sleep at nap.py:4")
            && s.contains("MainThread")
            && s.contains("nap nap.py:4")
            && s.contains("<module> nap.py:6")
    });
    let main = screen.find("MainThread").expect("main thread line");
    let inner = screen.find("nap nap.py:4").expect("innermost frame");
    let outer = screen.find("<module> nap.py:6").expect("outermost frame");
    assert!(main < inner && inner < outer, "{screen}");
    tmux.keys(&["q"]);
    tmux.wait_screen("quit confirmation", 5, |s| s.contains("Quit?"));
    tmux.keys(&["y"]);
    tmux.wait_screen("forkscope exit", 15, |s| {
        common::tui::shell_exit(s).is_some()
    });
    assert_nothing_left(&marker);
}
