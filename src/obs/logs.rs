//! Per-pool log files (`log = "logs/{pool}-{worker}.log"`, `docs/config.md`): the tap side
//! turns `output` events into records on a queue; a writer thread timestamps them and writes
//! them to rotating files. The queue is unbounded in count but its bytes are watched: above
//! `HIGH_WATER_BYTES` the tap reports congestion, the engine stops reading pipes (as for a
//! slow consumer), and the writer wakes it below `LOW_WATER_BYTES`. No line is dropped, and
//! neither the engine nor the tap ever waits for the disk. A worker's file is chosen when its
//! process starts and closed when it ends; a reload replaces the pools' logs (`reload`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use mio::Waker;

use super::owners::Slot;
use super::rotate::{RotatingFile, rfc3339_millis};
use crate::model::Stream;

/// Queued log bytes above which the engine pauses capture.
pub const HIGH_WATER_BYTES: usize = 16 << 20;
/// Queued log bytes below which a paused engine resumes.
pub const LOW_WATER_BYTES: usize = 4 << 20;
/// Records written between flushes at most (the writer flushes whenever the queue is empty).
const BATCH: usize = 8192;
/// Default `log_max`.
pub const DEFAULT_MAX_BYTES: u64 = 10 << 20;
/// Default `log_keep`.
pub const DEFAULT_KEEP: u32 = 5;
/// Smallest `log_max`.
pub const MIN_MAX_BYTES: u64 = 1024;
/// Largest `log_keep`.
pub const MAX_KEEP: u32 = 1000;

/// Where and how one pool's lines are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSpec {
    /// A path with `{pool}` and `{worker}` in it (both optional).
    pub template: String,
    pub max_bytes: u64,
    pub keep: u32,
}

impl LogSpec {
    pub fn new(template: String) -> LogSpec {
        LogSpec {
            template,
            max_bytes: DEFAULT_MAX_BYTES,
            keep: DEFAULT_KEEP,
        }
    }

    /// The file of one worker.
    pub fn path(&self, pool: &str, worker: u32) -> PathBuf {
        PathBuf::from(
            self.template
                .replace("{pool}", pool)
                .replace("{worker}", &worker.to_string()),
        )
    }
}

/// A size: bytes, or a number with K, M, G (KB, KiB... all powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let scale: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => {
            return Err(format!(
                "{text:?}: a size is bytes or a number with K, M or G"
            ));
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("{text:?}: a size is bytes or a number with K, M or G"))
}

/// One line on its way to a file.
struct Record {
    file: Arc<PathBuf>,
    spec: Arc<LogSpec>,
    unix: f64,
    stream: Stream,
    text: String,
}

enum Msg {
    Line(Record),
    /// Flush and close a file no worker writes now (it opens again if a line comes).
    Close(Arc<PathBuf>),
    End,
}

/// What the writer and the tap share: the queued bytes and the engine's waker.
#[derive(Default)]
struct Backlog {
    bytes: AtomicUsize,
    paused: AtomicBool,
    waker: OnceLock<Arc<Waker>>,
    errors: AtomicU64,
}

/// The file a worker slot writes, chosen when its process started.
struct Binding {
    file: Arc<PathBuf>,
    spec: Arc<LogSpec>,
}

/// The tap's side: routes output lines of pools with a `log` to the writer.
pub struct LogRouter {
    specs: HashMap<String, Arc<LogSpec>>,
    files: HashMap<Slot, Binding>,
    started_unix: f64,
    tx: Sender<Msg>,
    backlog: Arc<Backlog>,
}

/// The writer thread; [`LogWriter::finish`] waits until every queued line is on disk.
pub struct LogWriter {
    thread: Option<JoinHandle<()>>,
    backlog: Arc<Backlog>,
}

/// Checks every file the pools' first workers will write can be opened (and its directory
/// made): a bad path is a usage error before anything starts.
pub fn check_paths(pools: &[(String, u32, LogSpec)]) -> Result<(), String> {
    for (pool, size, spec) in pools {
        for worker in 0..*size {
            let path = spec.path(pool, worker);
            RotatingFile::open(&path, spec.max_bytes, spec.keep)
                .map_err(|err| format!("log file {}: {err}", path.display()))?;
        }
    }
    Ok(())
}

