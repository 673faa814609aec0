//! End to end: the shared-memory view of the TUI over a real Python ShareableList, live and
//! in the replay of a recording (whose `shm` events carry the changes).

mod common;

use common::tui::{Tmux, forkscope, marker, recorded, wait_recorded};
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
    tmux.wait_screen("exit", 15, |s| common::tui::shell_exit(s).is_some());
    assert_nothing_left(&marker);
}

/// Updates a ShareableList item and a `Value` eight times, 0.3 s apart (its own pace).
const CHANGING: &str = r#"
import sys, time, multiprocessing as mp
from multiprocessing import shared_memory
name, marker = sys.argv[1], sys.argv[2]
sl = shared_memory.ShareableList([0, "fixed"], name=name)
v = mp.Value('i', 1000)
try:
    for i in range(1, 9):
        time.sleep(0.3)
        sl[0] = i
        v.value = 1000 + i
    time.sleep(0.6)
finally:
    sl.shm.close()
    sl.shm.unlink()
"#;

#[test]
fn a_recording_replays_shared_memory_changing() {
    let tmux = Tmux::start(120, 40);
    let marker = marker();
    let _cleanup = Cleanup(marker.clone());
    let name = format!("fs_rec_{}", std::process::id());
    let _segment = RemoveOnDrop(format!("/dev/shm/{name}"));
    let script = tmux.path("changing.py");
    std::fs::write(&script, CHANGING).unwrap();
    let record = tmux.path("shm.jsonl");
    let run = std::process::Command::new(forkscope())
        .args(["run", "--headless", "--record"])
        .arg(&record)
        .args(["--", "python3"])
        .arg(&script)
        .args([&name, &marker])
        .stderr(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0));
    assert_nothing_left(&marker);
    let events = recorded(&record);
    let shm: Vec<&serde_json::Value> = events.iter().filter(|e| e["kind"] == "shm").collect();
    // `--headless --record` prints the same shm events on stdout (docs/events.md).
    let printed: Vec<serde_json::Value> = String::from_utf8_lossy(&run.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|e| e["kind"] == "shm")
        .collect();
    assert_eq!(
        printed.iter().collect::<Vec<_>>(),
        shm,
        "stdout against the file"
    );
    // The list: item 0 seen with several values, each change naming the item.
    let list: Vec<i64> = shm
        .iter()
        .filter(|e| e["name"] == name.as_str() && e["value"]["format"] == "shareable-list")
        .filter_map(|e| e["value"]["items"][0]["value"].as_i64())
        .collect();
    assert!(list.len() >= 3, "list values {list:?} in {shm:?}");
    assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?}");
    assert!(
        shm.iter()
            .any(|e| e["name"] == name.as_str() && e["changed_items"] == serde_json::json!([0])),
        "{shm:?}"
    );
    // The Value lives in a heap arena: its bytes (little-endian 1000 + i) change.
    let values: Vec<u32> = (1001..=1008)
        .filter(|v: &u32| {
            let hex: String = v.to_le_bytes().iter().map(|b| format!("{b:02x}")).collect();
            shm.iter().any(|e| {
                e["segment"] == "py-arena"
                    && !e["changed"].is_null()
                    && e["value"]["hex"].as_str().is_some_and(|h| h.contains(&hex))
            })
        })
        .collect();
    assert!(values.len() >= 3, "Value readings {values:?} in {shm:?}");
    // Replayed: the view shows the recorded list, changing, and the arena's changed bytes.
    tmux.type_line(&format!(
        "{} replay {}; echo EXIT:$?",
        forkscope(),
        record.display()
    ));
    tmux.keys(&["m"]);
    tmux.wait_screen("the recorded list", 15, |s| {
        s.contains(&name) && s.contains("ShareableList") && s.contains("\"fixed\"")
    });
    tmux.wait_screen("item 0 changed in the replay", 15, |s| s.contains("* [0] "));
    tmux.wait_screen("the last value", 15, |s| s.contains("[0] 8"));
    tmux.keys(&["Down"]);
    tmux.wait_screen("the Value's arena", 10, |s| {
        s.contains("> pym-") && s.contains("f0 03 00 00")
    });
    tmux.keys(&["q"]);
    tmux.wait_screen("replay exit", 10, |s| s.contains("EXIT:0"));
}

struct RemoveOnDrop(String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
