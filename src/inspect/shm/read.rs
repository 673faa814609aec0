//! Reading a segment's bytes, read-only and bounded.
//!
//! In order of preference: the linked file under `/dev/shm`; a descriptor some process holds
//! (`/proc/PID/fd/N`, which reopens the same file read-only); a mapping, through
//! `/proc/PID/mem` at its address (needs ptrace-read access: our own descendants are fine).
//! Every path checks the (device, inode) it reached, so a name reused in between is caught.
//! Nothing here ever opens for writing.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};

use crate::model::shm::{Segment, SegmentKind};

/// The default cap on the bytes one read may return (256 MiB).
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;

/// Why a segment could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(
        "segment {name} is {size} bytes, more than the read limit of {max} bytes (raise it with --max-bytes)"
    )]
    TooLarge { name: String, size: u64, max: u64 },
    #[error(
        "no way to read segment {name}: it is not linked in /dev/shm and no readable process maps or holds it ({tried})"
    )]
    NoReader { name: String, tried: String },
}

/// Reads the whole segment (at most `max` bytes, else [`ReadError::TooLarge`]).
pub fn read_segment(seg: &Segment, max: u64) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::new();
    read_segment_into(seg, max, &mut buf)?;
    Ok(buf)
}

/// Like [`read_segment`], into a reused buffer (cleared first; its allocation is kept).
pub fn read_segment_into(seg: &Segment, max: u64, buf: &mut Vec<u8>) -> Result<(), ReadError> {
    if seg.size > max {
        return Err(ReadError::TooLarge {
            name: seg.name.clone(),
            size: seg.size,
            max,
        });
    }
    let size = seg.size as usize;
    let mut tried = Vec::new();
    let linked = !seg.deleted && !matches!(seg.kind, SegmentKind::Sysv | SegmentKind::Memfd);
    if linked {
        let path = format!("/dev/shm/{}", seg.name);
        match read_file(&path, seg, size, buf) {
            Ok(()) => return Ok(()),
            Err(e) => tried.push(format!("{path}: {e}")),
        }
    }
    for a in &seg.attachments {
        for fd in &a.fds {
            let path = format!("/proc/{}/fd/{fd}", a.pid);
            match read_file(&path, seg, size, buf) {
                Ok(()) => return Ok(()),
                Err(e) => tried.push(format!("{path}: {e}")),
            }
        }
    }
    for a in &seg.attachments {
        for m in a.mappings.iter().filter(|m| m.offset == 0) {
            let len = (m.end - m.start).min(seg.size) as usize;
            let path = format!("/proc/{}/mem", a.pid);
            match read_mem(&path, m.start, len, buf) {
                Ok(()) => return Ok(()),
                Err(e) => tried.push(format!("{path} at {:#x}: {e}", m.start)),
            }
        }
    }
    if tried.is_empty() {
        tried.push("nothing maps it".into());
    }
    Err(ReadError::NoReader {
        name: seg.name.clone(),
        tried: tried.join("; "),
    })
}

fn open_read_only(path: &str) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

/// Reads `size` bytes of a file, after checking it is the segment's inode.
fn read_file(path: &str, seg: &Segment, size: usize, buf: &mut Vec<u8>) -> io::Result<()> {
    let file = open_read_only(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.ino() != seg.inode {
        return Err(io::Error::other("a different file now has this name"));
    }
    // The file may have shrunk since discovery: read what is there, never more than `size`.
    let size = size.min(meta.len() as usize);
    fill(&file, 0, size, buf)
}

/// Reads `len` bytes of another process's memory at `addr`.
fn read_mem(path: &str, addr: u64, len: usize, buf: &mut Vec<u8>) -> io::Result<()> {
    let file = open_read_only(path)?;
    fill(&file, addr, len, buf)
}

/// `buf` = `len` bytes of `file` from `at` (shorter at end of file).
fn fill(file: &File, at: u64, len: usize, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    buf.resize(len, 0);
    let mut done = 0;
    // Bounded: each round reads at least one byte or stops.
    while done < len {
        match file.read_at(&mut buf[done..], at + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if done > 0 => {
                tracing::debug!("short read after {done} bytes: {e}");
                break;
            }
            Err(e) => return Err(e),
        }
    }
    buf.truncate(done);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::shm::discover::{Scope, discover, find};

    #[test]
    fn too_large_is_an_error_before_reading() {
        let seg = Segment {
            name: "x".into(),
            kind: SegmentKind::Posix,
            inode: 1,
            device: "00:00".into(),
            size: 1 << 40,
            deleted: false,
            pids: vec![],
            id: crate::model::shm::SegmentId {
                dev_major: 0,
                dev_minor: 0,
                inode: 1,
            },
            attachments: vec![],
            sysv: None,
        };
        let err = read_segment(&seg, 1024).unwrap_err();
        assert!(err.to_string().contains("read limit"), "{err}");
        let seg = Segment { size: 10, ..seg };
        assert!(matches!(
            read_segment(&seg, 1024),
            Err(ReadError::NoReader { .. })
        ));
    }

    #[test]
    fn reads_memfd_through_fd_and_mapping() {
        let fd = rustix::fs::memfd_create("forkscope-read-test", rustix::fs::MemfdFlags::CLOEXEC)
            .unwrap();
        let file = File::from(fd);
        file.write_all_at(b"hello shared world", 0).unwrap();
        let me = std::process::id() as i32;
        let segs = discover(&Scope::Pids(vec![me]));
        let seg = find(&segs, "memfd:forkscope-read-test").unwrap().clone();
        assert_eq!(seg.size, 18);
        assert_eq!(read_segment(&seg, 1024).unwrap(), b"hello shared world");
        // Through memory only: pretend the fd is not there, map it instead.
        use rustix::mm::{MapFlags, ProtFlags, mmap, munmap};
        // SAFETY: a new read-only shared mapping of our own memfd, unmapped below.
        let map = unsafe {
            mmap(
                std::ptr::null_mut(),
                4096,
                ProtFlags::READ,
                MapFlags::SHARED,
                &file,
                0,
            )
        }
        .unwrap();
        let segs = discover(&Scope::Pids(vec![me]));
        let mut seg = find(&segs, "memfd:forkscope-read-test").unwrap().clone();
        for a in &mut seg.attachments {
            a.fds.clear();
        }
        assert!(!seg.attachments[0].mappings.is_empty());
        assert_eq!(read_segment(&seg, 1024).unwrap(), b"hello shared world");
        // SAFETY: the mapping made above, not used after this.
        unsafe { munmap(map, 4096) }.unwrap();
    }
}
