//! Reading the live system: `/proc` process facts, shared memory and its decoders, and what
//! each thread waits on (`sync`). Read-only: nothing here changes a process.

pub mod proc;
pub mod pystack;
pub mod role_probe;
pub mod shm;
pub mod snapshot;
pub mod stat_reader;
pub mod sync;
pub mod unix;
