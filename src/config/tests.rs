//! Unit tests of the config loader: one per error class (each checks FILE:LINE:COL), the
//! happy path, `up`'s merging, the example file, and a property test that no input panics.

use std::path::Path;

use super::up::merge;
use super::*;
use crate::cli::{Cli, Command};
use crate::settings::Up;
use clap::Parser;

pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_bytes(
        text.as_bytes(),
        "test.toml",
        Path::new("/cfg/test.toml"),
        Path::new("/"),
    )
}

/// (line, col, message) of the error `text` must give.
#[track_caller]
fn error(text: &str) -> (usize, usize, String) {
    match parse(text) {
        Ok(config) => panic!("accepted {text:?}: {config:?}"),
        Err(ConfigError::At(l)) => {
            assert_eq!(l.path, "test.toml");
            (l.line, l.col, l.message)
        }
        Err(other) => panic!("unlocated error {other}"),
    }
}

#[track_caller]
pub(super) fn assert_error(text: &str, line: usize, col: usize, needle: &str) {
    let (l, c, message) = error(text);
    assert_eq!((l, c), (line, col), "{message}");
    assert!(
        message.contains(needle),
        "{message:?} does not mention {needle:?}"
    );
}

pub(super) const POOL: &str = "[[pool]]\nname = \"w\"\ncommand = [\"true\"]\n";

#[test]
fn full_config() {
    let config = parse(
        r#"
stop_timeout = 2
sample_interval = 0.25
track = "poll"

[[pool]]
name = "web"
command = ["python3", "-m", "http.server"]
workers = 3
restart = "on-failure"
stop_signal = "INT"
env = { PORT = "8000", A = "b" }
cwd = "tmp"

[[pool]]
name = "sh"
command = "echo $FORKSCOPE_POOL"
shell = true
stop_signal = 1

[[shm.segment]]
name = "counts"
size = "4K"

[[shm.segment]]
name = "flags"
size = 16

[[shm.layout]]
match = "psm_*"
layout = "count:i64, flags:u8[16]"
"#,
    )
    .expect("valid");
    assert_eq!(config.stop_timeout, Some(2.0));
    assert_eq!(config.sample_interval, Some(0.25));
    assert_eq!(config.track, Some(TrackMode::Poll));
    let web = &config.pools[0];
    assert_eq!(web.name, "web");
    assert_eq!(web.size, 3);
    assert_eq!(web.restart, RestartPolicy::OnFailure);
    assert_eq!(web.stop_signal, libc::SIGINT);
    assert_eq!(
        web.env,
        vec![("A".into(), "b".into()), ("PORT".into(), "8000".into())]
    );
    assert_eq!(web.cwd.as_deref(), Some(Path::new("/tmp")));
    let sh = &config.pools[1];
    assert_eq!(sh.argv, vec!["sh", "-c", "echo $FORKSCOPE_POOL"]);
    assert_eq!((sh.size, sh.restart), (1, RestartPolicy::Never));
    assert_eq!(sh.stop_signal, libc::SIGHUP);
    assert_eq!(
        config.segments,
        vec![
            ShmSpec {
                name: "counts".into(),
                size: 4096
            },
            ShmSpec {
                name: "flags".into(),
                size: 16
            }
        ]
    );
    assert_eq!(config.layouts.len(), 1);
    assert_eq!(config.layouts[0].pattern, "psm_*");
    assert_eq!(config.layouts[0].origin, "test.toml:31:10");
    assert!(matches!(&config.layouts[0].format, Format::Layout(l) if l.size == 24));
}

#[test]
fn defaults() {
    let config = parse(POOL).expect("valid");
    let pool = &config.pools[0];
    assert_eq!(pool.size, 1);
    assert_eq!(pool.restart, RestartPolicy::Never);
    assert_eq!(pool.stop_signal, libc::SIGTERM);
    assert!(pool.env.is_empty() && pool.cwd.is_none());
    assert_eq!(config.stop_timeout, None);
    assert!(parse("").expect("empty is valid").pools.is_empty());
}

#[test]
fn unknown_keys() {
    assert_error("wokers = 2\n", 1, 1, "unknown field `wokers`");
    assert_error(
        &format!("{POOL}wokers = 2\n"),
        4,
        1,
        "unknown field `wokers`",
    );
    assert_error(
        &format!("{POOL}start_sec = 2\n"),
        4,
        1,
        "unknown field `start_sec`",
    );
    assert_error("[shm]\nsegments = []\n", 2, 1, "unknown field `segments`");
    assert_error(
        "[[shm.layout]]\nmatch = \"a\"\nlayout = \"a:u8\"\nas = \"i32\"\n",
        4,
        1,
        "unknown field `as`",
    );
    assert_error("[[pools]]\nname = \"x\"\n", 1, 3, "unknown field `pools`");
}

