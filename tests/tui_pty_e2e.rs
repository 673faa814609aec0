//! End to end: `run --pty` in the real TUI (tmux); the worker's pty takes the output pane's
//! size and follows it when the terminal is resized.

mod common;

use common::tui::{Tmux, forkscope, marker, wait_recorded};
use common::{Cleanup, assert_nothing_left};

/// The last "size COLS ROWS" line the worker printed, from the recording.
fn last_size(record: &std::path::Path, worker: i64) -> Option<(u32, u32)> {
    common::tui::recorded(record)
        .iter()
        .rev()
        .filter(|e| e["kind"] == "output" && e["pid"] == worker)
        .find_map(|e| {
            let text = e["line"].as_str()?;
            let mut words = text.strip_prefix("size ")?.split(' ');
            Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
        })
}

#[test]
fn the_pty_is_sized_to_the_output_pane_and_follows_it() {
    let tmux = Tmux::start(140, 40);
    let marker = marker();
    let _cleanup = Cleanup(marker.clone());
    let record = tmux.path("rec.jsonl");
    // Prints the pty's size every 0.1 s for at most 60 s; the marker names the process.
    let probe = format!(
        "import os, time\nfor _ in range(600):\n    print('size', *os.get_terminal_size(), flush=True)\n    time.sleep(0.1)\n# {marker}"
    );
    let program = tmux.path("probe.py");
    std::fs::write(&program, probe).expect("write probe");
    tmux.type_line(&format!(
        "{bin} run --pty --stop-timeout 2 --record {rec} -- python3 {program} {marker}; echo EXIT:$?",
        bin = forkscope(),
        rec = record.display(),
        program = program.display(),
    ));
    let spawn = &wait_recorded(&record, "spawn", 1, 15)[0];
    let worker = spawn["pid"].as_i64().expect("pid");
    // Bounded polling of the recording (flushed after every batch), 30 s at most each.
    let wait_size = |what: &str, ok: &dyn Fn((u32, u32)) -> bool| -> (u32, u32) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(size) = last_size(&record, worker).filter(|s| ok(*s)) {
                return size;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}; last: {:?}\n{}",
                last_size(&record, worker),
                tmux.screen()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    // The headless default is 80x24; in the TUI the pane's inside, narrower than 140.
    let (cols, rows) = wait_size("the pane's size", &|s| s != (80, 24));
    assert!(cols < 140 && rows < 40, "{cols}x{rows}");
    tmux.resize(110, 30);
    let (smaller_cols, smaller_rows) =
        wait_size("the resized pane's size", &|s| s.0 < cols && s.1 <= rows);
    assert!(smaller_cols >= 10 && smaller_rows >= 1);
    tmux.keys(&["q"]);
    tmux.wait_screen("quit confirmation", 10, |s| s.contains("Quit?"));
    tmux.keys(&["y"]);
    tmux.wait_screen("forkscope exit", 20, |s| {
        common::tui::shell_exit(s).is_some()
    });
    assert_nothing_left(&marker);
}
