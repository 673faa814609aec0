//! Roles: what a process is to the supervised program, labelled from its argv and its place
//! in the tree. Pure: callers gather the inputs (the TUI from its `State`, `inspect` from
//! `/proc`).
//!
//! The signals used, all from CPython's own source (3.8 to 3.13):
//! - resource tracker: `-c 'from multiprocessing.resource_tracker import main;main(FD)'`
//! - forkserver: `-c 'from multiprocessing.forkserver import main; main(...)'`
//! - spawn child: `-c 'from multiprocessing.spawn import spawn_main; spawn_main(...)'
//!   --multiprocessing-fork` (frozen programs: `--multiprocessing-fork` alone)
//! - forkserver child: forked (no exec) by the forkserver
//! - `Manager` server: a fork or spawn child listening on a Unix socket at
//!   `<tmp>/pymp-XXXX/listener-XXXX`, the default address `multiprocessing` picks for it.
//!   A program's own `multiprocessing.connection.Listener()` in a child looks the same, and a
//!   Manager given an explicit address is not recognised; without socket information (the
//!   TUI) the server shows as the fork or spawn child it is.
//! - fork child: forked and not exec'd (the kernel says so), or, when that is unknown, the
//!   same argv as its parent
//! - shell: argv[0] is sh, bash, dash, zsh, ksh, mksh, ash, busybox or fish
//! - loky (joblib's default backend) worker: `-m [joblib.externals.]loky.backend.popen_loky_posix
//!   --process-name LokyProcess-N --pipe FD`; loky's resource tracker:
//!   `-c 'from [joblib.externals.]loky.backend.resource_tracker import main; main(FD, ...)'`
//!   (checked with joblib 1.6 under CPython 3.11)
//!
//! - `multiprocessing.Pool` worker / `ProcessPoolExecutor` worker: from outside they look
//!   like any other `Process` child (same argv, same pipes, no names), so they are told apart
//!   by their Python stacks: a Pool worker has the frame `worker` in `multiprocessing/pool.py`,
//!   an executor worker `_process_worker` in `concurrent/futures/process.py` (checked with
//!   CPython 3.11). Without a stack (not Python, unreadable, still starting) they keep
//!   `fork-child` / `spawn-child` / `forkserver-child`.

use serde::{Deserialize, Serialize};

use super::TrackSource;
use super::pystack::ThreadStack;
use super::state::{Origin, ProcId, State};

/// What a process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProcRole {
    /// The root of an `inspect` snapshot.
    Root,
    /// Started by forkscope as a pool worker.
    Worker,
    ResourceTracker,
    Forkserver,
    ManagerServer,
    SpawnChild,
    ForkserverChild,
    ForkChild,
    Shell,
    /// A worker process of loky (joblib's default parallel backend).
    LokyWorker,
    /// loky's own resource tracker.
    LokyResourceTracker,
    /// A worker of `multiprocessing.Pool`.
    PoolWorker,
    /// A worker of `concurrent.futures.ProcessPoolExecutor`.
    ExecutorWorker,
    /// None of the above (a program exec'd by a descendant).
    Process,
}

impl ProcRole {
    /// The label shown in tables and JSON.
    pub fn label(self) -> &'static str {
        match self {
            ProcRole::Root => "root",
            ProcRole::Worker => "worker",
            ProcRole::ResourceTracker => "resource-tracker",
            ProcRole::Forkserver => "forkserver",
            ProcRole::ManagerServer => "manager-server",
            ProcRole::SpawnChild => "spawn-child",
            ProcRole::ForkserverChild => "forkserver-child",
            ProcRole::ForkChild => "fork-child",
            ProcRole::Shell => "shell",
            ProcRole::LokyWorker => "loky-worker",
            ProcRole::LokyResourceTracker => "loky-resource-tracker",
            ProcRole::PoolWorker => "pool-worker",
            ProcRole::ExecutorWorker => "executor-worker",
            ProcRole::Process => "process",
        }
    }
}

/// What is known about one process.
#[derive(Clone, Copy, Debug, Default)]
pub struct RoleInput<'a> {
    pub argv: &'a [String],
    /// The parent's argv, when the parent is known.
    pub parent_argv: Option<&'a [String]>,
    /// Started by forkscope as a worker.
    pub is_worker: bool,
    /// Whether it exec'd since its fork: `None` when the source cannot tell (`/proc`).
    pub execed: Option<bool>,
    /// Paths of the Unix sockets it listens on (empty when unknown).
    pub listening: &'a [String],
    /// What its Python stack says it is, from [`stack_hint`] (`None` when unknown).
    pub stack_hint: Option<StackHint>,
}

/// The worker kind a Python stack shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StackHint {
    PoolWorker,
    ExecutorWorker,
}

