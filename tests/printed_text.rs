//! Text forkscope prints outside the TUI (the end-of-session summary, errors) cannot carry a
//! process's escape sequences to the terminal: any process chooses its own argv.

mod common;

use common::tui::{Tmux, forkscope, wait_recorded};

/// Retitles the terminal and clears the screen if printed raw.
const HOSTILE: &str = r"$(printf 'X\033]0;PWNED\007\033[2J')";
/// How the summary shows it.
const SHOWN: &str = r"X\e]0;PWNED\a\e[2J";

#[test]
fn the_exit_summary_escapes_argv() {
    let tmux = Tmux::start(120, 30);
    let log = tmux.path("pane.bytes");
    tmux.type_line("clear");
    tmux.log_output(&log);
    let record = tmux.path("rec.jsonl");
    tmux.type_line(&format!(
        "{bin} run --record {rec} -- sh -c 'exit 3' \"{HOSTILE}\"; echo EXIT:$?",
        bin = forkscope(),
        rec = record.display()
    ));
    wait_recorded(&record, "exit", 1, 15);
    tmux.keys(&["q"]);
    let screen = tmux.wait_screen("quit asked or done", 10, |s| {
        s.contains("Quit?") || s.contains("EXIT:")
    });
    if !screen.contains("EXIT:") {
        tmux.keys(&["y"]);
    }
    let screen = tmux.wait_screen("forkscope exit", 15, |s| {
        common::tui::shell_exit(s).is_some()
    });
    assert!(screen.contains(SHOWN), "argv shown escaped: {screen}");
    assert_ne!(tmux.pane_title(), "PWNED", "the terminal was retitled");
    let bytes = std::fs::read(&log).expect("pane log");
    let text = String::from_utf8_lossy(&bytes);
    let summary_at = text.find("process(es) seen").expect("summary in the log");
    let summary = &text[summary_at..];
    let end = summary.find("EXIT:").expect("exit after the summary");
    assert!(
        !summary[..end].contains('\x1b') && !summary[..end].contains('\x07'),
        "raw control bytes in the summary: {:?}",
        &summary[..end]
    );
    assert!(summary[..end].contains(SHOWN), "{:?}", &summary[..end]);
}

#[test]
fn errors_escape_what_they_quote() {
    // File names are anyone's choice too; the errors quote them.
    let hostile = "/nonexistent/X\x1b]0;PWNED\x07\x1b[2J";
    for args in [vec!["replay", hostile], vec!["up", "-f", hostile]] {
        let out = common::forkscope_output(&args);
        let all = [out.stdout.as_slice(), out.stderr.as_slice()].concat();
        let text = String::from_utf8_lossy(&all);
        assert!(
            !all.contains(&0x1b) && !all.contains(&0x07),
            "{args:?}: raw control bytes: {text:?}"
        );
        assert!(text.contains(SHOWN), "{args:?}: {text:?}");
    }
}

#[test]
fn inspect_escapes_argv() {
    let mut child = std::process::Command::new("sh")
        .args(["-c", "read -r _; :", "X\x1b]0;PWNED\x07\x1b[2J"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("sh starts");
    let pid = child.id().to_string();
    common::wait_for("argv in /proc", common::secs(10.0), || {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.contains(&0x1b))
    });
    let out = common::forkscope_output(&["inspect", &pid]);
    drop(child.stdin.take());
    let _ = child.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.stdout.contains(&0x1b), "raw ESC: {text:?}");
    assert!(text.contains(SHOWN), "{text:?}");
}
