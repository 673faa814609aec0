//! forkscope being SIGKILLed leaves nothing running. The pid the user starts is the guardian;
//! its only child is the watchdog (in a process group of its own), whose only child is the
//! engine (the pid of the `session` event, back in the guardian's group). Every pattern of
//! SIGKILL that leaves one of the three alive is survived (docs/ARCHITECTURE.md):
//! (a) the engine: the watchdog kills every worker and exits.
//! (b) the guardian: the engine gets SIGTERM (the watchdog passes on its PDEATHSIG) and stops
//!     the tree.
//! (c) the job's process group (guardian and engine, `kill -9 %1`): the watchdog kills all.
//! (d) the watchdog: the engine gets SIGTERM (PDEATHSIG) and stops the tree; the guardian
//!     waits for it.
//! (e) watchdog and engine: the guardian kills everything at once.
//! (f) watchdog and guardian: the engine stops the tree.

mod common;

use std::os::unix::process::ExitStatusExt;

use common::*;

/// The watchdog, the guardian's child and the engine's parent.
fn watchdog_of(engine: i32) -> i32 {
    read_stat(engine).expect("engine").ppid
}

fn sigkill(pid: i32) {
    // SAFETY: kill(2) on a process (or group) of the forkscope this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0, "kill({pid})");
}

fn start_tree(m: &str, dir: &std::path::Path) -> (Forkscope, Vec<i32>, i32) {
    start_tree_with(m, dir, StartOptions::default())
}

fn start_tree_with(
    m: &str,
    dir: &std::path::Path,
    options: StartOptions,
) -> (Forkscope, Vec<i32>, i32) {
    // Three workers, each with a setsid grandchild that ignores SIGTERM.
    let worker = script(
        dir,
        "tree.sh",
        "setsid sh -c 'trap \"\" TERM; echo escaped $$; exec sleep 30' &\nsleep 30",
    );
    let fs = Forkscope::start_with(
        m,
        &[
            "run",
            "-n",
            "3",
            "--headless",
            "--stop-timeout",
            "0.5",
            "--",
            worker.to_str().unwrap(),
        ],
        options,
    );
    let workers: Vec<i32> = fs
        .wait_kind("spawn", 3, secs(5.0))
        .iter()
        .map(pid_of)
        .collect();
    fs.wait_until("three escapees", secs(5.0), |events| {
        events
            .iter()
            .filter(|e| kind(e) == "output" && e["line"].as_str().unwrap().starts_with("escaped"))
            .count()
            == 3
    });
    let engine = fs.engine_pid();
    let watchdog = watchdog_of(engine);
    assert!(engine != fs.pid() && watchdog != fs.pid());
    assert_eq!(read_stat(watchdog).expect("watchdog").ppid, fs.pid());
    let group = read_stat(fs.pid()).expect("guardian").pgrp;
    assert_eq!(
        read_stat(engine).unwrap().pgrp,
        group,
        "the engine is in the job"
    );
    assert_ne!(
        read_stat(watchdog).unwrap().pgrp,
        group,
        "the watchdog is not"
    );
    for &pid in &workers {
        assert_eq!(read_stat(pid).expect("worker").ppid, engine);
    }
    assert!(marked_processes(m).len() >= 3 + 3 + 3);
    (fs, workers, engine)
}

#[test]
fn sigkill_of_the_engine_makes_the_watchdog_kill_everything() {
    let dir = tempfile::tempdir().unwrap();
    let m = marker("killengine");
    let (mut fs, workers, engine) = start_tree(&m, dir.path());
    let watchdog = watchdog_of(engine);
    sigkill(engine);
    let (status, _) = fs.finish(secs(8.0));
    assert_eq!(status.code(), Some(128 + libc::SIGKILL), "{status:?}");
    assert_the_watchdog_killed_everything(&mut fs, watchdog, &workers);
}

/// After the engine's death: the watchdog said so, killed every worker and escapee, and ended.
fn assert_the_watchdog_killed_everything(fs: &mut Forkscope, watchdog: i32, workers: &[i32]) {
    wait_for("the watchdog to finish", secs(8.0), || !alive(watchdog));
    let stderr = fs.stderr();
    assert!(stderr.contains("engine died by SIGKILL"), "{stderr}");
    assert!(stderr.contains("watchdog killed"), "{stderr}");
    for &pid in workers {
        assert!(!alive(pid));
    }
    assert_nothing_left(&fs.marker);
}

/// The engine got SIGTERM (a PDEATHSIG, passed on or its own) and stopped the tree: every
/// worker ended by the stop signal, and the stream ends with `end`.
fn assert_stopped_gracefully(events: &[serde_json::Value], workers: &[i32]) {
    let stopping = &of_kind(events, "stopping")[0];
    assert_eq!(stopping["reason"], "received SIGTERM", "{}", dump(events));
    for &pid in workers {
        assert_eq!(
            exit_of(events, pid).expect("worker exit")["signal"],
            "SIGTERM"
        );
    }
    assert_eq!(kind(events.last().unwrap()), "end");
}

