//! The config file end to end: `forkscope up --headless` runs every pool of a real config
//! (pool variables, env, cwd, exit status as `run`'s), every class of config error exits 2
//! with FILE:LINE:COL, and `shm show` decodes a real /dev/shm segment with the config's
//! layout.

mod common;

use std::path::Path;
use std::process::Command;

use assert_cmd::prelude::*;
use common::*;
use serde_json::Value;

#[test]
fn up_runs_every_pool_with_env_and_cwd() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("work")).expect("mkdir");
    script(
        &dir.path().join("work"),
        "hello.sh",
        "echo \"$FORKSCOPE_POOL|$(pwd)\"",
    );
    let config = write_config(
        dir.path(),
        r#"
stop_timeout = 2

[[pool]]
name = "alpha"
command = ["sh", "-c", "echo \"$FORKSCOPE_POOL|$FORKSCOPE_WORKER|$FORKSCOPE_POOL_SIZE|$FOO|$(pwd)\""]
workers = 2
env = { FOO = "foo value" }
cwd = "work"

[[pool]]
name = "beta"
shell = true
command = "echo \"$FORKSCOPE_POOL|$FORKSCOPE_WORKER|$FORKSCOPE_POOL_SIZE|$BAR\"; exit 3"
env = { BAR = "bar" }

[[pool]]
name = "gamma"
command = ["./hello.sh"]
cwd = "work"
"#,
    );
    let (code, events) = run_clean("cfgup", &["up", "-f", &config, "--headless"], secs(10.0));
    // As `run`: 1 when a worker did not exit 0 (beta exits 3).
    assert_eq!(code, 1, "{}", dump(&events));
    let spawns = of_kind(&events, "spawn");
    assert_eq!(spawns.len(), 4, "{}", dump(&events));
    let work = dir
        .path()
        .join("work")
        .canonicalize()
        .expect("canonical work dir");
    let mut seen = Vec::new();
    for spawn in &spawns {
        let pid = pid_of(spawn);
        let pool = spawn["pool"].as_str().expect("pool").to_string();
        let index = spawn["worker"].as_u64().expect("worker");
        let lines = lines_of(&events, pid, "stdout");
        let expected = match pool.as_str() {
            "alpha" => format!("alpha|{index}|2|foo value|{}", work.display()),
            "beta" => format!("beta|{index}|1|bar"),
            // A relative program path is found from the pool's cwd.
            "gamma" => format!("gamma|{}", work.display()),
            other => panic!("unexpected pool {other}"),
        };
        assert_eq!(lines, vec![expected], "{}", dump(&events));
        let exit = exit_of(&events, pid).expect("exit event");
        let want = if pool == "beta" { 3 } else { 0 };
        assert_eq!(exit["code"].as_i64(), Some(want));
        seen.push((pool, index));
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("alpha".into(), 0),
            ("alpha".into(), 1),
            ("beta".into(), 0),
            ("gamma".into(), 0)
        ]
    );
}

#[test]
fn up_exits_0_when_every_worker_does_and_flags_override_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        r#"
[[pool]]
name = "one"
command = ["true"]
restart = "always"

[[pool]]
name = "two"
command = ["sh", "-c", "exit 0"]
workers = 2
"#,
    );
    let m = marker("cfgup0");
    // `--restart never` overrides the file's `always` (else the session would not end).
    let mut fs = Forkscope::start(
        &m,
        &["up", "-f", &config, "--headless", "--restart", "never"],
    );
    let (code, events) = fs.finish_clean(secs(10.0));
    assert_eq!(code, 0, "{}", dump(&events));
    assert_eq!(of_kind(&events, "spawn").len(), 3, "{}", dump(&events));
}

