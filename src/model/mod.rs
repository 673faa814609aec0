//! Plain data and pure logic: events, exit statuses, actions, restart policy and the state
//! the views render. Nothing here touches the operating system.

pub mod action;
pub mod event;
pub mod exit;
pub mod lesson;
pub mod line_text;
pub mod named;
pub mod output;
pub mod policy;
pub mod printable;
pub mod pystack;
pub mod roles;
pub mod shm;
pub mod shm_record;
pub mod signals;
pub mod state;
pub mod sync;

pub use action::Action;
pub use event::{
    BarrierStep, Delivery, Event, EventBody, NoticeLevel, PoolInfo, ProcSample, SignalReason,
    Stream, TrackSource,
};
pub use exit::ExitStatus;
pub use line_text::{LineSpan, LineText, OutputLines};
pub use state::{State, update};
