//! The test harness itself (`tests/common`) can fail: a process carrying a test's marker
//! after its session ended is found, named and killed (at drop, on a timeout, after a one-shot
//! command), and nothing else is touched.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Child, Command, Stdio};

use common::*;

/// A `sleep 600` carrying `marker`, started by the test (not by forkscope): a stand-in for a
/// process the session leaked.
fn leaked_sleep(marker: &str) -> Child {
    Command::new("sleep")
        .arg("600")
        .env(MARKER_VAR, marker)
        .stdin(Stdio::null())
        .spawn()
        .expect("sleep")
}

fn message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn a_session_dropped_with_a_survivor_fails_and_kills_only_it() {
    let m = marker("harness_drop");
    let mut leaked = leaked_sleep(&m);
    let mut bystander = Command::new("sleep")
        .arg("600")
        .stdin(Stdio::null())
        .spawn()
        .expect("sleep");
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let fs = Forkscope::start(&m, &["run", "--headless", "--", "sleep", "600"]);
        fs.wait_kind("spawn", 1, secs(30.0));
    }));
    let text = message(outcome.expect_err("the drop must report the survivor"));
    assert!(text.contains("left running"), "{text}");
    assert!(text.contains(&leaked.id().to_string()), "{text}");
    // The worker went with its session; the survivor was killed; the bystander (no marker)
    // was left alone.
    assert!(leaked.wait().expect("wait").code().is_none(), "killed");
    assert!(marked_processes(&m).is_empty());
    assert!(bystander.try_wait().expect("try_wait").is_none());
    let _ = bystander.kill();
    let _ = bystander.wait();
}

#[test]
fn a_timeout_names_what_still_runs() {
    let m = marker("harness_timeout");
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let fs = Forkscope::start(&m, &["run", "--headless", "--", "sleep", "600"]);
        fs.wait_event("an event that never comes", secs(2.0), |e| {
            kind(e) == "no-such-kind"
        });
    }));
    let text = message(outcome.expect_err("the wait must time out"));
    assert!(
        text.contains("processes of the test still running"),
        "{text}"
    );
    assert!(text.contains("sleep 600"), "{text}");
    assert!(
        marked_processes(&m).is_empty(),
        "the drop ended the session"
    );
}

#[test]
fn a_one_shot_command_that_leaves_a_process_behind_fails() {
    let m = marker("harness_cmd");
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        command_output(
            Command::new("sh")
                .args(["-c", "sleep 600 >/dev/null 2>&1 & echo started"])
                .env(MARKER_VAR, &m),
            secs(30.0),
        )
    }));
    let text = message(outcome.expect_err("the leak must be reported"));
    assert!(text.contains("sleep 600"), "{text}");
    assert!(marked_processes(&m).is_empty());
}

#[test]
fn a_clean_session_passes_every_check() {
    let (code, events) = run_clean(
        "harness_clean",
        &["run", "--headless", "--", "true"],
        secs(30.0),
    );
    assert_eq!(code, 0, "{}", dump(&events));
    let run = run("poll", &[], &["sh", "-c", "echo hi"], secs(30.0));
    assert_eq!(run.stdout_lines(), vec!["hi"]);
    run.assert_nothing_left();
}

#[test]
fn the_tracking_probes_answer_the_same_each_time() {
    // Probed once per test binary (OnceLock): later calls cost nothing and cannot disagree.
    let first = (kernel_available(), ptrace_available());
    let started = std::time::Instant::now();
    for _ in 0..100 {
        assert_eq!((kernel_available(), ptrace_available()), first);
    }
    // 100 probes that each started forkscope would take seconds; cached ones take
    // microseconds (a second is the margin for a loaded machine).
    assert!(started.elapsed() < secs(1.0), "{:?}", started.elapsed());
}
