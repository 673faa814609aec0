//! Named shared objects as the views show them: hosted barriers folded from `barrier`
//! events, and the objects a program named with `forkscope.watch` with their last values
//! (from `watched` events). Pure folds over events.

use std::collections::BTreeMap;

use serde_json::Value;

use super::event::BarrierStep;

/// Hosted barriers and watched objects are kept per name, at most this many of each.
pub const MAX_NAMED: usize = 1024;

/// A hosted barrier (`forkscope barrier wait`, `forkscope.Barrier`) as its events tell it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostedBarrier {
    pub name: String,
    pub parties: u32,
    pub waiting: u32,
    /// Generations passed.
    pub generation: u64,
    /// Why it broke; `None` while it fills.
    pub broken: Option<String>,
    /// The parties waiting now, in arrival order.
    pub waiting_pids: Vec<i32>,
}

impl HostedBarrier {
    /// `filling` or `broken: REASON`.
    pub fn state_words(&self) -> String {
        match &self.broken {
            None => "filling".into(),
            Some(reason) if reason.is_empty() => "broken".into(),
            Some(reason) => format!("broken: {reason}"),
        }
    }
}

/// One `barrier` event's fields, as [`fold_barrier`] needs them.
pub struct BarrierStepFacts<'a> {
    pub pid: Option<i32>,
    pub name: &'a str,
    pub step: BarrierStep,
    pub generation: u64,
    pub parties: u32,
    pub waiting: u32,
    pub reason: Option<&'a str>,
}

/// Folds one `barrier` event into the barriers by name.
pub fn fold_barrier(barriers: &mut BTreeMap<String, HostedBarrier>, facts: BarrierStepFacts) {
    if !barriers.contains_key(facts.name) && barriers.len() >= MAX_NAMED {
        return;
    }
    let barrier = barriers
        .entry(facts.name.to_string())
        .or_insert_with(|| HostedBarrier {
            name: facts.name.to_string(),
            parties: facts.parties,
            waiting: 0,
            generation: 0,
            broken: None,
            waiting_pids: Vec::new(),
        });
    barrier.parties = facts.parties;
    barrier.waiting = facts.waiting;
    barrier.generation = facts.generation;
    match facts.step {
        BarrierStep::Arrive => {
            barrier.broken = None;
            if let Some(pid) = facts.pid
                && !barrier.waiting_pids.contains(&pid)
            {
                barrier.waiting_pids.push(pid);
            }
        }
        BarrierStep::Pass => {
            barrier.generation = facts.generation + 1;
            barrier.waiting_pids.clear();
        }
        BarrierStep::Break => {
            barrier.broken = Some(facts.reason.unwrap_or_default().to_string());
            barrier.waiting_pids.clear();
        }
        BarrierStep::Reset => {
            barrier.broken = None;
            barrier.waiting_pids.clear();
        }
    }
}

/// An object a program named with `forkscope.watch(obj, "name")`, with its last value.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchedObject {
    pub name: String,
    /// The registering process.
    pub pid: i32,
    /// `value`, `array`, `barrier`, `lock`, `rlock`, `semaphore`, `event`, `condition`,
    /// `queue`, `shared_memory`, `shareable_list`.
    pub object: String,
    pub typecode: Option<String>,
    pub length: Option<u64>,
    pub parties: Option<u32>,
    pub value: Value,
    /// Why the value could not be read.
    pub error: Option<String>,
}

impl WatchedObject {
    /// Whether the Sync view lists it (a synchronisation primitive).
    pub fn is_sync(&self) -> bool {
        matches!(
            self.object.as_str(),
            "barrier" | "lock" | "rlock" | "semaphore" | "event" | "condition"
        )
    }

    /// The Python type: `Value('i')`, `Array('d', 5)`, `Barrier(3)`, `Lock`.
    pub fn type_words(&self) -> String {
        let code = self.typecode.as_deref().unwrap_or("?");
        match self.object.as_str() {
            "value" => format!("Value('{code}')"),
            "array" => match self.length {
                Some(n) => format!("Array('{code}', {n})"),
                None => format!("Array('{code}')"),
            },
            "barrier" => match self.parties {
                Some(n) => format!("Barrier({n})"),
                None => "Barrier".into(),
            },
            "lock" => "Lock".into(),
            "rlock" => "RLock".into(),
            "semaphore" => "Semaphore".into(),
            "event" => "Event".into(),
            "condition" => "Condition".into(),
            "queue" => "Queue".into(),
            "shared_memory" => "SharedMemory".into(),
            "shareable_list" => "ShareableList".into(),
            other => other.to_string(),
        }
    }