#[test]
fn wrong_types() {
    assert_error(
        "[[pool]]\nname = \"w\"\ncommand = [\"true\"]\nworkers = \"2\"\n",
        4,
        11,
        "invalid type",
    );
    assert_error(
        "[[pool]]\nname = \"w\"\ncommand = 5\n",
        3,
        11,
        "invalid type",
    );
    assert_error(
        "[[pool]]\nname = \"w\"\ncommand = [\"a\", 1]\n",
        3,
        17,
        "invalid type",
    );
    assert_error(
        &format!("{POOL}env = {{ PORT = 8000 }}\n"),
        4,
        16,
        "invalid type",
    );
    assert_error("stop_timeout = \"5\"\n", 1, 16, "invalid type");
    assert_error(&format!("{POOL}shell = \"yes\"\n"), 4, 9, "invalid type");
    assert_error("pool = 3\n", 1, 8, "invalid type");
}

#[test]
fn missing_fields() {
    assert_error("[[pool]]\nname = \"w\"\n", 1, 1, "missing field `command`");
    assert_error(
        "[[pool]]\ncommand = [\"x\"]\n",
        1,
        1,
        "missing field `name`",
    );
}

#[test]
fn bad_signals() {
    for (value, col) in [("\"SIGNOPE\"", 15), ("0", 15), ("99", 15), ("-9", 15)] {
        assert_error(
            &format!("{POOL}stop_signal = {value}\n"),
            4,
            col,
            "unknown stop_signal",
        );
    }
    assert!(parse(&format!("{POOL}stop_signal = \"sigkill\"\n")).is_ok());
    assert!(parse(&format!("{POOL}stop_signal = \"RT40\"\n")).is_ok());
}

#[test]
fn bad_enums() {
    assert_error(
        &format!("{POOL}restart = \"sometimes\"\n"),
        4,
        11,
        "unknown variant `sometimes`",
    );
    assert_error("track = \"magic\"\n", 1, 9, "unknown variant `magic`");
}

#[test]
fn bad_workers() {
    for (value, col) in [("0", 11), ("-1", 11), ("4097", 11), ("99999999999", 11)] {
        assert_error(
            &format!("[[pool]]\nname = \"w\"\ncommand = [\"true\"]\nworkers = {value}\n"),
            4,
            col,
            "workers must be 1 to 4096",
        );
    }
}

#[test]
fn bad_commands() {
    assert_error(
        "[[pool]]\nname = \"w\"\ncommand = []\n",
        3,
        11,
        "command is empty",
    );
    assert_error(
        "[[pool]]\nname = \"w\"\ncommand = [\"\"]\n",
        3,
        11,
        "command is empty",
    );
    assert_error(
        "[[pool]]\nname = \"w\"\ncommand = \"  \"\nshell = true\n",
        3,
        11,
        "command is empty",
    );
    assert_error(
        "[[pool]]\nname = \"w\"\ncommand = \"echo hi\"\n",
        3,
        11,
        "set shell = true",
    );
    assert_error(
        "[[pool]]\nname = \"w\"\ncommand = [\"echo\"]\nshell = true\n",
        3,
        11,
        "not an array",
    );
}

#[test]
fn bad_pool_names() {
    assert_error(
        "[[pool]]\nname = \"\"\ncommand = [\"x\"]\n",
        2,
        8,
        "pool name",
    );
    assert_error(
        &format!("{POOL}{}", POOL.replace("\"true\"", "\"false\"")),
        5,
        8,
        "already defined",
    );
}

#[test]
fn bad_seconds() {
    assert_error("stop_timeout = -1\n", 1, 16, "stop_timeout must be");
    assert_error("stop_timeout = nan\n", 1, 16, "stop_timeout must be");
    assert_error("sample_interval = 0\n", 1, 19, "sample_interval must be");
    assert!(parse("stop_timeout = 0\n").is_ok());
}

#[test]
fn bad_shm() {
    assert_error(
        "[[shm.layout]]\nmatch = \"psm_*\"\nlayout = \"count:i65\"\n",
        3,
        10,
        "bad layout",
    );
    assert_error(
        "[[shm.layout]]\nmatch = \"psm_*\"\nlayout = \"\"\n",
        3,
        10,
        "layout is empty",
    );
    assert_error(
        "[[shm.layout]]\nmatch = \"\"\nlayout = \"a:u8\"\n",
        2,
        9,
        "`match` is empty",
    );
    assert_error(
        "[[shm.segment]]\nname = \"a-b\"\nsize = 4\n",
        2,
        8,
        "segment name",
    );
    assert_error(
        "[[shm.segment]]\nname = \"a\"\nsize = \"4X\"\n",
        3,
        8,
        "size units",
    );
    assert_error(
        "[[shm.segment]]\nname = \"a\"\nsize = 0\n",
        3,
        8,
        "1 byte to 64G",
    );
    assert_error(
        "[[shm.segment]]\nname = \"a\"\nsize = 1\n[[shm.segment]]\nname = \"a\"\nsize = 2\n",
        5,
        8,
        "already defined",
    );
}

