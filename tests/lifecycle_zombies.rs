//! Zombies and orphans under every source (kernel, ptrace, poll): a process is a zombie from
//! its `exit` (`zombie: true`) until its `reap` (by its parent, or by forkscope when it was
//! adopted as a zombie), and an orphan's adoption is a `reparent` event, its `exit` naming
//! the parent it had when it died. Real programs: the tour demo, sh and python3.

mod common;

use std::time::{Duration, Instant};

use common::{Run, assert_every_fork_has_one_exit, every_source, python, run, run_demo};
use forkscope::model::{Event, EventBody, State, update};
use forkscope::ui::replay::Playback;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

fn spawn_of(run: &Run, worker: u64) -> i64 {
    run.kind("spawn")
        .find(|s| s["worker"] == worker)
        .and_then(|s| s["pid"].as_i64())
        .unwrap_or_else(|| panic!("no worker {worker}: {:?}", run.events))
}

fn position(run: &Run, what: impl Fn(&Value) -> bool) -> Option<usize> {
    run.events.iter().position(what)
}

fn is(kind: &str, pid: i64) -> impl Fn(&Value) -> bool + '_ {
    move |e: &Value| e["kind"] == kind && e["pid"] == pid
}

/// The state built from the run's events up to (not including) index `upto`.
fn state_before(run: &Run, upto: usize) -> State {
    let mut state = State::new(100);
    for event in &run.events[..upto] {
        let typed: Event = serde_json::from_value(event.clone()).expect("typed event");
        update(&mut state, &typed);
    }
    state
}

/// Every `exit` with `zombie: true` has exactly one `reap` after it, and no other reap comes.
fn assert_every_zombie_reaped_once(run: &Run) {
    let mut waiting: Vec<i64> = Vec::new();
    for event in &run.events {
        let pid = event["pid"].as_i64().unwrap_or(0);
        if event["kind"] == "exit" && event["zombie"] == true {
            waiting.push(pid);
        } else if event["kind"] == "reap" {
            let at = waiting
                .iter()
                .position(|p| *p == pid)
                .unwrap_or_else(|| panic!("reap of {pid} without a zombie exit before it"));
            waiting.remove(at);
        }
    }
    assert!(waiting.is_empty(), "zombies never reaped: {waiting:?}");
}

/// The tour demo at pace 0.5 (its zombie waits 0.75 s for its parent), polled every 0.2 s.
fn tour(track: &str) -> Run {
    let run = run_demo(
        track,
        "tour",
        &["--pace", "0.5", "--sample-interval", "0.2"],
        LIMIT,
    );
    assert_eq!(run.status, 0, "{track}: {}", run.stderr);
    run
}

#[test]
fn the_tour_zombie_is_shown_as_zombie_until_its_parent_reaps_it() {
    for track in every_source() {
        let run = tour(track);
        let parent = spawn_of(&run, 3);
        let zombies: Vec<i64> = run
            .kind("exit")
            .filter(|e| e["ppid"] == parent && e["zombie"] == true)
            .filter_map(|e| e["pid"].as_i64())
            .collect();
        // Three rounds, one zombie each. Polling sees a zombie only if a scan (every 0.2 s)
        // lands in its 0.75 s: it may miss one when the machine stalls the engine.
        if track == "poll" {
            assert!(!zombies.is_empty(), "{track}: {:?}", run.events);
        } else {
            assert_eq!(zombies.len(), 3, "{track}: {:?}", run.events);
        }
        for pid in zombies {
            let exit_at = position(&run, is("exit", pid)).expect("exit");
            let reap_at = position(&run, is("reap", pid))
                .unwrap_or_else(|| panic!("{track}: no reap of {pid}"));
            assert!(exit_at < reap_at, "{track}: the reap follows the exit");
            let (exit, reap) = (&run.events[exit_at], &run.events[reap_at]);
            assert_eq!(exit["code"], 0, "{track}: {exit}");
            assert_eq!(reap["by"], parent, "{track}: the tour worker reaps it");
            if track == "kernel" {
                // The kernel stamps the exit when it happened, and the parent sleeps 0.75 s
                // (at least that) before reaping; the reap is stamped when seen, later still.
                // (ptrace and poll stamp the exit when forkscope learnt it: maybe late.)
                let waited = reap["t"].as_f64().unwrap() - exit["t"].as_f64().unwrap();
                assert!(waited >= 0.7, "{track}: reaped after {waited}s");
            }
            // What the views draw: a zombie before the reap, reaped by its parent after.
            let before = state_before(&run, reap_at);
            let proc = before.find_pid(pid as i32).expect("known");
            assert!(proc.zombie && !proc.is_alive(), "{track}: {pid} a zombie");
            let after = state_before(&run, reap_at + 1);
            let proc = after.find_pid(pid as i32).expect("known");
            assert!(!proc.zombie, "{track}");
            assert_eq!(proc.reaped.map(|r| r.by as i64), Some(parent));
        }
        assert_every_zombie_reaped_once(&run);
        assert_every_fork_has_one_exit(&run);
        run.assert_nothing_left();
    }
}

