//! `forkscope up --procfile` through the real binary: two processes run headless with the
//! PORT foreman would give them and the `.env` next to the Procfile; `--port-base` and
//! `--env-file` change them; a bad line is exit 2 with FILE:LINE:COL before anything starts.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::*;

const PROCFILE: &str = "# two processes\n\
web: echo \"web PORT=$PORT MODE=$MODE dir=$(pwd)\"\n\
\n\
worker: echo \"worker PORT=$PORT MODE=$MODE\"; exit 0\n";

/// The one output line of each pool, by pool name.
fn lines_by_pool(events: &[serde_json::Value]) -> BTreeMap<String, Vec<String>> {
    of_kind(events, "spawn")
        .iter()
        .map(|spawn| {
            let pool = spawn["pool"].as_str().expect("pool").to_string();
            (pool, lines_of(events, pid_of(spawn), "stdout"))
        })
        .collect()
}

#[test]
fn a_procfile_runs_one_pool_per_line_with_port_and_dotenv() {
    let dir = tempfile::tempdir().expect("tempdir");
    let procfile = dir.path().join("Procfile");
    std::fs::write(&procfile, PROCFILE).expect("write Procfile");
    std::fs::write(dir.path().join(".env"), "# settings\nMODE='from dotenv'\n").expect(".env");
    let shown = procfile.to_string_lossy().into_owned();
    let (code, events) = run_clean(
        "procfile",
        &["up", "--procfile", &shown, "--headless"],
        secs(10.0),
    );
    assert_eq!(code, 0, "{}", dump(&events));
    let real_dir = dir.path().canonicalize().expect("canonical dir");
    let lines = lines_by_pool(&events);
    assert_eq!(
        lines,
        BTreeMap::from([
            (
                "web".to_string(),
                vec![format!(
                    "web PORT=5000 MODE=from dotenv dir={}",
                    real_dir.display()
                )]
            ),
            (
                "worker".to_string(),
                vec!["worker PORT=5100 MODE=from dotenv".to_string()]
            ),
        ]),
        "{}",
        dump(&events)
    );
}

#[test]
fn port_base_and_env_file_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let procfile = dir.path().join("Procfile");
    std::fs::write(&procfile, PROCFILE).expect("write Procfile");
    std::fs::write(dir.path().join(".env"), "MODE=ignored\n").expect(".env");
    let other = dir.path().join("other.env");
    std::fs::write(&other, "export MODE=\"other\"\n").expect("other.env");
    let (code, events) = run_clean(
        "procfileflags",
        &[
            "up",
            "--procfile",
            &procfile.to_string_lossy(),
            "--port-base",
            "9000",
            "--env-file",
            &other.to_string_lossy(),
            "--headless",
        ],
        secs(10.0),
    );
    assert_eq!(code, 0, "{}", dump(&events));
    let lines = lines_by_pool(&events);
    assert!(
        lines["web"][0].starts_with("web PORT=9000 MODE=other "),
        "{lines:?}"
    );
    assert_eq!(lines["worker"], vec!["worker PORT=9100 MODE=other"]);
}

#[test]
fn bad_procfiles_exit_2_with_file_line_col() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "web: ok\nbroken line\n",
            "",
            "Procfile:2:1: ",
            "NAME: command",
        ),
        ("we b: x\n", "", "Procfile:1:3: ", "letters, digits"),
        ("web: x\n", "A='open\n", ".env:1:3: ", "no closing '"),
    ];
    for (i, (text, dotenv, place, needle)) in cases.iter().enumerate() {
        let case = dir.path().join(format!("case{i}"));
        std::fs::create_dir(&case).expect("mkdir");
        let procfile = case.join("Procfile");
        std::fs::write(&procfile, text).expect("write");
        if !dotenv.is_empty() {
            std::fs::write(case.join(".env"), dotenv).expect("write .env");
        }
        let out = common::command_output(
            Command::new(bin())
                .args(["up", "--headless", "--procfile"])
                .arg(&procfile),
            common::secs(60.0),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text:?}: {stderr}");
        assert!(stderr.contains(place), "{text:?}: {stderr}");
        assert!(stderr.contains(needle), "{text:?}: {stderr}");
        assert!(out.stdout.is_empty(), "nothing may start: {out:?}");
    }
    // A missing --env-file, and --procfile with -f, are usage errors too.
    let procfile = dir.path().join("case0").join("Procfile");
    for extra in [
        vec!["--env-file", "/nonexistent/forkscope.env"],
        vec!["-f", "forkscope.toml"],
    ] {
        let out = common::command_output(
            Command::new(bin())
                .args(["up", "--headless", "--procfile"])
                .arg(&procfile)
                .args(&extra),
            common::secs(60.0),
        );
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
    }
}
