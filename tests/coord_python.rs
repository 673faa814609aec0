//! The Python helper (`run --python-helper`, `import forkscope`): watched `Value`, `Array`,
//! `Barrier` and `Event` show their true values as a fork or spawn child changes them, and
//! the helper's hosted barrier meets a `forkscope barrier wait` from the test; `watched`
//! events carry the changes.

mod common;

use common::socket::SocketDir;
use common::*;
use serde_json::Value;

fn watched(status: &Value, name: &str) -> Value {
    status["watched"]
        .as_array()
        .and_then(|all| all.iter().find(|w| w["name"] == name))
        .map(|w| w["value"].clone())
        .unwrap_or_else(|| panic!("{name} not watched: {status}"))
}

fn status(sockets: &SocketDir) -> Value {
    serde_json::from_str(&sockets.ctl(&["status", "--json"])).expect("status json")
}

/// Meets the program at the hosted barrier "sync" (the test is the second party).
fn meet(sockets: &SocketDir, fs: &Forkscope) {
    let socket = sockets.socket(fs);
    let socket = socket.to_str().expect("utf-8 path");
    let out = sockets.run(&[
        "barrier",
        "wait",
        "sync",
        "--parties",
        "2",
        "--timeout",
        "60",
        "--socket",
        socket,
    ]);
    assert!(
        out.status.success(),
        "barrier wait: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn watched_values_follow_the_program(method: &str) {
    let sockets = SocketDir::new();
    let m = marker(&format!("py_watch_{method}"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/watched.py");
    let fs = sockets.start(
        &m,
        &[
            "run",
            "--headless",
            "--python-helper",
            "--",
            "python3",
            script,
            method,
        ],
    );
    sockets.wait_socket(&fs);
    meet(&sockets, &fs);
    let first = status(&sockets);
    assert_eq!(watched(&first, "counter"), 7, "{first}");
    assert_eq!(
        watched(&first, "samples"),
        serde_json::json!([0.0, 0.0, 1.25])
    );
    assert_eq!(watched(&first, "ready")["set"], true);
    let meet_state = watched(&first, "meet");
    assert_eq!(meet_state["n_waiting"], 1, "{meet_state}");
    assert_eq!(meet_state["parties"], 2);
    // `inspect --json` of the tree lists them too, by name.
    let out = sockets.run(&["inspect", &fs.engine_pid().to_string(), "--json"]);
    let inspect: Value = serde_json::from_slice(&out.stdout).expect("inspect json");
    assert_eq!(watched(&inspect, "counter"), 7, "{inspect}");
    // The program holds these values until the next meeting, so the periodic `watched`
    // events (every 200 ms) must carry them; 30 s is the margin on a loaded machine.
    watched_event(&fs, "counter", &Value::from(7));
    watched_event(&fs, "samples", &serde_json::json!([0.0, 0.0, 1.25]));
    meet(&sockets, &fs);
    meet(&sockets, &fs);
    watched_event(&fs, "counter", &Value::from(8));
    let second = status(&sockets);
    assert_eq!(watched(&second, "counter"), 8, "{second}");
    assert_eq!(watched(&second, "ready")["set"], false);
    assert_eq!(watched(&second, "meet")["n_waiting"], 0);
    meet(&sockets, &fs);
    let mut fs = fs;
    let (code, events) = fs.finish_clean(secs(60.0));
    assert_eq!(code, 0, "{}", dump(&events));
    assert!(
        of_kind(&events, "mark")
            .iter()
            .any(|e| e["label"] == "child waiting")
    );
    assert!(lines_of_all(&events).iter().any(|l| l == "done 0"));
    // `watched` events carry changes only: never the same value twice in a row per name.
    // (A read racing the program's exit may add an unreadable one at the end.)
    let counter: Vec<(&Value, &Value)> = of_kind(&events, "watched")
        .into_iter()
        .filter(|e| e["name"] == "counter")
        .map(|e| (&e["value"], &e["error"]))
        .collect();
    assert!(counter.windows(2).all(|w| w[0] != w[1]), "{counter:?}");
    let values: Vec<&Value> = counter.iter().map(|(v, _)| *v).collect();
    assert!(
        values
            .windows(2)
            .any(|w| w == [&Value::from(7), &Value::from(8)]),
        "{values:?}"
    );
    let first = of_kind(&events, "watched")
        .into_iter()
        .find(|e| e["name"] == "counter")
        .expect("a watched event for counter");
    assert_eq!(
        (&first["object"], &first["typecode"]),
        (&Value::from("value"), &Value::from("i")),
        "{first}"
    );
}

/// Waits for a `watched` event saying `name` holds `value`.
fn watched_event(fs: &Forkscope, name: &str, value: &Value) {
    fs.wait_event(&format!("watched {name} = {value}"), secs(30.0), |e| {
        kind(e) == "watched" && e["name"] == name && &e["value"] == value
    });
}

fn lines_of_all(events: &[Value]) -> Vec<String> {
    of_kind(events, "output")
        .iter()
        .filter_map(|e| e["line"].as_str().map(String::from))
        .collect()
}

#[test]
fn watched_values_follow_a_fork_child() {
    watched_values_follow_the_program("fork");
}

#[test]
fn watched_values_follow_a_spawn_child() {
    watched_values_follow_the_program("spawn");
}

#[test]
fn outside_forkscope_every_call_is_a_silent_no_op() {
    let dir = common::command_output(
        std::process::Command::new(bin()).arg("python-path"),
        common::secs(60.0),
    );
    assert!(dir.status.success());
    let dir = String::from_utf8_lossy(&dir.stdout).trim().to_string();
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import multiprocessing as mp, forkscope\n\
             v = forkscope.watch(mp.Value('i', 3), 'v')\n\
             forkscope.mark('x')\n\
             b = forkscope.Barrier('b', 5)\n\
             print(v.value, b.wait(), b.n_waiting, b.broken, forkscope.active())",
        ])
        .env("PYTHONPATH", &dir)
        .env_remove("FORKSCOPE_SOCKET")
        .output()
        .expect("python3");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "3 0 0 False False",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
