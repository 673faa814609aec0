//! `--pty`: the worker's stdout and stderr are a pseudo-terminal (isatty true, one stream),
//! stdin stays /dev/null unless `--stdin pty`, and a flood through the pty loses nothing.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use common::*;

#[test]
fn under_pty_stdout_and_stderr_are_a_terminal_and_stdin_is_not() {
    let probe = "import os, sys\n\
                 print('tty', sys.stdout.isatty(), sys.stderr.isatty(), sys.stdin.isatty())\n\
                 print('size', *os.get_terminal_size())\n\
                 print('on stderr', file=sys.stderr)\n";
    let (code, events) = run_clean(
        "ptytty",
        &["run", "--headless", "--pty", "--", "python3", "-c", probe],
        secs(30.0),
    );
    assert_eq!(code, 0, "{}", dump(&events));
    let pid = spawned_pids(&events)[0];
    // One stream: stderr's line comes as stdout, after the others (same pty, same order).
    assert_eq!(
        lines_of(&events, pid, "stdout"),
        ["tty True True False", "size 80 24", "on stderr"]
    );
    assert!(lines_of(&events, pid, "stderr").is_empty());
}

#[test]
fn without_pty_nothing_is_a_terminal() {
    let (_, events) = run_clean(
        "nopty",
        &[
            "run",
            "--headless",
            "--",
            "python3",
            "-c",
            "import sys; print(sys.stdout.isatty(), sys.stderr.isatty())",
        ],
        secs(30.0),
    );
    let pid = spawned_pids(&events)[0];
    assert_eq!(lines_of(&events, pid, "stdout"), ["False False"]);
}

#[test]
fn stdin_pty_gives_the_worker_its_pty_as_stdin() {
    let (code, events) = run_clean(
        "ptystdin",
        &[
            "run",
            "--headless",
            "--pty",
            "--stdin",
            "pty",
            "--",
            "sh",
            "-c",
            "test -t 0 && echo stdin is a tty; printf 'a\\r\\nb\\n'",
        ],
        secs(20.0),
    );
    assert_eq!(code, 0);
    let pid = spawned_pids(&events)[0];
    // No ONLCR: `\n` stays `\n`; a `\r\n` written by the program loses its `\r` as on a pipe.
    assert_eq!(
        lines_of(&events, pid, "stdout"),
        ["stdin is a tty", "a", "b"]
    );
}

#[test]
fn stdin_pty_without_pty_is_a_usage_error() {
    let out = common::command_output(
        as_users_run(&mut Command::new(bin())).args([
            "run",
            "--headless",
            "--stdin",
            "pty",
            "--",
            "true",
        ]),
        common::secs(60.0),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --pty"));
}

#[test]
fn a_flood_through_the_pty_loses_nothing() {
    // 200 MB in 50,000 lines of 4000 bytes through the pty (1 GB is benches/output.sh's job
    // on a release build; this debug build moves ~30 MB/s). The events are counted as they
    // stream, not kept.
    const LINES: u64 = 50_000;
    const WIDTH: usize = 4000;
    let m = marker("ptyflood");
    let _cleanup = Cleanup(m.clone());
    let shell = format!(
        "head -c {} /dev/zero | tr '\\0' x | fold -w {WIDTH}",
        LINES as usize * WIDTH
    );
    let mut child = as_users_run(&mut Command::new(bin()))
        .env(MARKER_VAR, &m)
        .args(["run", "--headless", "--pty", "--", "sh", "-c", &shell])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start forkscope");
    let started = Instant::now();
    let stdout = child.stdout.take().expect("stdout");
    let (mut lines, mut bytes, mut wrong_width, mut next_seq, mut gaps) = (0u64, 0u64, 0, 1, 0);
    let mut worker = None;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON event");
        match kind(&event) {
            "spawn" => worker = Some(pid_of(&event)),
            "output" if Some(pid_of(&event)) == worker => {
                let text = event["line"].as_str().unwrap_or_default();
                lines += 1;
                bytes += text.len() as u64;
                wrong_width += usize::from(text.len() != WIDTH);
                gaps += usize::from(event["seq"].as_u64() != Some(next_seq));
                next_seq += 1;
            }
            _ => {}
        }
        assert!(started.elapsed() < secs(240.0), "the flood took too long");
    }
    let status = child.wait().expect("wait");
    assert_nothing_left(&m);
    assert_eq!(status.code(), Some(0));
    assert_eq!(lines, LINES);
    assert_eq!(bytes, LINES * WIDTH as u64);
    assert_eq!((wrong_width, gaps), (0, 0));
    eprintln!("200 MB through a pty: {:?}", started.elapsed());
}
