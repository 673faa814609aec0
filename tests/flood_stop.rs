//! Stopping while the tree floods its output: the drain before an exit obeys the same
//! backpressure as the rest, the stop timeout holds whatever the children write, and the
//! engine's memory stays bounded (docs/PERFORMANCE.md: ~27 MiB in release; the bound here is
//! for the debug build the tests run, far below the gigabytes a drain without bound reaches).

mod common;

use std::time::Instant;

use common::*;

/// The engine's peak resident memory must stay under this (KiB).
const PEAK_BOUND_KB: u64 = 200 * 1024;
/// Above this the watch SIGKILLs the engine, so a regression cannot eat the machine (KiB).
const VALVE_KB: u64 = 1024 * 1024;
/// From the stop to `end`: the stop timeout (1 s), then the consumer working off its backlog
/// (at most 100,000 events: seconds for the debug build on a loaded machine), plus margin.
const STOP_BOUND_SECS: f64 = 60.0;

fn start_flooding(m: &str, worker: &str) -> (Forkscope, MemoryWatch) {
    let fs = Forkscope::start_with(
        m,
        &[
            "run",
            "--headless",
            "--stop-timeout",
            "1",
            "--",
            "sh",
            "-c",
            worker,
        ],
        StartOptions {
            count_output: true,
            ..StartOptions::default()
        },
    );
    let watch = MemoryWatch::start(fs.engine_pid(), VALVE_KB);
    wait_for("the flood to start", secs(10.0), || {
        fs.output_count() > 1000
    });
    (fs, watch)
}

fn check_bounded(watch: MemoryWatch, stopped: Instant) {
    let took = stopped.elapsed();
    let (peak, killed) = watch.finish();
    assert!(!killed, "the engine passed {VALVE_KB} KiB and was killed");
    assert!(
        peak < PEAK_BOUND_KB,
        "engine peak {peak} KiB, bound {PEAK_BOUND_KB} KiB"
    );
    eprintln!("engine peak {peak} KiB; end {took:?} after the stop began");
}

#[test]
fn sigterm_during_a_flood_ends_at_the_stop_timeout_with_bounded_memory() {
    let m = marker("floodstop");
    // The worker (sh) dies of SIGTERM; `yes` and `head` go on writing into its pipe.
    let (mut fs, watch) = start_flooding(&m, "yes | head -c 2000000000");
    let stopped = Instant::now();
    fs.signal(libc::SIGTERM);
    let (code, events) = fs.finish_clean(secs(STOP_BOUND_SECS));
    check_bounded(watch, stopped);
    assert_eq!(code, 1, "the worker ended by SIGTERM");
    let worker = spawned_pids(&events)[0];
    assert_eq!(
        exit_of(&events, worker).expect("worker exit")["signal"],
        "SIGTERM"
    );
}

#[test]
fn an_orphan_flooding_its_dead_workers_pipe_is_stopped_at_the_stop_timeout() {
    let m = marker("orphanflood");
    // The worker exits at once; its orphan ignores SIGTERM and floods the worker's pipe.
    let (mut fs, watch) = start_flooding(&m, "(trap '' TERM; exec yes) & exit 0");
    let stopped = Instant::now();
    let (code, events) = fs.finish_clean(secs(STOP_BOUND_SECS));
    check_bounded(watch, stopped);
    assert_eq!(code, 0, "the worker exited 0:\n{}", dump(&events));
    let kills: Vec<&serde_json::Value> = of_kind(&events, "signal")
        .into_iter()
        .filter(|e| e["signal"] == "SIGKILL" && e["reason"] == "escalation")
        .collect();
    assert_eq!(
        kills.len(),
        1,
        "the orphan is killed at the stop timeout:\n{}",
        dump(&events)
    );
    let orphan = pid_of(kills[0]);
    assert_eq!(
        exit_of(&events, orphan).expect("orphan exit")["signal"],
        "SIGKILL"
    );
}