#[test]
fn sigkill_of_the_guardian_makes_the_engine_stop_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let m = marker("killguardian");
    let (mut fs, workers, engine) = start_tree(&m, dir.path());
    fs.signal(libc::SIGKILL);
    // The engine still holds our stdout pipe: its events go on.
    fs.wait_eof(secs(8.0));
    let (status, events) = fs.finish(secs(2.0));
    assert_eq!(status.code(), None, "the guardian was killed");
    assert_stopped_gracefully(&events, &workers);
    wait_for("the engine to end", secs(5.0), || !alive(engine));
    assert_nothing_left(&m);
}

#[test]
fn forwarded_signal_ends_with_the_engines_status() {
    let m = marker("guardstatus");
    let mut fs = Forkscope::start(&m, &["run", "-n", "2", "--headless", "--", "sleep", "30"]);
    fs.wait_kind("spawn", 2, secs(5.0));
    fs.signal(libc::SIGTERM);
    let (code, events) = fs.finish_clean(secs(8.0));
    // The guardian exits with the engine's status, which is the `end` event's.
    assert_eq!(Some(code as i64), events.last().unwrap()["status"].as_i64());
    assert!(
        fs.stderr().is_empty(),
        "a clean stop writes nothing on stderr"
    );
}

#[test]
fn usr1_is_ignored_and_quit_stops_gracefully() {
    let m = marker("usr1quit");
    let mut fs = Forkscope::start(&m, &["run", "-n", "2", "--headless", "--", "sleep", "30"]);
    let workers: Vec<i32> = fs
        .wait_kind("spawn", 2, secs(5.0))
        .iter()
        .map(pid_of)
        .collect();
    fs.signal(libc::SIGUSR1);
    fs.signal(libc::SIGUSR2);
    // SIGQUIT after them: the first event it causes is the stop, so USR1/USR2 changed nothing.
    fs.signal(libc::SIGQUIT);
    let (status, events) = fs.finish(secs(8.0));
    assert_eq!(
        status.code(),
        Some(1),
        "workers ended by SIGTERM: {}",
        dump(&events)
    );
    let stopping = of_kind(&events, "stopping");
    assert_eq!(stopping.len(), 1, "{}", dump(&events));
    assert_eq!(stopping[0]["reason"], "received SIGQUIT");
    for pid in workers {
        assert_eq!(exit_of(&events, pid).expect("exit")["signal"], "SIGTERM");
    }
    assert_nothing_left(&m);
}

#[test]
fn sigkill_of_the_jobs_process_group_makes_the_watchdog_kill_everything() {
    let dir = tempfile::tempdir().unwrap();
    let m = marker("killgroup");
    let options = StartOptions {
        own_group: true,
        ..StartOptions::default()
    };
    let (mut fs, workers, engine) = start_tree_with(&m, dir.path(), options);
    let watchdog = watchdog_of(engine);
    // What `kill -9 %1` does: SIGKILL to the job's process group (guardian and engine).
    sigkill(-fs.pid());
    let (status, _) = fs.finish(secs(8.0));
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    assert_the_watchdog_killed_everything(&mut fs, watchdog, &workers);
}

#[test]
fn sigkill_of_the_watchdog_makes_the_engine_stop_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let m = marker("killwatchdog");
    let (mut fs, workers, engine) = start_tree(&m, dir.path());
    sigkill(watchdog_of(engine));
    let (status, events) = fs.finish(secs(10.0));
    // The engine ended normally (its workers were stopped: 1), and the guardian says so.
    assert_eq!(status.code(), Some(1), "{status:?}\n{}", dump(&events));
    assert_stopped_gracefully(&events, &workers);
    assert_nothing_left(&m);
}

#[test]
fn sigkill_of_the_watchdog_and_the_engine_makes_the_guardian_kill_everything() {
    let dir = tempfile::tempdir().unwrap();
    let m = marker("killwatchengine");
    let (mut fs, workers, engine) = start_tree(&m, dir.path());
    let watchdog = watchdog_of(engine);
    sigkill(engine);
    sigkill(watchdog);
    let (status, _) = fs.finish(secs(8.0));
    // However the two deaths interleave, the guardian ends with a SIGKILL status.
    assert_eq!(status.code(), Some(128 + libc::SIGKILL), "{status:?}");
    assert!(fs.stderr().contains("killed"));
    for pid in workers {
        assert!(!alive(pid));
    }
    assert_nothing_left(&m);
}

#[test]
fn sigkill_of_the_watchdog_and_the_guardian_makes_the_engine_stop_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let m = marker("killwatchguard");
    let (mut fs, workers, engine) = start_tree(&m, dir.path());
    let watchdog = watchdog_of(engine);
    sigkill(watchdog);
    fs.signal(libc::SIGKILL);
    fs.wait_eof(secs(10.0));
    let (_, events) = fs.finish(secs(2.0));
    assert_stopped_gracefully(&events, &workers);
    wait_for("the engine to end", secs(5.0), || !alive(engine));
    assert_nothing_left(&m);
}
