//! System V shared memory: a pure parser of `/proc/sysvipc/shm` and the name forkscope gives
//! a SysV segment (`SYSV` + the key as 8 hex digits, as the kernel writes it in maps).

use crate::model::shm::SysvInfo;

/// One row of `/proc/sysvipc/shm`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SysvRow {
    pub info: SysvInfo,
    pub size: u64,
    /// Marked for removal (`IPC_RMID`, the `SHM_DEST` bit of perms): gone once detached.
    pub dest: bool,
}

impl SysvRow {
    /// `SYSV0000002a` for key 42 (`IPC_PRIVATE` segments are all `SYSV00000000`).
    pub fn name(&self) -> String {
        sysv_name(self.info.key)
    }
}

/// The name of a SysV segment with `key`, as `/proc/PID/maps` shows it (without the `/`).
pub fn sysv_name(key: i32) -> String {
    format!("SYSV{:08x}", key as u32)
}

/// Parses the text of `/proc/sysvipc/shm` (header line first). Bad rows are skipped.
pub fn parse(text: &str) -> Vec<SysvRow> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let columns: Vec<&str> = header.split_whitespace().collect();
    let index = |name: &str| columns.iter().position(|c| *c == name);
    let (Some(key), Some(shmid), Some(perms), Some(size), Some(cpid), Some(lpid), Some(nattch)) = (
        index("key"),
        index("shmid"),
        index("perms"),
        index("size"),
        index("cpid"),
        index("lpid"),
        index("nattch"),
    ) else {
        return Vec::new();
    };
    lines
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let get = |i: usize| fields.get(i).copied();
            Some(SysvRow {
                info: SysvInfo {
                    key: get(key)?.parse().ok()?,
                    shmid: get(shmid)?.parse().ok()?,
                    cpid: get(cpid)?.parse().ok()?,
                    lpid: get(lpid)?.parse().ok()?,
                    nattch: get(nattch)?.parse().ok()?,
                },
                size: get(size)?.parse().ok()?,
                dest: u32::from_str_radix(get(perms)?, 8).ok()? & 0o1000 != 0,
            })
        })
        .collect()
}

/// Reads `/proc/sysvipc/shm` (empty when the kernel has no SysV IPC).
pub fn read() -> Vec<SysvRow> {
    std::fs::read_to_string("/proc/sysvipc/shm")
        .map(|t| parse(&t))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rows() {
        let text = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n        42      98310   600                  4096  1234  1240      2  1000  1000  1000  1000 1700000000 0 1700000000 4096 0\n        -1          7  1600                   100     1     1      0     0     0     0     0 0 0 0 0 0\n";
        let rows = parse(text);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].info.key, 42);
        assert_eq!(rows[0].info.shmid, 98310);
        assert_eq!(rows[0].size, 4096);
        assert_eq!(rows[0].info.nattch, 2);
        assert_eq!(rows[0].name(), "SYSV0000002a");
        assert_eq!(rows[1].name(), "SYSVffffffff");
        assert!(!rows[0].dest);
        assert!(rows[1].dest);
        assert!(parse("").is_empty());
        assert!(parse("garbage\n1 2 3").is_empty());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,300}") {
            let _ = parse(&format!("key shmid perms size cpid lpid nattch\n{text}"));
            let _ = parse(&text);
        }
    }
}
