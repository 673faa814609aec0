//! Unit tests of the roles Python stacks give: Pool and executor workers.

use super::*;
use crate::model::pystack::{PyFrame, ThreadStack};

fn v(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

const PY: &str = "/usr/bin/python3";

fn thread(frames: &[(&str, &str)]) -> ThreadStack {
    ThreadStack {
        tid: Some(1),
        name: None,
        frames: frames
            .iter()
            .map(|(function, file)| PyFrame {
                function: function.to_string(),
                file: file.to_string(),
                line: 1,
            })
            .collect(),
        active: false,
        gil: false,
    }
}

#[test]
fn pool_and_executor_workers_from_their_stacks() {
    const LIB: &str = "/usr/lib/python3.11";
    let pool = thread(&[
        ("wait", &format!("{LIB}/threading.py")),
        ("get", &format!("{LIB}/multiprocessing/queues.py")),
        ("worker", &format!("{LIB}/multiprocessing/pool.py")),
        ("run", &format!("{LIB}/multiprocessing/process.py")),
        ("_bootstrap", &format!("{LIB}/multiprocessing/process.py")),
    ]);
    let executor = thread(&[
        ("get", &format!("{LIB}/multiprocessing/queues.py")),
        (
            "_process_worker",
            &format!("{LIB}/concurrent/futures/process.py"),
        ),
        ("run", &format!("{LIB}/multiprocessing/process.py")),
    ]);
    // The parent's helper threads live in the same files under other names.
    let parent = thread(&[
        ("_handle_workers", &format!("{LIB}/multiprocessing/pool.py")),
        ("run", &format!("{LIB}/concurrent/futures/process.py")),
        ("worker", "/srv/app/pool.py"),
    ]);
    assert_eq!(stack_hint(&[pool]), Some(StackHint::PoolWorker));
    assert_eq!(
        stack_hint(&[parent.clone(), executor]),
        Some(StackHint::ExecutorWorker)
    );
    assert_eq!(stack_hint(&[parent]), None);
    assert_eq!(stack_hint(&[]), None);

    let main = v(&[PY, "app.py"]);
    let spawn = v(&[
        PY,
        "-c",
        "from multiprocessing.spawn import spawn_main; spawn_main(pipe_handle=7)",
        "--multiprocessing-fork",
    ]);
    let forkserver = v(&[
        PY,
        "-c",
        "from multiprocessing.forkserver import main; main()",
    ]);
    let role = |argv: &[String], parent: &[String], execed, hint| {
        classify(&RoleInput {
            argv,
            parent_argv: Some(parent),
            execed,
            stack_hint: hint,
            ..Default::default()
        })
    };
    let pool = Some(StackHint::PoolWorker);
    let executor = Some(StackHint::ExecutorWorker);
    assert_eq!(role(&main, &main, Some(false), pool), ProcRole::PoolWorker);
    assert_eq!(role(&main, &main, None, executor), ProcRole::ExecutorWorker);
    assert_eq!(role(&spawn, &main, Some(true), pool), ProcRole::PoolWorker);
    assert_eq!(
        role(&forkserver, &forkserver, Some(false), executor),
        ProcRole::ExecutorWorker
    );
    // argv-based roles keep priority; a program that exec'd is not a worker.
    assert_eq!(
        role(&forkserver, &main, Some(true), pool),
        ProcRole::Forkserver
    );
    assert_eq!(
        role(&main, &v(&["sh"]), Some(true), pool),
        ProcRole::Process
    );
    let sockets = v(&["/tmp/pymp-k2j3h4g5/listener-abc123de"]);
    let listening = classify(&RoleInput {
        argv: &main,
        parent_argv: Some(&main),
        execed: Some(false),
        listening: &sockets,
        stack_hint: pool,
        ..Default::default()
    });
    assert_eq!(listening, ProcRole::ManagerServer);
    assert_eq!(ProcRole::PoolWorker.label(), "pool-worker");
    assert_eq!(ProcRole::ExecutorWorker.label(), "executor-worker");
}