    /// The value in words, to follow [`Self::type_words`]: ` = 42`, ` = [1.5,2.0]`,
    /// `: 2 waiting`, `: locked, 1 waiting`.
    pub fn value_words(&self) -> String {
        if let Some(error) = &self.error {
            return format!(": unreadable ({error})");
        }
        let v = &self.value;
        let waiters = |key: &str| v[key].as_u64().unwrap_or(0);
        match self.object.as_str() {
            "barrier" => {
                let state = v["state"].as_str().unwrap_or("?");
                let n = v["n_waiting"].as_i64().unwrap_or(0);
                if v["broken"].as_bool() == Some(true) {
                    format!(": broken, {n} waiting")
                } else if state == "filling" {
                    format!(": {n} waiting")
                } else {
                    format!(": {state}, {n} waiting")
                }
            }
            "lock" | "rlock" | "condition" => {
                let held = if v["locked"].as_bool() == Some(true) {
                    "locked"
                } else {
                    "free"
                };
                format!(": {held}, {} waiting", waiters("waiters"))
            }
            "event" => {
                let set = if v["set"].as_bool() == Some(true) {
                    "set"
                } else {
                    "clear"
                };
                format!(": {set}, {} waiting", waiters("waiters"))
            }
            "semaphore" => format!(
                ": value {}, {} waiting",
                v["value"].as_u64().unwrap_or(0),
                waiters("waiters")
            ),
            "queue" => format!(": {} queued", v["qsize"].as_u64().unwrap_or(0)),
            _ => format!(" = {v}"),
        }
    }
}

/// Keeps the newest `watched` event's object by name.
pub fn fold_watched(watched: &mut BTreeMap<String, WatchedObject>, object: WatchedObject) {
    if !watched.contains_key(&object.name) && watched.len() >= MAX_NAMED {
        return;
    }
    watched.insert(object.name.clone(), object);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(
        barriers: &mut BTreeMap<String, HostedBarrier>,
        pid: Option<i32>,
        step: BarrierStep,
        generation: u64,
        waiting: u32,
        reason: Option<&str>,
    ) {
        fold_barrier(
            barriers,
            BarrierStepFacts {
                pid,
                name: "start",
                step,
                generation,
                parties: 3,
                waiting,
                reason,
            },
        );
    }

    #[test]
    fn barrier_fold_fills_passes_breaks_and_resets() {
        let mut barriers = BTreeMap::new();
        step(&mut barriers, Some(10), BarrierStep::Arrive, 0, 1, None);
        step(&mut barriers, Some(11), BarrierStep::Arrive, 0, 2, None);
        let b = &barriers["start"];
        assert_eq!((b.parties, b.waiting, b.generation), (3, 2, 0));
        assert_eq!(b.waiting_pids, vec![10, 11]);
        assert_eq!(b.state_words(), "filling");

        step(&mut barriers, Some(12), BarrierStep::Arrive, 0, 3, None);
        step(&mut barriers, None, BarrierStep::Pass, 0, 0, None);
        let b = &barriers["start"];
        assert_eq!((b.waiting, b.generation), (0, 1));
        assert!(b.waiting_pids.is_empty());

        step(&mut barriers, Some(10), BarrierStep::Arrive, 1, 1, None);
        step(
            &mut barriers,
            None,
            BarrierStep::Break,
            1,
            0,
            Some("pid 11 died"),
        );
        let b = &barriers["start"];
        assert_eq!(b.state_words(), "broken: pid 11 died");
        assert!(b.waiting_pids.is_empty());

        step(&mut barriers, None, BarrierStep::Reset, 1, 0, None);
        assert_eq!(barriers["start"].state_words(), "filling");
    }

    #[test]
    fn watched_objects_describe_type_and_value() {
        let object = |kind: &str, typecode: Option<&str>, value: Value| WatchedObject {
            name: "x".into(),
            pid: 1,
            object: kind.into(),
            typecode: typecode.map(str::to_string),
            length: Some(5),
            parties: Some(3),
            value,
            error: None,
        };
        let counter = object("value", Some("i"), Value::from(42));
        assert_eq!(
            (counter.type_words(), counter.value_words()),
            ("Value('i')".into(), " = 42".into())
        );
        let weights = object("array", Some("d"), serde_json::json!([1.5, 2.0]));
        assert_eq!(weights.type_words(), "Array('d', 5)");
        assert_eq!(weights.value_words(), " = [1.5,2.0]");
        let barrier = object(
            "barrier",
            None,
            serde_json::json!({"state": "filling", "n_waiting": 2, "broken": false}),
        );
        assert_eq!(
            format!("{}{}", barrier.type_words(), barrier.value_words()),
            "Barrier(3): 2 waiting"
        );
        assert!(barrier.is_sync() && !counter.is_sync());
        let mut unreadable = counter.clone();
        unreadable.error = Some("gone".into());
        assert_eq!(unreadable.value_words(), ": unreadable (gone)");
    }
}
