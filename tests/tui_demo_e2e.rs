//! End to end: a Python demo in the real TUI, held at each lesson step until `.` is pressed.

mod common;

use common::tui::{Tmux, forkscope, marker, recorded, wait_recorded};
use common::{Cleanup, assert_nothing_left};

#[test]
fn dot_steps_the_process_demo_through_its_lesson() {
    let tmux = Tmux::start(140, 45);
    let marker = marker();
    let _cleanup = Cleanup(marker.clone());
    let record = tmux.path("rec.jsonl");
    tmux.type_line(&format!(
        "FKS_TEST_MARKER={marker} {} demo process --pace 0.2 --record {}; echo EXIT:$?",
        forkscope(),
        record.display()
    ));
    tmux.wait_screen("step 1 in the lesson panel", 20, |s| {
        s.contains("lesson · step 1") && s.contains("A child process") && s.contains("? What will")
    });
    tmux.wait_screen("the demo waits", 10, |s| {
        s.contains("waiting: press . for the next step")
    });
    // The Process child ends on its own (0.6 s of work); the demo stays held at step 1:
    // its next line and step 2 only come after `.`.
    let steps = wait_recorded(&record, "step", 1, 10);
    assert_eq!(steps[0]["held"], true);
    let child_exits = wait_recorded(&record, "exit", 1, 10);
    let recorded_now = recorded(&record);
    assert!(
        !recorded_now
            .iter()
            .any(|e| e["kind"] == "step" && e["n"] == 2),
        "step 2 before `.`: {recorded_now:?}"
    );
    assert!(
        !recorded_now.iter().any(|e| e["line"]
            .as_str()
            .is_some_and(|l| l.starts_with("after join()"))),
        "the demo went on before `.`"
    );
    assert_eq!(child_exits[0]["code"], 0);
    for (n, title) in [(2, "join() and exitcode"), (3, "fork() returned twice")] {
        tmux.keys(&["."]);
        tmux.wait_screen(title, 15, |s| {
            s.contains(&format!("lesson · step {n}")) && s.contains(title)
        });
    }
    tmux.keys(&["e"]);
    tmux.wait_screen("the panel hidden", 5, |s| !s.contains("lesson · step"));
    tmux.keys(&["e"]);
    tmux.keys(&["."]);
    tmux.wait_screen("the demo's end", 15, |s| s.contains("the demo has ended"));
    let releases = wait_recorded(&record, "step_release", 3, 5);
    assert!(releases.iter().all(|r| r["by"] == "key"), "{releases:?}");
    let ns: Vec<i64> = releases.iter().map(|r| r["n"].as_i64().unwrap()).collect();
    assert_eq!(ns, [1, 2, 3]);
    tmux.keys(&["q"]);
    tmux.wait_screen("exit", 15, |s| s.contains("EXIT:0"));
    assert_nothing_left(&marker);
}
