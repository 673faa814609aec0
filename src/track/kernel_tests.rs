//! Unit tests of `track::kernel`.
use super::*;
use std::cell::RefCell;

#[derive(Default)]
struct FakeProc {
    procs: RefCell<HashMap<i32, (ProcStat, Vec<String>)>>,
}

impl FakeProc {
    fn add(&self, pid: i32, ppid: i32, start: u64, argv: &[&str]) {
        let stat = ProcStat {
            comm: argv.first().copied().unwrap_or("x").into(),
            ..ProcStat::fixture(pid, ppid, start)
        };
        let argv = argv.iter().map(|s| s.to_string()).collect();
        self.procs.borrow_mut().insert(pid, (stat, argv));
    }
    fn remove(&self, pid: i32) {
        self.procs.borrow_mut().remove(&pid);
    }
    fn all(&self) -> HashMap<i32, ProcStat> {
        self.procs
            .borrow()
            .iter()
            .map(|(p, (s, _))| (*p, s.clone()))
            .collect()
    }
}

impl ProcReader for FakeProc {
    fn stat(&self, pid: i32) -> Option<ProcStat> {
        self.procs.borrow().get(&pid).map(|(s, _)| s.clone())
    }
    fn argv(&self, pid: i32) -> Option<Vec<String>> {
        self.procs.borrow().get(&pid).map(|(_, a)| a.clone())
    }
}

fn msg(event: ProcEvent) -> ProcMessage {
    ProcMessage {
        timestamp_ns: 5,
        event,
    }
}

fn fork(parent: i32, child: i32) -> ProcMessage {
    msg(ProcEvent::Fork {
        parent_pid: parent,
        parent_tgid: parent,
        child_pid: child,
        child_tgid: child,
    })
}

fn exit(pid: i32, code: u32, parent: i32) -> ProcMessage {
    msg(ProcEvent::Exit {
        pid,
        tgid: pid,
        exit_code: code,
        exit_signal: 17,
        parent_pid: Some(parent),
        parent_tgid: Some(parent),
    })
}

fn kinds(events: &[Tracked]) -> Vec<String> {
    events
        .iter()
        .map(|t| {
            let v = serde_json::to_value(&t.body).unwrap();
            format!("{} {}", v["kind"].as_str().unwrap(), v["pid"])
        })
        .collect()
}

#[test]
fn follows_the_tree_and_ignores_strangers_and_threads() {
    let proc = FakeProc::default();
    let mut t = KernelTracker::new(100);
    proc.add(101, 100, 1, &["python3", "main.py"]);
    // The engine's own worker: silent (its spawn says it), first exec silent.
    assert!(t.on_message(&fork(100, 101), &proc).is_empty());
    let exec = msg(ProcEvent::Exec {
        pid: 101,
        tgid: 101,
    });
    assert!(t.on_message(&exec, &proc).is_empty());
    proc.add(102, 101, 2, &["python3", "main.py"]);
    let got = t.on_message(&fork(101, 102), &proc);
    assert_eq!(kinds(&got), vec!["fork 102"]);
    assert!(matches!(
        got[0].body,
        EventBody::Fork {
            start_time: Some(2),
            ppid: 101,
            source: TrackSource::Kernel,
            ..
        }
    ));
    // A thread of a member, and a stranger's child.
    let thread = msg(ProcEvent::Fork {
        parent_pid: 102,
        parent_tgid: 102,
        child_pid: 103,
        child_tgid: 102,
    });
    assert!(t.on_message(&thread, &proc).is_empty());
    assert!(t.on_message(&fork(7, 8), &proc).is_empty());
    let thread_exit = msg(ProcEvent::Exit {
        pid: 103,
        tgid: 102,
        exit_code: 0,
        exit_signal: u32::MAX,
        parent_pid: Some(101),
        parent_tgid: Some(101),
    });
    assert!(t.on_message(&thread_exit, &proc).is_empty());
    proc.add(102, 101, 2, &["sh", "-c", "x"]);
    let got = t.on_message(
        &msg(ProcEvent::Exec {
            pid: 102,
            tgid: 102,
        }),
        &proc,
    );
    assert!(matches!(&got[0].body, EventBody::Exec { argv, .. } if argv[0] == "sh"));
    // Killed by SIGSEGV: raw status 11.
    let got = t.on_message(&exit(102, 11, 101), &proc);
    assert!(matches!(
        got[0].body,
        EventBody::Exit {
            status: ExitStatus::Signaled { signal: 11, .. },
            ..
        }
    ));
    assert!(!t.is_member(102));
    // The worker's exit is left to the reap.
    assert!(t.on_message(&exit(101, 0, 100), &proc).is_empty());
    assert_eq!(
        t.on_reaped(101, Some(1)),
        ReapVerdict::Report {
            ppid: 100,
            known: true
        }
    );
    assert_eq!(t.live(), 0);
}

