//! `--metrics`: a running session is scraped over real HTTP on 127.0.0.1 and its numbers
//! agree with the headless events (exits by status and signal, restarts, output lines, up);
//! two instances are scraped side by side (docs/scale.md); a non-loopback address without
//! `--metrics-public` is exit 2.

mod common;

use std::net::TcpStream;

use common::obs::{metrics_addr, scrape, value};
use common::*;
use serde_json::Value;

fn count(events: &[Value], pred: impl Fn(&Value) -> bool) -> usize {
    events.iter().filter(|e| pred(e)).count()
}

#[test]
fn a_scrape_agrees_with_the_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("forkscope.toml");
    std::fs::write(
        &config,
        r#"
[[pool]]
name = "idle"
command = ["sleep", "600"]
workers = 2

[[pool]]
name = "crash"
shell = true
command = "echo boom; exit 3"
restart = "on-failure"
backoff = { initial = "10ms", max = "20ms" }
max_restarts = 2
restart_window = "1m"

[[pool]]
name = "chatty"
shell = true
command = "i=0; while [ $i -lt 100 ]; do echo \"line $i\"; i=$((i+1)); done; kill -USR1 $$"
"#,
    )
    .expect("write config");
    let marker = marker("metrics");
    let mut fs = Forkscope::start(
        &marker,
        &[
            "up",
            "-f",
            config.to_str().expect("utf-8"),
            "--headless",
            "--samples",
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let addr = metrics_addr(&fs);
    // The crash pool gives up after its restarts; chatty dies of SIGUSR1 after 100 lines.
    let events = fs.wait_until("crash failed and chatty ended", secs(30.0), |events| {
        events
            .iter()
            .any(|e| kind(e) == "worker_failed" && e["pool"] == "crash")
            && events
                .iter()
                .any(|e| kind(e) == "exit" && e["pool"] == "chatty")
            && count(events, |e| kind(e) == "spawn" && e["pool"] == "idle") == 2
    });
    let body = scrape(&addr);
    let w = |pool: &str| format!("pool=\"{pool}\",worker=\"0\"");

    let crash_exits = count(&events, |e| {
        kind(e) == "exit" && e["pool"] == "crash" && e["code"] == 3
    });
    assert!(crash_exits >= 3, "{}", dump(&events));
    assert_eq!(
        value(
            &body,
            "forkscope_worker_exits_total",
            &format!("{},status=\"3\"", w("crash"))
        ),
        Some(crash_exits as f64),
        "{body}"
    );
    let restarts = count(&events, |e| kind(e) == "restart" && e["pool"] == "crash");
    assert_eq!(
        value(&body, "forkscope_worker_restarts_total", &w("crash")),
        Some(restarts as f64),
        "{body}"
    );
    assert_eq!(
        value(
            &body,
            "forkscope_pool_worker_failures_total",
            "pool=\"crash\""
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &body,
            "forkscope_worker_signaled_total",
            &format!("{},signal=\"SIGUSR1\"", w("chatty"))
        ),
        Some(1.0),
        "{body}"
    );
    let chatty = of_kind(&events, "spawn")
        .into_iter()
        .find(|s| s["pool"] == "chatty")
        .map(pid_of)
        .expect("chatty spawn");
    let lines = lines_of(&events, chatty, "stdout");
    assert_eq!(lines.len(), 100);
    let bytes: usize = lines.iter().map(String::len).sum();
    assert_eq!(
        value(&body, "forkscope_worker_output_lines_total", &w("chatty")),
        Some(100.0)
    );
    assert_eq!(
        value(&body, "forkscope_worker_output_bytes_total", &w("chatty")),
        Some(bytes as f64)
    );
    for worker in ["0", "1"] {
        let labels = format!("pool=\"idle\",worker=\"{worker}\"");
        assert_eq!(value(&body, "forkscope_worker_up", &labels), Some(1.0));
    }
    assert_eq!(value(&body, "forkscope_worker_up", &w("chatty")), Some(0.0));
    assert_eq!(
        value(&body, "forkscope_pool_size", "pool=\"idle\""),
        Some(2.0)
    );
    let outputs = value(&body, "forkscope_events_total", "kind=\"output\"").expect("events");
    assert!(outputs >= 100.0 + crash_exits as f64, "{body}");
    assert!(
        body.contains("forkscope_backpressure_pauses_total 0"),
        "{body}"
    );
    assert!(body.trim_end().ends_with("# EOF"), "{body}");

    // A sample later, the idle workers have memory and the counters are there.
    fs.wait_kind("sample", 2, secs(10.0));
    let body = scrape(&addr);
    let rss = value(
        &body,
        "forkscope_worker_rss_bytes",
        "pool=\"idle\",worker=\"0\"",
    );
    assert!(rss.is_some_and(|r| r > 0.0), "{body}");
    assert!(
        value(
            &body,
            "forkscope_worker_cpu_seconds_total",
            "pool=\"idle\",worker=\"0\""
        )
        .is_some(),
        "{body}"
    );
    fs.signal(libc::SIGTERM);
    let (code, events) = fs.finish_clean(secs(20.0));
    assert_eq!(code, 1, "{}", dump(&events));
    // The server ends with the session.
    assert!(
        TcpStream::connect(&addr).is_err(),
        "still serving after the end"
    );
}

#[test]
fn two_instances_are_scraped_side_by_side() {
    let start = |name: &str| {
        Forkscope::start(
            &marker(name),
            &[
                "run",
                "--headless",
                "--metrics",
                "127.0.0.1:0",
                "--name",
                name,
                "-n",
                "3",
                "--",
                "sleep",
                "600",
            ],
        )
    };
    let mut first = start("fleet_a");
    let mut second = start("fleet_b");
    let addrs = [metrics_addr(&first), metrics_addr(&second)];
    assert_ne!(addrs[0], addrs[1]);
    for fs in [&first, &second] {
        fs.wait_kind("spawn", 3, secs(10.0));
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string();
    for (addr, (name, other)) in addrs
        .iter()
        .zip([("fleet_a", "fleet_b"), ("fleet_b", "fleet_a")])
    {
        let body = scrape(addr);
        assert_eq!(
            value(&body, "forkscope_pool_size", &format!("pool=\"{name}\"")),
            Some(3.0),
            "{body}"
        );
        assert!(!body.contains(other), "{body}");
        let up: f64 = (0..3)
            .filter_map(|w| {
                value(
                    &body,
                    "forkscope_worker_up",
                    &format!("pool=\"{name}\",worker=\"{w}\""),
                )
            })
            .sum();
        assert_eq!(up, 3.0, "{body}");
        assert!(
            body.contains(&format!("host=\"{host}\"")),
            "no host label: {body}"
        );
    }
    first.signal(libc::SIGTERM);
    second.signal(libc::SIGTERM);
    first.finish_clean(secs(20.0));
    second.finish_clean(secs(20.0));
}

#[test]
fn a_public_address_needs_metrics_public() {
    let marker = marker("metricspub");
    let mut fs = Forkscope::start(
        &marker,
        &["run", "--headless", "--metrics", "0.0.0.0:0", "--", "true"],
    );
    let (status, events) = fs.finish(secs(20.0));
    assert_eq!(status.code(), Some(2), "{}", dump(&events));
    assert!(of_kind(&events, "spawn").is_empty());
    let stderr = fs.stderr();
    assert!(stderr.contains("--metrics-public"), "{stderr}");
}
