//! Unit tests of `track::netlink`.
use super::*;

/// Builds one datagram the way the kernel does.
fn datagram(what: u32, ts: u64, fields: &[u32]) -> Vec<u8> {
    let mut data = Vec::new();
    data.extend_from_slice(&what.to_ne_bytes());
    data.extend_from_slice(&3u32.to_ne_bytes());
    data.extend_from_slice(&ts.to_ne_bytes());
    for f in fields {
        data.extend_from_slice(&f.to_ne_bytes());
    }
    let total = NLMSG_HDRLEN + CN_MSG_LEN + data.len();
    let mut msg = Vec::new();
    msg.extend_from_slice(&(total as u32).to_ne_bytes());
    msg.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    msg.extend_from_slice(&[0; 10]);
    msg.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    msg.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    msg.extend_from_slice(&7u32.to_ne_bytes());
    msg.extend_from_slice(&8u32.to_ne_bytes());
    msg.extend_from_slice(&(data.len() as u16).to_ne_bytes());
    msg.extend_from_slice(&0u16.to_ne_bytes());
    msg.extend_from_slice(&data);
    msg
}

#[test]
fn parses_fork_exec_exit_and_ack() {
    let fork = parse_datagram(&datagram(PROC_EVENT_FORK, 11, &[10, 10, 12, 12]));
    assert_eq!(
        fork,
        vec![ProcMessage {
            timestamp_ns: 11,
            event: ProcEvent::Fork {
                parent_pid: 10,
                parent_tgid: 10,
                child_pid: 12,
                child_tgid: 12
            }
        }]
    );
    let exec = parse_datagram(&datagram(PROC_EVENT_EXEC, 12, &[12, 12]));
    assert_eq!(exec[0].event, ProcEvent::Exec { pid: 12, tgid: 12 });
    let exit = parse_datagram(&datagram(
        PROC_EVENT_EXIT,
        13,
        &[12, 12, 7 << 8, 17, 10, 10],
    ));
    assert_eq!(
        exit[0].event,
        ProcEvent::Exit {
            pid: 12,
            tgid: 12,
            exit_code: 7 << 8,
            exit_signal: 17,
            parent_pid: Some(10),
            parent_tgid: Some(10)
        }
    );
    // An old kernel's exit event, without the parent fields.
    let old = parse_datagram(&datagram(PROC_EVENT_EXIT, 13, &[12, 12, 9, 17]));
    assert!(matches!(
        old[0].event,
        ProcEvent::Exit {
            parent_tgid: None,
            ..
        }
    ));
    let ack = parse_datagram(&datagram(PROC_EVENT_NONE, 0, &[0]));
    assert_eq!(
        ack[0].event,
        ProcEvent::Ack {
            seq: 7,
            ack: 8,
            err: 0
        }
    );
    let comm = parse_datagram(&datagram(0x200, 0, &[1, 1, 0, 0, 0, 0]));
    assert_eq!(comm[0].event, ProcEvent::Other { what: 0x200 });
}

#[test]
fn two_messages_in_one_datagram_and_truncation() {
    let mut two = datagram(PROC_EVENT_EXEC, 1, &[5, 5]);
    two.extend(datagram(PROC_EVENT_EXEC, 2, &[6, 6]));
    assert_eq!(parse_datagram(&two).len(), 2);
    let one = datagram(PROC_EVENT_FORK, 1, &[1, 1, 2, 2]);
    for cut in 0..one.len() {
        assert!(parse_datagram(&one[..cut]).is_empty(), "cut at {cut}");
    }
}

#[test]
fn control_message_layout() {
    let msg = control_message(42, 9, PROC_CN_MCAST_LISTEN, None);
    assert_eq!(msg.len(), 40);
    assert_eq!(u32_at(&msg, 0), Some(40));
    assert_eq!(u32_at(&msg, 12), Some(42));
    assert_eq!(u32_at(&msg, 16), Some(CN_IDX_PROC));
    assert_eq!(u16_at(&msg, 32), Some(4));
    assert_eq!(u32_at(&msg, 36), Some(PROC_CN_MCAST_LISTEN));
    assert_eq!(control_message(1, 1, 1, Some(3)).len(), 44);
}

#[test]
fn subscribes_and_sees_our_own_child() {
    let Ok(mut connector) = ProcConnector::open() else {
        // Not every test machine allows it; the integration tests check `auto` then.
        return;
    };
    // A thread's birth and end come first: the kernel-side filter drops them.
    std::thread::spawn(|| ()).join().unwrap();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen_exit = false;
    let mut messages = Vec::new();
    while !seen_exit && Instant::now() < deadline {
        messages.clear();
        connector.drain(&mut messages, 1024).unwrap();
        for m in &messages {
            match m.event {
                ProcEvent::Fork {
                    child_pid,
                    child_tgid,
                    ..
                } => assert_eq!(child_pid, child_tgid, "a thread's fork passed the filter"),
                ProcEvent::Exit { pid, tgid, .. } => {
                    assert_eq!(pid, tgid, "a thread's exit passed the filter")
                }
                ProcEvent::Other { what } => panic!("kind {what:#x} passed the filter"),
                _ => {}
            }
        }
        seen_exit = messages.iter().any(|m| {
            matches!(m.event, ProcEvent::Exit { pid: p, tgid, exit_code: 0, .. }
                if p == pid && tgid == pid)
        });
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(seen_exit, "no exit event for our own child {pid}");
}

proptest::proptest! {
    #[test]
    fn parser_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
        let _ = parse_datagram(&bytes);
    }

    #[test]
    fn parser_never_panics_on_plausible_headers(
        what in proptest::sample::select(vec![0u32, 1, 2, 0x8000_0000, 0x200]),
        len_bias in 0u32..64,
        fields in proptest::collection::vec(proptest::num::u32::ANY, 0..8),
    ) {
        let mut bytes = datagram(what, 1, &fields);
        let claimed = (bytes.len() as u32).saturating_sub(len_bias);
        bytes[0..4].copy_from_slice(&claimed.to_ne_bytes());
        let _ = parse_datagram(&bytes);
    }
}
