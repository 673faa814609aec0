//! The rows of the tree view, derived from the state: pools, their workers, every descendant
//! indented under its parent, and processes adopted by forkscope (orphans) in their own group
//! (an orphan is shown under its new parent, marked with the one it came from).
//! Folding and the filter apply here, so every view and key agrees on what is visible.

use std::collections::{HashMap, HashSet};

use crate::model::state::{Origin, ProcId, ProcessView, State};

/// What a row stands for; stable while rows come and go, so the selection is too.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RowKey {
    Pool(String),
    /// Processes forkscope adopted whose parent it never saw.
    Adopted,
    Proc(ProcId),
}

/// One visible row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub key: RowKey,
    pub depth: usize,
    pub has_children: bool,
    pub folded: bool,
    /// The last child of its parent (for the tree lines).
    pub last: bool,
}

/// Whether a process matches the filter text (pid or command, case-insensitive).
pub fn matches(proc: &ProcessView, filter: &str) -> bool {
    let needle = filter.trim().to_lowercase();
    needle.is_empty()
        || proc.pid.to_string().contains(&needle)
        || proc.command().to_lowercase().contains(&needle)
}

/// Children of every shown process (and `None`: the roots), in birth order. Built once per
/// call of [`visible_rows`], so the tree costs O(processes), not O(processes²).
struct ChildIndex(HashMap<Option<ProcId>, Vec<ProcId>>);

impl ChildIndex {
    fn of(state: &State) -> ChildIndex {
        let mut index: HashMap<Option<ProcId>, Vec<ProcId>> = HashMap::new();
        for proc in state.procs.values() {
            let parent = proc.tree_parent().filter(|id| state.procs.contains_key(id));
            index.entry(parent).or_default().push(proc.id);
        }
        ChildIndex(index)
    }

    fn children(&self, parent: Option<ProcId>) -> &[ProcId] {
        self.0.get(&parent).map_or(&[], Vec::as_slice)
    }
}

/// The visible rows in order.
pub fn visible_rows(state: &State, folded: &HashSet<RowKey>, filter: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let index = ChildIndex::of(state);
    let roots = index.children(None);
    let tree = Tree {
        state,
        index: &index,
        folded,
        filter,
    };
    for pool in &state.pools {
        let name = &pool.info.name;
        let mut workers: Vec<ProcId> = roots
            .iter()
            .copied()
            .filter(
                |id| matches!(&state.procs[id].origin, Origin::Worker { pool, .. } if pool == name),
            )
            .collect();
        workers.sort_by_key(|id| match &state.procs[id].origin {
            Origin::Worker { worker, .. } => (*worker, *id),
            Origin::Descendant => (u32::MAX, *id),
        });
        tree.group(&mut rows, RowKey::Pool(name.clone()), &workers, true);
    }
    let adopted: Vec<ProcId> = roots
        .iter()
        .copied()
        .filter(|id| state.procs[id].origin == Origin::Descendant)
        .collect();
    if !adopted.is_empty() {
        tree.group(&mut rows, RowKey::Adopted, &adopted, false);
    }
    rows
}

/// What building the rows needs at every level.
struct Tree<'a> {
    state: &'a State,
    index: &'a ChildIndex,
    folded: &'a HashSet<RowKey>,
    filter: &'a str,
}

impl Tree<'_> {
    fn group(&self, rows: &mut Vec<Row>, key: RowKey, members: &[ProcId], always: bool) {
        if !always && members.is_empty() {
            return;
        }
        let is_folded = self.folded.contains(&key);
        rows.push(Row {
            key,
            depth: 0,
            has_children: !members.is_empty(),
            folded: is_folded,
            last: false,
        });
        if is_folded {
            return;
        }
        for (n, id) in members.iter().enumerate() {
            self.subtree(rows, *id, 1, n + 1 == members.len());
        }
    }

    fn subtree(&self, rows: &mut Vec<Row>, id: ProcId, depth: usize, last: bool) {
        let children = self.index.children(Some(id));
        let key = RowKey::Proc(id);
        let is_folded = self.folded.contains(&key);
        if matches(&self.state.procs[&id], self.filter) {
            rows.push(Row {
                key: key.clone(),
                depth,
                has_children: !children.is_empty(),
                folded: is_folded,
                last,
            });
        }
        if is_folded || depth > 64 {
            return;
        }
        for (n, child) in children.iter().enumerate() {
            self.subtree(rows, *child, depth + 1, n + 1 == children.len());
        }
    }
}

/// The mark of a process re-parented after its parent ended: `↰4685` (where it came from;
/// the tree shows it where it is now).
pub fn adoption_mark(proc: &ProcessView) -> Option<String> {
    proc.adopted_from.map(|from| format!("↰{from}"))
}

/// The pool a process belongs to: its own, or that of the worker it descends from.
pub fn pool_of(state: &State, mut id: ProcId) -> Option<(String, Option<u32>)> {
    for _ in 0..128 {
        let proc = state.procs.get(&id)?;
        match &proc.origin {
            Origin::Worker { pool, worker } => return Some((pool.clone(), Some(*worker))),
            Origin::Descendant => id = proc.parent?,
        }
    }
    None
}
