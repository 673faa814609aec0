//! `forkscope ctl` and `forkscope barrier wait`: requests to a running session's control
//! socket, printed for people (or as JSON with `--json`). Exit statuses: 0 done, 1 the
//! session refused or is unreachable, 2 bad usage (an unknown pool or worker), 3 a barrier
//! broke.

use std::io::Write;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::client::{Client, ClientError, find_socket, live_sessions};
use crate::model::Action;

/// What `ctl` was asked (built from the command line by `cli.rs`).
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Ls,
    Status,
    /// `PID`, `POOL` (every running worker) or `POOL:WORKER`, and a signal number.
    Signal {
        target: String,
        signal: i32,
    },
    Restart {
        target: String,
    },
    Scale {
        pool: String,
        size: u32,
    },
    Stop,
    Reload,
    Events {
        follow: bool,
        from_start: bool,
    },
    Inspect,
    BarrierAbort {
        name: String,
    },
    BarrierReset {
        name: String,
    },
    BarrierStatus {
        name: String,
    },
}

/// Runs one `ctl` request; returns the exit status.
pub fn run(socket: Option<PathBuf>, json_out: bool, request: Request) -> i32 {
    match execute(socket, json_out, request) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("forkscope ctl: {err}");
            1
        }
    }
}

fn print(json_out: bool, value: &Value, human: impl FnOnce(&Value) -> String) {
    if json_out {
        println!("{value}");
    } else {
        print!("{}", human(value));
    }
}

fn execute(socket: Option<PathBuf>, json_out: bool, request: Request) -> Result<i32, ClientError> {
    if request == Request::Ls {
        let sessions: Vec<Value> = live_sessions().into_iter().map(|s| s.hello).collect();
        print(json_out, &Value::from(sessions), |list| {
            let mut text = String::new();
            for s in list.as_array().into_iter().flatten() {
                text += &format!(
                    "{:>8}  {}  {}\n",
                    s["session_pid"],
                    s["socket"].as_str().unwrap_or(""),
                    s["title"].as_str().unwrap_or("")
                );
            }
            text
        });
        return Ok(0);
    }
    let path = find_socket(socket.as_deref())?;
    let mut client = Client::connect(&path)?;
    match request {
        Request::Ls => Ok(0),
        Request::Status => {
            let status = client.request(json!({"op": "status"}))?;
            print(json_out, &status, human_status);
            Ok(0)
        }
        Request::Inspect => {
            let doc = client.request(json!({"op": "inspect"}))?;
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            Ok(0)
        }
        Request::Signal { target, signal } => {
            let status = client.request(json!({"op": "status"}))?;
            let Some(pids) = resolve(&status, &target) else {
                eprintln!(
                    "forkscope ctl: no running process matches {target:?} (PID, POOL or POOL:WORKER)"
                );
                return Ok(2);
            };
            for (pid, start_time) in pids {
                act(
                    &mut client,
                    Action::Signal {
                        pid,
                        signal,
                        start_time,
                    },
                )?;
                if !json_out {
                    println!(
                        "{} -> pid {pid}",
                        crate::model::signals::signal_name(signal)
                    );
                }
            }
            Ok(0)
        }
        Request::Restart { target } => {
            let status = client.request(json!({"op": "status"}))?;
            let Some(slots) = slots(&status, &target) else {
                eprintln!("forkscope ctl: no pool or worker {target:?} (POOL or POOL:WORKER)");
                return Ok(2);
            };
            for (pool, worker) in slots {
                act(&mut client, Action::Restart { pool, worker })?;
            }
            Ok(0)
        }
        Request::Scale { pool, size } => {
            act(&mut client, Action::Scale { pool, size })?;
            Ok(0)
        }
        Request::Stop => {
            act(&mut client, Action::Quit)?;
            Ok(0)
        }
        Request::Reload => reload(&mut client, json_out),
        Request::Events { follow, from_start } => events(&mut client, follow, from_start),
        Request::BarrierAbort { name } => barrier_op(&mut client, json_out, "barrier_abort", name),
        Request::BarrierReset { name } => barrier_op(&mut client, json_out, "barrier_reset", name),
        Request::BarrierStatus { name } => {
            barrier_op(&mut client, json_out, "barrier_status", name)
        }
    }
}

