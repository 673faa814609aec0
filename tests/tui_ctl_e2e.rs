//! `forkscope ctl` drives a running TUI session (in tmux): scale, signal, stop, and the
//! screen follows.

mod common;

use common::socket::SocketDir;
use common::tui::{Tmux, forkscope, marker, wait_recorded};
use common::{Cleanup, alive, assert_nothing_left};

#[test]
fn ctl_scales_signals_and_stops_a_tui_session() {
    let tmux = Tmux::start(120, 40);
    let sockets = SocketDir::new();
    let marker = marker();
    let _cleanup = Cleanup(marker.clone());
    let record = tmux.path("rec.jsonl");
    tmux.type_line(&format!(
        "XDG_RUNTIME_DIR={dir} {bin} run -n 2 --stop-timeout 2 --record {rec} -- sleep {marker}; echo EXIT:$?",
        dir = sockets.dir.path().display(),
        bin = forkscope(),
        rec = record.display(),
    ));
    let spawns = wait_recorded(&record, "spawn", 2, 15);
    let first = spawns[0]["pid"].as_i64().expect("pid") as i32;
    tmux.wait_screen("both workers", 10, |s| s.contains(&first.to_string()));

    sockets.ctl(&["scale", "sleep", "3"]);
    let spawns = wait_recorded(&record, "spawn", 3, 15);
    let third = spawns[2]["pid"].as_i64().expect("pid") as i32;
    tmux.wait_screen("the third worker on screen", 10, |s| {
        s.contains(&third.to_string())
    });

    sockets.ctl(&["signal", "sleep:0", "TERM"]);
    tmux.wait_screen("worker 0's end by SIGTERM", 10, |s| {
        s.contains("SIGTERM (-15 / 143)")
    });
    assert!(!alive(first), "worker 0 ({first}) still alive");
    assert!(alive(third), "worker 2 ({third}) must live");

    sockets.ctl(&["stop"]);
    tmux.wait_screen("forkscope exit", 20, |s| {
        common::tui::shell_exit(s).is_some()
    });
    assert_nothing_left(&marker);
    assert!(
        !sockets
            .dir
            .path()
            .join("forkscope")
            .read_dir()
            .is_ok_and(|mut d| d
                .any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sock")))),
        "socket left behind"
    );
}
