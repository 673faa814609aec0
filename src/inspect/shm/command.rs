//! `forkscope shm ls` and `forkscope shm show`: discovery and decoding for scripts and tests.
//! Exit status: 0, 1 for an unknown segment or a read/decode failure, 2 for bad flags (clap) or
//! a bad config file (`shm show -f FILE`, or ./forkscope.toml, whose `[[shm.layout]]` rules
//! pick the decoder when `--as` is auto).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::decode::rules::FormatRule;
use super::decode::{self, hex};
use super::discover::{Scope, discover, discover_reporting, find};
use super::read::read_segment;
use crate::model::printable;
use crate::model::shm::{Decoded, Segment};

/// Appends a line to the output buffer (writing to a String cannot fail).
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}

/// A `shm` subcommand as the command line asks for it (`cli.rs` builds it from its flags).
#[derive(Clone, Debug)]
pub enum ShmRequest {
    Ls(LsRequest),
    Show(ShowRequest),
}

/// `shm ls`.
#[derive(Clone, Debug)]
pub struct LsRequest {
    /// Only segments the tree under this pid maps or holds (`None`: the whole system).
    pub pid: Option<i32>,
    pub json: bool,
}

/// `shm show`.
#[derive(Clone, Debug)]
pub struct ShowRequest {
    /// A name or an inode.
    pub segment: String,
    pub pid: Option<i32>,
    pub format: decode::Format,
    /// The config file whose layout rules apply (`None`: ./forkscope.toml if it exists).
    pub config: Option<PathBuf>,
    pub max_bytes: u64,
    pub json: bool,
}

/// Runs a `shm` subcommand; returns the exit status. Output is written at the end in one
/// go; a closed pipe (`| head`) is not an error.
/// The `[[shm.layout]]` rules of a config file (`None`: ./forkscope.toml if it exists), or
/// why the file is refused: given by the caller, since the config file sits above `inspect`.
pub type LayoutRules<'a> = &'a dyn Fn(Option<&Path>) -> Result<Vec<FormatRule>, String>;

pub fn run(request: &ShmRequest, layout_rules: LayoutRules) -> anyhow::Result<i32> {
    let mut out = String::new();
    let (code, json) = match request {
        ShmRequest::Ls(args) => (ls(args, &mut out)?, args.json),
        ShmRequest::Show(args) => (show(args, layout_rules, &mut out)?, args.json),
    };
    // Names and contents come from other processes: nothing reaches the terminal raw.
    let out = if json {
        printable::json(&out)
    } else {
        printable::lines(&out)
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(code),
    }
}

fn scope(pid: Option<i32>) -> Result<Scope, String> {
    match pid {
        None => Ok(Scope::System),
        Some(pid) if std::path::Path::new(&format!("/proc/{pid}")).exists() && pid > 0 => {
            Ok(Scope::Tree(pid))
        }
        Some(pid) => Err(format!("no process with pid {pid}")),
    }
}

/// One `shm ls --json` entry (and one of `inspect --json`'s `shm` list).
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub name: String,
    pub kind: &'static str,
    pub inode: u64,
    pub device: String,
    pub size: u64,
    pub deleted: bool,
    pub pids: Vec<i32>,
}

impl From<&Segment> for Summary {
    fn from(s: &Segment) -> Self {
        Summary {
            name: s.name.clone(),
            kind: s.kind.as_str(),
            inode: s.inode,
            device: s.device.clone(),
            size: s.size,
            deleted: s.deleted,
            pids: s.pids.clone(),
        }
    }
}

/// The `shm` list of a scope, as `shm ls --json` and `inspect --json` print it.
pub fn summaries(segments: &[Segment]) -> Vec<Summary> {
    segments.iter().map(Summary::from).collect()
}

fn ls(args: &LsRequest, out: &mut String) -> anyhow::Result<i32> {
    let scope = match scope(args.pid) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("forkscope: {}", printable::lines(&e.to_string()));
            return Ok(1);
        }
    };
    let (segments, unreadable) = discover_reporting(&scope);
    // On stderr, so `--json` stays the list of segments.
    match scope {
        Scope::System if !unreadable.is_empty() => eprintln!(
            "forkscope: {} process(es) unreadable ({}): their shared memory is not listed",
            unreadable.len(),
            unreadable[0].error
        ),
        _ => {
            for gap in &unreadable {
                eprintln!(
                    "forkscope: pid {}: unreadable: {} (its shared memory is not listed)",
                    gap.pid,
                    printable::one_line(&gap.error)
                );
            }
        }
    }
    if args.json {
        outln!(
            out,
            "{}",
            serde_json::to_string_pretty(&summaries(&segments))?
        );
        return Ok(0);
    }
    outln!(
        out,
        "{:<28} {:<9} {:>10} {:>12} {:<3} PIDS",
        "NAME",
        "KIND",
        "SIZE",
        "INODE",
        "DEL"
    );
    for s in &segments {
        let pids: Vec<String> = s.pids.iter().map(i32::to_string).collect();
        outln!(
            out,
            "{:<28} {:<9} {:>10} {:>12} {:<3} {}",
            printable::one_line(&s.name),
            s.kind.as_str(),
            s.size,
            s.inode,
            if s.deleted { "yes" } else { "" },
            pids.join(",")
        );
    }
    Ok(0)
}

