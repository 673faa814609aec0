//! Unit tests of a pool's `log`, `log_max` and `log_keep`: parsed, defaulted, relative to the
//! config's directory, and each bad value refused at its FILE:LINE:COL.

use super::tests::{POOL, assert_error, parse};
use crate::obs::logs::{DEFAULT_KEEP, DEFAULT_MAX_BYTES, LogSpec};

fn logs_of(keys: &str) -> Vec<(String, LogSpec)> {
    parse(&format!("{POOL}{keys}")).expect("valid").logs
}

#[test]
fn keys_parsed_and_defaulted() {
    assert!(logs_of("").is_empty());
    assert_eq!(
        logs_of("log = \"logs/{pool}-{worker}.log\"\n"),
        [(
            "w".to_string(),
            LogSpec {
                template: "/logs/{pool}-{worker}.log".into(),
                max_bytes: DEFAULT_MAX_BYTES,
                keep: DEFAULT_KEEP,
            }
        )]
    );
    let logs = logs_of("log = \"/var/log/w.log\"\nlog_max = \"10MB\"\nlog_keep = 0\n");
    assert_eq!(logs[0].1.template, "/var/log/w.log");
    assert_eq!(logs[0].1.max_bytes, 10 << 20);
    assert_eq!(logs[0].1.keep, 0);
    assert_eq!(
        logs_of("log = \"a\"\nlog_max = 4096\n")[0].1.max_bytes,
        4096
    );
}

#[test]
fn bad_values_are_located() {
    let at = |keys: &str, line: usize, col: usize, needle: &str| {
        assert_error(&format!("{POOL}{keys}\n"), line, col, needle);
    };
    at("log = \"\"", 4, 7, "log is empty");
    at("log_max = \"1M\"", 4, 11, "need log");
    at("log_keep = 3", 4, 12, "need log");
    at("log = \"a\"\nlog_max = 100", 5, 11, "at least 1K");
    at(
        "log = \"a\"\nlog_max = \"10 parsecs\"",
        5,
        11,
        "a size is bytes",
    );
    at("log = \"a\"\nlog_max = -5", 5, 11, "log_max");
    at(
        "log = \"a\"\nlog_keep = 1001",
        5,
        12,
        "log_keep must be 0 to 1000",
    );
    at(
        "log = \"a\"\nlog_keep = -1",
        5,
        12,
        "log_keep must be 0 to 1000",
    );
    at("log = 3", 4, 7, "string");
}
