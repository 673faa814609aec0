//! Real Python programs (stdlib only) with SharedMemory, ShareableList, Value, Array, Lock,
//! Event and Queue, under the fork and spawn start methods: `shm ls`, `shm show`, `inspect`
//! and the watcher see them, and see a change the program makes while watched.

mod common;

use std::time::{Duration, Instant};

use common::shm::*;
use forkscope::inspect::shm::watch::{WatchRequest, Watcher};
use forkscope::inspect::shm::{Scope, discover, find};
use serde_json::json;

const PROGRAM: &str = r#"
import multiprocessing as mp, os, sys
from multiprocessing import shared_memory

def child(name, v, a, lock, ev, q):
    sl = shared_memory.ShareableList(name=name)
    q.put((os.getpid(), v.value, a[0], sl[0]))
    ev.wait()
    sl.shm.close()

if __name__ == "__main__":
    method, name, raw = sys.argv[1], sys.argv[2], sys.argv[3]
    ctx = mp.get_context(method)
    sl = shared_memory.ShareableList([7, 2.5, True, None, "héllo", b"ab"], name=name)
    shm = shared_memory.SharedMemory(name=raw, create=True, size=100)
    shm.buf[:5] = b"hello"
    v = ctx.Value('i', 42)
    a = ctx.Array('d', [1.5, 2.5])
    lock = ctx.Lock()
    ev = ctx.Event()
    q = ctx.Queue()
    p = ctx.Process(target=child, args=(name, v, a, lock, ev, q))
    p.start()
    cpid, value, first, item = q.get(timeout=30)
    assert (value, first, item) == (42, 1.5, 7)
    print("ready", os.getpid(), cpid, flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "set":
            sl[0] = 8
            sl[2] = None
            sl[4] = "bye"
            v.value = 43
            print("done set", flush=True)
        elif cmd == "quit":
            break
    ev.set()
    p.join(30)
    sl.shm.close(); sl.shm.unlink(); shm.close(); shm.unlink()
    print("bye", flush=True)
"#;

fn pids_of(entry: &serde_json::Value) -> Vec<i64> {
    entry["pids"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p.as_i64()).collect())
        .unwrap_or_default()
}

