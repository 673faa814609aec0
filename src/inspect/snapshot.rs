//! `forkscope inspect PID`: a one-shot snapshot of the live tree under PID.

use serde::Serialize;

use std::collections::HashMap;

use super::proc::{self, ProcStat};
use super::pystack::StackReader;
use crate::model::printable;
use crate::model::pystack::{PyFrame, StackError, ThreadStack};
use crate::model::roles::{self, ProcRole, RoleInput};

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
            let python = stack_reader.read_process(stat.pid, stat.start_time);
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
            }
        })
        .collect();
    let mut processes = processes;
    let pids = processes.iter().map(|p: &ProcessEntry| p.pid).collect();
    let (segments, unreadable) =
        super::shm::discover::discover_reporting(&super::shm::Scope::Pids(pids));
    for gap in unreadable {
        if let Some(p) = processes.iter_mut().find(|p| p.pid == gap.pid) {
            p.unreadable = Some(gap.error);
        }
    }
    Ok(Snapshot {
        root,
        processes,
        shm: super::shm::command::summaries(&segments),
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
            "{:>8} {:>8} {:<10} {:<16} COMMAND",
            "PID", "PPID", "STATE", "ROLE"
        );
        for p in &snapshot.processes {
            let zombie = p.zombie_exit.as_ref().map_or(String::new(), |exit| {
                format!("[{exit}; waiting for {} to reap it] ", p.ppid)
            });
            println!(
                "{:>8} {:>8} {:<10} {:<16} {zombie}{}",
                p.pid,
                p.ppid,
                p.state,
                p.role,
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
