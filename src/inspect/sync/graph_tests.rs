//! Waits-for graphs of the textbook hangs.

use super::*;
use crate::model::sync::{BlockedOn, ThreadWait};

fn process(pid: i32, b: BlockedOn) -> ProcessWaits {
    ProcessWaits {
        pid,
        threads: vec![ThreadWait {
            tid: pid,
            blocked_on: b.clone(),
        }],
        blocked_on: b,
    }
}

fn on_sem(pid: i32, inode: u64) -> ProcessWaits {
    let mut b = BlockedOn::new(WaitKind::Futex);
    b.details.semaphore = Some(inode);
    b.object = Some(format!("sem {inode}"));
    process(pid, b)
}

fn joining(pid: i32, child: i32) -> ProcessWaits {
    let mut b = BlockedOn::new(WaitKind::ChildWait);
    b.details.child = Some(child);
    process(pid, b)
}

fn no_children(_: i32) -> Vec<i32> {
    Vec::new()
}

#[test]
fn two_lock_deadlock_is_one_cycle() {
    // 1 joins 2; 2 holds A (inode 100) and waits B (101); 3 holds B and waits A.
    let waits = vec![joining(1, 2), on_sem(2, 101), on_sem(3, 100)];
    let mappers = |_: u64| vec![1, 2, 3];
    let graph = build(&waits, &mappers, &no_children);
    let found = deadlocks(&graph);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].pids, vec![2, 3]);
    assert!(found[0].guess);
    assert_eq!(found[0].cycle.len(), 2);
    assert!(found[0].cycle[0].contains("sem 10"), "{:?}", found[0].cycle);
    assert!(stuck(&graph).contains(&1));
}

#[test]
fn a_sleeping_party_frees_the_barrier_waiters() {
    let sleeper = process(4, BlockedOn::new(WaitKind::Sleep));
    let waits = vec![joining(1, 2), on_sem(2, 62), on_sem(3, 62), sleeper];
    let mappers = |_: u64| vec![1, 2, 3, 4];
    let graph = build(&waits, &mappers, &no_children);
    assert!(!graph.contains_key(&4));
    assert!(stuck(&graph).is_empty());
    assert!(deadlocks(&graph).is_empty());
}

#[test]
fn a_reader_of_a_pipe_only_it_can_write_is_stuck() {
    let mut b = BlockedOn::new(WaitKind::PipeRead);
    b.object = Some("pipe:[9]".into());
    b.details.peers = vec![1, 2];
    let waits = vec![joining(1, 2), process(2, b)];
    let graph = build(&waits, &|_| vec![], &no_children);
    let found = deadlocks(&graph);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].pids, vec![2]);
    assert!(!found[0].guess);
    // With a writer outside the graph's stuck set (running), nothing is stuck.
    let mut b = BlockedOn::new(WaitKind::PipeRead);
    b.details.peers = vec![5];
    let waits = vec![process(2, b), process(5, BlockedOn::new(WaitKind::Running))];
    assert!(deadlocks(&build(&waits, &|_| vec![], &no_children)).is_empty());
}

#[test]
fn any_child_waits_and_timed_waits() {
    let mut any = BlockedOn::new(WaitKind::ChildWait);
    any.details.any_child = true;
    let mut timed = BlockedOn::new(WaitKind::Futex);
    timed.details.semaphore = Some(7);
    timed.details.timed = true;
    let waits = vec![process(1, any), process(2, timed)];
    let graph = build(&waits, &|_| vec![1, 2], &|pid| {
        if pid == 1 { vec![2] } else { vec![] }
    });
    assert_eq!(graph[&1][0].to, 2);
    assert!(!graph.contains_key(&2));
    assert!(deadlocks(&graph).is_empty());
}

proptest::proptest! {
    #[test]
    fn any_graph_terminates(edges in proptest::collection::vec((0i32..8, 0i32..8, proptest::bool::ANY), 0..30)) {
        let mut graph = Graph::new();
        for (from, to, join) in edges {
            graph.entry(from).or_default().push(Edge { to, via: "x".into(), guess: false, join });
        }
        let found = deadlocks(&graph);
        let stuck = stuck(&graph);
        for d in found {
            proptest::prop_assert!(d.pids.iter().all(|p| stuck.contains(p)));
        }
    }
}
