//! `user`/`group` in a pool (issue 13): as root the workers really run as that user (read
//! back by the worker itself); as anyone else, another user is a config error at
//! FILE:LINE:COL with exit 2.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::*;

fn is_root() -> bool {
    // SAFETY: geteuid(2) has no failure mode.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn workers_run_as_the_pool_user() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("forkscope.toml");
    std::fs::write(
        &path,
        "[[pool]]\nname = \"id\"\ncommand = [\"sh\", \"-c\", \"echo $(id -u):$(id -g):$(id -G)\"]\nuser = \"nobody\"\n",
    )
    .expect("write");
    let shown = path.to_string_lossy().into_owned();
    if !is_root() {
        let out = Command::new(bin())
            .args(["up", "--headless", "-f", &shown])
            .output()
            .expect("run forkscope");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(&format!("{shown}:4:8: user:")), "{stderr}");
        return;
    }
    let (code, events) = run_clean("identity", &["up", "--headless", "-f", &shown], secs(10.0));
    assert_eq!(code, 0, "{}", dump(&events));
    let spawn = of_kind(&events, "spawn")[0].clone();
    let lines = lines_of(&events, pid_of(&spawn), "stdout");
    // nobody's uid and gid, and no supplementary group of root's left.
    assert_eq!(
        lines,
        vec!["65534:65534:65534".to_string()],
        "{}",
        dump(&events)
    );
}

#[test]
fn another_user_without_root_is_a_config_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = dir.path().join("forkscope.toml");
    std::fs::write(
        &path,
        "[[pool]]\nname = \"a\"\ncommand = [\"true\"]\nuser = \"root\"\ngroup = \"root\"\n",
    )
    .expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let shown = path.to_string_lossy().into_owned();
    let mut command = if is_root() {
        // Run forkscope as nobody (setpriv is util-linux's).
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()]);
        c
    } else {
        Command::new(bin())
    };
    let out = command
        .args(["up", "--headless", "-f", &shown])
        .output()
        .expect("run forkscope");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{shown}:4:8: user: running as another user (\"root\") needs forkscope to run as root"
        )),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}
