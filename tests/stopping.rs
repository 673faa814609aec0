//! Stopping the tree: SIGTERM/SIGINT/SIGHUP to forkscope, escalation to SIGKILL after
//! `--stop-timeout`, setsid escapees, a group leader that exits while its child ignores
//! SIGTERM, and leftover descendants once every worker of a run has ended.

mod common;

use std::time::Instant;

use common::*;
use serde_json::Value;

fn signals_to(events: &[Value], pid: i32) -> Vec<Value> {
    events
        .iter()
        .filter(|e| kind(e) == "signal" && pid_of(e) == pid)
        .cloned()
        .collect()
}

fn t(event: &Value) -> f64 {
    event["t"].as_f64().expect("t")
}

/// The first line a process wrote, parsed as `WORD PID`; returns PID.
fn announced_pid(fs: &Forkscope, word: &str) -> i32 {
    let prefix = format!("{word} ");
    let event = fs.wait_event(&format!("the line `{word} PID`"), secs(5.0), |e| {
        kind(e) == "output" && e["line"].as_str().is_some_and(|l| l.starts_with(&prefix))
    });
    event["line"].as_str().unwrap()[prefix.len()..]
        .trim()
        .parse()
        .expect("a pid")
}

/// One worker running a shell script under `--stop-timeout 0.5`: returns forkscope, the
/// worker's pid, the pid the script announces as `WORD PID`, and the script's directory
/// (keep it alive as long as the worker runs).
fn start_script(
    marker_name: &str,
    file: &str,
    body: &str,
    word: &str,
) -> (Forkscope, i32, i32, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let worker = script(dir.path(), file, body);
    let m = marker(marker_name);
    let fs = Forkscope::start(
        &m,
        &[
            "run",
            "--headless",
            "--stop-timeout",
            "0.5",
            "--",
            worker.to_str().unwrap(),
        ],
    );
    let pid = pid_of(&fs.wait_kind("spawn", 1, secs(5.0))[0]);
    let announced = announced_pid(&fs, word);
    (fs, pid, announced, dir)
}

fn stop_on(signo: i32, name: &str) {
    let m = marker(&format!("stopon{name}"));
    // A stop timeout far above the polite stop's few milliseconds: waiting for it would
    // show as 30 s, and 20 s is the margin for a loaded machine.
    let mut fs = Forkscope::start(
        &m,
        &[
            "run",
            "-n",
            "3",
            "--headless",
            "--stop-timeout",
            "30",
            "--",
            "sleep",
            "30",
        ],
    );
    let spawns = fs.wait_kind("spawn", 3, secs(5.0));
    let asked = Instant::now();
    fs.signal(signo);
    let (code, events) = fs.finish_clean(secs(40.0));
    assert!(
        asked.elapsed() < secs(20.0),
        "a polite stop must not wait for the 30 s stop timeout ({:?})",
        asked.elapsed()
    );
    assert_eq!(code, 1, "workers killed by SIGTERM did not exit 0");
    let stopping = &of_kind(&events, "stopping")[0];
    assert!(
        stopping["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("SIG{name}")),
        "{stopping}"
    );
    for spawn in &spawns {
        let pid = pid_of(spawn);
        let sent = signals_to(&events, pid);
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0]["signal"], "SIGTERM");
        assert_eq!(sent[0]["reason"], "stop");
        assert_eq!(sent[0]["result"], "sent");
        let exit = exit_of(&events, pid).expect("exit");
        assert_eq!(exit["signal"], "SIGTERM");
        assert_eq!(exit["shell_status"], 143);
    }
    assert_eq!(events.last().unwrap()["status"], 1);
}

#[test]
fn sigterm_to_forkscope_stops_every_worker() {
    stop_on(libc::SIGTERM, "TERM");
}

#[test]
fn sigint_to_forkscope_stops_every_worker() {
    stop_on(libc::SIGINT, "INT");
}

#[test]
fn sighup_to_forkscope_stops_every_worker() {
    stop_on(libc::SIGHUP, "HUP");
}

#[test]
fn stop_signal_is_configurable() {
    let m = marker("stopsig");
    let mut fs = Forkscope::start(
        &m,
        &[
            "run",
            "--headless",
            "--stop-signal",
            "INT",
            "--",
            "sleep",
            "30",
        ],
    );
    let pid = pid_of(&fs.wait_kind("spawn", 1, secs(5.0))[0]);
    fs.signal(libc::SIGTERM);
    let (_, events) = fs.finish_clean(secs(8.0));
    assert_eq!(signals_to(&events, pid)[0]["signal"], "SIGINT");
    assert_eq!(exit_of(&events, pid).unwrap()["signal"], "SIGINT");
}