#[test]
fn the_tour_orphan_is_adopted_by_forkscope_and_ends_as_its_child() {
    for track in every_source() {
        let run = tour(track);
        let engine = run.session()["pid"].as_i64().expect("engine pid");
        let worker = spawn_of(&run, 2);
        // The orphans: the ones that end with exit 3, reaped by forkscope.
        let orphans: Vec<&Value> = run
            .kind("exit")
            .filter(|e| e["code"] == 3 && e["source"] == "engine")
            .collect();
        assert_eq!(orphans.len(), 3, "{track}: {:?}", run.events);
        for exit in orphans {
            assert_eq!(
                exit["ppid"], engine,
                "{track}: the ppid it had when it died"
            );
            let pid = exit["pid"].as_i64().unwrap();
            if track == "poll" {
                continue; // its middle parent lived microseconds: poll first sees it adopted
            }
            let middle = run
                .kind("fork")
                .find(|f| f["pid"] == pid)
                .and_then(|f| f["ppid"].as_i64())
                .expect("the orphan's fork");
            let fork = run
                .kind("fork")
                .find(|f| f["pid"] == middle)
                .expect("middle");
            assert_eq!(fork["ppid"], worker, "{track}");
            let reparent_at = position(&run, is("reparent", pid))
                .unwrap_or_else(|| panic!("{track}: no reparent of {pid}: {:?}", run.events));
            let reparent = &run.events[reparent_at];
            assert_eq!(reparent["from"], middle, "{track}");
            assert_eq!(reparent["to"], engine, "{track}");
            let middle_exit = position(&run, is("exit", middle)).expect("middle's exit");
            let exit_at = position(&run, is("exit", pid)).expect("exit");
            assert!(
                middle_exit < reparent_at && reparent_at < exit_at,
                "{track}"
            );
            // The tree shows it where it is (a root: forkscope's adopted group), marked.
            let state = state_before(&run, reparent_at + 1);
            let proc = state.find_pid(pid as i32).expect("orphan");
            assert_eq!(
                (proc.tree_parent(), proc.adopted_from),
                (None, Some(middle as i32))
            );
        }
        assert_every_zombie_reaped_once(&run);
        run.assert_nothing_left();
    }
}

