//! The TUI (placeholder until the ratatui app lands).

pub mod shm_view;

use crate::headless::Recorder;
use crate::supervise::EngineHandle;

pub fn run(
    engine: &EngineHandle,
    recorder: Option<Recorder>,
    _scrollback: usize,
    _title: &str,
) -> anyhow::Result<i32> {
    Ok(crate::headless::print_events(engine, recorder, false))
}
