//! Reload of `forkscope up` (issue 13) through the real binary: SIGHUP and `ctl reload` add,
//! remove, resize and restart changed pools while unchanged ones keep their pids; an invalid
//! file is refused with FILE:LINE:COL and nothing changes; reloads under load lose no
//! process, leave no orphan and never run one worker index twice. Also `depends_on`
//! (launch and stop order) and `ready` (a file, a command, a TCP port).

mod common;

use std::collections::{HashMap, HashSet};

use common::socket::SocketDir;
use common::*;
use serde_json::Value;

fn pool(name: &str, workers: u32, body: &str) -> String {
    format!(
        "[[pool]]\nname = \"{name}\"\nshell = true\ncommand = \"{body}\"\nworkers = {workers}\nrestart = \"always\"\nstop_timeout = 2\n\n"
    )
}

/// Running pids by (pool, worker), folded from spawn and exit events.
fn running(events: &[Value]) -> HashMap<(String, u64), i32> {
    let mut slots = HashMap::new();
    let mut by_pid = HashMap::new();
    for e in events {
        match kind(e) {
            "spawn" => {
                let slot = (
                    e["pool"].as_str().expect("pool").to_string(),
                    e["worker"].as_u64().expect("worker"),
                );
                let pid = pid_of(e);
                // No worker index runs twice.
                assert!(
                    !slots.contains_key(&slot),
                    "{slot:?} spawned while running: {}",
                    dump(events)
                );
                slots.insert(slot.clone(), pid);
                by_pid.insert(pid, slot);
            }
            "exit" => {
                if let Some(slot) = by_pid.remove(&pid_of(e)) {
                    slots.remove(&slot);
                }
            }
            _ => {}
        }
    }
    slots
}

fn reloads(events: &[Value]) -> Vec<&Value> {
    of_kind(events, "reload")
}

const SLEEPER: &str = "while :; do sleep 0.2; done";

#[test]
fn sighup_adds_removes_resizes_and_restarts_changed_pools() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &[
            pool("keep", 2, SLEEPER),
            pool("gone", 1, SLEEPER),
            pool("grow", 1, SLEEPER),
            pool("shrink", 3, SLEEPER),
            pool("edit", 1, SLEEPER),
        ]
        .concat(),
    );
    let m = marker("reloadhup");
    let mut fs = Forkscope::start(&m, &["up", "-f", &config, "--headless"]);
    let before = fs.wait_until("8 workers", secs(10.0), |e| running(e).len() == 8);
    let before = running(&before);
    write_config(
        dir.path(),
        &[
            pool("keep", 2, SLEEPER),
            pool("grow", 3, SLEEPER),
            pool("shrink", 1, SLEEPER),
            pool("edit", 1, "while :; do sleep 0.3; done"),
            pool("new", 2, SLEEPER),
        ]
        .concat(),
    );
    fs.signal(libc::SIGHUP);
    let events = fs.wait_until("the new state", secs(15.0), |e| {
        let now = running(e);
        !reloads(e).is_empty()
            && now.len() == 9
            && now.get(&("edit".into(), 0)) != before.get(&("edit".into(), 0))
            && !now.keys().any(|(p, _)| p == "gone")
    });
    let reload = reloads(&events)[0];
    assert_eq!(reload["ok"], true, "{reload}");
    assert_eq!(reload["added"], serde_json::json!(["new"]));
    assert_eq!(reload["removed"], serde_json::json!(["gone"]));
    assert_eq!(reload["changed"], serde_json::json!(["edit"]));
    assert_eq!(reload["resized"], serde_json::json!(["grow", "shrink"]));
    let now = running(&events);
    for index in 0..2 {
        let slot = ("keep".to_string(), index);
        assert_eq!(now.get(&slot), before.get(&slot), "keep untouched");
    }
    assert_eq!(
        now.get(&("grow".into(), 0)),
        before.get(&("grow".into(), 0))
    );
    assert_eq!(
        now.get(&("shrink".into(), 0)),
        before.get(&("shrink".into(), 0))
    );
    let mut shrink: Vec<u64> = now
        .keys()
        .filter(|(p, _)| p == "shrink")
        .map(|(_, i)| *i)
        .collect();
    shrink.sort();
    assert_eq!(shrink, vec![0]);
    // Nothing restarted that was not changed: no `keep` pid ended.
    let keep_pids: HashSet<i32> = before
        .iter()
        .filter(|((p, _), _)| p == "keep")
        .map(|(_, pid)| *pid)
        .collect();
    assert!(
        !of_kind(&events, "exit")
            .iter()
            .any(|e| keep_pids.contains(&pid_of(e))),
        "{}",
        dump(&events)
    );
    fs.signal(libc::SIGTERM);
    let (_, events) = fs.finish_clean(secs(20.0));
    assert_every_spawn_exited(&events);
}

