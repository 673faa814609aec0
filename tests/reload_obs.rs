//! Logs and metrics follow a reload of `forkscope up` (issue 13): a pool added with a `log` is
//! logged, a removed pool's last lines are kept and its file closed, a changed `log` takes
//! effect at once for workers that keep running and for the restarted workers of a changed
//! pool; every line of every worker is counted in exactly one file. In the scrape, an added
//! pool appears and a removed one is no longer reported. A log path that cannot be opened
//! refuses the reload.

mod common;

use std::path::Path;

use common::obs::{kept_lines, metrics_addr, scrape, split_line, value};
use common::*;
use serde_json::Value;

/// A worker that writes "PID N" every 50 ms and "PID bye" when asked to stop.
fn ticker(name: &str, tag: &str, log: &str) -> String {
    format!(
        "[[pool]]\nname = \"{name}\"\nshell = true\nstop_timeout = 5\nlog = \"{log}/{{pool}}-{{worker}}.log\"\n\
         command = '''trap 'echo \"$$ bye\"; exit 0' TERM; i=0; \
         while :; do i=$((i+1)); echo \"$$ {tag}$i\"; sleep 0.05; done'''\n\n"
    )
}

fn spawns<'a>(events: &'a [Value], pool: &str) -> Vec<&'a Value> {
    of_kind(events, "spawn")
        .into_iter()
        .filter(|s| s["pool"] == pool)
        .collect()
}

/// Output lines of `pid` among `events`.
fn said(events: &[Value], pid: i32) -> usize {
    output_of(events, pid, "stdout").len()
}

/// The lines of `pid` in the log `dir/name` (and its rotated files), in order; and how many
/// lines the file holds in all.
fn logged(dir: &Path, name: &str, pid: i32) -> (Vec<String>, usize) {
    let (lines, _) = kept_lines(&dir.join(name));
    let prefix = format!("{pid} ");
    let mine = lines
        .iter()
        .map(|l| split_line(l))
        .filter(|(stream, text)| *stream == "stdout" && text.starts_with(&prefix))
        .map(|(_, text)| text.to_string())
        .collect();
    (mine, lines.len())
}

/// Whether the process `pid` has `path` open.
fn has_open(pid: i32, path: &Path) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path))
}

#[test]
fn logs_follow_a_reload_and_every_line_is_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (old, new) = (dir.path().join("logs"), dir.path().join("logs2"));
    let config = write_config(
        dir.path(),
        &[
            ticker("keep", "", "logs"),
            ticker("gone", "", "logs"),
            ticker("edit", "", "logs"),
        ]
        .concat(),
    );
    let m = marker("reloadlogs");
    let mut fs = Forkscope::start(&m, &["up", "-f", &config, "--headless"]);
    let engine = fs.engine_pid();
    let talked = |events: &[Value], pool: &str, n: usize| {
        spawns(events, pool)
            .last()
            .is_some_and(|s| said(events, pid_of(s)) >= n)
    };
    fs.wait_until("every pool writing", secs(10.0), |e| {
        ["keep", "gone", "edit"].iter().all(|p| talked(e, p, 5))
    });
    // keep: only its log moves; edit: its command and log change; gone: removed; new: added.
    write_config(
        dir.path(),
        &[
            ticker("keep", "", "logs2"),
            ticker("edit", "v2-", "logs2"),
            ticker("new", "", "logs2"),
        ]
        .concat(),
    );
    fs.signal(libc::SIGHUP);
    let events = fs.wait_until("the new state, writing", secs(15.0), |e| {
        let Some(at) = e.iter().position(|e| kind(e) == "reload") else {
            return false;
        };
        let keep = spawns(e, "keep").first().map(|s| pid_of(s));
        spawns(e, "edit").len() == 2
            && talked(e, "edit", 5)
            && talked(e, "new", 5)
            && keep.is_some_and(|pid| said(&e[at..], pid) >= 5)
            && of_kind(e, "exit").iter().any(|x| x["pool"] == "gone")
    });
    let reload = of_kind(&events, "reload")[0].clone();
    assert_eq!(reload["ok"], true, "{reload}");
    assert_eq!(reload["changed"], serde_json::json!(["edit"]));
    // The files no worker writes any more are closed, the new ones open.
    wait_for("the old log files closed", secs(5.0), || {
        ["keep-0.log", "gone-0.log", "edit-0.log"]
            .iter()
            .all(|f| !has_open(engine, &old.join(f)))
    });
    assert!(has_open(engine, &new.join("keep-0.log")));
    fs.signal(libc::SIGTERM);
    let (_, events) = fs.finish_clean(secs(20.0));

    let reload_at = events
        .iter()
        .position(|e| kind(e) == "reload")
        .expect("reload");
    let lines = |pid: i32| lines_of(&events, pid, "stdout");
    let mut counted = std::collections::HashMap::<std::path::PathBuf, usize>::new();
    let mut take = |dir: &Path, name: &str, pid: i32| {
        let (mine, total) = logged(dir, name, pid);
        *counted.entry(dir.join(name)).or_default() += mine.len();
        (mine, total)
    };
    // keep ran throughout: its lines before the reload in the old file, after it in the new.
    let keep = pid_of(spawns(&events, "keep")[0]);
    assert_eq!(spawns(&events, "keep").len(), 1, "keep was restarted");
    let (before, _) = take(&old, "keep-0.log", keep);
    let (after, _) = take(&new, "keep-0.log", keep);
    assert_eq!(before.len(), said(&events[..reload_at], keep));
    assert!(
        after.last().is_some_and(|l| l.ends_with("bye")),
        "{after:?}"
    );
    assert_eq!([before, after].concat(), lines(keep));
    // gone's last lines, written while it stopped, are in its file.
    let gone = pid_of(spawns(&events, "gone")[0]);
    let (kept, _) = take(&old, "gone-0.log", gone);
    assert!(kept.last().is_some_and(|l| l.ends_with("bye")), "{kept:?}");
    assert_eq!(kept, lines(gone));
    assert!(!new.join("gone-0.log").exists());
    // edit: the stopped worker's lines in the old file, its successor's in the new one.
    let edits: Vec<i32> = spawns(&events, "edit").into_iter().map(pid_of).collect();
    assert_eq!(take(&old, "edit-0.log", edits[0]).0, lines(edits[0]));
    assert_eq!(take(&new, "edit-0.log", edits[1]).0, lines(edits[1]));
    assert!(lines(edits[1])[0].contains(" v2-"));
    let fresh = pid_of(spawns(&events, "new")[0]);
    assert_eq!(take(&new, "new-0.log", fresh).0, lines(fresh));
    // No other line anywhere: each file holds exactly the lines counted above.
    for (path, n) in &counted {
        let (all, _) = kept_lines(path);
        assert_eq!(all.len(), *n, "{}", path.display());
        assert!(*n > 0, "{} is empty", path.display());
    }
}

