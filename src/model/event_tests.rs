//! Tests of the event contract: JSON shapes, old recordings, constructors.
use super::*;

#[test]
fn exit_event_has_flat_contract_fields() {
    let event = Event {
        t: 1.5,
        body: EventBody::Exit {
            pid: 42,
            ppid: 1,
            status: ExitStatus::Signaled {
                signal: 15,
                core_dumped: false,
            },
            pool: Some("main".into()),
            worker: Some(0),
            source: TrackSource::Engine,
            zombie: false,
        },
    };
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["kind"], "exit");
    assert_eq!(json["t"], 1.5);
    assert_eq!(json["pid"], 42);
    assert_eq!(json["signal"], "SIGTERM");
    assert_eq!(json["python_exitcode"], -15);
    assert_eq!(json["shell_status"], 143);
    assert_eq!(json["core_dumped"], false);
    assert!(json.get("zombie").is_none(), "absent unless true: {json}");
    let back: Event = serde_json::from_value(json).unwrap();
    assert_eq!(back, event);
}

#[test]
fn every_kind_round_trips() {
    let bodies = vec![
        EventBody::Output {
            pid: 3,
            stream: Stream::Stderr,
            line: "x".into(),
            raw_hex: Some("ff".into()),
            seq: 9,
            partial: true,
        },
        EventBody::Signal {
            pid: 3,
            signal: Sig(libc::SIGKILL),
            reason: SignalReason::Escalation,
            result: Delivery::Failed("ESRCH".into()),
        },
        EventBody::End {
            pid: None,
            status: 1,
            unknown_exits: 0,
        },
        EventBody::Reap { pid: 3, by: 2 },
        EventBody::Reparent {
            pid: 3,
            from: 2,
            to: 1,
        },
        EventBody::Exit {
            pid: 3,
            ppid: 2,
            status: ExitStatus::Exited(0),
            pool: None,
            worker: None,
            source: TrackSource::Kernel,
            zombie: true,
        },
    ];
    for body in bodies {
        let event = Event { t: 0.25, body };
        let line = serde_json::to_string(&event).unwrap();
        assert!(line.contains("\"pid\""), "{line}");
        let back: Event = serde_json::from_str(&line).unwrap();
        assert_eq!(back, event);
    }
}

#[test]
fn old_recordings_still_parse() {
    // Lines written before `signal` and `level` were typed: the same strings.
    let signal = r#"{"t":1.2,"kind":"signal","pid":7,"signal":"SIGRT40","reason":"user","result":{"failed":"ESRCH"}}"#;
    let event: Event = serde_json::from_str(signal).unwrap();
    assert_eq!(
        event.body,
        EventBody::signal(7, 40, SignalReason::User, Err("ESRCH"))
    );
    assert_eq!(serde_json::to_string(&event).unwrap(), signal);
    let notice = r#"{"t":1.7,"kind":"notice","pid":null,"level":"warning","message":"m"}"#;
    let event: Event = serde_json::from_str(notice).unwrap();
    assert_eq!(
        event.body,
        EventBody::notice(NoticeLevel::Warning, "m".into())
    );
    assert_eq!(serde_json::to_string(&event).unwrap(), notice);
}
