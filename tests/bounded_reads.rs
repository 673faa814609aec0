//! Files a person names are read with a bound whatever their kind: `/dev/zero` (endless, no
//! newline) and a FIFO whose writer never ends a line end with a clear error at the bound,
//! quickly and with little memory, instead of growing or hanging.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

/// Generous for a loaded machine; the reads end in well under a second when bounded.
const DEADLINE: Duration = Duration::from_secs(60);

/// Address space forkscope may use here: far more than a bounded read needs, and an unbounded
/// one (1 GB/s from /dev/zero) fails at it instead of pressing on the machine.
const ADDRESS_SPACE: u64 = 2 << 30;

/// Runs forkscope with a deadline and an address-space limit; returns (exit code, stderr).
fn forkscope(args: &[&str]) -> (Option<i32>, String) {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_forkscope"));
    command.args(args);
    // SAFETY: only setrlimit (async-signal-safe) between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: ADDRESS_SPACE,
                rlim_max: ADDRESS_SPACE,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = assert_cmd::Command::from_std(command)
        .timeout(DEADLINE)
        .output()
        .expect("forkscope runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn dev_zero_is_refused_at_the_bound() {
    let cases: [(&[&str], &str); 3] = [
        (
            &["replay", "/dev/zero"],
            "/dev/zero:1: line longer than 16 MiB",
        ),
        (
            &["up", "-f", "/dev/zero"],
            "/dev/zero: cannot read: is larger than 1 MiB",
        ),
        (
            &["shm", "show", "X", "-f", "/dev/zero"],
            "/dev/zero: cannot read: is larger than 1 MiB",
        ),
    ];
    for (args, expected) in cases {
        let (code, stderr) = forkscope(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

fn make_fifo(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("fifo");
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    path
}

/// A FIFO in a fresh directory, fed `x` without a newline until the reader goes away (at most
/// 64 MiB, so the writer ends even if the reader never does).
fn endless_fifo(dir: &Path) -> (std::path::PathBuf, std::thread::JoinHandle<()>) {
    let path = make_fifo(dir);
    let writer_path = path.clone();
    let writer = std::thread::spawn(move || {
        let Ok(mut fifo) = std::fs::OpenOptions::new().write(true).open(&writer_path) else {
            return;
        };
        let chunk = [b'x'; 64 * 1024];
        for _ in 0..1024 {
            if fifo.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    (path, writer)
}

#[test]
fn a_fifo_that_never_ends_a_line_ends_at_the_bound() {
    for args in [vec!["replay"], vec!["up", "-f"]] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (fifo, writer) = endless_fifo(dir.path());
        let fifo_text = fifo.display().to_string();
        let mut all = args.clone();
        all.push(&fifo_text);
        let (code, stderr) = forkscope(&all);
        assert_eq!(code, Some(2), "{all:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{fifo_text}:1: line longer than"))
                || stderr.contains(&format!("{fifo_text}: cannot read: is larger than 1 MiB")),
            "{all:?}: {stderr}"
        );
        writer.join().expect("writer ends");
    }
}

#[test]
fn a_fifo_that_ends_without_a_newline_is_read_to_its_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = make_fifo(dir.path());
    let writer_path = path.clone();
    let writer = std::thread::spawn(move || {
        if let Ok(mut fifo) = std::fs::OpenOptions::new().write(true).open(&writer_path) {
            let _ = fifo.write_all(b"{\"t\":0.1,\"kind\":\"nonsense\"");
        }
    });
    let shown = path.display().to_string();
    let (code, stderr) = forkscope(&["replay", &shown]);
    writer.join().expect("writer ends");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{shown}:1:")),
        "FILE:LINE: {stderr}"
    );
}
