//! Bad input: usage errors exit 2 with a message on stderr and start nothing; a command that
//! cannot be started is a `spawn_failed` event and exit 1, never a panic.

mod common;

use std::process::Command;

use common::*;

/// Runs forkscope with `args`, expecting a usage error.
fn usage_error(args: &[&str]) -> String {
    let m = marker("usage");
    let output = common::command_output(
        Command::new(bin())
            .args(args)
            .env(MARKER_VAR, &m)
            .stdin(std::process::Stdio::null()),
        common::secs(60.0),
    );
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(output.stdout.is_empty(), "{args:?}: nothing on stdout");
    assert!(!stderr.trim().is_empty(), "{args:?}: a message on stderr");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert_nothing_left(&m);
    stderr
}

#[test]
fn unknown_flag() {
    let stderr = usage_error(&["run", "--bogus-flag", "--", "true"]);
    assert!(stderr.contains("--bogus-flag"), "{stderr}");
}

#[test]
fn missing_command() {
    let stderr = usage_error(&["run", "--headless"]);
    assert!(stderr.contains("CMD"), "{stderr}");
    usage_error(&["run", "--headless", "--"]);
}

#[test]
fn bad_signal_name() {
    let stderr = usage_error(&["run", "--stop-signal", "SIGNOPE", "--", "true"]);
    assert!(stderr.contains("SIGNOPE"), "{stderr}");
}

#[test]
fn bad_numbers() {
    usage_error(&["run", "-n", "0", "--", "true"]);
    usage_error(&["run", "-n", "many", "--", "true"]);
    usage_error(&["run", "--stop-timeout", "-1", "--", "true"]);
    usage_error(&["run", "--stop-timeout", "soon", "--", "true"]);
    usage_error(&["run", "--restart", "sometimes", "--", "true"]);
    let stderr = usage_error(&["run", "-n", "-1", "--", "true"]);
    assert!(stderr.contains("-1 would start none"), "{stderr}");
    let stderr = usage_error(&["run", "--scrollback", "0", "--headless", "--", "true"]);
    assert!(stderr.contains("at least 1 line"), "{stderr}");
}

#[test]
fn a_name_with_control_characters_is_refused_as_in_the_config() {
    let stderr = usage_error(&["run", "--name", "a\x1b[2Jb", "--headless", "--", "true"]);
    assert!(stderr.contains("no control characters"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
}

#[test]
fn unknown_subcommand_and_no_subcommand() {
    usage_error(&["frobnicate"]);
    usage_error(&[]);
}

#[test]
fn command_that_does_not_exist_is_a_spawn_failure() {
    let m = marker("nocmd");
    let mut fs = Forkscope::start(
        &m,
        &[
            "run",
            "-n",
            "2",
            "--headless",
            "--",
            "/nonexistent/fks-no-such-command",
            "x",
        ],
    );
    let (code, events) = fs.finish_clean(secs(8.0));
    assert_eq!(code, 1);
    let failures = of_kind(&events, "spawn_failed");
    assert_eq!(failures.len(), 2);
    for failure in &failures {
        assert_eq!(failure["pid"], serde_json::Value::Null);
        assert_eq!(failure["argv"][0], "/nonexistent/fks-no-such-command");
        assert!(
            failure["error"].as_str().unwrap().contains("No such file"),
            "{failure}"
        );
    }
    assert!(of_kind(&events, "spawn").is_empty());
    let stderr = fs.stderr();
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn command_that_is_not_executable_is_a_spawn_failure() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-executable.sh");
    std::fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
    let (code, events) = run_clean(
        "noexec",
        &["run", "--headless", "--", path.to_str().unwrap()],
        secs(8.0),
    );
    assert_eq!(code, 1);
    let failure = &of_kind(&events, "spawn_failed")[0];
    assert!(
        failure["error"]
            .as_str()
            .unwrap()
            .contains("ermission denied"),
        "{failure}"
    );
}

#[test]
fn a_directory_is_not_permission_denied() {
    let dir = tempfile::tempdir().unwrap();
    let (code, events) = run_clean(
        "isdir",
        &["run", "--headless", "--", dir.path().to_str().unwrap()],
        secs(8.0),
    );
    assert_eq!(code, 1);
    let failure = &of_kind(&events, "spawn_failed")[0];
    let error = failure["error"].as_str().unwrap();
    assert!(error.ends_with(": is a directory"), "{failure}");
    assert!(!error.contains("ermission"), "{failure}");
}

#[test]
fn help_and_version_exit_zero() {
    for args in [&["--help"][..], &["--version"][..], &["run", "--help"][..]] {
        let output = common::forkscope_output(args);
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert!(!output.stdout.is_empty());
    }
}
