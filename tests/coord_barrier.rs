//! Hosted barriers (`forkscope barrier wait`): parties pass together for several
//! generations; the barrier breaks, releasing every waiter with exit 3 and a reason, when a
//! waiting party dies, when a worker that is expected ends for good, on timeout and on abort.

mod common;

use std::time::Instant;

use common::socket::SocketDir;
use common::*;
use serde_json::Value;

/// A worker script: waits at barrier `b` (PARTIES, extra flags), then prints `rc=N`.
fn waiter(parties: u32, flags: &str) -> String {
    format!(
        "{} barrier wait b --parties {parties} {flags}; echo rc=$?",
        bin()
    )
}

fn barrier_steps<'a>(events: &'a [Value], step: &str) -> Vec<&'a Value> {
    of_kind(events, "barrier")
        .into_iter()
        .filter(|e| e["step"] == step)
        .collect()
}

fn outputs(events: &[Value]) -> Vec<String> {
    of_kind(events, "output")
        .iter()
        .filter_map(|e| e["line"].as_str().map(String::from))
        .collect()
}

#[test]
fn three_workers_pass_together_for_several_generations() {
    let script = format!(
        "for g in 1 2 3 4 5; do {} barrier wait b --parties 3 || exit 9; done; echo done",
        bin()
    );
    let sockets = SocketDir::new();
    let m = marker("barrier_gens");
    let mut fs = sockets.start(
        &m,
        &["run", "--headless", "-n", "3", "--", "sh", "-c", &script],
    );
    let (code, events) = fs.finish_clean(secs(60.0));
    assert_eq!(code, 0, "{}", dump(&events));
    let passes = barrier_steps(&events, "pass");
    let generations: Vec<u64> = passes
        .iter()
        .filter_map(|e| e["generation"].as_u64())
        .collect();
    assert_eq!(generations, [0, 1, 2, 3, 4]);
    assert_eq!(barrier_steps(&events, "arrive").len(), 15);
    assert!(barrier_steps(&events, "break").is_empty());
    // Every arrival of a generation comes before its pass.
    for pass in passes {
        let g = &pass["generation"];
        let arrivals = barrier_steps(&events, "arrive")
            .into_iter()
            .filter(|a| &a["generation"] == g && a["t"].as_f64() <= pass["t"].as_f64())
            .count();
        assert_eq!(arrivals, 3, "generation {g}");
    }
    assert_eq!(outputs(&events).iter().filter(|l| *l == "done").count(), 3);
}

/// Starts 3 workers waiting at a 4-party barrier; returns the session once all 3 arrived.
fn three_waiting(sockets: &SocketDir, m: &str) -> Forkscope {
    let fs = sockets.start(
        m,
        &[
            "run",
            "--headless",
            "-n",
            "3",
            "--",
            "sh",
            "-c",
            &waiter(4, ""),
        ],
    );
    fs.wait_until("3 arrivals", secs(20.0), |events| {
        barrier_steps(events, "arrive").len() == 3
    });
    fs
}

#[test]
fn a_waiting_party_killed_breaks_the_barrier_at_once() {
    let sockets = SocketDir::new();
    let m = marker("barrier_kill");
    let mut fs = three_waiting(&sockets, &m);
    let events = fs.events();
    let victim = pid_of(barrier_steps(&events, "arrive")[1]);
    let killed = Instant::now();
    // SAFETY: kill(2) of a `forkscope barrier wait` this test's session started.
    assert_eq!(unsafe { libc::kill(victim, libc::SIGKILL) }, 0);
    let broke = fs.wait_event("the break", secs(20.0), |e| {
        kind(e) == "barrier" && e["step"] == "break"
    });
    // Measured, not asserted (the machine is shared): kill to the break event read here.
    eprintln!(
        "barrier break after SIGKILL of a party: {:.1} ms (kill to event received by the test)",
        killed.elapsed().as_secs_f64() * 1000.0
    );
    let reason = broke["reason"].as_str().unwrap_or("");
    assert!(reason.contains(&victim.to_string()), "{reason}");
    let events = fs.wait_until("the two other waiters' verdicts", secs(20.0), |events| {
        outputs(events).iter().filter(|l| *l == "rc=3").count() == 2
    });
    // The session's own clock: from the party's death (the first of its exit and the
    // closing of its connection) to the break.
    if let Some(exit) = exit_of(&events, victim) {
        eprintln!(
            "break - exit event of the party: {:.1} ms (forkscope's clock)",
            (broke["t"].as_f64().unwrap_or(0.0) - exit["t"].as_f64().unwrap_or(0.0)) * 1000.0
        );
    }
    let (code, _) = fs.finish_clean(secs(20.0));
    assert_eq!(code, 0, "the workers' shells exit 0 after echo");
}

