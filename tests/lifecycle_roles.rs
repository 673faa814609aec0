//! `forkscope inspect PID --json` labels Python multiprocessing's helpers: the resource
//! tracker, the forkserver, spawn children, fork children, the `Manager` server, the workers
//! of `multiprocessing.Pool` and of `ProcessPoolExecutor` (by their Python stacks), and
//! joblib's loky workers and resource tracker (joblib: `pip install joblib`, as `.ci/run` does).

mod common;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::python;
use serde_json::Value;

/// A Manager, a Pool(2), a ProcessPoolExecutor(2) and one plain Process child.
const PROGRAM: &str = r#"
import concurrent.futures as cf, multiprocessing as mp, sys, time

def work(x):
    return x

def idle(stop):
    stop.wait(60)

if __name__ == "__main__":
    mp.set_start_method(sys.argv[1])
    manager = mp.Manager()
    shared = manager.dict()
    pool = mp.Pool(2)
    pool.map(work, range(4))
    executor = cf.ProcessPoolExecutor(2)
    # Two tasks at once: under spawn and forkserver the executor starts workers on demand.
    for f in [executor.submit(time.sleep, 0.5) for _ in range(2)]:
        f.result()
    stop = mp.Event()
    plain = mp.Process(target=idle, args=(stop,))
    plain.start()
    print("ready", manager._process.pid, flush=True)
    sys.stdin.readline()
    stop.set()
    plain.join()
    executor.shutdown()
    pool.terminate()
    manager.shutdown()
"#;

/// Uses joblib's default (loky) backend, then waits for a line on stdin.
const LOKY_PROGRAM: &str = r#"
import sys
from joblib import Parallel, delayed
from joblib.externals.loky import get_reusable_executor

def work(x):
    return x

if __name__ == "__main__":
    Parallel(n_jobs=2)(delayed(work)(i) for i in range(4))
    print("ready 0", flush=True)
    sys.stdin.readline()
    get_reusable_executor().shutdown(wait=True)
"#;

/// Inspects until two `pool-worker`s and two `executor-worker`s show (a worker's stack is
/// read once it runs its worker loop; 30 s deadline), or returns the last snapshot.
fn snapshot(method: &str) -> (Vec<Value>, i64) {
    snapshot_until(PROGRAM, method, |procs| {
        let roles = roles(procs);
        let count = |role: &str| roles.iter().filter(|r| *r == role).count();
        count("pool-worker") == 2 && count("executor-worker") == 2
    })
}

fn snapshot_of(program: &str, arg: &str) -> (Vec<Value>, i64) {
    snapshot_until(program, arg, |_| true)
}

/// Runs `program ARG` until it prints `ready N`, takes `inspect --json` of it until `done`
/// says the snapshot is complete (30 s at most), lets it end; returns the processes and N.
fn snapshot_until(program: &str, arg: &str, done: impl Fn(&[Value]) -> bool) -> (Vec<Value>, i64) {
    // A file, not `-c`: spawn and forkserver children import the main module by path.
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("roles.py");
    std::fs::write(&script, program).expect("write");
    let mut child = Command::new(python())
        .arg(&script)
        .arg(arg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("python");
    let group = child.id() as i32;
    // Whatever happens, the program's whole group is killed when the test ends.
    let _guard = KillGroup(group);
    let root = child.id();
    let ready = common::first_line(&mut child, Duration::from_secs(60))
        .expect("the program never said ready");
    let manager: i64 = ready
        .strip_prefix("ready ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("program said {ready:?}"));
    let inspect = || {
        let out = common::forkscope_output(&["inspect", &root.to_string(), "--json"]);
        assert_eq!(out.status.code(), Some(0));
        let json: Value = serde_json::from_slice(&out.stdout).expect("json");
        json["processes"].as_array().expect("processes").clone()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut procs = inspect();
    while !done(&procs) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        procs = inspect();
    }
    // Let the program end by itself, then check its children went too.
    let mut stdin = child.stdin.take().expect("stdin");
    let _ = stdin.write_all(b"\n");
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the program did not end");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    for p in &procs {
        let pid = p["pid"].as_i64().unwrap_or(0);
        let start = p["start_time"].as_u64();
        while Instant::now() < deadline && alive(pid, start) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!alive(pid, start), "{pid} still running");
    }
    (procs, manager)
}

struct KillGroup(i32);