#[test]
fn an_invalid_file_is_refused_and_changes_nothing() {
    let sockets = SocketDir::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &pool("only", 2, SLEEPER));
    let m = marker("reloadbad");
    let mut fs = sockets.start(&m, &["up", "-f", &config, "--headless"]);
    let before = fs.wait_until("2 workers", secs(10.0), |e| running(e).len() == 2);
    sockets.wait_socket(&fs);
    write_config(
        dir.path(),
        &format!("{}workers = \"many\"\n", pool("only", 2, SLEEPER)),
    );
    let out = sockets.run(&["ctl", "reload"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("forkscope.toml:9:"),
        "FILE:LINE:COL in {stderr}"
    );
    let events = fs.wait_until("the refused reload", secs(5.0), |e| !reloads(e).is_empty());
    let reload = reloads(&events)[0];
    assert_eq!(reload["ok"], false);
    assert!(
        reload["error"].as_str().unwrap_or("").contains(":9:"),
        "{reload}"
    );
    assert_eq!(running(&events), running(&before), "pools untouched");
    // A good file afterwards is applied, and ctl says what changed.
    write_config(dir.path(), &pool("only", 3, SLEEPER));
    let out = sockets.ctl(&["reload"]);
    assert!(out.contains("resized only"), "{out}");
    fs.wait_until("3 workers", secs(10.0), |e| running(e).len() == 3);
    fs.signal(libc::SIGTERM);
    let (_, events) = fs.finish_clean(secs(20.0));
    assert_every_spawn_exited(&events);
}

/// Every process seen (spawned or forked) has exactly one exit.
fn assert_every_spawn_exited(events: &[Value]) {
    let mut exits: HashMap<i32, usize> = HashMap::new();
    for e in of_kind(events, "exit") {
        *exits.entry(pid_of(e)).or_default() += 1;
    }
    for e in events
        .iter()
        .filter(|e| kind(e) == "spawn" || kind(e) == "fork")
    {
        let pid = pid_of(e);
        assert!(
            exits.get(&pid).copied().unwrap_or(0) >= 1,
            "pid {pid} has no exit: {}",
            dump(events)
        );
    }
    for e in of_kind(events, "spawn") {
        assert_eq!(exits.get(&pid_of(e)), Some(&1), "{}", dump(events));
    }
}

#[test]
fn reloads_under_load_lose_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Workers that fork children and exit often (restart = always).
    let churn = "for i in 1 2 3; do sleep 0.05 & done; wait; exit 1";
    let sizes = [(2, 3), (4, 1), (1, 4), (3, 2), (2, 2)];
    let file = |n: usize| {
        let (a, b) = sizes[n % sizes.len()];
        let mut text = pool("churn", a, churn);
        text += &pool("steady", b, SLEEPER);
        if n % 2 == 1 {
            text += &pool("extra", 1, churn);
        }
        text
    };
    let config = write_config(dir.path(), &file(0));
    let m = marker("reloadload");
    let mut fs = Forkscope::start(&m, &["up", "-f", &config, "--headless"]);
    fs.wait_until("workers", secs(10.0), |e| running(e).len() >= 4);
    for n in 1..=6 {
        write_config(dir.path(), &file(n));
        fs.signal(libc::SIGHUP);
        fs.wait_until("the reload", secs(10.0), |e| reloads(e).len() >= n);
    }
    let (a, b) = sizes[6 % sizes.len()];
    fs.wait_until("the last state", secs(15.0), |e| {
        let now = running(e);
        let count = |name: &str| now.keys().filter(|(p, _)| p == name).count();
        count("steady") == b as usize
            && count("extra") == 0
            && now
                .keys()
                .filter(|(p, _)| p == "churn")
                .all(|(_, i)| *i < a as u64)
    });
    fs.signal(libc::SIGTERM);
    let (_, events) = fs.finish_clean(secs(30.0));
    assert!(reloads(&events).iter().all(|r| r["ok"] == true));
    // `running` asserts no worker index ran twice at once; then every pid ended.
    running(&events);
    assert_every_spawn_exited(&events);
}

