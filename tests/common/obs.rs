//! What operators read from a session: its worker log files (rotated ones included) and its
//! `--metrics` scrapes; and config files written whole, as a reload must read them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};

use super::{Forkscope, kind, secs};

/// The lines of `base` and its rotated files, oldest first; and how many files there were
/// (none when `base` was never written).
pub fn kept_lines(base: &Path) -> (Vec<String>, usize) {
    let mut files: Vec<(u32, PathBuf)> = Vec::new();
    let dir = base.parent().expect("dir");
    let name = base
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (Vec::new(), 0);
    };
    for entry in entries {
        let entry = entry.expect("entry");
        let file = entry.file_name().to_string_lossy().into_owned();
        if file == name {
            files.push((0, entry.path()));
        } else if let Some(k) = file.strip_prefix(&format!("{name}.")) {
            files.push((k.parse().expect("numbered file"), entry.path()));
        }
    }
    files.sort_by_key(|(k, _)| std::cmp::Reverse(*k));
    let mut lines = Vec::new();
    for (_, path) in &files {
        let text = std::fs::read_to_string(path).expect("read log");
        lines.extend(text.lines().map(str::to_string));
    }
    (lines, files.len())
}

/// `2026-12-02T23:07:59.123Z stdout text` -> ("stdout", "text"), checking the timestamp.
pub fn split_line(line: &str) -> (&str, &str) {
    let mut parts = line.splitn(3, ' ');
    let stamp = parts.next().expect("stamp");
    let stream = parts.next().expect("stream");
    let text = parts.next().unwrap_or("");
    let b = stamp.as_bytes();
    assert!(
        stamp.len() == 24
            && b[4] == b'-'
            && b[10] == b'T'
            && b[19] == b'.'
            && b[23] == b'Z'
            && stamp.starts_with("20"),
        "not RFC 3339 with ms: {line:?}"
    );
    (stream, text)
}

/// GET /metrics from the session's address; returns the body.
pub fn scrape(addr: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the metrics address");
    stream
        .set_read_timeout(Some(secs(10.0)))
        .expect("read timeout");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("application/openmetrics-text"), "{head}");
    body.to_string()
}

/// The value of the sample `name{labels}` (labels in the order forkscope writes them).
pub fn value(body: &str, name: &str, labels: &str) -> Option<f64> {
    let key = if labels.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{labels}}}")
    };
    body.lines()
        .find_map(|line| line.strip_prefix(&key)?.strip_prefix(' ')?.parse().ok())
}

/// The bound `--metrics 127.0.0.1:0` address, from the `session` event.
pub fn metrics_addr(fs: &Forkscope) -> String {
    let session = fs.wait_event("the session event", secs(10.0), |e| kind(e) == "session");
    let addr = session["metrics"]
        .as_str()
        .expect("session.metrics")
        .to_string();
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "{addr}"
    );
    addr
}
