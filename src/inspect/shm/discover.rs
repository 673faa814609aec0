//! Discovery: which shared-memory segments a set of processes maps or holds.
//!
//! Sources: `/proc/PID/maps` (mapped ranges), `/proc/PID/fd` (descriptors that hold a segment,
//! mapped or not), the `/dev/shm` directory (which names are still linked) and
//! `/proc/sysvipc/shm`. Segments are keyed by (device, inode): a semaphore's creator maps a
//! temporary name that was unlinked, the other processes map `sem.NAME`; both are one segment.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::MetadataExt;

use super::maps::{self, classify, kind_of_name};
use super::sysv::{self, SysvRow};
use crate::inspect::proc;
use crate::model::shm::{Attachment, Mapping, Segment, SegmentId, SegmentKind};

/// Which processes to look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every process (that we may read), plus segments nobody holds.
    System,
    /// The process and its descendants.
    Tree(i32),
    /// Exactly these processes.
    Pids(Vec<i32>),
}

impl Scope {
    /// The pids this scope covers right now.
    pub fn pids(&self) -> Vec<i32> {
        match self {
            Scope::System => proc::list_pids().unwrap_or_default(),
            Scope::Tree(root) => {
                let mut pids = vec![*root];
                if let Ok(all) = proc::scan_all() {
                    pids.extend(proc::descendants_in(&all, *root).iter().map(|s| s.pid));
                }
                pids
            }
            Scope::Pids(pids) => pids.clone(),
        }
    }
}

/// A file linked under `/dev/shm`.
#[derive(Clone, Debug)]
struct Linked {
    name: String,
    size: u64,
}

#[derive(Default)]
struct Builder {
    /// Paths seen in maps or fd links: (name, deleted, kind).
    names: Vec<(String, bool, SegmentKind)>,
    /// Size from a `stat` of the file (fd holders), if any.
    stat_size: Option<u64>,
    /// Largest file offset covered by a mapping.
    mapped_extent: u64,
    attachments: BTreeMap<i32, Attachment>,
}

fn dev_pair(dev: u64) -> (u32, u32) {
    (rustix::fs::major(dev), rustix::fs::minor(dev))
}

/// Every regular file in `/dev/shm`, by identity.
fn linked_files() -> HashMap<SegmentId, Linked> {
    let mut found = HashMap::new();
    let Ok(entries) = fs::read_dir("/dev/shm") else {
        return found;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let (dev_major, dev_minor) = dev_pair(meta.dev());
        let id = SegmentId {
            dev_major,
            dev_minor,
            inode: meta.ino(),
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        found.insert(
            id,
            Linked {
                name,
                size: meta.len(),
            },
        );
    }
    found
}

/// A process whose maps or fds could not be read (not one that merely ended): its shared
/// memory is missing from the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    pub pid: i32,
    /// `permission denied`, or the error.
    pub error: String,
}

/// The error as a reader is told it; `None` when the process is simply gone.
fn unreadable_because(err: &std::io::Error) -> Option<String> {
    match err.kind() {
        std::io::ErrorKind::NotFound => None,
        _ if err.raw_os_error() == Some(libc::ESRCH) => None,
        std::io::ErrorKind::PermissionDenied => Some("permission denied".into()),
        _ => Some(err.to_string()),
    }
}

/// Adds what one process maps and holds; says why if its maps or fds could not be read.
fn scan_process(pid: i32, builders: &mut HashMap<SegmentId, Builder>) -> Option<String> {
    let maps_text = fs::read_to_string(format!("/proc/{pid}/maps"));
    let unreadable = maps_text.as_ref().err().and_then(unreadable_because);
    if let Ok(text) = maps_text {
        for line in maps::parse(&text) {
            let Some((kind, name)) = classify(&line.path) else {
                continue;
            };
            let id = SegmentId {
                dev_major: line.dev_major,
                dev_minor: line.dev_minor,
                inode: line.inode,
            };
            let b = builders.entry(id).or_default();
            b.names.push((name, line.deleted, kind));
            let extent = line.offset.saturating_add(line.end - line.start);
            b.mapped_extent = b.mapped_extent.max(extent);
            let attachment = b.attachments.entry(pid).or_insert_with(|| Attachment {
                pid,
                ..Attachment::default()
            });
            attachment.mappings.push(Mapping {
                start: line.start,
                end: line.end,
                perms: line.perms,
                offset: line.offset,
            });
        }
    }
    let fds = match fs::read_dir(format!("/proc/{pid}/fd")) {
        Ok(fds) => fds,
        Err(err) => return unreadable.or_else(|| unreadable_because(&err)),
    };
    for entry in fds.flatten().take(1 << 20) {
        let Ok(target) = fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        let (path, deleted) = match target.strip_suffix(" (deleted)") {
            Some(p) => (p, true),
            None => (&*target, false),
        };
        let Some((kind, name)) = classify(path) else {
            continue;
        };
        let Some(fd) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        // metadata() follows the magic link to the file itself.
        let Ok(meta) = fs::metadata(entry.path()) else {
            continue;
        };
        let (dev_major, dev_minor) = dev_pair(meta.dev());
        let id = SegmentId {
            dev_major,
            dev_minor,
            inode: meta.ino(),
        };
        let b = builders.entry(id).or_default();
        b.names.push((name, deleted, kind));
        b.stat_size = Some(meta.len());
        b.attachments
            .entry(pid)
            .or_insert_with(|| Attachment {
                pid,
                ..Attachment::default()
            })
            .fds
            .push(fd);
    }
    unreadable
}

