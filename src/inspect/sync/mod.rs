//! What every thread of a process tree waits on, and the synchronisation objects between
//! the processes: semaphores and the Python primitives they form, barriers, pipes and
//! sockets, and the deadlocks among them. Read-only; `docs/sync.md` is the user guide.
//!
//! - [`syscall`], [`thread`], [`fds`]: pure parsers of the `/proc` files, and their readers.
//! - [`classify`]: one thread's wait from its syscall and arguments ([`probe`]: the live side).
//! - [`sems`]: `sem_t` decoding, grouping into primitives, a barrier's arena counters;
//!   [`objects`]: the semaphores, primitives and barriers of a tree.
//! - [`sockdiag`], [`channels`]: Unix socket peers, pipes and sockets with their ends.
//! - [`graph`]: the waits-for graph and its deadlocks.
//! - [`scan`]: the [`Scanner`] that puts it together (cheap waits-only, or full);
//!   [`watch`]: the same on a thread, for the TUI.

pub mod channels;
pub mod classify;
pub mod fds;
pub mod graph;
pub mod objects;
pub mod probe;
pub mod scan;
pub mod sems;
pub mod sockdiag;
pub mod syscall;
pub mod thread;
pub mod watch;

pub use scan::{Scanner, scan_once};