#[test]
fn worker_ignoring_sigterm_is_killed_after_the_stop_timeout() {
    let (mut fs, pid, child, _dir) = start_script(
        "stubborn",
        "stubborn.sh",
        // Not `wait`: the sweep may kill the child a moment before the worker, and `wait`
        // would then return and the worker exit 0 first (seen on a loaded machine).
        "trap '' TERM\nsleep 30 &\necho child $!\nwhile :; do sleep 1; done",
        "child",
    );
    fs.signal(libc::SIGTERM);
    let (code, events) = fs.finish_clean(secs(8.0));
    assert_eq!(code, 1);
    let to_worker = signals_to(&events, pid);
    assert_eq!(to_worker.len(), 2, "{to_worker:?}");
    assert_eq!(to_worker[0]["signal"], "SIGTERM");
    assert_eq!(to_worker[0]["reason"], "stop");
    assert_eq!(to_worker[1]["signal"], "SIGKILL");
    assert_eq!(to_worker[1]["reason"], "escalation");
    let waited = t(&to_worker[1]) - t(&to_worker[0]);
    // The 0.5 s stop timeout on the session's clock; 10 s is the margin for a loaded machine.
    assert!((0.45..10.0).contains(&waited), "escalation after {waited}s");
    // The child (ignoring SIGTERM too) is part of the sweep.
    let to_child = signals_to(&events, child);
    assert!(
        to_child
            .iter()
            .any(|s| s["signal"] == "SIGKILL" && s["reason"] == "escalation"),
        "{to_child:?}"
    );
    assert_eq!(exit_of(&events, pid).unwrap()["signal"], "SIGKILL");
    assert_eq!(exit_of(&events, child).unwrap()["signal"], "SIGKILL");
    assert!(
        events
            .iter()
            .any(|e| kind(e) == "notice" && e["message"].as_str().unwrap().contains("timeout")),
        "a notice says the stop timeout was reached"
    );
}

#[test]
fn grandchild_that_escaped_with_setsid_is_killed() {
    // worker -> sh -> setsid sleep: the grandchild has its own session and process group.
    let (mut fs, pid, escaped, _dir) = start_script(
        "setsid",
        "escape.sh",
        "trap '' TERM\nsh -c 'setsid sleep 30 & echo escaped $!; wait' &\nwait",
        "escaped",
    );
    wait_for(
        "the escapee to run sleep in its own session",
        secs(5.0),
        || read_stat(escaped).is_some_and(|s| s.comm == "sleep" && s.session == escaped),
    );
    let worker_stat = read_stat(pid).expect("worker alive");
    let escaped_stat = read_stat(escaped).expect("escapee alive");
    assert_ne!(escaped_stat.session, worker_stat.session);
    assert_ne!(escaped_stat.pgrp, worker_stat.pgrp);
    assert_ne!(escaped_stat.ppid, pid, "a grandchild, not a child");
    fs.signal(libc::SIGTERM);
    let (_, events) = fs.finish_clean(secs(8.0));
    assert!(!alive(escaped));
    assert!(
        signals_to(&events, escaped)
            .iter()
            .any(|s| s["signal"] == "SIGKILL" && s["reason"] == "escalation"),
        "{}",
        dump(&events)
    );
}

#[test]
fn escapee_that_outlives_its_worker_is_stopped_too() {
    // The worker dies on SIGTERM; its setsid child ignores it and comes back to forkscope
    // through the subreaper.
    let (mut fs, pid, escaped, _dir) = start_script(
        "escapeorphan",
        "leader.sh",
        "setsid sh -c 'trap \"\" TERM; echo escaped $$; exec sleep 30' &\nwait",
        "escaped",
    );
    wait_for("the escapee to exec sleep", secs(5.0), || {
        read_stat(escaped).is_some_and(|s| s.comm == "sleep")
    });
    fs.signal(libc::SIGTERM);
    let (_, events) = fs.finish_clean(secs(8.0));
    assert_eq!(exit_of(&events, pid).unwrap()["signal"], "SIGTERM");
    let exit = exit_of(&events, escaped).expect("the escapee's exit is reported");
    assert_eq!(exit["signal"], "SIGKILL");
    assert_eq!(exit["source"], "engine");
}

