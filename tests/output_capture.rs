//! Output capture through the real binary: order and `seq`, stderr marking, over-long lines,
//! invalid UTF-8, a last line without newline, and a flood of hundreds of MB without loss and
//! with bounded engine memory.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn single_worker(name: &str, cmd: &[&str]) -> (i32, Vec<Value>, i32) {
    let m = marker(name);
    let mut args = vec!["run", "--headless", "--"];
    args.extend_from_slice(cmd);
    let mut fs = Forkscope::start(&m, &args);
    let (code, events) = fs.finish_clean(secs(9.0));
    let pid = spawned_pids(&events)[0];
    (code, events, pid)
}

/// `seq` of the stream's events is exactly 1..=n.
fn assert_contiguous(events: &[Value], pid: i32, stream: &str) {
    for (i, e) in output_of(events, pid, stream).iter().enumerate() {
        assert_eq!(e["seq"].as_u64(), Some(i as u64 + 1), "seq gap at {e}");
    }
}

#[test]
fn lines_in_order_with_contiguous_seq() {
    let (code, events, pid) = single_worker("order", &["seq", "1", "5000"]);
    assert_eq!(code, 0);
    let lines = lines_of(&events, pid, "stdout");
    let expected: Vec<String> = (1..=5000).map(|i| i.to_string()).collect();
    assert_eq!(lines, expected);
    assert_contiguous(&events, pid, "stdout");
    // Output comes before the exit event.
    let exit_at = events
        .iter()
        .position(|e| kind(e) == "exit" && pid_of(e) == pid)
        .unwrap();
    let last_output = events
        .iter()
        .rposition(|e| kind(e) == "output" && pid_of(e) == pid)
        .unwrap();
    assert!(last_output < exit_at);
}

#[test]
fn stderr_is_marked_and_counted_separately() {
    let (_, events, pid) = single_worker(
        "stderr",
        &[
            "sh",
            "-c",
            "echo out1; echo err1 >&2; echo out2; echo err2 >&2; echo err3 >&2",
        ],
    );
    assert_eq!(lines_of(&events, pid, "stdout"), vec!["out1", "out2"]);
    assert_eq!(
        lines_of(&events, pid, "stderr"),
        vec!["err1", "err2", "err3"]
    );
    assert_contiguous(&events, pid, "stdout");
    assert_contiguous(&events, pid, "stderr");
}

#[test]
fn long_line_comes_in_partial_pieces_that_rebuild_it() {
    // `seq 1 50000` without newlines: about 239 KB, every piece different.
    let (_, events, pid) = single_worker(
        "longline",
        &["sh", "-c", "seq 1 50000 | tr -d '\\n'; echo; echo after"],
    );
    let expected: String = (1..=50000).map(|i| i.to_string()).collect();
    assert!(expected.len() > 3 * 64 * 1024);
    let pieces = output_of(&events, pid, "stdout");
    let mut rebuilt = String::new();
    let mut i = 0;
    while pieces[i]["partial"] == true {
        assert!(pieces[i]["line"].as_str().unwrap().len() <= 64 * 1024);
        rebuilt.push_str(pieces[i]["line"].as_str().unwrap());
        i += 1;
    }
    rebuilt.push_str(pieces[i]["line"].as_str().unwrap());
    assert!(i >= 2, "a 239 KB line must come in at least 3 pieces");
    assert_eq!(rebuilt, expected);
    // The last piece has no `partial` field (false), and the next line is whole.
    assert!(pieces[i].get("partial").is_none() || pieces[i]["partial"] == false);
    assert_eq!(pieces[i + 1]["line"], "after");
    assert_eq!(pieces.len(), i + 2);
    assert_contiguous(&events, pid, "stdout");
}

#[test]
fn invalid_utf8_is_kept_as_raw_hex() {
    let (_, events, pid) = single_worker(
        "utf8",
        &[
            "sh",
            "-c",
            "printf 'ok\\377\\376end\\n'; printf 'caf\\303\\251\\n'",
        ],
    );
    let outputs = output_of(&events, pid, "stdout");
    assert_eq!(outputs.len(), 2);
    assert_eq!(outputs[0]["raw_hex"], "6f6bfffe656e64");
    assert_eq!(outputs[0]["line"], "ok\u{fffd}\u{fffd}end");
    // Valid UTF-8 is plain text, without raw_hex.
    assert_eq!(outputs[1]["line"], "café");
    assert!(outputs[1].get("raw_hex").is_none());
}

#[test]
fn last_line_without_newline_is_kept() {
    let (_, events, pid) = single_worker(
        "nonewline",
        &["sh", "-c", "printf 'first\\nno-newline'; printf 'tail' >&2"],
    );
    assert_eq!(
        lines_of(&events, pid, "stdout"),
        vec!["first", "no-newline"]
    );
    assert_eq!(lines_of(&events, pid, "stderr"), vec!["tail"]);
}

#[test]
fn descendants_sharing_the_pipes_are_captured_under_the_worker() {
    let (_, events, pid) = single_worker(
        "sharedpipe",
        &["sh", "-c", "sh -c 'echo from-child'; echo from-worker"],
    );
    assert_eq!(
        lines_of(&events, pid, "stdout"),
        vec!["from-child", "from-worker"]
    );
}

