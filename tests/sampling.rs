//! Samples cover the whole supervised tree, grandchildren included, under every source.

mod common;

use common::*;

fn sampled_pids(events: &[serde_json::Value]) -> Vec<std::collections::BTreeSet<i64>> {
    of_kind(events, "sample")
        .iter()
        .map(|s| {
            s["procs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["pid"].as_i64().unwrap())
                .collect()
        })
        .collect()
}

fn grandchild_is_sampled(track: &str) {
    let m = marker(&format!("sampling-{track}"));
    let mut fs = Forkscope::start(
        &m,
        &[
            "run",
            "--headless",
            "--samples",
            "--sample-interval",
            "0.1",
            "--track",
            track,
            "--",
            "sh",
            "-c",
            "sleep 30 & echo child $!; wait",
        ],
    );
    let line = fs.wait_event("the child's pid", secs(5.0), |e| {
        kind(e) == "output" && e["line"].as_str().unwrap_or("").starts_with("child ")
    });
    let child: i64 = line["line"].as_str().unwrap()[6..].trim().parse().unwrap();
    let worker = spawned_pids(&fs.events())[0] as i64;
    fs.wait_until("a sample with worker and grandchild", secs(5.0), |events| {
        sampled_pids(events)
            .iter()
            .any(|pids| pids.contains(&child) && pids.contains(&worker))
    });
    let samples = sampled_pids(&fs.events());
    let last = samples.last().unwrap();
    assert!(
        last.iter().all(|pid| *pid == worker || *pid == child),
        "only the tree is sampled: {last:?}"
    );
    fs.signal(libc::SIGTERM);
    fs.finish(secs(8.0));
    assert_nothing_left(&m);
}

#[test]
fn kernel_source_samples_only_the_tree_including_grandchildren() {
    grandchild_is_sampled("kernel");
}

#[test]
fn poll_source_samples_the_tree_including_grandchildren() {
    grandchild_is_sampled("poll");
}

#[test]
fn ptrace_source_samples_the_tree_including_grandchildren() {
    grandchild_is_sampled("ptrace");
}
