//! The shared-memory inspector: which segments a process tree maps or holds (POSIX
//! `/dev/shm` objects, glibc semaphores, Python heap arenas, SysV segments, memfds), their
//! bytes read read-only, and decoders for what is in them. `docs/shm.md` is the user guide.
//!
//! - [`maps`], [`sysv`]: pure parsers of `/proc/PID/maps` and `/proc/sysvipc/shm`.
//! - [`discover`]: segments keyed by (device, inode), with who maps/holds them.
//! - [`read`]: bounded, read-only reads through the file, a held fd or `/proc/PID/mem`.
//! - [`decode`]: hex, typed arrays, ShareableList (3.8 and 3.9+), struct layouts, semaphores.
//! - [`watch`]: a background thread that refreshes a selection and detects changes.
//! - [`command`]: `forkscope shm ls|show`.

pub mod command;
pub mod decode;
pub mod discover;
pub mod maps;
pub mod read;
pub mod sysv;
pub mod watch;

pub use discover::{Scope, discover, find};
pub use read::{DEFAULT_MAX_BYTES, ReadError, read_segment};