/// How long `ctl reload` waits for the session's answer.
const RELOAD_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Asks for a reload and waits for its `reload` event: 0 when applied, 1 when refused.
fn reload(client: &mut Client, json_out: bool) -> Result<i32, ClientError> {
    // Subscribed first, so the answer cannot come before we listen.
    let sub = client.send(json!({"op": "subscribe", "from_start": false}))?;
    super::client::outcome(client.read()?)?;
    client.set_timeout(Some(RELOAD_WAIT))?;
    let asked = client.send(json!({"op": "action", "action": Action::Reload}))?;
    loop {
        let line = client.read()?;
        if line["id"] == json!(asked) {
            super::client::outcome(line)?;
            continue;
        }
        if line["id"] != json!(sub) {
            continue;
        }
        let Some(event) = line.get("event") else {
            super::client::outcome(line)?;
            continue;
        };
        if event["kind"] == "end" {
            eprintln!("forkscope ctl: the session ended before reloading");
            return Ok(1);
        }
        if event["kind"] != "reload" {
            continue;
        }
        if event["ok"] == json!(true) {
            print(json_out, event, |e| {
                let list = |key: &str| {
                    let names: Vec<&str> = e[key]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    if names.is_empty() {
                        "-".to_string()
                    } else {
                        names.join(", ")
                    }
                };
                format!(
                    "reloaded: added {}; removed {}; changed {}; resized {}\n",
                    list("added"),
                    list("removed"),
                    list("changed"),
                    list("resized")
                )
            });
            return Ok(0);
        }
        if json_out {
            println!("{event}");
        }
        eprintln!(
            "forkscope ctl: reload refused: {}",
            crate::model::printable::lines(event["error"].as_str().unwrap_or("unknown error"))
        );
        return Ok(1);
    }
}

fn act(client: &mut Client, action: Action) -> Result<Value, ClientError> {
    client.request(json!({"op": "action", "action": action}))
}

fn barrier_op(
    client: &mut Client,
    json_out: bool,
    op: &str,
    name: String,
) -> Result<i32, ClientError> {
    let result = client.request(json!({"op": op, "name": name}))?;
    print(json_out, &result, |v| format!("{v}\n"));
    Ok(0)
}

/// Prints events as `--headless` does: from the ring's start, and/or live with `follow`.
fn events(client: &mut Client, follow: bool, from_start: bool) -> Result<i32, ClientError> {
    let id = client.send(json!({"op": "subscribe", "from_start": from_start || !follow}))?;
    let reply = super::client::outcome(client.read()?)?;
    let mut backlog = reply["backlog"].as_u64().unwrap_or(0);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if !follow && backlog == 0 {
        return Ok(0);
    }
    loop {
        let mut line = client.read()?;
        if line["id"] != json!(id) {
            continue;
        }
        let Some(event) = line.get_mut("event").map(Value::take) else {
            // The only other line of a subscription: cut off for falling behind.
            super::client::outcome(line)?;
            continue;
        };
        let end = event["kind"] == "end";
        if writeln!(out, "{event}").is_err() {
            return Ok(0);
        }
        backlog = backlog.saturating_sub(1);
        if end || (!follow && backlog == 0) {
            let _ = out.flush();
            return Ok(0);
        }
        if backlog == 0 && out.flush().is_err() {
            return Ok(0);
        }
    }
}

/// One worker slot of a `status` reply.
struct Slot {
    pool: String,
    worker: u32,
    pid: Option<i32>,
    start_time: Option<u64>,
    running: bool,
}

fn workers(status: &Value) -> Vec<Slot> {
    let mut found = Vec::new();
    for pool in status["pools"].as_array().into_iter().flatten() {
        let name = pool["name"].as_str().unwrap_or("").to_string();
        for slot in pool["workers"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            found.push(Slot {
                pool: name.clone(),
                worker: slot["worker"].as_u64().unwrap_or(0) as u32,
                pid: slot["pid"].as_i64().map(|p| p as i32),
                start_time: slot["start_time"].as_u64(),
                running: slot["state"] == "running",
            });
        }
    }
    found
}

/// The pids (and start times) `target` names: `PID`, `POOL` or `POOL:WORKER`.
fn resolve(status: &Value, target: &str) -> Option<Vec<(i32, Option<u64>)>> {
    if let Ok(pid) = target.parse::<i32>() {
        let start = workers(status)
            .into_iter()
            .find(|w| w.pid == Some(pid))
            .and_then(|w| w.start_time);
        return (pid > 0).then(|| vec![(pid, start)]);
    }
    let (pool, worker) = split_target(target)?;
    let pids: Vec<(i32, Option<u64>)> = workers(status)
        .into_iter()
        .filter(|w| w.pool == pool && w.running && worker.is_none_or(|n| w.worker == n))
        .filter_map(|w| w.pid.map(|pid| (pid, w.start_time)))
        .collect();
    (!pids.is_empty()).then_some(pids)
}

/// The worker slots `target` names: `POOL` (all) or `POOL:WORKER`.
fn slots(status: &Value, target: &str) -> Option<Vec<(String, u32)>> {
    let (pool, worker) = split_target(target)?;
    let found: Vec<(String, u32)> = workers(status)
        .into_iter()
        .filter(|w| w.pool == pool && worker.is_none_or(|n| w.worker == n))
        .map(|w| (w.pool, w.worker))
        .collect();
    (!found.is_empty()).then_some(found)
}

