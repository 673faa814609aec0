//! Listening Unix sockets: which processes listen where, from `/proc/net/unix` (inode and
//! path of every socket with `__SO_ACCEPTCON`) and each process's `fd/` links
//! (`socket:[INODE]`). Used to recognise a multiprocessing `Manager` server.

use std::collections::HashMap;
use std::fs;

/// `__SO_ACCEPTCON` in the Flags column: the socket is listening.
const SO_ACCEPTCON: u64 = 0x10000;

/// Parses `/proc/net/unix` into inode → path for listening sockets with a path.
/// Never panics, whatever the text.
pub fn parse_net_unix(text: &str) -> HashMap<u64, String> {
    let mut listening = HashMap::new();
    for line in text.lines().skip(1) {
        // Num RefCount Protocol Flags Type St Inode [Path]
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(flags), Some(inode), Some(path)) = (fields.get(3), fields.get(6), fields.get(7))
        else {
            continue;
        };
        let (Ok(flags), Ok(inode)) = (u64::from_str_radix(flags, 16), inode.parse::<u64>()) else {
            continue;
        };
        if flags & SO_ACCEPTCON != 0 {
            listening.insert(inode, (*path).to_string());
        }
    }
    listening
}

/// Every listening Unix socket of the system, inode → path.
pub fn listening_sockets() -> HashMap<u64, String> {
    fs::read_to_string("/proc/net/unix")
        .map(|text| parse_net_unix(&text))
        .unwrap_or_default()
}

/// The socket inodes among a process's open files (empty when unreadable).
pub fn socket_inodes(pid: i32) -> Vec<u64> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let target = fs::read_link(entry.ok()?.path()).ok()?;
        let text = target.to_str()?;
        text.strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()
    })
    .collect()
}

/// Paths of the Unix sockets `pid` listens on.
pub fn listening_paths(pid: i32, listening: &HashMap<u64, String>) -> Vec<String> {
    socket_inodes(pid)
        .into_iter()
        .filter_map(|inode| listening.get(&inode).cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listening_sockets() {
        let text = "Num       RefCount Protocol Flags    Type St Inode Path\n\
            000000006673a2ca: 00000002 00000000 00010000 0001 01 100156 /tmp/pymp-prnmsjez/listener-xp117c67\n\
            0000000011111111: 00000003 00000000 00000000 0001 03 100157 /tmp/pymp-prnmsjez/listener-xp117c67\n\
            0000000022222222: 00000002 00000000 00010000 0001 01 100158\n\
            garbage\n";
        let got = parse_net_unix(text);
        assert_eq!(got.len(), 1);
        assert_eq!(got[&100156], "/tmp/pymp-prnmsjez/listener-xp117c67");
    }

    #[test]
    fn reads_own_listener() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let me = std::process::id() as i32;
        let paths = listening_paths(me, &listening_sockets());
        assert!(
            paths.iter().any(|p| p == path.to_str().unwrap()),
            "{paths:?}"
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(text in "(.{0,80}\n){0,6}") {
            let _ = parse_net_unix(&text);
        }
    }
}
