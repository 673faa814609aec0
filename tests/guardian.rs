//! forkscope being SIGKILLed leaves nothing running: the pid the user starts is the guardian,
//! its only child is the engine (the pid of the `session` event).
//! (a) SIGKILL the engine: the guardian kills every worker and exits.
//! (b) SIGKILL the guardian: the engine gets SIGTERM (PDEATHSIG) and stops the tree.

mod common;

use common::*;

fn start_tree(m: &str, dir: &std::path::Path) -> (Forkscope, Vec<i32>, i32) {
    // Three workers, each with a setsid grandchild that ignores SIGTERM.
    let worker = script(
        dir,
        "tree.sh",
        "setsid sh -c 'trap \"\" TERM; echo escaped $$; exec sleep 30' &\nsleep 30",
    );
    let fs = Forkscope::start(
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
    assert_ne!(engine, fs.pid(), "the engine is a child of the guardian");
    assert_eq!(read_stat(engine).expect("engine").ppid, fs.pid());
    for &pid in &workers {
        assert_eq!(read_stat(pid).expect("worker").ppid, engine);
    }
    assert!(marked_processes(m).len() >= 2 + 3 + 3);
    (fs, workers, engine)
}

#[test]
fn sigkill_of_the_engine_makes_the_guardian_kill_everything() {
    let dir = tempfile::tempdir().unwrap();
    let m = marker("killengine");
    let (mut fs, workers, engine) = start_tree(&m, dir.path());
    // SAFETY: kill(2) on the engine, a child of the forkscope this test started.
    assert_eq!(unsafe { libc::kill(engine, libc::SIGKILL) }, 0);
    let (status, _) = fs.finish(secs(8.0));
    assert_eq!(status.code(), Some(128 + libc::SIGKILL), "{status:?}");
    let stderr = fs.stderr();
    assert!(stderr.contains("engine died by SIGKILL"), "{stderr}");
    assert!(stderr.contains("guardian killed"), "{stderr}");
    for pid in workers {
        assert!(!alive(pid));
    }
    assert_nothing_left(&m);
}

#[test]
fn sigkill_of_the_guardian_makes_the_engine_stop_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let m = marker("killguardian");
    let (mut fs, workers, engine) = start_tree(&m, dir.path());
    fs.signal(libc::SIGKILL);
    // The engine (re-parented elsewhere) still holds our stdout pipe: its events go on.
    fs.wait_eof(secs(8.0));
    let (status, events) = fs.finish(secs(2.0));
    assert_eq!(status.code(), None, "the guardian was killed");
    let stopping = &of_kind(&events, "stopping")[0];
    assert!(
        stopping["reason"].as_str().unwrap().contains("SIGTERM"),
        "PDEATHSIG delivers SIGTERM: {stopping}"
    );
    for &pid in &workers {
        assert_eq!(
            exit_of(&events, pid).expect("worker exit")["signal"],
            "SIGTERM"
        );
    }
    assert_eq!(kind(events.last().unwrap()), "end");
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
