//! Shared-memory segments forkscope creates for its users (`run --shm NAME:SIZE`).
//!
//! Each becomes `/dev/shm/forkscope-<SESSION>-<NAME>`, where SESSION is the pid the user sees
//! (the guardian's, or forkscope's own with `--no-guardian`). It is created zero-filled with
//! `O_EXCL` and mode 0600 before the guardian splits off (so both sides know it), and its name
//! (`forkscope-<SESSION>-<NAME>`, what Python's `SharedMemory(name=...)` and `shm_open` take)
//! is exported to every worker as `FORKSCOPE_SHM_<NAME>` (NAME upper-cased). A name that is
//! taken is an error that removes nothing.
//!
//! Only what this process created is ever removed, and only while the name still points at
//! the (device, inode) it created: when the session ends (the [`OwnedSegments`] drop guard), or,
//! if the engine was SIGKILLed, by the guardian ([`remove_created_segments`]). Other files
//! named `forkscope-<pid>-*` (another user's, a pid reused) are never touched. Only if both
//! are SIGKILLed does a segment outlive forkscope.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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

/// A segment this process created, as it was created.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Created {
    path: PathBuf,
    device: u64,
    inode: u64,
}

impl Created {
    /// Unlinks the path if it still names the object created; a replaced or vanished name is
    /// left alone. (Between the check and the unlink another process could swap the name:
    /// /dev/shm is sticky, so only the owner of the new file, or root, could do that.)
    fn remove_if_same(&self) -> bool {
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.dev() == self.device && meta.ino() == self.inode => {
                match std::fs::remove_file(&self.path) {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!("removing {}: {e}", self.path.display());
                        false
                    }
                }
            }
            Ok(_) => {
                tracing::warn!(
                    "{} is no longer the segment forkscope created; left alone",
                    self.path.display()
                );
                false
            }
            Err(_) => false,
        }
    }
}

/// Every segment this process created and has not removed. The guardian's fork inherits it,
/// so the guardian removes exactly what the session created, nothing else.
static CREATED: Mutex<Vec<Created>> = Mutex::new(Vec::new());

fn registry() -> std::sync::MutexGuard<'static, Vec<Created>> {
    CREATED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Segments created for a session; removed on drop.
#[derive(Debug, Default)]
pub struct OwnedSegments {
    created: Vec<(String, Created)>,
    env: Vec<(String, String)>,
}

impl OwnedSegments {
    /// Creates every segment (`O_EXCL`, mode 0600: none may exist already). On error, the ones
    /// already made are removed (by the drop of the partial guard), and nothing else.
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
                .map_err(|e| creation_error(&path, e))?;
            let meta = file.metadata()?;
            let created = Created {
                path: path.clone(),
                device: meta.dev(),
                inode: meta.ino(),
            };
            registry().push(created.clone());
            owned.created.push((name.clone(), created));
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

fn creation_error(path: &Path, e: io::Error) -> io::Error {
    let text = if e.kind() == io::ErrorKind::AlreadyExists {
        format!(
            "{} already exists (another session or user has the name); nothing was removed",
            path.display()
        )
    } else {
        format!("creating {}: {e}", path.display())
    };
    io::Error::new(e.kind(), text)
}

impl Drop for OwnedSegments {
    fn drop(&mut self) {
        let mut registry = registry();
        for (_, created) in &self.created {
            created.remove_if_same();
            registry.retain(|c| c != created);
        }
    }
}

/// Removes every segment this process created that still exists as created (the guardian's
/// last act); returns how many it removed.
pub fn remove_created_segments() -> usize {
    std::mem::take(&mut *registry())
        .iter()
        .filter(|c| c.remove_if_same())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The registry is process-wide: tests that use it run one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

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
        let _serial = SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
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
        assert_eq!(remove_created_segments(), 2);
        drop(owned);
    }

    #[test]
    fn removes_only_what_it_created() {
        let _serial = SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let session = -(std::process::id() as i32) - 1_000_000;
        let specs = vec![parse_spec("t_mine:10").unwrap()];
        let owned = OwnedSegments::create(&specs, session).unwrap();
        let mine = format!("/dev/shm/forkscope-{session}-t_mine");
        let other = format!("/dev/shm/forkscope-{session}-t_other");
        std::fs::write(&other, b"not ours").unwrap();
        // The name replaced behind our back: a different inode is not ours to remove.
        std::fs::remove_file(&mine).unwrap();
        std::fs::write(&mine, b"someone else's").unwrap();
        drop(owned);
        assert!(Path::new(&mine).exists(), "a replaced name is left alone");
        assert!(Path::new(&other).exists());
        assert_eq!(remove_created_segments(), 0);
        // A taken name fails and leaves the file as it was.
        let err = OwnedSegments::create(&specs, session).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(std::fs::read(&mine).unwrap(), b"someone else's");
        std::fs::remove_file(&mine).unwrap();
        std::fs::remove_file(&other).unwrap();
    }
}
