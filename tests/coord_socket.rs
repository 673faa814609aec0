//! The control socket: where it lives and with what mode, the protocol's robustness
//! (garbage, a 100 MB line, a silent client, 200 clients at once), `ctl` against a headless
//! session, another uid refused, and the socket file gone after every way forkscope ends.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;

use common::socket::{LineClient, SocketDir};
use common::*;
use serde_json::Value;

#[test]
fn the_protocol_survives_garbage_a_100mb_line_a_silent_client_and_200_clients() {
    let sockets = SocketDir::new();
    let m = marker("sock_robust");
    let mut fs = sockets.start(&m, &["run", "--headless", "-n", "2", "--", "sleep", "60"]);
    let path = sockets.wait_socket(&fs);
    let mode = std::fs::metadata(&path)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode");
    let dir_mode = std::fs::metadata(path.parent().expect("dir"))
        .expect("dir")
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700, "socket directory mode");

    // A client that connects and never speaks.
    let silent = UnixStream::connect(&path).expect("silent client");

    let mut client = LineClient::connect(&path);
    let hello = client.ask(r#"{"id":1,"op":"hello"}"#);
    assert_eq!(hello["result"]["protocol"], 1, "{hello}");
    for (garbage, code) in [
        ("not json at all", "parse"),
        ("[1,2,3]", "bad_request"),
        (r#"{"id":5,"op":"format_disk"}"#, "unknown_op"),
        (r#"{"id":6,"op":"barrier_wait","name":"x"}"#, "bad_request"),
        ("{\"id\":7,\"op\":\"hello\"", "parse"),
    ] {
        let reply = client.ask(garbage);
        assert_eq!(reply["ok"], false, "{garbage} -> {reply}");
        assert_eq!(reply["error"]["code"], code, "{garbage} -> {reply}");
    }
    // Invalid UTF-8 and a NUL byte.
    client.send_raw(b"\xff\x00\xfe\n");
    assert_eq!(client.read()["error"]["code"], "parse");

    // A 100 MB line, written by another thread while this one waits for the reply: the
    // service skips it without buffering it and says so, then serves the next request.
    let mut writer = client.writer.try_clone().expect("clone");
    let big = std::thread::spawn(move || {
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..100 {
            writer.write_all(&chunk).expect("write 1 MiB");
        }
        writer.write_all(b"\n").expect("newline");
    });
    let reply = client.read();
    assert_eq!(reply["error"]["code"], "too_long", "{reply}");
    big.join().expect("writer");
    let rss_kb = status_kb(fs.engine_pid(), "VmHWM:").unwrap_or(0);
    assert!(
        rss_kb < 90_000,
        "forkscope peaked at {rss_kb} kB: the line was buffered"
    );
    let status = client.ask(r#"{"id":"s","op":"status"}"#);
    assert_eq!(status["id"], "s");
    assert_eq!(status["result"]["pools"][0]["size"], 2, "{status}");

    // 200 clients at once, each with its own request.
    let threads: Vec<_> = (0..200)
        .map(|n| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut c = LineClient::connect(&path);
                let reply = c.ask(&format!(r#"{{"id":{n},"op":"hello"}}"#));
                assert_eq!(reply["id"], n);
                assert_eq!(reply["ok"], true);
                c
            })
        })
        .collect();
    let clients: Vec<LineClient> = threads
        .into_iter()
        .map(|t| t.join().expect("client thread"))
        .collect();
    assert_eq!(clients.len(), 200);
    // The silent client is still connected and costs a parked task: the service answers.
    assert_eq!(client.ask(r#"{"id":9,"op":"hello"}"#)["ok"], true);
    drop(silent);

    sockets.ctl(&["stop"]);
    let (code, _) = fs.finish_clean(secs(20.0));
    assert_eq!(code, 1, "workers were stopped by a signal");
    assert!(!path.exists(), "socket file left behind");
}

#[test]
fn ctl_reads_and_drives_a_headless_session() {
    let sockets = SocketDir::new();
    let m = marker("sock_ctl");
    let mut fs = sockets.start(
        &m,
        &[
            "run",
            "--headless",
            "-n",
            "2",
            "--name",
            "w",
            "--",
            "sleep",
            "60",
        ],
    );
    sockets.wait_socket(&fs);
    fs.wait_kind("spawn", 2, secs(10.0));

    let ls: Value = serde_json::from_str(&sockets.ctl(&["ls", "--json"])).expect("ls json");
    assert_eq!(ls.as_array().map(Vec::len), Some(1), "{ls}");
    assert_eq!(ls[0]["session_pid"], fs.pid());

    let status: Value =
        serde_json::from_str(&sockets.ctl(&["status", "--json"])).expect("status json");
    let workers = &status["pools"][0]["workers"];
    assert_eq!(workers["0"]["state"], "running", "{status}");
    let victim = workers["1"]["pid"].as_i64().expect("pid") as i32;

    sockets.ctl(&["signal", "w:1", "TERM"]);
    let exit = fs.wait_event("worker 1's exit", secs(10.0), |e| {
        kind(e) == "exit" && pid_of(e) == victim
    });
    assert_eq!(exit["signal"], "SIGTERM");

    sockets.ctl(&["scale", "w", "3"]);
    fs.wait_until("a third worker", secs(10.0), |events| {
        of_kind(events, "spawn").len() >= 3
    });

    let inspect: Value = serde_json::from_str(&sockets.ctl(&["inspect"])).expect("inspect json");
    let pids: Vec<i64> = inspect["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .filter_map(|p| p["pid"].as_i64())
        .collect();
    assert!(pids.contains(&i64::from(fs.engine_pid())), "{inspect}");

    let recent = sockets.ctl(&["events"]);
    let first: Value =
        serde_json::from_str(recent.lines().next().expect("an event")).expect("json");
    assert_eq!(first["kind"], "session");
    assert!(
        recent
            .lines()
            .any(|l| l.contains("\"signal\"") && l.contains("SIGTERM"))
    );

    // A follower started now sees the session end.
    let follower = {
        let env = sockets.env();
        std::process::Command::new(bin())
            .args(["ctl", "events", "--follow"])
            .envs(env)
            .env_remove("FORKSCOPE_SOCKET")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("follower")
    };
    wait_for("the follower's subscription", secs(10.0), || {
        let status: Value =
            serde_json::from_str(&sockets.ctl(&["status", "--json"])).unwrap_or_default();
        status["subscribers"] == 1
    });
    sockets.ctl(&["stop"]);
    let out = follower.wait_with_output().expect("follower output");
    let last: Value = serde_json::from_str(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("a line"),
    )
    .expect("json");
    assert_eq!(last["kind"], "end");
    fs.finish_clean(secs(20.0));
}

#[test]
fn another_uid_is_refused() {
    let sockets = SocketDir::new();
    let m = marker("sock_uid");
    let mut fs = sockets.start(&m, &["run", "--headless", "--", "sleep", "60"]);
    let path = sockets.wait_socket(&fs);
    let as_nobody = |path: &std::path::Path| {
        common::command_output(
            std::process::Command::new("setpriv")
                .args([
                    "--reuid",
                    "65534",
                    "--regid",
                    "65534",
                    "--clear-groups",
                    bin(),
                ])
                .args(["ctl", "--socket"])
                .arg(path)
                .arg("status")
                .env_remove("FORKSCOPE_SOCKET"),
            common::secs(60.0),
        )
    };
    // The directory (0700) and the socket (0600) keep others out...
    let out = as_nobody(&path);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ermission denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ...and with both opened up, the credentials check still refuses, with a notice.
    let dir = path.parent().expect("dir");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let out = as_nobody(&path);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refused: uid 65534"), "{stderr}");
    fs.wait_event("the refusal notice", secs(10.0), |e| {
        kind(e) == "notice"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("uid 65534"))
    });
    sockets.ctl(&["stop"]);
    fs.finish_clean(secs(20.0));
}

#[test]
fn the_socket_file_is_gone_after_every_ending() {
    let sockets = SocketDir::new();
    // The workers end by themselves.
    let m = marker("sock_end_normal");
    let mut fs = sockets.start(&m, &["run", "--headless", "--", "sh", "-c", "sleep 0.5"]);
    let path = sockets.wait_socket(&fs);
    fs.finish_clean(secs(20.0));
    assert!(!path.exists(), "after a normal end");

    // SIGTERM to forkscope.
    let m = marker("sock_end_term");
    let mut fs = sockets.start(&m, &["run", "--headless", "--", "sleep", "60"]);
    let path = sockets.wait_socket(&fs);
    fs.signal(libc::SIGTERM);
    fs.finish_clean(secs(20.0));
    assert!(!path.exists(), "after SIGTERM");

    // SIGKILL of the engine: the guardian removes it.
    let m = marker("sock_end_kill_engine");
    let mut fs = sockets.start(&m, &["run", "--headless", "--", "sleep", "60"]);
    let path = sockets.wait_socket(&fs);
    let engine = fs.engine_pid();
    // SAFETY: kill(2) of the engine this test started (the guardian's child).
    assert_eq!(unsafe { libc::kill(engine, libc::SIGKILL) }, 0);
    let _ = fs.finish(secs(20.0));
    assert_nothing_left(&m);
    assert!(!path.exists(), "after SIGKILL of the engine");

    // SIGKILL of the guardian: the engine gets SIGTERM and ends normally.
    let m = marker("sock_end_kill_guardian");
    let mut fs = sockets.start(&m, &["run", "--headless", "--", "sleep", "60"]);
    let path = sockets.wait_socket(&fs);
    fs.signal(libc::SIGKILL);
    let _ = fs.finish(secs(20.0));
    wait_for("the socket file to go", secs(20.0), || !path.exists());
    assert_nothing_left(&m);

    // SIGKILL of the job's process group (guardian and engine, as `kill -9 %1`): the
    // watchdog, outside the group, removes it.
    let m = marker("sock_end_kill_group");
    let mut fs = Forkscope::start_with(
        &m,
        &["run", "--headless", "--", "sleep", "60"],
        StartOptions {
            env: sockets.env(),
            own_group: true,
            ..StartOptions::default()
        },
    );
    let path = sockets.wait_socket(&fs);
    // SAFETY: kill(2) of the process group this test started (forkscope's own group).
    assert_eq!(unsafe { libc::kill(-fs.pid(), libc::SIGKILL) }, 0);
    let _ = fs.finish(secs(20.0));
    wait_for("the socket file to go", secs(20.0), || !path.exists());
    assert_nothing_left(&m);

    // `ctl stop`.
    let m = marker("sock_end_ctl");
    let mut fs = sockets.start(&m, &["run", "--headless", "--", "sleep", "60"]);
    let path = sockets.wait_socket(&fs);
    sockets.ctl(&["stop"]);
    fs.finish_clean(secs(20.0));
    assert!(!path.exists(), "after ctl stop");
}

/// The control socket's ring keeps a flood's lines packed while nobody subscribes; `ctl
/// events` gets them back exactly as the headless stream printed them (valid lines, an
/// invalid UTF-8 line with its `raw_hex`, in order, `seq` included).
#[test]
fn the_ring_gives_back_a_flood_exactly() {
    let sockets = SocketDir::new();
    let m = marker("sock_ring");
    let script = "i=0; while [ $i -lt 3000 ]; do echo \"line $i é\"; i=$((i+1)); done; \
                  printf 'bad \\377 byte\\n'; echo last; exec sleep 60";
    let mut fs = sockets.start(&m, &["run", "--headless", "--", "sh", "-c", script]);
    sockets.wait_socket(&fs);
    fs.wait_kind("output", 3002, secs(30.0));
    let printed: Vec<Value> = of_kind(&fs.events(), "output")
        .into_iter()
        .cloned()
        .collect();
    let ring: Vec<Value> = sockets
        .ctl(&["events"])
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| kind(e) == "output")
        .collect();
    assert_eq!(ring.len(), 3002);
    assert_eq!(ring, printed);
    assert!(ring[3000]["raw_hex"].is_string(), "{}", ring[3000]);
    sockets.ctl(&["stop"]);
    fs.finish_clean(secs(20.0));
}