/// Finds the segments the processes of `scope` map or hold (and, for [`Scope::System`], also
/// the ones nobody holds). Processes that vanish or cannot be read are skipped. Sorted by
/// name, then inode.
pub fn discover(scope: &Scope) -> Vec<Segment> {
    discover_reporting(scope).0
}

/// [`discover`], also saying which processes could not be read (and why).
pub fn discover_reporting(scope: &Scope) -> (Vec<Segment>, Vec<Unreadable>) {
    let pids = scope.pids();
    let mut builders: HashMap<SegmentId, Builder> = HashMap::new();
    let mut unreadable = Vec::new();
    for pid in pids {
        if let Some(error) = scan_process(pid, &mut builders) {
            unreadable.push(Unreadable { pid, error });
        }
    }
    let linked = linked_files();
    let sysv_rows = sysv::read();
    let segments = build(builders, &linked, &sysv_rows, *scope == Scope::System);
    (segments, unreadable)
}

fn build(
    mut builders: HashMap<SegmentId, Builder>,
    linked: &HashMap<SegmentId, Linked>,
    sysv_rows: &[SysvRow],
    include_unheld: bool,
) -> Vec<Segment> {
    let sysv_dev = builders
        .iter()
        .find(|(_, b)| b.names.iter().any(|n| n.2 == SegmentKind::Sysv))
        .map(|(id, _)| (id.dev_major, id.dev_minor));
    if include_unheld {
        for id in linked.keys() {
            builders.entry(*id).or_default();
        }
        for row in sysv_rows {
            let (dev_major, dev_minor) = sysv_dev.unwrap_or((0, 0));
            let id = SegmentId {
                dev_major,
                dev_minor,
                inode: row.info.shmid,
            };
            builders
                .entry(id)
                .or_default()
                .names
                .push((row.name(), false, SegmentKind::Sysv));
        }
    }
    let mut segments: Vec<Segment> = builders
        .into_iter()
        .map(|(id, b)| finish(id, b, linked, sysv_rows))
        .collect();
    segments.sort_by(|a, b| (&a.name, a.inode).cmp(&(&b.name, b.inode)));
    segments
}

fn finish(
    id: SegmentId,
    mut b: Builder,
    linked: &HashMap<SegmentId, Linked>,
    sysv_rows: &[SysvRow],
) -> Segment {
    let is_sysv = b.names.iter().any(|n| n.2 == SegmentKind::Sysv);
    let sysv_row = if is_sysv {
        sysv_rows.iter().find(|r| r.info.shmid == id.inode)
    } else {
        None
    };
    b.names.sort();
    let (name, kind, size, deleted) = if let Some(file) = linked.get(&id) {
        (
            file.name.clone(),
            kind_of_name(&file.name),
            file.size,
            false,
        )
    } else if is_sysv {
        let name = match sysv_row {
            Some(row) => row.name(),
            None => b
                .names
                .iter()
                .find(|n| n.2 == SegmentKind::Sysv)
                .map(|n| n.0.clone())
                .unwrap_or_default(),
        };
        let size = sysv_row.map(|r| r.size).unwrap_or(b.mapped_extent);
        let deleted = sysv_row.map(|r| r.dest).unwrap_or(true);
        (name, SegmentKind::Sysv, size, deleted)
    } else {
        // Prefer a name some process still sees linked, then any.
        let chosen = b
            .names
            .iter()
            .find(|n| !n.1)
            .or_else(|| b.names.first())
            .cloned()
            .unwrap_or_else(|| (format!("inode-{}", id.inode), true, SegmentKind::Posix));
        // Mappings are page-rounded; a glibc semaphore file is 32 bytes.
        let size = match (b.stat_size, chosen.2) {
            (Some(size), _) => size,
            (None, SegmentKind::Semaphore) => b.mapped_extent.min(32),
            (None, _) => b.mapped_extent,
        };
        (chosen.0, chosen.2, size, true)
    };
    let attachments: Vec<Attachment> = b.attachments.into_values().collect();
    Segment {
        name,
        kind,
        inode: id.inode,
        device: format!("{:02x}:{:02x}", id.dev_major, id.dev_minor),
        size,
        deleted,
        pids: attachments.iter().map(|a| a.pid).collect(),
        id,
        attachments,
        sysv: sysv_row.map(|r| r.info.clone()),
    }
}

