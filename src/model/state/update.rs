//! `update(state, event)`: how each event changes the state (the only way it changes).

use super::*;

/// Applies an `output` event (or the lines of one read), moving its text into the scrollback
/// (no copy per line in a flood); gives any other event back for [`update`].
pub fn update_output(state: &mut State, event: Event) -> Option<Event> {
    let t = event.t;
    match event.body {
        EventBody::OutputLines(lines) => {
            state.now = state.now.max(t);
            if let Some(log) = output_log(state, lines.pid) {
                log.push_lines(t, lines);
            }
            None
        }
        EventBody::Output {
            pid,
            stream,
            line,
            seq,
            partial,
            ..
        } => {
            state.now = state.now.max(t);
            let line = OutputLine {
                stream,
                text: line,
                seq,
                partial,
                t,
            };
            file_output(state, pid, line);
            None
        }
        body => Some(Event { t, body }),
    }
}

fn output_log(state: &mut State, pid: i32) -> Option<&mut crate::model::output::OutputLog> {
    let id = state.id_for_pid(pid)?;
    state.procs.get_mut(&id).map(|proc| &mut proc.output)
}

fn file_output(state: &mut State, pid: i32, line: OutputLine) {
    if let Some(log) = output_log(state, pid) {
        log.push(line);
    }
}

