//! The filter program run by a small classic BPF interpreter on datagrams shaped like the
//! kernel's, and attached to a real connector socket.

use super::*;

/// Runs `prog` on `packet` as the kernel does (word loads big-endian, out of range = drop).
fn run(prog: &[Insn], packet: &[u8]) -> u32 {
    let (mut a, mut x, mut mem) = (0u32, 0u32, [0u32; 16]);
    let mut pc = 0usize;
    for _ in 0..prog.len() {
        let i = prog[pc];
        pc += 1;
        match i.code {
            LD_W_ABS => {
                let at = i.k as usize;
                let Some(bytes) = packet.get(at..at + 4) else {
                    return 0;
                };
                a = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            }
            ST => mem[i.k as usize] = a,
            LDX_MEM => x = mem[i.k as usize],
            JA => pc += i.k as usize,
            JEQ_K => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
            JEQ_X => pc += usize::from(if a == x { i.jt } else { i.jf }),
            RET_K => return i.k,
            other => panic!("unexpected opcode {other:#x}"),
        }
    }
    panic!("ran off the end of the program")
}

/// nlmsghdr + cn_msg + proc_event with `what` and the union's first words.
fn datagram(what: u32, words: &[u32]) -> Vec<u8> {
    let mut d = vec![0u8; 36];
    d.extend_from_slice(&what.to_ne_bytes());
    d.extend_from_slice(&0u32.to_ne_bytes()); // cpu
    d.extend_from_slice(&0u64.to_ne_bytes()); // timestamp
    for w in words {
        d.extend_from_slice(&w.to_ne_bytes());
    }
    d
}

#[test]
fn keeps_processes_and_drops_threads_and_other_kinds() {
    let prog = program();
    let keep = |d: Vec<u8>| run(&prog, &d) != 0;
    assert!(keep(datagram(PROC_EVENT_NONE, &[0])));
    assert!(keep(datagram(PROC_EVENT_EXEC, &[70, 70])));
    // Exec by a thread: the kernel reports the new leader; passed as is.
    assert!(keep(datagram(PROC_EVENT_EXEC, &[71, 70])));
    assert!(keep(datagram(PROC_EVENT_FORK, &[1, 1, 300, 300])));
    assert!(!keep(datagram(PROC_EVENT_FORK, &[300, 300, 301, 300])));
    assert!(keep(datagram(PROC_EVENT_EXIT, &[300, 300, 0, 17, 1, 1])));
    assert!(!keep(datagram(PROC_EVENT_EXIT, &[301, 300, 0, 0, 1, 1])));
    for other in [0x4u32, 0x20, 0x40, 0x80, 0x100, 0x200, 0x4000_0000] {
        assert!(!keep(datagram(other, &[1, 1, 1, 1])), "kind {other:#x}");
    }
    // Truncated datagrams: nothing to read, dropped.
    assert!(!keep(vec![0u8; 20]));
    assert!(!keep(datagram(PROC_EVENT_FORK, &[1, 1])));
    // Large pids: the comparison is byte for byte, whatever the order of the loads.
    assert!(keep(datagram(
        PROC_EVENT_FORK,
        &[9, 9, 0x0040_0001, 0x0040_0001]
    )));
    assert!(!keep(datagram(
        PROC_EVENT_FORK,
        &[9, 9, 0x0040_0001, 0x0100_4000]
    )));
}

#[test]
fn the_kernel_accepts_the_program() {
    let fd = rustix::net::socket(
        rustix::net::AddressFamily::NETLINK,
        rustix::net::SocketType::DGRAM,
        Some(rustix::net::netlink::CONNECTOR),
    )
    .unwrap();
    use std::os::fd::AsFd;
    attach(fd.as_fd()).unwrap();
}