#[test]
fn orphan_race_gets_exactly_one_exit() {
    let proc = FakeProc::default();
    let mut t = KernelTracker::new(100);
    proc.add(101, 100, 1, &["w"]);
    t.on_message(&fork(100, 101), &proc);
    proc.add(102, 101, 2, &["w"]);
    t.on_message(&fork(101, 102), &proc);
    // Kernel says the old parent, then the engine reaps it too: one exit.
    assert_eq!(t.on_message(&exit(102, 3 << 8, 101), &proc).len(), 1);
    assert_eq!(t.on_reaped(102, Some(2)), ReapVerdict::AlreadyReported);
    // Reaped first (orphan), kernel event later with the engine as parent: one exit.
    proc.add(103, 101, 3, &["w"]);
    t.on_message(&fork(101, 103), &proc);
    assert_eq!(
        t.on_reaped(103, Some(3)),
        ReapVerdict::Report {
            ppid: 101,
            known: true
        }
    );
    assert!(t.on_message(&exit(103, 0, 100), &proc).is_empty());
    // Never seen (events dropped): the reap reports birth and end.
    assert_eq!(
        t.on_reaped(104, Some(9)),
        ReapVerdict::Report {
            ppid: 100,
            known: false
        }
    );
}

#[test]
fn reused_pid_is_a_new_process() {
    let proc = FakeProc::default();
    let mut t = KernelTracker::new(100);
    proc.add(101, 100, 1, &["w"]);
    t.on_message(&fork(100, 101), &proc);
    proc.add(102, 101, 2, &["a"]);
    t.on_message(&fork(101, 102), &proc);
    // Exit lost; the pid comes back as a new child.
    proc.add(102, 101, 50, &["b"]);
    let got = t.on_message(&fork(101, 102), &proc);
    assert_eq!(kinds(&got), vec!["exit 102", "fork 102"]);
    assert!(matches!(
        got[1].body,
        EventBody::Fork {
            start_time: Some(50),
            ..
        }
    ));
}

#[test]
fn reconcile_repairs_dropped_events() {
    let proc = FakeProc::default();
    let mut t = KernelTracker::new(100);
    proc.add(101, 100, 1, &["w"]);
    t.on_message(&fork(100, 101), &proc);
    proc.add(102, 101, 2, &["a"]);
    t.on_message(&fork(101, 102), &proc);
    // 102 ended and 103, 104 appeared while events were dropped.
    proc.remove(102);
    proc.add(103, 101, 3, &["b", "x"]);
    proc.add(104, 103, 4, &["c"]);
    let all = proc.all();
    let tree: Vec<ProcStat> = [101, 103, 104].iter().map(|p| all[p].clone()).collect();
    let got = t.reconcile(&all, &tree, &proc, |pid| pid == 101);
    assert_eq!(
        kinds(&got),
        vec!["exit 102", "fork 103", "exec 103", "fork 104", "exec 104"]
    );
    assert!(matches!(
        got[0].body,
        EventBody::Exit {
            status: ExitStatus::Unknown,
            source: TrackSource::Poll,
            ..
        }
    ));
    // A second pass finds nothing new.
    assert!(t.reconcile(&all, &tree, &proc, |pid| pid == 101).is_empty());
    assert_eq!(t.live(), 3);
    let left = t.finish();
    assert_eq!(left.len(), 2); // 103 and 104; the worker is the reap's
}

#[test]
fn gone_process_exec_has_a_placeholder_argv() {
    let proc = FakeProc::default();
    assert_eq!(argv_of(&proc, 5, None), vec!["[?]"]);
    proc.add(5, 1, 9, &[]);
    assert_eq!(argv_of(&proc, 5, Some(9)), vec!["[x]"]);
    assert_eq!(argv_of(&proc, 5, Some(8)), vec!["[?]"]);
}

/// A tracker for the engine 100 that saw each pid of `chain` forked by the one before (the
/// first by the engine); pid N has start time N - 100.
fn forked_chain(chain: &[i32]) -> (FakeProc, KernelTracker) {
    let proc = FakeProc::default();
    let mut t = KernelTracker::new(100);
    let mut parent = 100;
    for pid in chain {
        proc.add(*pid, parent, (*pid - 100) as u64, &["sh"]);
        t.on_message(&fork(parent, *pid), &proc);
        parent = *pid;
    }
    (proc, t)
}

