//! The `status` document the control socket answers with (the fold of the session's events,
//! the barriers, the watched objects read now, the subscribers), and the `watched` events
//! published when a watched object changes.

use super::*;

/// The `status` document: the fold, barriers, watched objects (read now), subscribers.
pub(super) fn status(shared: &Shared) -> Value {
    let (mut value, barriers) = {
        let coord = shared.lock();
        (
            serde_json::to_value(&coord.fold).unwrap_or(Value::Null),
            coord.barriers.all(),
        )
    };
    let watches = watched_now(shared);
    value["session_pid"] = json!(shared.context.session_pid);
    value["title"] = json!(shared.context.title);
    value["barriers"] = serde_json::to_value(barriers).unwrap_or(Value::Null);
    value["watched"] = serde_json::to_value(watches).unwrap_or(Value::Null);
    value["subscribers"] = json!(shared.context.hub.subscribers());
    value
}

/// The watched objects with their values read now.
pub(super) fn watched_now(shared: &Shared) -> Vec<Watched> {
    let mut watches = shared.lock().watches.clone();
    for watched in &mut watches {
        match watch::read(watched.pid, &watched.spec) {
            Ok(v) => watched.value = v,
            Err(err) => watched.error = Some(err),
        }
    }
    watches
}

/// Emits a `watched` event for each watched object whose value (or error) changed since
/// the last one emitted for its name.
pub(super) fn publish_watched(shared: &Shared) {
    let now = watched_now(shared);
    let mut coord = shared.lock();
    coord
        .published
        .retain(|name, _| now.iter().any(|w| &w.spec.name == name));
    let mut events = Vec::new();
    for watched in now {
        let current = (watched.pid, watched.value, watched.error);
        if coord.published.get(&watched.spec.name) == Some(&current) {
            continue;
        }
        let spec = watched.spec;
        events.push(EventBody::Watched {
            pid: current.0,
            name: spec.name.clone(),
            object: spec.kind,
            typecode: spec.typecode,
            length: spec.length,
            parties: spec.parties,
            value: current.1.clone(),
            error: current.2.clone(),
        });
        coord.published.insert(spec.name, current);
    }
    drop(coord);
    shared.emit_all(events);
}
