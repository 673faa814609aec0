//! Shared-memory segments forkscope creates for its users (`run --shm NAME:SIZE`).
//!
//! Each becomes `/dev/shm/forkscope-<SESSION>-<NAME>`, where SESSION is the pid the user sees
//! (the guardian's, or forkscope's own with `--no-guardian`). It is created zero-filled
//! (mode 0600) before any worker starts, and its name (`forkscope-<SESSION>-<NAME>`, what
//! Python's `SharedMemory(name=...)` and `shm_open` take) is exported to every worker as
//! `FORKSCOPE_SHM_<NAME>` (NAME upper-cased). It is removed when the session ends: normally,
//! on SIGTERM/SIGINT (the engine stops the tree and the session returns), or by the
//! [`OwnedSegments`] drop guard on an error path. If the engine is SIGKILLed the guardian
//! removes every `/dev/shm/forkscope-<its pid>-*` when it exits ([`remove_session_segments`]).
//! Only if both are SIGKILLed does a segment outlive forkscope.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// One `--shm NAME:SIZE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShmSpec {
    pub name: String,
    pub size: u64,
}

/// Largest segment `--shm` creates (64 GiB).
const MAX_SIZE: u64 = 64 << 30;

/// Parses `NAME:SIZE` (NAME: 1-64 of `A-Za-z0-9_`; SIZE: bytes, or with K, M, G suffix).
pub fn parse_spec(text: &str) -> Result<ShmSpec, String> {
    let (name, size) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?}: expected NAME:SIZE, e.g. counts:4096"))?;
    let valid = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(format!(
            "{name:?}: a segment name is 1 to 64 letters, digits or '_'"
        ));
    }
    let size_text = size.trim();
    let (digits, unit) = match size_text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&size_text[..i], c.to_ascii_uppercase()),
        _ => (size_text, 'B'),
    };
    let multiplier: u64 = match unit {
        'B' => 1,
        'K' => 1 << 10,
        'M' => 1 << 20,
        'G' => 1 << 30,
        _ => return Err(format!("{size:?}: size units are K, M or G")),
    };
    let size = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .filter(|n| (1..=MAX_SIZE).contains(n))
        .ok_or_else(|| format!("{size:?}: the size must be 1 byte to 64G"))?;
    Ok(ShmSpec {
        name: name.to_string(),
        size,
    })
}

/// The prefix of every segment of the session `session_pid`.
pub fn session_prefix(session_pid: i32) -> String {
    format!("forkscope-{session_pid}-")
}

/// Segments created for a session; removed on drop.
#[derive(Debug, Default)]
pub struct OwnedSegments {
    created: Vec<(String, PathBuf)>,
    env: Vec<(String, String)>,
}

impl OwnedSegments {
    /// Creates every segment (none may exist already). On error, the ones already made are
    /// removed (by the drop of the partial guard).
    pub fn create(specs: &[ShmSpec], session_pid: i32) -> io::Result<OwnedSegments> {
        let mut owned = OwnedSegments::default();
        for spec in specs {
            let name = format!("{}{}", session_prefix(session_pid), spec.name);
            let path = PathBuf::from(format!("/dev/shm/{name}"));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
                .map_err(|e| {
                    io::Error::new(e.kind(), format!("creating {}: {e}", path.display()))
                })?;
            owned.created.push((name.clone(), path.clone()));
            file.set_len(spec.size)
                .map_err(|e| io::Error::new(e.kind(), format!("sizing {}: {e}", path.display())))?;
            owned.env.push((
                format!("FORKSCOPE_SHM_{}", spec.name.to_ascii_uppercase()),
                name,
            ));
        }
        Ok(owned)
    }

    /// `FORKSCOPE_SHM_<NAME>` = segment name, for `EngineConfig::extra_env`.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The segment names (without `/dev/shm/`).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.created.iter().map(|(n, _)| n.as_str())
    }
}

impl Drop for OwnedSegments {
    fn drop(&mut self) {
        for (_, path) in &self.created {
            if let Err(e) = std::fs::remove_file(path)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!("removing {}: {e}", path.display());
            }
        }
    }
}

/// Removes every `/dev/shm/forkscope-<session_pid>-*` (the guardian's last act); returns
/// how many it removed.
pub fn remove_session_segments(session_pid: i32) -> usize {
    let prefix = session_prefix(session_pid);
    let Ok(entries) = std::fs::read_dir("/dev/shm") else {
        return 0;
    };
    entries
        .flatten()
        .take(1 << 20)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!(
            parse_spec("counts:4096"),
            Ok(ShmSpec {
                name: "counts".into(),
                size: 4096
            })
        );
        assert_eq!(parse_spec("a:2k").unwrap().size, 2048);
        assert_eq!(parse_spec("a:1M").unwrap().size, 1 << 20);
        assert!(parse_spec("a").is_err());
        assert!(parse_spec("a/b:1").is_err());
        assert!(parse_spec(":1").is_err());
        assert!(parse_spec("a:0").is_err());
        assert!(parse_spec("a:1T").is_err());
        assert!(parse_spec("a:-1").is_err());
        assert!(parse_spec("a:999999999999G").is_err());
    }

    #[test]
    fn creates_exports_and_removes() {
        // A session id no real session uses (pids are positive), unique per test process.
        let session = -(std::process::id() as i32);
        let specs = vec![
            parse_spec("t_one:100").unwrap(),
            parse_spec("t_two:1K").unwrap(),
        ];
        let owned = OwnedSegments::create(&specs, session).unwrap();
        let path = format!("/dev/shm/forkscope-{session}-t_one");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 100);
        assert_eq!(owned.env()[1].0, "FORKSCOPE_SHM_T_TWO");
        assert_eq!(owned.env()[1].1, format!("forkscope-{session}-t_two"));
        // Creating the same again fails and removes nothing of the first.
        assert!(OwnedSegments::create(&specs[..1], session).is_err());
        assert!(std::path::Path::new(&path).exists());
        drop(owned);
        assert!(!std::path::Path::new(&path).exists());
        let owned = OwnedSegments::create(&specs, session).unwrap();
        assert_eq!(remove_session_segments(session), 2);
        drop(owned);
    }
}
