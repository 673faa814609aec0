//! `forkscope inspect PID`: a one-shot snapshot of the live tree under PID.

use serde::Serialize;

use std::collections::HashMap;

use super::proc::{self, ProcStat};
use super::pystack::StackReader;
use crate::model::printable;
use crate::model::pystack::{PyFrame, StackError, ThreadStack};
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
    /// For a zombie (ended, not yet reaped by its parent `ppid`): how it ended, from
    /// `/proc/PID/stat` (`exit 0`, `SIGSEGV (-11 / 139)`). Absent for live processes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zombie_exit: Option<String>,
    /// Why its maps or fds could not be read (`permission denied`): its shared memory is
    /// missing from `shm`. Absent when they were read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
    /// Python threads with their stacks (Python processes only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub python_threads: Vec<PythonThreadEntry>,
    /// What the process waits on, named from its Python stack (`Queue.get at c.py:17`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python_wait: Option<String>,
    /// Why the Python stacks could not be read (`not a Python process`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python_error: Option<String>,
    /// What the main thread waits on (`docs/sync.md`).
    pub blocked_on: Option<BlockedOn>,
    /// Every thread's wait (`threads` is their number).
    pub thread_waits: Vec<ThreadWait>,
}

/// One Python thread of a process in the snapshot.
#[derive(Debug, Serialize)]
pub struct PythonThreadEntry {
    pub tid: Option<u64>,
    pub name: Option<String>,
    pub active: bool,
    pub gil: bool,
    /// Innermost frame first.
    pub python_stack: Vec<PyFrame>,
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
    let mut stack_reader = StackReader::new();
    let processes: Vec<ProcessEntry> = stats
        .into_iter()
        .map(|stat: ProcStat| {
            let argv = argvs.get(&stat.pid).cloned().unwrap_or_default();
            let python = stack_reader.read_process(stat.pid, stat.start_time);
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
                    stack_hint: python.stacks.as_deref().ok().and_then(roles::stack_hint),
                })
            };
            let (python_threads, python_error) = python_fields(python.stacks);
            ProcessEntry {
                python_threads,
                python_wait: python.wait,
                python_error,
                pid: stat.pid,
                ppid: stat.ppid,
                state: state_word(stat.state).to_string(),
                argv,
                role: role.label().to_string(),
                start_time: stat.start_time,
                threads: stat.threads,
                rss_kb: stat.rss_pages * page_kb,
                zombie_exit: zombie_exit(&stat),
                unreadable: None,
                blocked_on: None,
                thread_waits: Vec::new(),
            }
        })
        .collect();
    let mut processes = processes;
    let pids: Vec<i32> = processes.iter().map(|p: &ProcessEntry| p.pid).collect();
    let (segments, unreadable) =
        super::shm::discover::discover_reporting(&super::shm::Scope::Pids(pids.clone()));
    for gap in unreadable {
        if let Some(p) = processes.iter_mut().find(|p| p.pid == gap.pid) {
            p.unreadable = Some(gap.error);
        }
    }
    let sync = super::sync::scan_once(&pids);
    for p in &mut processes {
        if let Some(w) = sync.process(p.pid) {
            let mut blocked_on = w.blocked_on.clone();
            // The Python stack names what the kernel-level wait means (`Barrier.wait at ...`).
            if blocked_on.kind != crate::model::sync::WaitKind::Running {
                blocked_on.python = p.python_wait.clone();
            }
            p.blocked_on = Some(blocked_on);
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

/// How a zombie ended (field 52 of its `stat`); `None` for a process that still runs.
fn zombie_exit(stat: &ProcStat) -> Option<String> {
    (stat.state == 'Z').then(|| {
        stat.exit_code
            .map_or(
                crate::model::ExitStatus::Unknown,
                crate::model::ExitStatus::from_wait_status,
            )
            .describe()
    })
}

fn python_fields(
    stacks: Result<Vec<ThreadStack>, StackError>,
) -> (Vec<PythonThreadEntry>, Option<String>) {
    match stacks {
        Ok(threads) => (
            threads
                .into_iter()
                .map(|t| PythonThreadEntry {
                    tid: t.tid,
                    name: t.name,
                    active: t.active,
                    gil: t.gil,
                    python_stack: t.frames,
                })
                .collect(),
            None,
        ),
        Err(err) => (Vec::new(), Some(err.to_string())),
    }
}

/// The Python section of the text form: each Python process's wait and innermost frame, or
/// why its stacks could not be read.
fn print_python(processes: &[ProcessEntry]) {
    let not_python = StackError::NotPython.to_string();
    let python: Vec<&ProcessEntry> = processes
        .iter()
        .filter(|p| p.python_error.as_ref() != Some(&not_python))
        .collect();
    if python.is_empty() {
        return;
    }
    println!("\nPYTHON");
    for p in python {
        let text = match (&p.python_wait, &p.python_error) {
            (_, Some(error)) => format!("unreadable: {error}"),
            (Some(wait), None) => format!("waits in {wait}"),
            (None, None) => p
                .python_threads
                .first()
                .and_then(|t| t.python_stack.first())
                .map(|f| format!("in {} at {}:{}", f.function, f.file_name(), f.line))
                .unwrap_or_default(),
        };
        println!("{:>8} {text}", p.pid);
    }
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
            eprintln!("forkscope: {}", printable::lines(&err.to_string()));
            return Ok(1);
        }
    };
    if json {
        println!(
            "{}",
            printable::json(&serde_json::to_string_pretty(&snapshot)?)
        );
    } else {
        println!(
            "{:>8} {:>8} {:<10} {:<16} {:<30} COMMAND",
            "PID", "PPID", "STATE", "ROLE", "WAITING ON"
        );
        for p in &snapshot.processes {
            let zombie = p.zombie_exit.as_ref().map_or(String::new(), |exit| {
                format!("[{exit}; waiting for {} to reap it] ", p.ppid)
            });
            let waiting = p
                .blocked_on
                .as_ref()
                .map(|b| b.short(p.pid))
                .unwrap_or_default();
            println!(
                "{:>8} {:>8} {:<10} {:<16} {:<30} {zombie}{}",
                p.pid,
                p.ppid,
                p.state,
                p.role,
                printable::one_line(&waiting),
                printable::argv(&p.argv)
            );
        }
        for p in snapshot.processes.iter().filter(|p| p.unreadable.is_some()) {
            println!(
                "pid {}: unreadable: {} (its shared memory is not listed)",
                p.pid,
                p.unreadable.as_deref().unwrap_or_default()
            );
        }
        print_python(&snapshot.processes);
        print_sync(&snapshot);
        if !snapshot.shm.is_empty() {
            println!("\nSHARED MEMORY");
            for s in &snapshot.shm {
                let pids: Vec<String> = s.pids.iter().map(i32::to_string).collect();
                println!(
                    "{:<28} {:<9} {:>10} {}{}",
                    printable::one_line(&s.name),
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
