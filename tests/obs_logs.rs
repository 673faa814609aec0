//! Worker log files (`log`, `log_max`, `log_keep`; `run --worker-log`): every line a worker
//! writes, fast, is in its files in order after many rotations, timestamped with its stream;
//! `log_keep` bounds the files; a path that cannot be written is exit 2 before anything runs.

mod common;

use common::obs::{kept_lines, split_line};
use common::*;

/// Lines each worker writes.
const N: usize = 20_000;

fn numbered(lines: &[String], stream: &str) -> Vec<usize> {
    lines
        .iter()
        .map(|l| split_line(l))
        .filter(|(s, _)| *s == stream)
        .map(|(_, text)| {
            text.strip_prefix("line ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected line {text:?}"))
        })
        .collect()
}

#[test]
fn every_line_is_kept_in_order_across_many_rotations_and_keep_bounds_the_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("forkscope.toml");
    // Both pools write N numbered lines as fast as sh can, and 3 lines on stderr.
    let body = format!(
        "echo start >&2; i=1; while [ $i -le {N} ]; do echo \"line $i\"; i=$((i+1)); done; \
         echo middle >&2; echo end >&2"
    );
    std::fs::write(
        &config,
        format!(
            r#"
[[pool]]
name = "many"
shell = true
command = '{body}'
workers = 2
log = "logs/{{pool}}-{{worker}}.log"
log_max = "8K"
log_keep = 1000

[[pool]]
name = "few"
shell = true
command = '{body}'
log = "logs/{{pool}}-{{worker}}.log"
log_max = 8192
log_keep = 3
"#
        ),
    )
    .expect("write config");
    let marker = marker("logs");
    let mut fs = Forkscope::start(
        &marker,
        &["up", "-f", config.to_str().expect("utf-8"), "--headless"],
    );
    let (code, events) = fs.finish_clean(secs(60.0));
    assert_eq!(code, 0, "{}", dump(&events));
    let logs = dir.path().join("logs");
    for worker in 0..2 {
        let (lines, files) = kept_lines(&logs.join(format!("many-{worker}.log")));
        // ~42 bytes a line, 8 KiB files: about a hundred rotations, none of them lost a line.
        assert!(
            files > 50,
            "only {files} files: the test did not rotate much"
        );
        assert_eq!(numbered(&lines, "stdout"), (1..=N).collect::<Vec<_>>());
        let stderr: Vec<&str> = lines
            .iter()
            .map(|l| split_line(l))
            .filter(|(s, _)| *s == "stderr")
            .map(|(_, t)| t)
            .collect();
        assert_eq!(stderr, ["start", "middle", "end"]);
        // The same lines as the events of that worker.
        let pid = of_kind(&events, "spawn")
            .into_iter()
            .find(|s| s["pool"] == "many" && s["worker"] == worker)
            .map(pid_of)
            .expect("spawn");
        assert_eq!(lines_of(&events, pid, "stdout").len(), N);
    }
    // log_keep = 3: the current file and 3 rotated ones, holding the newest lines, in order.
    let (lines, files) = kept_lines(&logs.join("few-0.log"));
    assert_eq!(files, 4);
    let kept = numbered(&lines, "stdout");
    let first = kept[0];
    assert!(first > 1, "nothing was rotated away");
    assert_eq!(kept, (first..=N).collect::<Vec<_>>());
    for entry in std::fs::read_dir(&logs).expect("read_dir") {
        let size = entry.expect("entry").metadata().expect("metadata").len();
        assert!(size <= 8192, "a file of {size} bytes passed log_max");
    }
}

#[test]
fn run_worker_log_flag_and_an_unwritable_path_is_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let template = dir.path().join("out/{pool}.{worker}.log");
    let mut fs = Forkscope::start(
        &marker("logrun"),
        &[
            "run",
            "--headless",
            "--name",
            "echo",
            "--worker-log",
            template.to_str().expect("utf-8"),
            "--",
            "sh",
            "-c",
            "echo hello; echo oops >&2",
        ],
    );
    let (code, events) = fs.finish_clean(secs(20.0));
    assert_eq!(code, 0, "{}", dump(&events));
    let (lines, files) = kept_lines(&dir.path().join("out/echo.0.log"));
    assert_eq!(files, 1);
    let mut seen: Vec<(String, String)> = lines
        .iter()
        .map(|l| split_line(l))
        .map(|(s, t)| (s.to_string(), t.to_string()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("stderr".to_string(), "oops".to_string()),
            ("stdout".to_string(), "hello".to_string())
        ]
    );

    // A directory where the file should be: refused before any worker starts.
    std::fs::create_dir_all(dir.path().join("taken.0.log")).expect("mkdir");
    let bad = dir.path().join("{pool}.{worker}.log");
    let mut fs = Forkscope::start(
        &marker("logbad"),
        &[
            "run",
            "--headless",
            "--name",
            "taken",
            "--worker-log",
            bad.to_str().expect("utf-8"),
            "--",
            "true",
        ],
    );
    let (status, events) = fs.finish(secs(20.0));
    assert_eq!(status.code(), Some(2), "{}", dump(&events));
    assert!(of_kind(&events, "spawn").is_empty());
    let stderr = fs.stderr();
    assert!(stderr.contains("taken.0.log"), "{stderr}");
}
