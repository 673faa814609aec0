use super::*;

fn party(conn: u64, pid: i32, worker: u32) -> Party {
    Party {
        conn,
        pid,
        pool: Some("w".into()),
        worker: Some(worker),
        lineage: vec![pid, 1000 + pid],
    }
}

fn steps(events: &[EventBody]) -> Vec<BarrierStep> {
    events
        .iter()
        .filter_map(|e| match e {
            EventBody::Barrier { step, .. } => Some(*step),
            _ => None,
        })
        .collect()
}

#[test]
fn three_parties_pass_and_the_generation_advances() {
    let mut barriers = Barriers::default();
    let fold = StatusFold::default();
    for generation in 0..3 {
        let mut replies = Vec::new();
        let mut all = Vec::new();
        for n in 0..3 {
            let (tx, rx) = oneshot::channel();
            let (_, events) = barriers
                .arrive("b", 3, party(n, 10 + n as i32, n as u32), tx, &fold)
                .unwrap();
            all.extend(events);
            replies.push(rx);
        }
        assert_eq!(
            steps(&all),
            [
                BarrierStep::Arrive,
                BarrierStep::Arrive,
                BarrierStep::Arrive,
                BarrierStep::Pass
            ]
        );
        let mut indexes: Vec<u32> = replies
            .into_iter()
            .map(|mut rx| match rx.try_recv().unwrap() {
                Outcome::Passed {
                    generation: g,
                    index,
                } => {
                    assert_eq!(g, generation);
                    index
                }
                other => panic!("{other:?}"),
            })
            .collect();
        indexes.sort();
        assert_eq!(indexes, [0, 1, 2]);
    }
    assert_eq!(barriers.status("b").unwrap().generation, 3);
}

#[test]
fn a_dead_ancestor_breaks_and_later_waits_fail_until_reset() {
    let mut barriers = Barriers::default();
    let fold = StatusFold::default();
    let (tx, mut rx) = oneshot::channel();
    barriers.arrive("b", 2, party(1, 10, 0), tx, &fold).unwrap();
    assert!(barriers.process_exited(999, "SIGKILL").is_empty());
    let events = barriers.process_exited(1010, "SIGKILL");
    assert_eq!(steps(&events), [BarrierStep::Break]);
    assert!(matches!(rx.try_recv().unwrap(), Outcome::Broken { .. }));
    let (tx, mut rx) = oneshot::channel();
    barriers.arrive("b", 2, party(2, 11, 1), tx, &fold).unwrap();
    assert!(matches!(rx.try_recv().unwrap(), Outcome::Broken { .. }));
    barriers.reset("b").unwrap();
    let (tx, mut rx) = oneshot::channel();
    barriers.arrive("b", 2, party(2, 11, 1), tx, &fold).unwrap();
    assert!(rx.try_recv().is_err(), "waits after a reset");
    assert_eq!(steps(&barriers.connection_closed(2)), [BarrierStep::Break]);
}

#[test]
fn timeouts_abort_and_parties_mismatch() {
    let mut barriers = Barriers::default();
    let fold = StatusFold::default();
    let (tx, _rx) = oneshot::channel();
    let (id, _) = barriers.arrive("b", 2, party(1, 10, 0), tx, &fold).unwrap();
    let (tx, _rx2) = oneshot::channel();
    assert!(barriers.arrive("b", 3, party(2, 11, 1), tx, &fold).is_err());
    assert!(barriers.timed_out("b", id + 100, 1.0).is_empty());
    assert_eq!(
        steps(&barriers.timed_out("b", id, 1.0)),
        [BarrierStep::Break]
    );
    assert!(barriers.abort("nope", "ctl").is_err());
    assert!(
        barriers.abort("b", "ctl").unwrap().is_empty(),
        "already broken"
    );
}
