//! The Python demos, headless: each runs to its end quickly (`--pace 0.1`), its lesson steps
//! come in order, and its events prove the concept happened. What is certain is asserted
//! exactly; what depends on scheduling (lost updates, speedup) only within its bounds.

mod common;

use common::*;
use serde_json::Value;

/// Events of one headless run and the engine's pid.
struct Run {
    events: Vec<Value>,
    engine: i32,
    stderr: String,
}

/// Runs `forkscope demo NAME --headless --pace 0.1 EXTRA...` (EXTRA may set its own
/// `--pace`) to its end; the demo must exit 0.
fn run_demo(name: &str, extra: &[&str]) -> Run {
    let m = marker(&format!("demo_{}", name.replace('-', "_")));
    let mut args = vec!["demo", name, "--headless"];
    if !extra.contains(&"--pace") {
        args.extend(["--pace", "0.1"]);
    }
    args.extend_from_slice(extra);
    let mut fs = Forkscope::start(&m, &args);
    let engine = fs.engine_pid();
    // A loaded 2-core machine runs these in 2-10 s; the margin is for CI under load.
    let (code, events) = fs.finish_clean(secs(120.0));
    let stderr = fs.stderr();
    assert_eq!(code, 0, "demo {name}: {stderr}\n{}", dump(&events));
    Run {
        events,
        engine,
        stderr,
    }
}