/// Finds a segment by file name (`psm_ab12`, `sem.x`, `SYSV0000002a`, `memfd:x`), by
/// `/dev/shm/NAME` path, or by inode number. Several matches (one name, two inodes): the
/// first linked one.
pub fn find<'a>(segments: &'a [Segment], query: &str) -> Option<&'a Segment> {
    let name = query.strip_prefix("/dev/shm/").unwrap_or(query);
    let name = name.strip_prefix('/').unwrap_or(name);
    let by_name = segments
        .iter()
        .filter(|s| s.name == name)
        .min_by_key(|s| s.deleted);
    by_name.or_else(|| {
        let inode: u64 = query.parse().ok()?;
        segments.iter().find(|s| s.inode == inode)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(inode: u64) -> SegmentId {
        SegmentId {
            dev_major: 0,
            dev_minor: 0x1a,
            inode,
        }
    }

    fn mapped(b: &mut Builder, pid: i32, name: &str, deleted: bool) {
        b.names.push((
            name.into(),
            deleted,
            kind_of_name(name.trim_start_matches('/')),
        ));
        b.mapped_extent = 32;
        b.attachments.entry(pid).or_default().pid = pid;
        b.attachments.get_mut(&pid).unwrap().mappings.push(Mapping {
            start: 0x1000,
            end: 0x2000,
            perms: "rw-s".into(),
            offset: 0,
        });
    }

    #[test]
    fn semaphore_creator_and_users_are_one_segment() {
        let mut builders = HashMap::new();
        let mut b = Builder::default();
        mapped(&mut b, 10, "sem.Xa1b2c", true);
        mapped(&mut b, 11, "sem.mp-x1y2z3", false);
        builders.insert(id(7), b);
        let linked = HashMap::from([(
            id(7),
            Linked {
                name: "sem.mp-x1y2z3".into(),
                size: 32,
            },
        )]);
        let segs = build(builders, &linked, &[], false);
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].name, "sem.mp-x1y2z3");
        assert_eq!(segs[0].kind, SegmentKind::Semaphore);
        assert_eq!(segs[0].pids, vec![10, 11]);
        assert!(!segs[0].deleted);
        assert_eq!(find(&segs, "7").unwrap().name, "sem.mp-x1y2z3");
        assert_eq!(find(&segs, "/dev/shm/sem.mp-x1y2z3").unwrap().inode, 7);
        assert!(find(&segs, "nope").is_none());
    }

    #[test]
    fn unlinked_arena_is_deleted_and_unheld_files_listed_only_for_system() {
        let mut builders = HashMap::new();
        let mut b = Builder::default();
        mapped(&mut b, 10, "pym-10-abcd1234", true);
        b.stat_size = Some(4096);
        builders.insert(id(8), b);
        let linked = HashMap::from([(
            id(9),
            Linked {
                name: "psm_00000000".into(),
                size: 100,
            },
        )]);
        let segs = build(builders, &linked, &[], false);
        assert_eq!(segs.len(), 1);
        assert!(segs[0].deleted);
        assert_eq!(segs[0].size, 4096);
        assert_eq!(segs[0].kind, SegmentKind::PyArena);
        let mut builders = HashMap::new();
        builders.insert(id(8), Builder::default());
        let segs = build(builders, &linked, &[], true);
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[1].name, "psm_00000000");
        assert!(segs[1].pids.is_empty());
    }

    #[test]
    fn finds_own_memfd() {
        use std::os::fd::AsRawFd;
        let fd = rustix::fs::memfd_create("forkscope-test-memfd", rustix::fs::MemfdFlags::CLOEXEC)
            .unwrap();
        let me = std::process::id() as i32;
        let segs = discover(&Scope::Pids(vec![me]));
        let seg = find(&segs, "memfd:forkscope-test-memfd").expect("memfd found");
        assert_eq!(seg.kind, SegmentKind::Memfd);
        assert_eq!(seg.pids, vec![me]);
        assert!(seg.attachments[0].fds.contains(&fd.as_raw_fd()));
    }
}
