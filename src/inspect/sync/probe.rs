//! The live [`Probe`]: one process's descriptors and maps (each read once, when first
//! needed) and reads of its memory through `/proc/PID/mem`.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::inspect::shm::maps::{self, MapsLine};

use super::classify::Probe;
use super::fds::{self, FdInfo, FdTable};
use super::thread::clock_secs;

/// Reads one process, lazily.
pub struct ProcProbe {
    pid: i32,
    fds: Option<FdTable>,
    maps: Option<Vec<MapsLine>>,
    mem: Option<Option<File>>,
}

impl ProcProbe {
    pub fn new(pid: i32) -> ProcProbe {
        ProcProbe {
            pid,
            fds: None,
            maps: None,
            mem: None,
        }
    }

    /// The descriptor table, if it was read.
    pub fn take_fds(&mut self) -> Option<FdTable> {
        self.fds.take()
    }

    /// The maps, if they were read.
    pub fn take_maps(&mut self) -> Option<Vec<MapsLine>> {
        self.maps.take()
    }
}

impl Probe for ProcProbe {
    fn fds(&mut self) -> &FdTable {
        let pid = self.pid;
        self.fds.get_or_insert_with(|| fds::read_table(pid))
    }

    fn maps(&mut self) -> &[MapsLine] {
        let pid = self.pid;
        self.maps.get_or_insert_with(|| {
            std::fs::read_to_string(format!("/proc/{pid}/maps"))
                .map(|t| maps::parse(&t))
                .unwrap_or_default()
        })
    }

    fn read_mem(&mut self, addr: u64, len: usize) -> Option<Vec<u8>> {
        let pid = self.pid;
        let file = self
            .mem
            .get_or_insert_with(|| File::open(format!("/proc/{pid}/mem")).ok())
            .as_ref()?;
        let mut buf = vec![0; len.min(4096)];
        let n = file.read_at(&mut buf, addr).ok()?;
        (n == buf.len()).then_some(buf)
    }

    fn fdinfo(&mut self, fd: i32) -> FdInfo {
        fds::read_fdinfo(self.pid, fd)
    }

    fn now(&self, clock: i32) -> Option<f64> {
        clock_secs(clock)
    }
}
