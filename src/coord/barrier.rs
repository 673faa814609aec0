//! Hosted barriers: the state of every named barrier of a session, with the semantics of
//! Python's `threading.Barrier`: N parties arrive, all pass together and the generation
//! advances; a break releases every waiter with an error and later waits fail until a reset.
//!
//! A barrier breaks when a waiting party dies (its connection closes, or it or an ancestor
//! below the engine exits), when the parties are distinct workers and too few of them are
//! left to ever fill it (a worker ended for good), on a waiter's timeout and on abort. Every
//! step returns the `barrier` events to emit; replies go through each waiter's channel.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use tokio::sync::oneshot;

use super::status::{SlotState, StatusFold};
use crate::model::{BarrierStep, EventBody};

/// Who waits.
#[derive(Clone, Debug, PartialEq)]
pub struct Party {
    /// The connection it waits on.
    pub conn: u64,
    pub pid: i32,
    pub pool: Option<String>,
    pub worker: Option<u32>,
    /// The party's pid and its ancestors below the engine: the death of any breaks the wait.
    pub lineage: Vec<i32>,
}

/// How a wait ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// `index`: arrival order in the generation, from `parties - 1` down to 0 (as Python's
    /// `Barrier.wait` returns).
    Passed {
        generation: u64,
        index: u32,
    },
    Broken {
        reason: String,
    },
}

struct Waiter {
    id: u64,
    party: Party,
    reply: oneshot::Sender<Outcome>,
}

struct Barrier {
    parties: u32,
    generation: u64,
    waiting: Vec<Waiter>,
    broken: Option<String>,
    /// (pool, worker) of every party seen; `None` once two parties shared one worker (then
    /// the "can no longer arrive" rule does not apply).
    workers: Option<BTreeSet<(String, u32)>>,
}

/// A barrier as `status` and `barrier_status` show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BarrierStatus {
    pub name: String,
    pub parties: u32,
    pub waiting: u32,
    pub generation: u64,
    pub broken: Option<String>,
    pub waiting_pids: Vec<i32>,
}

/// Every barrier of the session.
#[derive(Default)]
pub struct Barriers {
    map: BTreeMap<String, Barrier>,
    next_id: u64,
}

impl Barriers {
    /// A party arrives. Returns the waiter id (for its timeout) and the events; an error
    /// (not a break) when `parties` disagrees with the barrier's.
    pub fn arrive(
        &mut self,
        name: &str,
        parties: u32,
        party: Party,
        reply: oneshot::Sender<Outcome>,
        fold: &StatusFold,
    ) -> Result<(u64, Vec<EventBody>), String> {
        if parties == 0 {
            return Err("a barrier needs at least one party".into());
        }
        let barrier = self.map.entry(name.to_string()).or_insert(Barrier {
            parties,
            generation: 0,
            waiting: Vec::new(),
            broken: None,
            workers: Some(BTreeSet::new()),
        });
        if barrier.parties != parties {
            return Err(format!(
                "barrier {name:?} has {} parties, not {parties}",
                barrier.parties
            ));
        }
        self.next_id += 1;
        let id = self.next_id;
        if let Some(reason) = &barrier.broken {
            let _ = reply.send(Outcome::Broken {
                reason: format!("broken earlier ({reason}); reset it to use it again"),
            });
            return Ok((id, Vec::new()));
        }
        let identity = party.pool.clone().zip(party.worker);
        barrier.workers = match (barrier.workers.take(), identity) {
            (Some(mut seen), Some(identity)) => {
                let repeated = barrier
                    .waiting
                    .iter()
                    .any(|w| w.party.pool.clone().zip(w.party.worker) == Some(identity.clone()));
                seen.insert(identity);
                (!repeated).then_some(seen)
            }
            _ => None,
        };
        let mut events = vec![EventBody::Barrier {
            pid: Some(party.pid),
            name: name.to_string(),
            step: BarrierStep::Arrive,
            generation: barrier.generation,
            parties,
            waiting: barrier.waiting.len() as u32 + 1,
            pool: party.pool.clone(),
            worker: party.worker,
            reason: None,
        }];
        barrier.waiting.push(Waiter { id, party, reply });
        if barrier.waiting.len() as u32 == barrier.parties {
            let generation = barrier.generation;
            for (order, waiter) in barrier.waiting.drain(..).enumerate() {
                let index = parties - 1 - order as u32;
                let _ = waiter.reply.send(Outcome::Passed { generation, index });
            }
            barrier.generation += 1;
            events.push(EventBody::Barrier {
                pid: None,
                name: name.to_string(),
                step: BarrierStep::Pass,
                generation,
                parties,
                waiting: 0,
                pool: None,
                worker: None,
                reason: None,
            });
        } else {
            events.extend(self.check_arrivals(fold));
        }
        Ok((id, events))
    }

    /// Breaks `name` (if it exists and is not broken) for `reason`.
    fn break_one(&mut self, name: &str, reason: String) -> Vec<EventBody> {
        let Some(barrier) = self.map.get_mut(name) else {
            return Vec::new();
        };
        if barrier.broken.is_some() {
            return Vec::new();
        }
        for waiter in barrier.waiting.drain(..) {
            let _ = waiter.reply.send(Outcome::Broken {
                reason: reason.clone(),
            });
        }
        barrier.broken = Some(reason.clone());
        vec![EventBody::Barrier {
            pid: None,
            name: name.to_string(),
            step: BarrierStep::Break,
            generation: barrier.generation,
            parties: barrier.parties,
            waiting: 0,
            pool: None,
            worker: None,
            reason: Some(reason),
        }]
    }