#[test]
fn group_leader_exiting_on_sigterm_does_not_shield_a_child_ignoring_it() {
    let (mut fs, pid, child, _dir) = start_script(
        "shield",
        "shield.sh",
        "sh -c 'trap \"\" TERM; echo child $$; exec sleep 30' &\nwait",
        "child",
    );
    wait_for("the child to exec sleep", secs(5.0), || {
        read_stat(child).is_some_and(|s| s.comm == "sleep" && s.pgrp == pid)
    });
    fs.signal(libc::SIGTERM);
    let (_, events) = fs.finish_clean(secs(30.0));
    // On the session's clock: the escalation comes at the 0.5 s stop timeout, not before,
    // and not at the end of the child's 30 s sleep (10 s is the margin for a loaded machine).
    let stopping = t(of_kind(&events, "stopping")[0]);
    let killed = t(signals_to(&events, child)
        .iter()
        .find(|s| s["signal"] == "SIGKILL")
        .expect("the child is killed"));
    assert!(
        (0.495..10.0).contains(&(killed - stopping)),
        "escalation {:.3} s after the stop began (5 ms for the rounding of `t`)",
        killed - stopping
    );
    assert_eq!(exit_of(&events, pid).unwrap()["signal"], "SIGTERM");
    let exit = exit_of(&events, child).expect("the child's exit is reported");
    assert_eq!(exit["signal"], "SIGKILL");
    let to_child = signals_to(&events, child);
    assert!(
        to_child
            .iter()
            .any(|s| s["signal"] == "SIGKILL" && s["reason"] == "escalation"),
        "{to_child:?}"
    );
}

#[test]
fn leftover_descendants_are_stopped_when_every_worker_ended() {
    let dir = tempfile::tempdir().unwrap();
    // The worker exits 0 at once, leaving two background processes: one that stops on
    // SIGTERM, one that ignores it.
    let worker = script(
        dir.path(),
        "leaves.sh",
        "sleep 30 &\necho polite $!\nsh -c 'trap \"\" TERM; echo rude $$; exec sleep 30' &\n\
         while ! grep -q '^Name:.*sleep' /proc/$!/status 2>/dev/null; do sleep 0.01; done\nexit 0",
    );
    let m = marker("leftover");
    let mut fs = Forkscope::start(
        &m,
        &[
            "run",
            "--headless",
            "--stop-timeout",
            "0.5",
            "--",
            worker.to_str().unwrap(),
        ],
    );
    let polite = announced_pid(&fs, "polite");
    let rude = announced_pid(&fs, "rude");
    let (code, events) = fs.finish_clean(secs(30.0));
    assert_eq!(code, 0, "the only worker exited 0");
    let pid = spawned_pids(&events)[0];
    assert_eq!(exit_of(&events, pid).unwrap()["code"], 0);
    let stopping = &of_kind(&events, "stopping")[0];
    assert!(
        stopping["reason"]
            .as_str()
            .unwrap()
            .contains("every worker ended"),
        "{stopping}"
    );
    let to_polite = signals_to(&events, polite);
    assert_eq!(to_polite[0]["signal"], "SIGTERM");
    assert_eq!(to_polite[0]["reason"], "leftover");
    assert_eq!(exit_of(&events, polite).unwrap()["signal"], "SIGTERM");
    let to_rude = signals_to(&events, rude);
    assert_eq!(to_rude[0]["reason"], "leftover");
    assert_eq!(to_rude.last().unwrap()["signal"], "SIGKILL");
    assert_eq!(to_rude.last().unwrap()["reason"], "escalation");
    assert_eq!(exit_of(&events, rude).unwrap()["signal"], "SIGKILL");
    // On the session's clock: the leftovers are escalated at the 0.5 s stop timeout (5 ms
    // for the rounding of `t`), not at the end of their 30 s sleeps (10 s is the margin for
    // a loaded machine).
    let escalated = t(to_rude.last().unwrap()) - t(stopping);
    assert!(
        (0.495..10.0).contains(&escalated),
        "escalation {escalated:.3} s after the stop began"
    );
    assert_eq!(events.last().unwrap()["status"], 0);
}

#[test]
fn reader_going_away_stops_the_tree() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let m = marker("epipe");
    let _cleanup = Cleanup(m.clone());
    let mut child = Command::new(bin())
        .args(["run", "-n", "2", "--headless", "--", "sh", "-c"])
        .arg("i=0; while [ $i -lt 300 ]; do echo tick $i; i=$((i+1)); sleep 0.1; done")
        .env(MARKER_VAR, &m)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start forkscope");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    reader.read_line(&mut first).expect("first line");
    assert!(first.contains("\"kind\":\"session\""), "{first}");
    wait_for("both workers to run", secs(5.0), || {
        marked_processes(&m)
            .iter()
            .filter(|(_, what)| what.starts_with("sh "))
            .count()
            >= 2
    });
    let closed = Instant::now();
    drop(reader);
    // The next event forkscope writes fails with EPIPE: it stops the tree as if told to quit.
    let mut status = None;
    wait_for(
        "forkscope to exit after its reader left",
        secs(30.0),
        || {
            status = child.try_wait().expect("try_wait");
            status.is_some()
        },
    );
    // The workers' ticks run for 30 s; a stop on EPIPE takes well under a second, and 20 s
    // is the margin for a loaded machine.
    assert!(closed.elapsed() < secs(20.0), "took {:?}", closed.elapsed());
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "workers were stopped"
    );
    assert_nothing_left(&m);
}