#[test]
fn a_scrape_follows_a_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sleeper = |name: &str, workers: u32| {
        format!(
            "[[pool]]\nname = \"{name}\"\ncommand = [\"sleep\", \"600\"]\nworkers = {workers}\n\n"
        )
    };
    let config = write_config(
        dir.path(),
        &[sleeper("stay", 1), sleeper("gone", 2)].concat(),
    );
    let m = marker("reloadmetrics");
    let mut fs = Forkscope::start(
        &m,
        &[
            "up",
            "-f",
            &config,
            "--headless",
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let addr = metrics_addr(&fs);
    fs.wait_kind("spawn", 3, secs(10.0));
    let body = scrape(&addr);
    let up = |body: &str, pool: &str, worker: u32| {
        value(
            body,
            "forkscope_worker_up",
            &format!("pool=\"{pool}\",worker=\"{worker}\""),
        )
    };
    assert_eq!(up(&body, "gone", 1), Some(1.0), "{body}");
    assert_eq!(
        value(&body, "forkscope_pool_size", "pool=\"gone\""),
        Some(2.0)
    );
    write_config(
        dir.path(),
        &[sleeper("stay", 2), sleeper("fresh", 2)].concat(),
    );
    fs.signal(libc::SIGHUP);
    fs.wait_until("gone stopped and fresh started", secs(15.0), |e| {
        of_kind(e, "exit")
            .iter()
            .filter(|x| x["pool"] == "gone")
            .count()
            == 2
            && spawns(e, "fresh").len() == 2
            && spawns(e, "stay").len() == 2
    });
    let body = scrape(&addr);
    for worker in 0..2 {
        assert_eq!(up(&body, "fresh", worker), Some(1.0), "{body}");
        assert_eq!(up(&body, "stay", worker), Some(1.0), "{body}");
    }
    assert_eq!(
        value(&body, "forkscope_pool_size", "pool=\"fresh\""),
        Some(2.0),
        "{body}"
    );
    assert_eq!(
        value(&body, "forkscope_pool_size", "pool=\"stay\""),
        Some(2.0),
        "{body}"
    );
    assert!(!body.contains("pool=\"gone\""), "{body}");
    fs.signal(libc::SIGTERM);
    fs.finish_clean(secs(20.0));
}

#[test]
fn a_log_that_cannot_be_opened_refuses_the_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &ticker("only", "", "logs"));
    let m = marker("reloadbadlog");
    let mut fs = Forkscope::start(&m, &["up", "-f", &config, "--headless"]);
    let first = fs.wait_kind("spawn", 1, secs(10.0));
    // A directory where the new pool's file would be.
    std::fs::create_dir_all(dir.path().join("taken/more-0.log")).expect("mkdir");
    write_config(
        dir.path(),
        &[ticker("only", "", "logs"), ticker("more", "", "taken")].concat(),
    );
    fs.signal(libc::SIGHUP);
    let reload = fs.wait_event("the reload", secs(10.0), |e| kind(e) == "reload");
    assert_eq!(reload["ok"], false, "{reload}");
    assert!(
        reload["error"]
            .as_str()
            .is_some_and(|e| e.contains("more-0.log")),
        "{reload}"
    );
    fs.signal(libc::SIGTERM);
    let (_, events) = fs.finish_clean(secs(20.0));
    assert_eq!(of_kind(&events, "spawn").len(), 1, "{}", dump(&events));
    assert_eq!(pid_of(&first[0]), pid_of(of_kind(&events, "spawn")[0]));
}
