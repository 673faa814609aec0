//! Unit tests of the wait naming, on stacks captured from real CPython 3.11 processes.

use super::*;
use proptest::prelude::*;

fn frame(function: &str, file: &str, line: u32) -> PyFrame {
    PyFrame {
        function: function.to_string(),
        file: file.to_string(),
        line,
    }
}

/// One captured stack: the name it must get, the innermost line's text, the frames.
struct Fixture {
    title: String,
    expected: Option<String>,
    line: Option<String>,
    frames: Vec<PyFrame>,
}

fn fixtures() -> Vec<Fixture> {
    let text = include_str!("fixtures/cpython311.txt");
    let mut all = Vec::new();
    for block in text.split("\n\n") {
        let mut fixture = Fixture {
            title: String::new(),
            expected: None,
            line: None,
            frames: Vec::new(),
        };
        for line in block.lines() {
            if let Some(title) = line.strip_prefix("# ") {
                fixture.title = title.to_string();
            } else if let Some(expected) = line.strip_prefix("= ") {
                fixture.expected = (expected != "-").then(|| expected.to_string());
            } else if let Some(source) = line.strip_prefix("> ") {
                fixture.line = Some(source.to_string());
            } else if let [function, file, number] = line.split('|').collect::<Vec<_>>()[..] {
                fixture
                    .frames
                    .push(frame(function, file, number.parse().expect("line")));
            }
        }
        if !fixture.frames.is_empty() {
            all.push(fixture);
        }
    }
    all
}

#[test]
fn captured_stacks_are_named() {
    let fixtures = fixtures();
    assert!(fixtures.len() >= 15, "{} fixtures", fixtures.len());
    for f in &fixtures {
        let named = name_wait(&f.frames, f.line.as_deref());
        assert_eq!(named, f.expected, "{}", f.title);
    }
}

#[test]
fn the_barrier_waiter_is_named_at_the_users_line() {
    let lib = "/usr/lib/python3.11";
    let frames = [
        frame(
            "Condition.wait",
            &format!("{lib}/multiprocessing/synchronize.py"),
            268,
        ),
        frame(
            "Condition.wait_for",
            &format!("{lib}/multiprocessing/synchronize.py"),
            320,
        ),
        frame("Barrier._wait", &format!("{lib}/threading.py"), 732),
        frame("Barrier.wait", &format!("{lib}/threading.py"), 697),
        frame("stage", "/home/me/train.py", 42),
        frame("<module>", "/home/me/train.py", 50),
    ];
    assert_eq!(
        name_wait(&frames, None).as_deref(),
        Some("Barrier.wait at train.py:42")
    );
}

#[test]
fn bare_names_before_python_3_11_match_when_unambiguous() {
    let lib = "/usr/lib/python3.9";
    let frames = [
        frame(
            "_recv",
            &format!("{lib}/multiprocessing/connection.py"),
            379,
        ),
        frame("recv", &format!("{lib}/multiprocessing/connection.py"), 250),
        frame("stage", "/srv/stage.py", 9),
    ];
    assert_eq!(
        name_wait(&frames, None).as_deref(),
        Some("Connection.recv at stage.py:9")
    );
    // `wait` in threading.py is Barrier, Condition or Event; `get` in queues.py is Queue or
    // SimpleQueue: not named.
    let ambiguous = [
        frame("wait", &format!("{lib}/threading.py"), 302),
        frame("main", "/srv/a.py", 3),
    ];
    assert_eq!(name_wait(&ambiguous, None), None);
    let ambiguous = [
        frame("get", &format!("{lib}/multiprocessing/queues.py"), 103),
        frame("main", "/srv/a.py", 3),
    ];
    assert_eq!(name_wait(&ambiguous, None), None);
}

#[test]
fn site_packages_are_the_users_code() {
    let frames = [
        frame("Queue.get", "/usr/lib/python3.11/queue.py", 171),
        frame("loop", "/usr/lib/python3.11/site-packages/lib/worker.py", 9),
    ];
    assert_eq!(
        name_wait(&frames, None).as_deref(),
        Some("Queue.get at worker.py:9")
    );
}

#[test]
fn a_running_user_frame_is_not_a_wait() {
    let frames = [frame("compute", "/home/me/job.py", 5)];
    assert_eq!(name_wait(&frames, Some("x = y * 2")), None);
    assert_eq!(name_wait(&frames, Some("# time.sleep(1) was here")), None);
    assert_eq!(name_wait(&[], Some("time.sleep(1)")), None);
}

#[test]
fn the_main_thread_names_the_process_wait() {
    let worker = ThreadStack {
        tid: Some(11),
        name: Some("worker".into()),
        frames: vec![frame("Queue.get", "/usr/lib/python3.11/queue.py", 171)],
        active: false,
        gil: false,
    };
    let main = ThreadStack {
        tid: Some(10),
        name: Some("MainThread".into()),
        frames: vec![frame("<module>", "/home/me/m.py", 3)],
        active: false,
        gil: false,
    };
    let threads = [worker.clone(), main.clone()];
    let named = process_wait(10, &threads, |_| Some("time.sleep(5)".into()));
    assert_eq!(named.as_deref(), Some("time.sleep at m.py:3"));
    // A running main thread: the other thread's wait.
    let running = ThreadStack {
        active: true,
        ..main
    };
    let named = process_wait(10, &[running, worker], |_| Some("time.sleep(5)".into()));
    assert_eq!(named.as_deref(), Some("Queue.get at queue.py:171"));
}

fn any_frame() -> impl Strategy<Value = PyFrame> {
    let files = prop_oneof![
        Just("/usr/lib/python3.11/threading.py".to_string()),
        Just("/usr/lib/python3.11/multiprocessing/queues.py".to_string()),
        Just("<frozen importlib._bootstrap>".to_string()),
        Just(String::new()),
        ".*",
    ];
    let functions = prop_oneof![
        Just("Barrier.wait".to_string()),
        Just("wait".to_string()),
        Just("get".to_string()),
        ".*",
    ];
    (functions, files, any::<u32>()).prop_map(|(function, file, line)| PyFrame {
        function,
        file,
        line,
    })
}

proptest! {
    #[test]
    fn garbage_stacks_never_panic(
        frames in proptest::collection::vec(any_frame(), 0..12),
        line in proptest::option::of(".*"),
        pid in any::<i32>(),
        tid in proptest::option::of(any::<u64>()),
        active in any::<bool>(),
    ) {
        let _ = name_wait(&frames, line.as_deref());
        let thread = ThreadStack { tid, name: None, frames, active, gil: false };
        let _ = process_wait(pid, &[thread], |_| line.clone());
    }
}
