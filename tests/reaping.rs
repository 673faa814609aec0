//! Reaping: orphans re-parented to forkscope (a child subreaper) are reaped and reported with
//! their exact status, even by the hundred; a fork-happy worker is handled without a panic
//! or a leak; an idle forkscope does not spin; a real-time signal's victim is reaped too.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

#[test]
fn orphans_are_reaped_with_their_exact_status() {
    let dir = tempfile::tempdir().unwrap();
    // The middle process starts two grandchildren and exits at once, so they are orphaned and
    // come back to forkscope. The worker outlives them (else they would be stopped as
    // leftovers) and then exits 0.
    let worker = script(
        dir.path(),
        "orphans.sh",
        r#"pids=$(sh -c 'sh -c "sleep 0.3; exit 5" >/dev/null 2>&1 & echo $!
sh -c "sleep 0.3; kill -KILL \$\$" >/dev/null 2>&1 & echo $!')
set -- $pids
echo five $1
echo killed $2
i=0
while [ $i -lt 500 ] && { kill -0 $1 2>/dev/null || kill -0 $2 2>/dev/null; }; do
  sleep 0.01; i=$((i+1))
done"#,
    );
    let m = marker("orphans");
    let mut fs = Forkscope::start(&m, &["run", "--headless", "--", worker.to_str().unwrap()]);
    let pid_after = |word: &str, events: &[serde_json::Value]| -> i32 {
        events
            .iter()
            .find_map(|e| {
                e["line"]
                    .as_str()
                    .and_then(|l| l.strip_prefix(&format!("{word} ")))
                    .map(|p| p.trim().parse().expect("pid"))
            })
            .expect("announced pid")
    };
    let (code, events) = fs.finish_clean(secs(8.0));
    assert_eq!(code, 0, "{}", dump(&events));
    let engine = fs.engine_pid();
    let five = pid_after("five", &events);
    let killed = pid_after("killed", &events);
    let exit = exit_of(&events, five).expect("the orphan's exit");
    assert_eq!(exit["code"], 5);
    assert_eq!(exit["signal"], serde_json::Value::Null);
    assert_eq!(exit["source"], "engine");
    assert!(exit.get("pool").is_none(), "not a worker: {exit}");
    let exit = exit_of(&events, killed).expect("the orphan's exit");
    assert_eq!(exit["signal"], "SIGKILL");
    assert_eq!(exit["python_exitcode"], -9);
    assert_eq!(exit["shell_status"], 137);
    assert_eq!(exit["source"], "engine");
    // Nothing was stopped: the orphans ended on their own.
    assert!(of_kind(&events, "signal").is_empty(), "{}", dump(&events));
    let _ = engine;
}

#[test]
fn a_worker_killed_by_a_real_time_signal_is_reaped() {
    // Signal 34 is SIGRTMIN with glibc. nix's `waitid` cannot decode a real-time signal: a
    // peek through it took this zombie for no child at all, so it was never reaped and the
    // session never ended.
    let dir = tempfile::tempdir().unwrap();
    let worker = script(dir.path(), "rt.sh", "kill -34 $$");
    let m = marker("rtsignal");
    let mut fs = Forkscope::start(&m, &["run", "--headless", "--", worker.to_str().unwrap()]);
    let (code, events) = fs.finish_clean(secs(8.0));
    assert_eq!(code, 1, "{}", dump(&events));
    let pid = spawned_pids(&events)[0];
    let exit = exit_of(&events, pid).expect("the worker's exit");
    assert_eq!(exit["shell_status"], 128 + 34, "{exit}");
    assert_eq!(exit["source"], "engine");
}

/// Exit events of processes that were not workers, reaped by the engine.
fn orphan_exits(events: &[Value]) -> Vec<&Value> {
    of_kind(events, "exit")
        .into_iter()
        .filter(|e| e.get("pool").is_none() && e["source"] == "engine")
        .collect()
}

/// Every reported exit of a non-worker has an earlier `fork` event for the same pid.
fn assert_births_before_deaths(events: &[Value]) {
    for (i, exit) in events.iter().enumerate() {
        if kind(exit) == "exit" && exit.get("pool").is_none() {
            let pid = pid_of(exit);
            assert!(
                events[..i]
                    .iter()
                    .any(|e| kind(e) == "fork" && pid_of(e) == pid),
                "exit without a fork: {exit}"
            );
        }
    }
}

#[test]
fn hundreds_of_orphans_are_each_reported_exactly() {
    // A subshell starts 200 children that block reading a FIFO, and leaves: all 200 are
    // re-parented to forkscope. Then the worker closes the FIFO's last writer and each child
    // exits with its own code (i % 7) at about the same moment: forkscope must reap and
    // report each one.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("go");
    let worker = script(
        dir.path(),
        "orphans.sh",
        &format!(
            "mkfifo {fifo:?}\n\
             exec 3<>{fifo:?} 4<{fifo:?}\n\
             (exec 3>&-; i=0; while [ $i -lt 200 ]; do \
             (exec 3>&-; read x <&4; exit $((i % 7))) & i=$((i+1)); done)\n\
             echo orphaned\n\
             exec 3>&- 4<&-\n\
             exec sleep 30"
        ),
    );
    let m = marker("orphanstorm");
    let mut fs = Forkscope::start(&m, &["run", "--headless", "--", worker.to_str().unwrap()]);
    fs.wait_until("200 orphan exits", secs(8.0), |events| {
        orphan_exits(events).len() >= 200
    });
    fs.signal(libc::SIGTERM);
    let (_, events) = fs.finish_clean(secs(8.0));
    let mut by_code: BTreeMap<i64, usize> = BTreeMap::new();
    for exit in orphan_exits(&events) {
        *by_code
            .entry(exit["code"].as_i64().expect("exited, not killed"))
            .or_default() += 1;
    }
    let mut expected: BTreeMap<i64, usize> = BTreeMap::new();
    for i in 0..200 {
        *expected.entry(i % 7).or_default() += 1;
    }
    assert_eq!(by_code, expected, "{}", dump(&events));
    assert_births_before_deaths(&events);
}

