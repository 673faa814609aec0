//! Lifecycle sources for descendants forkscope did not start itself. Workers and orphans
//! re-parented to forkscope are exact through the engine (spawn and reap); this module finds
//! the rest. See `docs/tracking.md` for what each source can miss.

pub mod poll;
