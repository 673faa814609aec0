//! Samples marked with whose capture pipe a process writes into: a child that shares its
//! worker's stdout or stderr has its lines filed under the worker, and the TUI says so.

use std::collections::HashMap;

use super::Engine;
use crate::model::{EventBody, ProcSample};

impl Engine {
    /// Emits a `sample`, each process marked with the owner of the capture pipe its fd 1 or
    /// 2 is (`pipes`: the inodes the sampler read), when that owner is another process.
    pub(super) fn emit_sample(
        &self,
        mut procs: Vec<ProcSample>,
        pipes: &HashMap<i32, [Option<u64>; 2]>,
    ) {
        let mut owners: HashMap<u64, Option<i32>> = HashMap::new();
        for sample in procs.iter_mut().filter(|s| s.state != 'Z') {
            let Some(inodes) = pipes.get(&sample.pid) else {
                continue;
            };
            sample.shares_pipe_of = inodes.iter().flatten().find_map(|inode| {
                let owner = *owners
                    .entry(*inode)
                    .or_insert_with(|| self.captures.owner_of_pipe(*inode));
                owner.filter(|owner| *owner != sample.pid)
            });
        }
        self.events.emit(EventBody::Sample { pid: None, procs });
    }
}
