//! Roles and endings the TUI tells: it names roles with the same function as `inspect` (a
//! multiprocessing `Manager` server is `manager-server` in the tree, found by the socket it
//! listens on, read off the render path, not `fork-child`; `Pool` and `ProcessPoolExecutor`
//! workers are `pool-worker` / `executor-worker`, by their Python stacks, read off the render
//! path too), and a Python forkserver that
//! forkscope's own cleanup SIGTERMs is "stopped by forkscope", not a failure of the program.

mod common;

use common::python;
use common::tui::{Tmux, forkscope, wait_recorded};

/// A Manager under fork; says `ready PID` and waits (at most 60 s) for the flag file.
const PROGRAM: &str = r#"
import multiprocessing as mp, os, sys, time
if __name__ == "__main__":
    mp.set_start_method("fork")
    manager = mp.Manager()
    shared = manager.dict()
    print("ready", manager._process.pid, flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
        time.sleep(0.05)
    manager.shutdown()
"#;

#[test]
fn the_tree_names_the_manager_server() {
    let tmux = Tmux::start(160, 30);
    let (ready, flag) = run_until_ready(&tmux, "manager.py", PROGRAM);
    let manager = ready[0]["line"]
        .as_str()
        .and_then(|l| l.strip_prefix("ready "))
        .expect("ready PID")
        .to_string();
    let screen = tmux.wait_screen("the manager's role", 20, |s| {
        s.lines()
            .any(|l| l.contains(&manager) && l.contains("(manager-server)"))
    });
    assert!(!screen.contains("(fork-child)"), "{screen}");
    std::fs::write(&flag, b"").expect("flag");
    quit(&tmux);
}

/// A Pool(2) and a ProcessPoolExecutor(2) under fork; says `ready POOL_PIDS EXECUTOR_PIDS`
/// (comma-separated) and waits (at most 60 s) for the flag file.
const POOLS: &str = r#"
import concurrent.futures as cf, multiprocessing as mp, os, sys, time
def work(x):
    return x
if __name__ == "__main__":
    mp.set_start_method("fork")
    pool = mp.Pool(2)
    pool.map(work, range(4))
    executor = cf.ProcessPoolExecutor(2)
    executor.submit(work, 1).result()
    pool_pids = ",".join(str(p.pid) for p in pool._pool)
    executor_pids = ",".join(str(pid) for pid in executor._processes)
    print("ready", pool_pids, executor_pids, flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
        time.sleep(0.05)
    executor.shutdown()
    pool.terminate()
"#;

#[test]
fn the_tree_names_pool_and_executor_workers() {
    let tmux = Tmux::start(160, 30);
    let (ready, flag) = run_until_ready(&tmux, "pools.py", POOLS);
    let line = ready[0]["line"].as_str().unwrap_or("").to_string();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "program said {line:?}");
    let pids = |field: &str| -> Vec<String> { field.split(',').map(str::to_string).collect() };
    let (pool, executor) = (pids(fields[1]), pids(fields[2]));
    assert_eq!((pool.len(), executor.len()), (2, 2), "{line:?}");
    let shows = |screen: &str, pid: &str, role: &str| {
        screen.lines().any(|l| l.contains(pid) && l.contains(role))
    };
    // The role probe reads each worker's stack about once a second.
    let screen = tmux.wait_screen("the workers' roles", 30, |s| {
        pool.iter().all(|pid| shows(s, pid, "(pool-worker)"))
            && executor
                .iter()
                .all(|pid| shows(s, pid, "(executor-worker)"))
    });
    assert!(!screen.contains("(fork-child)"), "{screen}");
    std::fs::write(&flag, b"").expect("flag");
    quit(&tmux);
}

/// Runs `program FLAG` under forkscope in `tmux` until it prints its first line; returns the
/// recorded output event and the flag file that lets it end.
fn run_until_ready(
    tmux: &Tmux,
    name: &str,
    program: &str,
) -> (Vec<serde_json::Value>, std::path::PathBuf) {
    let script = tmux.path(name);
    std::fs::write(&script, program).expect("script");
    let flag = tmux.path("go");
    let record = tmux.path("rec.jsonl");
    tmux.type_line(&format!(
        "{bin} run --record {rec} -- {py} {script} {flag}; echo EXIT:$?",
        bin = forkscope(),
        rec = record.display(),
        py = python(),
        script = script.display(),
        flag = flag.display(),
    ));
    (wait_recorded(&record, "output", 1, 60), flag)
}

/// Runs one child under the forkserver start method and ends; the forkserver is left for
/// forkscope's leftover cleanup.
const FORKSERVER: &str = r#"
import multiprocessing as mp
def work():
    print("child ran", flush=True)
if __name__ == "__main__":
    mp.set_start_method("forkserver")
    p = mp.Process(target=work)
    p.start()
    p.join()
"#;

/// Presses q (and y if asked) and waits for the shell's `EXIT:`; returns the screen.
fn quit(tmux: &Tmux) -> String {
    tmux.keys(&["q"]);
    let screen = tmux.wait_screen("quit asked or done", 20, |s| {
        s.contains("Quit?") || s.contains("EXIT:")
    });
    if !screen.contains("EXIT:") {
        tmux.keys(&["y"]);
    }
    tmux.wait_screen("forkscope exit", 20, |s| {
        common::tui::shell_exit(s).is_some()
    })
}

#[test]
fn what_forkscope_stopped_is_not_a_failure() {
    let tmux = Tmux::start(160, 30);
    let script = tmux.path("forkserver.py");
    std::fs::write(&script, FORKSERVER).expect("script");
    let record = tmux.path("rec.jsonl");
    tmux.type_line(&format!(
        "{bin} run --record {rec} -- {py} {script}; echo EXIT:$?",
        bin = forkscope(),
        rec = record.display(),
        py = python(),
        script = script.display(),
    ));
    // The TUI stays open: wait until every process that appeared has ended.
    let all_ended = |events: &[serde_json::Value]| {
        let born = events
            .iter()
            .filter(|e| e["kind"] == "spawn" || e["kind"] == "fork");
        let mut born = born.map(|e| e["pid"].clone()).peekable();
        born.peek().is_some()
            && born.all(|pid| {
                events
                    .iter()
                    .any(|e| e["kind"] == "exit" && e["pid"] == pid)
            })
            && events.iter().any(|e| e["kind"] == "stopping")
    };
    common::wait_for("every process ended", common::secs(60.0), || {
        all_ended(&common::tui::recorded(&record))
    });
    // A process the cleanup signalled may still have exited 0 by itself (the forkserver
    // leaves when its parent's pipe closes): only a non-zero end after the signal counts.
    let events = common::tui::recorded(&record);
    let signalled: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["kind"] == "signal" && e["reason"] == "leftover" && e["result"] == "sent")
        .map(|e| &e["pid"])
        .collect();
    let stopped = events
        .iter()
        .filter(|e| e["kind"] == "exit" && signalled.contains(&&e["pid"]) && e["code"] != 0)
        .count();
    let screen = quit(&tmux);
    assert!(screen.contains(" 0 did not exit 0"), "{screen}");
    if stopped == 0 {
        assert!(!screen.contains("stopped by forkscope"), "{screen}");
        return;
    }
    assert!(
        screen.contains(&format!(
            " 0 did not exit 0, stopped by forkscope: {stopped}"
        )),
        "the cleanup's SIGTERM is not the program's failure: {screen}"
    );
}
