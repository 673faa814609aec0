//! Output as a user meets it, with no `PYTHON*` variable set (the helpers remove them):
//! Python lines arrive while the worker runs, `--buffered` gives block buffering back,
//! `--line-buffered` preloads libstdbuf, and the test environment itself is a user's.

mod common;

use common::*;
use serde_json::Value;

const TICKS: &str = "import time\nfor i in range(3):\n    print('tick', i)\n    time.sleep(1)\n";

fn t_of(event: &Value) -> f64 {
    event["t"].as_f64().expect("t")
}

/// Runs `python3 -c TICKS` with `flags`; returns (worker pid, events).
fn ticks(name: &str, flags: &[&str]) -> (i32, Vec<Value>) {
    let mut args = vec!["run", "--headless"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", "python3", "-c", TICKS]);
    let (code, events) = run_clean(name, &args, secs(30.0));
    assert_eq!(code, 0, "{}", dump(&events));
    (spawned_pids(&events)[0], events)
}

#[test]
fn the_helpers_run_forkscope_without_python_variables() {
    let (_, events) = run_clean(
        "env",
        &["run", "--headless", "--", "sh", "-c", "env | grep ^PYTHON"],
        secs(20.0),
    );
    let pid = spawned_pids(&events)[0];
    // Only what forkscope itself adds may be there.
    for line in lines_of(&events, pid, "stdout") {
        assert!(
            line.starts_with("PYTHONUNBUFFERED=1") || line.starts_with("PYTHONPATH="),
            "a variable of the test machine leaked into the worker: {line}"
        );
    }
}

#[test]
fn python_lines_arrive_while_the_worker_runs() {
    let (pid, events) = ticks("live", &[]);
    let lines = output_of(&events, pid, "stdout");
    assert_eq!(lines.len(), 3, "{}", dump(&events));
    let exit = exit_of(&events, pid).expect("exit");
    // The worker sleeps 2 s after printing its first line: with live output that line is
    // reported at least 1 s (margin: 1 s) before the exit, whatever the machine's load.
    let lead = t_of(&exit) - t_of(lines[0]);
    assert!(lead >= 1.0, "first line only {lead:.2}s before the exit");
}

#[test]
fn buffered_gives_block_buffering_back() {
    let (pid, events) = ticks("buffered", &["--buffered"]);
    let spawn = events
        .iter()
        .find(|e| kind(e) == "spawn")
        .expect("spawn")
        .clone();
    let lines = output_of(&events, pid, "stdout");
    assert_eq!(lines.len(), 3, "{}", dump(&events));
    // Block-buffered, nothing reaches the pipe before Python's exit, after 3 s of sleep.
    let first = t_of(lines[0]) - t_of(&spawn);
    assert!(
        first >= 2.9,
        "first line {first:.2}s after spawn: not buffered"
    );
}

#[test]
fn a_pool_env_setting_wins_over_live_output() {
    let m = marker("poolenv");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("forkscope.toml");
    std::fs::write(
        &config,
        "[[pool]]\nname = \"p\"\ncommand = [\"sh\", \"-c\", \"echo [$PYTHONUNBUFFERED]\"]\n\
         env = { PYTHONUNBUFFERED = \"\" }\n",
    )
    .expect("write config");
    let path = config.to_string_lossy().into_owned();
    let (code, events) =
        Forkscope::start(&m, &["up", "--headless", "-f", &path]).finish_clean(secs(20.0));
    assert_eq!(code, 0);
    let pid = spawned_pids(&events)[0];
    assert_eq!(lines_of(&events, pid, "stdout"), ["[]"]);
}

#[test]
fn line_buffered_preloads_libstdbuf_or_says_why_not() {
    let m = marker("linebuf");
    let mut fs = Forkscope::start(
        &m,
        &[
            "run",
            "--headless",
            "--line-buffered",
            "--",
            "sh",
            "-c",
            "echo $LD_PRELOAD $_STDBUF_O $_STDBUF_E",
        ],
    );
    let (code, events) = fs.finish(secs(20.0));
    assert_nothing_left(&m);
    if std::process::Command::new("stdbuf")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert_eq!(code.code(), Some(0), "{}", fs.stderr());
        let pid = spawned_pids(&events)[0];
        let line = lines_of(&events, pid, "stdout").join("\n");
        assert!(line.contains("libstdbuf.so L L"), "{line}");
    } else {
        assert_eq!(code.code(), Some(2));
    }
}

#[test]
fn line_buffered_without_stdbuf_is_a_usage_error() {
    let empty = tempfile::tempdir().expect("tempdir");
    let out = common::command_output(
        as_users_run(&mut std::process::Command::new(bin()))
            .env("PATH", empty.path())
            .args(["run", "--headless", "--line-buffered", "--", "/bin/true"]),
        common::secs(60.0),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("libstdbuf"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing may start");
}