#[test]
fn depends_on_orders_start_and_stop_and_ready_gates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flag = dir.path().join("db.ready");
    let config = write_config(
        dir.path(),
        &format!(
            "[[pool]]\nname = \"web\"\ncommand = [\"sh\", \"-c\", \"{SLEEPER}\"]\ndepends_on = [\"db\"]\n\n\
             [[pool]]\nname = \"db\"\ncommand = [\"sh\", \"-c\", \"sleep 0.3; touch db.ready; {SLEEPER}\"]\ncwd = \".\"\n\
             ready = {{ file = \"db.ready\", interval = \"50ms\", timeout = \"10s\" }}\n"
        ),
    );
    let m = marker("dependson");
    let mut fs = Forkscope::start(&m, &["up", "-f", &config, "--headless"]);
    let events = fs.wait_until("web started", secs(10.0), |e| {
        of_kind(e, "spawn").iter().any(|s| s["pool"] == "web")
    });
    assert!(flag.exists());
    let at = |events: &[Value], k: &str, pool: &str| {
        events
            .iter()
            .position(|e| kind(e) == k && e["pool"] == pool)
            .unwrap_or_else(|| panic!("no {k} of {pool}: {}", dump(events)))
    };
    let ready = at(&events, "ready", "db");
    assert_eq!(events[ready]["ok"], true);
    assert!(at(&events, "spawn", "db") < ready && ready < at(&events, "spawn", "web"));
    fs.signal(libc::SIGTERM);
    let (_, events) = fs.finish_clean(secs(20.0));
    // Stop in reverse order: web's exit before db's stop signal.
    let pid = |pool: &str| pid_of(&events[at(&events, "spawn", pool)]);
    let (web, db) = (pid("web"), pid("db"));
    let web_exit = events
        .iter()
        .position(|e| kind(e) == "exit" && pid_of(e) == web)
        .expect("web exit");
    let db_signal = events
        .iter()
        .position(|e| kind(e) == "signal" && pid_of(e) == db)
        .expect("db signal");
    assert!(web_exit < db_signal, "{}", dump(&events));
}

#[test]
fn a_ready_check_that_times_out_keeps_dependents_unstarted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &format!(
            "[[pool]]\nname = \"api\"\ncommand = [\"sh\", \"-c\", \"{SLEEPER}\"]\n\
             ready = {{ command = \"exit 3\", timeout = \"0.5s\", interval = \"100ms\" }}\n\n\
             [[pool]]\nname = \"front\"\ncommand = [\"sh\", \"-c\", \"{SLEEPER}\"]\ndepends_on = [\"api\"]\n"
        ),
    );
    let m = marker("readyfail");
    let mut fs = Forkscope::start(&m, &["up", "-f", &config, "--headless"]);
    let ready = fs.wait_event("the ready event", secs(10.0), |e| kind(e) == "ready");
    assert_eq!(ready["ok"], false, "{ready}");
    assert_eq!(ready["check"], "command \"exit 3\"");
    assert!(
        ready["error"].as_str().unwrap_or("").contains("exited 3"),
        "{ready}"
    );
    let events = fs.wait_until("the notice", secs(5.0), |e| {
        of_kind(e, "notice").iter().any(|n| {
            n["message"]
                .as_str()
                .unwrap_or("")
                .contains("not started: front")
        })
    });
    fs.signal(libc::SIGTERM);
    let (_, events_end) = fs.finish_clean(secs(20.0));
    assert!(
        !of_kind(&events_end, "spawn")
            .iter()
            .any(|s| s["pool"] == "front"),
        "{}",
        dump(&events)
    );
    assert_every_spawn_exited(&events_end);
}

#[test]
fn a_tcp_ready_check_waits_for_the_port_to_accept() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A free port, picked here and released: the worker binds it 0.3 s after it starts.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let server = format!(
        "import socket, time\\n\
         time.sleep(0.3)\\n\
         s = socket.socket()\\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\\n\
         s.bind(('127.0.0.1', {port}))\\n\
         s.listen(16)\\n\
         time.sleep(600)\\n"
    );
    let config = write_config(
        dir.path(),
        &format!(
            "[[pool]]\nname = \"front\"\ncommand = [\"sleep\", \"600\"]\ndepends_on = [\"api\"]\n\n\
             [[pool]]\nname = \"api\"\ncommand = [\"{}\", \"-c\", \"{server}\"]\n\
             ready = {{ tcp = \"127.0.0.1:{port}\", interval = \"20ms\", timeout = \"10s\" }}\n",
            python()
        ),
    );
    let m = marker("readytcp");
    let mut fs = Forkscope::start(&m, &["up", "-f", &config, "--headless"]);
    let events = fs.wait_until("front started", secs(10.0), |e| {
        of_kind(e, "spawn").iter().any(|s| s["pool"] == "front")
    });
    let at = |k: &str, pool: &str| {
        events
            .iter()
            .position(|e| kind(e) == k && e["pool"] == pool)
            .unwrap_or_else(|| panic!("no {k} of {pool}: {}", dump(&events)))
    };
    let (spawned, ready) = (at("spawn", "api"), at("ready", "api"));
    assert!(spawned < ready && ready < at("spawn", "front"));
    let ready = &events[ready];
    assert_eq!(ready["ok"], true, "{ready}");
    assert_eq!(ready["check"], format!("tcp 127.0.0.1:{port}"));
    // Refused until the worker listened, 0.3 s after its start.
    let waited = ready["t"].as_f64().expect("t") - events[spawned]["t"].as_f64().expect("t");
    assert!(waited >= 0.3, "ready after {waited} s: {ready}");
    assert!(
        ready["after_ms"].as_u64().is_some_and(|ms| ms >= 300),
        "{ready}"
    );
    fs.signal(libc::SIGTERM);
    let (_, events) = fs.finish_clean(secs(20.0));
    assert_every_spawn_exited(&events);
}
