//! `kill -9` of the job's process group (guardian and engine, what `kill -9 %1` does) while
//! the TUI runs in a real terminal (tmux): the watchdog, outside the group, kills every worker
//! and gives the terminal back as it was (main screen, no mouse reporting, cursor shown, the
//! terminal modes saved before).

mod common;

use common::tui::{Tmux, forkscope, marker, wait_recorded};
use common::{Cleanup, assert_nothing_left, read_stat, secs, wait_for};

#[test]
fn sigkill_of_the_tuis_process_group_leaves_nothing_and_restores_the_terminal() {
    let tmux = Tmux::start(100, 30);
    let marker = marker();
    let _cleanup = Cleanup(marker.clone());
    let record = tmux.path("rec.jsonl");
    let saved = tmux.path("before");
    tmux.type_line(&format!(
        "stty -g > {saved}; {bin} run -n 2 --record {rec} -- sleep {marker}",
        saved = saved.display(),
        bin = forkscope(),
        rec = record.display(),
    ));
    let pids: Vec<i64> = wait_recorded(&record, "spawn", 2, 15)
        .iter()
        .map(|e| e["pid"].as_i64().unwrap())
        .collect();
    tmux.wait_screen("every worker pid on screen", 10, |screen| {
        pids.iter().all(|pid| screen.contains(&pid.to_string()))
    });
    assert_eq!(
        tmux.modes(),
        (true, true, false),
        "the TUI owns the terminal"
    );
    let session = &wait_recorded(&record, "session", 1, 5)[0];
    let engine = session["pid"].as_i64().unwrap() as i32;
    let job = read_stat(engine).expect("engine").pgrp;
    // SAFETY: the job's process group is the forkscope this test started in tmux.
    assert_eq!(unsafe { libc::kill(-job, libc::SIGKILL) }, 0);
    assert_nothing_left(&marker);
    wait_for("the terminal modes restored", secs(10.0), || {
        tmux.modes() == (false, false, true)
    });
    tmux.type_line(&format!(
        "stty -g | cmp -s {saved} - && {restored}",
        saved = saved.display(),
        restored = common::tui::ECHO_RESTORED,
    ));
    tmux.wait_screen("stty modes as before", 10, |s| {
        s.contains(common::tui::RESTORED)
    });
}
