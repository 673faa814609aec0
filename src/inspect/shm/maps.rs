//! A pure parser of `/proc/PID/maps` lines, and the classification of the lines that are
//! shared memory (`/dev/shm/...`, `/SYSV%08x`, `/memfd:...`).

use crate::model::shm::SegmentKind;

/// One line of `/proc/PID/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapsLine {
    pub start: u64,
    pub end: u64,
    pub perms: String,
    pub offset: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub inode: u64,
    /// The path with any ` (deleted)` suffix removed; empty for anonymous mappings.
    pub path: String,
    /// The kernel marked the path ` (deleted)`.
    pub deleted: bool,
}

/// Why a maps line could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed /proc maps line: {0}")]
pub struct MapsParseError(pub &'static str);

/// Parses one line (without its newline). Never panics, whatever the text.
pub fn parse_line(line: &str) -> Result<MapsLine, MapsParseError> {
    // Five space-separated fields, then spaces, then the path (which may contain spaces).
    let mut rest = line;
    let mut fields = [""; 5];
    for field in fields.iter_mut() {
        rest = rest.trim_start_matches(' ');
        let end = rest.find(' ').unwrap_or(rest.len());
        *field = &rest[..end];
        rest = &rest[end..];
    }
    let [range, perms, offset, dev, inode] = fields;
    let (start, end) = range
        .split_once('-')
        .ok_or(MapsParseError("address range"))?;
    let start = u64::from_str_radix(start, 16).map_err(|_| MapsParseError("start address"))?;
    let end = u64::from_str_radix(end, 16).map_err(|_| MapsParseError("end address"))?;
    if end < start {
        return Err(MapsParseError("end before start"));
    }
    if perms.len() != 4 || !perms.is_ascii() {
        return Err(MapsParseError("permissions"));
    }
    let offset = u64::from_str_radix(offset, 16).map_err(|_| MapsParseError("offset"))?;
    let (major, minor) = dev.split_once(':').ok_or(MapsParseError("device"))?;
    let dev_major = u32::from_str_radix(major, 16).map_err(|_| MapsParseError("device"))?;
    let dev_minor = u32::from_str_radix(minor, 16).map_err(|_| MapsParseError("device"))?;
    let inode = inode.parse().map_err(|_| MapsParseError("inode"))?;
    let path = rest.trim_start_matches(' ');
    let (path, deleted) = match path.strip_suffix(" (deleted)") {
        Some(p) => (p, true),
        None => (path, false),
    };
    Ok(MapsLine {
        start,
        end,
        perms: perms.to_string(),
        offset,
        dev_major,
        dev_minor,
        inode,
        path: path.to_string(),
        deleted,
    })
}

/// Parses a whole maps file, skipping lines that do not parse.
pub fn parse(text: &str) -> Vec<MapsLine> {
    text.lines().filter_map(|l| parse_line(l).ok()).collect()
}

/// The kind and name of a shared-memory path, or `None` for other paths.
///
/// `/dev/shm/psm_ab` → (Posix, `psm_ab`); `/dev/shm/sem.x` → (Semaphore, `sem.x`);
/// `/dev/shm/pym-1-ab` → (PyArena, ...); `/SYSV0000002a` → (Sysv, `SYSV0000002a`);
/// `/memfd:name` → (Memfd, `memfd:name`).
pub fn classify(path: &str) -> Option<(SegmentKind, String)> {
    if let Some(name) = path.strip_prefix("/dev/shm/") {
        if name.is_empty() || name.contains('/') {
            return None;
        }
        return Some((kind_of_name(name), name.to_string()));
    }
    if let Some(key) = path.strip_prefix("/SYSV") {
        if key.len() == 8 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some((SegmentKind::Sysv, format!("SYSV{key}")));
        }
        return None;
    }
    if let Some(name) = path.strip_prefix("/memfd:") {
        return Some((SegmentKind::Memfd, format!("memfd:{name}")));
    }
    None
}

/// The kind of a file name under `/dev/shm`.
pub fn kind_of_name(name: &str) -> SegmentKind {
    if name.starts_with("sem.") {
        SegmentKind::Semaphore
    } else if name.starts_with("pym-") {
        SegmentKind::PyArena
    } else {
        SegmentKind::Posix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_shm_lines() {
        let line = "7f1c2a000000-7f1c2a001000 rw-s 00000000 00:1a 1234                       /dev/shm/psm_1a2b3c4d";
        let m = parse_line(line).unwrap();
        assert_eq!(m.start, 0x7f1c2a000000);
        assert_eq!(m.end, 0x7f1c2a001000);
        assert_eq!(m.perms, "rw-s");
        assert_eq!((m.dev_major, m.dev_minor, m.inode), (0, 0x1a, 1234));
        assert_eq!(m.path, "/dev/shm/psm_1a2b3c4d");
        assert!(!m.deleted);

        let m =
            parse_line("7f00-8f00 rw-s 00001000 00:01 98310   /SYSV0000002a (deleted)").unwrap();
        assert_eq!(m.offset, 0x1000);
        assert!(m.deleted);
        assert_eq!(m.path, "/SYSV0000002a");
        assert_eq!(
            classify(&m.path),
            Some((SegmentKind::Sysv, "SYSV0000002a".into()))
        );

        let m = parse_line("1000-2000 r--p 00000000 00:00 0 ").unwrap();
        assert_eq!(m.path, "");
        let m = parse_line("1000-2000 r--p 00000000 00:00 0").unwrap();
        assert_eq!(m.path, "");
        let m = parse_line("1000-2000 rw-s 00000000 00:05 7 /dev/shm/my name (deleted)").unwrap();
        assert_eq!(m.path, "/dev/shm/my name");
    }

    #[test]
    fn classifies() {
        assert_eq!(
            classify("/dev/shm/sem.mp-x").unwrap().0,
            SegmentKind::Semaphore
        );
        assert_eq!(
            classify("/dev/shm/pym-8-ab").unwrap().0,
            SegmentKind::PyArena
        );
        assert_eq!(classify("/memfd:x").unwrap().1, "memfd:x");
        assert_eq!(classify("/usr/lib/libc.so.6"), None);
        assert_eq!(classify("/SYSVzz"), None);
        assert_eq!(classify("/dev/shm/"), None);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_line("").is_err());
        assert!(parse_line("2000-1000 rw-s 0 00:00 0").is_err());
        assert!(parse_line("x-y rw-s 0 00:00 0").is_err());
        assert!(parse_line("1000-2000 rw-s 0 0000 0").is_err());
    }

    fn render(m: &MapsLine) -> String {
        format!(
            "{:x}-{:x} {} {:08x} {:02x}:{:02x} {}                 {}{}",
            m.start,
            m.end,
            m.perms,
            m.offset,
            m.dev_major,
            m.dev_minor,
            m.inode,
            m.path,
            if m.deleted { " (deleted)" } else { "" }
        )
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,200}") {
            let _ = parse_line(&text);
            let _ = parse(&text);
        }

        #[test]
        fn round_trips(start in 0u64..u64::MAX / 2, len in 0u64..1 << 40, offset: u64,
                       major in 0u32..4096, minor in 0u32..1 << 20, inode: u64,
                       perms in "[r-][w-][x-][sp]", path in "(/[a-zA-Z0-9_.:-]{1,12}){0,3}",
                       deleted: bool) {
            let m = MapsLine { start, end: start + len, perms, offset, dev_major: major,
                dev_minor: minor, inode, deleted: deleted && !path.is_empty(), path };
            proptest::prop_assert_eq!(parse_line(&render(&m)), Ok(m));
        }
    }
}