/// Runs a flood worker with a consumer that reads nothing for the first `stall`, reading the
/// engine's peak memory (VmHWM) meanwhile. Returns the events, the worker pid, the largest
/// VmHWM seen (KiB) and the time the whole run took.
fn flood(name: &str, shell: &str, stall: Duration) -> (Vec<Value>, i32, u64, Duration) {
    let m = marker(name);
    let started = Instant::now();
    let (gate, gate_rx) = std::sync::mpsc::channel();
    let mut fs = Forkscope::start_gated(
        &m,
        &["run", "--headless", "--", "sh", "-c", shell],
        Some(gate_rx),
    );
    let guardian = fs.pid();
    let mut engine = None;
    wait_for("the engine process", secs(5.0), || {
        engine = engine_of(guardian);
        engine.is_some()
    });
    let engine = engine.expect("engine pid");
    let mut peak = 0;
    let open_gate_at = Instant::now() + stall;
    let mut gate = Some(gate);
    let deadline = Instant::now() + secs(60.0);
    while alive(engine) && Instant::now() < deadline {
        if let Some(kb) = status_kb(engine, "VmHWM") {
            peak = peak.max(kb);
        }
        if Instant::now() >= open_gate_at
            && let Some(gate) = gate.take()
        {
            let _ = gate.send(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(gate);
    let (code, events) = fs.finish_clean(secs(60.0));
    assert_eq!(code, 0, "{}", dump(&events));
    assert_eq!(fs.engine_pid(), engine);
    let pid = spawned_pids(&events)[0];
    (events, pid, peak, started.elapsed())
}

#[test]
fn flood_of_long_lines_with_a_stalled_reader_loses_nothing_and_stays_bounded() {
    // 100 MB in 25,000 lines of 4000 bytes; nothing is read for the first second, so the
    // engine must pause the worker instead of buffering. (Debug builds push about 30 MB/s;
    // the 1 GB flood is in benches/output.sh, on a release build.)
    let (events, pid, peak_kb, took) = flood(
        "floodlong",
        "head -c 100000000 /dev/zero | tr '\\0' x | fold -w 4000",
        secs(1.0),
    );
    let outputs = output_of(&events, pid, "stdout");
    assert_eq!(outputs.len(), 25_000);
    assert_contiguous(&events, pid, "stdout");
    assert!(
        outputs
            .iter()
            .all(|e| e["line"].as_str().unwrap().len() == 4000)
    );
    eprintln!("flood of long lines: {took:?}, engine VmHWM {peak_kb} KiB");
    assert!(peak_kb < 64 * 1024, "engine peak memory {peak_kb} KiB");
}

#[test]
fn flood_without_newlines_with_a_stalled_reader_stays_bounded() {
    // 100 MB with no newline at all: 64 KiB pieces, all partial but the last.
    let (events, pid, peak_kb, took) = flood(
        "floodraw",
        "head -c 100000000 /dev/zero | tr '\\0' y",
        secs(1.0),
    );
    let outputs = output_of(&events, pid, "stdout");
    assert_contiguous(&events, pid, "stdout");
    let bytes: usize = outputs
        .iter()
        .map(|e| e["line"].as_str().unwrap().len())
        .sum();
    assert_eq!(bytes, 100_000_000);
    assert!(
        outputs[..outputs.len() - 1]
            .iter()
            .all(|e| e["partial"] == true)
    );
    eprintln!("flood without newlines: {took:?}, engine VmHWM {peak_kb} KiB");
    assert!(peak_kb < 64 * 1024, "engine peak memory {peak_kb} KiB");
}

#[test]
fn flood_of_short_lines_on_both_streams_has_no_seq_gap() {
    // 100,000 short lines on stdout and 100,000 on stderr at once.
    let (events, pid, peak_kb, took) = flood(
        "floodshort",
        "seq 1 100000 & seq 1 100000 >&2; wait",
        Duration::ZERO,
    );
    for stream in ["stdout", "stderr"] {
        let lines = output_of(&events, pid, stream);
        assert_eq!(lines.len(), 100_000, "{stream}");
        assert_contiguous(&events, pid, stream);
        assert_eq!(lines[99_999]["line"], "100000");
    }
    eprintln!("flood of short lines: {took:?}, engine VmHWM {peak_kb} KiB");
}

#[test]
fn output_of_a_descendant_after_the_worker_exited_is_kept_under_the_worker() {
    let m = marker("lateoutput");
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("armed");
    // The worker exits only once the subshell has armed its trap (a FIFO handshake), so the
    // leftover SIGTERM that follows the worker's exit always finds the trap in place.
    let script = format!(
        "mkfifo {f}; (trap '' TERM; echo armed > {f}; sleep 0.3; echo late) & read x < {f}; echo early",
        f = fifo.display()
    );
    let mut fs = Forkscope::start(
        &m,
        &[
            "run",
            "--headless",
            "--stop-timeout",
            "2",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    let (code, events) = fs.finish_clean(secs(8.0));
    assert_eq!(code, 0);
    let pid = spawned_pids(&events)[0];
    assert_eq!(lines_of(&events, pid, "stdout"), vec!["early", "late"]);
    assert_contiguous(&events, pid, "stdout");
    let exit_at = events
        .iter()
        .position(|e| kind(e) == "exit" && pid_of(e) == pid)
        .unwrap();
    let late_at = events.iter().position(|e| e["line"] == "late").unwrap();
    assert!(late_at > exit_at);
}
