//! Samples marked with whose capture pipe a process writes into: a child that shares its
//! worker's stdout or stderr has its lines filed under the worker, and the TUI says so.

use std::collections::HashMap;

use super::Engine;
use crate::model::{EventBody, ProcSample};

impl Engine {
    /// Emits a `sample`, each process marked with the owner of the capture pipe its fd 1 or
    /// 2 is, when that owner is another process.
    pub(super) fn emit_sample(&self, mut procs: Vec<ProcSample>) {
        let mut owners: HashMap<u64, Option<i32>> = HashMap::new();
        for sample in procs.iter_mut().filter(|s| s.state != 'Z') {
            sample.shares_pipe_of = [1, 2].into_iter().find_map(|fd| {
                let inode = pipe_inode(sample.pid, fd)?;
                let owner = *owners
                    .entry(inode)
                    .or_insert_with(|| self.captures.owner_of_pipe(inode));
                owner.filter(|owner| *owner != sample.pid)
            });
        }
        self.events.emit(EventBody::Sample { pid: None, procs });
    }
}

/// The inode of the pipe `pid`'s descriptor `fd` is, from its `/proc` link `pipe:[INODE]`.
fn pipe_inode(pid: i32, fd: u32) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
    parse_pipe_link(link.to_str()?)
}

fn parse_pipe_link(link: &str) -> Option<u64> {
    link.strip_prefix("pipe:[")?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pipe_links() {
        assert_eq!(parse_pipe_link("pipe:[123456]"), Some(123456));
        assert_eq!(parse_pipe_link("/dev/null"), None);
        assert_eq!(parse_pipe_link("socket:[12]"), None);
        assert_eq!(parse_pipe_link("pipe:[x]"), None);
    }

    proptest! {
        #[test]
        fn garbage_links_never_panic(text in ".{0,40}") {
            let _ = parse_pipe_link(&text);
        }
    }
}