/// Starts the writer; the router goes into the tap.
pub fn start(specs: HashMap<String, LogSpec>) -> std::io::Result<(LogRouter, LogWriter)> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let backlog = Arc::new(Backlog::default());
    let writer_backlog = backlog.clone();
    let thread = std::thread::Builder::new()
        .name("forkscope-logs".into())
        .spawn(move || write_loop(&rx, &writer_backlog))?;
    Ok((
        LogRouter {
            specs: specs.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
            files: HashMap::new(),
            started_unix: 0.0,
            tx,
            backlog: backlog.clone(),
        },
        LogWriter {
            thread: Some(thread),
            backlog,
        },
    ))
}

impl LogRouter {
    pub fn session(&mut self, started_unix: f64) {
        self.started_unix = started_unix;
    }

    /// Queues one line of `slot`'s tree (nothing for pools without a log).
    pub fn line(&mut self, slot: &Slot, t: f64, stream: Stream, text: &str) {
        if !self.files.contains_key(slot) {
            let Some(binding) = self.binding(slot) else {
                return;
            };
            self.files.insert(slot.clone(), binding);
        }
        let Some(binding) = self.files.get(slot) else {
            return;
        };
        self.backlog
            .bytes
            .fetch_add(text.len() + 40, Ordering::SeqCst);
        let _ = self.tx.send(Msg::Line(Record {
            file: binding.file.clone(),
            spec: binding.spec.clone(),
            unix: self.started_unix + t,
            stream,
            text: text.to_string(),
        }));
    }

    /// A worker process started in `slot`: its lines go where its pool's log says now.
    pub fn spawned(&mut self, slot: &Slot) {
        let binding = self.binding(slot);
        let old = match binding {
            Some(binding) => self.files.insert(slot.clone(), binding),
            None => self.files.remove(slot),
        };
        if let Some(old) = old
            && self.files.get(slot).is_none_or(|new| new.file != old.file)
        {
            let _ = self.tx.send(Msg::Close(old.file));
        }
    }

    /// A worker process of `slot` ended: its file closes (after its last queued line).
    pub fn exited(&self, slot: &Slot) {
        if let Some(binding) = self.files.get(slot) {
            let _ = self.tx.send(Msg::Close(binding.file.clone()));
        }
    }

    /// A reload applied: the pools' logs from now on. Workers that keep running (pools
    /// neither removed nor `restarting`) write to their new file at once; the others keep
    /// theirs until they end, and their successors start with the new one.
    pub fn reload(&mut self, specs: Vec<(String, LogSpec)>, restarting: &[String]) {
        self.specs = specs.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
        let stale: Vec<Slot> = self
            .files
            .iter()
            .filter(|(slot, binding)| {
                !restarting.iter().any(|p| **p == *slot.0)
                    && self
                        .binding(slot)
                        .is_none_or(|new| new.file != binding.file || new.spec != binding.spec)
            })
            .map(|(slot, _)| slot.clone())
            .collect();
        for slot in stale {
            if let Some(old) = self.files.remove(&slot) {
                let _ = self.tx.send(Msg::Close(old.file));
            }
        }
    }

    fn binding(&self, slot: &Slot) -> Option<Binding> {
        let spec = self.specs.get(&*slot.0)?;
        Some(Binding {
            file: Arc::new(spec.path(&slot.0, slot.1)),
            spec: spec.clone(),
        })
    }

    /// The session ended: the writer finishes the queue and stops.
    pub fn end(&self) {
        let _ = self.tx.send(Msg::End);
    }

