//! Semaphore decoding and grouping, on the layouts CPython creates.

use super::*;

fn sem(inode: u64, value: u32, waiters: u32) -> SemFacts {
    SemFacts {
        inode,
        value: Some(value),
        waiters: Some(waiters),
        pids: vec![10, 11],
        blocked: if waiters > 0 { vec![11] } else { vec![] },
    }
}

#[test]
fn decodes_sem_t() {
    let mut bytes = [0u8; 32];
    bytes[0] = 2;
    bytes[4] = 3;
    bytes[8] = 128;
    assert_eq!(decode(&bytes), Some((2, 3)));
    bytes[8] = 7;
    assert_eq!(decode(&bytes), None);
    assert_eq!(decode(&bytes[..8]), Some((2, 3)));
    assert_eq!(decode(&bytes[..7]), None);
}

#[test]
fn groups_a_barrier_after_its_arena() {
    // The run observed for Barrier(3) with two waiters: RLock free, 2 sleeping, 0 woken,
    // wait semaphore with 2 waiters; the arena has inode 58.
    let sems = vec![sem(59, 1, 0), sem(60, 2, 0), sem(61, 0, 0), sem(62, 0, 2)];
    let groups = group(&sems, &|inode| inode == 59);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].kind, "barrier");
    assert_eq!(groups[0].roles[3], "condition.wait");
    let prims = primitives(&sems, &groups);
    assert_eq!(prims[0].semaphores, vec![59, 60, 61, 62]);
    assert_eq!(prims[0].waiting, vec![11]);
    // Without the arena it is a Condition.
    assert_eq!(group(&sems, &|_| false)[0].kind, "condition");
}

#[test]
fn groups_queue_event_and_lone_locks() {
    let sems = vec![
        sem(10, 1, 0),
        sem(11, 1, 0),
        sem(12, i32::MAX as u32 - 2, 0),
        sem(20, 1, 0),
        sem(21, 0, 0),
        sem(22, 0, 0),
        sem(23, 0, 3),
        sem(24, 0, 0),
        sem(30, 0, 2),
        sem(40, 5, 0),
    ];
    let groups = group(&sems, &|_| false);
    let kinds: Vec<&str> = groups.iter().map(|g| g.kind).collect();
    assert_eq!(kinds, ["queue", "event", "lock-or-rlock", "semaphore"]);
    let prims = primitives(&sems, &groups);
    assert_eq!(
        prims[0].state.as_deref(),
        Some("2 put and not yet taken (default maxsize)")
    );
    assert_eq!(prims[1].state.as_deref(), Some("clear"));
    assert_eq!(prims[2].state.as_deref(), Some("held"));
    assert_eq!(prims[3].state.as_deref(), Some("value 5"));
    assert!(prims.iter().all(|p| p.confidence == Confidence::Guess));
}

#[test]
fn barrier_counters_and_slots() {
    let mut arena = vec![0u8; 64];
    arena[4] = 2;
    assert_eq!(barrier_counters(&arena), Some(("filling", 2)));
    assert_eq!(
        find_barrier_slot(&arena, true, 2),
        Some((0, Confidence::Confirmed))
    );
    assert_eq!(
        find_barrier_slot(&arena, true, 1),
        Some((0, Confidence::Guess))
    );
    // Not fresh: the one slot reading (filling, 2).
    let mut arena = vec![9u8; 64];
    arena[16..24].copy_from_slice(&[0, 0, 0, 0, 2, 0, 0, 0]);
    assert_eq!(
        find_barrier_slot(&arena, false, 2),
        Some((16, Confidence::Guess))
    );
    arena[32..40].copy_from_slice(&[0, 0, 0, 0, 2, 0, 0, 0]);
    assert_eq!(find_barrier_slot(&arena, false, 2), None);
    assert_eq!(barrier_counters(&[5, 0, 0, 0, 0, 0, 0, 0]), None);
    assert_eq!(
        barrier_counters(&[0xfe, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
        Some(("broken", 0))
    );
}

proptest::proptest! {
    #[test]
    fn any_bytes_and_values_group(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
                                  values in proptest::collection::vec((0u64..8, proptest::option::of(proptest::num::u32::ANY)), 0..20),
                                  fresh: bool, waiting in -3i32..5) {
        let _ = decode(&bytes);
        let _ = barrier_counters(&bytes);
        let _ = find_barrier_slot(&bytes, fresh, waiting);
        let mut inode = 0;
        let sems: Vec<SemFacts> = values.iter().map(|(gap, v)| {
            inode += gap;
            SemFacts { inode, value: *v, waiters: Some(0), pids: vec![], blocked: vec![] }
        }).collect();
        let groups = group(&sems, &|i| i % 3 == 0);
        let prims = primitives(&sems, &groups);
        let covered: usize = prims.iter().map(|p| p.semaphores.len()).sum();
        proptest::prop_assert_eq!(covered, sems.len());
    }
}

#[test]
fn a_contended_lock_before_an_event_stays_alone() {
    // Lock() (held, 2 waiters) then Event() (set): six semaphores in a row.
    let sems = vec![
        sem(70, 0, 2),
        sem(71, 1, 0),
        sem(72, 0, 0),
        sem(73, 0, 0),
        sem(74, 0, 0),
        sem(75, 1, 0),
    ];
    let kinds: Vec<&str> = group(&sems, &|_| false).iter().map(|g| g.kind).collect();
    assert_eq!(kinds, ["lock-or-rlock", "event"]);
}
