//! The engine's side of the sampler thread: a request at each sample tick, and the reading
//! turned into events when it comes back, minus what the engine learnt ended meanwhile.

use std::collections::{HashMap, HashSet};

use super::Engine;
use crate::supervise::sampler::{Request, Sampler};

impl Engine {
    /// Asks the sampler for a reading (none if one is still being taken).
    pub(super) fn request_sample(&mut self, request: Request) {
        if let Some(sampler) = self.sampler.as_mut()
            && sampler.request(request)
        {
            self.reaped_while_sampling.clear();
        }
    }

    /// `pid` was reaped: a reading under way may still show it alive.
    pub(super) fn reaped_while_sampling(&mut self, pid: i32) {
        if self.sampler.as_ref().is_some_and(Sampler::outstanding) {
            self.reaped_while_sampling.push(pid);
        }
    }

    /// Turns a ready reading into events: the sample, and when polling the lifecycle
    /// events the scan shows.
    pub(super) fn take_sample(&mut self) {
        let Some(mut reading) = self.sampler.as_mut().and_then(Sampler::take) else {
            return;
        };
        let reaped: HashSet<i32> = self.reaped_while_sampling.drain(..).collect();
        if let Some(all) = reading.all.take() {
            self.reconcile_read_earlier(all, &reaped);
        }
        let mut tree = reading.tree;
        tree.retain(|stat| !reaped.contains(&stat.pid));
        let exact = self.exact_members();
        if let Some(members) = &exact {
            let known: HashMap<i32, Option<u64>> = members.iter().copied().collect();
            tree.retain(|stat| {
                known
                    .get(&stat.pid)
                    .is_some_and(|start| start.is_none_or(|s| s == stat.start_time))
            });
        }
        // Workers started after the request: alive, just not in this reading.
        let read: HashSet<i32> = tree.iter().map(|stat| stat.pid).collect();
        let unread: HashSet<i32> = self
            .by_pid
            .keys()
            .copied()
            .filter(|pid| !read.contains(pid))
            .collect();
        let scan = self.tracker.observe_read_earlier(tree, unread);
        if exact.is_none() && reading.tree_request {
            for event in scan.events {
                self.events.emit(event);
            }
        }
        self.emit_sample(scan.samples, &reading.pipes);
    }
}