#[test]
fn fork_storm_is_handled() {
    // 4 workers, each forking 200 short-lived children as fast as it can, twice over:
    // once waited for by the worker, once left behind to forkscope.
    let m = marker("forkstorm");
    let mut fs = Forkscope::start(
        &m,
        &[
            "run",
            "-n",
            "4",
            "--headless",
            "--",
            "sh",
            "-c",
            "i=0; while [ $i -lt 200 ]; do (:) & i=$((i+1)); done; wait; \
             (i=0; while [ $i -lt 200 ]; do (sleep 0.05) & i=$((i+1)); done); \
             sleep 0.5; echo done",
        ],
    );
    // The program's work takes about a second; a reaping that hangs shows as this 60 s
    // deadline (the margin for a loaded machine). Speed is measured by the benches.
    let (code, events) = fs.finish_clean(secs(60.0));
    assert_eq!(code, 0, "{}", dump(&events));
    let stderr = fs.stderr();
    assert!(!stderr.contains("panicked"), "{stderr}");
    for pid in spawned_pids(&events) {
        assert_eq!(lines_of(&events, pid, "stdout"), vec!["done"]);
        assert_eq!(exit_of(&events, pid).unwrap()["code"], 0);
    }
    // The shell reaps the children that ended before it left; the others came back to
    // forkscope and were reaped with an exact status.
    let orphans = orphan_exits(&events);
    assert!(!orphans.is_empty());
    assert!(
        orphans
            .iter()
            .all(|e| e["code"] == 0 || e["signal"] == "SIGTERM")
    );
    assert_births_before_deaths(&events);
}

#[test]
fn idle_forkscope_does_not_spin() {
    let m = marker("idle");
    let mut fs = Forkscope::start(&m, &["run", "-n", "2", "--headless", "--", "sleep", "5"]);
    fs.wait_kind("spawn", 2, secs(5.0));
    let engine = fs.engine_pid();
    let guardian = fs.pid();
    let ticks = |pid: i32| read_stat(pid).map(|s| s.cpu_ticks).expect("stat");
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let watchdog = read_stat(engine).expect("engine").ppid;
    let (e0, g0, w0, t0) = (
        ticks(engine),
        ticks(guardian),
        ticks(watchdog),
        Instant::now(),
    );
    std::thread::sleep(Duration::from_secs(2)); // measuring CPU over time: a sleep is the point
    let (e1, g1, w1) = (ticks(engine), ticks(guardian), ticks(watchdog));
    let dt = t0.elapsed().as_secs_f64();
    let engine_cpu = (e1 - e0) as f64 / hz / dt;
    let guardian_cpu = (g1 - g0) as f64 / hz / dt;
    let watchdog_cpu = (w1 - w0) as f64 / hz / dt;
    eprintln!(
        "idle CPU: engine {:.2}%, guardian {:.2}%, watchdog {:.2}%",
        engine_cpu * 100.0,
        guardian_cpu * 100.0,
        watchdog_cpu * 100.0
    );
    assert!(
        watchdog_cpu < 0.01,
        "watchdog uses {:.1}% of a core",
        watchdog_cpu * 100.0
    );
    assert!(
        engine_cpu < 0.05,
        "engine uses {:.1}% of a core",
        engine_cpu * 100.0
    );
    assert!(
        guardian_cpu < 0.01,
        "guardian uses {:.1}% of a core",
        guardian_cpu * 100.0
    );
    fs.signal(libc::SIGTERM);
    fs.finish_clean(secs(8.0));
}

#[test]
fn after_end_the_state_has_nothing_alive() {
    // The worker's child `sleep 1.3` is seen by the 1 s /proc scan (a `fork` event) and reaped
    // by the worker itself, so forkscope never learns how it ended; `end` must still leave
    // nothing alive in the state built from the stream.
    let (code, events) = run_clean(
        "stateend",
        &[
            "run",
            "--headless",
            "--",
            "sh",
            "-c",
            "sleep 1.3; echo done",
        ],
        secs(8.0),
    );
    assert_eq!(code, 0);
    let mut state = forkscope::model::State::new(100);
    for event in &events {
        let typed: forkscope::model::Event = serde_json::from_value(event.clone()).unwrap();
        forkscope::model::update(&mut state, &typed);
    }
    assert_eq!(state.ended, Some(0));
    assert_eq!(state.live_count(), 0, "{}", dump(&events));
    let forked = of_kind(&events, "fork");
    if let Some(fork) = forked.first() {
        // The usual case: the scan saw the sleep; its end is known, its status is not.
        let proc = state.find_pid(pid_of(fork)).expect("the sleep's record");
        assert!(proc.ended.is_some());
    }
}
