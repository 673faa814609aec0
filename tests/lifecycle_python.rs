//! Exact exits of Python multiprocessing children: forkscope's `exit` events for the
//! grandchildren must match Python's own `Process.exitcode`, pid by pid, for a normal
//! exit, `sys.exit(7)`, `terminate()`, `kill()` and SIGSEGV, under each start method.

mod common;

use std::time::Duration;

use common::{assert_every_fork_has_one_exit, python, run, tracks};

const PROGRAM: &str = r#"
import multiprocessing as mp, os, resource, signal, sys, time

def normal():
    pass

def seven():
    sys.exit(7)

def sleeper():
    time.sleep(60)

def segv():
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.kill(os.getpid(), signal.SIGSEGV)

if __name__ == "__main__":
    mp.set_start_method(sys.argv[1])
    procs = [mp.Process(target=f) for f in (normal, seven, sleeper, sleeper, segv)]
    for p in procs:
        p.start()
    for i in (0, 1, 4):
        procs[i].join()
    procs[2].terminate()
    procs[3].kill()
    for p in procs:
        p.join()
    for p in procs:
        print(p.pid, p.exitcode, flush=True)
"#;

fn check(track: &str, method: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("children.py");
    std::fs::write(&script, PROGRAM).expect("write script");
    let python = python();
    let script = script.to_string_lossy().into_owned();
    let run = run(
        track,
        &[],
        &[&python, &script, method],
        Duration::from_secs(60),
    );
    assert_eq!(run.status, 0, "stderr: {}", run.stderr);
    let session = run.session();
    assert!(
        session["track"] == track
            || (track == "auto" && (session["track"] == "poll" || session["track"] == "kernel")),
        "{session}"
    );
    let exact = common::exact(&run);
    let lines = run.stdout_lines();
    assert_eq!(lines.len(), 5, "python printed {lines:?}");
    let expected = [Some(0), Some(7), Some(-15), Some(-9), Some(-11)];
    for (line, want) in lines.iter().zip(expected) {
        let mut parts = line.split_whitespace();
        let pid: i64 = parts.next().and_then(|p| p.parse().ok()).expect("pid");
        let code: i64 = parts.next().and_then(|c| c.parse().ok()).expect("exitcode");
        assert_eq!(Some(code), want.map(i64::from), "python itself: {line}");
        if !exact {
            continue;
        }
        let exits = run.exits_of(pid);
        assert_eq!(
            exits.len(),
            1,
            "{track}/{method}: exits of {pid}: {exits:?}"
        );
        assert_eq!(
            exits[0]["python_exitcode"], code,
            "{track}/{method}: {}",
            exits[0]
        );
        if code < 0 {
            assert_eq!(exits[0]["shell_status"], 128 - code);
            assert_eq!(exits[0]["core_dumped"], false);
        }
        assert!(
            run.kind("fork").any(|f| f["pid"] == pid),
            "{track}/{method}: no fork for {pid}"
        );
    }
    if exact {
        assert_every_fork_has_one_exit(&run);
    }
    run.assert_nothing_left();
}

#[test]
fn exit_statuses_match_python_fork() {
    for track in tracks() {
        check(track, "fork");
    }
}

#[test]
fn exit_statuses_match_python_spawn() {
    for track in tracks() {
        check(track, "spawn");
    }
}

#[test]
fn exit_statuses_match_python_forkserver() {
    for track in tracks() {
        check(track, "forkserver");
    }
}
