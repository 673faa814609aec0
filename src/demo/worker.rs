//! The programs the demos run. Each runs in its own single-threaded process, so plain
//! `fork` is safe here; children leave with `_exit` so nothing is flushed or run twice.

use std::io::Write;
use std::time::Duration;

use crate::model::ExitStatus;

/// Runs demo worker `name`; returns its exit code.
pub fn run(name: &str) -> i32 {
    let index: u32 = std::env::var("FORKSCOPE_WORKER")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    match name {
        "tour" => tour(index),
        "ignore-term" => ignore_term(),
        "crashloop" => {
            eprintln!("crashloop: failing at once (exit 1)");
            1
        }
        "flood" => flood(),
        other => {
            eprintln!("no demo worker named {other:?}");
            2
        }
    }
}

/// Sleeps `duration` scaled by the demo's pace (`--pace`, through the environment).
fn sleep(duration: Duration) {
    let pace = std::env::var(super::PACE_ENV)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|p| p.is_finite() && *p > 0.0)
        .unwrap_or(1.0);
    std::thread::sleep(duration.mul_f64(pace.min(100.0)));
}

fn say(text: &str) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Forks; the child runs `child` and `_exit`s with its result. Returns the child's pid.
fn fork_child(child: impl FnOnce() -> i32) -> i32 {
    use nix::unistd::{ForkResult, fork};
    // SAFETY: demo workers are single-threaded processes.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let code = child();
            let _ = std::io::stdout().flush();
            // Neither destructors nor the parent's stack unwind run here (nix has no `_exit`).
            std::process::exit(code)
        }
        Ok(ForkResult::Parent { child }) => child.as_raw(),
        Err(_) => -1,
    }
}

fn wait_for(pid: i32) -> ExitStatus {
    use nix::sys::wait::{WaitStatus, waitpid};
    match waitpid(nix::unistd::Pid::from_raw(pid), None) {
        Ok(WaitStatus::Exited(_, code)) => ExitStatus::Exited(code),
        Ok(WaitStatus::Signaled(_, signal, core_dumped)) => ExitStatus::Signaled {
            signal: signal as i32,
            core_dumped,
        },
        _ => ExitStatus::Unknown,
    }
}

fn me() -> i32 {
    std::process::id() as i32
}

/// The tour's lesson, one step per round, told by worker 0. The four workers run their rounds
/// side by side, so the steps explain without holding anyone (`"hold": false`).
const TOUR_STEPS: [(&str, &str, &str); 3] = [
    (
        "Four workers, four stories",
        "Each round, worker 0 forks three children (exit 0, exit 7, SIGTERM to itself), worker \
         1's child segfaults, worker 2's middle child exits and leaves an orphan, worker 3 \
         leaves a zombie for 1.5 s before it waits. Watch the ENDED column.",
        "Which endings will show a signal, and in which two numbers?",
    ),
    (
        "fork() returns twice",
        "Select worker 0 and read its output: each child says fork() returned 0 to it, the \
         parent prints the three pids it got. Same code, two return values.",
        "How does a program tell whether it is the parent or the child?",
    ),
    (
        "Orphans and zombies",
        "The orphan says which pid adopted it: forkscope's, a subreaper. Worker 3's child has \
         ended but stays a zombie until its parent waits: 1.5 s on purpose.",
        "Who would adopt the orphan without forkscope?",
    ),
];

/// Announces a lesson step that does not hold the program (`docs/teaching.md`).
fn announce((title, text, question): (&str, &str, &str)) {
    let words =
        serde_json::json!({"title": title, "text": text, "question": question, "hold": false});
    say(&format!("{}{words}", crate::model::lesson::STEP_PREFIX));
}

fn tour(index: u32) -> i32 {
    say(&format!("worker {index}: pid {} started", me()));
    for (round, lesson) in (1..=3).zip(TOUR_STEPS) {
        if index == 0 {
            announce(lesson);
        }
        match index % 4 {
            0 => exits_and_signals(round),
            1 => segfault(round),
            2 => orphan(round),
            _ => zombie(round),
        }
        sleep(Duration::from_secs(2));
    }
    say(&format!("worker {index}: done after 3 rounds"));
    0
}

fn exits_and_signals(round: u32) {
    say(&format!("round {round}: fork() three times"));
    let children = [
        fork_child(|| {
            say(&format!(
                "  child {}: fork() returned 0 to me; exiting 0",
                me()
            ));
            0
        }),
        fork_child(|| {
            say(&format!("  child {}: exiting 7", me()));
            7
        }),
        fork_child(|| {
            say(&format!("  child {}: sending myself SIGTERM", me()));
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM);
            0
        }),
    ];
    say(&format!(
        "  parent {}: fork() returned {:?} to me",
        me(),
        children
    ));
    for pid in children {
        let status = wait_for(pid);
        say(&format!(
            "  parent: child {pid} ended: {} (Python exitcode {}, shell $? {})",
            status.describe(),
            status.python_exitcode().unwrap_or_default(),
            status.shell_status().unwrap_or_default()
        ));
    }
}

fn segfault(round: u32) {
    let pid = fork_child(|| {
        use nix::sys::resource::{Resource, setrlimit};
        use nix::sys::signal::{SigHandler, Signal, raise, signal};
        // No core file in the user's directory.
        let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
        // SAFETY: the default action, no handler code.
        let _ = unsafe { signal(Signal::SIGSEGV, SigHandler::SigDfl) };
        let _ = raise(Signal::SIGSEGV);
        0
    });
    let status = wait_for(pid);
    say(&format!(
        "round {round}: child {pid} crashed: {}",
        status.describe()
    ));
}

fn orphan(round: u32) {
    let middle = fork_child(|| {
        let grandchild = fork_child(|| {
            sleep(Duration::from_millis(300));
            let parent = nix::unistd::getppid();
            say(&format!(
                "  orphan {}: my parent died; I was re-parented to pid {parent} (forkscope, a subreaper); exiting 3",
                me()
            ));
            sleep(Duration::from_secs(1));
            3
        });
        say(&format!(
            "  middle {}: forked {grandchild}, now exiting without waiting",
            me()
        ));
        0
    });
    let status = wait_for(middle);
    say(&format!(
        "round {round}: middle child {middle} ended: {}",
        status.describe()
    ));
}

fn zombie(round: u32) {
    let pid = fork_child(|| 0);
    say(&format!(
        "round {round}: child {pid} exited at once, but I do not wait() for 1.5 s: it is a zombie (Z) until I do"
    ));
    sleep(Duration::from_millis(1500));
    let status = wait_for(pid);
    say(&format!(
        "round {round}: reaped {pid}: {}",
        status.describe()
    ));
}

fn ignore_term() -> i32 {
    let pid = fork_child(|| {
        use nix::sys::signal::{SigHandler, Signal, signal};
        // SAFETY: ignoring, no handler code.
        let _ = unsafe { signal(Signal::SIGTERM, SigHandler::SigIgn) };
        say(&format!(
            "  child {}: I ignore SIGTERM; only SIGKILL can stop me",
            me()
        ));
        loop {
            sleep(Duration::from_secs(1));
        }
    });
    say(&format!(
        "worker {}: my child {pid} ignores SIGTERM; I will exit on SIGTERM",
        me()
    ));
    loop {
        sleep(Duration::from_secs(1));
    }
}

fn flood() -> i32 {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for n in 0u64.. {
        if writeln!(out, "flood line {n}").is_err() {
            return 0;
        }
        if n % 1_000_000 == 999_999 {
            sleep(Duration::from_millis(200));
        }
    }
    0
}
