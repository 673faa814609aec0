//! A process whose maps and fds cannot be read is reported as such (`unreadable: permission
//! denied`), never silently as "no shared memory": `inspect --json` per process, `shm ls --pid`
//! on stderr. Needs root (to start a process another user cannot read) and `setpriv`; CI has
//! both.

mod common;

use std::process::{Command, Stdio};

/// Runs forkscope as user and group 65534 (nobody) with no supplementary groups.
fn as_nobody(args: &[&str]) -> std::process::Output {
    common::command_output(
        Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_forkscope"))
            .args(args),
        common::secs(60.0),
    )
}

fn can_run() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let setpriv = Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !(root && setpriv) {
        eprintln!("skipped: needs root and setpriv (root: {root}, setpriv: {setpriv})");
    }
    root && setpriv
}

#[test]
fn another_users_process_is_reported_unreadable() {
    if !can_run() {
        return;
    }
    // A root-owned process that holds a shared-memory file open.
    let name = format!("fstest_unreadable_{}", std::process::id());
    let path = format!("/dev/shm/{name}");
    std::fs::write(&path, [0u8; 64]).expect("segment");
    let mut child = Command::new("sh")
        .args(["-c", "exec 3<\"$1\"; read -r _", "sh", &path])
        .stdin(Stdio::piped())
        .spawn()
        .expect("sh");
    let pid = child.id().to_string();
    let holds = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| {
                d.flatten()
                    .any(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.ends_with(&name)))
            })
            .unwrap_or(false)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !holds() {
        assert!(std::time::Instant::now() < deadline, "sh never opened it");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let inspect = as_nobody(&["inspect", &pid, "--json"]);
    let ls = as_nobody(&["shm", "ls", "--pid", &pid, "--json"]);
    let as_root = common::forkscope_output(&["shm", "ls", "--pid", &pid, "--json"]);
    drop(child.stdin.take());
    let _ = child.wait();
    let _ = std::fs::remove_file(&path);

    let json: serde_json::Value = serde_json::from_slice(&inspect.stdout).expect("json");
    assert_eq!(
        json["processes"][0]["unreadable"], "permission denied",
        "{json}"
    );
    let stderr = String::from_utf8_lossy(&ls.stderr);
    assert!(
        stderr.contains(&format!("pid {pid}: unreadable: permission denied")),
        "{stderr}"
    );
    // What nobody could not see is there for root: the report was about reading, not absence.
    let listed: serde_json::Value = serde_json::from_slice(&as_root.stdout).expect("json");
    assert!(
        listed
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s["name"] == name.as_str())),
        "{listed}"
    );
}