fn scenario(method: &str) {
    let name = unique(&format!("sl_{method}"));
    let raw = unique(&format!("raw_{method}"));
    let _guard = ShmGuard(vec![name.clone(), raw.clone()]);
    let mut py = Py::start(PROGRAM, &[method, &name, &raw]);
    let ready = py.expect("ready");
    let fields: Vec<i32> = ready
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap())
        .collect();
    let (parent, child) = (fields[0], fields[1]);
    let pid = parent.to_string();

    // The ShareableList: named, linked, mapped by both.
    let entry = find_entry(parent, |e| e["name"] == name.as_str()).expect("list listed");
    assert_eq!(entry["kind"], "posix");
    assert_eq!(entry["deleted"], false);
    let pids = pids_of(&entry);
    assert!(
        pids.contains(&(parent as i64)) && pids.contains(&(child as i64)),
        "{entry}"
    );
    let shown = forkscope_json(&["shm", "show", &name, "--pid", &pid]);
    assert_eq!(
        shown["items"],
        json!([{"type": "int", "value": 7}, {"type": "float", "value": 2.5},
               {"type": "bool", "value": true}, {"type": "none", "value": null},
               {"type": "str", "value": "héllo"}, {"type": "bytes", "hex": "6162"}])
    );
    // By inode too, and without --pid (the whole system).
    let inode = entry["inode"].to_string();
    let by_inode = forkscope_json(&["shm", "show", &inode, "--pid", &pid]);
    assert_eq!(by_inode["name"], name.as_str());
    assert_eq!(
        forkscope_json(&["shm", "show", &name])["items"][0]["value"],
        7
    );

    // Plain SharedMemory as hex.
    let hex = forkscope_json(&["shm", "show", &raw, "--pid", &pid, "--as", "hex"]);
    assert_eq!(hex["size"], 100);
    assert!(hex["hex"].as_str().unwrap().starts_with("68656c6c6f00"));

    // The heap arena of Value and Array: unlinked at once, mapped by both, read through a fd
    // or /proc/PID/mem.
    let prefix = format!("pym-{parent}-");
    let arena = find_entry(parent, |e| {
        e["kind"] == "py-arena" && e["name"].as_str().unwrap_or("").starts_with(&prefix)
    })
    .expect("arena listed");
    assert_eq!(arena["deleted"], true);
    let pids = pids_of(&arena);
    assert!(
        pids.contains(&(parent as i64)) && pids.contains(&(child as i64)),
        "{arena}"
    );
    let arena_inode = arena["inode"].to_string();
    let ints = forkscope_json(&["shm", "show", &arena_inode, "--pid", &pid, "--as", "i32"]);
    assert_eq!(ints["values"][0], 42);
    let floats = forkscope_json(&["shm", "show", &arena_inode, "--pid", &pid, "--as", "f64"]);
    let floats: Vec<f64> = floats["values"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_f64())
        .collect();
    assert!(floats.windows(2).any(|w| w == [1.5, 2.5]), "{floats:?}");

    // Semaphores: one segment per semaphore, shared by both, whatever names they map.
    let sems: Vec<serde_json::Value> = forkscope_json(&["shm", "ls", "--pid", &pid])
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "semaphore")
        .cloned()
        .collect();
    assert!(!sems.is_empty());
    let shared = sems
        .iter()
        .find(|e| {
            let p = pids_of(e);
            p.contains(&(parent as i64)) && p.contains(&(child as i64))
        })
        .expect("a semaphore both processes map");
    assert_eq!(shared["size"], 32);
    if method == "spawn" {
        assert!(
            shared["name"].as_str().unwrap().starts_with("sem.mp-"),
            "{shared}"
        );
        assert_eq!(shared["deleted"], false);
    }
    let sem = forkscope_json(&["shm", "show", &shared["inode"].to_string(), "--pid", &pid]);
    assert_eq!(sem["format"], "semaphore", "{sem}");

    // `inspect` lists the same segments.
    let snapshot = forkscope_json(&["inspect", &pid]);
    let listed = snapshot["shm"].as_array().unwrap();
    assert!(
        listed
            .iter()
            .any(|e| e["name"] == name.as_str() && e["kind"] == "posix")
    );

    // The watcher sees the program change items (one of them changes type).
    let segments = discover(&Scope::Tree(parent));
    let id = find(&segments, &name).expect("found").id;
    let watcher = Watcher::spawn(Duration::from_millis(20), 1 << 20).unwrap();
    watcher.set(WatchRequest {
        pids: vec![parent, child],
        selected: Some(id),
        format: "auto".parse().unwrap(),
        ..WatchRequest::default()
    });
    let deadline = Instant::now() + DEADLINE;
    let mut sent = false;
    let mut changed = Vec::new();
    while changed.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the watcher never saw the change"
        );
        let Ok(snapshot) = watcher.snapshots().recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        // A snapshot taken before the watcher saw the request has no selected contents yet.
        let Some(contents) = snapshot.contents else {
            continue;
        };
        let contents = contents.expect("readable");
        if !sent {
            py.send("set");
            py.expect("done set");
            sent = true;
        } else {
            changed = contents.changed_items.clone();
        }
    }
    assert_eq!(changed, vec![0, 2, 4]);
    drop(watcher);
    let shown = forkscope_json(&["shm", "show", &name, "--pid", &pid]);
    assert_eq!(shown["items"][0], json!({"type": "int", "value": 8}));
    assert_eq!(shown["items"][2], json!({"type": "none", "value": null}));
    assert_eq!(shown["items"][4], json!({"type": "str", "value": "bye"}));
    let ints = forkscope_json(&["shm", "show", &arena_inode, "--pid", &pid, "--as", "i32"]);
    assert_eq!(ints["values"][0], 43);

    py.send("quit");
    py.expect("bye");
    py.finish();
    assert!(dev_shm_with(&name).is_empty() && dev_shm_with(&raw).is_empty());
}

#[test]
fn python_fork() {
    scenario("fork");
}

#[test]
fn python_spawn() {
    scenario("spawn");
}

#[test]
fn unknown_segment_and_bad_format() {
    let (code, _, err) = forkscope(&["shm", "show", "fstest_no_such_segment"]);
    assert_eq!(code, 1);
    assert!(err.contains("no shared-memory segment named"), "{err}");
    let (code, _, err) = forkscope(&["shm", "show", "x", "--as", "i128"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown format"), "{err}");
    let (code, _, err) = forkscope(&["shm", "show", "x", "--as", "layout:a:u8[0]"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = forkscope(&["shm", "ls", "--pid", "999999999"]);
    assert_eq!(code, 1);
}