#[test]
fn a_reported_exit_is_a_zombie_until_proc_no_longer_has_it() {
    let (proc, mut t) = forked_chain(&[101, 102]);
    let got = t.on_message(&exit(102, 0, 101), &proc);
    assert!(matches!(
        got[0].body,
        EventBody::Exit {
            zombie: true,
            ppid: 101,
            ..
        }
    ));
    assert_eq!(t.zombies_waiting(), 1);
    assert!(
        t.check_zombies(&proc).is_empty(),
        "still in /proc: a zombie"
    );
    proc.remove(102);
    assert_eq!(
        t.check_zombies(&proc),
        vec![EventBody::Reap { pid: 102, by: 101 }]
    );
    assert_eq!(t.zombies_waiting(), 0);
    // A zombie whose pid a new fork takes was collected before.
    proc.add(103, 101, 3, &["sh"]);
    t.on_message(&fork(101, 103), &proc);
    t.on_message(&exit(103, 0, 101), &proc);
    proc.add(103, 101, 4, &["sh"]);
    let got = t.on_message(&fork(101, 103), &proc);
    assert_eq!(kinds(&got), vec!["reap 103", "fork 103"]);
    // One the engine collects (re-parented to it as a zombie) is the engine's reap.
    t.on_message(&exit(103, 0, 101), &proc);
    assert_eq!(t.on_reaped(103, Some(4)), ReapVerdict::AlreadyReported);
    assert_eq!(t.zombies_waiting(), 0);
}

#[test]
fn the_children_of_an_ended_member_are_reported_adopted() {
    let (proc, mut t) = forked_chain(&[101, 102, 103]);
    // 102 ends; the kernel re-parented 103 to the engine before the exit message.
    proc.add(103, 100, 3, &["sleep"]);
    let got = t.on_message(&exit(102, 0, 101), &proc);
    assert_eq!(kinds(&got), vec!["exit 102", "reparent 103"]);
    assert!(matches!(
        got[1].body,
        EventBody::Reparent {
            from: 102,
            to: 100,
            ..
        }
    ));
    // The orphan's own end is the engine's to report, with its new parent.
    assert!(t.on_message(&exit(103, 0, 100), &proc).is_empty());
    assert_eq!(
        t.on_reaped(103, Some(3)),
        ReapVerdict::Report {
            ppid: 100,
            known: true
        }
    );
}

#[test]
fn reconcile_reports_a_parent_change_it_finds_in_proc() {
    let (proc, mut t) = forked_chain(&[101, 102, 103]);
    // 102's exit message was dropped; /proc shows it gone and 103 adopted.
    proc.remove(102);
    proc.add(103, 100, 3, &["sleep"]);
    let all = proc.all();
    let tree: Vec<ProcStat> = all.values().cloned().collect();
    let got = t.reconcile(&all, &tree, &proc, |pid| pid == 101);
    assert_eq!(kinds(&got), vec!["exit 102", "reparent 103"]);
}

#[test]
fn a_member_born_while_proc_was_read_is_not_gone() {
    let (proc, mut t) = forked_chain(&[101]);
    let scan_before_birth = proc.all();
    proc.add(102, 101, 2, &["sh"]);
    t.on_message(&fork(101, 102), &proc);
    let tree: Vec<ProcStat> = scan_before_birth.values().cloned().collect();
    let got = t.reconcile(&scan_before_birth, &tree, &proc, |pid| pid == 101);
    assert!(got.is_empty(), "{:?}", kinds(&got));
    assert!(t.is_member(102));
}

#[test]
fn a_zombie_listed_by_the_scan_and_reaped_since_is_not_a_new_process() {
    let (proc, mut t) = forked_chain(&[101, 102]);
    t.on_message(&exit(102, 0, 101), &proc);
    let scan_with_zombie = proc.all();
    proc.remove(102); // its parent reaps it after the scan
    let tree: Vec<ProcStat> = scan_with_zombie.values().cloned().collect();
    let got = t.reconcile(&scan_with_zombie, &tree, &proc, |pid| pid == 101);
    assert_eq!(kinds(&got), vec!["reap 102"]);
}

#[test]
fn a_fork_after_the_proc_listing_is_not_reported_gone() {
    let proc = FakeProc::default();
    let mut t = KernelTracker::new(100);
    proc.add(101, 100, 1, &["w"]);
    t.on_message(&fork(100, 101), &proc);
    let all = proc.all();
    let tree: Vec<ProcStat> = vec![all[&101].clone()];
    // 102 is born after /proc was listed; its fork event is applied before the comparison.
    proc.add(102, 101, 2, &["a"]);
    t.on_message(&fork(101, 102), &proc);
    assert!(t.reconcile(&all, &tree, &proc, |pid| pid == 101).is_empty());
    let exit = t.on_message(&exit(102, 0, 101), &proc);
    assert_eq!(kinds(&exit), vec!["exit 102"]);
}