    fn break_where(&mut self, mut why: impl FnMut(&Waiter) -> Option<String>) -> Vec<EventBody> {
        let doomed: Vec<(String, String)> = self
            .map
            .iter()
            .filter_map(|(name, b)| {
                b.waiting
                    .iter()
                    .find_map(&mut why)
                    .map(|reason| (name.clone(), reason))
            })
            .collect();
        doomed
            .into_iter()
            .flat_map(|(name, reason)| self.break_one(&name, reason))
            .collect()
    }

    /// A connection closed: barriers it waited at break.
    pub fn connection_closed(&mut self, conn: u64) -> Vec<EventBody> {
        self.break_where(|w| {
            (w.party.conn == conn).then(|| {
                format!(
                    "party pid {} left while waiting (its connection closed)",
                    w.party.pid
                )
            })
        })
    }

    /// A process exited: barriers with a waiting party of that lineage break.
    pub fn process_exited(&mut self, pid: i32, how: &str) -> Vec<EventBody> {
        self.break_where(|w| {
            w.party.lineage.contains(&pid).then(|| {
                if pid == w.party.pid {
                    format!("party pid {pid} died while waiting ({how})")
                } else {
                    format!(
                        "pid {pid}, an ancestor of waiting party pid {}, died ({how})",
                        w.party.pid
                    )
                }
            })
        })
    }

    /// The waiter `id` timed out: its barrier breaks if it still waits.
    pub fn timed_out(&mut self, name: &str, id: u64, seconds: f64) -> Vec<EventBody> {
        let Some(barrier) = self.map.get(name) else {
            return Vec::new();
        };
        if !barrier.waiting.iter().any(|w| w.id == id) {
            return Vec::new();
        }
        let reason = format!(
            "timeout after {seconds}s with {} of {} parties arrived",
            barrier.waiting.len(),
            barrier.parties
        );
        self.break_one(name, reason)
    }

    /// `ctl barrier abort` / `Barrier.abort()`.
    pub fn abort(&mut self, name: &str, by: &str) -> Result<Vec<EventBody>, String> {
        if !self.map.contains_key(name) {
            return Err(format!("no barrier named {name:?}"));
        }
        Ok(self.break_one(name, format!("aborted by {by}")))
    }

    /// `Barrier.reset()`: waiters are released broken, then the barrier starts afresh.
    pub fn reset(&mut self, name: &str) -> Result<Vec<EventBody>, String> {
        let mut events = self.break_one(name, "reset while waiting".into());
        let Some(barrier) = self.map.get_mut(name) else {
            return Err(format!("no barrier named {name:?}"));
        };
        barrier.broken = None;
        events.push(EventBody::Barrier {
            pid: None,
            name: name.to_string(),
            step: BarrierStep::Reset,
            generation: barrier.generation,
            parties: barrier.parties,
            waiting: 0,
            pool: None,
            worker: None,
            reason: None,
        });
        Ok(events)
    }

    /// Breaks barriers whose parties are distinct workers when too few workers are left
    /// (running or about to restart) to fill them.
    pub fn check_arrivals(&mut self, fold: &StatusFold) -> Vec<EventBody> {
        let mut doomed = Vec::new();
        for (name, barrier) in &self.map {
            let Some(seen) = &barrier.workers else {
                continue;
            };
            if barrier.broken.is_some() || barrier.waiting.is_empty() {
                continue;
            }
            let waiting: BTreeSet<(String, u32)> = barrier
                .waiting
                .iter()
                .filter_map(|w| w.party.pool.clone().zip(w.party.worker))
                .collect();
            let pools: BTreeSet<&str> = seen.iter().map(|(pool, _)| pool.as_str()).collect();
            let mut can_come = 0u32;
            let mut gone = Vec::new();
            for pool in pools.iter().filter_map(|p| fold.pool(p)) {
                for slot in pool.workers.values() {
                    if waiting.contains(&(pool.name.clone(), slot.worker)) {
                        continue;
                    }
                    match slot.state {
                        SlotState::Running | SlotState::Restarting => can_come += 1,
                        SlotState::Ended | SlotState::Failed => {
                            gone.push(format!("{}:{}", pool.name, slot.worker))
                        }
                    }
                }
            }
            if waiting.len() as u32 + can_come < barrier.parties && !gone.is_empty() {
                doomed.push((
                    name.clone(),
                    format!(
                        "worker {} ended and will not be restarted: only {} of {} parties can arrive",
                        gone.join(", "),
                        waiting.len() as u32 + can_come,
                        barrier.parties
                    ),
                ));
            }
        }
        doomed
            .into_iter()
            .flat_map(|(name, reason)| self.break_one(&name, reason))
            .collect()
    }

    pub fn status(&self, name: &str) -> Option<BarrierStatus> {
        self.map.get(name).map(|b| BarrierStatus {
            name: name.to_string(),
            parties: b.parties,
            waiting: b.waiting.len() as u32,
            generation: b.generation,
            broken: b.broken.clone(),
            waiting_pids: b.waiting.iter().map(|w| w.party.pid).collect(),
        })
    }

    pub fn all(&self) -> Vec<BarrierStatus> {
        self.map
            .keys()
            .filter_map(|name| self.status(name))
            .collect()
    }
}

#[cfg(test)]
#[path = "barrier_tests.rs"]
mod tests;
