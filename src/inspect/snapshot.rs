//! `forkscope inspect PID`: a one-shot snapshot of the live tree under PID.

use serde::Serialize;

use super::proc::{self, ProcStat};

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
    let mut processes = Vec::new();
    let mut push = |stat: ProcStat, role: &str| {
        processes.push(ProcessEntry {
            pid: stat.pid,
            ppid: stat.ppid,
            state: state_word(stat.state).to_string(),
            argv: proc::read_cmdline(stat.pid).unwrap_or_default(),
            role: role.to_string(),
            start_time: stat.start_time,
            threads: stat.threads,
            rss_kb: stat.rss_pages * page_kb,
        });
    };
    push(root_stat, "root");
    for stat in proc::descendants_in(&all, root) {
        push(stat, "child");
    }
    let pids = processes.iter().map(|p| p.pid).collect();
    let segments = super::shm::discover(&super::shm::Scope::Pids(pids));
    Ok(Snapshot {
        root,
        processes,
        shm: super::shm::command::summaries(&segments),
    })
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
            "{:>8} {:>8} {:<10} {:<8} COMMAND",
            "PID", "PPID", "STATE", "ROLE"
        );
        for p in &snapshot.processes {
            println!(
                "{:>8} {:>8} {:<10} {:<8} {}",
                p.pid,
                p.ppid,
                p.state,
                p.role,
                p.argv.join(" ")
            );
        }
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
