//! The tmux driver now lives in `tests/common/tui.rs`; this keeps `mod tui;` working for test
//! files that declare it next to `mod common;`.

#![allow(unused_imports)]

pub use crate::common::tui::*;
