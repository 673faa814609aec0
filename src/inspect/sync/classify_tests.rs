//! Classification against a fake process (descriptors, maps, memory, clock).

use std::collections::HashMap;

use super::*;
use crate::inspect::shm::maps::parse_line;
use crate::inspect::sync::fds::Fd;

#[derive(Default)]
struct Fake {
    fds: FdTable,
    maps: Vec<MapsLine>,
    mem: HashMap<u64, Vec<u8>>,
    fdinfo: HashMap<i32, FdInfo>,
}

impl Probe for Fake {
    fn fds(&mut self) -> &FdTable {
        &self.fds
    }
    fn maps(&mut self) -> &[MapsLine] {
        &self.maps
    }
    fn read_mem(&mut self, addr: u64, len: usize) -> Option<Vec<u8>> {
        let bytes = self.mem.get(&addr)?;
        Some(bytes.get(..len)?.to_vec())
    }
    fn fdinfo(&mut self, fd: i32) -> FdInfo {
        self.fdinfo.get(&fd).cloned().unwrap_or_default()
    }
    fn now(&self, _clock: i32) -> Option<f64> {
        Some(100.0)
    }
}

fn blocked(nr: u64, args: [u64; 6]) -> ThreadFacts {
    ThreadFacts {
        tid: 7,
        state: Some('S'),
        syscall: Some(SyscallState::In { nr, args }),
        wchan: Some("futex_do_wait".into()),
        last_ran_ms: None,
    }
}

fn timespec(sec: i64, nsec: i64) -> Vec<u8> {
    let mut b = sec.to_le_bytes().to_vec();
    b.extend(nsec.to_le_bytes());
    b
}

const X86: Option<Arch> = Some(Arch::X86_64);

#[test]
fn futex_on_a_semaphore_names_it() {
    let mut fake = Fake {
        maps: vec![
            parse_line(
                "7f0be15ee000-7f0be15ef000 rw-s 00000000 00:1b 62   /dev/shm/sem.nNNMgO (deleted)",
            )
            .unwrap(),
        ],
        ..Fake::default()
    };
    let w = classify(
        &blocked(202, [0x7f0be15ee000, 0x109, 0, 0, 0, 0xffffffff]),
        X86,
        &mut fake,
    );
    assert_eq!(w.kind, WaitKind::Futex);
    assert_eq!(w.details.semaphore, Some(62));
    assert_eq!(w.details.segment.as_deref(), Some("sem.nNNMgO"));
    assert_eq!(w.details.offset, Some(0));
    assert_eq!(w.object.as_deref(), Some("sem 62"));
    assert_eq!(w.details.wchan.as_deref(), Some("futex_do_wait"));
    assert!(!w.details.timed);
    // Private futexes are not looked up; addresses outside any mapping are just addresses.
    let w = classify(&blocked(202, [0x10, 0x189, 0, 0, 0, 0]), X86, &mut fake);
    assert_eq!(w.details.futex_scope, Some("private"));
    let w = classify(&blocked(202, [0x10, 0x9, 0, 0, 0, 0]), X86, &mut fake);
    assert_eq!(w.object.as_deref(), Some("futex 0x10"));
}

#[test]
fn timed_futex_and_sleeps_compute_times() {
    let mut fake = Fake::default();
    fake.mem.insert(0x500, timespec(102, 500_000_000));
    let w = classify(&blocked(202, [0x10, 0x9, 0, 0x500, 0, 0]), X86, &mut fake);
    assert!(w.details.timed);
    assert_eq!(w.details.remaining_secs, Some(2.5));
    // clock_nanosleep(MONOTONIC, TIMER_ABSTIME, req): remaining; relative: duration.
    let w = classify(&blocked(230, [1, 1, 0x500, 0, 0, 0]), X86, &mut fake);
    assert_eq!(w.kind, WaitKind::Sleep);
    assert_eq!(w.details.remaining_secs, Some(2.5));
    let w = classify(&blocked(230, [1, 0, 0x500, 0, 0, 0]), X86, &mut fake);
    assert_eq!(w.details.duration_secs, Some(102.5));
    let w = classify(&blocked(35, [0x500, 0, 0, 0, 0, 0]), X86, &mut fake);
    assert_eq!(w.details.duration_secs, Some(102.5));
    // A garbage timespec is no duration.
    fake.mem.insert(0x600, timespec(1, -4));
    let w = classify(&blocked(35, [0x600, 0, 0, 0, 0, 0]), X86, &mut fake);
    assert_eq!((w.kind, w.details.duration_secs), (WaitKind::Sleep, None));
}