fn split_target(target: &str) -> Option<(&str, Option<u32>)> {
    match target.rsplit_once(':') {
        Some((pool, worker)) => Some((pool, Some(worker.parse().ok()?))),
        None => Some((target, None)),
    }
}

fn human_status(status: &Value) -> String {
    let mut text = format!(
        "session {} (engine {}) {}: {} live process(es){}\n",
        status["session_pid"],
        status["engine_pid"],
        status["title"].as_str().unwrap_or(""),
        status["processes"],
        status["stopping"]
            .as_str()
            .map(|r| format!(", stopping: {r}"))
            .unwrap_or_default()
    );
    for pool in status["pools"].as_array().into_iter().flatten() {
        text += &format!(
            "pool {} size {} restart {}\n",
            pool["name"].as_str().unwrap_or(""),
            pool["size"],
            pool["restart"].as_str().unwrap_or("")
        );
        for slot in pool["workers"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            text += &format!(
                "  {:>3} pid {:>8} {:<10} restarts {}\n",
                slot["worker"],
                slot["pid"],
                slot["state"].as_str().unwrap_or(""),
                slot["restarts"]
            );
        }
    }
    for barrier in status["barriers"].as_array().into_iter().flatten() {
        text += &format!(
            "barrier {} {}/{} waiting, generation {}{}\n",
            barrier["name"].as_str().unwrap_or(""),
            barrier["waiting"],
            barrier["parties"],
            barrier["generation"],
            barrier["broken"]
                .as_str()
                .map(|r| format!(", broken: {r}"))
                .unwrap_or_default()
        );
    }
    for watched in status["watched"].as_array().into_iter().flatten() {
        text += &format!(
            "watched {} ({}, pid {}) = {}\n",
            watched["name"].as_str().unwrap_or(""),
            watched["kind"].as_str().unwrap_or(""),
            watched["pid"],
            watched["value"]
        );
    }
    text
}

/// `forkscope barrier wait`: blocks until the barrier passes (0) or breaks (3).
pub fn barrier_wait(
    socket: Option<PathBuf>,
    name: &str,
    parties: u32,
    timeout: Option<f64>,
) -> i32 {
    let path = match socket.map(Ok).unwrap_or_else(|| {
        std::env::var_os("FORKSCOPE_SOCKET")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .ok_or(())
    }) {
        Ok(path) => path,
        Err(()) => {
            eprintln!(
                "forkscope barrier: FORKSCOPE_SOCKET is not set (not running under forkscope?); use --socket"
            );
            return 2;
        }
    };
    let env_worker = std::env::var("FORKSCOPE_WORKER")
        .ok()
        .and_then(|w| w.parse::<u32>().ok());
    let env_pool = std::env::var("FORKSCOPE_POOL").ok();
    let request = json!({
        "op": "barrier_wait",
        "name": name,
        "parties": parties,
        "timeout": timeout,
        "pool": env_pool.filter(|_| env_worker.is_some()),
        "worker": env_worker,
    });
    let result = Client::connect(&path).and_then(|mut client| client.request(request));
    match result {
        Ok(_) => 0,
        Err(ClientError::Refused { code, message }) => {
            eprintln!("forkscope barrier: {message}");
            if code == "broken" { 3 } else { 1 }
        }
        Err(err) => {
            eprintln!("forkscope barrier: {err}");
            1
        }
    }
}

/// `forkscope inspect PID [--json]`: the snapshot; with `--json`, the objects programs of
/// the tree named with `forkscope.watch` (in any running session of this user) are listed
/// under `watched`, with their current values.
pub fn inspect(pid: i32, json_out: bool) -> anyhow::Result<i32> {
    if !json_out {
        return crate::inspect::snapshot::print(pid, false);
    }
    let snapshot = match crate::inspect::snapshot::take(pid) {
        Ok(snapshot) => snapshot,
        Err(err) => {
            eprintln!("forkscope: {err}");
            return Ok(1);
        }
    };
    let mut doc = serde_json::to_value(&snapshot)?;
    let pids: std::collections::HashSet<i64> = snapshot
        .processes
        .iter()
        .map(|p| i64::from(p.pid))
        .collect();
    let mut watched = Vec::new();
    for session in live_sessions() {
        let Ok(mut client) = Client::connect(&session.socket) else {
            continue;
        };
        let Ok(status) = client.request(json!({"op": "status"})) else {
            continue;
        };
        watched.extend(
            status["watched"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|w| w["pid"].as_i64().is_some_and(|p| pids.contains(&p)))
                .cloned(),
        );
    }
    doc["watched"] = Value::from(watched);
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(0)
}