/// Each error class: (config text, line, col, a word of the message).
const BAD: &[(&str, usize, usize, &str)] = &[
    (
        "[[pool]]\nname = \"a\"\ncommand = [\"true\"]\ndepends_on = [\"b\"]\n",
        4,
        15,
        "depends_on: no pool named \"b\"",
    ),
    (
        "[[pool]]\nname = \"a\"\ncommand = [\"true\"]\ndepends_on = [\"b\"]\n\
         [[pool]]\nname = \"b\"\ncommand = [\"true\"]\ndepends_on = [\"a\"]\n",
        8,
        15,
        "depends_on: a cycle: a -> b -> a",
    ),
    (
        "[[pool]]\nname = \"a\"\ncommand = [\"true\"]\ndepends_on = [\"a\"]\n",
        4,
        15,
        "cannot wait for itself",
    ),
    (
        "[[pool]]\nname = \"a\"\ncommand = [\"true\"]\nready = { tcp = \"127.0.0.1:1\", file = \"x\" }\n",
        4,
        9,
        "ready needs exactly one of",
    ),
    (
        "[[pool]]\nname = \"a\"\ncommand = [\"true\"]\nready = { tcp = \"localhost\" }\n",
        4,
        17,
        "is not an IP address and port",
    ),
    (
        "[[pool]]\nname = \"a\"\ncommand = [\"true\"]\nready = { file = \"x\", timeout = \"soon\" }\n",
        4,
        33,
        "ready.timeout: not a duration",
    ),
    (
        "[[pool]]\nname = \"a\"\ncommand = [\"true\"]\nuser = \"no_such_user_fks\"\n",
        4,
        8,
        "user: no such user",
    ),
    (
        "[[pool]]\nname = \"a\"\ncommand = [\"true\"]\ngroup = 4000000000\n",
        4,
        9,
        "group: no such group",
    ),
    (
        "[[pool]]\nname = \"w\"\ncommand = [\"true\"]\nwokers = 2\n",
        4,
        1,
        "unknown field `wokers`",
    ),
    (
        "[[pool]]\nname = \"w\"\ncommand = [\"true\"]\nworkers = \"2\"\n",
        4,
        11,
        "invalid type",
    ),
    (
        "[[pool]]\nname = \"w\"\ncommand = [\"true\"]\nstop_signal = \"SIGNOPE\"\n",
        4,
        15,
        "unknown stop_signal",
    ),
    (
        "[[pool]]\nname = \"w\"\ncommand = [\"true\"]\nrestart = \"sometimes\"\n",
        4,
        11,
        "unknown variant",
    ),
    (
        "[[pool]]\nname = \"w\"\ncommand = [\"true\"]\n[[shm.layout]]\nmatch = \"x\"\nlayout = \"a:i65\"\n",
        6,
        10,
        "bad layout",
    ),
    (
        "[[pool]]\nname = \"w\"\ncommand = [\"true\"]\nworkers = 0\n",
        4,
        11,
        "workers must be 1 to 4096",
    ),
    (
        "[[pool]]\nname = \"w\"\ncommand = []\n",
        3,
        11,
        "command is empty",
    ),
    (
        "[[pool]]\nname = \"w\"\ncommand = \"echo hi\"\n",
        3,
        11,
        "shell = true",
    ),
    ("[[pool]]\nname = \"w\"\ncommand = [\n", 3, 12, ""),
    // Per-pool policy (issue 13).
    (
        "[[pool]]\nname = \"w\"\ncommand = [\"true\"]\nstop_timeout = \"soon\"\n",
        4,
        16,
        "not a duration",
    ),
    (
        "[[pool]]\nname = \"w\"\ncommand = [\"true\"]\nsuccess_codes = [0, 300]\n",
        4,
        21,
        "0 to 255",
    ),
    (
        "[[pool]]\nname = \"w\"\ncommand = [\"true\"]\nbackoff = { initial = \"1s\", max = \"10ms\" }\n",
        4,
        35,
        "shorter than backoff.initial",
    ),
    (
        "[[pool]]\nname = \"w\"\ncommand = [\"true\"]\nmax_restarts = -1\n",
        4,
        16,
        "max_restarts must be",
    ),
    (
        "[[pool]]\nname = \"w\"\ncommand = [\"true\"]\nstart_secs = -1\n",
        4,
        14,
        "start_secs must be",
    ),
    ("# nothing\n", 1, 1, "no [[pool]]"),
];

