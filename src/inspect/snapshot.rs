//! `forkscope inspect PID`: a one-shot snapshot of the live tree under PID.

use serde::Serialize;

use std::collections::HashMap;

use super::proc::{self, ProcStat};
use crate::model::roles::{self, ProcRole, RoleInput};
use crate::model::sync::{
    Barrier, BlockedOn, Channel, Deadlock, Primitive, Semaphore, SyncReport, ThreadWait,
};

/// One process of the snapshot.
#[derive(Debug, Serialize)]
pub struct ProcessEntry {
    pub pid: i32,
    pub ppid: i32,
    pub state: String,
    pub argv: Vec<String>,
    pub role: String,
    pub start_time: u64,
    pub threads: u32,
    pub rss_kb: u64,
    /// What the main thread waits on (`docs/sync.md`).
    pub blocked_on: Option<BlockedOn>,
    /// Every thread's wait (`threads` is their number).
    pub thread_waits: Vec<ThreadWait>,
}

/// The whole snapshot.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub root: i32,
    pub processes: Vec<ProcessEntry>,
    /// Shared-memory segments the tree maps or holds (the fields of `shm ls --json`).
    pub shm: Vec<super::shm::command::Summary>,
    /// The tree's POSIX semaphores with values, waiters and blocked pids (`docs/sync.md`).
    pub semaphores: Vec<Semaphore>,
    /// Python multiprocessing primitives recognised among the semaphores.
    pub primitives: Vec<Primitive>,
    pub barriers: Vec<Barrier>,
    /// Pipes and sockets held by the tree.
    pub channels: Vec<Channel>,
    /// Groups of processes waiting for each other.
    pub deadlocks: Vec<Deadlock>,
}

/// `R` → `running` and so on.
pub fn state_word(state: char) -> &'static str {
    match state {
        'R' => "running",
        'S' => "sleeping",
        'D' => "disk-wait",
        'T' | 't' => "stopped",
        'Z' => "zombie",
        'X' | 'x' => "dead",
        'I' => "idle",
        _ => "unknown",
    }
}

/// Takes the snapshot; an error if `root` does not exist.
pub fn take(root: i32) -> anyhow::Result<Snapshot> {
    let all = proc::scan_all()?;
    let root_stat = all
        .get(&root)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no process with pid {root}"))?;
    let page_kb = proc::page_size() / 1024;
    let mut stats = vec![root_stat];
    stats.extend(proc::descendants_in(&all, root));
    let argvs: HashMap<i32, Vec<String>> = stats
        .iter()
        .map(|s| (s.pid, proc::read_cmdline(s.pid).unwrap_or_default()))
        .collect();
    let sockets = super::unix::listening_sockets();
    let processes: Vec<ProcessEntry> = stats
        .into_iter()
        .map(|stat: ProcStat| {
            let argv = argvs.get(&stat.pid).cloned().unwrap_or_default();
            let role = if stat.pid == root {
                ProcRole::Root
            } else {
                let parent_argv = argvs.get(&stat.ppid).map(Vec::as_slice);
                let listening = super::unix::listening_paths(stat.pid, &sockets);
                roles::classify(&RoleInput {
                    argv: &argv,
                    parent_argv,
                    is_worker: parent_argv.is_some_and(|p| is_forkscope(p) && p != argv),
                    execed: None,
                    listening: &listening,
                })
            };
            ProcessEntry {
                pid: stat.pid,
                ppid: stat.ppid,
                state: state_word(stat.state).to_string(),
                argv,
                role: role.label().to_string(),
                start_time: stat.start_time,
                threads: stat.threads,
                rss_kb: stat.rss_pages * page_kb,
                blocked_on: None,
                thread_waits: Vec::new(),
            }
        })
        .collect();
    let pids: Vec<i32> = processes.iter().map(|p: &ProcessEntry| p.pid).collect();
    let segments = super::shm::discover(&super::shm::Scope::Pids(pids.clone()));
    let sync = super::sync::scan_once(&pids);
    let mut processes = processes;
    for p in &mut processes {
        if let Some(w) = sync.process(p.pid) {
            p.blocked_on = Some(w.blocked_on.clone());
            p.thread_waits = w.threads.clone();
        }
    }
    let SyncReport {
        semaphores,
        primitives,
        barriers,
        channels,
        deadlocks,
        ..
    } = sync;
    Ok(Snapshot {
        root,
        processes,
        shm: super::shm::command::summaries(&segments),
        semaphores,
        primitives,
        barriers,
        channels,
        deadlocks,
    })
}

