//! Who waits for what, in real, unmodified Python multiprocessing programs (fork and spawn):
//! `forkscope inspect PID --json` is polled until the expected waits show (30 s deadline),
//! then the program's process group is killed and the semaphore files it left are removed.

mod common;

use std::collections::BTreeSet;
use std::time::Instant;

use common::shm::*;
use serde_json::Value;

/// A program under test: its pids line, and cleanup of the group and its /dev/shm names.
struct Program {
    py: Option<Py>,
    pids: Vec<i32>,
    /// Linked semaphore names seen while inspecting (spawn keeps them linked).
    seen_names: BTreeSet<String>,
    /// One program at a time: primitives are grouped by consecutive tmpfs inode numbers,
    /// which two programs creating semaphores at the same moment would interleave (the
    /// grouping then says `guess`; these tests assert the exact grouping).
    _serial: std::sync::MutexGuard<'static, ()>,
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Program {
    fn start(script: &str, method: &str) -> Program {
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let py = Py::start(script, &[method]);
        let line = py.expect("pids");
        let pids = line
            .split_whitespace()
            .skip(1)
            .map(|p| p.parse().expect("pid"))
            .collect();
        Program {
            py: Some(py),
            pids,
            seen_names: BTreeSet::new(),
            _serial: serial,
        }
    }

    fn root(&self) -> i32 {
        self.pids[0]
    }

    fn send(&mut self, line: &str) {
        self.py.as_mut().expect("running").send(line);
    }

    /// Polls `inspect ROOT --json` until `ready` holds; returns that snapshot.
    fn inspect_until(&mut self, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let snap = forkscope_json(&["inspect", &self.root().to_string()]);
            for s in snap["semaphores"].as_array().into_iter().flatten() {
                if s["deleted"] == false {
                    self.seen_names
                        .insert(s["name"].as_str().unwrap_or("").to_string());
                }
            }
            if ready(&snap) {
                return snap;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last snapshot:\n{}",
                serde_json::to_string_pretty(&snap).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        if let Some(py) = self.py.take() {
            // SAFETY: killing the process group of our own child (hung programs cannot end).
            unsafe { libc::kill(-py.pid(), libc::SIGKILL) };
            drop(py);
        }
        for name in &self.seen_names {
            if name.starts_with("sem.mp-") {
                let _ = std::fs::remove_file(format!("/dev/shm/{name}"));
            }
        }
    }
}

fn process(snap: &Value, pid: i32) -> &Value {
    snap["processes"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["pid"] == pid))
        .unwrap_or(&Value::Null)
}

fn wait_of(snap: &Value, pid: i32) -> &Value {
    &process(snap, pid)["blocked_on"]
}

fn kind_of(snap: &Value, pid: i32) -> String {
    wait_of(snap, pid)["kind"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn ints(v: &Value) -> Vec<i64> {
    let mut out: Vec<i64> = v
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    out.sort_unstable();
    out
}

fn sorted(pids: &[i32]) -> Vec<i64> {
    let mut out: Vec<i64> = pids.iter().map(|p| *p as i64).collect();
    out.sort_unstable();
    out
}

fn sem_of(snap: &Value, pid: i32) -> Option<u64> {
    wait_of(snap, pid)["details"]["semaphore"].as_u64()
}

fn semaphore(snap: &Value, inode: u64) -> &Value {
    snap["semaphores"]
        .as_array()
        .and_then(|ss| ss.iter().find(|s| s["inode"] == inode))
        .unwrap_or(&Value::Null)
}

const BARRIER: &str = r#"
import multiprocessing as mp, os, sys, time
def waiter(b):
    b.wait()
def sleeper(b):
    time.sleep(600)
if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    b = ctx.Barrier(3)
    ps = [ctx.Process(target=waiter, args=(b,)) for _ in range(2)]
    ps.append(ctx.Process(target=sleeper, args=(b,)))
    for p in ps: p.start()
    print("pids", os.getpid(), *[p.pid for p in ps], flush=True)
    for p in ps: p.join()
"#;

fn barrier(method: &str) {
    let mut prog = Program::start(BARRIER, method);
    let (waiters, sleeper) = (vec![prog.pids[1], prog.pids[2]], prog.pids[3]);
    let snap = prog.inspect_until("two barrier waiters and a sleeper", |s| {
        waiters.iter().all(|w| kind_of(s, *w) == "futex")
            && kind_of(s, sleeper) == "sleep"
            && s["barriers"].as_array().is_some_and(|b| b.len() == 1)
            && ints(&s["barriers"][0]["waiting"]) == sorted(&waiters)
    });
    let inode = sem_of(&snap, waiters[0]).expect("futex on a semaphore");
    assert_eq!(sem_of(&snap, waiters[1]), Some(inode));
    let sem = semaphore(&snap, inode);
    assert_eq!(sem["waiters"], 2);
    assert_eq!(ints(&sem["blocked"]), sorted(&waiters));
    assert_eq!(sem["kind"], "condition.wait");
    let b = &snap["barriers"][0];
    assert_eq!(b["semaphore"], inode);
    assert_eq!(b["state"], "filling");
    assert_eq!(b["arrived"], 2);
    assert_eq!(b["confidence"], "confirmed");
    let missing: Vec<&Value> = b["missing"].as_array().unwrap().iter().collect();
    let named = missing
        .iter()
        .find(|m| m["pid"] == sleeper)
        .expect("the sleeper is a missing party");
    assert_eq!(named["blocked_on"]["kind"], "sleep");
    assert!(
        named["blocked_on"]["details"]["remaining_secs"]
            .as_f64()
            .unwrap()
            > 400.0
    );
    let object = wait_of(&snap, waiters[0])["object"].as_str().unwrap();
    assert!(object.contains("barrier, 2 waiting"), "{object}");
    // The Python stack names what the futex wait means.
    for w in &waiters {
        let python = wait_of(&snap, *w)["python"].as_str().unwrap_or_default();
        assert!(python.starts_with("Barrier.wait at "), "{python:?}");
    }
    // The parent joins its first child.
    assert_eq!(kind_of(&snap, prog.root()), "child-wait");
    assert_eq!(wait_of(&snap, prog.root())["details"]["child"], waiters[0]);
    assert!(snap["deadlocks"].as_array().unwrap().is_empty());
}

#[test]
fn barrier_fork() {
    barrier("fork");
}

#[test]
fn barrier_spawn() {
    barrier("spawn");
}

const LOCK: &str = r#"
import multiprocessing as mp, os, sys, time
def holder(lock, ready):
    with lock:
        ready.set()
        time.sleep(600)
def blocker(lock):
    with lock:
        pass
if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    lock, ready = ctx.Lock(), ctx.Event()
    h = ctx.Process(target=holder, args=(lock, ready))
    h.start()
    ready.wait()
    bs = [ctx.Process(target=blocker, args=(lock,)) for _ in range(2)]
    for b in bs: b.start()
    print("pids", os.getpid(), h.pid, *[b.pid for b in bs], flush=True)
    for p in [h] + bs: p.join()
"#;

fn lock(method: &str) {
    let mut prog = Program::start(LOCK, method);
    let (holder, blockers) = (prog.pids[1], vec![prog.pids[2], prog.pids[3]]);
    let snap = prog.inspect_until("two processes blocked on the held lock", |s| {
        blockers.iter().all(|b| kind_of(s, *b) == "futex") && kind_of(s, holder) == "sleep"
    });
    let inode = sem_of(&snap, blockers[0]).expect("on a semaphore");
    assert_eq!(sem_of(&snap, blockers[1]), Some(inode));
    let sem = semaphore(&snap, inode);
    assert_eq!(sem["value"], 0);
    assert_eq!(sem["waiters"], 2);
    assert_eq!(ints(&sem["blocked"]), sorted(&blockers));
    let prim = &snap["primitives"][sem["primitive"].as_u64().unwrap() as usize];
    assert_eq!(prim["kind"], "lock-or-rlock");
    assert_eq!(prim["state"], "held");
    assert_eq!(prim["confidence"], "guess");
    assert!(ints(&prim["pids"]).contains(&(holder as i64)));
}

#[test]
fn lock_fork() {
    lock("fork");
}

#[test]
fn lock_spawn() {
    lock("spawn");
}

const EVENT: &str = r#"
import multiprocessing as mp, os, sys, time
def waiter(ev):
    ev.wait()
    time.sleep(600)
if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    ev = ctx.Event()
    ps = [ctx.Process(target=waiter, args=(ev,)) for _ in range(3)]
    for p in ps: p.start()
    print("pids", os.getpid(), *[p.pid for p in ps], flush=True)
    sys.stdin.readline()
    ev.set()
    print("set", flush=True)
    for p in ps: p.join()
"#;

fn event(method: &str) {
    let mut prog = Program::start(EVENT, method);
    let waiters = prog.pids[1..].to_vec();
    let snap = prog.inspect_until("three processes waiting on the event", |s| {
        waiters.iter().all(|w| kind_of(s, *w) == "futex")
    });
    let inode = sem_of(&snap, waiters[0]).expect("on a semaphore");
    assert!(waiters.iter().all(|w| sem_of(&snap, *w) == Some(inode)));
    let sem = semaphore(&snap, inode);
    assert_eq!(sem["waiters"], 3);
    let prim = &snap["primitives"][sem["primitive"].as_u64().unwrap() as usize];
    assert_eq!(prim["kind"], "event");
    assert_eq!(prim["state"], "clear");
    assert!(
        wait_of(&snap, waiters[0])["object"]
            .as_str()
            .unwrap()
            .contains("event, 3 waiting")
    );
    prog.send("go");
    prog.py.as_ref().unwrap().expect("set");
    let snap = prog.inspect_until("the waits gone after set", |s| {
        waiters.iter().all(|w| kind_of(s, *w) == "sleep")
    });
    let sem = semaphore(&snap, inode);
    assert_eq!(sem["waiters"], 0);
    assert!(ints(&sem["blocked"]).is_empty());
    let prim = &snap["primitives"][sem["primitive"].as_u64().unwrap() as usize];
    assert_eq!(prim["state"], "set");
}

#[test]
fn event_fork() {
    event("fork");
}

#[test]
fn event_spawn() {
    event("spawn");
}

const QUEUE: &str = r#"
import multiprocessing as mp, os, sys
def consumer(q):
    q.get()
if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    q = ctx.Queue()
    c = ctx.Process(target=consumer, args=(q,))
    c.start()
    print("pids", os.getpid(), c.pid, flush=True)
    c.join()
"#;

fn queue(method: &str) {
    let mut prog = Program::start(QUEUE, method);
    let (parent, consumer) = (prog.root(), prog.pids[1]);
    let snap = prog.inspect_until("the consumer reading its queue's pipe", |s| {
        kind_of(s, consumer) == "pipe-read"
    });
    let wait = wait_of(&snap, consumer);
    let inode = wait["details"]["inode"].as_u64().unwrap();
    assert_eq!(wait["object"], format!("pipe:[{inode}]"));
    // Every process holds the queue's write end (a Queue keeps both).
    assert_eq!(ints(&wait["details"]["peers"]), sorted(&[parent, consumer]));
    let channel = snap["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["inode"] == inode)
        .expect("the pipe is listed");
    assert_eq!(channel["kind"], "pipe");
    assert_eq!(channel["bytes_waiting"], 0);
    assert!(
        channel["blocked"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["pid"] == consumer && b["kind"] == "pipe-read")
    );
    let writers: BTreeSet<i64> = channel["ends"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["mode"] == "w")
        .filter_map(|e| e["pid"].as_i64())
        .collect();
    assert_eq!(writers, [parent as i64, consumer as i64].into());
    let queue = snap["primitives"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "queue")
        .expect("a queue recognised");
    assert_eq!(queue["semaphores"].as_array().unwrap().len(), 3);
}

#[test]
fn queue_fork() {
    queue("fork");
}

#[test]
fn queue_spawn() {
    queue("spawn");
}

const DEADLOCK: &str = r#"
import multiprocessing as mp, os, sys
def worker(first, second, both):
    with first:
        both.wait()
        with second:
            pass
if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    a, b, both = ctx.Lock(), ctx.Lock(), ctx.Barrier(2)
    ps = [ctx.Process(target=worker, args=(a, b, both)),
          ctx.Process(target=worker, args=(b, a, both))]
    for p in ps: p.start()
    print("pids", os.getpid(), *[p.pid for p in ps], flush=True)
    for p in ps: p.join()
"#;

fn deadlock(method: &str) {
    let mut prog = Program::start(DEADLOCK, method);
    let workers = vec![prog.pids[1], prog.pids[2]];
    let snap = prog.inspect_until("the deadlock", |s| {
        s["deadlocks"].as_array().is_some_and(|d| !d.is_empty())
    });
    let d = &snap["deadlocks"][0];
    assert_eq!(ints(&d["pids"]), sorted(&workers));
    assert_eq!(d["cycle"].as_array().unwrap().len(), 2);
    assert_eq!(d["guess"], true);
    let (a, b) = (sem_of(&snap, workers[0]), sem_of(&snap, workers[1]));
    assert!(a.is_some() && b.is_some() && a != b);
}

#[test]
fn deadlock_fork() {
    deadlock("fork");
}

#[test]
fn deadlock_spawn() {
    deadlock("spawn");
}

const PIPELINE: &str = r#"
import multiprocessing as mp, os, sys
def stage(inp, out):
    while True:
        item = inp.recv()
        if out is not None:
            out.send(item)
if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    src_r, src_w = ctx.Pipe(duplex=False)
    ab_r, ab_w = ctx.Pipe(duplex=False)
    bc_r, bc_w = ctx.Pipe(duplex=False)
    ps = [ctx.Process(target=stage, args=(src_r, ab_w)),
          ctx.Process(target=stage, args=(ab_r, bc_w)),
          ctx.Process(target=stage, args=(bc_r, None))]
    for p in ps: p.start()
    print("pids", os.getpid(), *[p.pid for p in ps], flush=True)
    for p in ps: p.join()
"#;

fn pipeline(method: &str) {
    let mut prog = Program::start(PIPELINE, method);
    let stages = prog.pids[1..].to_vec();
    let snap = prog.inspect_until("three stages waiting to receive", |s| {
        stages.iter().all(|p| kind_of(s, *p) == "pipe-read")
    });
    // Pipe(duplex=False) is an os.pipe(): each stage reads the pipe its upstream writes.
    for (i, stage) in stages.iter().enumerate() {
        let peers = ints(&wait_of(&snap, *stage)["details"]["peers"]);
        let upstream = if i == 0 { prog.root() } else { stages[i - 1] };
        assert!(
            peers.contains(&(upstream as i64)),
            "stage {i} ({stage}) peers {peers:?} lack {upstream}"
        );
    }
}

#[test]
fn pipeline_fork() {
    pipeline("fork");
}

#[test]
fn pipeline_spawn() {
    pipeline("spawn");
}

const SOCKETS: &str = r#"
import multiprocessing as mp, os, sys
def echo(conn):
    conn.recv()
if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    mine, theirs = ctx.Pipe()
    p = ctx.Process(target=echo, args=(theirs,))
    p.start()
    print("pids", os.getpid(), p.pid, flush=True)
    p.join()
"#;

#[test]
fn duplex_pipe_is_a_socketpair_with_peers() {
    let mut prog = Program::start(SOCKETS, "spawn");
    let (parent, child) = (prog.root(), prog.pids[1]);
    let snap = prog.inspect_until("the child receiving", |s| {
        kind_of(s, child) == "socket-recv"
    });
    let wait = wait_of(&snap, child);
    assert_eq!(ints(&wait["details"]["peers"]), vec![parent as i64]);
    let inode = wait["details"]["inode"].as_u64().unwrap();
    let channel = snap["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["inode"] == inode || c["peer_inode"] == inode)
        .expect("the socketpair is listed");
    assert_eq!(channel["kind"], "socketpair");
    assert_eq!(channel["bytes_waiting"], 0);
}

const EXITED_PARTY: &str = r#"
import multiprocessing as mp, os, sys
def waiter(b):
    b.wait()
def quitter(b, go):
    go.wait()
if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    b, go = ctx.Barrier(3), ctx.Event()
    ps = [ctx.Process(target=waiter, args=(b,)) for _ in range(2)]
    ps.append(ctx.Process(target=quitter, args=(b, go)))
    for p in ps: p.start()
    print("pids", os.getpid(), *[p.pid for p in ps], flush=True)
    sys.stdin.readline()
    go.set()
    for p in ps: p.join()
"#;

/// A scanner that keeps history sees a party map the barrier, then exit: it can never fill.
#[test]
fn barrier_whose_party_exited_can_never_fill() {
    use forkscope::inspect::sync::Scanner;
    let mut prog = Program::start(EXITED_PARTY, "fork");
    let (waiters, quitter) = (vec![prog.pids[1], prog.pids[2]], prog.pids[3]);
    let mut scanner = Scanner::new();
    let deadline = Instant::now() + DEADLINE;
    let scan_pids = prog.pids.clone();
    loop {
        let report = scanner.scan(&scan_pids);
        if report
            .barriers
            .first()
            .is_some_and(|b| b.waiting.len() == 2 && b.missing.iter().any(|m| m.pid == quitter))
        {
            assert!(!report.barriers[0].can_never_fill);
            break;
        }
        assert!(Instant::now() < deadline, "barrier never seen: {report:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    prog.send("go");
    loop {
        let report = scanner.scan(&scan_pids);
        if let Some(b) = report.barriers.first()
            && b.can_never_fill
        {
            assert_eq!(b.exited, vec![quitter]);
            let mut waiting = b.waiting.clone();
            waiting.sort_unstable();
            assert_eq!(waiting, waiters);
            break;
        }
        assert!(Instant::now() < deadline, "exit never seen: {report:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
