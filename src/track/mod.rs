//! Lifecycle sources for descendants forkscope did not start itself. Workers and orphans
//! re-parented to forkscope are exact through the engine (spawn and reap); this module finds
//! the rest: the kernel's process-events connector ([`netlink`], filtered to the tree by
//! [`kernel`]), ptrace (in the engine, `supervise/engine/ptrace.rs`, since the tracer must be
//! the engine thread) and the `/proc` polling fallback ([`poll`]). See `docs/tracking.md` for
//! what each source can miss. [`zombies`] follows every reported exit to its reap, and
//! finds the orphans adopted when their parent ends.

pub mod kernel;
pub mod netlink;
pub mod netlink_filter;
pub mod poll;
pub mod zombies;

/// Which lifecycle source the engine should use (`--track`, the config's `track`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrackMode {
    /// Kernel process events when subscribing works, else `/proc` polling.
    #[default]
    Auto,
    /// Kernel process events or nothing: starting fails if they are unavailable.
    Kernel,
    /// ptrace: workers are traced from their exec, descendants followed automatically.
    Ptrace,
    /// `/proc` polling only.
    Poll,
}

impl TrackMode {
    /// The spelling of `--track` and of the config's `track`.
    pub fn as_str(self) -> &'static str {
        match self {
            TrackMode::Auto => "auto",
            TrackMode::Kernel => "kernel",
            TrackMode::Ptrace => "ptrace",
            TrackMode::Poll => "poll",
        }
    }
}