impl StackHint {
    fn role(self) -> ProcRole {
        match self {
            StackHint::PoolWorker => ProcRole::PoolWorker,
            StackHint::ExecutorWorker => ProcRole::ExecutorWorker,
        }
    }
}

/// The worker kind shown by any frame of any thread: `worker` in `multiprocessing/pool.py`
/// or `_process_worker` in `concurrent/futures/process.py`.
pub fn stack_hint(threads: &[ThreadStack]) -> Option<StackHint> {
    threads
        .iter()
        .flat_map(|t| &t.frames)
        .find_map(|f| frame_hint(&f.function, &f.file))
}

fn frame_hint(function: &str, file: &str) -> Option<StackHint> {
    match function {
        "worker" if file.ends_with("multiprocessing/pool.py") => Some(StackHint::PoolWorker),
        "_process_worker" if file.ends_with("concurrent/futures/process.py") => {
            Some(StackHint::ExecutorWorker)
        }
        _ => None,
    }
}

/// The code after `-c`, if any.
fn dash_c(argv: &[String]) -> Option<&str> {
    let at = argv.iter().position(|a| a == "-c")?;
    argv.get(at + 1).map(String::as_str)
}

fn runs(argv: &[String], prefix: &str) -> bool {
    dash_c(argv).is_some_and(|code| code.trim_start().starts_with(prefix))
}

/// `-c 'from multiprocessing.resource_tracker import main;main(N)'`.
pub fn is_resource_tracker(argv: &[String]) -> bool {
    runs(argv, "from multiprocessing.resource_tracker import main")
}

/// `-c 'from multiprocessing.forkserver import main; main(...)'`.
pub fn is_forkserver(argv: &[String]) -> bool {
    runs(argv, "from multiprocessing.forkserver import main")
}

/// `-c 'from multiprocessing.spawn import spawn_main; ...' --multiprocessing-fork`.
pub fn is_spawn_child(argv: &[String]) -> bool {
    runs(argv, "from multiprocessing.spawn import spawn_main")
        || argv.iter().skip(1).any(|a| a == "--multiprocessing-fork")
}

/// `-m [joblib.externals.]loky.backend.popen_loky_posix ...`.
pub fn is_loky_worker(argv: &[String]) -> bool {
    argv.windows(2).any(|pair| {
        pair[0] == "-m" && {
            let module = pair[1].as_str();
            module == "loky.backend.popen_loky_posix"
                || module.ends_with(".loky.backend.popen_loky_posix")
        }
    })
}

/// `-c 'from [joblib.externals.]loky.backend.resource_tracker import main; main(...)'`.
pub fn is_loky_resource_tracker(argv: &[String]) -> bool {
    dash_c(argv).is_some_and(|code| {
        let code = code.trim_start();
        code.starts_with("from ") && code.contains("loky.backend.resource_tracker import main")
    })
}

/// argv[0] names a shell.
pub fn is_shell(argv: &[String]) -> bool {
    let Some(first) = argv.first() else {
        return false;
    };
    let name = first.rsplit('/').next().unwrap_or(first);
    let name = name.trim_start_matches('-');
    matches!(
        name,
        "sh" | "bash" | "dash" | "zsh" | "ksh" | "mksh" | "ash" | "busybox" | "fish"
    )
}

/// A Unix socket path of the form `.../pymp-XXXX/listener-XXXX`.
pub fn is_mp_listener(path: &str) -> bool {
    let mut parts = path.rsplit('/');
    let file = parts.next().unwrap_or("");
    let dir = parts.next().unwrap_or("");
    file.starts_with("listener-") && dir.starts_with("pymp-")
}

/// Labels one process.
pub fn classify(input: &RoleInput<'_>) -> ProcRole {
    let argv = input.argv;
    if input.is_worker {
        return ProcRole::Worker;
    }
    let forked = match input.execed {
        Some(execed) => !execed,
        None => input
            .parent_argv
            .is_some_and(|parent| !argv.is_empty() && parent == argv),
    };
    let listens = input.listening.iter().any(|p| is_mp_listener(p));
    if forked {
        // Before the argv tests: the forkserver's children carry the forkserver's argv.
        return if listens {
            ProcRole::ManagerServer
        } else if let Some(hint) = input.stack_hint {
            hint.role()
        } else if input.parent_argv.is_some_and(is_forkserver) {
            ProcRole::ForkserverChild
        } else {
            ProcRole::ForkChild
        };
    }
    if is_loky_worker(argv) {
        return ProcRole::LokyWorker;
    }
    if is_loky_resource_tracker(argv) {
        return ProcRole::LokyResourceTracker;
    }
    if is_resource_tracker(argv) {
        return ProcRole::ResourceTracker;
    }
    if is_forkserver(argv) {
        return ProcRole::Forkserver;
    }
    if is_spawn_child(argv) {
        return if listens {
            ProcRole::ManagerServer
        } else if let Some(hint) = input.stack_hint {
            hint.role()
        } else {
            ProcRole::SpawnChild
        };
    }
    if is_shell(argv) {
        return ProcRole::Shell;
    }
    ProcRole::Process
}