/// The barriers, primitives with waiters, and deadlocks of a snapshot, as text.
fn print_sync(snapshot: &Snapshot) {
    let list = |pids: &[i32]| {
        let pids: Vec<String> = pids.iter().map(i32::to_string).collect();
        pids.join(",")
    };
    for b in &snapshot.barriers {
        let missing: Vec<String> = b
            .missing
            .iter()
            .map(|m| match &m.blocked_on {
                Some(w) => format!("{} ({})", m.pid, w.short(m.pid)),
                None => m.pid.to_string(),
            })
            .collect();
        println!(
            "\nBARRIER sem {}: {}, {} arrived; waiting {}; not waiting: {}{}",
            b.semaphore,
            b.state.as_deref().unwrap_or("state unknown"),
            b.arrived.map_or("?".into(), |a| a.to_string()),
            list(&b.waiting),
            missing.join(", "),
            if b.can_never_fill {
                "; a party exited: it can never fill"
            } else {
                ""
            }
        );
    }
    for p in snapshot.primitives.iter().filter(|p| !p.waiting.is_empty()) {
        println!(
            "{} (sems {:?}, {}): {}; waiting {}",
            p.kind,
            p.semaphores,
            if p.confidence == crate::model::sync::Confidence::Guess {
                "guess"
            } else {
                "confirmed"
            },
            p.state.as_deref().unwrap_or("-"),
            list(&p.waiting)
        );
    }
    for d in &snapshot.deadlocks {
        println!(
            "\nDEADLOCK {}{}",
            d.cycle.join("; "),
            if d.guess {
                " (lock holders guessed)"
            } else {
                ""
            }
        );
    }
}

/// argv of a forkscope engine (its children are workers).
fn is_forkscope(argv: &[String]) -> bool {
    argv.first()
        .and_then(|a| a.rsplit('/').next())
        .is_some_and(|name| name == "forkscope")
        && !argv.iter().any(|a| a == "__demo-worker")
}

/// Prints the snapshot as JSON or as an indented table; returns the exit status.
pub fn print(root: i32, json: bool) -> anyhow::Result<i32> {
    let snapshot = match take(root) {
        Ok(s) => s,
        Err(err) => {
            eprintln!("forkscope: {err}");
            return Ok(1);
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&snapshot)?);
    } else {
        println!(
            "{:>8} {:>8} {:<10} {:<16} {:<30} COMMAND",
            "PID", "PPID", "STATE", "ROLE", "WAITING ON"
        );
        for p in &snapshot.processes {
            let waiting = p
                .blocked_on
                .as_ref()
                .map(|b| b.short(p.pid))
                .unwrap_or_default();
            println!(
                "{:>8} {:>8} {:<10} {:<16} {:<30} {}",
                p.pid,
                p.ppid,
                p.state,
                p.role,
                waiting,
                p.argv.join(" ")
            );
        }
        print_sync(&snapshot);
        if !snapshot.shm.is_empty() {
            println!("\nSHARED MEMORY");
            for s in &snapshot.shm {
                let pids: Vec<String> = s.pids.iter().map(i32::to_string).collect();
                println!(
                    "{:<28} {:<9} {:>10} {}{}",
                    s.name,
                    s.kind,
                    s.size,
                    if s.deleted { "(deleted) " } else { "" },
                    pids.join(",")
                );
            }
        }
    }
    Ok(0)
}