#[test]
fn every_config_error_exits_2_with_file_line_col() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, (text, line, col, needle)) in BAD.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&path, text).expect("write");
        let shown = path.to_string_lossy().into_owned();
        let out = common::forkscope_output(&["up", "--headless", "-f", &shown]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{shown}:{line}:{col}: ")),
            "{text:?}: {stderr}"
        );
        assert!(stderr.contains(needle), "{text:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(out.stdout.is_empty(), "nothing may start: {out:?}");
    }
}

#[test]
fn missing_config_files_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    Command::new(bin())
        .arg("up")
        .current_dir(dir.path())
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "forkscope.toml: no such file in the current directory",
        ));
    Command::new(bin())
        .args(["up", "-f", "nope.toml"])
        .current_dir(dir.path())
        .assert()
        .code(2)
        .stderr(predicates::str::contains("nope.toml: no such file"));
    // `shm show -f` with a broken file is a config error too.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[shm.layout]]\nmatch = \"x\"\nlayot = \"a:u8\"\n").expect("write");
    Command::new(bin())
        .args(["shm", "show", "whatever", "-f"])
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "bad.toml:3:1: unknown field `layot`",
        ));
}

/// A /dev/shm object this test creates; removed on drop, also when the test fails.
struct Segment(String);

impl Drop for Segment {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/dev/shm/{}", self.0));
    }
}

fn show_json(dir: &Path, args: &[&str]) -> Value {
    let out = common::command_output(
        Command::new(bin())
            .args(["shm", "show"])
            .args(args)
            .arg("--json")
            .current_dir(dir),
        common::secs(60.0),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn shm_show_decodes_with_the_config_layout() {
    let name = format!("fkstest_cfg_{}_seg", std::process::id());
    let guard = Segment(name.clone());
    let mut bytes = 42i64.to_le_bytes().to_vec();
    bytes.extend(1u8..=16);
    bytes.extend(b"hello\0\0\0");
    bytes.resize(64, 0xee);
    std::fs::write(format!("/dev/shm/{}", guard.0), &bytes).expect("create segment");

    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = format!("fkstest_cfg_{}_", std::process::id());
    write_config(
        dir.path(),
        &format!(
            "[[shm.layout]]\nmatch = \"nothing-like-it\"\nlayout = \"x:u8\"\n\n\
             [[shm.layout]]\nmatch = \"{prefix}*\"\nlayout = \"count:i64, flags:u8[16], label:char[8]\"\n\n\
             [[shm.layout]]\nmatch = \"*\"\nlayout = \"first:u8\"\n"
        ),
    );
    let config = dir.path().join("forkscope.toml");
    let config = config.to_string_lossy().into_owned();
    // With -f, and from ./forkscope.toml when no -f is given.
    for args in [vec![name.as_str(), "-f", &config], vec![name.as_str()]] {
        let json = show_json(dir.path(), &args);
        assert_eq!(json["format"], "layout", "{json}");
        let fields = json["fields"].as_array().expect("fields");
        assert_eq!(fields.len(), 3, "{json}");
        assert_eq!(fields[0]["name"], "count");
        assert_eq!(fields[0]["values"], serde_json::json!([42]));
        assert_eq!(fields[1]["name"], "flags");
        assert_eq!(
            fields[1]["values"],
            serde_json::json!((1..=16).collect::<Vec<u64>>())
        );
        assert_eq!(fields[2]["text"], "hello");
        // The segment's size and the struct's size stand side by side.
        assert_eq!(json["size"], 64, "{json}");
        assert_eq!(json["layout_size"], 32, "{json}");
    }
    // `--as` on the command line wins over the config.
    let json = show_json(dir.path(), &[&name, "-f", &config, "--as", "u32"]);
    assert_eq!(json["format"], "typed", "{json}");
    // Without a config, auto-detection (hex for these bytes).
    let empty = tempfile::tempdir().expect("tempdir");
    let json = show_json(empty.path(), &[&name]);
    assert_eq!(json["format"], "hex", "{json}");
    drop(guard);
    assert!(!Path::new(&format!("/dev/shm/{name}")).exists());
}