/// `sh` starts a short child in the background and execs a program that never waits: the
/// child stays a zombie until its parent ends, then forkscope (the subreaper) adopts and
/// reaps it: `reap` by forkscope.
#[test]
fn a_zombie_whose_parent_ends_is_reaped_by_forkscope() {
    let dir = std::env::temp_dir().join(format!("forkscope-zombies-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for track in every_source() {
        let recording = dir.join(format!("{track}.jsonl"));
        let run = run(
            track,
            &[
                "--sample-interval",
                "0.2",
                "--record",
                recording.to_str().expect("utf-8 path"),
            ],
            &["sh", "-c", "/bin/sleep 0.2 & exec /bin/sleep 2"],
            LIMIT,
        );
        assert_eq!(run.status, 0, "{track}: {}", run.stderr);
        let engine = run.session()["pid"].as_i64().expect("engine pid");
        let worker = run.worker_pid();
        let exit = run
            .kind("exit")
            .find(|e| e["ppid"] == worker && e["zombie"] == true)
            .unwrap_or_else(|| panic!("{track}: no zombie exit: {:?}", run.events));
        assert_eq!(exit["code"], 0, "{track}");
        let pid = exit["pid"].as_i64().unwrap();
        let reap = run.kind("reap").find(|r| r["pid"] == pid).expect("reap");
        assert_eq!(
            reap["by"], engine,
            "{track}: adopted as a zombie, reaped by forkscope"
        );
        let worker_exit = position(&run, is("exit", worker)).expect("worker exit");
        let reap_at = position(&run, is("reap", pid)).expect("reap");
        let exit_at = position(&run, is("exit", pid)).expect("exit");
        assert!(
            exit_at < worker_exit,
            "{track}: a zombie long before its parent ended"
        );
        assert!(exit_at < reap_at, "{track}");
        assert_eq!(run.exits_of(pid).len(), 1, "{track}: one exit, then a reap");
        assert_every_zombie_reaped_once(&run);
        assert_every_fork_has_one_exit(&run);
        // The recording replays them: a zombie until the reap, collected by forkscope after.
        let events = forkscope::record::read::load(&recording).expect("the recording loads");
        let mut playback = Playback::new(events, Instant::now());
        let replayed = playback.due(Instant::now() + Duration::from_secs(86_400));
        let reap_index = replayed
            .iter()
            .position(|e| matches!(e.body, EventBody::Reap { pid: p, .. } if p as i64 == pid))
            .expect("the reap is recorded");
        let mut state = State::new(100);
        for (index, event) in replayed.iter().enumerate() {
            update(&mut state, event);
            let proc = state.find_pid(pid as i32);
            if index + 1 == reap_index {
                assert!(proc.is_some_and(|p| p.zombie), "{track}: replayed zombie");
            }
        }
        let proc = state.find_pid(pid as i32).expect("replayed");
        assert_eq!(proc.reaped.map(|r| r.by as i64), Some(engine), "{track}");
    }
    std::fs::remove_dir_all(&dir).expect("remove the recordings");
}

/// A Python subreaper: the middle child ends while its child runs; the orphan is adopted by
/// the Python worker (not forkscope), which reaps it after a while. Each phase lasts over a
/// second, so polling every 0.2 s sees each state several times.
const PY_SUBREAPER: &str = r#"
import ctypes, os, sys, time
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
middle = os.fork()
if middle == 0:
    if os.fork() == 0:
        time.sleep(2.4)
        os._exit(6)
    time.sleep(1.2)
    os._exit(0)
os.waitpid(middle, 0)
time.sleep(2.4)
pid, status = os.wait()
print("reaped", pid, os.waitstatus_to_exitcode(status), flush=True)
"#;

#[test]
fn an_orphan_adopted_by_a_python_subreaper_moves_under_it() {
    let py = python();
    for track in every_source() {
        let run = run(
            track,
            &["--sample-interval", "0.2"],
            &[py.as_str(), "-c", PY_SUBREAPER],
            LIMIT,
        );
        assert_eq!(run.status, 0, "{track}: {}", run.stderr);
        let worker = run.worker_pid();
        let reparent = run
            .kind("reparent")
            .next()
            .unwrap_or_else(|| panic!("{track}: no reparent: {:?}", run.events));
        let (orphan, middle) = (
            reparent["pid"].as_i64().unwrap(),
            reparent["from"].as_i64().unwrap(),
        );
        assert_eq!(reparent["to"], worker, "{track}: adopted by the subreaper");
        let reparent_at = position(&run, is("reparent", orphan)).expect("reparent");
        let middle_exit = position(&run, is("exit", middle)).expect("middle's exit");
        let orphan_exit = position(&run, is("exit", orphan)).expect("orphan's exit");
        assert!(
            middle_exit < reparent_at && reparent_at < orphan_exit,
            "{track}: the parent's end, its orphan's adoption, the orphan's end"
        );
        let middle_fork = run
            .kind("fork")
            .find(|f| f["pid"] == middle)
            .expect("middle");
        assert_eq!(middle_fork["ppid"], worker, "{track}");
        // It dies as the worker's child, a zombie until the worker's wait().
        let exit = &run.exits_of(orphan)[0];
        assert_eq!(exit["ppid"], worker, "{track}");
        assert_eq!(exit["zombie"], true, "{track}: {exit}");
        if track != "poll" {
            assert_eq!(exit["code"], 6, "{track}");
        }
        let reap = run.kind("reap").find(|r| r["pid"] == orphan).expect("reap");
        assert_eq!(reap["by"], worker, "{track}");
        assert_eq!(
            run.stdout_lines(),
            vec![format!("reaped {orphan} 6")],
            "{track}"
        );
        // In the tree it is under the worker now, marked with where it came from.
        let state = state_before(&run, run.events.len());
        let proc = state.find_pid(orphan as i32).expect("orphan");
        let worker_id = state.find_pid(worker as i32).map(|p| p.id);
        assert_eq!(
            (proc.tree_parent(), proc.adopted_from),
            (worker_id, Some(middle as i32))
        );
        assert_every_zombie_reaped_once(&run);
        assert_every_fork_has_one_exit(&run);
        run.assert_nothing_left();
    }
}

/// `inspect` of a live tree shows a zombie as such, with how it ended and whom it waits for.
#[test]
fn inspect_shows_a_zombie_with_its_status() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let script = "import os, sys\n\
                  pid = os.fork()\n\
                  if pid == 0:\n    os._exit(5)\n\
                  print(pid, flush=True)\n\
                  sys.stdin.read()\n\
                  os.waitpid(pid, 0)\n";
    let mut parent = Command::new(python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(parent.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the child's pid");
    let child: i64 = line.trim().parse().expect("pid");
    let root = parent.id().to_string();
    // The child exits at once; wait (bounded) until /proc shows it a zombie.
    let deadline = Instant::now() + Duration::from_secs(10);
    let entry = loop {
        let out = common::forkscope_output(&["inspect", &root, "--json"]);
        let snapshot: Value = serde_json::from_slice(&out.stdout).expect("json");
        let entry = snapshot["processes"]
            .as_array()
            .and_then(|procs| procs.iter().find(|p| p["pid"] == child).cloned())
            .expect("the child is listed");
        if entry["state"] == "zombie" || Instant::now() > deadline {
            break entry;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(entry["state"], "zombie", "{entry}");
    assert_eq!(entry["zombie_exit"], "exit 5", "{entry}");
    let text = common::forkscope_output(&["inspect", &root]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("[exit 5; waiting for {root} to reap it]")),
        "{text}"
    );
    drop(parent.stdin.take()); // EOF: the parent reaps its child and ends
    let status = parent.wait().expect("wait");
    assert!(status.success());
}