/// The role of a process of the TUI's state, by the same [`classify`] as `inspect`. Whether
/// it exec'd is known only when its birth came from an exact source (engine, kernel, ptrace);
/// `listening` (the Unix sockets it listens on, read off the render path) is what makes a
/// `Manager` server one, `stack_hint` (from its Python stack) a Pool or executor worker.
pub fn role_in_state(
    state: &State,
    id: ProcId,
    listening: &[String],
    stack_hint: Option<StackHint>,
) -> ProcRole {
    let Some(proc) = state.procs.get(&id) else {
        return ProcRole::Process;
    };
    let parent = proc.parent.and_then(|p| state.procs.get(&p));
    let exact = matches!(
        proc.source,
        TrackSource::Engine | TrackSource::Kernel | TrackSource::Ptrace
    );
    classify(&RoleInput {
        argv: &proc.argv,
        parent_argv: parent.map(|p| p.argv.as_slice()),
        is_worker: matches!(proc.origin, Origin::Worker { .. }),
        execed: exact.then_some(!proc.execs.is_empty()),
        listening,
        stack_hint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    const PY: &str = "/usr/bin/python3";

    #[test]
    fn python_helpers_from_real_argv() {
        let tracker = v(&[
            PY,
            "-B",
            "-c",
            "from multiprocessing.resource_tracker import main;main(3)",
        ]);
        let forkserver = v(&[
            PY,
            "-B",
            "-c",
            "from multiprocessing.forkserver import main; main(3, 5, ['__main__'], \
             **{'sys_path': ['/tmp'], 'main_path': '/tmp/mp.py'})",
        ]);
        let spawn = v(&[
            PY,
            "-B",
            "-c",
            "from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, \
             pipe_handle=7)",
            "--multiprocessing-fork",
        ]);
        let main = v(&[PY, "app.py"]);
        let role = |argv: &[String], parent: Option<&[String]>, execed: Option<bool>| {
            classify(&RoleInput {
                argv,
                parent_argv: parent,
                execed,
                ..Default::default()
            })
        };
        assert_eq!(
            role(&tracker, Some(&main), Some(true)),
            ProcRole::ResourceTracker
        );
        assert_eq!(role(&forkserver, Some(&main), None), ProcRole::Forkserver);
        assert_eq!(role(&spawn, Some(&main), Some(true)), ProcRole::SpawnChild);
        // A child the forkserver forked has the forkserver's argv and did not exec.
        assert_eq!(
            role(&forkserver, Some(&forkserver), Some(false)),
            ProcRole::ForkserverChild
        );
        assert_eq!(
            role(&forkserver, Some(&forkserver), None),
            ProcRole::ForkserverChild
        );
        assert_eq!(
            role(&main, Some(&forkserver), Some(false)),
            ProcRole::ForkserverChild
        );
        assert_eq!(role(&main, Some(&main), Some(false)), ProcRole::ForkChild);
        assert_eq!(role(&main, Some(&main), None), ProcRole::ForkChild);
        assert_eq!(role(&main, Some(&main), Some(true)), ProcRole::Process);
        let frozen = v(&["/opt/app/app", "--multiprocessing-fork", "pipe_handle=7"]);
        assert!(is_spawn_child(&frozen));
    }

    #[test]
    fn manager_server_is_the_child_listening_on_a_pymp_socket() {
        let main = v(&[PY, "app.py"]);
        let spawn = v(&[
            PY,
            "-c",
            "from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5, pipe_handle=7)",
            "--multiprocessing-fork",
        ]);
        let sockets = v(&["/tmp/pymp-k2j3h4g5/listener-abc123de"]);
        for (argv, execed) in [(&main, Some(false)), (&spawn, Some(true)), (&main, None)] {
            let role = classify(&RoleInput {
                argv,
                parent_argv: Some(&main),
                execed,
                listening: &sockets,
                ..Default::default()
            });
            assert_eq!(role, ProcRole::ManagerServer, "{argv:?}");
        }
        // The program itself listening there is not a Manager server.
        let role = classify(&RoleInput {
            argv: &main,
            parent_argv: Some(&v(&["bash"])),
            execed: Some(true),
            listening: &sockets,
            ..Default::default()
        });
        assert_eq!(role, ProcRole::Process);
        assert!(!is_mp_listener("/run/app.sock"));
        assert!(!is_mp_listener("listener-1"));
    }

    #[test]
    fn shells_workers_and_the_rest() {
        for shell in ["sh", "/bin/bash", "-bash", "/usr/bin/dash", "busybox"] {
            assert!(is_shell(&v(&[shell, "-c", "x"])), "{shell}");
        }
        assert!(!is_shell(&v(&["/usr/bin/shasum"])));
        assert!(!is_shell(&[]));
        let sh = v(&["sh", "-c", "sleep 1"]);
        let role = classify(&RoleInput {
            argv: &sh,
            is_worker: true,
            ..Default::default()
        });
        assert_eq!(role, ProcRole::Worker);
        let role = classify(&RoleInput {
            argv: &sh,
            execed: Some(true),
            ..Default::default()
        });
        assert_eq!(role, ProcRole::Shell);
        let sleep = v(&["/bin/sleep", "1"]);
        let role = classify(&RoleInput {
            argv: &sleep,
            parent_argv: Some(&sh),
            execed: Some(true),
            ..Default::default()
        });
        assert_eq!(role, ProcRole::Process);
        assert_eq!(ProcRole::ManagerServer.label(), "manager-server");
        assert_eq!(
            serde_json::to_value(ProcRole::ForkChild).unwrap(),
            "fork-child"
        );
        // Empty argv (a zombie) with an empty parent argv is not a fork child.
        let role = classify(&RoleInput {
            argv: &[],
            parent_argv: Some(&[]),
            ..Default::default()
        });
        assert_eq!(role, ProcRole::Process);
    }

    #[test]
    fn roles_from_the_event_stream() {
        use crate::model::{Event, EventBody, update};
        let mut state = State::new(10);
        let ev = |t, body| Event { t, body };
        let py = v(&[PY, "app.py"]);
        update(
            &mut state,
            &ev(
                0.1,
                EventBody::Spawn {
                    pid: 10,
                    ppid: 1,
                    pool: "p".into(),
                    worker: 0,
                    argv: py.clone(),
                    start_time: Some(1),
                    restarts: 0,
                },
            ),
        );
        for (pid, source) in [(11, TrackSource::Kernel), (12, TrackSource::Kernel)] {
            update(
                &mut state,
                &ev(
                    0.2,
                    EventBody::Fork {
                        pid,
                        ppid: 10,
                        start_time: Some(pid as u64),
                        source,
                    },
                ),
            );
        }
        update(
            &mut state,
            &ev(
                0.3,
                EventBody::Exec {
                    pid: 12,
                    argv: v(&[
                        PY,
                        "-B",
                        "-c",
                        "from multiprocessing.resource_tracker import main;main(5)",
                    ]),
                    source: TrackSource::Kernel,
                },
            ),
        );
        let role = |pid| role_in_state(&state, state.find_pid(pid).unwrap().id, &[], None);
        assert_eq!(role(10), ProcRole::Worker);
        // The fork child shows its parent's argv until it execs.
        assert_eq!(state.find_pid(11).unwrap().argv, py);
        assert_eq!(role(11), ProcRole::ForkChild);
        assert_eq!(role(12), ProcRole::ResourceTracker);
        // What makes a Manager server one in the TUI: the socket it listens on.
        let id = state.find_pid(11).unwrap().id;
        let sockets = v(&["/tmp/pymp-k2j3h4g5/listener-abc123de"]);
        assert_eq!(
            role_in_state(&state, id, &sockets, None),
            ProcRole::ManagerServer
        );
    }

    #[test]
    fn loky_workers_and_tracker_from_real_argv() {
        let worker = v(&[
            PY,
            "-m",
            "joblib.externals.loky.backend.popen_loky_posix",
            "--process-name",
            "LokyProcess-1",
            "--pipe",
            "14",
        ]);
        let tracker = v(&[
            PY,
            "-B",
            "-c",
            "from joblib.externals.loky.backend.resource_tracker import main; main(3, False)",
        ]);
        let plain = v(&[PY, "-m", "loky.backend.popen_loky_posix", "--pipe", "3"]);
        let main = v(&[PY, "app.py"]);
        let role = |argv: &[String]| {
            classify(&RoleInput {
                argv,
                parent_argv: Some(&main),
                execed: Some(true),
                ..Default::default()
            })
        };
        assert_eq!(role(&worker), ProcRole::LokyWorker);
        assert_eq!(role(&plain), ProcRole::LokyWorker);
        assert_eq!(role(&tracker), ProcRole::LokyResourceTracker);
        assert_eq!(role(&v(&[PY, "-m", "http.server"])), ProcRole::Process);
        assert_eq!(ProcRole::LokyWorker.label(), "loky-worker");
    }
}

#[cfg(test)]
#[path = "roles_stack_tests.rs"]
mod stack_tests;