impl Run {
    /// Every stdout line, in order.
    fn lines(&self) -> Vec<String> {
        of_kind(&self.events, "output")
            .iter()
            .filter(|e| e["stream"] == "stdout")
            .map(|e| e["line"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// The one line containing `needle`.
    fn line(&self, needle: &str) -> String {
        let found: Vec<String> = self
            .lines()
            .into_iter()
            .filter(|l| l.contains(needle))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one line with {needle:?}: {:#?}",
            self.lines()
        );
        found[0].clone()
    }

    /// Where the first stdout line containing `needle` (or the step titled `needle`) is in
    /// the stream of the worker's stdout pipe. Run with `--no-python-hooks`, every process of
    /// a Python demo writes whole lines into that one pipe, so this order is the order the
    /// lines were written in (with the hooks, each child has a pipe of its own).
    fn written_at(&self, needle: &str) -> usize {
        self.events
            .iter()
            .filter(|e| (kind(e) == "output" && e["stream"] == "stdout") || kind(e) == "step")
            .position(|e| {
                e["line"].as_str().is_some_and(|l| l.contains(needle)) || e["title"] == needle
            })
            .unwrap_or_else(|| panic!("nothing written with {needle:?}: {:#?}", self.lines()))
    }

    /// The time of the output event whose line contains `needle` (the first one).
    fn t_of(&self, needle: &str) -> f64 {
        of_kind(&self.events, "output")
            .iter()
            .find(|e| e["line"].as_str().unwrap_or("").contains(needle))
            .and_then(|e| e["t"].as_f64())
            .unwrap_or_else(|| panic!("no line with {needle:?}: {:#?}", self.lines()))
    }

    /// The worker (the demo's main Python process).
    fn worker(&self) -> i32 {
        let workers = spawned_pids(&self.events);
        assert_eq!(workers.len(), 1);
        workers[0]
    }

    fn exit(&self, pid: i32) -> Value {
        exit_of(&self.events, pid)
            .unwrap_or_else(|| panic!("no exit for {pid}: {}", dump(&self.events)))
    }

    /// The steps came in order, numbered from 1, with these titles, none held (headless).
    fn assert_steps(&self, titles: &[&str]) {
        let steps = of_kind(&self.events, "step");
        let seen: Vec<(i64, &str)> = steps
            .iter()
            .map(|s| {
                (
                    s["n"].as_i64().unwrap_or(0),
                    s["title"].as_str().unwrap_or(""),
                )
            })
            .collect();
        let wanted: Vec<(i64, &str)> = titles
            .iter()
            .enumerate()
            .map(|(i, t)| (i as i64 + 1, *t))
            .collect();
        assert_eq!(seen, wanted);
        assert!(
            steps
                .iter()
                .all(|s| s["held"] == false && pid_of(s) == self.worker())
        );
        assert!(
            !self.lines().iter().any(|l| l.contains("@@forkscope-step")),
            "step lines are steps, not output"
        );
    }
}

/// The number after `key` in `line` (`"counter = 12 of"`, key `"counter = "` → 12).
fn number_after(line: &str, key: &str) -> i64 {
    let rest = &line[line
        .find(key)
        .unwrap_or_else(|| panic!("{key:?} in {line:?}"))
        + key.len()..];
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("a number after {key:?} in {line:?}"))
}

#[test]
fn process_forks_and_joins() {
    let run = run_demo("process", &[]);
    run.assert_steps(&[
        "A child process",
        "join() and exitcode",
        "fork() returned twice",
    ]);
    let child = number_after(&run.line("after start():"), "pid=") as i32;
    assert_eq!(run.exit(child)["code"], 0);
    assert_eq!(run.exit(child)["ppid"], run.worker());
    assert!(
        run.line("after join():")
            .contains("is_alive=False exitcode=0")
    );
    let forked_line = run.line("child:  fork() returned 0");
    assert!(forked_line.contains("x + 1 = 11"), "{forked_line}");
    let forked = number_after(&forked_line, "(pid ") as i32;
    let parent_line = run.line("parent: fork() returned");
    assert_eq!(number_after(&parent_line, "returned "), forked as i64);
    assert!(parent_line.contains("x - 1 = 9"), "{parent_line}");
    assert_eq!(run.exit(forked)["code"], 0);
}

#[test]
fn endings_report_exitcode_and_shell_status() {
    let run = run_demo("endings", &[]);
    run.assert_steps(&["Six children, six endings", "exitcode and $?"]);
    for (label, python, shell, signal) in [
        ("sys.exit(3)", 3, 3, None),
        ("exception", 1, 1, None),
        ("terminate()", -15, 143, Some("SIGTERM")),
        ("kill()", -9, 137, Some("SIGKILL")),
        ("segfault", -11, 139, Some("SIGSEGV")),
        ("clean exit", 0, 0, None),
    ] {
        let row = run
            .lines()
            .into_iter()
            .find(|l| l.starts_with(label) && !l.contains("calling"))
            .unwrap_or_else(|| panic!("no row for {label}"));
        let numbers: Vec<i64> = row[label.len()..]
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(numbers[1..], [python, shell], "{row}");
        let exit = run.exit(numbers[0] as i32);
        assert_eq!(exit["python_exitcode"], python, "{label}: {exit}");
        assert_eq!(exit["shell_status"], shell, "{label}: {exit}");
        assert_eq!(exit["signal"].as_str(), signal, "{label}");
    }
    assert!(run.stderr.is_empty() || !run.stderr.contains("panicked"));
}

#[test]
fn pool_matches_the_serial_results() {
    let run = run_demo("pool", &[]);
    run.assert_steps(&[
        "Serial against parallel",
        "The pool's workers",
        "ProcessPoolExecutor",
    ]);
    assert!(run.line("speedup").ends_with("same results: True"));
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
    let used = number_after(&run.line("Pool.map used"), "used ");
    assert!((1..=cpus).contains(&used), "{used} workers of {cpus}");
    assert!(run.line("apply_async returned").contains("ApplyResult"));
    assert!(run.line("get() waited").ends_with("True"));
    let order = run.line("completed in the order");
    let mut done: Vec<i64> = order[order.find('[').unwrap() + 1..order.len() - 1]
        .split(", ")
        .map(|n| n.parse().unwrap())
        .collect();
    done.sort();
    assert_eq!(done, [0, 1, 2, 3], "every future completed once");
    // Pool(cpus) twice (map, then the executor): at least cpus + 1 children forked.
    assert!(of_kind(&run.events, "fork").len() as i64 > cpus);
}

#[test]
fn queue_consumes_every_item_once_and_pills_end_the_consumers() {
    // One shared pipe: `written_at` compares lines of different processes.
    let run = run_demo("queue", &["--no-python-hooks"]);
    run.assert_steps(&[
        "Producers and consumers",
        "Blocked in get()",
        "Poison pills",
    ]);
    let mut items: Vec<String> = run
        .lines()
        .iter()
        .filter_map(|l| l.split(" got ").nth(1).map(str::to_string))
        .filter(|item| !item.contains("poison"))
        .collect();
    items.sort();
    let wanted: Vec<String> = ["a", "b"]
        .iter()
        .flat_map(|p| (0..5).map(move |i| format!("{p}-{i}")))
        .collect();
    assert_eq!(items, wanted);
    assert!(
        run.line("consumed 10 items")
            .ends_with("each exactly once: True")
    );
    // The consumers were blocked in get() at the step: each leaves only on a pill, and the
    // pills are put after the step line was written.
    let blocked = run.written_at("Blocked in get()");
    let consumers: Vec<i32> = run
        .lines()
        .iter()
        .filter(|l| l.starts_with("consumer pid "))
        .map(|l| number_after(l, "consumer pid ") as i32)
        .collect();
    assert_eq!(consumers.len(), 2);
    for pid in consumers {
        assert_eq!(run.exit(pid)["code"], 0);
        let pill = run.written_at(&format!("(pid {pid}): got the poison pill"));
        assert!(pill > blocked, "consumer {pid} left before the pills");
    }
}

#[test]
fn pipe_pipeline_sums_and_the_hang_ends_on_eof() {
    // One shared pipe for every process of the demo, so the order of lines is the order they
    // were written (with the Python hooks each child has its own pipe, and lines of different
    // pipes read in one turn of the engine are in no particular order).
    let run = run_demo("pipe", &["--no-python-hooks"]);
    run.assert_steps(&["A pipeline", "A hang", "EOF ends the hang"]);
    assert!(
        run.lines()
            .iter()
            .any(|l| l.ends_with("sum of the squares = 55"))
    );
    assert!(run.line("pipeline done").ends_with("[0, 0, 0]"));
    let square = number_after(&run.line("square is pid"), "square is pid ") as i32;
    assert!(
        run.line("recv() raised EOFError")
            .contains(&square.to_string())
    );
    assert!(
        run.written_at("recv() raised EOFError") > run.written_at("A hang"),
        "square stayed hung until the parent closed its end, after the step"
    );
    assert_eq!(run.exit(square)["code"], 0);
    assert!(run.line("hung pipeline ended").ends_with("[0, 0]"));
}

#[test]
fn shared_counts_exactly_with_the_lock_and_reports_lost_updates_without() {
    let run = run_demo("shared", &[]);
    run.assert_steps(&["A race", "The lock", "Shared memory, live"]);
    let expected = 4 * 20_000;
    let unlocked = run.line("without the lock");
    let counted = number_after(&unlocked, "counter = ");
    assert!((1..=expected).contains(&counted), "{unlocked}");
    assert_eq!(
        number_after(&unlocked, "lost updates: "),
        expected - counted
    );
    let locked = run.line("with the lock:");
    assert_eq!(number_after(&locked, "counter = "), expected, "{locked}");
    assert_eq!(number_after(&locked, "lost updates: "), 0);
    for line in [unlocked, locked] {
        assert!(line.ends_with("[20000, 20000, 20000, 20000]"), "{line}");
    }
    assert!(
        run.line("after the child:")
            .ends_with("[10, 'tick 10', 2.5]")
    );
    let created = run.line("ShareableList in /dev/shm/");
    let name = created["ShareableList in /dev/shm/".len()..]
        .split(':')
        .next()
        .unwrap();
    assert!(
        !std::path::Path::new("/dev/shm").join(name).exists(),
        "{name} unlinked"
    );
}

#[test]
fn sync_barrier_releases_everyone_only_when_the_late_party_arrives() {
    let run = run_demo("sync", &[]);
    run.assert_steps(&[
        "A barrier with a late party",
        "An Event",
        "Semaphore(2)",
        "A lock held too long",
    ]);
    let lines = run.lines();
    let position = |needle: &str| lines.iter().position(|l| l.contains(needle)).unwrap();
    let late = position("late C (pid");
    let late_clock: f64 = lines[late].rsplit(' ').next().unwrap().parse().unwrap();
    let passed: Vec<usize> = (0..lines.len())
        .filter(|i| lines[*i].contains(" passed at "))
        .collect();
    assert_eq!(passed.len(), 3, "{lines:#?}");
    // Each process writes through a pipe of its own, so lines of different processes may
    // come out of order: the clocks they print (one monotonic clock, read before the print)
    // say what happened first.
    for i in passed {
        let clock: f64 = lines[i].rsplit(' ').next().unwrap().parse().unwrap();
        assert!(
            clock >= late_clock,
            "passed before the late party arrived: {} / {}",
            lines[i],
            lines[late]
        );
    }
    assert_eq!(lines.iter().filter(|l| l.ends_with("woke up")).count(), 3);
    let most = number_after(&run.line("semaphore:"), "at most ");
    assert!((1..=2).contains(&most), "Semaphore(2) let {most} in");
    assert!(position("lock: slow") < position("lock: quick"));
}

#[test]
fn manager_dict_lives_in_its_server_process() {
    let run = run_demo("manager", &[]);
    run.assert_steps(&[
        "The manager is a process",
        "Workers share the dict",
        "Shutting down",
    ]);
    let server = number_after(&run.line("manager server process"), "pid ") as i32;
    let fork = of_kind(&run.events, "fork")
        .into_iter()
        .find(|e| pid_of(e) == server)
        .expect("the manager's fork");
    assert_eq!(fork["ppid"], run.worker());
    assert!(
        run.line("the dict after the workers")
            .ends_with("{'a': 3, 'b': 3, 'c': 3, 'total': 9}")
    );
    assert!(run.line("manager stopped").ends_with("alive: False"));
    assert!(run.exit(server)["code"].is_number(), "the server ended");
}

#[test]
fn start_methods_show_the_resource_tracker_and_it_cleans_the_leak() {
    let run = run_demo("start-methods", &[]);
    run.assert_steps(&[
        "Start method: fork",
        "Start method: spawn",
        "Start method: forkserver",
        "A leak",
    ]);
    let execs: Vec<Vec<String>> = of_kind(&run.events, "exec")
        .iter()
        .map(|e| serde_json::from_value(e["argv"].clone()).unwrap())
        .collect();
    assert!(
        execs
            .iter()
            .any(|a| forkscope::model::roles::is_resource_tracker(a)),
        "a resource tracker: {execs:?}"
    );
    assert!(
        execs
            .iter()
            .any(|a| forkscope::model::roles::is_forkserver(a))
    );
    assert!(
        run.line("fork: child")
            .ends_with("inherited the parent's memory")
    );
    assert!(run.line("spawn: child").ends_with("re-imported this file"));
    let leak = run.line("leak: created /dev/shm/");
    let name = leak["leak: created /dev/shm/".len()..]
        .split(' ')
        .next()
        .unwrap();
    let path = std::path::Path::new("/dev/shm").join(name);
    let cleaned = !path.exists();
    let _ = std::fs::remove_file(&path);
    assert!(cleaned, "the resource tracker unlinks {name}");
    assert!(run.stderr.is_empty() || !run.stderr.contains("panicked"));
    let warned = of_kind(&run.events, "output")
        .iter()
        .any(|e| e["stream"] == "stderr" && e["line"].as_str().unwrap_or("").contains("leaked"));
    assert!(
        warned,
        "the tracker says it cleaned up: {}",
        dump(&run.events)
    );
}

#[test]
fn zombie_stays_until_waited_and_the_orphan_is_adopted_by_forkscope() {
    // --pace 0.5: the zombie then lasts 1 s, the margin for the engine to report its exit
    // (kernel source) before it reads the parent's "reaped" line on a loaded machine.
    let run = run_demo("zombie-orphan", &["--pace", "0.5"]);
    run.assert_steps(&["A zombie", "An orphan"]);
    let zombie = number_after(&run.line("has exited with 7"), "child ") as i32;
    let exit = run.exit(zombie);
    assert_eq!(exit["code"], 7);
    let reaped = run.t_of(&format!("reaped {zombie}"));
    let track = of_kind(&run.events, "session")[0]["track"].clone();
    if track == "kernel" || track == "ptrace" {
        // These sources learn the exit when the process becomes a zombie, not at the reap.
        assert!(
            exit["t"].as_f64().unwrap() < reaped,
            "{exit} before the reap at {reaped}"
        );
        // Shown as a zombie from its exit until its parent's wait: one `reap`, by the parent.
        assert_eq!(exit["zombie"], true, "{exit}");
        let reaps: Vec<&Value> = of_kind(&run.events, "reap")
            .into_iter()
            .filter(|r| r["pid"] == zombie)
            .collect();
        assert_eq!(reaps.len(), 1, "{}", dump(&run.events));
        assert_eq!(reaps[0]["by"], exit["ppid"]);
        assert!(reaps[0]["t"].as_f64().unwrap() >= exit["t"].as_f64().unwrap());
        let worker_end = run.exit(run.worker())["t"].as_f64().unwrap();
        assert!(
            exit["t"].as_f64().unwrap() < worker_end,
            "the zombie ended while its parent ran"
        );
    }
    let adopted = run.line("my parent is now pid");
    assert_eq!(
        number_after(&adopted, "my parent is now pid "),
        run.engine as i64
    );
    let orphan = number_after(&adopted, "orphan ") as i32;
    assert_eq!(run.exit(orphan)["code"], 0);
    assert!(run.written_at("orphan: gone") > run.written_at("my parent is now pid"));
}

#[test]
fn auto_releases_each_step_before_the_next() {
    let run = run_demo("queue", &["--auto", "0.05"]);
    let lesson: Vec<(&str, i64, &str)> = run
        .events
        .iter()
        .filter(|e| kind(e) == "step" || kind(e) == "step_release")
        .map(|e| {
            (
                kind(e),
                e["n"].as_i64().unwrap(),
                e["by"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        lesson,
        [
            ("step", 1, ""),
            ("step_release", 1, "auto"),
            ("step", 2, ""),
            ("step_release", 2, "auto"),
            ("step", 3, ""),
            ("step_release", 3, "auto"),
        ]
    );
    assert!(
        of_kind(&run.events, "step")
            .iter()
            .all(|s| s["held"] == true)
    );
    // Held: nothing the demo does after a step happens before its release.
    let released = of_kind(&run.events, "step_release")[1]["t"]
        .as_f64()
        .unwrap();
    assert!(run.t_of("poison pill (None) per consumer") >= released);
}

#[test]
fn list_print_and_missing_python() {
    let out = common::command_output(
        std::process::Command::new(bin()).args(["demo", "--list"]),
        common::secs(60.0),
    );
    let list = String::from_utf8_lossy(&out.stdout);
    for demo in forkscope::demo::python::PY_DEMOS {
        let line = list
            .lines()
            .find(|l| l.split_whitespace().next() == Some(demo.name))
            .unwrap_or_else(|| panic!("{} missing from\n{list}", demo.name));
        assert!(line.contains(demo.summary));
        let printed = common::command_output(
            std::process::Command::new(bin()).args(["demo", demo.name, "--print"]),
            common::secs(60.0),
        );
        assert!(printed.status.success());
        assert_eq!(String::from_utf8_lossy(&printed.stdout), demo.source);
    }
    let empty = tempfile::tempdir().unwrap();
    let out = common::command_output(
        std::process::Command::new(bin())
            .args(["demo", "pool", "--headless"])
            .env("PATH", empty.path()),
        common::secs(60.0),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("python3") && err.contains("install Python 3"),
        "{err}"
    );
    // The built-in tour needs no Python.
    let out = common::command_output(
        std::process::Command::new(bin())
            .args(["demo", "--print"])
            .env("PATH", empty.path()),
        common::secs(60.0),
    );
    assert!(out.status.success());
}

#[test]
fn a_teachers_own_file_runs_with_steps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.py");
    std::fs::write(
        &path,
        "import json, os\nfd = os.environ.pop('FORKSCOPE_STEP_FD', None)\n\
         print('@@forkscope-step ' + json.dumps({'title': 'mine'}), flush=True)\n\
         fd and os.read(int(fd), 1)\nprint('after the step', flush=True)\n",
    )
    .unwrap();
    let path = path.to_string_lossy().into_owned();
    let run = run_demo(&path, &["--auto", "0.01"]);
    assert_eq!(of_kind(&run.events, "step")[0]["title"], "mine");
    assert_eq!(of_kind(&run.events, "step_release").len(), 1);
    assert_eq!(run.lines(), ["after the step"]);
}
