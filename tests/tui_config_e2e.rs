//! End to end: `forkscope up` in the TUI (inside tmux) decodes a segment of its config with the
//! config's `[[shm.layout]]`, not with auto-detection (which would show hex).

mod common;

use common::tui::{Tmux, forkscope, marker, wait_recorded};
use common::{Cleanup, assert_nothing_left};

#[test]
fn up_tui_decodes_a_segment_with_the_config_layout() {
    let tmux = Tmux::start(120, 40);
    let marker = marker();
    let _cleanup = Cleanup(marker.clone());
    let config = tmux.path("forkscope.toml");
    // The worker holds the segment open (fd 3), writes count = 42 ('*') and "hello" at 24,
    // then waits. The segment is forkscope's own (`[[shm.segment]]`), removed when it ends.
    std::fs::write(
        &config,
        format!(
            r#"
[[pool]]
name = "holder"
shell = true
command = """
seg=/dev/shm/$FORKSCOPE_SHM_COUNTS
exec 3<>"$seg"
printf '*' | dd of="$seg" bs=1 seek=0 conv=notrunc 2>/dev/null
printf 'hello' | dd of="$seg" bs=1 seek=24 conv=notrunc 2>/dev/null
sleep {marker}
"""

[[shm.segment]]
name = "counts"
size = 64

[[shm.layout]]
match = "forkscope-*-counts"
layout = "count:i64, flags:u8[16], label:char[8]"
"#
        ),
    )
    .unwrap();
    let record = tmux.path("rec.jsonl");
    tmux.type_line(&format!(
        "{} up -f {} --record {}; echo EXIT:$?",
        forkscope(),
        config.display(),
        record.display()
    ));
    wait_recorded(&record, "spawn", 1, 15);
    tmux.keys(&["m"]);
    let screen = tmux.wait_screen("the struct decoded", 15, |s| {
        s.contains("counts") && s.contains("count i64 = 42") && s.contains("\"hello\"")
    });
    assert!(screen.contains("flags u8[16] = 0, 0"), "{screen}");
    // The segment's name as the view lists it: forkscope-<SESSION>-counts.
    let name = screen
        .split(|c: char| c.is_whitespace() || c == '│')
        .find(|w| w.starts_with("forkscope-") && w.ends_with("-counts"))
        .unwrap_or_else(|| panic!("no segment name on screen: {screen}"))
        .to_string();
    assert!(std::path::Path::new(&format!("/dev/shm/{name}")).exists());
    tmux.keys(&["m"]);
    tmux.keys(&["q"]);
    tmux.wait_screen("quit confirmation", 5, |s| s.contains("Quit?"));
    tmux.keys(&["y"]);
    tmux.wait_screen("exit", 15, |s| common::tui::shell_exit(s).is_some());
    assert_nothing_left(&marker);
    assert!(
        !std::path::Path::new(&format!("/dev/shm/{name}")).exists(),
        "{name} outlived forkscope"
    );
}
