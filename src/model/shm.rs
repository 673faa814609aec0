//! Plain descriptions of shared-memory segments and of their decoded contents: what
//! `inspect::shm` discovers and decodes, what `shm ls`/`shm show` print and what the TUI's
//! shared-memory view renders. No I/O here.

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// The identity of a segment: the (device, inode) of the file behind it. Paths lie (a
/// semaphore's creator maps a temporary name), identities do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SegmentId {
    /// `major:minor` of the device, as `/proc/PID/maps` prints it (hex).
    pub dev_major: u32,
    pub dev_minor: u32,
    pub inode: u64,
}

/// What kind of shared memory a segment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SegmentKind {
    /// A POSIX `shm_open` object in `/dev/shm` (Python's `SharedMemory`: `psm_*` or user names).
    Posix,
    /// A glibc named semaphore (`sem.*`, 32 bytes).
    Semaphore,
    /// A Python multiprocessing heap arena (`pym-PID-*`: `Value`, `Array`, `Barrier` state).
    PyArena,
    /// A System V segment (`shmget`).
    Sysv,
    /// A `memfd_create` file.
    Memfd,
}

impl SegmentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentKind::Posix => "posix",
            SegmentKind::Semaphore => "semaphore",
            SegmentKind::PyArena => "py-arena",
            SegmentKind::Sysv => "sysv",
            SegmentKind::Memfd => "memfd",
        }
    }
}

/// One address range a process maps a segment at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// `rw-s` and so on, as in `/proc/PID/maps`.
    pub perms: String,
    /// Offset into the file of `start`.
    pub offset: u64,
}

/// How one process uses a segment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Attachment {
    pub pid: i32,
    pub mappings: Vec<Mapping>,
    /// File descriptors that refer to the segment (held, mapped or not).
    pub fds: Vec<i32>,
}

impl Attachment {
    /// `w` when mapped writable, `r` when mapped read-only, `f` when only held as a fd.
    pub fn mark(&self) -> char {
        if self
            .mappings
            .iter()
            .any(|m| m.perms.as_bytes().get(1) == Some(&b'w'))
        {
            'w'
        } else if !self.mappings.is_empty() {
            'r'
        } else {
            'f'
        }
    }
}

/// One segment, with every process (of the scanned set) that maps or holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// The file name under `/dev/shm` (`psm_1a2b3c4d`), `SYSV` + hex key, or `memfd:NAME`.
    pub name: String,
    pub kind: SegmentKind,
    pub inode: u64,
    /// `major:minor` in hex, as in `/proc/PID/maps`.
    pub device: String,
    /// Bytes (from the file, `/proc/sysvipc/shm`, or the mappings when nothing better).
    pub size: u64,
    /// True when no name in `/dev/shm` points at it any more (unlinked but still in use).
    pub deleted: bool,
    /// Pids that map or hold it, ascending.
    pub pids: Vec<i32>,
    #[serde(skip)]
    pub id: SegmentId,
    /// Details per process (not in the `shm ls` summary unless asked for).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// SysV only: the key, the shmid, and the number of attaches the kernel counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sysv: Option<SysvInfo>,
}

/// What `/proc/sysvipc/shm` says about a SysV segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SysvInfo {
    pub key: i32,
    pub shmid: u64,
    pub cpid: i32,
    pub lpid: i32,
    pub nattch: u64,
}

/// A scalar of a typed array or a struct field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Int(v) => write!(f, "{v}"),
            Scalar::UInt(v) => write!(f, "{v}"),
            Scalar::Float(v) => write!(f, "{v:?}"),
            Scalar::Bool(v) => write!(f, "{v}"),
        }
    }
}

/// One item of a Python `ShareableList`, as `shm show --json` prints it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ListItem {
    Int { value: i64 },
    Float { value: f64 },
    Bool { value: bool },
    None { value: () },
    Str { value: String },
    Bytes { hex: String },
}

impl ListItem {
    /// A short human form: `7`, `2.5`, `True`, `None`, `'héllo'`, `b'ab'`.
    pub fn display(&self) -> String {
        match self {
            ListItem::Int { value } => value.to_string(),
            ListItem::Float { value } => format!("{value:?}"),
            ListItem::Bool { value } => if *value { "True" } else { "False" }.into(),
            ListItem::None { .. } => "None".into(),
            ListItem::Str { value } => format!("{value:?}"),
            ListItem::Bytes { hex } => format!("bytes 0x{hex}"),
        }
    }
}

/// One field of a decoded C struct (arrays keep every element).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldValue {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub offset: u64,
    /// One value for a scalar field, N for `name:ty[N]`.
    pub values: Vec<Scalar>,
    /// For `char[N]` fields: the bytes up to the first NUL, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// The decoded contents of a segment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "kebab-case")]
pub enum Decoded {
    /// Raw bytes (`hex` is the whole range, two hex digits per byte; the watcher leaves it
    /// empty, the view renders from [`Contents::bytes`]).
    /// `size` is written `bytes` in JSON: `shm show --json` merges this object into the
    /// segment's summary, whose `size` it must not overwrite.
    Hex {
        #[serde(rename = "bytes")]
        size: u64,
        hex: String,
    },
    /// A little-endian typed array; `trailing` bytes did not make a whole element.
    Typed {
        #[serde(rename = "type")]
        ty: String,
        values: Vec<Scalar>,
        trailing: u64,
    },
    /// A Python `ShareableList`; `layout` is `"3.9+"` or `"3.8"`.
    ShareableList {
        layout: String,
        items: Vec<ListItem>,
    },
    /// A C struct described by a layout string.
    /// `size` (the struct's) is written `layout_size` in JSON, beside the segment's `size`.
    Layout {
        #[serde(rename = "layout_size")]
        size: u64,
        fields: Vec<FieldValue>,
    },
    /// A glibc semaphore (x86-64): value and waiters.
    Semaphore { value: u32, waiters: u32 },
}

/// The selected segment's contents at one refresh, with what changed since the previous one.
#[derive(Clone, Debug, PartialEq)]
pub struct Contents {
    pub id: SegmentId,
    /// The bytes read (shared with the watcher, which reuses the buffer once released).
    pub bytes: std::sync::Arc<Vec<u8>>,
    /// Decoded form, or why it could not be decoded (then the view falls back to hex).
    pub decoded: Result<Decoded, String>,
    /// Byte ranges that differ from the previous refresh (empty on the first one).
    pub changed: Vec<Range<usize>>,
    /// Indexes of decoded items (list items, array elements, struct fields) that changed.
    pub changed_items: Vec<usize>,
}

/// What the shared-memory watcher sends after each refresh.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShmSnapshot {
    pub segments: Vec<Segment>,
    /// The selected segment's contents, or why they could not be read.
    pub contents: Option<Result<Contents, String>>,
    /// Time the refresh took (discovery + read + change detection), in microseconds.
    pub took_us: u64,
}