    /// True while the writer is `HIGH_WATER_BYTES` behind; arms its wake-up of the engine.
    pub fn congested(&self, waker: &Arc<Waker>) -> bool {
        if self.backlog.bytes.load(Ordering::SeqCst) < HIGH_WATER_BYTES {
            return false;
        }
        let _ = self.backlog.waker.set(waker.clone());
        self.backlog.paused.store(true, Ordering::SeqCst);
        // The writer may have caught up meanwhile: then it will not wake us.
        if self.backlog.bytes.load(Ordering::SeqCst) < HIGH_WATER_BYTES {
            self.backlog.paused.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }
}

impl LogWriter {
    /// Waits for the writer to write what was queued before the session's end.
    pub fn finish(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Reads how many lines or flushes failed (a full disk...), for the metrics.
    pub fn error_counter(&self) -> impl Fn() -> u64 + Send + Sync + 'static {
        let backlog = self.backlog.clone();
        move || backlog.errors.load(Ordering::Relaxed)
    }
}

fn write_loop(rx: &Receiver<Msg>, backlog: &Backlog) {
    let mut files: HashMap<Arc<PathBuf>, RotatingFile> = HashMap::new();
    let mut line = Vec::with_capacity(4096);
    'outer: while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        let mut written = 0;
        let mut bytes = 0;
        while let Some(msg) = next.take() {
            let record = match msg {
                Msg::Line(record) => record,
                Msg::Close(path) => {
                    if let Some(mut file) = files.remove(&path) {
                        flush_one(&path, &mut file, backlog);
                    }
                    next = rx.try_recv().ok();
                    continue;
                }
                Msg::End => {
                    flush_all(&mut files, backlog);
                    break 'outer;
                }
            };
            bytes += record.text.len() + 40;
            format_line(&mut line, &record);
            if let Err(err) = write_record(&mut files, &record, &line)
                && backlog.errors.fetch_add(1, Ordering::Relaxed) == 0
            {
                tracing::error!("log {}: {err}", record.file.display());
            }
            written += 1;
            if written < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if rx.is_empty() {
            flush_all(&mut files, backlog);
        }
        let left = backlog.bytes.fetch_sub(bytes, Ordering::SeqCst) - bytes;
        if left <= LOW_WATER_BYTES
            && backlog.paused.swap(false, Ordering::SeqCst)
            && let Some(waker) = backlog.waker.get()
        {
            let _ = waker.wake();
        }
    }
}

fn format_line(line: &mut Vec<u8>, record: &Record) {
    line.clear();
    line.extend_from_slice(rfc3339_millis(record.unix).as_bytes());
    line.extend_from_slice(match record.stream {
        Stream::Stdout => b" stdout ",
        Stream::Stderr => b" stderr ",
    });
    line.extend_from_slice(record.text.as_bytes());
    line.push(b'\n');
}

fn write_record(
    files: &mut HashMap<Arc<PathBuf>, RotatingFile>,
    record: &Record,
    line: &[u8],
) -> std::io::Result<()> {
    if !files.contains_key(&record.file) {
        let file = RotatingFile::open(&record.file, record.spec.max_bytes, record.spec.keep)?;
        files.insert(record.file.clone(), file);
    }
    match files.get_mut(&record.file) {
        Some(file) => file.write_line(line),
        None => Ok(()),
    }
}

fn flush_all(files: &mut HashMap<Arc<PathBuf>, RotatingFile>, backlog: &Backlog) {
    for (path, file) in files.iter_mut() {
        flush_one(path, file, backlog);
    }
}

fn flush_one(path: &Path, file: &mut RotatingFile, backlog: &Backlog) {
    if let Err(err) = file.flush() {
        backlog.errors.fetch_add(1, Ordering::Relaxed);
        tracing::error!("log {}: {err}", path.display());
    }
}

/// The logs of a run: each pool's spec by name, checked.
pub fn pool_specs(
    pools: &[crate::supervise::PoolSpec],
    specs: &[(String, LogSpec)],
) -> Vec<(String, u32, LogSpec)> {
    specs
        .iter()
        .filter_map(|(name, spec)| {
            let pool = pools.iter().find(|p| &p.name == name)?;
            Some((name.clone(), pool.size, spec.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_templates() {
        assert_eq!(parse_size("10MB"), Ok(10 << 20));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("2 GiB"), Ok(2 << 30));
        assert_eq!(parse_size("123"), Ok(123));
        assert!(parse_size("10 parsecs").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
        let spec = LogSpec::new("logs/{pool}-{worker}.log".into());
        assert_eq!(spec.path("web", 3), PathBuf::from("logs/web-3.log"));
    }
}
