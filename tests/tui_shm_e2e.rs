//! End to end: the shared-memory view of the TUI over a real Python ShareableList.

mod common;

use common::tui::{Tmux, forkscope, marker, wait_recorded};
use common::{Cleanup, assert_nothing_left};

const PROGRAM: &str = r#"
import sys, time
from multiprocessing import shared_memory
name, marker = sys.argv[1], sys.argv[2]
sl = shared_memory.ShareableList([0, 2.5, True, None, "héllo"], name=name)
try:
    for i in range(3000):
        sl[0] = i
        time.sleep(0.05)
finally:
    sl.shm.close()
    sl.shm.unlink()
"#;

#[test]
fn shm_view_decodes_a_live_shareable_list() {
    let tmux = Tmux::start(120, 40);
    let marker = marker();
    let _cleanup = Cleanup(marker.clone());
    let name = format!("fs_e2e_{}", std::process::id());
    let _segment = RemoveOnDrop(format!("/dev/shm/{name}"));
    let script = tmux.path("list.py");
    std::fs::write(&script, PROGRAM).unwrap();
    let record = tmux.path("rec.jsonl");
    tmux.type_line(&format!(
        "{} run --record {} -- python3 {} {name} {marker}; echo EXIT:$?",
        forkscope(),
        record.display(),
        script.display()
    ));
    wait_recorded(&record, "spawn", 1, 15);
    tmux.keys(&["m"]);
    let screen = tmux.wait_screen("the list decoded", 15, |s| {
        s.contains(&name) && s.contains("ShareableList") && s.contains("\"héllo\"")
    });
    assert!(
        screen.contains("2.5") && screen.contains("True") && screen.contains("None"),
        "{screen}"
    );
    // Item 0 changes under our eyes: two different values, marked as changed.
    let value = |screen: &str| {
        screen.lines().find_map(|l| {
            l.split("[0] ")
                .nth(1)
                .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
        })
    };
    let first = value(&screen);
    tmux.wait_screen("item 0 changed", 10, |s| {
        value(s) != first && s.contains("* [0]")
    });
    tmux.keys(&["m"]);
    tmux.keys(&["q"]);
    tmux.wait_screen("quit confirmation", 5, |s| s.contains("Quit?"));
    tmux.keys(&["y"]);
    tmux.wait_screen("exit", 15, |s| s.contains("EXIT:"));
    assert_nothing_left(&marker);
}

struct RemoveOnDrop(String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