#[test]
fn a_waiting_worker_killed_breaks_the_barrier_though_its_client_lives_on() {
    let sockets = SocketDir::new();
    let m = marker("barrier_kill_worker");
    let mut fs = three_waiting(&sockets, &m);
    let events = fs.events();
    let worker0 = of_kind(&events, "spawn")
        .into_iter()
        .find(|e| e["worker"] == 0)
        .map(pid_of)
        .expect("worker 0");
    // SAFETY: kill(2) of a worker this test's session started.
    assert_eq!(unsafe { libc::kill(worker0, libc::SIGKILL) }, 0);
    let broke = fs.wait_event("the break", secs(20.0), |e| {
        kind(e) == "barrier" && e["step"] == "break"
    });
    let reason = broke["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains(&format!("pid {worker0}")) && reason.contains("SIGKILL"),
        "{reason}"
    );
    fs.finish_clean(secs(20.0));
}

#[test]
fn a_worker_that_ends_before_arriving_breaks_the_barrier() {
    let script = format!(
        "if [ \"$FORKSCOPE_WORKER\" = 2 ]; then exit 0; fi; {}",
        waiter(3, "")
    );
    let sockets = SocketDir::new();
    let m = marker("barrier_gone");
    let mut fs = sockets.start(
        &m,
        &["run", "--headless", "-n", "3", "--", "sh", "-c", &script],
    );
    let (code, events) = fs.finish_clean(secs(30.0));
    assert_eq!(code, 0);
    let breaks = barrier_steps(&events, "break");
    assert_eq!(breaks.len(), 1, "{}", dump(&events));
    let reason = breaks[0]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("will not be restarted"), "{reason}");
    assert_eq!(outputs(&events).iter().filter(|l| *l == "rc=3").count(), 2);
    assert!(barrier_steps(&events, "pass").is_empty());
}

#[test]
fn a_timeout_breaks_the_barrier() {
    let sockets = SocketDir::new();
    let m = marker("barrier_timeout");
    let mut fs = sockets.start(
        &m,
        &[
            "run",
            "--headless",
            "-n",
            "2",
            "--",
            "sh",
            "-c",
            &waiter(3, "--timeout 0.5"),
        ],
    );
    let (code, events) = fs.finish_clean(secs(30.0));
    assert_eq!(code, 0);
    let breaks = barrier_steps(&events, "break");
    assert_eq!(breaks.len(), 1, "{}", dump(&events));
    assert!(
        breaks[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("timeout")
    );
    assert_eq!(outputs(&events).iter().filter(|l| *l == "rc=3").count(), 2);
}

#[test]
fn ctl_barrier_abort_releases_every_waiter() {
    let sockets = SocketDir::new();
    let m = marker("barrier_abort");
    let mut fs = sockets.start(
        &m,
        &[
            "run",
            "--headless",
            "-n",
            "2",
            "--",
            "sh",
            "-c",
            &waiter(3, ""),
        ],
    );
    fs.wait_until("2 arrivals", secs(20.0), |events| {
        barrier_steps(events, "arrive").len() == 2
    });
    let status: Value = serde_json::from_str(&sockets.ctl(&["barrier", "status", "b", "--json"]))
        .expect("barrier status");
    assert_eq!(status["waiting"], 2, "{status}");
    sockets.ctl(&["barrier", "abort", "b"]);
    let (code, events) = fs.finish_clean(secs(30.0));
    assert_eq!(code, 0);
    let breaks = barrier_steps(&events, "break");
    assert!(
        breaks[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("aborted")
    );
    assert_eq!(outputs(&events).iter().filter(|l| *l == "rc=3").count(), 2);
}
