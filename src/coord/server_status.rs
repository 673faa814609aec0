//! The `status` document the control socket answers with: the fold of the session's events,
//! the barriers, the watched objects (read now) and the subscribers.

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