/// Applies one event to the state.
pub fn update(state: &mut State, event: &Event) {
    let t = event.t;
    state.now = state.now.max(t);
    match &event.body {
        EventBody::Session {
            pid,
            version,
            pools,
            track,
            track_note,
            stop_timeout,
            started_unix,
            ..
        } => {
            state.started_unix = *started_unix;
            state.engine_pid = Some(*pid);
            state.version = version.clone();
            state.track = Some(*track);
            state.track_note = track_note.clone();
            state.stop_timeout = *stop_timeout;
            state.pools = pools
                .iter()
                .map(|info| PoolView {
                    info: info.clone(),
                    workers: BTreeMap::new(),
                })
                .collect();
        }
        EventBody::Spawn {
            pid,
            ppid,
            pool,
            worker,
            argv,
            start_time,
            restarts,
        } => {
            let origin = Origin::Worker {
                pool: pool.clone(),
                worker: *worker,
            };
            let id = state.add_process(t, *pid, *ppid, *start_time, origin, TrackSource::Engine);
            if let Some(proc) = state.procs.get_mut(&id) {
                proc.argv = argv.clone();
                proc.restarts = *restarts;
            }
            if let Some(pool) = state.pool_mut(pool) {
                let slot = pool.workers.entry(*worker).or_default();
                slot.current = Some(id);
                slot.restarts = *restarts;
                slot.failed = None;
                slot.restart_pending = None;
            }
        }
        EventBody::SpawnFailed {
            pool,
            worker,
            argv,
            error,
            ..
        } => {
            let message = format!("{pool}[{worker}]: could not start {argv:?}: {error}");
            state.notice(t, crate::model::NoticeLevel::Error, message);
            if let Some(pool) = state.pool_mut(pool) {
                pool.workers.entry(*worker).or_default().failed = Some(error.clone());
            }
        }
        EventBody::Fork {
            pid,
            ppid,
            start_time,
            source,
        } => {
            let known = state
                .live
                .get(pid)
                .and_then(|id| state.procs.get(id))
                .is_some_and(|p| start_time.is_none() || p.start_time == *start_time);
            if !known {
                let id =
                    state.add_process(t, *pid, *ppid, *start_time, Origin::Descendant, *source);
                // A fork child runs its parent's program until it execs: same argv.
                let inherited = state
                    .procs
                    .get(&id)
                    .and_then(|p| p.parent)
                    .and_then(|parent| state.procs.get(&parent))
                    .map(|parent| parent.argv.clone());
                if let (Some(argv), Some(proc)) = (inherited, state.procs.get_mut(&id)) {
                    proc.argv = argv;
                }
            }
        }
        EventBody::Exec { pid, argv, .. } => {
            if let Some(proc) = state.live.get(pid).and_then(|id| state.procs.get_mut(id)) {
                proc.argv = argv.clone();
                proc.execs.push(t);
            }
        }
        EventBody::Exit {
            pid,
            ppid,
            status,
            source,
            zombie,
            ..
        } => {
            if let Some(id) = state.live.remove(pid)
                && let Some(proc) = state.procs.get_mut(&id)
            {
                proc.ended = Some(Ended {
                    t,
                    status: *status,
                    source: *source,
                });
                proc.zombie = *zombie;
                if proc.ppid != *ppid && *ppid > 0 {
                    // Adopted without a `reparent` event (e.g. a recording from before them).
                    proc.adopted_from.get_or_insert(proc.ppid);
                    proc.ppid = *ppid;
                }
                state.note_ended(id);
            }
        }
        EventBody::Reap { pid, by } => {
            if let Some(proc) = state
                .newest
                .get(pid)
                .and_then(|id| state.procs.get_mut(id))
                .filter(|p| p.zombie)
            {
                proc.zombie = false;
                proc.reaped = Some(ReapRecord { t, by: *by });
            }
        }
        EventBody::Reparent { pid, from, to } => {
            let new_parent = state
                .live
                .get(to)
                .copied()
                .filter(|_| Some(*to) != state.engine_pid && to != pid);
            if let Some(proc) = state.live.get(pid).and_then(|id| state.procs.get_mut(id)) {
                proc.adopted_from.get_or_insert(*from);
                proc.ppid = *to;
                proc.adopted_by = new_parent;
            }
        }
        EventBody::Signal {
            pid,
            signal,
            reason,
            result,
        } => {
            if let Some(id) = state.id_for_pid(*pid)
                && let Some(proc) = state.procs.get_mut(&id)
            {
                proc.signals.push(SignalRecord {
                    t,
                    signal: *signal,
                    reason: *reason,
                    result: result.clone(),
                });
            }
        }
        EventBody::Output { .. } | EventBody::OutputLines(_) => {
            update_output(state, event.clone());
        }
        EventBody::Restart {
            pool,
            worker,
            delay_ms,
            ..
        } => {
            if let Some(pool) = state.pool_mut(pool) {
                pool.workers.entry(*worker).or_default().restart_pending = Some(*delay_ms);
            }
        }
        EventBody::WorkerFailed {
            pool,
            worker,
            reason,
            ..
        } => {
            state.notice(
                t,
                crate::model::NoticeLevel::Error,
                format!("{pool}[{worker}] failed: {reason}"),
            );
            if let Some(pool) = state.pool_mut(pool) {
                pool.workers.entry(*worker).or_default().failed = Some(reason.clone());
            }
        }
        EventBody::Scale { pool, to, .. } => {
            if let Some(pool) = state.pool_mut(pool) {
                pool.info.size = *to;
            }
        }
        EventBody::Stopping { reason, .. } => state.stopping = Some(reason.clone()),
        EventBody::Sample { procs, .. } => {
            for sample in procs {
                if let Some(proc) = state
                    .live
                    .get(&sample.pid)
                    .and_then(|id| state.procs.get_mut(id))
                {
                    push_bounded(&mut proc.cpu_history, sample.cpu);
                    push_bounded(&mut proc.rss_history, sample.rss_kb);
                    proc.sample = Some(sample.clone());
                }
            }
        }
        EventBody::Notice { level, message, .. } => state.notice(t, *level, message.clone()),
        EventBody::Step { .. } | EventBody::StepRelease { .. } => {
            state.lesson.apply(t, &event.body)
        }
        EventBody::Barrier {
            pid,
            name,
            step,
            generation,
            parties,
            waiting,
            reason,
            ..
        } => {
            let why = reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            crate::model::named::fold_barrier(
                &mut state.hosted_barriers,
                crate::model::named::BarrierStepFacts {
                    pid: *pid,
                    name,
                    step: *step,
                    generation: *generation,
                    parties: *parties,
                    waiting: *waiting,
                    reason: reason.as_deref(),
                },
            );
            let label = format!("barrier {name} {} #{generation}{why}", step.as_str());
            state.push_instant(Instant {
                t,
                pid: *pid,
                label,
                kind: InstantKind::Barrier(*step),
                barrier: Some(name.clone()),
            });
        }
        EventBody::Watched {
            pid,
            name,
            object,
            typecode,
            length,
            parties,
            value,
            error,
        } => crate::model::named::fold_watched(
            &mut state.watched,
            crate::model::named::WatchedObject {
                name: name.clone(),
                pid: *pid,
                object: object.clone(),
                typecode: typecode.clone(),
                length: *length,
                parties: *parties,
                value: value.clone(),
                error: error.clone(),
            },
        ),
        EventBody::Shm { .. } => state.shm.apply(&event.body),
        EventBody::Mark { pid, label, .. } => state.push_instant(Instant {
            t,
            pid: *pid,
            label: format!("mark {label}"),
            kind: InstantKind::Mark,
            barrier: None,
        }),
        EventBody::End { status, .. } => {
            state.ended = Some(*status);
            // `end` means nothing of the tree runs any more. A process whose exit was never
            // learnt (reaped by its own parent between two /proc scans) ended too, how is
            // unknown.
            let still_live: Vec<ProcId> = state.live.drain().map(|(_, id)| id).collect();
            for id in still_live {
                if let Some(proc) = state.procs.get_mut(&id)
                    && proc.ended.is_none()
                {
                    proc.ended = Some(Ended {
                        t,
                        status: ExitStatus::Unknown,
                        source: TrackSource::Engine,
                    });
                    state.note_ended(id);
                }
            }
            // Nothing of the tree is left: no zombie either.
            for proc in state.procs.values_mut() {
                proc.zombie = false;
            }
        }
        EventBody::Ready {
            pool,
            ok: true,
            check,
            after_ms,
            ..
        } => state.notice(
            t,
            crate::model::NoticeLevel::Info,
            format!("pool {pool} ready ({check}) after {after_ms} ms"),
        ),
        EventBody::Ready { .. } => {}
        EventBody::Reload {
            ok: true, pools, ..
        } => {
            state
                .pools
                .retain(|p| pools.iter().any(|i| i.name == p.info.name));
            for info in pools {
                match state.pool_mut(&info.name) {
                    Some(view) => view.info = info.clone(),
                    None => state.pools.push(PoolView {
                        info: info.clone(),
                        workers: BTreeMap::new(),
                    }),
                }
            }
        }
        EventBody::Reload { .. } => {}
    }
}
