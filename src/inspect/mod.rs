//! Reading the live system: `/proc` process facts (and, later, shared memory and
//! synchronisation decoders). Read-only: nothing here changes a process.

pub mod proc;
pub mod pystack;
pub mod role_probe;
pub mod shm;
pub mod snapshot;
pub mod unix;
