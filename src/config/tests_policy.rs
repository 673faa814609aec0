//! Unit tests of the per-pool policy keys: each value parsed, each bad value refused at its
//! FILE:LINE:COL, and `up`'s `--stop-timeout` staying the default under a pool's own.

use std::time::Duration;

use super::tests::{POOL, assert_error, parse};
use crate::model::policy::{PoolPolicy, RestartLimit};

fn policy_of(keys: &str) -> PoolPolicy {
    let config = parse(&format!("{POOL}{keys}")).expect("valid");
    config.pools[0].policy.clone()
}

#[test]
fn every_key_parsed() {
    let policy = policy_of(
        "stop_timeout = 0.5\nsuccess_codes = [0, 3, 255]\n\
         backoff = { initial = \"50ms\", max = \"2m\" }\n\
         max_restarts = 4\nrestart_window = \"30s\"\nstart_secs = 2\n",
    );
    assert_eq!(policy.stop_timeout, Some(Duration::from_millis(500)));
    assert_eq!(policy.success_codes, vec![0, 3, 255]);
    assert_eq!(policy.backoff.initial, Duration::from_millis(50));
    assert_eq!(policy.backoff.max, Duration::from_secs(120));
    assert_eq!(
        policy.restart_limit,
        Some(RestartLimit {
            max_restarts: 4,
            window: Duration::from_secs(30)
        })
    );
    assert_eq!(policy.start_secs, Duration::from_secs(2));
}

#[test]
fn defaults_and_partial_values() {
    assert_eq!(policy_of(""), PoolPolicy::default());
    let policy =
        policy_of("backoff = { max = \"1h\" }\nmax_restarts = 0\nstop_timeout = \"1.5s\"\n");
    assert_eq!(policy.backoff.initial, Duration::from_millis(100));
    assert_eq!(policy.backoff.max, Duration::from_secs(3600));
    // Without restart_window, a minute.
    assert_eq!(
        policy.restart_limit,
        Some(RestartLimit {
            max_restarts: 0,
            window: Duration::from_secs(60)
        })
    );
    assert_eq!(policy.stop_timeout, Some(Duration::from_millis(1500)));
}

#[test]
fn bad_values_are_located() {
    let at = |keys: &str, col: usize, needle: &str| {
        assert_error(&format!("{POOL}{keys}\n"), 4, col, needle);
    };
    at("stop_timeout = -1", 16, "stop_timeout must be 0 to 86400");
    at("stop_timeout = \"soon\"", 16, "not a duration");
    at("stop_timeout = \"5 parsecs\"", 16, "not a duration");
    at("stop_timeout = 90000", 16, "86400");
    at("success_codes = []", 17, "success_codes is empty");
    at("success_codes = [0, 256]", 21, "0 to 255, not 256");
    at("success_codes = [-1]", 18, "0 to 255, not -1");
    at("success_codes = \"0\"", 17, "invalid type");
    at("backoff = { initial = 0 }", 23, "backoff.initial must be");
    at(
        "backoff = { initial = \"2s\", max = \"1s\" }",
        35,
        "shorter than backoff.initial",
    );
    at(
        "backoff = { inital = \"2s\" }",
        13,
        "unknown field `inital`",
    );
    at("max_restarts = -2", 16, "max_restarts must be 0 to");
    at("max_restarts = 2000000", 16, "max_restarts must be 0 to");
    at(
        "restart_window = \"1m\"",
        18,
        "restart_window needs max_restarts",
    );
    at("start_secs = \"1y\"", 14, "not a duration");
    at("start_secs = -0.5", 14, "start_secs must be 0 to 86400");
}

#[test]
fn the_command_line_stop_timeout_stays_the_default() {
    use crate::cli::{Cli, Command};
    use clap::Parser;
    let config = parse(&format!(
        "{POOL}stop_timeout = 0.5\n[[pool]]\nname = \"other\"\ncommand = [\"true\"]\n"
    ))
    .expect("valid");
    let cli = Cli::try_parse_from(["forkscope", "up", "--stop-timeout", "7"]).expect("cli");
    let Command::Up(args) = cli.command else {
        panic!("not up");
    };
    let plan = super::up::merge(config, &(&args).into()).expect("plan");
    assert_eq!(plan.supervision.stop_timeout, 7.0);
    assert_eq!(
        plan.pools[0].policy.stop_timeout,
        Some(Duration::from_millis(500))
    );
    assert_eq!(plan.pools[1].policy.stop_timeout, None);
}