#[test]
fn reads_and_writes_on_pipes_and_sockets() {
    let mut fake = Fake::default();
    fake.fds.insert(
        5,
        Fd {
            target: FdTarget::Pipe(27446),
            mode: Some("r"),
        },
    );
    fake.fds.insert(
        6,
        Fd {
            target: FdTarget::Socket(99),
            mode: Some("rw"),
        },
    );
    fake.fds.insert(
        0,
        Fd {
            target: FdTarget::Path("/dev/pts/1".into()),
            mode: None,
        },
    );
    let w = classify(&blocked(0, [5, 0, 0, 0, 0, 0]), X86, &mut fake);
    assert_eq!(
        (w.kind.clone(), w.object.as_deref()),
        (WaitKind::PipeRead, Some("pipe:[27446]"))
    );
    let w = classify(&blocked(1, [5, 0, 0, 0, 0, 0]), X86, &mut fake);
    assert_eq!(w.kind, WaitKind::PipeWrite);
    let w = classify(&blocked(45, [6, 0, 0, 0, 0, 0]), X86, &mut fake);
    assert_eq!(w.kind, WaitKind::SocketRecv);
    assert_eq!(w.details.inode, Some(99));
    let w = classify(&blocked(46, [6, 0, 0, 0, 0, 0]), X86, &mut fake);
    assert_eq!(w.kind, WaitKind::SocketSend);
    let w = classify(&blocked(0, [0, 0, 0, 0, 0, 0]), X86, &mut fake);
    assert_eq!(w.kind.label(), "other:read");
    assert_eq!(w.object.as_deref(), Some("/dev/pts/1"));
    let w = classify(&blocked(0, [77, 0, 0, 0, 0, 0]), X86, &mut fake);
    assert_eq!(w.kind.label(), "other:read");
}

#[test]
fn child_waits_name_the_child() {
    let mut fake = Fake::default();
    let w = classify(&blocked(61, [4318, 0, 0, 0, 0, 0]), X86, &mut fake);
    assert_eq!(
        (w.kind.clone(), w.details.child, w.object.as_deref()),
        (WaitKind::ChildWait, Some(4318), Some("pid 4318"))
    );
    let w = classify(&blocked(61, [u64::MAX, 0, 0, 0, 0, 0]), X86, &mut fake);
    assert!(w.details.any_child);
    assert_eq!(w.object.as_deref(), Some("any child"));
    fake.fdinfo.insert(
        9,
        FdInfo {
            pid: Some(4400),
            ..FdInfo::default()
        },
    );
    let w = classify(&blocked(247, [3, 9, 0, 0, 0, 0]), X86, &mut fake);
    assert_eq!(w.details.child, Some(4400));
    let w = classify(&blocked(247, [2, 77, 0, 0, 0, 0]), X86, &mut fake);
    assert_eq!(w.details.pgid, Some(77));
}

#[test]
fn polls_list_their_fds() {
    let mut fake = Fake::default();
    let mut array = Vec::new();
    for fd in [3i32, 8] {
        array.extend(fd.to_le_bytes());
        array.extend([1u8, 0, 0, 0]);
    }
    fake.mem.insert(0x700, array);
    let w = classify(&blocked(7, [0x700, 2, 1500, 0, 0, 0]), X86, &mut fake);
    assert_eq!(w.details.fds, vec![3, 8]);
    assert_eq!(w.details.duration_secs, Some(1.5));
    assert_eq!(w.object.as_deref(), Some("fds 3,8"));
    let w = classify(
        &blocked(7, [0x700, 2, u32::MAX as u64, 0, 0, 0]),
        X86,
        &mut fake,
    );
    assert!(!w.details.timed);
    fake.mem
        .insert(0x800, vec![0b0010_0100, 0, 0, 0, 0, 0, 0, 0]);
    let w = classify(&blocked(23, [6, 0x800, 0, 0, 0, 0]), X86, &mut fake);
    assert_eq!(
        (w.kind.clone(), w.details.fds.clone()),
        (WaitKind::Select, vec![2, 5])
    );
    fake.fdinfo.insert(
        4,
        FdInfo {
            epoll_targets: vec![5, 6],
            ..FdInfo::default()
        },
    );
    let w = classify(&blocked(232, [4, 0, 1, u64::MAX, 0, 0]), X86, &mut fake);
    assert_eq!(
        (w.kind.clone(), w.details.fds.clone()),
        (WaitKind::Epoll, vec![5, 6])
    );
}

#[test]
fn states_without_syscalls() {
    let mut fake = Fake::default();
    let mut facts = blocked(202, [0; 6]);
    facts.state = Some('R');
    assert_eq!(classify(&facts, X86, &mut fake).kind, WaitKind::Running);
    facts.state = Some('T');
    assert_eq!(classify(&facts, X86, &mut fake).kind, WaitKind::Stopped);
    facts.state = Some('Z');
    assert_eq!(classify(&facts, X86, &mut fake).kind, WaitKind::Zombie);
    facts.state = None;
    assert_eq!(classify(&facts, X86, &mut fake).kind, WaitKind::Unknown);
    facts.state = Some('S');
    facts.syscall = Some(SyscallState::Running);
    assert_eq!(classify(&facts, X86, &mut fake).kind, WaitKind::Running);
    facts.syscall = None;
    assert_eq!(classify(&facts, X86, &mut fake).kind, WaitKind::Unknown);
    let w = classify(&blocked(123456, [0; 6]), X86, &mut fake);
    assert_eq!(w.kind.label(), "other:#123456");
    let w = classify(&blocked(202, [0; 6]), None, &mut fake);
    assert_eq!(w.kind.label(), "other:#202");
}

proptest::proptest! {
    #[test]
    fn any_syscall_and_arguments_classify(nr in 0u64..500, args: [u64; 6],
                                          mem in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
        let mut fake = Fake::default();
        fake.maps.push(parse_line("1000-2000 rw-s 00000000 00:1b 62 /dev/shm/sem.x").unwrap());
        for a in args {
            fake.mem.insert(a, mem.clone());
        }
        fake.fds.insert(args[0] as i32, Fd { target: FdTarget::Pipe(1), mode: None });
        let _ = classify(&blocked(nr, args), X86, &mut fake);
        let _ = classify(&blocked(nr, args), Some(Arch::Aarch64), &mut fake);
    }
}