#[test]
fn bad_env_and_cwd() {
    assert_error(&format!("{POOL}env = {{ \"A=B\" = \"x\" }}\n"), 4, 7, "env");
    assert_error(
        &format!("{POOL}cwd = \"no/such/dir/anywhere\"\n"),
        4,
        7,
        "not a directory",
    );
}

#[test]
fn syntax_and_encoding() {
    assert_error("x = [", 1, 6, "");
    assert_error("[[pool]]\nname = \"w\ncommand = 1\n", 2, 10, "");
    assert_error("a = 1\na = 2\n", 2, 1, "duplicate key");
    assert_error("ok = 1\n\u{e9}\u{e9}", 2, 3, "expected `=`");
    let bytes = b"stop_timeout = 1\n# caf\xff\n";
    match parse_bytes(bytes, "t", Path::new("t"), Path::new("/")) {
        Err(ConfigError::At(l)) => {
            assert_eq!((l.line, l.col), (2, 6));
            assert!(l.message.contains("UTF-8"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn error_display_has_the_line_and_a_caret() {
    let err = parse("[[pool]]\nname = \"w\"\ncommand = [\"true\"]\nworkers = 0\n").unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("test.toml:4:11: workers must be"),
        "{text}"
    );
    assert!(text.contains("4 | workers = 0\n  |           ^"), "{text}");
}

#[test]
fn long_lines_show_a_window_around_the_column() {
    let text = format!("a = [{}\n", "1, ".repeat(300));
    let err = parse(&text).unwrap_err();
    let located = err.located().expect("located");
    let lines: Vec<&str> = located.excerpt.lines().collect();
    assert_eq!(lines.len(), 3, "{}", located.excerpt);
    assert!(lines[1].starts_with("1 | …"), "{}", located.excerpt);
    assert!(lines[1].chars().count() < 140);
    // The caret sits under the character at the reported column.
    let caret = lines[2].find('^').expect("caret");
    let line_chars: Vec<char> = text.lines().next().unwrap().chars().collect();
    let shown: Vec<char> = lines[1].chars().collect();
    assert_eq!(
        shown[lines[2][..caret].chars().count()],
        line_chars[located.col - 1]
    );
}

#[test]
fn line_col_counts_chars() {
    assert_eq!(line_col("ab\ncd", 0), (1, 1));
    assert_eq!(line_col("ab\ncd", 4), (2, 2));
    assert_eq!(line_col("é = x", 3), (1, 3));
    assert_eq!(line_col("é", 1), (1, 1));
    assert_eq!(line_col("abc", 99), (1, 4));
}

#[test]
fn missing_files() {
    let missing = Path::new("/no/such/dir/forkscope.toml");
    assert!(matches!(
        load(missing, true),
        Err(ConfigError::Missing { hint, .. }) if hint.is_empty()
    ));
    assert!(matches!(
        load(missing, false),
        Err(ConfigError::Missing { hint, .. }) if hint.contains("-f FILE")
    ));
    assert!(matches!(
        load(Path::new("/"), true),
        Err(ConfigError::Read { .. })
    ));
    assert!(layout_rules(None).is_ok());
}

/// What a real `forkscope up` command line asks for.
fn up_args(extra: &[&str]) -> Up {
    let mut argv = vec!["forkscope", "up"];
    argv.extend_from_slice(extra);
    match Cli::try_parse_from(argv).expect("parses").command {
        Command::Up(args) => Up::from(&args),
        other => panic!("{other:?}"),
    }
}

#[test]
fn up_merges_the_command_line_over_the_file() {
    let text = format!(
        "stop_timeout = 2\nsample_interval = 0.5\ntrack = \"poll\"\n{POOL}restart = \"always\"\n\
         [[shm.segment]]\nname = \"a\"\nsize = 8\n"
    );
    let plan = merge(parse(&text).expect("valid"), &up_args(&[])).expect("plan");
    assert_eq!(plan.supervision.stop_timeout, 2.0);
    assert_eq!(plan.output.sample_interval, 0.5);
    assert_eq!(plan.supervision.track, TrackMode::Poll);
    assert_eq!(plan.pools[0].restart, RestartPolicy::Always);
    assert_eq!(plan.supervision.shm.len(), 1);

    let args = up_args(&[
        "--stop-timeout",
        "7",
        "--sample-interval",
        "3",
        "--track",
        "kernel",
        "--restart",
        "never",
        "--stop-signal",
        "KILL",
        "--shm",
        "a:16",
        "--shm",
        "b:1K",
        "--headless",
    ]);
    let plan = merge(parse(&text).expect("valid"), &args).expect("plan");
    assert_eq!(plan.supervision.stop_timeout, 7.0);
    assert_eq!(plan.output.sample_interval, 3.0);
    assert_eq!(plan.supervision.track, TrackMode::Kernel);
    assert_eq!(plan.pools[0].restart, RestartPolicy::Never);
    assert_eq!(plan.pools[0].stop_signal, libc::SIGKILL);
    assert_eq!(plan.supervision.restart, RestartPolicy::Never);
    let sizes: Vec<(String, u64)> = plan
        .supervision
        .shm
        .iter()
        .map(|s| (s.name.clone(), s.size))
        .collect();
    assert_eq!(sizes, vec![("a".into(), 16), ("b".into(), 1024)]);
    assert!(plan.output.view.headless);
}

#[test]
fn up_defaults_and_needs_a_pool() {
    let plan = merge(parse(POOL).expect("valid"), &up_args(&[])).expect("plan");
    assert_eq!(plan.supervision.stop_timeout, 5.0);
    assert_eq!(plan.output.sample_interval, 1.0);
    assert_eq!(plan.supervision.track, TrackMode::Auto);
    let err = merge(parse("").expect("valid"), &up_args(&[])).unwrap_err();
    let located = err.located().expect("located");
    assert_eq!((located.line, located.col), (1, 1));
    assert!(located.message.contains("[[pool]]"));
}

#[test]
fn example_config_is_valid() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/forkscope.example.toml"
    ));
    let config = load(path, true).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.pools.len() >= 2);
    assert!(!config.layouts.is_empty());
    assert!(!config.segments.is_empty());
    merge(config, &up_args(&[])).expect("plan");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
        if let Err(ConfigError::At(l)) = parse_bytes(&bytes, "f", Path::new("f"), Path::new("/")) {
            proptest::prop_assert!(l.line >= 1 && l.col >= 1);
        }
    }

    #[test]
    fn random_text_never_panics(text in "\\PC{0,300}") {
        let _ = parse(&text);
    }

    /// Random TOML-looking documents made of the config's own keys and values, so parsing gets
    /// past the syntax and the validation runs on odd values.
    #[test]
    fn config_shaped_text_never_panics(
        parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "[[pool]]\n", "[shm]\n", "[[shm.layout]]\n", "[[shm.segment]]\n",
                "name = \"w\"\n", "name = \"\"\n", "command = [\"true\"]\n", "command = \"x\"\n",
                "command = []\n", "shell = true\n", "workers = 0\n", "workers = 3\n",
                "workers = -9223372036854775808\n", "stop_signal = \"TERM\"\n",
                "stop_signal = 18446744073709551615\n", "restart = \"always\"\n",
                "env = { A = \"1\" }\n", "cwd = \"/\"\n", "cwd = \"\"\n", "match = \"p*\"\n",
                "layout = \"a:i64,b:u8[2]\"\n", "layout = \"a:u8[99999999999]\"\n", "size = \"4K\"\n",
                "size = -1\n", "stop_timeout = 1e308\n", "sample_interval = inf\n",
                "track = \"poll\"\n", "x = 1\n", "é\n", "[\n", "\"\n",
                "start_secs = \"1e9h\"\n", "stop_timeout = \"-1s\"\n", "restart_window = \".s\"\n",
                "backoff = { initial = \"0.0001ms\" }\n", "success_codes = [9999999999999]\n",
                "max_restarts = 9223372036854775807\n", "stop_timeout = \"99999999999999999999h\"\n",
            ]),
            0..14,
        )
    ) {
        let text: String = parts.concat();
        if let Err(ConfigError::At(l)) = parse(&text) {
            proptest::prop_assert!(l.line <= text.lines().count() + 1);
        }
    }
}

#[test]
fn output_keys() {
    use crate::supervise::worker_io::{Buffering, StdinMode, WorkerIo};
    let pool = &parse(POOL).expect("valid").pools[0];
    let live_with_hooks = WorkerIo {
        python_hooks: true,
        ..WorkerIo::default()
    };
    assert_eq!(pool.io, live_with_hooks);
    let text = format!(
        "{POOL}buffering = \"line-buffered\"\npty = true\nstdin = \"pty\"\npython_hooks = false\n"
    );
    let pool = &parse(&text).expect("valid").pools[0];
    assert_eq!(
        pool.io,
        WorkerIo {
            buffering: Buffering::LineBuffered { libstdbuf: None },
            pty: true,
            stdin: StdinMode::Pty,
            python_hooks: false,
        }
    );
    assert_error(
        &format!("{POOL}stdin = \"pty\"\n"),
        4,
        9,
        "stdin = \"pty\" needs pty = true",
    );
    assert_error(
        &format!("{POOL}buffering = \"block\"\n"),
        4,
        13,
        "unknown variant `block`",
    );
}