impl Drop for KillGroup {
    fn drop(&mut self) {
        // SAFETY: the process group of the program this test started.
        unsafe { libc::kill(-self.0, libc::SIGKILL) };
    }
}

fn alive(pid: i64, start: Option<u64>) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields.first() != Some(&"Z") && fields.get(19).and_then(|f| f.parse().ok()) == start
}

fn roles(procs: &[Value]) -> Vec<String> {
    procs
        .iter()
        .map(|p| p["role"].as_str().unwrap_or("").to_string())
        .collect()
}

fn role_of(procs: &[Value], pid: i64) -> String {
    procs
        .iter()
        .find(|p| p["pid"] == pid)
        .and_then(|p| p["role"].as_str())
        .unwrap_or("")
        .to_string()
}

#[test]
fn inspect_labels_spawn_helpers() {
    let (procs, manager) = snapshot("spawn");
    for p in &procs {
        for field in ["pid", "ppid", "state", "argv", "role"] {
            assert!(!p[field].is_null(), "{field} missing in {p}");
        }
    }
    let roles = roles(&procs);
    assert_eq!(roles[0], "root");
    assert_eq!(role_of(&procs, manager), "manager-server", "{procs:?}");
    assert_eq!(
        roles.iter().filter(|r| *r == "spawn-child").count(),
        1,
        "{roles:?}"
    );
    assert_pool_workers(&roles);
    assert_eq!(roles.iter().filter(|r| *r == "resource-tracker").count(), 1);
}

#[test]
fn inspect_labels_fork_children() {
    let (procs, manager) = snapshot("fork");
    let roles = roles(&procs);
    assert_eq!(role_of(&procs, manager), "manager-server", "{procs:?}");
    assert_eq!(
        roles.iter().filter(|r| *r == "fork-child").count(),
        1,
        "{roles:?}"
    );
    assert_pool_workers(&roles);
}

/// Two `Pool` workers and two `ProcessPoolExecutor` workers.
fn assert_pool_workers(roles: &[String]) {
    for role in ["pool-worker", "executor-worker"] {
        let count = roles.iter().filter(|r| *r == role).count();
        assert_eq!(count, 2, "{role}: {roles:?}");
    }
}

#[test]
fn inspect_labels_forkserver_and_its_children() {
    let (procs, manager) = snapshot("forkserver");
    let roles = roles(&procs);
    assert_eq!(
        roles.iter().filter(|r| *r == "forkserver").count(),
        1,
        "{roles:?}"
    );
    assert_eq!(role_of(&procs, manager), "manager-server", "{procs:?}");
    assert_eq!(
        roles.iter().filter(|r| *r == "forkserver-child").count(),
        1,
        "{roles:?}"
    );
    assert_pool_workers(&roles);
}

#[test]
fn inspect_labels_loky_workers_and_tracker() {
    let (procs, _) = snapshot_of(LOKY_PROGRAM, "");
    let roles = roles(&procs);
    assert_eq!(
        roles.iter().filter(|r| *r == "loky-worker").count(),
        2,
        "{procs:?}"
    );
    assert_eq!(
        roles
            .iter()
            .filter(|r| *r == "loky-resource-tracker")
            .count(),
        1,
        "{procs:?}"
    );
}

#[test]
fn inspect_labels_forkscope_workers() {
    let mut fs = common::Forkscope::start(
        &common::marker("roles_workers"),
        &["run", "-n", "2", "--headless", "--", "sleep", "30"],
    );
    fs.wait_kind("spawn", 2, Duration::from_secs(30));
    let out = common::forkscope_output(&["inspect", &fs.pid().to_string(), "--json"]);
    // SIGTERM makes forkscope stop its tree and exit.
    fs.signal(libc::SIGTERM);
    fs.finish_clean(Duration::from_secs(30));
    let json: Value = serde_json::from_slice(&out.stdout).expect("json");
    let procs = json["processes"].as_array().expect("processes");
    let workers: Vec<&Value> = procs.iter().filter(|p| p["role"] == "worker").collect();
    assert_eq!(workers.len(), 2, "{procs:?}");
    for w in workers {
        assert_eq!(w["argv"], serde_json::json!(["sleep", "30"]));
        assert!(!alive(
            w["pid"].as_i64().unwrap_or(0),
            w["start_time"].as_u64()
        ));
    }
}