fn show(args: &ShowRequest, layout_rules: LayoutRules, out: &mut String) -> anyhow::Result<i32> {
    // The config's layouts matter only for `--as auto`; a named file is checked regardless.
    let rules = if args.format == decode::Format::Auto || args.config.is_some() {
        match layout_rules(args.config.as_deref()) {
            Ok(rules) => rules,
            Err(err) => {
                eprintln!("forkscope: {}", printable::lines(&err));
                return Ok(2);
            }
        }
    } else {
        Vec::new()
    };
    let scope = match scope(args.pid) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("forkscope: {}", printable::lines(&e.to_string()));
            return Ok(1);
        }
    };
    let segments = discover(&scope);
    let Some(seg) = find(&segments, &args.segment) else {
        eprintln!(
            "forkscope: no shared-memory segment named {:?}{} (`forkscope shm ls` lists them)",
            args.segment,
            match args.pid {
                Some(pid) => format!(" in the tree under pid {pid}"),
                None => String::new(),
            }
        );
        return Ok(1);
    };
    let bytes = match read_segment(seg, args.max_bytes) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("forkscope: {}", printable::lines(&e.to_string()));
            return Ok(1);
        }
    };
    let rule = match args.format {
        decode::Format::Auto => decode::rules::find(&rules, &seg.name),
        _ => None,
    };
    let format = rule.map_or(&args.format, |r| &r.format);
    let decoded = match decode::decode(&bytes, seg.kind, format) {
        Ok(d) => d.decoded,
        Err(e) => {
            let from = rule
                .map(|r| format!(" (layout from {})", r.origin))
                .unwrap_or_default();
            eprintln!(
                "forkscope: segment {}: {}{from}",
                printable::one_line(&seg.name),
                printable::lines(&e.to_string())
            );
            return Ok(1);
        }
    };
    if args.json {
        let mut value = serde_json::to_value(Summary::from(seg))?;
        if let (Some(obj), serde_json::Value::Object(extra)) =
            (value.as_object_mut(), serde_json::to_value(&decoded)?)
        {
            obj.extend(extra);
        }
        outln!(out, "{}", serde_json::to_string_pretty(&value)?);
        return Ok(0);
    }
    let pids: Vec<String> = seg.pids.iter().map(i32::to_string).collect();
    outln!(
        out,
        "{} ({}, {} bytes, inode {}{}) pids: {}",
        printable::one_line(&seg.name),
        seg.kind.as_str(),
        seg.size,
        seg.inode,
        if seg.deleted { ", deleted" } else { "" },
        if pids.is_empty() {
            "-".into()
        } else {
            pids.join(",")
        }
    );
    for line in text_lines(&decoded, &bytes, usize::MAX) {
        outln!(out, "{}", printable::one_line(&line));
    }
    Ok(0)
}

/// The human form of decoded contents, one line per item (at most `max_lines` items).
pub fn text_lines(decoded: &Decoded, bytes: &[u8], max_lines: usize) -> Vec<String> {
    match decoded {
        Decoded::Hex { .. } => hex::dump(bytes, max_lines),
        Decoded::Typed { ty, values, .. } => values
            .iter()
            .take(max_lines)
            .enumerate()
            .map(|(i, v)| format!("[{i}] {ty} {v}"))
            .collect(),
        Decoded::ShareableList { layout, items } => {
            let mut lines = vec![format!(
                "ShareableList ({layout} layout), {} items",
                items.len()
            )];
            lines.extend(
                items
                    .iter()
                    .take(max_lines)
                    .enumerate()
                    .map(|(i, item)| format!("[{i}] {}", item.display())),
            );
            lines
        }
        Decoded::Layout { fields, .. } => fields
            .iter()
            .take(max_lines)
            .map(|f| {
                let values: Vec<String> = f.values.iter().map(|v| v.to_string()).collect();
                match &f.text {
                    Some(text) => format!("{} ({} @{}) = {text:?}", f.name, f.ty, f.offset),
                    None => format!(
                        "{} ({} @{}) = {}",
                        f.name,
                        f.ty,
                        f.offset,
                        values.join(", ")
                    ),
                }
            })
            .collect(),
        Decoded::Semaphore { value, waiters } => {
            vec![format!("semaphore value {value}, waiters {waiters}")]
        }
    }
}
